/* SPDX-License-Identifier: GPL-2.0 */
/*
 * triple_fault.rs: the harness starts every guest with an IDT limit of 0,
 * so the first exception cannot be delivered: #UD or #BP becomes #GP
 * (vector beyond the IDT limit), that becomes #DF, and that a shutdown
 * (APM Vol. 2, 8.2.9). None of these guests installs an IDT.
 */
#include "guest.h"

	.code32
	.global triple_ud2_32
triple_ud2_32:
	ud2
	HALT			/* reached only if UD2 did not fault */

	.code64
	.global triple_int3_64
triple_int3_64:
	int3
	HALT

	.global triple_ud2_64
triple_ud2_64:
	ud2
	HALT

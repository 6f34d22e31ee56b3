/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Guests that never exit on their own, for the tests that stop a vCPU from
 * outside: signal_stops_spin.rs and bad_input.rs.
 */
#include "guest.h"

	.code64
	/* The tightest loop: no exit, no memory access. */
	.global spin64
spin64:
	jmp	spin64

	/* Keeps writing guest RAM, so its pages stay in use while it runs. */
	.global spin_write64
spin_write64:
	inc	dword ptr [DATA_BASE]
	jmp	spin_write64

	/* Where a test moves RIP after stopping a spinner, to see it resume. */
	.global halt64
halt64:
	mov	eax, 0x600d
	HALT

	.code32
	.global spin32
spin32:
	jmp	spin32

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hlt.rs: every HLT exits to userspace, and the next run resumes after it.
 * EAX says which HLT the guest stopped at.
 */
#include "guest.h"

	.code32
	.global hlt32
hlt32:
	mov	eax, 1
	.global hlt32_first
hlt32_first:
	hlt
	mov	eax, 2
	.global hlt32_second
hlt32_second:
	hlt
	mov	eax, 3
	HALT

	.code64
	.global hlt64
hlt64:
	mov	eax, 1
	.global hlt64_first
hlt64_first:
	hlt
	mov	eax, 2
	.global hlt64_second
hlt64_second:
	hlt
	mov	eax, 3
	HALT

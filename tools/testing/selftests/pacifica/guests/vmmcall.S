/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vmmcall.rs: hypercalls. First PACIFICA_HC_PING (0), which the module
 * answers itself with RAX = 0 and no exit to userspace; then number 0x1234,
 * which the module passes to userspace with RBX, RCX, RDX, RSI as
 * arguments. DATA_BASE gets: +0x00 RAX after the ping, +0x08 RBX after the
 * ping (must be unchanged), +0x10 RAX after the second call.
 */
#include "guest.h"

	.code64
	.global vmmcall64
vmmcall64:
	mov	rbx, 0x1111
	mov	rcx, 0x2222
	mov	rdx, 0x3333
	mov	rsi, 0x4444
	xor	eax, eax
	vmmcall
	mov	[DATA_BASE+0x00], rax
	mov	[DATA_BASE+0x08], rbx
	mov	eax, 0x1234
	mov	rbx, 0xa1a1a1a100000001
	mov	rcx, 0xa2a2a2a200000002
	mov	rdx, 0xa3a3a3a300000003
	mov	rsi, 0xa4a4a4a400000004
	vmmcall
	mov	[DATA_BASE+0x10], rax
	HALT

	/* The same in 32-bit mode, with 32-bit values. */
	.code32
	.global vmmcall32
vmmcall32:
	mov	ebx, 0x1111
	xor	eax, eax
	vmmcall
	mov	[DATA_BASE+0x00], eax
	mov	[DATA_BASE+0x08], ebx
	mov	eax, 0x1234
	mov	ebx, 0xa1a10001
	mov	ecx, 0xa2a20002
	mov	edx, 0xa3a30003
	mov	esi, 0xa4a40004
	vmmcall
	mov	[DATA_BASE+0x10], eax
	HALT

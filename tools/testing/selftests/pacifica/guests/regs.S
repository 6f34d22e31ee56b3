/* SPDX-License-Identifier: GPL-2.0 */
/*
 * regs.rs: both directions of SET_REGS / GET_REGS across the world switch.
 * The guest stores every general register it was started with (in the
 * order of struct Regs, RFLAGS last) at DATA_BASE, then inverts all of them
 * but RSP and halts; the test compares both sets with what it wrote.
 */
#include "guest.h"

	.code64
	.global regs_swap64
regs_swap64:
	mov	[DATA_BASE+0x00], rax
	mov	[DATA_BASE+0x08], rbx
	mov	[DATA_BASE+0x10], rcx
	mov	[DATA_BASE+0x18], rdx
	mov	[DATA_BASE+0x20], rsi
	mov	[DATA_BASE+0x28], rdi
	mov	[DATA_BASE+0x30], rsp
	mov	[DATA_BASE+0x38], rbp
	mov	[DATA_BASE+0x40], r8
	mov	[DATA_BASE+0x48], r9
	mov	[DATA_BASE+0x50], r10
	mov	[DATA_BASE+0x58], r11
	mov	[DATA_BASE+0x60], r12
	mov	[DATA_BASE+0x68], r13
	mov	[DATA_BASE+0x70], r14
	mov	[DATA_BASE+0x78], r15
	pushfq
	pop	qword ptr [DATA_BASE+0x80]
	/* NOT changes no flags, so RFLAGS stays as the test set it. */
	not	rax
	not	rbx
	not	rcx
	not	rdx
	not	rsi
	not	rdi
	not	rbp
	not	r8
	not	r9
	not	r10
	not	r11
	not	r12
	not	r13
	not	r14
	not	r15
	HALT

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmio.rs: MOV to and from MMIO_BASE, outside guest RAM, so that each access
 * becomes an MMIO exit that userspace serves. In 64-bit mode the identity
 * map covers MMIO_BASE; in 32-bit mode paging is off. The base sits in
 * EBX/RBX: a disp32 of 0xd0000000 would be sign-extended in 64-bit mode.
 */
#include "guest.h"

.macro MMIO_SCENARIOS bits, B, A
	/* Writes of 1, 2, 4 (and in 64-bit mode 8) bytes, MOV r/m, reg. */
	.global mmio_write\bits
mmio_write\bits:
	mov	ebx, MMIO_BASE
	mov	al, 0x5a
	mov	[\B+0x00], al
	mov	ax, 0xbeef
	mov	[\B+0x10], ax
	mov	eax, 0xcafef00d
	mov	[\B+0x20], eax
	.if \bits == 64
	mov	rax, 0x1122334455667788
	mov	[\B+0x30], rax
	.endif
	HALT

	/*
	 * Reads of each size, MOV reg, r/m. EAX holds 0xdeadbeef before the
	 * narrow reads, whose MOV must keep the rest of the register.
	 */
	.global mmio_read\bits
mmio_read\bits:
	mov	ebx, MMIO_BASE
	mov	eax, 0xdeadbeef
	mov	al, [\B+0x40]
	mov	[DATA_BASE+0x00], eax
	mov	eax, 0xdeadbeef
	mov	ax, [\B+0x50]
	mov	[DATA_BASE+0x04], eax
	mov	eax, [\B+0x60]
	mov	[DATA_BASE+0x08], eax
	.if \bits == 64
	mov	rax, [\B+0x70]
	mov	[DATA_BASE+0x10], rax
	/* A 32-bit load zero-extends into RAX 63:32. */
	mov	rax, 0x1122334455667788
	mov	eax, [\B+0x80]
	mov	[DATA_BASE+0x18], rax
	/* A REX.R destination register: R10. */
	mov	r10, [\B+0x90]
	mov	[DATA_BASE+0x20], r10
	.endif
	HALT

	/*
	 * Less common forms a decoder may or may not know: MOV r/m, imm and
	 * MOVZX. Kept apart so that a refusal here fails only this scenario.
	 */
	.global mmio_other\bits
mmio_other\bits:
	mov	ebx, MMIO_BASE
	mov	byte ptr [\B+0xa0], 0x12
	mov	dword ptr [\B+0xa4], 0x89abcdef
	mov	eax, 0xdeadbeef
	movzx	eax, byte ptr [\B+0xb0]
	mov	[DATA_BASE+0x00], eax
	HALT

	/*
	 * Read-modify-write and compare forms: each reads the device, the
	 * module computes, and all but CMP, TEST and BT write the result.
	 */
	.global mmio_rmw\bits
mmio_rmw\bits:
	mov	ebx, MMIO_BASE
	or	dword ptr [\B+0xc0], 0x100
	mov	cl, 0x21
	add	[\B+0xd0], cl
	mov	eax, 0x11223344
	cmp	[\B+0xe0], eax
	pushf
	pop	\A
	mov	[DATA_BASE+0x00], eax
	mov	edx, 0x55aa
	xchg	[\B+0xf0], edx
	mov	[DATA_BASE+0x04], edx
	bts	dword ptr [\B+0x100], 3
	setc	al
	mov	[DATA_BASE+0x08], al
	mov	ecx, 0xf0
	sub	ecx, [\B+0x110]
	mov	[DATA_BASE+0x0c], ecx
	test	byte ptr [\B+0x120], 0x80
	setnz	al
	mov	[DATA_BASE+0x10], al
	HALT

	/*
	 * String instructions with the device on one side: REP STOSD to it,
	 * REP MOVSB from RAM to it, REP MOVSW from it to RAM, LODSD from it
	 * moving down.
	 */
	.global mmio_string\bits
mmio_string\bits:
	cld
	mov	edi, MMIO_BASE + 0x200
	mov	eax, 0x01020304
	mov	ecx, 3
	rep stosd
	mov	dword ptr [BUF_BASE], 0x44434241
	mov	esi, BUF_BASE
	mov	edi, MMIO_BASE + 0x300
	mov	ecx, 4
	rep movsb
	mov	esi, MMIO_BASE + 0x400
	mov	edi, BUF_BASE + 0x10
	mov	ecx, 2
	rep movsw
	std
	mov	esi, MMIO_BASE + 0x504
	lodsd
	mov	[DATA_BASE+0x00], eax
	lodsd
	mov	[DATA_BASE+0x04], eax
	cld
	mov	[DATA_BASE+0x08], esi
	mov	[DATA_BASE+0x0c], ecx
	HALT
.endm

	.code32
	MMIO_SCENARIOS 32, ebx, eax

	.code64
	MMIO_SCENARIOS 64, rbx, rax

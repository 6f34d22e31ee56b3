/* SPDX-License-Identifier: GPL-2.0 */
/*
 * io.rs: port I/O of every width and form, in 32-bit and 64-bit mode.
 *
 * Each scenario below exists twice, assembled by the IO_SCENARIOS macro in
 * both modes (`out_sizes32`, `out_sizes64`, ...). The bodies use 32-bit
 * register names only: in 64-bit mode writing ESI/EDI/ECX zero-extends into
 * RSI/RDI/RCX, which string instructions then use, so the same text is
 * right in both modes. OUTS reads what the test put at BUF_BASE; INS and IN
 * store what the test supplied at BUF_BASE and DATA_BASE, and the test
 * reads them after the HLT.
 */
#include "guest.h"

.macro IO_SCENARIOS bits

	/* OUT of 1, 2 and 4 bytes, through DX and through an immediate port. */
	.global out_sizes\bits
out_sizes\bits:
	mov	dx, PORT_TEST
	mov	al, 0x11
	out	dx, al
	mov	ax, 0x2233
	out	dx, ax
	mov	eax, 0x44556677
	out	dx, eax
	mov	al, 0x88
	out	PORT_TEST_IMM, al
	mov	ax, 0x99aa
	out	PORT_TEST_IMM, ax
	mov	eax, 0xbbccddee
	out	PORT_TEST_IMM, eax
	HALT

	/*
	 * IN of 1, 2 and 4 bytes. EAX is 0xdeadbeef before each narrow IN:
	 * IN AL and IN AX must leave the rest of EAX alone.
	 */
	.global in_sizes\bits
in_sizes\bits:
	mov	dx, PORT_TEST
	mov	eax, 0xdeadbeef
	in	al, dx
	mov	[DATA_BASE+0x00], eax
	mov	eax, 0xdeadbeef
	in	ax, dx
	mov	[DATA_BASE+0x04], eax
	in	eax, dx
	mov	[DATA_BASE+0x08], eax
	mov	eax, 0xdeadbeef
	in	al, PORT_TEST_IMM
	mov	[DATA_BASE+0x0c], eax
	mov	eax, 0xdeadbeef
	in	ax, PORT_TEST_IMM
	mov	[DATA_BASE+0x10], eax
	in	eax, PORT_TEST_IMM
	mov	[DATA_BASE+0x14], eax
	.if \bits == 64
	/* IN AL keeps RAX 63:8; IN EAX, a 32-bit write, zeroes RAX 63:32. */
	mov	rax, 0x1122334455667788
	in	al, dx
	mov	[DATA_BASE+0x18], rax
	mov	rax, 0x1122334455667788
	in	eax, dx
	mov	[DATA_BASE+0x20], rax
	.endif
	HALT

	/* OUTSB, OUTSW, OUTSD without REP, from BUF_BASE. */
	.global outs_single\bits
outs_single\bits:
	mov	esi, BUF_BASE
	mov	dx, PORT_TEST
	outsb
	outsw
	outsd
	mov	[DATA_BASE+0x00], esi		/* BUF_BASE + 7 */
	HALT

	/* INSB, INSW, INSD without REP, to BUF_BASE. */
	.global ins_single\bits
ins_single\bits:
	mov	edi, BUF_BASE
	mov	dx, PORT_TEST
	insb
	insw
	insd
	mov	[DATA_BASE+0x00], edi		/* BUF_BASE + 7 */
	HALT

	/*
	 * REP OUTS of each width, one port per width, continuing through
	 * BUF_BASE: 37 bytes, 19 words, 11 doublewords.
	 */
	.global rep_outs\bits
rep_outs\bits:
	mov	esi, BUF_BASE
	mov	dx, PORT_TEST
	mov	ecx, 37
	rep outsb
	mov	[DATA_BASE+0x00], ecx
	mov	dx, PORT_TEST+2
	mov	ecx, 19
	rep outsw
	mov	[DATA_BASE+0x04], ecx
	mov	dx, PORT_TEST+4
	mov	ecx, 11
	rep outsd
	mov	[DATA_BASE+0x08], ecx
	mov	[DATA_BASE+0x0c], esi		/* BUF_BASE + 119 */
	HALT

	/* REP INS, the mirror image of rep_outs. */
	.global rep_ins\bits
rep_ins\bits:
	mov	edi, BUF_BASE
	mov	dx, PORT_TEST
	mov	ecx, 37
	rep insb
	mov	[DATA_BASE+0x00], ecx
	mov	dx, PORT_TEST+2
	mov	ecx, 19
	rep insw
	mov	[DATA_BASE+0x04], ecx
	mov	dx, PORT_TEST+4
	mov	ecx, 11
	rep insd
	mov	[DATA_BASE+0x08], ecx
	mov	[DATA_BASE+0x0c], edi		/* BUF_BASE + 119 */
	HALT

	/*
	 * REP OUTS larger than the run page's 2 KiB of I/O data and crossing
	 * page boundaries from an unaligned start: 5000 bytes, then 3000
	 * doublewords.
	 */
	.global rep_outs_large\bits
rep_outs_large\bits:
	mov	esi, BUF_BASE+0x123
	mov	dx, PORT_TEST
	mov	ecx, 5000
	rep outsb
	mov	dx, PORT_TEST+4
	mov	ecx, 3000
	rep outsd
	mov	[DATA_BASE+0x00], ecx
	mov	[DATA_BASE+0x04], esi		/* BUF_BASE + 0x123 + 17000 */
	HALT

	/* REP INS of the same sizes. */
	.global rep_ins_large\bits
rep_ins_large\bits:
	mov	edi, BUF_BASE+0x123
	mov	dx, PORT_TEST
	mov	ecx, 5000
	rep insb
	mov	dx, PORT_TEST+4
	mov	ecx, 3000
	rep insd
	mov	[DATA_BASE+0x00], ecx
	mov	[DATA_BASE+0x04], edi
	HALT

	/*
	 * With RFLAGS.DF set string I/O walks down: 100 bytes from
	 * BUF_BASE+99 to BUF_BASE, then 20 doublewords ending at BUF_BASE+0x200.
	 */
	.global rep_outs_down\bits
rep_outs_down\bits:
	std
	mov	esi, BUF_BASE+99
	mov	dx, PORT_TEST
	mov	ecx, 100
	rep outsb
	mov	[DATA_BASE+0x00], esi		/* BUF_BASE - 1 */
	mov	esi, BUF_BASE+0x200+19*4
	mov	dx, PORT_TEST+4
	mov	ecx, 20
	rep outsd
	mov	[DATA_BASE+0x04], esi		/* BUF_BASE + 0x200 - 4 */
	cld
	HALT

	.global rep_ins_down\bits
rep_ins_down\bits:
	std
	mov	edi, BUF_BASE+99
	mov	dx, PORT_TEST
	mov	ecx, 100
	rep insb
	mov	[DATA_BASE+0x00], edi
	mov	edi, BUF_BASE+0x200+19*4
	mov	dx, PORT_TEST+4
	mov	ecx, 20
	rep insd
	mov	[DATA_BASE+0x04], edi
	cld
	HALT

	/*
	 * REP with ECX = 0 does nothing at all: no exit. The OUT to
	 * PORT_TEST+6 afterwards must be the first exit the test sees.
	 */
	.global rep_zero\bits
rep_zero\bits:
	xor	ecx, ecx
	mov	esi, BUF_BASE
	mov	edi, BUF_BASE
	mov	dx, PORT_TEST
	rep outsb
	rep insb
	mov	[DATA_BASE+0x00], esi		/* unchanged */
	mov	[DATA_BASE+0x04], edi		/* unchanged */
	mov	dx, PORT_TEST+6
	mov	al, 0x99
	out	dx, al
	HALT
.endm

	.code32
	IO_SCENARIOS 32

	.code64
	IO_SCENARIOS 64

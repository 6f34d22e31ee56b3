/* SPDX-License-Identifier: GPL-2.0 */
/*
 * paging32.S - a differential guest: 32-bit two-level paging (CR4.PSE).
 *
 * A Multiboot v1 kernel that builds its own page tables and prints, on
 * COM1, what the architecture guarantees about them:
 *
 *   - 4 MiB pages (PSE) and the A/D bits of a 4 MiB PDE;
 *   - remapping a page: after INVLPG, or after a CR3 reload, the new
 *     mapping is seen (what is read *without* INVLPG is not printed: a
 *     stale and a fresh translation are both correct there);
 *   - accessed and dirty bits the CPU sets in a 4 KiB PTE;
 *   - CR0.WP: a supervisor write to a read-only page succeeds with WP=0
 *     and faults with WP=1;
 *   - ring 3 entered with IRET: user accesses to user pages work, and
 *     to a read-only, a supervisor or a not-present page fault;
 *   - page-fault error codes and CR2, printed by the guest's own handler;
 *   - CR3 switches among 16 address spaces for 4 rounds, each round
 *     remapping every space (not the current one) before switching.
 *
 * The output depends on nothing but the architecture and the addresses
 * chosen here, so it is the same on any correct x86 implementation. The
 * run ends with status 0 on port 0xf4, or 2 on an unexpected exception.
 *
 * Virtual layout: 0-4 MiB identity (4 KiB pages, the user code and stack
 * pages user-accessible), 4-8 MiB identity (one 4 MiB page), and the test
 * window at 0x40000000 (4 KiB pages), with a 4 MiB alias of 4-8 MiB at
 * 0x40400000.
 */

#include "hw.h"
#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003
#include "lib32.inc"

#define WIN	0x40000000	/* the test window */
#define BIG	0x40400000	/* 4 MiB alias of physical 4-8 MiB */
#define NSPACES	16		/* address spaces of the CR3 test */
#define ROUNDS	4

	.section .multiboot, "a"
	.balign 4
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)

	.text
	.globl	_start
_start:
	movl	$stack_top, %esp
	call	idt_init32
	PRINT	"paging32: two-level paging with 4 KiB and 4 MiB pages\n"
	call	build_tables
	movl	$pd, %eax
	movl	%eax, %cr3
	movl	%cr4, %eax
	orl	$CR4_PSE, %eax
	movl	%eax, %cr4
	movl	%cr0, %eax
	orl	$(CR0_PG | CR0_WP), %eax
	movl	%eax, %cr0

	call	test_large
	call	test_remap
	call	test_ad
	call	test_wp
	call	test_user
	call	test_cr3

	PRINT	"paging32: done\n"
	movb	$0, %al
	jmp	exit

/* build_tables: the kernel's directory and tables, paging still off. */
build_tables:
	/* pt_low: identity 0-4 MiB, supervisor; user pages get US. */
	xorl	%ecx, %ecx
1:	movl	%ecx, %eax
	shll	$12, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pt_low(,%ecx,4)
	incl	%ecx
	cmpl	$1024, %ecx
	jne	1b
	movl	$user_code, %eax
	shrl	$12, %eax
	orl	$PTE_US, pt_low(,%eax,4)
	movl	$user_stack, %eax
	shrl	$12, %eax
	orl	$PTE_US, pt_low(,%eax,4)
	/* pd: the directory of every address space starts like this. */
	movl	$pt_low, %eax
	orl	$(PTE_P | PTE_RW | PTE_US), %eax
	movl	%eax, pd
	movl	$(0x400000 | PTE_P | PTE_RW | PTE_PS), pd + 4		/* 4-8 MiB */
	movl	$pt_win, %eax
	orl	$(PTE_P | PTE_RW | PTE_US), %eax
	movl	%eax, pd + (WIN >> 22) * 4
	movl	$(0x400000 | PTE_P | PTE_RW | PTE_PS), pd + (BIG >> 22) * 4
	/* The frames the window maps, each with its marker at offset 0. */
	movl	$0xaaaa0001, frame_a
	movl	$0xbbbb0002, frame_b
	movl	$0xcccc0003, frame_c
	movl	$0xdddd0004, frame_d
	movl	$0xeeee0005, frame_e
	movl	$0xffff0006, frame_f
	movl	$0x11110007, frame_u1
	movl	$0x22220008, frame_u2
	movl	$0x33330009, frame_s
	ret

/* Large pages: the alias reads what the identity map wrote; A, then D,
 * appear in the 4 MiB PDE once it is read, then written. */
test_large:
	PRINT	"4 MiB page: "
	movl	$0x5a5a1234, 0x401234
	movl	BIG + 0x1234, %eax
	HEX	%eax
	PRINT	" pde after read="
	movl	pd + (BIG >> 22) * 4, %eax
	andl	$(PTE_A | PTE_D), %eax
	HEX	%eax
	movl	$0x6b6b5678, BIG + 0x1238
	PRINT	" after write="
	movl	pd + (BIG >> 22) * 4, %eax
	andl	$(PTE_A | PTE_D), %eax
	HEX	%eax
	PRINT	" identity sees "
	movl	0x401238, %eax
	HEX	%eax
	PRINT	"\n"
	ret

/* Remapping WIN: INVLPG and a CR3 reload must make the new frame visible. */
test_remap:
	PRINT	"remap: "
	movl	$frame_a, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pt_win
	invlpg	WIN
	movl	WIN, %eax
	HEX	%eax
	movl	$frame_b, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pt_win
	invlpg	WIN
	PRINT	" invlpg="
	movl	WIN, %eax
	HEX	%eax
	/* Remap without INVLPG: either frame may be read; not printed. */
	movl	$frame_c, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pt_win
	movl	WIN, %eax
	invlpg	WIN
	PRINT	" late invlpg="
	movl	WIN, %eax
	HEX	%eax
	movl	$frame_d, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pt_win
	movl	%cr3, %eax
	movl	%eax, %cr3
	PRINT	" cr3 reload="
	movl	WIN, %eax
	HEX	%eax
	PRINT	"\n"
	/* Unmapped: a read, then a write, fault with CR2 = WIN + offset. */
	movl	$0, pt_win
	invlpg	WIN
	PRINT	"not present read:\n"
	ARM	1f
	movl	WIN + 0x10, %eax
1:	DISARM
	PRINT	"not present write:\n"
	ARM	2f
	movl	%eax, WIN + 0x24
2:	DISARM
	ret

/* Accessed and dirty bits in a 4 KiB PTE, and A in its PDE. */
test_ad:
	PRINT	"a/d: "
	movl	$frame_e, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pt_win + 4
	invlpg	WIN + 0x1000
	movl	WIN + 0x1000, %eax
	movl	pt_win + 4, %eax
	andl	$(PTE_A | PTE_D), %eax
	PRINT	"after read="
	HEX	%eax
	movl	$0x77, WIN + 0x1004
	movl	pt_win + 4, %eax
	andl	$(PTE_A | PTE_D), %eax
	PRINT	" after write="
	HEX	%eax
	PRINT	" pde a="
	movl	pd + (WIN >> 22) * 4, %eax
	andl	$PTE_A, %eax
	HEX	%eax
	/* Clear both and write straight away: the walk sets A and D. */
	andl	$~(PTE_A | PTE_D), pt_win + 4
	invlpg	WIN + 0x1000
	movl	$0x78, WIN + 0x1008
	movl	pt_win + 4, %eax
	andl	$(PTE_A | PTE_D), %eax
	PRINT	" write only="
	HEX	%eax
	PRINT	"\n"
	ret

/* CR0.WP: a supervisor write to a read-only page. */
test_wp:
	movl	$frame_f, %eax
	orl	$PTE_P, %eax
	movl	%eax, pt_win + 8
	invlpg	WIN + 0x2000
	movl	%cr0, %eax
	andl	$~CR0_WP, %eax
	movl	%eax, %cr0
	PRINT	"wp=0 supervisor write to read-only: "
	ARM	1f
	movl	$0x12345678, WIN + 0x2000
1:	DISARM
	movl	WIN + 0x2000, %eax
	HEX	%eax
	PRINT	"\n"
	movl	%cr0, %eax
	orl	$CR0_WP, %eax
	movl	%eax, %cr0
	PRINT	"wp=1 supervisor write to read-only:\n"
	ARM	2f
	movl	$0x9abcdef0, WIN + 0x2000
2:	DISARM
	PRINT	"  value "
	movl	WIN + 0x2000, %eax
	HEX	%eax
	PRINT	"\n"
	ret

/* Ring 3: enter user code at EBX with IRET; it ends in a page fault. */
to_user:
	movw	$SEL_UDATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	pushl	$SEL_UDATA32
	pushl	$user_stack_top
	pushl	$0x2
	pushl	$SEL_UCODE32
	pushl	%ebx
	iret

test_user:
	movl	$frame_u1, %eax
	orl	$(PTE_P | PTE_RW | PTE_US), %eax
	movl	%eax, pt_win + 12		/* WIN+0x3000: user, writable */
	movl	$frame_u2, %eax
	orl	$(PTE_P | PTE_US), %eax
	movl	%eax, pt_win + 16		/* WIN+0x4000: user, read-only */
	movl	$frame_s, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pt_win + 20		/* WIN+0x5000: supervisor */
	movl	$0, pt_win + 24			/* WIN+0x6000: not present */
	movl	%cr3, %eax
	movl	%eax, %cr3
	PRINT	"user write to a read-only user page:\n"
	movl	$user_rw, %ebx
	ARM	1f
	call	to_user
1:	DISARM
	PRINT	"  user wrote "
	HEX	frame_u1 + 4
	PRINT	" "
	HEX	frame_u1 + 8
	PRINT	"\nuser read of a supervisor page:\n"
	movl	$user_read, %ebx
	movl	$(WIN + 0x5000), %ecx
	ARM	2f
	call	to_user
2:	DISARM
	PRINT	"user read of a not-present page:\n"
	movl	$user_read, %ebx
	movl	$(WIN + 0x6000), %ecx
	ARM	3f
	call	to_user
3:	DISARM
	PRINT	"user write to a not-present page:\n"
	movl	$user_write, %ebx
	movl	$(WIN + 0x6ffc), %ecx
	ARM	4f
	call	to_user
4:	DISARM
	PRINT	"user write to a supervisor page:\n"
	movl	$user_write, %ebx
	movl	$(WIN + 0x5008), %ecx
	ARM	5f
	call	to_user
5:	DISARM
	ret

/* CR3 switches: NSPACES directories share the kernel's mappings and each
 * maps WIN to its own table; every round points each space at another
 * frame (while another space is current) and reads WIN in every space. */
test_cr3:
	pushl	%ebp
	xorl	%ecx, %ecx			/* the frames' markers */
1:	movl	%ecx, %eax
	imull	$0x01010101, %eax
	xorl	$0xc0de0000, %eax
	movl	%ecx, %edx
	shll	$12, %edx
	movl	%eax, fr_as(%edx)
	/* pd_as[i] = pd, with WIN through pt_as[i]. */
	pushl	%ecx
	leal	pd_as(%edx), %edi
	movl	$pd, %esi
	movl	$1024, %ecx
	rep movsl
	popl	%ecx
	leal	pt_as(%edx), %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pd_as + (WIN >> 22) * 4(%edx)
	incl	%ecx
	cmpl	$NSPACES, %ecx
	jne	1b

	xorl	%ebp, %ebp			/* mismatches */
	xorl	%edi, %edi			/* sum */
	xorl	%ebx, %ebx			/* round */
2:	xorl	%ecx, %ecx			/* space i maps frame (i + round) % N */
3:	movl	%ecx, %eax
	addl	%ebx, %eax
	andl	$(NSPACES - 1), %eax
	shll	$12, %eax
	addl	$fr_as, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%ecx, %edx
	shll	$12, %edx
	movl	%eax, pt_as(%edx)
	incl	%ecx
	cmpl	$NSPACES, %ecx
	jne	3b
	xorl	%ecx, %ecx
4:	movl	%ecx, %edx
	shll	$12, %edx
	leal	pd_as(%edx), %eax
	movl	%eax, %cr3
	movl	WIN, %eax
	addl	%eax, %edi
	movl	%ecx, %edx			/* expected: marker (i + round) % N */
	addl	%ebx, %edx
	andl	$(NSPACES - 1), %edx
	imull	$0x01010101, %edx
	xorl	$0xc0de0000, %edx
	cmpl	%edx, %eax
	je	5f
	incl	%ebp
5:	incl	%ecx
	cmpl	$NSPACES, %ecx
	jne	4b
	incl	%ebx
	cmpl	$ROUNDS, %ebx
	jne	2b
	movl	$pd, %eax
	movl	%eax, %cr3
	PRINT	"cr3 switches: spaces=16 rounds=4 mismatches="
	HEX	%ebp
	PRINT	" sum="
	HEX	%edi
	PRINT	"\n"
	popl	%ebp
	ret

/* Ring-3 code, on a page of its own that pt_low makes user-accessible.
 * Each entry ends with the fault under test; UD2 catches a missing one. */
	.section .text.user, "ax"
	.balign	4096
user_code:
user_rw:
	movl	WIN + 0x3000, %eax
	incl	%eax
	movl	%eax, WIN + 0x3004		/* user, writable: fine */
	movl	WIN + 0x4000, %eax
	movl	%eax, WIN + 0x3008		/* user, read-only: reading is fine */
	movl	%eax, WIN + 0x4000		/* ... writing faults */
	ud2
user_read:
	movl	(%ecx), %eax
	ud2
user_write:
	movl	%eax, (%ecx)
	ud2
	.balign	4096

	.bss
	.balign	4096
pd:		.skip	4096
pt_low:		.skip	4096
pt_win:		.skip	4096
frame_a:	.skip	4096
frame_b:	.skip	4096
frame_c:	.skip	4096
frame_d:	.skip	4096
frame_e:	.skip	4096
frame_f:	.skip	4096
frame_u1:	.skip	4096
frame_u2:	.skip	4096
frame_s:	.skip	4096
user_stack:	.skip	4096
user_stack_top:
pd_as:		.skip	4096 * NSPACES
pt_as:		.skip	4096 * NSPACES
fr_as:		.skip	4096 * NSPACES
		.skip	4096
stack_top:

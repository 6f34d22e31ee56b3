/* SPDX-License-Identifier: GPL-2.0 */
/*
 * paging64.S - a differential guest: 4-level long-mode paging.
 *
 * A static ELF64 image (started in long mode over the VMM's identity map)
 * that switches to page tables of its own and prints, on COM1, what the
 * architecture guarantees about them:
 *
 *   - 2 MiB and 1 GiB pages, and the A/D bits of their entries;
 *   - remapping a page: after INVLPG or a CR3 reload the new mapping is
 *     seen (what is read without INVLPG is not printed);
 *   - accessed and dirty bits set by the CPU in a 4 KiB PTE;
 *   - CR0.WP for supervisor writes to read-only pages;
 *   - NX (EFER.NXE=1): fetching from an NX page faults with I/D set,
 *     reading it does not, and clearing NX makes it executable;
 *   - ring 3 entered with IRETQ: user accesses to read-only, supervisor
 *     and not-present pages fault with the user bit in the error code;
 *   - page-fault error codes and CR2, printed by the guest's own handler;
 *   - CR3 switches among 16 address spaces for 4 rounds.
 *
 * Ends with status 0 on port 0xf4, or 2 on an unexpected exception.
 *
 * Virtual layout: 0-2 MiB identity in 4 KiB pages (the user code and
 * stack pages user-accessible), 2 MiB-1 GiB identity in 2 MiB pages, the
 * test window at 1 GiB (4 KiB pages) with a 2 MiB alias of physical
 * 4-6 MiB at WIN + 2 MiB, a 1 GiB alias of physical 0-1 GiB at 2 GiB, and
 * each address space's own page at 512 GiB.
 */

#include "hw.h"
#include "lib64.inc"

#define WIN	0x40000000		/* 1 GiB: the test window */
#define BIG2M	(WIN + 0x200000)	/* 2 MiB alias of physical 4 MiB */
#define BIG1G	0x80000000		/* 1 GiB alias of physical 0 */
#define SPACE	0x8000000000		/* 512 GiB: per-space page */
#define NSPACES	16
#define ROUNDS	4

/* SETPTE table, index, frame, flags: table[index] = frame | flags. */
.macro SETPTE table, index, frame, flags
	leaq	\frame(%rip), %rax
	orq	$\flags, %rax
	movq	%rax, \table + 8 * \index(%rip)
.endm

	.text
	.globl	_start
_start:
	leaq	stack_top(%rip), %rsp
	call	idt_init64
	PRINT	"paging64: 4-level paging with 4 KiB, 2 MiB and 1 GiB pages\n"
	call	build_tables
	leaq	pml4(%rip), %rax
	movq	%rax, %cr3
	/* NX on for the NX test (the boot state leaves EFER.NXE clear). */
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_NXE, %eax
	wrmsr

	call	test_large
	call	test_remap
	call	test_ad
	call	test_wp
	call	test_nx
	call	test_user
	call	test_cr3

	PRINT	"paging64: done\n"
	movb	$0, %al
	jmp	exit

build_tables:
	/* pt0: identity 0-2 MiB, supervisor, except the user pages. */
	xorl	%ecx, %ecx
	leaq	pt0(%rip), %rdi
1:	movq	%rcx, %rax
	shlq	$12, %rax
	orq	$(PTE_P | PTE_RW), %rax
	movq	%rax, (%rdi,%rcx,8)
	incl	%ecx
	cmpl	$512, %ecx
	jne	1b
	leaq	user_code(%rip), %rax
	shrq	$12, %rax
	orq	$PTE_US, (%rdi,%rax,8)
	leaq	user_stack(%rip), %rax
	shrq	$12, %rax
	orq	$PTE_US, (%rdi,%rax,8)
	/* pd0: pt0, then 2 MiB identity pages up to 1 GiB. */
	leaq	pd0(%rip), %rdi
	leaq	pt0(%rip), %rax
	orq	$(PTE_P | PTE_RW | PTE_US), %rax
	movq	%rax, (%rdi)
	movl	$1, %ecx
2:	movq	%rcx, %rax
	shlq	$21, %rax
	orq	$(PTE_P | PTE_RW | PTE_PS), %rax
	movq	%rax, (%rdi,%rcx,8)
	incl	%ecx
	cmpl	$512, %ecx
	jne	2b
	SETPTE	pdpt0, 0, pd0, PTE_P | PTE_RW | PTE_US
	SETPTE	pdpt0, 1, pd_win, PTE_P | PTE_RW | PTE_US
	movq	$(0 | PTE_P | PTE_RW | PTE_PS), pdpt0 + 16(%rip)		/* 1 GiB page */
	SETPTE	pd_win, 0, pt_win, PTE_P | PTE_RW | PTE_US
	movq	$(0x400000 | PTE_P | PTE_RW | PTE_PS), pd_win + 8(%rip)	/* 2 MiB page */
	SETPTE	pml4, 0, pdpt0, PTE_P | PTE_RW | PTE_US
	/* Markers. */
	movl	$0xaaaa0001, frame_a(%rip)
	movl	$0xbbbb0002, frame_b(%rip)
	movl	$0xcccc0003, frame_c(%rip)
	movl	$0xdddd0004, frame_d(%rip)
	movl	$0xeeee0005, frame_e(%rip)
	movl	$0xffff0006, frame_f(%rip)
	movl	$0x11110007, frame_u1(%rip)
	movl	$0x22220008, frame_u2(%rip)
	movl	$0x33330009, frame_s(%rip)
	ret

test_large:
	PRINT	"2 MiB page: "
	movl	$0x5a5a1234, 0x401234
	movl	BIG2M + 0x1234, %eax
	HEX	%eax
	PRINT	" pde after read="
	movq	pd_win + 8(%rip), %rax
	andl	$(PTE_A | PTE_D), %eax
	HEX	%eax
	movl	$0x6b6b5678, BIG2M + 0x1238
	PRINT	" after write="
	movq	pd_win + 8(%rip), %rax
	andl	$(PTE_A | PTE_D), %eax
	HEX	%eax
	PRINT	"\n1 GiB page: "
	movl	$(BIG1G + 0x401238), %ebx	/* zero-extended: 2 GiB + ... */
	movl	(%rbx), %eax
	HEX	%eax
	PRINT	" pdpte after read="
	movq	pdpt0 + 16(%rip), %rax
	andl	$(PTE_A | PTE_D), %eax
	HEX	%eax
	movl	$0x7c7c9abc, 4(%rbx)
	PRINT	" after write="
	movq	pdpt0 + 16(%rip), %rax
	andl	$(PTE_A | PTE_D), %eax
	HEX	%eax
	PRINT	" identity sees "
	movl	0x40123c, %eax
	HEX	%eax
	PRINT	"\n"
	ret

test_remap:
	PRINT	"remap: "
	SETPTE	pt_win, 0, frame_a, PTE_P | PTE_RW
	invlpg	WIN
	movl	WIN, %eax
	HEX	%eax
	SETPTE	pt_win, 0, frame_b, PTE_P | PTE_RW
	invlpg	WIN
	PRINT	" invlpg="
	movl	WIN, %eax
	HEX	%eax
	/* Without INVLPG either frame may be read: not printed. */
	SETPTE	pt_win, 0, frame_c, PTE_P | PTE_RW
	movl	WIN, %eax
	invlpg	WIN
	PRINT	" late invlpg="
	movl	WIN, %eax
	HEX	%eax
	SETPTE	pt_win, 0, frame_d, PTE_P | PTE_RW
	movq	%cr3, %rax
	movq	%rax, %cr3
	PRINT	" cr3 reload="
	movl	WIN, %eax
	HEX	%eax
	PRINT	"\n"
	movq	$0, pt_win(%rip)
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

test_ad:
	PRINT	"a/d: "
	SETPTE	pt_win, 1, frame_e, PTE_P | PTE_RW
	invlpg	WIN + 0x1000
	movl	WIN + 0x1000, %eax
	movq	pt_win + 8(%rip), %rax
	andl	$(PTE_A | PTE_D), %eax
	PRINT	"after read="
	HEX	%eax
	movl	$0x77, WIN + 0x1004
	movq	pt_win + 8(%rip), %rax
	andl	$(PTE_A | PTE_D), %eax
	PRINT	" after write="
	HEX	%eax
	PRINT	" upper a="
	movq	pml4(%rip), %rax
	andl	$PTE_A, %eax
	movq	pdpt0 + 8(%rip), %rdx
	andl	$PTE_A, %edx
	orl	%edx, %eax
	movq	pd_win(%rip), %rdx
	andl	$PTE_A, %edx
	orl	%edx, %eax
	HEX	%eax
	andq	$~(PTE_A | PTE_D), pt_win + 8(%rip)
	invlpg	WIN + 0x1000
	movl	$0x78, WIN + 0x1008
	movq	pt_win + 8(%rip), %rax
	andl	$(PTE_A | PTE_D), %eax
	PRINT	" write only="
	HEX	%eax
	PRINT	"\n"
	ret

test_wp:
	SETPTE	pt_win, 2, frame_f, PTE_P
	invlpg	WIN + 0x2000
	movq	%cr0, %rax
	andq	$~CR0_WP, %rax
	movq	%rax, %cr0
	PRINT	"wp=0 supervisor write to read-only: "
	ARM	1f
	movl	$0x12345678, WIN + 0x2000
1:	DISARM
	movl	WIN + 0x2000, %eax
	HEX	%eax
	PRINT	"\n"
	movq	%cr0, %rax
	orq	$CR0_WP, %rax
	movq	%rax, %cr0
	PRINT	"wp=1 supervisor write to read-only:\n"
	ARM	2f
	movl	$0x9abcdef0, WIN + 0x2000
2:	DISARM
	PRINT	"  value "
	movl	WIN + 0x2000, %eax
	HEX	%eax
	PRINT	"\n"
	ret

/* NX: a page holding "mov $0x4e58, %eax; ret", executable or not. */
test_nx:
	leaq	nx_code(%rip), %rsi
	leaq	frame_x(%rip), %rdi
	movl	$(nx_code_end - nx_code), %ecx
	rep movsb
	leaq	frame_x(%rip), %rax
	movabsq	$PTE_NX, %rdx
	orq	%rdx, %rax
	orq	$(PTE_P | PTE_RW), %rax
	movq	%rax, pt_win + 8 * 7(%rip)
	invlpg	WIN + 0x7000
	PRINT	"nx data read: "
	movl	WIN + 0x7000, %eax
	HEX	%eax
	PRINT	"\nnx fetch:\n"
	movl	$(WIN + 0x7000), %ebx
	ARM	1f
	call	*%rbx
1:	DISARM
	/* Executable again. */
	btrq	$63, pt_win + 8 * 7(%rip)
	invlpg	WIN + 0x7000
	PRINT	"executable again: "
	xorl	%eax, %eax
	movl	$(WIN + 0x7000), %ebx		/* the fault handler clobbered it */
	call	*%rbx
	HEX	%eax
	PRINT	"\n"
	ret
nx_code:
	movl	$0x4e58, %eax
	ret
nx_code_end:

/* Ring 3: IRETQ to user code at RBX; it ends in a page fault. */
to_user:
	pushq	$SEL_UDATA
	leaq	user_stack_top(%rip), %rax
	pushq	%rax
	pushq	$0x2
	pushq	$SEL_UCODE64
	pushq	%rbx
	iretq

test_user:
	SETPTE	pt_win, 3, frame_u1, PTE_P | PTE_RW | PTE_US
	SETPTE	pt_win, 4, frame_u2, PTE_P | PTE_US
	SETPTE	pt_win, 5, frame_s, PTE_P | PTE_RW
	movq	$0, pt_win + 8 * 6(%rip)
	movq	%cr3, %rax
	movq	%rax, %cr3
	PRINT	"user write to a read-only user page:\n"
	leaq	user_rw(%rip), %rbx
	ARM	1f
	call	to_user
1:	DISARM
	PRINT	"  user wrote "
	HEX	frame_u1 + 4(%rip)
	PRINT	" "
	HEX	frame_u1 + 8(%rip)
	PRINT	"\nuser read of a supervisor page:\n"
	leaq	user_read(%rip), %rbx
	movl	$(WIN + 0x5000), %ecx
	ARM	2f
	call	to_user
2:	DISARM
	PRINT	"user read of a not-present page:\n"
	leaq	user_read(%rip), %rbx
	movl	$(WIN + 0x6000), %ecx
	ARM	3f
	call	to_user
3:	DISARM
	PRINT	"user write to a not-present page:\n"
	leaq	user_write(%rip), %rbx
	movl	$(WIN + 0x6ffc), %ecx
	ARM	4f
	call	to_user
4:	DISARM
	PRINT	"user fetch from a supervisor page:\n"
	movl	$(WIN + 0x5000), %ebx
	ARM	5f
	call	to_user
5:	DISARM
	ret

/* CR3 switches, as in paging32.S: NSPACES PML4s share entry 0 and map
 * SPACE through their own PDPT, PD and PT to a frame that changes each
 * round while another space is current. */
test_cr3:
	xorl	%ecx, %ecx
1:	movq	%rcx, %rdx
	shlq	$12, %rdx
	movl	%ecx, %eax
	imull	$0x01010101, %eax
	xorl	$0xc0de0000, %eax
	leaq	fr_as(%rip), %rdi
	movl	%eax, (%rdi,%rdx)
	/* pml4_as[i]: entry 0 as the kernel's, entry 1 -> pdpt_as[i]. */
	leaq	pml4_as(%rip), %rdi
	addq	%rdx, %rdi
	movq	pml4(%rip), %rax
	movq	%rax, (%rdi)
	leaq	pdpt_as(%rip), %rax
	addq	%rdx, %rax
	orq	$(PTE_P | PTE_RW), %rax
	movq	%rax, 8(%rdi)
	leaq	pdpt_as(%rip), %rdi
	addq	%rdx, %rdi
	leaq	pd_as(%rip), %rax
	addq	%rdx, %rax
	orq	$(PTE_P | PTE_RW), %rax
	movq	%rax, (%rdi)
	leaq	pd_as(%rip), %rdi
	addq	%rdx, %rdi
	leaq	pt_as(%rip), %rax
	addq	%rdx, %rax
	orq	$(PTE_P | PTE_RW), %rax
	movq	%rax, (%rdi)
	incl	%ecx
	cmpl	$NSPACES, %ecx
	jne	1b

	xorl	%ebp, %ebp			/* mismatches */
	xorl	%r12d, %r12d			/* sum */
	xorl	%ebx, %ebx			/* round */
	movabsq	$SPACE, %r13
2:	xorl	%ecx, %ecx
3:	movl	%ecx, %eax			/* pt_as[i][0] = frame (i + round) % N */
	addl	%ebx, %eax
	andl	$(NSPACES - 1), %eax
	shlq	$12, %rax
	leaq	fr_as(%rip), %rdx
	addq	%rdx, %rax
	orq	$(PTE_P | PTE_RW), %rax
	movq	%rcx, %rdx
	shlq	$12, %rdx
	leaq	pt_as(%rip), %rdi
	movq	%rax, (%rdi,%rdx)
	incl	%ecx
	cmpl	$NSPACES, %ecx
	jne	3b
	xorl	%ecx, %ecx
4:	movq	%rcx, %rdx
	shlq	$12, %rdx
	leaq	pml4_as(%rip), %rax
	addq	%rdx, %rax
	movq	%rax, %cr3
	movl	(%r13), %eax
	addl	%eax, %r12d
	movl	%ecx, %edx
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
	leaq	pml4(%rip), %rax
	movq	%rax, %cr3
	PRINT	"cr3 switches: spaces=16 rounds=4 mismatches="
	HEX	%ebp
	PRINT	" sum="
	HEX	%r12d
	PRINT	"\n"
	ret

	.section .text.user, "ax"
	.balign	4096
user_code:
user_rw:
	movl	WIN + 0x3000, %eax
	incl	%eax
	movl	%eax, WIN + 0x3004
	movl	WIN + 0x4000, %eax
	movl	%eax, WIN + 0x3008
	movl	%eax, WIN + 0x4000		/* read-only: faults */
	ud2
user_read:
	movl	(%rcx), %eax
	ud2
user_write:
	movl	%eax, (%rcx)
	ud2
	.balign	4096

	.bss
	.balign	4096
pml4:		.skip	4096
pdpt0:		.skip	4096
pd0:		.skip	4096
pt0:		.skip	4096
pd_win:		.skip	4096
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
frame_x:	.skip	4096
user_stack:	.skip	4096
user_stack_top:
pml4_as:	.skip	4096 * NSPACES
pdpt_as:	.skip	4096 * NSPACES
pd_as:		.skip	4096 * NSPACES
pt_as:		.skip	4096 * NSPACES
fr_as:		.skip	4096 * NSPACES
		.skip	8192
stack_top:

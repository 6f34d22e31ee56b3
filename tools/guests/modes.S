/* SPDX-License-Identifier: GPL-2.0 */
/*
 * modes.S - a differential guest: every paging mode, and the switches
 * between them at run time.
 *
 * A Multiboot v1 kernel (so it starts in 32-bit protected mode, paging
 * off) that walks through
 *
 *   protected mode -> real mode -> protected mode -> two-level paging
 *   with 4 MiB pages -> PAE with 2 MiB pages and NX -> long mode with a
 *   1 GiB page -> compatibility mode -> protected mode -> two-level paging
 *   again -> real mode -> protected mode
 *
 * and in each mode prints the mode bits (CR0.PG/PE, CR4.PSE/PAE,
 * EFER.LME/LMA/NXE) and what a few accesses see: a marker read through a
 * large page, the same address after a remap and INVLPG, and page faults
 * (error code and CR2) for a not-present page, a not-present PAE PDPTE
 * and an NX fetch. Nothing printed depends on the VMM beyond the
 * architecture. Ends with status 0 on port 0xf4, 2 on an unexpected
 * exception; an exception in real or long mode (which have no handlers
 * here) is a triple fault, status 124.
 *
 * Physical memory used besides the image: the real-mode trampoline is
 * copied to 0x7000 (real mode runs below 64 KiB), its stack ends at
 * 0x6000, the real-mode test word is at 0x12350, markers at 0x405678 and
 * 0x805678, NX code at 0x600000.
 */

#include "hw.h"
#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003
#include "lib32.inc"

#define TRAMP	0x7000		/* where the real-mode code runs */
#define RM(x)	((x) - tramp + TRAMP)
#define MARK1	0x405678
#define MARK2	0x805678
#define WIN	0x40000000
#define NXCODE	0x600000

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
	PRINT	"modes: real, protected, two-level, PAE and long mode, and back\n"
	movl	$0x4d4d0001, MARK1
	movl	$0x4d4d0002, MARK2
	movl	$nx_code, %esi			/* mov $0x4e58, %eax; ret */
	movl	$NXCODE, %edi
	movl	$(nx_code_end - nx_code), %ecx
	rep movsb

	PRINT	"protected mode: "
	call	state
	PRINT	"\n"
	call	real_mode
	PRINT	"protected mode again: "
	call	state
	PRINT	"\n"
	call	two_level
	call	pae
	call	long_mode
	PRINT	"protected mode after long mode: "
	call	state
	PRINT	"\n"
	call	two_level
	call	real_mode
	PRINT	"modes: done\n"
	movb	$0, %al
	jmp	exit

/* state: print the mode bits. Also runs in 64-bit mode (no PUSHA, no
 * 32-bit-only encodings), where long_mode calls it. */
state:
	pushl	%eax
	pushl	%ecx
	pushl	%edx
	pushl	%esi
	movl	$s_cr0, %esi
	call	puts
	movl	%cr0, %eax
	andl	$(CR0_PG | CR0_PE), %eax
	call	puthex
	movl	$s_cr4, %esi
	call	puts
	movl	%cr4, %eax
	andl	$(CR4_PSE | CR4_PAE), %eax
	call	puthex
	movl	$s_efer, %esi
	call	puts
	movl	$MSR_EFER, %ecx
	rdmsr
	andl	$(EFER_LME | EFER_LMA | EFER_NXE), %eax
	call	puthex
	popl	%esi
	popl	%edx
	popl	%ecx
	popl	%eax
	ret

/* Two-level paging: 4 MiB identity pages for 0-12 MiB and WIN -> 4 MiB. */
two_level:
	movl	$(0x000000 | PTE_P | PTE_RW | PTE_PS), pd32
	movl	$(0x400000 | PTE_P | PTE_RW | PTE_PS), pd32 + 4
	movl	$(0x800000 | PTE_P | PTE_RW | PTE_PS), pd32 + 8
	movl	$(0x400000 | PTE_P | PTE_RW | PTE_PS), pd32 + (WIN >> 22) * 4
	movl	$CR4_PSE, %eax
	movl	%eax, %cr4
	movl	$pd32, %eax
	movl	%eax, %cr3
	movl	%cr0, %eax
	orl	$CR0_PG, %eax
	movl	%eax, %cr0
	PRINT	"two-level paging: "
	call	state
	PRINT	" 4M read="
	HEX	WIN + (MARK1 & 0x3fffff)
	movl	$(0x800000 | PTE_P | PTE_RW | PTE_PS), pd32 + (WIN >> 22) * 4
	invlpg	WIN + (MARK1 & 0x3fffff)
	PRINT	" remapped="
	HEX	WIN + (MARK2 & 0x3fffff)
	PRINT	"\n"
	ARM	1f
	movl	0x50000000, %eax
1:	DISARM
	movl	%cr0, %eax
	andl	$~CR0_PG, %eax
	movl	%eax, %cr0
	ret

/* PAE: 2 MiB identity pages for 0-16 MiB; WIN -> 4 MiB; WIN + 2 MiB ->
 * the NX code page; PDPTE 2 (2-3 GiB) not present. */
pae:
	xorl	%ecx, %ecx
1:	movl	%ecx, %eax
	shll	$21, %eax
	orl	$(PTE_P | PTE_RW | PTE_PS), %eax
	movl	%eax, pd_pae0(,%ecx,8)
	incl	%ecx
	cmpl	$8, %ecx
	jne	1b
	movl	$(0x400000 | PTE_P | PTE_RW | PTE_PS), pd_pae1
	movl	$(NXCODE | PTE_P | PTE_RW | PTE_PS), pd_pae1 + 8
	movl	$0x80000000, pd_pae1 + 12		/* NX, bit 63 */
	/* PAE PDPTEs have no RW/US bits: those are reserved. */
	movl	$pd_pae0, %eax
	orl	$PTE_P, %eax
	movl	%eax, pdpt_pae
	movl	$pd_pae1, %eax
	orl	$PTE_P, %eax
	movl	%eax, pdpt_pae + 8
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_NXE, %eax
	wrmsr
	movl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pdpt_pae, %eax
	movl	%eax, %cr3
	movl	%cr0, %eax
	orl	$CR0_PG, %eax
	movl	%eax, %cr0
	PRINT	"PAE paging: "
	call	state
	PRINT	" 2M read="
	HEX	WIN + (MARK1 & 0x1fffff)
	movl	$(0x800000 | PTE_P | PTE_RW | PTE_PS), pd_pae1
	invlpg	WIN + (MARK1 & 0x1fffff)
	PRINT	" remapped="
	HEX	WIN + (MARK2 & 0x1fffff)
	PRINT	" nx data read="
	HEX	WIN + 0x200000
	PRINT	"\nPAE NX fetch:\n"
	ARM	2f
	movl	$(WIN + 0x200000), %eax
	call	*%eax
2:	DISARM
	PRINT	"PAE not-present PDPTE:\n"
	ARM	3f
	movl	0x80000000, %eax
3:	DISARM
	movl	%cr0, %eax
	andl	$~CR0_PG, %eax
	movl	%eax, %cr0
	ret

/* Long mode over PAE's page directories, plus a 1 GiB page at 2 GiB;
 * then back through compatibility mode to protected mode. */
long_mode:
	movl	$pdpt_lm, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pml4
	movl	$pd_pae0, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pdpt_lm
	movl	$pd_pae1, %eax
	orl	$(PTE_P | PTE_RW), %eax
	movl	%eax, pdpt_lm + 8
	movl	$(0 | PTE_P | PTE_RW | PTE_PS), pdpt_lm + 16	/* 1 GiB page */
	movl	$CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_LME, %eax
	wrmsr
	lidt	null_idt			/* no handlers in long mode */
	movl	%cr0, %eax
	orl	$CR0_PG, %eax
	movl	%eax, %cr0			/* LMA: compatibility mode */
	ljmp	$SEL_CODE64, $lm64

	.code64
lm64:
	movl	%esp, %esp			/* zero-extend RSP */
	movl	$s_long, %esi
	call	puts
	call	state
	movl	$s_1g, %esi
	call	puts
	movl	$(0x80000000 + MARK1), %ebx	/* zero-extended: above 2 GiB */
	movl	(%rbx), %eax
	call	puthex
	movl	$s_2m, %esi
	call	puts
	movl	$(WIN + (MARK2 & 0x1fffff)), %ebx
	movl	(%rbx), %eax
	call	puthex
	movl	$s_nl, %esi
	call	puts
	/* To compatibility mode: a far return to the 32-bit code segment. */
	pushq	$SEL_CODE32
	movl	$compat, %eax			/* zero-extended */
	pushq	%rax
	lretq

	.code32
compat:
	movl	%cr0, %eax			/* paging off leaves long mode */
	andl	$~CR0_PG, %eax
	movl	%eax, %cr0
	movl	$MSR_EFER, %ecx
	rdmsr
	andl	$~EFER_LME, %eax
	wrmsr
	lidt	idt32_desc
	ret

/* Real mode: through a 16-bit protected-mode segment to real mode at
 * TRAMP, where the trampoline prints, and back. */
real_mode:
	pushal
	movl	%esp, saved_esp
	movl	$tramp, %esi
	movl	$TRAMP, %edi
	movl	$(tramp_end - tramp), %ecx
	rep movsb
	ljmp	$SEL_CODE16, $RM(pm16)
rm_back:
	movw	$SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	saved_esp, %esp
	lidt	idt32_desc
	popal
	ret

/* The trampoline: copied to TRAMP; every address in it is RM(label). */
	.code16
tramp:
pm16:
	movw	$SEL_DATA16, %ax		/* real-mode-like limits first */
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	%cr0, %eax
	andl	$~CR0_PE, %eax
	movl	%eax, %cr0
	ljmp	$0, $RM(rm)
rm:
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x6000, %sp
	lidt	RM(rm_idt)
	movw	$RM(s_real), %si
	call	puts16
	/* Segment arithmetic: 1234:0010 and 1000:2350 are both 0x12350. */
	movw	$0x1234, %ax
	movw	%ax, %es
	movw	$0xbeef, %es:0x10
	movw	$0x1000, %ax
	movw	%ax, %es
	movw	%es:0x2350, %ax
	call	hex16
	movw	$RM(s_pe), %si
	call	puts16
	movl	%cr0, %eax
	andw	$CR0_PE, %ax
	call	hex16
	movw	$RM(s_nl16), %si
	call	puts16
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $rm_back

/* putc16: AL on COM1. puts16: the string at DS:SI. hex16: AX, 4 digits. */
putc16:
	pushw	%dx
	pushw	%ax
	movw	$COM1_LSR, %dx
1:	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	1b
	popw	%ax
	movw	$COM1, %dx
	outb	%al, %dx
	popw	%dx
	ret
puts16:
	lodsb
	testb	%al, %al
	jz	1f
	call	putc16
	jmp	puts16
1:	ret
hex16:
	pushw	%bx
	pushw	%cx
	movw	%ax, %bx
	movw	$4, %cx
1:	rolw	$4, %bx
	movw	%bx, %ax
	andw	$0xf, %ax
	pushw	%bx
	movw	%ax, %bx
	movb	RM(hex16_digits)(%bx), %al
	popw	%bx
	call	putc16
	loop	1b
	popw	%cx
	popw	%bx
	ret
hex16_digits:	.ascii	"0123456789abcdef"
rm_idt:	.word	0x3ff				/* the real-mode IVT */
	.long	0
s_real:	.asciz	"real mode: 1234:0010 seen at 1000:2350 = "
s_pe:	.asciz	" cr0.pe="
s_nl16:	.asciz	"\n"
tramp_end:
	.code32

nx_code:
	movl	$0x4e58, %eax
	ret
nx_code_end:

	.section .rodata
s_cr0:	.asciz	"cr0="
s_cr4:	.asciz	" cr4="
s_efer:	.asciz	" efer="
s_long:	.asciz	"long mode: "
s_1g:	.asciz	" 1G read="
s_2m:	.asciz	" 2M read="
s_nl:	.asciz	"\n"

	.data
null_idt:	.word	0
		.long	0
saved_esp:	.long	0

	.bss
	.balign	4096
pd32:		.skip	4096
pdpt_pae:	.skip	4096
pd_pae0:	.skip	4096
pd_pae1:	.skip	4096
pml4:		.skip	4096
pdpt_lm:	.skip	4096
	.balign	16
		.skip	8192
stack_top:

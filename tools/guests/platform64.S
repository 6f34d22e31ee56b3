/* SPDX-License-Identifier: GPL-2.0 */
/*
 * platform64.S - the PC platform seen without Linux (`pacifica run
 * --machine pc`; the pc_platform selftest).
 *
 * An ELF64 guest that prints, on COM1, what a kernel finds and gets:
 *
 *   - the MP floating pointer at 0x9fc00 and its configuration table:
 *     the checksums, the entry count, the local APIC's address, and the
 *     I/O APIC entry's ID and address;
 *   - the I/O APIC's version register (index 1);
 *   - IOAPIC routing: the PIT's channel 0 at 1000 Hz (mode 2) on I/O APIC
 *     pin 2, sent as vector 0x30 to the local APIC: 100 interrupts and the
 *     TSC ticks they took;
 *   - PIC ExtINT: pin 2 masked, the 8259 pair initialised (vectors
 *     0x20-0x2f), IRQ 0 unmasked and LVT0 in ExtINT mode: 100 interrupts
 *     at vector 0x20 and their TSC ticks.
 *
 * Ends with status 0 on port 0xf4, 2 on an unexpected exception, 3 when
 * the MP table is missing.
 */

#include "hw.h"
#include "lib64.inc"

#define MPTABLE		0x9fc00
#define IOAPIC		0xfec00000
#define LAPIC		0xfee00000
#define LAPIC_EOI	0xb0
#define LAPIC_SVR	0xf0
#define LAPIC_LVT0	0x350
#define VEC_IOAPIC	0x30
#define VEC_PIC		0x20
#define TICKS		100
/* 1193182 Hz / 1193: about 1000 Hz. */
#define PIT_DIVISOR	1193

	.code64
	.text
	.globl	_start
_start:
	call	idt_init64
	call	idt_extend

	/* The MP floating pointer: "_MP_", 16 bytes summing to 0. */
	movl	$MPTABLE, %esi
	movb	$3, %al
	cmpl	$0x5f504d5f, (%rsi)
	jne	exit
	movl	$16, %ecx
	call	checksum
	PRINT	"mp floating pointer at "
	HEX	%esi
	PRINT	" checksum "
	HEX	%eax
	PRINT	"\n"

	/* The configuration table: "PCMP", base table length at 4. */
	movl	4(%rsi), %esi
	movb	$3, %al
	cmpl	$0x504d4350, (%rsi)
	jne	exit
	movzwl	4(%rsi), %ecx
	call	checksum
	PRINT	"mp config table at "
	HEX	%esi
	PRINT	" checksum "
	HEX	%eax
	PRINT	" entries "
	movzwl	0x22(%rsi), %eax
	HEX	%eax
	PRINT	" lapic "
	movl	0x24(%rsi), %eax
	HEX	%eax
	PRINT	"\n"

	/* Walk the entries: processor 20 bytes, the others 8. */
	movzwl	0x22(%rsi), %ecx
	leaq	0x2c(%rsi), %rdi
1:	movzbl	(%rdi), %eax
	cmpb	$2, %al
	jne	2f
	PRINT	"mp ioapic id "
	movzbl	1(%rdi), %eax
	HEX	%eax
	PRINT	" address "
	movl	4(%rdi), %eax
	HEX	%eax
	PRINT	"\n"
2:	movzbl	(%rdi), %eax
	addq	$8, %rdi
	testb	%al, %al
	jnz	3f
	addq	$12, %rdi
3:	loop	1b

	/* The I/O APIC's version register. Its address and the local APIC's
	 * stay in R12 and R13 (as absolute disp32 they would sign-extend). */
	movl	$IOAPIC, %r12d
	movl	$LAPIC, %r13d
	movl	$1, (%r12)
	movl	0x10(%r12), %eax
	PRINT	"ioapic version "
	HEX	%eax
	PRINT	"\n"

	/* The local APIC on; pin 2 to vector 0x30, edge, physical CPU 0. */
	movl	$0x1ff, LAPIC_SVR(%r13)
	movl	$0x15, (%r12)
	movl	$0, 0x10(%r12)
	movl	$0x14, (%r12)
	movl	$VEC_IOAPIC, 0x10(%r12)
	call	pit_1khz
	leaq	ticks_ioapic(%rip), %rbx
	call	count
	PRINT	"ioapic pin 2 ticks "
	HEX	%ecx
	PRINT	" tsc "
	HEX64	%rax
	PRINT	"\n"

	/* Pin 2 masked; the 8259 pair at vectors 0x20-0x2f, IRQ 0 alone
	 * unmasked; LVT0 in ExtINT mode. */
	movl	$0x14, (%r12)
	movl	$(0x10000 | VEC_IOAPIC), 0x10(%r12)
	movb	$0x11, %al
	outb	%al, $0x20
	outb	%al, $0xa0
	movb	$VEC_PIC, %al
	outb	%al, $0x21
	movb	$(VEC_PIC + 8), %al
	outb	%al, $0xa1
	movb	$4, %al
	outb	%al, $0x21
	movb	$2, %al
	outb	%al, $0xa1
	movb	$1, %al
	outb	%al, $0x21
	outb	%al, $0xa1
	movb	$0xfe, %al
	outb	%al, $0x21
	movb	$0xff, %al
	outb	%al, $0xa1
	movl	$0x700, LAPIC_LVT0(%r13)
	leaq	ticks_pic(%rip), %rbx
	call	count
	PRINT	"pic irq 0 ticks "
	HEX	%ecx
	PRINT	" tsc "
	HEX64	%rax
	PRINT	"\n"

	xorl	%eax, %eax
	jmp	exit

/* checksum: EAX = the byte sum of RCX bytes at RSI (0 when valid). */
checksum:
	pushq	%rsi
	pushq	%rcx
	pushq	%rdx
	xorl	%eax, %eax
1:	movzbl	(%rsi), %edx
	addl	%edx, %eax
	incq	%rsi
	loop	1b
	movzbl	%al, %eax
	popq	%rdx
	popq	%rcx
	popq	%rsi
	ret

/* pit_1khz: channel 0, lobyte/hibyte, mode 2, about 1000 Hz. */
pit_1khz:
	movb	$0x34, %al
	outb	%al, $0x43
	movb	$(PIT_DIVISOR & 0xff), %al
	outb	%al, $0x40
	movb	$(PIT_DIVISOR >> 8), %al
	outb	%al, $0x40
	ret

/*
 * count: takes interrupts until the counter at RBX has counted TICKS more
 * (at most about 10 s of spinning); ECX = the interrupts counted, RAX =
 * the TSC ticks from the first to the last.
 */
count:
	movl	$0, (%rbx)
	sti
	movl	$1, %ecx
	call	wait_count
	rdtsc
	shlq	$32, %rdx
	orq	%rax, %rdx
	movq	%rdx, %r8
	movl	$(TICKS + 1), %ecx
	call	wait_count
	rdtsc
	cli
	shlq	$32, %rdx
	orq	%rdx, %rax
	subq	%r8, %rax
	movl	(%rbx), %ecx
	decl	%ecx
	ret

/* wait_count: halts until the counter at RBX reaches ECX. */
wait_count:
1:	cmpl	%ecx, (%rbx)
	jae	2f
	hlt
	jmp	1b
2:	ret

irq_ioapic:
	incl	ticks_ioapic(%rip)
	movl	$0, LAPIC_EOI(%r13)
	iretq

irq_pic:
	pushq	%rax
	incl	ticks_pic(%rip)
	movb	$0x20, %al
	outb	%al, $0x20
	popq	%rax
	iretq

/*
 * idt_extend: a 256-entry IDT with lib64.inc's 32 exception gates and
 * the two interrupt handlers.
 */
idt_extend:
	leaq	idt64(%rip), %rsi
	leaq	idt256(%rip), %rdi
	movl	$(32 * 2), %ecx
	rep movsq
	leaq	irq_ioapic(%rip), %rax
	movl	$VEC_IOAPIC, %ecx
	call	set_gate
	leaq	irq_pic(%rip), %rax
	movl	$VEC_PIC, %ecx
	call	set_gate
	lidt	idt256_desc(%rip)
	ret

/* set_gate: vector RCX is an interrupt gate to RAX. */
set_gate:
	movq	%rax, %rdx
	andq	$0xffff, %rdx
	orq	$(SEL_CODE64 << 16), %rdx
	movq	%rax, %r8
	shrq	$16, %r8
	andq	$0xffff, %r8
	shlq	$48, %r8
	orq	%r8, %rdx
	movq	$0x8e0000000000, %r8
	orq	%r8, %rdx
	shrq	$32, %rax
	shlq	$4, %rcx
	leaq	idt256(%rip), %r9
	movq	%rdx, (%r9,%rcx)
	movq	%rax, 8(%r9,%rcx)
	ret

	.data
	.balign	8
idt256_desc:
	.word	256 * 16 - 1
	.quad	idt256
ticks_ioapic:	.long	0
ticks_pic:	.long	0

	.bss
	.balign	4096
idt256:		.skip	256 * 16

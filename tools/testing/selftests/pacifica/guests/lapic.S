/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lapic.rs: guests of a VM with an in-kernel local APIC
 * (PACIFICA_CREATE_IRQCHIP). Each scenario is a global label; results go
 * to DATA_BASE, one doubleword each, in the order lapic.rs lists them.
 */
#include "guest.h"
#include "hw.h"

/*
 * The xAPIC page at its reset address (above 2 GiB, so reached through a
 * base register: RBX holds it throughout), and the registers used here.
 */
#define APIC		0xfee00000
#define APIC_ID		0x20
#define APIC_LVR	0x30
#define APIC_TPR	0x80
#define APIC_EOI	0xb0
#define APIC_LDR	0xd0
#define APIC_SPIV	0xf0
#define APIC_ICR	0x300
#define APIC_ICR2	0x310
#define APIC_LVT0	0x350
/* The same registers as x2APIC MSRs. */
#define X2_ID		(MSR_X2APIC_BASE + 0x2)
#define X2_EOI		(MSR_X2APIC_BASE + 0xb)
#define X2_SPIV		(MSR_X2APIC_BASE + 0xf)
#define X2_SELF_IPI	(MSR_X2APIC_BASE + 0x3f)
#define ICR_SELF	(1 << 18)
#define SPIV_ENABLE	(1 << 8)

/* The two vectors the handlers count: classes 4 and 5. */
#define VEC		0x40
#define VEC2		0x50
/* How many interrupts were taken, and the last vector. */
#define IRQ_COUNT	(DATA_BASE + 0x100)
#define IRQ_LAST	(DATA_BASE + 0x104)
/* The vectors taken, in order (16 at most). */
#define IRQ_LOG		(DATA_BASE + 0x140)
/* Non-zero: the handlers' EOI goes to the x2APIC MSR. */
#define X2_MODE		(DATA_BASE + 0x108)

/*
 * Spins until IRQ_COUNT reaches \n, at most 100000 rounds: an interrupt is
 * taken at an instruction boundary the CPU chooses (QEMU's TCG checks at
 * the end of a translated block), not at once. EAX = the count.
 */
.macro WAIT_COUNT n
	mov	ecx, 100000
1:	mov	eax, [IRQ_COUNT]
	cmp	eax, \n
	jae	2f
	dec	ecx
	jnz	1b
2:
.endm

/* Spins 1000 rounds, then EAX = the count: what is held back stays so. */
.macro SETTLE
	mov	ecx, 1000
1:	dec	ecx
	jnz	1b
	mov	eax, [IRQ_COUNT]
.endm

	.code64
/* Register reset values and write masks, read through the page. */
	.global regs64
regs64:
	mov	ebx, APIC
	mov	eax, [rbx + APIC_LVR]
	mov	[DATA_BASE + 0x00], eax
	mov	eax, [rbx + APIC_ID]
	mov	[DATA_BASE + 0x04], eax
	mov	eax, [rbx + APIC_SPIV]
	mov	[DATA_BASE + 0x08], eax
	mov	dword ptr [rbx + APIC_TPR], 0xffffffff
	mov	eax, [rbx + APIC_TPR]
	mov	[DATA_BASE + 0x0c], eax
	mov	dword ptr [rbx + APIC_TPR], 0
	mov	dword ptr [rbx + APIC_LDR], 0xffffffff
	mov	eax, [rbx + APIC_LDR]
	mov	[DATA_BASE + 0x10], eax
	/* Software-disabled: the entry stays masked. */
	mov	dword ptr [rbx + APIC_LVT0], 0x700
	mov	eax, [rbx + APIC_LVT0]
	mov	[DATA_BASE + 0x14], eax
	mov	ecx, MSR_APIC_BASE
	rdmsr
	mov	[DATA_BASE + 0x18], eax
	/* A byte of the version register. */
	movzx	eax, byte ptr [rbx + APIC_LVR + 2]
	mov	[DATA_BASE + 0x1c], eax
	HALT

/* Self-IPIs through the ICR: IF, STI's shadow, TPR, CR8, a physical
 * destination. */
	.global self_ipi64
self_ipi64:
	mov	ebx, APIC
	call	idt_init64
	call	irq_init64
	mov	dword ptr [rbx + APIC_SPIV], SPIV_ENABLE | 0xff
	cli
	mov	dword ptr [rbx + APIC_ICR], ICR_SELF | VEC
	SETTLE					/* IF = 0 holds it */
	mov	[DATA_BASE + 0x00], eax
	sti
	mov	eax, [IRQ_COUNT]		/* STI's shadow holds it */
	mov	[DATA_BASE + 0x04], eax
	WAIT_COUNT 1
	mov	[DATA_BASE + 0x08], eax
	/* TPR at the vector's class holds it until TPR drops. */
	mov	dword ptr [rbx + APIC_TPR], VEC
	mov	dword ptr [rbx + APIC_ICR], ICR_SELF | VEC
	SETTLE
	mov	[DATA_BASE + 0x0c], eax
	mov	dword ptr [rbx + APIC_TPR], 0
	WAIT_COUNT 2
	mov	[DATA_BASE + 0x10], eax
	/* CR8 likewise. */
	mov	eax, VEC >> 4
	mov	cr8, rax
	mov	dword ptr [rbx + APIC_ICR], ICR_SELF | VEC
	SETTLE
	mov	[DATA_BASE + 0x14], eax
	xor	eax, eax
	mov	cr8, rax
	WAIT_COUNT 3
	mov	[DATA_BASE + 0x18], eax
	/* Delivery status never reads busy. */
	mov	eax, [rbx + APIC_ICR]
	and	eax, 1 << 12
	mov	[DATA_BASE + 0x1c], eax
	/* Fixed, physical destination 0: this vCPU. */
	mov	dword ptr [rbx + APIC_ICR2], 0
	mov	dword ptr [rbx + APIC_ICR], VEC2
	WAIT_COUNT 4
	mov	eax, [IRQ_LAST]
	mov	[DATA_BASE + 0x20], eax
	SETTLE					/* and nothing taken twice */
	mov	[DATA_BASE + 0x24], eax
	HALT

/* x2APIC: the mode switch, the MSRs, SELF_IPI, and what is #GP. */
	.global x2apic64
x2apic64:
	mov	ebx, APIC
	call	idt_init64
	call	irq_init64
	mov	dword ptr [X2_MODE], 1
	mov	ecx, MSR_APIC_BASE
	rdmsr
	or	eax, 1 << 10
	wrmsr
	mov	ecx, X2_ID
	rdmsr
	mov	[DATA_BASE + 0x00], eax
	mov	ecx, X2_SPIV
	mov	eax, SPIV_ENABLE | 0xff
	xor	edx, edx
	wrmsr
	mov	ecx, X2_SELF_IPI
	mov	eax, VEC
	wrmsr
	sti
	WAIT_COUNT 1
	SETTLE
	mov	[DATA_BASE + 0x04], eax
	/* EOI with a non-zero value. */
	mov	ecx, X2_EOI
	mov	eax, 1
	TRY	DATA_BASE + 0x08, wrmsr
	/* Straight back to xAPIC. */
	mov	ecx, MSR_APIC_BASE
	rdmsr
	and	eax, ~(1 << 10)
	TRY	DATA_BASE + 0x0c, wrmsr
	HALT

/* Interrupt gates for VEC and VEC2 after idt_init64's 32, and an IDTR
 * that covers them. */
irq_init64:
	mov	rax, offset irq_vec64
	mov	rdi, IDT_BASE + VEC * 16
	call	gate64
	mov	rax, offset irq_vec2_64
	mov	rdi, IDT_BASE + VEC2 * 16
	call	gate64
	lidt	[irq_idtr64]
	ret

gate64:
	mov	word ptr [rdi], ax
	mov	word ptr [rdi + 2], SEL_CODE64
	mov	word ptr [rdi + 4], 0x8e00
	shr	rax, 16
	mov	word ptr [rdi + 6], ax
	mov	dword ptr [rdi + 8], 0
	mov	dword ptr [rdi + 12], 0
	ret

irq_vec64:
	push	rax
	mov	eax, VEC
	jmp	irq_common64
irq_vec2_64:
	push	rax
	mov	eax, VEC2
irq_common64:
	mov	[IRQ_LAST], eax
	push	rcx
	mov	ecx, [IRQ_COUNT]
	mov	[IRQ_LOG + rcx * 4], eax
	pop	rcx
	inc	dword ptr [IRQ_COUNT]
	cmp	dword ptr [X2_MODE], 0
	jne	1f
	mov	dword ptr [rbx + APIC_EOI], 0	/* RBX: the page, as everywhere */
	pop	rax
	iretq
1:	push	rcx
	push	rdx
	mov	ecx, X2_EOI
	xor	eax, eax
	xor	edx, edx
	wrmsr
	pop	rdx
	pop	rcx
	pop	rax
	iretq

	.balign 8
irq_idtr64:
	.word	256 * 16 - 1
	.quad	IDT_BASE

#include "exc64.inc"

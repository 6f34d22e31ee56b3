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
#define APIC_LVTT	0x320
#define APIC_LVT0	0x350
#define APIC_LVT1	0x360
#define APIC_TMICT	0x380
#define APIC_TDCR	0x3e0
#define LVT_MASKED	(1 << 16)
#define TIMER_PERIODIC	(1 << 17)
#define TIMER_TSCDEADLINE (2 << 17)
#define DM_NMI		0x400
#define DM_EXTINT	0x700
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
/* NMIs and a userspace PIC's interrupts taken; NMI_MODE: see nmi64. */
#define NMI_COUNT	(DATA_BASE + 0x10c)
#define NMI_MODE	(DATA_BASE + 0x110)
#define EXT_COUNT	(DATA_BASE + 0x114)
/* Set just before the guest halts, for a test thread that waits for it. */
#define READY		(DATA_BASE + 0x118)
/* The guest TSC when each interrupt was taken, in order (16 at most). */
#define TSC_LOG		(DATA_BASE + 0x200)
/* The TSC when the timer tests armed the timer, and the TSC deadline. */
#define TSC_ARM0	(DATA_BASE + 0x180)
#define TSC_ARM1	(DATA_BASE + 0x188)
#define TSC_DEADLINE	(DATA_BASE + 0x190)
/* Written by the test before the run: the TSC's rate in kHz. */
#define TSC_KHZ		(DATA_BASE + 0x1f0)
/* The PIC's vector in the ExtINT test. */
#define EXT_VEC		0x68

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
	STOP

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
	STOP

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
	STOP

/*
 * EAX:EDX = the TSC as one 64-bit value in RAX (RDX clobbered).
 */
.macro RDTSC64
	rdtsc
	shl	rdx, 32
	or	rax, rdx
.endm

/* Sleeps in HLT, interrupts on, until IRQ_COUNT reaches EDI; returns with
 * IF = 0. */
wait_irq64:
1:	cmp	[IRQ_COUNT], edi
	jae	2f
	sti
	hlt
	cli
	jmp	1b
2:	ret

/*
 * The timer in each mode, every wait an in-kernel HLT: one-shot 1 ms,
 * periodic 2 ms for five periods (each one followed by an exit on which
 * the test moves the thread to another CPU), periodic but masked, and
 * TSC-deadline 1 ms ahead when CPUID offers it.
 */
	.global timer64
timer64:
	mov	ebx, APIC
	call	idt_init64
	call	irq_init64
	mov	dword ptr [rbx + APIC_SPIV], SPIV_ENABLE | 0xff
	mov	dword ptr [rbx + APIC_TDCR], 0xb		/* divide by 1 */
	/* One-shot. */
	mov	dword ptr [rbx + APIC_LVTT], VEC
	RDTSC64
	mov	[TSC_ARM0], rax
	mov	dword ptr [rbx + APIC_TMICT], 1000000
	mov	edi, 1
	call	wait_irq64
	mov	eax, [IRQ_COUNT]
	mov	[DATA_BASE + 0x00], eax
	/* Periodic. */
	mov	dword ptr [rbx + APIC_LVTT], VEC | TIMER_PERIODIC
	RDTSC64
	mov	[TSC_ARM1], rax
	mov	dword ptr [rbx + APIC_TMICT], 2000000
	mov	edi, 2
1:	call	wait_irq64
	mov	al, 7
	out	PORT_TEST_IMM, al			/* migrate */
	inc	edi
	cmp	edi, 7
	jb	1b
	mov	dword ptr [rbx + APIC_TMICT], 0
	mov	eax, [IRQ_COUNT]
	mov	[DATA_BASE + 0x04], eax
	/* A period that ended after the fifth is taken here. */
	sti
	SETTLE
	cli
	mov	esi, [IRQ_COUNT]
	/* Periodic every 0.5 ms but masked, for 10 ms with IF = 1. */
	mov	dword ptr [rbx + APIC_LVTT], VEC | TIMER_PERIODIC | LVT_MASKED
	mov	dword ptr [rbx + APIC_TMICT], 500000
	mov	ecx, [TSC_KHZ]
	imul	rcx, rcx, 10
	RDTSC64
	add	rcx, rax
	sti
2:	RDTSC64
	cmp	rax, rcx
	jb	2b
	cli
	mov	dword ptr [rbx + APIC_TMICT], 0
	mov	eax, [IRQ_COUNT]
	sub	eax, esi
	mov	[DATA_BASE + 0x08], eax
	/* TSC-deadline, if CPUID.1:ECX[24]. */
	push	rbx
	mov	eax, 1
	cpuid
	pop	rbx
	xor	eax, eax
	bt	ecx, 24
	setc	al
	mov	[DATA_BASE + 0x0c], eax
	jnc	3f
	mov	dword ptr [rbx + APIC_LVTT], VEC | TIMER_TSCDEADLINE
	RDTSC64
	mov	ecx, [TSC_KHZ]
	add	rax, rcx
	mov	[TSC_DEADLINE], rax
	mov	rdx, rax
	shr	rdx, 32
	mov	[DATA_BASE + 0x14], esi
	mov	ecx, MSR_TSC_DEADLINE
	wrmsr
	lea	edi, [esi + 1]
	call	wait_irq64
3:	mov	eax, [IRQ_COUNT]
	sub	eax, esi
	mov	[DATA_BASE + 0x10], eax
	STOP

/*
 * Events from userspace: a fixed MSI from another thread wakes HLT, a
 * level-triggered MSI whose EOI exits, NMIs (with IF = 0, and a second one
 * held back until the first one's IRET), a userspace PIC's interrupt
 * through LINT0 in ExtINT mode (held back by IF = 0), and LINT1 as NMI.
 * Each OUT to PORT_TEST_IMM asks the test for the next event (lapic.rs).
 */
	.global inject64
inject64:
	mov	ebx, APIC
	call	idt_init64
	call	irq_init64
	call	inject_init64
	mov	dword ptr [rbx + APIC_SPIV], SPIV_ENABLE | 0xff
	mov	dword ptr [READY], 1
	mov	edi, 1
	call	wait_irq64			/* woken by the MSI */
	mov	eax, [IRQ_COUNT]
	mov	[DATA_BASE + 0x00], eax
	mov	al, 1				/* a level-triggered MSI */
	out	PORT_TEST_IMM, al
	sti
	WAIT_COUNT 2
	mov	[DATA_BASE + 0x04], eax
	cli
	mov	al, 2				/* an NMI, IF = 0 */
	out	PORT_TEST_IMM, al
	mov	edi, 1
	call	wait_nmi64
	mov	[DATA_BASE + 0x08], eax
	mov	dword ptr [NMI_MODE], 1
	mov	al, 3				/* an NMI, and one inside it */
	out	PORT_TEST_IMM, al
	mov	edi, 3
	call	wait_nmi64
	mov	[DATA_BASE + 0x10], eax
	/* LINT0 as a PIC's INTR line. */
	mov	dword ptr [rbx + APIC_LVT0], DM_EXTINT
	mov	al, 5				/* raise it */
	out	PORT_TEST_IMM, al
	SETTLE
	mov	eax, [EXT_COUNT]
	mov	[DATA_BASE + 0x14], eax
	sti
	mov	ecx, 100000
4:	cmp	dword ptr [EXT_COUNT], 1
	jae	5f
	dec	ecx
	jnz	4b
5:	cli
	mov	eax, [EXT_COUNT]
	mov	[DATA_BASE + 0x18], eax
	/* LINT1 as NMI. */
	mov	dword ptr [rbx + APIC_LVT1], DM_NMI
	mov	al, 6				/* pulse it */
	out	PORT_TEST_IMM, al
	mov	edi, 4
	call	wait_nmi64
	mov	[DATA_BASE + 0x1c], eax
	mov	eax, [IRQ_COUNT]
	mov	[DATA_BASE + 0x20], eax
	STOP

/*
 * IA32_APIC_BASE: the page moved to 0xfed00000 (and the old address is
 * no APIC any more: an MMIO exit, which the test answers with all ones),
 * then the APIC disabled (the page is gone) and enabled again (registers
 * at their reset values).
 */
	.global base64
base64:
	mov	ebx, APIC
	mov	dword ptr [rbx + APIC_SPIV], SPIV_ENABLE | 0x3f
	mov	ecx, MSR_APIC_BASE
	rdmsr
	and	eax, 0xfff
	or	eax, 0xfed00000
	wrmsr
	mov	eax, [0xfed00000 + APIC_LVR]
	mov	[DATA_BASE + 0x00], eax
	mov	eax, [0xfed00000 + APIC_SPIV]		/* kept across the move */
	mov	[DATA_BASE + 0x04], eax
	mov	eax, [rbx + APIC_LVR]			/* MMIO now */
	mov	[DATA_BASE + 0x08], eax
	mov	ecx, MSR_APIC_BASE
	rdmsr
	mov	esi, eax
	and	eax, ~(1 << 11)				/* disable */
	wrmsr
	mov	eax, [0xfed00000 + APIC_LVR]		/* MMIO */
	mov	[DATA_BASE + 0x0c], eax
	mov	eax, esi
	and	eax, 0xfff
	or	eax, APIC
	wrmsr						/* enable, at the default */
	mov	eax, [rbx + APIC_SPIV]			/* reset by the disable */
	mov	[DATA_BASE + 0x10], eax
	mov	ecx, MSR_APIC_BASE
	rdmsr
	mov	[DATA_BASE + 0x14], eax
	STOP

/*
 * Priorities against the ISR: vector 0x50's handler (prio_vec2_64) opens
 * IF and sends 0x40, of a lower class, which waits for the handler's EOI.
 */
	.global prio64
prio64:
	mov	ebx, APIC
	call	idt_init64
	call	irq_init64
	mov	rax, offset prio_vec2_64
	mov	rdi, IDT_BASE + VEC2 * 16
	call	gate64
	mov	dword ptr [rbx + APIC_SPIV], SPIV_ENABLE | 0xff
	sti
	mov	dword ptr [rbx + APIC_ICR], ICR_SELF | VEC2
	WAIT_COUNT 2
	mov	[DATA_BASE + 0x04], eax
	mov	eax, [IRQ_LOG]
	mov	[DATA_BASE + 0x08], eax
	mov	eax, [IRQ_LOG + 4]
	mov	[DATA_BASE + 0x0c], eax
	STOP

prio_vec2_64:
	push	rax
	push	rcx
	mov	eax, VEC2
	mov	[IRQ_LOG], eax
	inc	dword ptr [IRQ_COUNT]
	sti
	mov	dword ptr [rbx + APIC_ICR], ICR_SELF | VEC
	SETTLE					/* 0x40 waits: 0x50 in service */
	mov	[DATA_BASE + 0x00], eax
	cli
	mov	dword ptr [rbx + APIC_EOI], 0
	pop	rcx
	pop	rax
	iretq

/* `cli; hlt`: only an NMI (or a signal, which ends the run) gets past. */
	.global clihlt64
clihlt64:
	call	idt_init64
	call	inject_init64
	mov	dword ptr [READY], 1
	cli
	hlt
	mov	eax, [NMI_COUNT]
	mov	[DATA_BASE + 0x00], eax
	STOP

/* Spins until NMI_COUNT reaches EDI, at most 100000 rounds; EAX = it. */
wait_nmi64:
	mov	ecx, 100000
1:	mov	eax, [NMI_COUNT]
	cmp	eax, edi
	jae	2f
	dec	ecx
	jnz	1b
2:	ret

/* Gates for the NMI and the PIC's vector. */
inject_init64:
	mov	rax, offset nmi64
	mov	rdi, IDT_BASE + 2 * 16
	call	gate64
	mov	rax, offset ext64
	mov	rdi, IDT_BASE + EXT_VEC * 16
	call	gate64
	lidt	[irq_idtr64]
	ret

/*
 * The NMI handler. With NMI_MODE set, the first time: asks the test for
 * a second NMI (OUT 4), spins, and records the count, which the blocked
 * NMI must not have raised yet.
 */
nmi64:
	push	rax
	push	rcx
	inc	dword ptr [NMI_COUNT]
	cmp	dword ptr [NMI_MODE], 0
	je	1f
	mov	dword ptr [NMI_MODE], 0
	mov	al, 4
	out	PORT_TEST_IMM, al
	mov	ecx, 20000
2:	dec	ecx
	jnz	2b
	mov	eax, [NMI_COUNT]
	mov	[DATA_BASE + 0x0c], eax
1:	pop	rcx
	pop	rax
	iretq

/* The PIC's vector: no EOI to the local APIC (ExtINT is not in its ISR). */
ext64:
	inc	dword ptr [EXT_COUNT]
	iretq

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
	push	rdx
	mov	ecx, [IRQ_COUNT]
	cmp	ecx, 16
	jae	1f
	mov	[IRQ_LOG + rcx * 4], eax
	push	rax
	RDTSC64
	mov	[TSC_LOG + rcx * 8], rax
	pop	rax
1:	pop	rdx
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

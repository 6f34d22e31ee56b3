/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hardening.rs: guests that attack the host the ways the hardening issue
 * found (Documentation/security.rst, "Attacks tested"). Each scenario is a
 * global label; results go to DATA_BASE.
 */
#include "hw.h"
#include "guest.h"

/* The GDT the task-switch scenario builds: the harness's four, two TSSs. */
#define TS_GDT		(BUF_BASE)
#define TS_SEL_TSS	0x20
#define TS_TSS		(BUF_BASE + 0x1000)
/* Where the TSS with a base above 4 GiB lies (its low 32 bits). */
#define HB_TSS		(BUF_BASE + 0x4000)
/* A CR3 outside guest RAM: what a host-physical address would look like. */
#define TS_EVIL_CR3	0x7f000000

/* The GDT the LTR and ring-3 scenarios build: the harness's four, then one more pair of entries. */
#define SEG_GDT		(BUF_BASE + 0x2000)
#define SEG_SEL_TSS	0x20
#define SEG_TSS		(BUF_BASE + 0x3000)
#define SEG_SEL_CODE3	(0x20 | 3)
#define SEG_SEL_DATA3	(0x28 | 3)

/*
 * Copies the harness's GDT (its four entries) to `to`, in 32-bit or 64-bit
 * code below 4 GiB (leaves ECX, ESI, EDI changed).
 */
.macro COPY_GDT to
	mov	esi, GDT_BASE
	mov	edi, \to
	mov	ecx, 8
	rep movsd
.endm

/*
 * Hardware task switches to a TSS whose CR3 field is not a guest page
 * table, started each way a task switch can start: under shadow paging
 * none may reach the CPU. DATA_BASE gets 0x7a5c if the new task ran.
 */
	.code32
	/* JMP to the TSS. */
	.global task_switch32
task_switch32:
	call	ts_setup
	.global ts_ljmp
ts_ljmp:
	.att_syntax
	ljmp	$TS_SEL_TSS, $0
	.intel_syntax noprefix
	HALT

	/* INT through a task gate (as an exception through one would). */
	.global task_gate32
task_gate32:
	call	ts_setup
	mov	dword ptr [IDT_BASE + 0x40 * 8], TS_SEL_TSS << 16
	mov	dword ptr [IDT_BASE + 0x40 * 8 + 4], 0x8500	/* P, DPL 0, task gate */
	lidt	[ts_idtr]
	int	0x40
	HALT

	/* IRET with NT set, back to the task the current TSS links to. */
	.global iret_nt32
iret_nt32:
	call	ts_setup
	/* That task is busy, and the current TSS (at TR's base) links to it. */
	or	dword ptr [TS_GDT + TS_SEL_TSS + 4], 0x200
	mov	word ptr [TSS_BASE], TS_SEL_TSS
	pushfd
	or	dword ptr [esp], 0x4000
	popfd
	.global ts_iret
ts_iret:
	iretd
	HALT

	/*
	 * A TR base above 4 GiB, loaded by LTR in long mode, kept on leaving
	 * long mode (CPUs keep it; 32-bit linear addresses drop the high
	 * bits), then JMP to a TSS: the task switch's first store is at that
	 * base, and the TSS guard must still catch it.
	 */
	.code64
	.global tss_high_base64
tss_high_base64:
	COPY_GDT TS_GDT
	mov	dword ptr [TS_GDT + 0x20], ((HB_TSS & 0xffff) << 16) | 0x67
	mov	dword ptr [TS_GDT + 0x24], ((HB_TSS >> 16) & 0xff) | 0x8900 | (HB_TSS & 0xff000000)
	mov	dword ptr [TS_GDT + 0x28], 1		/* base bits 32-63 */
	mov	dword ptr [TS_GDT + 0x2c], 0
	lgdt	[hb_gdtr]
	mov	eax, 0x20
	ltr	ax
	/* To compatibility mode, then out of long mode. */
	push	SEL_CODE32
	lea	rax, [rip + hb_compat]
	push	rax
	.att_syntax
	lretq
	.intel_syntax noprefix
	.code32
hb_compat:
	mov	eax, cr0
	and	eax, 0x7fffffff
	mov	cr0, eax
	mov	ecx, MSR_EFER
	rdmsr
	and	eax, ~0x100
	wrmsr
	call	ts_setup
	.global hb_ljmp
hb_ljmp:
	.att_syntax
	ljmp	$TS_SEL_TSS, $0
	.intel_syntax noprefix
	HALT

	.balign 8
hb_gdtr:
	.word	0x30 - 1
	.quad	TS_GDT

/* Builds the GDT with an available TSS at TS_SEL_TSS, and the new task. */
ts_setup:
	COPY_GDT TS_GDT
	mov	dword ptr [TS_GDT + TS_SEL_TSS], (TS_TSS << 16) | 0x67
	mov	dword ptr [TS_GDT + TS_SEL_TSS + 4], ((TS_TSS >> 16) & 0xff) | 0x8900 | (TS_TSS & 0xff000000)
	lgdt	[ts_gdtr]
	/* The new task: CR3, EIP, EFLAGS, ESP, segments. */
	mov	dword ptr [TS_TSS + 0x1c], TS_EVIL_CR3
	mov	dword ptr [TS_TSS + 0x20], offset ts_target
	mov	dword ptr [TS_TSS + 0x24], 2
	mov	dword ptr [TS_TSS + 0x38], STACK_TOP - 0x100
	mov	dword ptr [TS_TSS + 0x48], SEL_DATA	/* ES */
	mov	dword ptr [TS_TSS + 0x4c], SEL_CODE32	/* CS */
	mov	dword ptr [TS_TSS + 0x50], SEL_DATA	/* SS */
	mov	dword ptr [TS_TSS + 0x54], SEL_DATA	/* DS */
	mov	dword ptr [TS_TSS + 0x58], SEL_DATA	/* FS */
	mov	dword ptr [TS_TSS + 0x5c], SEL_DATA	/* GS */
	mov	dword ptr [TS_TSS + 0x60], 0		/* LDT */
	mov	dword ptr [TS_TSS + 0x64], 0x00680000	/* no I/O map */
	ret
ts_target:
	mov	dword ptr [DATA_BASE], 0x7a5c
	HALT

	.balign 8
ts_gdtr:
	.word	TS_SEL_TSS + 8 - 1
	.long	TS_GDT
ts_idtr:
	.word	0x41 * 8 - 1
	.long	IDT_BASE

/*
 * EFER.LME with paging and PAE off (legal, and where QEMU's SVM cannot
 * leave a guest), then the usual way into long mode: PAE, CR3, paging,
 * a far jump to 64-bit code. DATA_BASE: EFER after the WRMSR;
 * DATA_BASE+4: EFER in compatibility mode; DATA_BASE+8: 64 from 64-bit
 * code.
 */
	.code32
	.global lme_paging_off32
lme_paging_off32:
	mov	ecx, MSR_EFER
	rdmsr
	or	eax, 1 << 8
	wrmsr
	rdmsr
	mov	[DATA_BASE], eax
	/* A few exits with LME set and paging off. */
	cpuid
	mov	eax, cr4
	or	eax, 1 << 5
	mov	cr4, eax
	mov	eax, PML4_BASE
	mov	cr3, eax
	mov	eax, cr0
	or	eax, 1 << 31
	mov	cr0, eax
	mov	ecx, MSR_EFER
	rdmsr
	mov	[DATA_BASE + 4], eax
	.att_syntax
	ljmp	$SEL_CODE64, $lme_long
	.intel_syntax noprefix
	.code64
lme_long:
	mov	dword ptr [DATA_BASE + 8], 64
	HALT

/*
 * A #DB whose delivery raises the next #DB: a data breakpoint on the
 * stack slot the CPU pushes SS into (CVE-2015-8104). On real hardware an
 * endless loop inside the CPU; intercepted, an endless loop of exits that
 * a signal ends. DATA_BASE gets DR7 as read back.
 */
	.code64
	.global db_loop64
db_loop64:
	call	idt_init64
	and	rsp, ~0xf
	lea	rax, [rsp - 8]
	mov	dr0, rax
	/* L0, R/W0 = 01 (data writes), LEN0 = 10 (8 bytes). */
	mov	rax, (1 << 0) | (1 << 16) | (2 << 18)
	mov	dr7, rax
	mov	rbx, dr7
	mov	[DATA_BASE], rbx
	/* Single-step the next instruction: its #DB pushes the frame. */
	pushfq
	or	qword ptr [rsp], 1 << 8
	popfq
	nop
	HALT

/*
 * bp_arm64: an instruction breakpoint (DR0, DR7.L0 with R/W0 = 00) on
 * bp_target64, armed and left armed at HLT. bp_target64, run by another
 * VM with DR7 at its reset value, must execute without a #DB: the first
 * guest's breakpoint dies with it (testbed.rs, "Breakpoints outliving
 * their guest").
 */
	.code64
	.global bp_arm64
bp_arm64:
	/* DR7 first (intercepted), then DR0 (not): QEMU arms the breakpoint
	 * on the DR0 write, by the DR7 the guest runs with. */
	mov	rax, 1
	mov	dr7, rax
	lea	rax, [rip + bp_target64]
	mov	dr0, rax
	HALT

	.global bp_target64
bp_target64:
	call	idt_init64
	nop
	HALT

/*
 * Instructions the guest may not use on the host's behalf, each a TRY:
 * DATA_BASE+0: RDPMC; +4: MOV CR4 with OSXSAVE; +8: with PKE; +12: with
 * PCIDE; +16: with LA57 (none is in the guest's CPUID: #GP); +20: clearing
 * CR0.PG in 64-bit mode (#GP); +24: WBINVD (no fault); +28: RSM (#UD).
 */
	.code64
	.global forbidden64
forbidden64:
	call	idt_init64
	xor	ecx, ecx
	TRY	DATA_BASE+0, rdpmc
	mov	rbx, cr4
	mov	rax, rbx
	bts	rax, 18
	TRY	DATA_BASE+4, mov cr4, rax
	mov	rax, rbx
	bts	rax, 22
	TRY	DATA_BASE+8, mov cr4, rax
	mov	rax, rbx
	bts	rax, 17
	TRY	DATA_BASE+12, mov cr4, rax
	mov	rax, rbx
	bts	rax, 12
	TRY	DATA_BASE+16, mov cr4, rax
	mov	rax, cr0
	btr	rax, 31
	TRY	DATA_BASE+20, mov cr0, rax
	TRY	DATA_BASE+24, wbinvd
	TRY	DATA_BASE+28, rsm
	mov	dword ptr [DATA_BASE+32], 1
	HALT

/* Spins with interrupts off: the host's own interrupts must still end it. */
	.code64
	.global cli_spin64
cli_spin64:
	cli
1:
	jmp	1b

/* Raises its TPR to 15, enables interrupts and spins. */
	.code64
	.global cr8_spin64
cr8_spin64:
	mov	eax, 15
	mov	cr8, rax
	sti
1:
	jmp	1b

/*
 * LTR, which the module does itself on QEMU's TCG (that CPU takes a null
 * selector, then aborts at the next change of privilege). Each a TRY:
 * DATA_BASE+0: the null selector (#GP); +4: the same from memory (#GP);
 * +8: an available TSS (no fault); +12: the same descriptor, busy now
 * (#GP); +16: the descriptor's type afterwards (0xb).
 */
	.code32
	.global ltr32
ltr32:
	call	idt_init32
	COPY_GDT SEG_GDT
	mov	dword ptr [SEG_GDT + SEG_SEL_TSS], (SEG_TSS << 16) | 0x67
	mov	dword ptr [SEG_GDT + SEG_SEL_TSS + 4], ((SEG_TSS >> 16) & 0xff) | 0x8900 | (SEG_TSS & 0xff000000)
	lgdt	[seg_gdtr]
	xor	eax, eax
	TRY	DATA_BASE+0, ltr ax
	TRY	DATA_BASE+4, ltr word ptr [ltr_null]
	mov	eax, SEG_SEL_TSS
	TRY	DATA_BASE+8, ltr ax
	TRY	DATA_BASE+12, ltr ax
	movzx	eax, byte ptr [SEG_GDT + SEG_SEL_TSS + 5]
	and	eax, 0xf
	mov	dword ptr [DATA_BASE+16], eax
	HALT

ltr_null:
	.word	0

	.balign 8
seg_gdtr:
	.word	0x30 - 1
	.long	SEG_GDT

/*
 * A change of privilege through the TSS SET_SREGS gave (busy, at linear 0,
 * as every harness vCPU has): IRET to CPL 3, then INT 0x80 through a DPL-3
 * gate back to CPL 0, which takes SS0:ESP0 from the TSS. QEMU's TCG
 * aborted there while TR's type was busy. The CPL-0 handler leaves
 * 0x3a11 at DATA_BASE and the CS it interrupted at DATA_BASE+4.
 */
	.code32
	.global ring3_int32
ring3_int32:
	call	idt_init32
	mov	eax, offset int80_32
	mov	word ptr [IDT_BASE + 0x80 * 8], ax
	mov	word ptr [IDT_BASE + 0x80 * 8 + 2], SEL_CODE32
	mov	word ptr [IDT_BASE + 0x80 * 8 + 4], 0xee00	/* P, DPL 3, 32-bit interrupt gate */
	shr	eax, 16
	mov	word ptr [IDT_BASE + 0x80 * 8 + 6], ax
	lidt	[r3_idtr]
	COPY_GDT SEG_GDT
	mov	dword ptr [SEG_GDT + 0x20], 0x0000ffff		/* code, DPL 3 */
	mov	dword ptr [SEG_GDT + 0x24], 0x00cffb00
	mov	dword ptr [SEG_GDT + 0x28], 0x0000ffff		/* data, DPL 3 */
	mov	dword ptr [SEG_GDT + 0x2c], 0x00cff300
	lgdt	[seg_gdtr]
	/* The TSS at TR's base: SS0 and ESP0. */
	mov	dword ptr [TSS_BASE + 4], STACK_TOP
	mov	dword ptr [TSS_BASE + 8], SEL_DATA
	push	SEG_SEL_DATA3
	push	STACK_TOP - 0x1000
	push	2
	push	SEG_SEL_CODE3
	push	offset ring3_32
	iretd
ring3_32:
	int	0x80
	HALT
int80_32:
	mov	eax, SEL_DATA
	mov	ds, eax
	mov	eax, [esp + 4]
	mov	dword ptr [DATA_BASE + 4], eax
	mov	dword ptr [DATA_BASE], 0x3a11
	HALT

	.balign 8
r3_idtr:
	.word	0x81 * 8 - 1
	.long	IDT_BASE

#include "exc32.inc"
#include "exc64.inc"

/*
 * Finding 2 from the guest's side: a far jump to a code segment with L=1
 * and D=1, a state VMRUN refuses (APM 15.5.1) that QEMU's far jump lets a
 * guest load; the OUT after it exits, and the next VMRUN is refused. The
 * control area QEMU wrote back then must not outlive the refusal.
 */
	.code64
	.global cs_l_d64
cs_l_d64:
	COPY_GDT TS_GDT
	/* 0x20: code, P, DPL 0, L=1 and D=1, limit 4 GiB. */
	mov	dword ptr [TS_GDT + 0x20], 0x0000ffff
	mov	dword ptr [TS_GDT + 0x24], 0x00ef9b00
	lgdt	[ld_gdtr]
	push	0x20
	lea	rax, [rip + ld_next]
	push	rax
	.att_syntax
	lretq
	.intel_syntax noprefix
ld_next:
	out	PORT_TEST_IMM, al
	HALT

	.balign 8
ld_gdtr:
	.word	0x28 - 1
	.quad	TS_GDT

/*
 * Finding 8 under shadow paging: page tables that alias one guest page at
 * every 2 MiB of 512 GiB (PML4 entry 1 -> a PDPT whose 512 entries name
 * one PD, whose 512 entries name one PT, whose 512 entries name the data
 * page), so that three guest tables ask for a shadow table per 2 MiB. The
 * guest reads one byte in each of as many such regions as the test puts
 * at DATA_BASE + 16, and stores the sum at DATA_BASE + 8: the shadow MMU
 * must stay within its budget and still give the guest the right bytes.
 */
#define AL_PML4		(BUF_BASE + 0x10000)
#define AL_PDPT		(BUF_BASE + 0x11000)
#define AL_PD		(BUF_BASE + 0x12000)
#define AL_PT		(BUF_BASE + 0x13000)
#define AL_BASE		0x8000000000

	.code64
	.global shadow_alias64
shadow_alias64:
	mov	rdi, AL_PML4
	xor	eax, eax
	mov	ecx, 512
	rep stosq
	mov	rax, [PML4_BASE]		/* the harness's identity map */
	mov	[AL_PML4], rax
	mov	qword ptr [AL_PML4 + 8], AL_PDPT | 3
	mov	rdi, AL_PDPT
	mov	eax, AL_PD | 3
	mov	ecx, 512
	rep stosq
	mov	rdi, AL_PD
	mov	eax, AL_PT | 3
	mov	ecx, 512
	rep stosq
	mov	rdi, AL_PT
	mov	eax, DATA_BASE | 3
	mov	ecx, 512
	rep stosq
	mov	byte ptr [DATA_BASE], 0x5a
	mov	eax, AL_PML4
	mov	cr3, rax
	movabs	rsi, AL_BASE
	xor	edx, edx
	mov	ecx, [DATA_BASE + 16]
1:	movzx	eax, byte ptr [rsi]
	add	edx, eax
	add	rsi, 0x200000
	dec	ecx
	jnz	1b
	mov	[DATA_BASE + 8], edx
	HALT

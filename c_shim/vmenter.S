/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The world switch of pacifica.ko: from GIF = 1 in the host to the guest and
 * back, in assembly because the kernel's speculation macros and exception
 * table live here. See pac_vmrun() in shim.h for the contract and
 * Documentation/security.rst ("The world switch") for why each step is
 * there.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/frame.h>
#include <asm/nospec-branch.h>

/* struct pac_gprs (shim.h; GuestGprs in rust/svm/ops.rs). */
#define G_RBX	0x00
#define G_RCX	0x08
#define G_RDX	0x10
#define G_RSI	0x18
#define G_RDI	0x20
#define G_RBP	0x28
#define G_R8	0x30
#define G_R9	0x38
#define G_R10	0x40
#define G_R11	0x48
#define G_R12	0x50
#define G_R13	0x58
#define G_R14	0x60
#define G_R15	0x68

/* The stack frame below the saved callee-saved registers. */
#define S_FAULT		0	/* 1 once an SVM instruction faulted */
#define S_HOST_SAVE	8	/* @host_save_pa */
#define S_VMCB		16	/* @vmcb_pa */
#define S_GPRS		24	/* @gprs */

	.text

/*
 * int pac_vmrun(u64 vmcb_pa, u64 host_save_pa, struct pac_gprs *gprs)
 *
 * Called with interrupts off, preemption off and EFER.SVME set (checked by
 * the caller with interrupts off). Returns 0, or 1 when an SVM instruction
 * faulted because SVM was turned off under us by an emergency path
 * (reboot, crash, kexec): then nothing of the guest's was loaded, the host
 * state is intact, and the caller fails the run.
 */
SYM_FUNC_START(pac_vmrun)
	push	%rbp
	mov	%rsp, %rbp
	push	%r15
	push	%r14
	push	%r13
	push	%r12
	push	%rbx
	push	%rdx			/* S_GPRS */
	push	%rdi			/* S_VMCB */
	push	%rsi			/* S_HOST_SAVE */
	push	$0			/* S_FAULT */

	/* Interrupts, NMIs and SMIs wait from here to STGI. */
1:	clgi
2:
	/* The host's FS, GS, TR, LDTR and syscall MSRs, then the guest's. */
	mov	S_HOST_SAVE(%rsp), %rax
3:	vmsave	%rax
4:
	mov	S_VMCB(%rsp), %rax
5:	vmload	%rax
6:
	/* Nothing may touch per-CPU data from here: GS.base is the guest's. */
	mov	S_GPRS(%rsp), %rdi
	mov	G_RBX(%rdi), %rbx
	mov	G_RCX(%rdi), %rcx
	mov	G_RDX(%rdi), %rdx
	mov	G_RSI(%rdi), %rsi
	mov	G_RBP(%rdi), %rbp
	mov	G_R8(%rdi), %r8
	mov	G_R9(%rdi), %r9
	mov	G_R10(%rdi), %r10
	mov	G_R11(%rdi), %r11
	mov	G_R12(%rdi), %r12
	mov	G_R13(%rdi), %r13
	mov	G_R14(%rdi), %r14
	mov	G_R15(%rdi), %r15
	mov	G_RDI(%rdi), %rdi

	/*
	 * With V_INTR_MASKING the host's IF at VMRUN decides whether a
	 * physical interrupt ends the guest (#VMEXIT(INTR)); GIF is still
	 * clear, so none is taken here. The NOP keeps VMRUN out of STI's
	 * interrupt shadow: QEMU's TCG carries that shadow into the guest's
	 * first instruction (rust/testbed.rs, "VMRUN in an STI shadow").
	 */
	sti
	nop
7:	vmrun	%rax
8:
	cli

	/* RAX and RSP are the host's again; keep the guest's others. */
	mov	S_GPRS(%rsp), %rax
	mov	%rbx, G_RBX(%rax)
	mov	%rcx, G_RCX(%rax)
	mov	%rdx, G_RDX(%rax)
	mov	%rsi, G_RSI(%rax)
	mov	%rdi, G_RDI(%rax)
	mov	%rbp, G_RBP(%rax)
	mov	%r8, G_R8(%rax)
	mov	%r9, G_R9(%rax)
	mov	%r10, G_R10(%rax)
	mov	%r11, G_R11(%rax)
	mov	%r12, G_R12(%rax)
	mov	%r13, G_R13(%rax)
	mov	%r14, G_R14(%rax)
	mov	%r15, G_R15(%rax)

	mov	S_VMCB(%rsp), %rax
9:	vmsave	%rax
10:
	/* GS.base, and so per-CPU data, is the host's again after this. */
	mov	S_HOST_SAVE(%rsp), %rax
11:	vmload	%rax
12:
	/*
	 * Before the first RET: overwrite the return stack buffer the guest
	 * may have filled, and untrain return prediction (retbleed, SRSO),
	 * as the kernel's configuration and CPU ask for.
	 */
	FILL_RETURN_BUFFER %rax, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT
	UNTRAIN_RET_VM

	/*
	 * No guest value may steer speculation in the host: clear every
	 * register the guest loaded (RAX and RSP are the host's), RBX and RBP
	 * too although they are popped below, since a slow load from the
	 * stack could let the guest's values be used speculatively meanwhile.
	 */
	xor	%ebx, %ebx
	xor	%ebp, %ebp
	xor	%ecx, %ecx
	xor	%edx, %edx
	xor	%esi, %esi
	xor	%edi, %edi
	xor	%r8d, %r8d
	xor	%r9d, %r9d
	xor	%r10d, %r10d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	xor	%r14d, %r14d
	xor	%r15d, %r15d

13:	stgi
14:
	pop	%rax			/* S_FAULT: the return value */
	add	$24, %rsp
	pop	%rbx
	pop	%r12
	pop	%r13
	pop	%r14
	pop	%r15
	pop	%rbp
	RET

	/*
	 * An SVM instruction raised #UD: EFER.SVME was cleared by an
	 * emergency path. Note it and go on as if it had done nothing.
	 */
21:	movq	$1, S_FAULT(%rsp)
	jmp	2b
23:	movq	$1, S_FAULT(%rsp)
	jmp	4b
25:	movq	$1, S_FAULT(%rsp)
	jmp	6b
27:	movq	$1, S_FAULT(%rsp)
	jmp	8b
29:	movq	$1, S_FAULT(%rsp)
	jmp	10b
31:	movq	$1, S_FAULT(%rsp)
	jmp	12b
33:	movq	$1, S_FAULT(%rsp)
	jmp	14b

	_ASM_EXTABLE(1b, 21b)
	_ASM_EXTABLE(3b, 23b)
	_ASM_EXTABLE(5b, 25b)
	_ASM_EXTABLE(7b, 27b)
	_ASM_EXTABLE(9b, 29b)
	_ASM_EXTABLE(11b, 31b)
	_ASM_EXTABLE(13b, 33b)
SYM_FUNC_END(pac_vmrun)

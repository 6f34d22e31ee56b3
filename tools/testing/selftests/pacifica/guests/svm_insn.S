/* SPDX-License-Identifier: GPL-2.0 */
/*
 * svm_insn_ud.rs: the guest sees no SVM (CPUID hides it, EFER.SVME reads
 * 0), so every SVM instruction must raise #UD (APM Vol. 3, each
 * instruction's exception table) instead of reaching the real CPU. The
 * vector of each goes to a doubleword at DATA_BASE, in this order: VMRUN,
 * VMLOAD, VMSAVE, STGI, CLGI, SKINIT, INVLPGA.
 *
 * RAX points at a scratch page, so that an instruction that wrongly ran
 * would at least touch guest RAM rather than address 0.
 */
#include "guest.h"

.macro SVM_INSNS
	mov	eax, BUF_BASE
	xor	ecx, ecx
	TRY	DATA_BASE+0x00, vmrun
	mov	eax, BUF_BASE
	TRY	DATA_BASE+0x04, vmload
	mov	eax, BUF_BASE
	TRY	DATA_BASE+0x08, vmsave
	TRY	DATA_BASE+0x0c, stgi
	TRY	DATA_BASE+0x10, clgi
	mov	eax, BUF_BASE
	TRY	DATA_BASE+0x14, skinit
	mov	eax, BUF_BASE
	xor	ecx, ecx
	TRY	DATA_BASE+0x18, invlpga
	HALT
.endm

	.code64
	.global svm_insns64
svm_insns64:
	call	idt_init64
	SVM_INSNS

	.code32
	.global svm_insns32
svm_insns32:
	call	idt_init32
	SVM_INSNS

#include "exc64.inc"
#include "exc32.inc"

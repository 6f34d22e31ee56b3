/* SPDX-License-Identifier: GPL-2.0 */
/*
 * msr.rs: which MSRs the guest may use. Every RDMSR and WRMSR runs under
 * TRY, so a #GP is recorded instead of killing the guest.
 *
 * Each MSR gets a 16-byte result slot: the value RDMSR returned (8 bytes),
 * the vector WRMSR raised (4), the vector RDMSR raised (4); NO_FAULT where
 * the instruction did not fault or was not executed.
 */
#include "hw.h"
#include "guest.h"

/* Write hi:lo to `msr`, then read it back. */
.macro WRRD slot, msr, lo, hi
	mov	ecx, \msr
	mov	eax, \lo
	mov	edx, \hi
	TRY	\slot+8, wrmsr
	xor	eax, eax
	xor	edx, edx
	TRY	\slot+12, rdmsr
	mov	[\slot], eax
	mov	[\slot+4], edx
.endm

/* Only read `msr`. */
.macro RD slot, msr
	mov	ecx, \msr
	xor	eax, eax
	xor	edx, edx
	mov	dword ptr [\slot+8], NO_FAULT
	TRY	\slot+12, rdmsr
	mov	[\slot], eax
	mov	[\slot+4], edx
.endm

/* Only write hi:lo to `msr`. */
.macro WR slot, msr, lo, hi
	mov	ecx, \msr
	mov	eax, \lo
	mov	edx, \hi
	mov	dword ptr [\slot], 0
	mov	dword ptr [\slot+4], 0
	TRY	\slot+8, wrmsr
	mov	dword ptr [\slot+12], NO_FAULT
.endm

	.code64
	/* Slots 0-5: the syscall MSRs, written and read back. Slot 6: EFER. */
	.global msr_allowed64
msr_allowed64:
	call	idt_init64
	WRRD	DATA_BASE+0x00, MSR_LSTAR, 0x81234560, 0xffffffff
	WRRD	DATA_BASE+0x10, MSR_STAR, 0x00000000, 0x00230010
	WRRD	DATA_BASE+0x20, MSR_SYSENTER_CS, 0x00000010, 0
	WRRD	DATA_BASE+0x30, MSR_SYSENTER_ESP, 0x87654320, 0
	WRRD	DATA_BASE+0x40, MSR_SYSENTER_EIP, 0x81234560, 0
	WRRD	DATA_BASE+0x50, MSR_KERNEL_GS_BASE, 0x12345000, 0xffff8880
	RD	DATA_BASE+0x60, MSR_EFER
	HALT

	/* Slots 0-3: read and write VM_HSAVE_PA, then VM_CR. */
	.global msr_denied64
msr_denied64:
	call	idt_init64
	RD	DATA_BASE+0x00, MSR_VM_HSAVE_PA
	WR	DATA_BASE+0x10, MSR_VM_HSAVE_PA, 0x00042000, 0
	RD	DATA_BASE+0x20, MSR_VM_CR
	WR	DATA_BASE+0x30, MSR_VM_CR, 0, 0
	HALT

	/*
	 * Slot 0: LSTAR set to a canonical value; slot 1: a non-canonical
	 * write (0x0000800000000000), which must #GP; slot 2: LSTAR read back,
	 * still the first value.
	 */
	.global msr_noncanonical64
msr_noncanonical64:
	call	idt_init64
	WRRD	DATA_BASE+0x00, MSR_LSTAR, 0x81234560, 0xffffffff
	WR	DATA_BASE+0x10, MSR_LSTAR, 0x00000000, 0x00008000
	RD	DATA_BASE+0x20, MSR_LSTAR
	HALT

#include "exc64.inc"

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Included first by every guest: the layout, the syntax, and the macros the
 * guests share.
 *
 * Guests are flat images linked at CODE_BASE (see build.rs). The harness
 * enters them at a global label with the segments, GDT and (for 64-bit
 * guests) identity page tables already set up, RSP at STACK_TOP, and an
 * IDTR of limit 0: a guest that wants to survive an exception calls
 * idt_init32 or idt_init64 from exc32.inc or exc64.inc first.
 */
#include "layout.h"

	.intel_syntax noprefix
	.text

/*
 * Stop for good: HLT exits to userspace, and should the test run the vCPU
 * again, it halts again instead of running into whatever follows.
 */
.macro HALT
9900:
	hlt
	jmp	9900b
.endm

/*
 * Stop in a VM with an in-kernel APIC, where HLT sleeps until an interrupt:
 * tell the harness through PORT_DONE, then halt for good with IF = 0.
 */
.macro STOP
	mov	dx, PORT_DONE
	out	dx, al
	cli
	HALT
.endm

/*
 * Execute `insn`, which may fault, and record in the doubleword at `slot`
 * the vector of the exception it raised, or NO_FAULT if it raised none. The
 * guest's handler (exc32.inc / exc64.inc) writes the slot and resumes after
 * the instruction. Registers and flags are left as `insn` left them, so the
 * caller can still store what, say, RDMSR returned. Works in both modes.
 */
.macro TRY slot, insn:vararg
	mov	dword ptr [\slot], NO_FAULT
	mov	dword ptr [EXC_SLOT], \slot
	mov	dword ptr [EXC_RESUME], offset 9901f
	\insn
9901:
	mov	dword ptr [EXC_RESUME], 0
.endm

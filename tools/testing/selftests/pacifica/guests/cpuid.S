/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cpuid.rs: the guest's view of CPUID. For each leaf below (subleaf 0) the
 * guest stores EAX, EBX, ECX, EDX as 16 bytes, one leaf after another from
 * DATA_BASE, in this order:
 * 0, 1, 0x40000000, 0x80000000, 0x80000001, 0x8000000a.
 */
#include "guest.h"

	.code64
	.global cpuid_leaves64
cpuid_leaves64:
	mov	edi, DATA_BASE
	.irp leaf, 0, 1, 0x40000000, 0x80000000, 0x80000001, 0x8000000a
	mov	eax, \leaf
	xor	ecx, ecx
	cpuid
	mov	[rdi], eax
	mov	[rdi+4], ebx
	mov	[rdi+8], ecx
	mov	[rdi+12], edx
	add	edi, 16
	.endr
	HALT

	/* The same in 32-bit mode, leaf 0x40000000 only. */
	.code32
	.global cpuid_hv32
cpuid_hv32:
	mov	eax, 0x40000000
	xor	ecx, ecx
	cpuid
	mov	[DATA_BASE+0], eax
	mov	[DATA_BASE+4], ebx
	mov	[DATA_BASE+8], ecx
	mov	[DATA_BASE+12], edx
	HALT

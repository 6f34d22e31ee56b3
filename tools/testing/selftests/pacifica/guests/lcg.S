/* SPDX-License-Identifier: GPL-2.0 */
/*
 * two_vms.rs: a guest whose exits depend on its seed, so that concurrently
 * running VMs (or vCPUs) whose state got mixed up would be noticed.
 *
 * In: EBX = seed, ECX = rounds, RDI = where to store the final value.
 * Each round computes x = x * 1103515245 + 12345 (mod 2^32) and writes x to
 * PORT_TEST; the last x goes to [RDI]. Nothing touches the stack, so two
 * vCPUs of one VM can run it at once.
 */
#include "guest.h"

	.code64
	.global lcg64
lcg64:
	mov	eax, ebx
	mov	dx, PORT_TEST
1:
	imul	eax, eax, 1103515245
	add	eax, 12345
	out	dx, eax
	dec	ecx
	jnz	1b
	mov	[rdi], eax
	HALT

/* SPDX-License-Identifier: GPL-2.0 */
/*
 * shadow_paging.rs: guests that exercise the shadow MMU. Both start in
 * 64-bit mode on the harness's identity map (PML4 at PML4_BASE, its entry 0
 * covering the low 4 GiB with 2 MiB pages).
 */
#include "guest.h"

/* Address-space switches pt_switch64 makes. */
#define SWITCHES 100
/* Where pt_switch64 builds its second PML4. */
#define PML4_COPY (BUF_BASE + 0x10000)
/* PML4 slots alias_many64 points at the identity map's PDPT. */
#define ALIAS_SLOTS 128
/* 2 MiB pages alias_many64 touches in each slot (needs 64 MiB of RAM). */
#define ALIAS_PAGES 32

	.code64

/*
 * Switches between two address spaces SWITCHES times, touching memory in
 * each and invalidating a page with INVLPG: under shadow paging every MOV
 * CR3 and INVLPG exits and the touches fault in new shadow entries; under
 * nested paging none of that leaves the guest.
 * Out: [DATA_BASE] = the last value stored, [DATA_BASE + 8] = CR3.
 */
	.global pt_switch64
pt_switch64:
	mov	rsi, PML4_BASE
	mov	rdi, PML4_COPY
	mov	ecx, 512
	rep movsq
	mov	rbx, PML4_BASE
	mov	rdx, PML4_COPY
	mov	ecx, SWITCHES
1:
	mov	cr3, rdx
	mov	[DATA_BASE], rcx
	mov	cr3, rbx
	mov	rax, [DATA_BASE]
	invlpg	[DATA_BASE]
	dec	ecx
	jnz	1b
	mov	rax, cr3
	mov	[DATA_BASE + 8], rax
	HALT

/*
 * Maps as much linear space as it can onto the same memory: PML4 slots 1
 * to ALIAS_SLOTS all point at the identity map's PDPT, so linear address
 * (i << 39) + x reaches guest-physical x. It then reads the quadword at
 * (i << 39) + (j << 21) + 8 * i for every slot i and 2 MiB page j, twice,
 * and sums them: each slot needs its own shadow PDPT, PD and one shadow
 * page table per 2 MiB page, far more than the shadow MMU may hold.
 * Out: [DATA_BASE] = the sum.
 */
	.global alias_many64
alias_many64:
	mov	rax, [PML4_BASE]
	mov	ecx, 1
1:
	mov	[PML4_BASE + rcx * 8], rax
	inc	ecx
	cmp	ecx, ALIAS_SLOTS + 1
	jne	1b
	mov	rax, cr3
	mov	cr3, rax
	xor	r8, r8
	mov	r10d, 2
2:
	mov	r9, 1
3:
	xor	r11, r11
4:
	mov	rax, r9
	shl	rax, 39
	mov	rdx, r11
	shl	rdx, 21
	add	rax, rdx
	add	r8, [rax + r9 * 8]
	inc	r11
	cmp	r11, ALIAS_PAGES
	jne	4b
	inc	r9
	cmp	r9, ALIAS_SLOTS + 1
	jne	3b
	dec	r10d
	jnz	2b
	mov	[DATA_BASE], r8
	HALT

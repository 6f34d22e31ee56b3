/* SPDX-License-Identifier: GPL-2.0 */
/*
 * bench64.S - the nanobenchmark guest of `pacifica bench`.
 *
 * A static ELF64 image (started in long mode over the VMM's identity map)
 * that sets up a tiny kernel of its own: GDT with ring-3 segments, a TSS,
 * an IDT (#DE and #PF handlers, every other vector fatal), SYSCALL/SYSRET,
 * and 4-level page tables with 4 KiB pages where the benchmarks need them.
 * It then times each benchmark with RDTSC, in the spirit of Adams &
 * Agesen's nanobenchmarks (Documentation/benchmarks.rst).
 *
 * The VMM drives it through four 32-bit ports (src/bench/ in the VMM):
 *
 *   OUT BENCH_SELECT <- p<<8|id  the guest is about to run benchmark id
 *                              in pass p (0: warm-up, 1: measured)
 *   IN  BENCH_SELECT -> n      how many operations to time (0: skip it)
 *   OUT BENCH_START  <- 0      the timed loop starts (the VMM snapshots
 *                              the hypervisor's exit counters)
 *   OUT BENCH_STOP   <- lo     the loop ended: low 32 bits of the cycles
 *                              (counters snapshotted again)
 *   OUT BENCH_HIGH   <- hi     the high 32 bits
 *
 * so the iteration counts (a quick run or a full one) come from the VMM,
 * and the exits between START and STOP, less the STOP exit itself, are
 * the benchmark's. After the last benchmark the guest writes 0 to the
 * exit port 0xf4; an unexpected exception prints its vector and RIP on
 * COM1 and exits with status 3.
 *
 * The benchmarks, by id (keep in step with BENCHMARKS in the VMM):
 *   0 syscall   ring 3: SYSCALL to an entry that SYSRETs at once
 *   1 in        ring 0: IN from port 0x80, which the VMM serves
 *   2 cr8wr     ring 0: MOV to CR8 (the task priority)
 *   3 callret   ring 0: CALL to a RET
 *   4 pgfault   ring 3 touches a not-present page; the #PF handler maps it
 *   5 divzero   ring 3: DIV by zero; the #DE handler skips the DIV
 *   6 ptemod    ring 0: rewrite a PTE, then INVLPG its page
 *   7 vmmcall   ring 0: VMMCALL with RAX=0 (PACIFICA_HC_PING; KVM answers
 *               an unknown hypercall in the kernel too)
 *   8 cpuid     ring 0: CPUID leaf 0
 *   9-11 ctxsw  ring 0: switch CR3 among N address spaces and write one
 *               byte in each of their M pages: (N, M) = (2, 1), (4, 8),
 *               (16, 8); one operation is one switch and its M writes
 *  12 churn     ring 0: build an address space (PML4, PDPT, PD, PT and
 *               16 pages), switch to it, write its pages, switch back and
 *               clear its entries; eight slots used in turn, so each build
 *               is a page-table page the CPU has not just used
 */

#include "hw.h"
#define COM1		0x3f8
#define COM1_LSR	(COM1 + 5)
#define LSR_THRE	0x20
#define EXIT_PORT	0xf4
#define BENCH_SELECT	0xe0
#define BENCH_START	0xe4
#define BENCH_STOP	0xe8
#define BENCH_HIGH	0xec
#define IN_PORT		0x80

#define SEL_KCODE	0x08
#define SEL_KDATA	0x10
#define SEL_UDATA	0x1b		/* 0x18, RPL 3: SYSRET's SS is STAR[63:48] + 8 */
#define SEL_UCODE	0x23		/* 0x20, RPL 3: SYSRET's CS is STAR[63:48] + 16 */
#define SEL_TSS		0x28

#define PTE_FLAGS	(PTE_P | PTE_RW | PTE_US)	/* every level: ring 3 may use it all */

#define WIN		0x40000000	/* 1 GiB: PDPT0[1], the 4 KiB-page window */
#define PTEMOD_VA	WIN		/* PD_win[0]: the ptemod page */
#define PGF_VA		(WIN + 0x200000)	/* PD_win[1..]: pgfault pages */
#define PGF_PTS		16
#define PGF_MAX		(PGF_PTS * 512)
#define SPACE_VA	0x8000000000	/* 512 GiB: PML4[1], per address space */
#define CTX_MAX_N	16
#define CTX_MAX_M	8
#define CHURN_SLOTS	8
#define CHURN_PAGES	16

#define NBENCH		13

	.code64
	.text
	.globl	_start
_start:
	leaq	stack_top(%rip), %rsp
	call	gdt_init
	call	idt_init
	call	paging_init
	call	syscall_init

	/* Two passes over the benchmarks: a warm-up (pass 0, which the VMM
	 * gives a few operations and does not record) so that first touches
	 * of memory, lazily mapped by some hypervisors, are not timed, then
	 * the measured pass 1. */
0:	xorl	%ebx, %ebx		/* benchmark id */
1:	movl	pass(%rip), %eax
	shll	$8, %eax
	orl	%ebx, %eax		/* pass << 8 | id */
	outl	%eax, $BENCH_SELECT
	inl	$BENCH_SELECT, %eax
	testl	%eax, %eax
	jz	2f
	movl	%eax, %edi		/* RDI = operations */
	leaq	bench_table(%rip), %rax
	pushq	%rbx			/* the benchmarks clobber every register */
	call	*(%rax,%rbx,8)
	popq	%rbx
2:	incl	%ebx
	cmpl	$NBENCH, %ebx
	jne	1b
	incl	pass(%rip)
	cmpl	$2, pass(%rip)
	jne	0b
	xorl	%eax, %eax
	outb	%al, $EXIT_PORT
3:	hlt
	jmp	3b

/* start / stop: bracket a timed loop; usable from ring 3 (IOPL is 3
 * there). start clobbers RAX, RDX; stop clobbers RAX, RCX, RDX. */
start:
	xorl	%eax, %eax
	outl	%eax, $BENCH_START
	rdtsc
	movl	%eax, t0(%rip)
	movl	%edx, t0+4(%rip)
	ret
stop:
	rdtsc
	shlq	$32, %rdx
	orq	%rdx, %rax
	subq	t0(%rip), %rax
	outl	%eax, $BENCH_STOP
	shrq	$32, %rax
	outl	%eax, $BENCH_HIGH
	ret

/* enter_user: run the function at RDI in ring 3 with RDI = RSI (the
 * operation count), IF clear and IOPL 3. The function comes back with
 * SYSCALL and R12 != 0; enter_user then returns on the kernel stack. */
enter_user:
	pushq	%rbx
	pushq	%rbp
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, kernel_rsp(%rip)
	pushq	$SEL_UDATA
	leaq	user_stack_top(%rip), %rax
	pushq	%rax
	pushq	$0x3002			/* RFLAGS: IOPL 3, IF clear */
	pushq	$SEL_UCODE
	pushq	%rdi
	movq	%rsi, %rdi
	iretq

/* The SYSCALL entry: the syscall benchmark's R12 is 0, a plain return.
 * RCX and R11 hold the user RIP and RFLAGS. */
syscall_entry:
	testq	%r12, %r12
	jnz	1f
	sysretq
1:	movq	kernel_rsp(%rip), %rsp	/* back to enter_user's caller */
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbp
	popq	%rbx
	ret

/* leave_user: how a ring-3 benchmark ends. */
.macro LEAVE_USER
	movl	$1, %r12d
	syscall
.endm

/* ---- the benchmarks: RDI = operations ---- */

b_syscall:
	leaq	u_syscall(%rip), %rax
	movq	%rdi, %rsi
	movq	%rax, %rdi
	jmp	enter_user
u_syscall:				/* ring 3 */
	movq	%rdi, %rbx
	xorl	%r12d, %r12d
	call	start
1:	syscall
	decq	%rbx
	jnz	1b
	call	stop
	LEAVE_USER

b_in:
	movq	%rdi, %rbx
	call	start
1:	inb	$IN_PORT, %al
	decq	%rbx
	jnz	1b
	jmp	stop

b_cr8wr:
	movq	%rdi, %rbx
	call	start
	xorl	%ecx, %ecx
1:	movq	%rcx, %cr8
	decq	%rbx
	jnz	1b
	jmp	stop

b_callret:
	movq	%rdi, %rbx
	call	start
1:	call	2f
	decq	%rbx
	jnz	1b
	jmp	stop
2:	ret

/* pgfault: mark the first n pgfault PTEs not present (P clear, the rest
 * of the entry ready), then ring 3 reads each page once. */
b_pgfault:
	cmpq	$PGF_MAX, %rdi
	jbe	1f
	movq	$PGF_MAX, %rdi
1:	movq	%rdi, %rsi
	leaq	pgf_pts(%rip), %rdx
	leaq	data_page(%rip), %rax
	orq	$(PTE_RW | PTE_US), %rax	/* not present */
	xorl	%ecx, %ecx
2:	movq	%rax, (%rdx,%rcx,8)
	incq	%rcx
	cmpq	%rsi, %rcx
	jne	2b
	movq	%cr3, %rax		/* flush: the pages were mapped last run */
	movq	%rax, %cr3
	leaq	u_pgfault(%rip), %rdi
	jmp	enter_user
u_pgfault:				/* ring 3 */
	movq	%rdi, %rbx
	movabsq	$PGF_VA, %rsi
	call	start
1:	movb	(%rsi), %al		/* faults; the handler maps the page */
	addq	$4096, %rsi
	decq	%rbx
	jnz	1b
	call	stop
	LEAVE_USER

b_divzero:
	movq	%rdi, %rsi
	leaq	u_divzero(%rip), %rdi
	jmp	enter_user
u_divzero:				/* ring 3 */
	movq	%rdi, %rbx
	call	start
	xorl	%ecx, %ecx
1:	xorl	%eax, %eax
	xorl	%edx, %edx
	divl	%ecx			/* 2 bytes: the #DE handler skips it */
	decq	%rbx
	jnz	1b
	call	stop
	LEAVE_USER

/* ptemod: alternate the ptemod page between two frames. */
b_ptemod:
	movq	%rdi, %rbx
	leaq	data_page(%rip), %r8
	orq	$PTE_FLAGS, %r8
	leaq	data_page2(%rip), %r9
	orq	$PTE_FLAGS, %r9
	movabsq	$PTEMOD_VA, %rsi
	call	start
1:	movq	%r8, ptemod_pt(%rip)
	invlpg	(%rsi)
	xchgq	%r8, %r9
	decq	%rbx
	jnz	1b
	jmp	stop

b_vmmcall:
	movq	%rdi, %rbx
	call	start
1:	xorl	%eax, %eax		/* PACIFICA_HC_PING */
	vmmcall
	decq	%rbx
	jnz	1b
	jmp	stop

b_cpuid:
	movq	%rdi, %r8
	call	start
1:	xorl	%eax, %eax
	xorl	%ecx, %ecx
	cpuid
	decq	%r8
	jnz	1b
	jmp	stop

b_ctx_2_1:
	movl	$2, %esi
	movl	$1, %edx
	jmp	ctxsw
b_ctx_4_8:
	movl	$4, %esi
	movl	$8, %edx
	jmp	ctxsw
b_ctx_16_8:
	movl	$16, %esi
	movl	$8, %edx
	/* fall through */

/* ctxsw: RDI operations, RSI = N spaces, RDX = M pages. Space i has its
 * own PML4 (entry 0 shared with the kernel), PDPT, PD and PT, mapping M
 * frames of its own at SPACE_VA. */
ctxsw:
	movq	%rdi, %rbx
	movq	%rsi, %r13		/* N */
	movq	%rdx, %r14		/* M */
	xorl	%ecx, %ecx		/* space */
1:	movq	%rcx, %rdi
	call	space_tables		/* RAX = PML4 of space RCX */
	movq	%rcx, %r8
	imulq	$(CTX_MAX_M * 4096), %r8
	leaq	ctx_frames(%rip), %r9
	addq	%r8, %r9		/* this space's first frame */
	movq	%r14, %rsi
	call	build_space
	incq	%rcx
	cmpq	%r13, %rcx
	jne	1b

	call	start
	xorl	%ecx, %ecx		/* current space */
2:	movq	%rcx, %rdi
	call	space_tables
	movq	%rax, %cr3
	movabsq	$SPACE_VA, %rdx
	movq	%r14, %rsi
3:	movb	$1, (%rdx)
	addq	$4096, %rdx
	decq	%rsi
	jnz	3b
	incq	%rcx
	cmpq	%r13, %rcx
	jne	4f
	xorl	%ecx, %ecx
4:	decq	%rbx
	jnz	2b
	movq	kernel_pml4_pa(%rip), %rax
	movq	%rax, %cr3
	jmp	stop

/* churn: RDI operations. */
b_churn:
	movq	%rdi, %rbx
	xorl	%r13d, %r13d		/* slot */
	call	start
1:	movq	%r13, %rdi
	addq	$CTX_MAX_N, %rdi	/* the churn slots follow the spaces */
	call	space_tables
	movq	%rax, %r15
	leaq	churn_frames(%rip), %r9
	movl	$CHURN_PAGES, %esi
	call	build_space
	movq	%r15, %cr3
	movabsq	$SPACE_VA, %rdx
	movl	$CHURN_PAGES, %esi
2:	movb	$1, (%rdx)
	addq	$4096, %rdx
	decq	%rsi
	jnz	2b
	movq	kernel_pml4_pa(%rip), %rax
	movq	%rax, %cr3
	/* Tear down: clear every entry build_space wrote. */
	movq	%r15, %rdi
	movq	$0, (%rdi)
	movq	$0, 8(%rdi)
	movq	$0, 4096(%rdi)		/* PDPT */
	movq	$0, 8192(%rdi)		/* PD */
	leaq	12288(%rdi), %rdi	/* PT */
	movl	$CHURN_PAGES, %ecx
	xorl	%eax, %eax
	rep stosq
	incq	%r13
	andq	$(CHURN_SLOTS - 1), %r13
	decq	%rbx
	jnz	1b
	jmp	stop

/* space_tables: RAX = the PML4 of address space RDI (its PDPT, PD and PT
 * follow it, one page each). Clobbers nothing else. */
space_tables:
	movq	%rdi, %rax
	shlq	$14, %rax		/* four pages per space */
	pushq	%rdx
	leaq	spaces(%rip), %rdx
	addq	%rdx, %rax
	popq	%rdx
	ret

/* build_space: fill the tables at RAX (PML4, PDPT, PD, PT) so that RSI
 * pages from frame R9 on are mapped at SPACE_VA, with the kernel's
 * mappings in PML4[0]. Clobbers R8, R9, R10, RSI. */
build_space:
	movq	kernel_pml4(%rip), %r8	/* PML4[0]: the kernel's */
	movq	%r8, (%rax)
	leaq	4096+PTE_FLAGS(%rax), %r8
	movq	%r8, 8(%rax)		/* PML4[1] -> PDPT */
	leaq	8192+PTE_FLAGS(%rax), %r8
	movq	%r8, 4096(%rax)		/* PDPT[0] -> PD */
	leaq	12288+PTE_FLAGS(%rax), %r8
	movq	%r8, 8192(%rax)		/* PD[0] -> PT */
	leaq	12288(%rax), %r10
	orq	$PTE_FLAGS, %r9
1:	movq	%r9, (%r10)
	addq	$8, %r10
	addq	$4096, %r9
	decq	%rsi
	jnz	1b
	ret

	.section .rodata
	.balign	8
bench_table:
	.quad	b_syscall, b_in, b_cr8wr, b_callret, b_pgfault, b_divzero
	.quad	b_ptemod, b_vmmcall, b_cpuid, b_ctx_2_1, b_ctx_4_8, b_ctx_16_8
	.quad	b_churn
	.text

/* ---- exceptions ---- */

/* #DE from the divzero loop: skip the 2-byte DIV. */
de_handler:
	addq	$2, (%rsp)
	iretq

/* #PF: map a pgfault page (set P in its PTE) and retry; anything else
 * is fatal. The stack: error code, RIP, CS, RFLAGS, RSP, SS. */
pf_handler:
	pushq	%rax
	pushq	%rdx
	movq	%cr2, %rax
	movabsq	$PGF_VA, %rdx
	subq	%rdx, %rax
	cmpq	$(PGF_MAX * 4096), %rax
	jae	1f
	shrq	$12, %rax
	leaq	pgf_pts(%rip), %rdx
	orq	$PTE_P, (%rdx,%rax,8)
	popq	%rdx
	popq	%rax
	addq	$8, %rsp		/* the error code */
	iretq
1:	popq	%rdx
	popq	%rax
	pushq	$14
	jmp	fatal_err

/* Every other vector: print "bench64: exception V at RIP" and exit 3. */
.macro STUB vec
stub_\vec:
	.if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17)
	pushq	$\vec
	jmp	fatal_err
	.else
	pushq	$\vec
	jmp	fatal
	.endif
.endm
	.irp	v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	STUB	\v
	.endr
fatal_err:				/* vector, error code, RIP, ... */
	popq	%rbx
	addq	$8, %rsp
	jmp	1f
fatal:					/* vector, RIP, ... */
	popq	%rbx
1:	movq	(%rsp), %rbp		/* RIP */
	leaq	msg_exc(%rip), %rsi
	call	puts
	movq	%rbx, %rax
	call	puthex
	leaq	msg_at(%rip), %rsi
	call	puts
	movq	%rbp, %rax
	call	puthex
	movb	$'\n', %al
	call	putc
	movb	$3, %al
	outb	%al, $EXIT_PORT
2:	hlt
	jmp	2b

putc:					/* AL; clobbers RDX */
	pushq	%rax
	movw	$COM1_LSR, %dx
1:	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	1b
	popq	%rax
	movw	$COM1, %dx
	outb	%al, %dx
	ret
puts:					/* RSI; clobbers RAX, RDX, RSI */
	lodsb
	testb	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret
puthex:					/* RAX, 16 digits; clobbers RAX, RCX, RDX, RDI */
	movq	%rax, %rdi
	movl	$16, %ecx
1:	rolq	$4, %rdi
	movl	%edi, %eax
	andl	$0xf, %eax
	leaq	hexdigits(%rip), %rdx
	movb	(%rdx,%rax), %al
	call	putc
	loop	1b
	ret

/* ---- set-up ---- */

/* gdt_init: load our GDT, reload the segments, fill in and load the TSS
 * (RSP0: the stack ring-3 exceptions arrive on). */
gdt_init:
	leaq	tss(%rip), %rax
	movw	%ax, gdt+SEL_TSS+2(%rip)
	shrq	$16, %rax
	movb	%al, gdt+SEL_TSS+4(%rip)
	movb	%ah, gdt+SEL_TSS+7(%rip)
	shrq	$16, %rax
	movl	%eax, gdt+SEL_TSS+8(%rip)
	leaq	exc_stack_top(%rip), %rax
	movq	%rax, tss+4(%rip)
	lgdt	gdt_desc(%rip)
	popq	%rax			/* our return address */
	pushq	$SEL_KCODE
	pushq	%rax
	movw	$SEL_KDATA, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$SEL_TSS, %ax
	ltr	%ax
	lretq				/* returns with CS reloaded */

/* idt_init: interrupt gates (DPL 0) to the stubs, then #DE and #PF to
 * their handlers. */
idt_init:
	xorl	%ecx, %ecx
1:	leaq	stub_table(%rip), %rax
	movq	(%rax,%rcx,8), %rax
	cmpl	$0, %ecx
	jne	2f
	leaq	de_handler(%rip), %rax
2:	cmpl	$14, %ecx
	jne	3f
	leaq	pf_handler(%rip), %rax
3:	movq	%rax, %rdx
	andq	$0xffff, %rdx
	orq	$(SEL_KCODE << 16), %rdx
	movq	%rax, %r8
	shrq	$16, %r8
	andq	$0xffff, %r8
	shlq	$48, %r8
	orq	%r8, %rdx
	movq	$0x8e0000000000, %r8	/* present, DPL 0, interrupt gate */
	orq	%r8, %rdx
	shrq	$32, %rax
	movq	%rcx, %r8
	shlq	$4, %r8
	leaq	idt(%rip), %r9
	movq	%rdx, (%r9,%r8)
	movq	%rax, 8(%r9,%r8)
	incl	%ecx
	cmpl	$32, %ecx
	jne	1b
	lidt	idt_desc(%rip)
	ret

/* paging_init: PML4[0] -> PDPT0: [0] 0-1 GiB identity in 2 MiB pages,
 * [1] the window (PD_win[0] -> ptemod PT, PD_win[1..16] -> pgfault PTs). */
paging_init:
	leaq	pd0(%rip), %rdi
	movq	$(PTE_P | PTE_RW | PTE_US | PTE_PS), %rax
	xorl	%ecx, %ecx
1:	movq	%rax, (%rdi,%rcx,8)
	addq	$0x200000, %rax
	incl	%ecx
	cmpl	$512, %ecx
	jne	1b
	leaq	pd0+PTE_FLAGS(%rip), %rax
	movq	%rax, pdpt0(%rip)
	leaq	pd_win+PTE_FLAGS(%rip), %rax
	movq	%rax, pdpt0+8(%rip)
	leaq	ptemod_pt+PTE_FLAGS(%rip), %rax
	movq	%rax, pd_win(%rip)
	leaq	pgf_pts+PTE_FLAGS(%rip), %rax
	leaq	pd_win+8(%rip), %rdi
	movl	$PGF_PTS, %ecx
2:	movq	%rax, (%rdi)
	addq	$4096, %rax
	addq	$8, %rdi
	decl	%ecx
	jnz	2b
	leaq	data_page+PTE_FLAGS(%rip), %rax
	movq	%rax, ptemod_pt(%rip)
	leaq	pdpt0+PTE_FLAGS(%rip), %rax
	movq	%rax, kernel_pml4(%rip)
	leaq	kernel_pml4(%rip), %rax
	movq	%rax, kernel_pml4_pa(%rip)
	movq	%rax, %cr3
	ret

/* syscall_init: EFER.SCE, kernel CS 0x08 (SS 0x10), SYSRET base 0x10
 * (SS 0x18|3, CS 0x20|3), LSTAR, and IF/TF/DF/AC/IOPL masked on entry. */
syscall_init:
	movl	$MSR_EFER, %ecx
	rdmsr
	orl	$EFER_SCE, %eax
	wrmsr
	movl	$MSR_STAR, %ecx
	xorl	%eax, %eax
	movl	$((0x10 << 16) | SEL_KCODE), %edx
	wrmsr
	movl	$MSR_LSTAR, %ecx
	leaq	syscall_entry(%rip), %rax
	movq	%rax, %rdx
	shrq	$32, %rdx
	wrmsr
	movl	$MSR_SFMASK, %ecx
	movl	$0x43700, %eax		/* AC, IOPL, DF, IF, TF */
	xorl	%edx, %edx
	wrmsr
	ret

	.section .rodata
hexdigits:	.ascii	"0123456789abcdef"
msg_exc:	.asciz	"bench64: exception "
msg_at:		.asciz	" at "
	.balign	8
stub_table:
	.irp	v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad	stub_\v
	.endr

	.data
	.balign	8
gdt:	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad	0x00cf92000000ffff	/* 0x10 kernel data */
	.quad	0x00cff2000000ffff	/* 0x18 user data, DPL 3 */
	.quad	0x00affa000000ffff	/* 0x20 user code, 64-bit, DPL 3 */
	.quad	0x0000890000000067	/* 0x28 64-bit TSS, base filled in */
	.quad	0
gdt_end:
gdt_desc:
	.word	gdt_end - gdt - 1
	.quad	gdt
idt_desc:
	.word	32 * 16 - 1
	.quad	idt
t0:		.quad	0
pass:		.long	0
kernel_rsp:	.quad	0
kernel_pml4_pa:	.quad	0

	.bss
	.balign	4096
kernel_pml4:	.skip	4096
pdpt0:		.skip	4096
pd0:		.skip	4096
pd_win:		.skip	4096
ptemod_pt:	.skip	4096
pgf_pts:	.skip	PGF_PTS * 4096
data_page:	.skip	4096
data_page2:	.skip	4096
/* Address spaces: CTX_MAX_N for ctxsw, then CHURN_SLOTS for churn. */
spaces:		.skip	(CTX_MAX_N + CHURN_SLOTS) * 4 * 4096
ctx_frames:	.skip	CTX_MAX_N * CTX_MAX_M * 4096
churn_frames:	.skip	CHURN_PAGES * 4096
idt:		.skip	32 * 16
tss:		.skip	104
	.balign	16
exc_stack:	.skip	4096
exc_stack_top:
user_stack:	.skip	4096
user_stack_top:
stack:		.skip	8192
stack_top:

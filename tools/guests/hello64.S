/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hello64.S - an ELF64 long-mode guest for pacifica.
 *
 * The same program as hello.S for pacifica's ELF64 protocol: print a
 * greeting and the mem_upper value from the Multiboot information on COM1,
 * then write 0 to the exit port (1: wrong magic, 2: no memory fields).
 *
 * Entered in 64-bit mode over identity-mapped page tables with
 * EAX = 0x2BADB002, RBX = RDI = address of the Multiboot information and
 * a stack whose top holds the address of a hlt loop.
 */

#define MB_LOADER_MAGIC	0x2BADB002
#define MB_INFO_MEMORY	0x1		/* info flags: mem_lower/mem_upper valid */
#define MB_MEM_UPPER	8		/* offset of mem_upper in the info */

#define COM1		0x3f8
#define COM1_LSR	(COM1 + 5)	/* line status register */
#define LSR_THRE	0x20		/* transmitter holding register empty */
#define EXIT_PORT	0xf4

	.code64
	.text
	.globl	_start
_start:
	movl	%eax, %ebp		/* keep the magic; RBX keeps the info */

	leaq	hello(%rip), %rsi
	call	puts

	movb	$1, %al
	cmpl	$MB_LOADER_MAGIC, %ebp
	jne	exit
	movb	$2, %al
	testl	$MB_INFO_MEMORY, (%rbx)
	jz	exit

	leaq	mem_upper(%rip), %rsi
	call	puts
	movl	MB_MEM_UPPER(%rbx), %eax	/* zero-extends into RAX */
	call	putdec
	movb	$'\n', %al
	call	putc
	xorl	%eax, %eax

exit:	/* AL = status */
	outb	%al, $EXIT_PORT
1:	hlt				/* not reached under pacifica */
	jmp	1b

/* putc: send AL on COM1 once the transmitter is empty. Clobbers EDX. */
putc:
	pushq	%rax
	movw	$COM1_LSR, %dx
1:	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	1b
	popq	%rax
	movw	$COM1, %dx
	outb	%al, %dx
	ret

/* puts: send the NUL-terminated string at RSI. Clobbers RAX, RDX, RSI. */
puts:
	lodsb
	testb	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret

/* putdec: send RAX in decimal. Clobbers RAX, RCX, RDX. */
putdec:
	pushq	%rbx
	movl	$10, %ecx
	xorl	%ebx, %ebx		/* number of digits pushed */
1:	xorl	%edx, %edx
	divq	%rcx			/* RAX = RAX / 10, RDX = remainder */
	addl	$'0', %edx
	pushq	%rdx
	incl	%ebx
	testq	%rax, %rax
	jnz	1b
2:	popq	%rax
	call	putc
	decl	%ebx
	jnz	2b
	popq	%rbx
	ret

	.section .rodata
hello:		.asciz	"Hello from a Pacifica guest\n"
mem_upper:	.asciz	"mem_upper: "

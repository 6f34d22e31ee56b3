/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hello.S - a Multiboot v1 guest for pacifica.
 *
 * It prints a greeting and the mem_upper value (KiB above 1 MiB) from the
 * Multiboot information on COM1, then writes 0 to the exit port, which ends
 * the run with status 0. If the loader's magic is wrong it exits with 1, if
 * the information has no memory fields with 2.
 *
 * Entered in 32-bit protected mode, paging off, EAX = 0x2BADB002 and
 * EBX = address of the Multiboot information (Multiboot spec 3.2).
 */

#define MB_MAGIC	0x1BADB002
#define MB_FLAGS	0x00000003	/* page-align modules, want memory info */
#define MB_LOADER_MAGIC	0x2BADB002
#define MB_INFO_MEMORY	0x1		/* info flags: mem_lower/mem_upper valid */
#define MB_MEM_UPPER	8		/* offset of mem_upper in the info */

#define COM1		0x3f8
#define COM1_LSR	(COM1 + 5)	/* line status register */
#define LSR_THRE	0x20		/* transmitter holding register empty */
#define EXIT_PORT	0xf4

/* The header must lie 4-byte aligned in the first 8 KiB: the linker
 * script puts this section first. */
	.section .multiboot, "a"
	.balign 4
	.long	MB_MAGIC
	.long	MB_FLAGS
	.long	-(MB_MAGIC + MB_FLAGS)

	.code32
	.text
	.globl	_start
_start:
	/* The spec leaves ESP undefined: use our own stack. */
	movl	$stack_top, %esp
	movl	%eax, %ebp		/* keep the magic and the info pointer */
	movl	%ebx, %edi

	movl	$hello, %esi
	call	puts

	movb	$1, %al
	cmpl	$MB_LOADER_MAGIC, %ebp
	jne	exit
	movb	$2, %al
	testl	$MB_INFO_MEMORY, (%edi)
	jz	exit

	movl	$mem_upper, %esi
	call	puts
	movl	MB_MEM_UPPER(%edi), %eax
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
	pushl	%eax
	movw	$COM1_LSR, %dx
1:	inb	%dx, %al
	testb	$LSR_THRE, %al
	jz	1b
	popl	%eax
	movw	$COM1, %dx
	outb	%al, %dx
	ret

/* puts: send the NUL-terminated string at ESI. Clobbers EAX, EDX, ESI. */
puts:
	lodsb
	testb	%al, %al
	jz	1f
	call	putc
	jmp	puts
1:	ret

/* putdec: send EAX in decimal. Digits are pushed least significant first
 * and popped in print order. Clobbers EAX, ECX, EDX. */
putdec:
	pushl	%ebx
	movl	$10, %ecx
	xorl	%ebx, %ebx		/* number of digits pushed */
1:	xorl	%edx, %edx
	divl	%ecx			/* EAX = EAX / 10, EDX = remainder */
	addl	$'0', %edx
	pushl	%edx
	incl	%ebx
	testl	%eax, %eax
	jnz	1b
2:	popl	%eax
	call	putc
	decl	%ebx
	jnz	2b
	popl	%ebx
	ret

	.section .rodata
hello:		.asciz	"Hello from a Pacifica guest\n"
mem_upper:	.asciz	"mem_upper: "

	.bss
	.balign	16
stack:	.skip	4096
stack_top:

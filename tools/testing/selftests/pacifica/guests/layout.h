/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest-physical memory layout every selftest guest shares.
 *
 * This header is the one definition: the guests include it, and build.rs
 * turns each `#define NAME value` below into a Rust constant of the same
 * name in `pacifica_selftests::layout`, carrying the comment above it as the
 * constant's documentation. Keep every definition a plain number on one line
 * with a one-line comment above it.
 */
#ifndef PACIFICA_SELFTEST_LAYOUT_H
#define PACIFICA_SELFTEST_LAYOUT_H

/* Guest RAM the harness registers by default, from guest-physical 0. */
#define RAM_SIZE 0x100000

/* The GDT the harness writes, the VMM's: null, 32-bit code, data, 64-bit code, TSS. */
#define GDT_BASE 0x500
/* The TSS TR starts with, the VMM's (zeroed; 0x68 bytes). */
#define TSS_BASE 0x580
/* The GDT the guest fuzzer writes instead (256 bytes). */
#define FUZZ_GDT_BASE 0x1000
/* The long-mode PML4; the harness builds an identity map of the low 4 GiB. */
#define PML4_BASE 0x2000
/* The one page-directory-pointer table under the PML4. */
#define PDPT_BASE 0x3000
/* Four page directories of 2 MiB pages, at 0x4000..0x7fff. */
#define PD_BASE 0x4000
/* Where a guest that wants exceptions builds its IDT (256 gates at most). */
#define IDT_BASE 0x8000

/* Exception bookkeeping page the guest's handlers write; see exc64.inc. */
#define EXC_PAGE 0x9000
/* Address to resume at after the next exception; 0 means halt instead. */
#define EXC_RESUME 0x9000
/* Vector of the last exception, as a quadword. */
#define EXC_VECTOR 0x9008
/* Error code of the last exception (0 for vectors without one). */
#define EXC_ERROR 0x9010
/* Where the handler stores the vector for TRY (a doubleword address). */
#define EXC_SLOT 0x9020
/* Number of exceptions taken so far, as a doubleword. */
#define EXC_COUNT 0x9018
/* Value a guest stores in a result slot when an instruction did not fault. */
#define NO_FAULT 0xff

/* Results a guest leaves for the test to read after it halts (24 KiB). */
#define DATA_BASE 0xa000
/* Where every guest image is linked and loaded. */
#define CODE_BASE 0x10000
/* Scratch buffers the test fills or reads (the I/O tests use them), 192 KiB. */
#define BUF_BASE 0x40000
/* Initial stack pointer; the stack grows down from here. */
#define STACK_TOP 0x80000
/* A second stack, for a second vCPU in the same VM. */
#define STACK2_TOP 0x90000

/* Selector of the flat 32-bit code segment in the harness's GDT. */
#define SEL_CODE32 0x08
/* Selector of the flat data segment in the harness's GDT. */
#define SEL_DATA 0x10
/* Selector of the 64-bit code segment in the harness's GDT. */
#define SEL_CODE64 0x18

/* The 16550 UART the harness serves: guests may print through it. */
#define PORT_UART 0x3f8
/* The guest's exception handlers write the vector here (one byte). */
#define PORT_EXC 0x501
/* The guest is done (guest.h's STOP): HLT would sleep in the kernel in a
 * VM with an in-kernel APIC. */
#define PORT_DONE 0x502
/* The port the I/O tests talk to (and the next few: one per access width). */
#define PORT_TEST 0x600
/* A port below 0x100, for the immediate-operand forms of IN and OUT. */
#define PORT_TEST_IMM 0xe0

/* A guest-physical address outside RAM: accesses there are MMIO exits. */
#define MMIO_BASE 0xd0000000

#endif

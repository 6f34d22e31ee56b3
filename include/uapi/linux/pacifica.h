/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The userspace interface of /dev/pacifica: an AMD-V (SVM) hypervisor.
 *
 * This header is the one definition of the ABI. The module's Rust
 * definitions (rust/uapi_bindings.rs, generated at build time) and the
 * userspace tools' (the pacifica-uapi crate) are generated from it by
 * bindgen, with size and offset checks; Documentation/uapi.rst describes
 * every ioctl, field and errno.
 *
 * The interface is shaped like KVM's: the device fd creates VM fds, a VM
 * fd registers guest memory and creates vCPU fds, and a vCPU fd runs the
 * guest and maps a struct pacifica_run page that describes the last exit.
 * Every structure has fixed-width fields and explicit padding; padding and
 * reserved words are zero in both directions.
 */
#ifndef _UAPI_LINUX_PACIFICA_H
#define _UAPI_LINUX_PACIFICA_H

#include <linux/types.h>
#include <linux/ioctl.h>

/*
 * The ioctl type byte. 0xAF is not taken in Linux's ioctl-number list,
 * next to KVM's 0xAE, which makes the kinship visible in strace output.
 */
#define PACIFICA_IO			0xAF

/* What PACIFICA_GET_API_VERSION returns; bumped on every incompatible change. */
#define PACIFICA_API_VERSION		3

/* Limits. */
#define PACIFICA_MAX_VCPUS		8
#define PACIFICA_MAX_MEMORY_REGIONS	32
/* All regions of one VM together: 256 GiB (SET_MEMORY_REGION: E2BIG). */
#define PACIFICA_MAX_GUEST_RAM		(256ULL << 30)
/*
 * Shadow paging: the pages one VM's shadow tables and their bookkeeping may
 * hold, PACIFICA_SHADOW_BUDGET_PAGES / PACIFICA_MAX_VCPUS per vCPU; beyond
 * it the least recently used tables go (the guest only sees more faults).
 */
#define PACIFICA_SHADOW_BUDGET_PAGES	16384

/* PACIFICA_CREATE_VM's argument. */
#define PACIFICA_PAGING_NPT		0	/* hardware nested paging */
#define PACIFICA_PAGING_SHADOW		1	/* software shadow paging */

/* struct pacifica_module_info.features (from CPUID 8000_000A EDX). */
#define PACIFICA_FEATURE_NPT		(1ULL << 0)	/* EDX bit 0 */
#define PACIFICA_FEATURE_NRIPS		(1ULL << 1)	/* EDX bit 3 */
#define PACIFICA_FEATURE_VMCB_CLEAN	(1ULL << 2)	/* EDX bit 5 */
#define PACIFICA_FEATURE_FLUSH_BY_ASID	(1ULL << 3)	/* EDX bit 6 */
#define PACIFICA_FEATURE_DECODE_ASSISTS	(1ULL << 4)	/* EDX bit 7 */
#define PACIFICA_FEATURE_VGIF		(1ULL << 5)	/* EDX bit 16 */

/* PACIFICA_GET_INFO. */
struct pacifica_module_info {
	__u32 api_version;	/* PACIFICA_API_VERSION */
	__u32 svm_revision;	/* CPUID 8000_000A EAX[7:0] */
	__u32 nr_asids;		/* CPUID 8000_000A EBX */
	__u32 nr_cpus;		/* online CPUs with SVM enabled by the module */
	__u64 features;		/* PACIFICA_FEATURE_* */
	__u32 cpuid_svm_edx;	/* raw CPUID 8000_000A EDX */
	__u32 pad;
	/* Pages the module holds (VMCBs, page tables, run pages, ...), not
	 * counting pinned guest memory. */
	__u64 pages_allocated;
	__u64 pages_pinned;	/* guest pages pinned by all VMs */
	__u64 nr_vms;		/* VMs alive */
	/* The rate of the guests' TSC (the host's: TSC_OFFSET only shifts
	 * it), in kHz; 0 if the host kernel does not know its own. */
	__u64 guest_tsc_khz;
	__u64 reserved[7];
};

/* PACIFICA_SET_MEMORY_REGION: guest-physical memory backed by the caller's mapping. */
struct pacifica_memory_region {
	__u32 slot;		/* 0..PACIFICA_MAX_MEMORY_REGIONS-1, each used once */
	__u32 flags;		/* zero */
	__u64 guest_phys_addr;	/* page-aligned */
	__u64 memory_size;	/* page-aligned, non-zero */
	__u64 userspace_addr;	/* page-aligned, readable and writable */
};

/* General registers, in the order of KVM's struct kvm_regs. */
struct pacifica_regs {
	__u64 rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	__u64 r8, r9, r10, r11, r12, r13, r14, r15;
	__u64 rip, rflags;
};

/*
 * A segment register as the VMCB holds it. attrib is the VMCB's packed
 * attribute format (APM Vol. 2, 15.5.1): bits 0-3 type, 4 S, 5-6 DPL, 7 P,
 * 8 AVL, 9 L, 10 D/B, 11 G.
 */
struct pacifica_segment {
	__u64 base;
	__u32 limit;
	__u16 selector;
	__u16 attrib;
};

/* A descriptor-table register (GDTR or IDTR). */
struct pacifica_dtable {
	__u64 base;
	__u16 limit;
	__u16 pad[3];
};

/* PACIFICA_GET_SREGS, PACIFICA_SET_SREGS. */
struct pacifica_sregs {
	struct pacifica_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct pacifica_dtable gdt, idt;
	__u64 cr0, cr2, cr3, cr4, cr8;
	__u64 efer;		/* as the guest sees it (without SVME) */
	__u64 reserved[8];	/* zero (SET_SREGS: EINVAL otherwise) */
};

/* struct pacifica_run.exit_reason. */
#define PACIFICA_EXIT_UNKNOWN		0	/* never reported */
#define PACIFICA_EXIT_IO		2	/* exit.io */
#define PACIFICA_EXIT_HYPERCALL		3	/* exit.hypercall */
#define PACIFICA_EXIT_HLT		5
#define PACIFICA_EXIT_MMIO		6	/* exit.mmio */
#define PACIFICA_EXIT_SHUTDOWN		8	/* triple fault */
#define PACIFICA_EXIT_FAIL_ENTRY	9	/* VMRUN refused the state; exit.internal */
#define PACIFICA_EXIT_INTERNAL_ERROR	17	/* exit.internal */
#define PACIFICA_EXIT_INTA		18	/* exit.inta: ExtINT acknowledge */
#define PACIFICA_EXIT_EOI		19	/* exit.eoi: EOI of a level-triggered vector */

/* struct pacifica_io_exit.direction. */
#define PACIFICA_EXIT_IO_IN		0	/* IN, INS */
#define PACIFICA_EXIT_IO_OUT		1	/* OUT, OUTS */

/* struct pacifica_internal_exit.suberror. */
#define PACIFICA_INTERNAL_UNHANDLED_EXIT 1	/* an SVM exit code with no handler */
#define PACIFICA_INTERNAL_EMULATION	2	/* an instruction that could not be emulated */
#define PACIFICA_INTERNAL_NPF_IN_RAM	3	/* a nested page fault inside guest RAM */
#define PACIFICA_INTERNAL_UNSUPPORTED	4	/* a mechanism not supported (yet) */

/*
 * Port I/O: count items of size bytes (more than one for REP INS/OUTS) at
 * data_offset in the run page; OUT data is there already, IN data is
 * written there by userspace before the next PACIFICA_RUN.
 */
struct pacifica_io_exit {
	__u8 direction;		/* PACIFICA_EXIT_IO_* */
	__u8 size;		/* 1, 2 or 4 */
	__u16 port;
	__u32 count;
	__u64 data_offset;	/* from the start of the run page */
};

/* An access outside every region: data holds a write's value, or is filled
 * by userspace for a read before the next PACIFICA_RUN. */
struct pacifica_mmio_exit {
	__u64 phys_addr;
	__u8 data[8];
	__u32 len;		/* 1, 2, 4 or 8 */
	__u8 is_write;
	__u8 pad[3];
};

/* VMMCALL the module does not serve: nr is the guest's RAX, args its RBX,
 * RCX, RDX and RSI; ret becomes its RAX on the next PACIFICA_RUN. */
struct pacifica_hypercall_exit {
	__u64 nr;
	__u64 args[4];
	__u64 ret;
};

/* An exit the module could not handle, with the raw SVM exit information. */
struct pacifica_internal_exit {
	__u32 suberror;		/* PACIFICA_INTERNAL_* */
	__u32 pad;
	__u64 exit_code;	/* the VMCB's EXITCODE */
	__u64 exit_info_1;
	__u64 exit_info_2;
	__u64 exit_int_info;
	__u64 rip;		/* guest RIP at the exit */
	/*
	 * PACIFICA_INTERNAL_EMULATION: the instruction's first insn_len bytes
	 * as fetched at rip (0 if they could not be read). Added within the
	 * union's room: older userspace sees the structure it knew.
	 */
	__u8 insn_len;
	__u8 insn_bytes[15];
};

/*
 * The guest can take the interrupt of a userspace PIC (LINT0 in ExtINT mode,
 * its line raised with PACIFICA_SET_LINT): userspace acknowledges it (the
 * PIC's INTA cycle) and writes the vector into vector before the next
 * PACIFICA_RUN, which delivers it; a value above 255 delivers nothing (the
 * PIC had nothing to give: its line went down).
 */
struct pacifica_inta_exit {
	__u32 vector;
	__u32 pad;
};

/* The guest ended a level-triggered interrupt: a userspace IOAPIC may
 * deliver it again if its line is still asserted. */
struct pacifica_eoi_exit {
	__u32 vector;
	__u32 pad;
};

union pacifica_exit_data {
	struct pacifica_io_exit io;
	struct pacifica_mmio_exit mmio;
	struct pacifica_hypercall_exit hypercall;
	struct pacifica_internal_exit internal;
	struct pacifica_inta_exit inta;
	struct pacifica_eoi_exit eoi;
	__u8 pad[256];
};

/* The page mmap()ed from a vCPU fd at offset 0 (PACIFICA_RUN_PAGE_SIZE bytes). */
struct pacifica_run {
	__u32 exit_reason;	/* PACIFICA_EXIT_* */
	/*
	 * Written by userspace only: while non-zero, PACIFICA_RUN fails with
	 * EINTR before entering the guest (as KVM's immediate_exit).
	 */
	__u8 immediate_exit;
	__u8 pad[3];
	__u64 rip;		/* guest RIP of the exiting instruction */
	union pacifica_exit_data exit;
};

#define PACIFICA_RUN_PAGE_SIZE		4096
#define PACIFICA_RUN_IO_DATA_OFFSET	1024	/* where I/O data lives in the run page */
#define PACIFICA_RUN_IO_DATA_SIZE	2048	/* most I/O data one exit carries */

/* Indices into struct pacifica_exit_stats.counts. */
#define PACIFICA_STAT_EXITS		0	/* every #VMEXIT */
#define PACIFICA_STAT_USER_EXITS	1	/* exits that returned to userspace */
#define PACIFICA_STAT_IO		2
#define PACIFICA_STAT_HLT		3
#define PACIFICA_STAT_NPF		4	/* nested page faults (MMIO under NPT) */
#define PACIFICA_STAT_MMIO		5
#define PACIFICA_STAT_CPUID		6
#define PACIFICA_STAT_MSR		7
#define PACIFICA_STAT_VMMCALL		8
#define PACIFICA_STAT_SHUTDOWN		9
#define PACIFICA_STAT_INTR		10	/* physical interrupts while the guest ran */
#define PACIFICA_STAT_NMI		11
#define PACIFICA_STAT_UD		12	/* intercepted instructions answered with #UD */
#define PACIFICA_STAT_GP		13	/* #GP for denied MSRs and bad MSR values */
#define PACIFICA_STAT_SIGNAL		14	/* PACIFICA_RUN ended by a signal */
#define PACIFICA_STAT_INTERNAL		15	/* internal errors and failed entries */
#define PACIFICA_STAT_PF		16	/* guest #PF intercepted (shadow paging) */
#define PACIFICA_STAT_CR		17	/* CR accesses intercepted (shadow paging) */
#define PACIFICA_STAT_INVLPG		18	/* INVLPG intercepted (shadow paging) */
#define PACIFICA_STAT_OTHER		19	/* other exits handled in the kernel */
#define PACIFICA_STAT_EXCEPTION		20	/* #DB and #AC reflected to the guest */
#define PACIFICA_STAT_IRQ_INJECTED	21	/* interrupts the local APIC gave the guest */
#define PACIFICA_STAT_IRQ_WINDOW	22	/* interrupts offered while IF = 0 or in a shadow */
#define PACIFICA_STAT_APIC_ACCESS	23	/* local APIC accesses (xAPIC page, x2APIC MSRs, APIC base) */
#define PACIFICA_STAT_NMI_INJECTED	24	/* NMIs given to the guest */
#define PACIFICA_STAT_NMI_WINDOW	25	/* NMIs held back by NMI blocking */
#define PACIFICA_STAT_HALT		26	/* HLTs that slept in the kernel */
#define PACIFICA_STAT_WAKEUP		27	/* in-kernel halts ended by an event */
#define PACIFICA_STAT_TIMER		28	/* local APIC timer expiries */
#define PACIFICA_STAT_INTA		29	/* PACIFICA_EXIT_INTA exits */
#define PACIFICA_STAT_LEVEL_EOI		30	/* PACIFICA_EXIT_EOI exits */
#define PACIFICA_STAT_APIC_EOI		31	/* EOI register writes */
#define PACIFICA_STAT_APIC_ICR		32	/* ICR writes (IPIs) */
#define PACIFICA_STAT_APIC_TIMER	33	/* timer register writes: LVTT, TMICT, TDCR, TSC_DEADLINE */
#define PACIFICA_STAT_KICK		34	/* entries skipped or exits forced by a kick */
#define PACIFICA_STAT_NR		35	/* defined counters */
#define PACIFICA_STAT_MAX		64	/* room in the array */

/* PACIFICA_GET_STATS. */
struct pacifica_exit_stats {
	__u64 counts[PACIFICA_STAT_MAX];
};

/*
 * PACIFICA_GET_LAPIC, PACIFICA_SET_LAPIC: a vCPU's in-kernel local APIC.
 * regs is the xAPIC page's first KiB (the register at offset off in
 * regs[off..off + 4], little-endian), whatever the APIC's mode.
 */
struct pacifica_lapic_state {
	__u64 apic_base;	/* IA32_APIC_BASE */
	__u64 reserved[7];	/* zero (SET_LAPIC: EINVAL otherwise) */
	__u8 regs[1024];
};

/*
 * PACIFICA_SIGNAL_MSI: a message-signalled interrupt, as a device (or a
 * userspace IOAPIC) writes it. address: 0xfee00000 | destination << 12 |
 * DM (bit 2: logical); bits 63:40 extend an x2APIC destination. data:
 * vector (7:0), delivery mode (10:8: fixed, lowest priority or NMI), level
 * (14), trigger mode (15: level). flags: zero.
 */
struct pacifica_msi {
	__u64 address;
	__u32 data;
	__u32 flags;
};

/* PACIFICA_SET_LINT: the level of a local interrupt pin (0: LINT0, 1: LINT1). */
struct pacifica_lint {
	__u32 pin;
	__u32 level;		/* 0 or 1 */
};

/* The VMMCALL number the module serves itself: RAX = 0, a cheap round trip. */
#define PACIFICA_HC_PING		0

/* ioctls on the device fd (/dev/pacifica). */
#define PACIFICA_GET_API_VERSION	_IO(PACIFICA_IO, 0x00)
#define PACIFICA_GET_INFO		_IOR(PACIFICA_IO, 0x01, struct pacifica_module_info)
#define PACIFICA_CREATE_VM		_IO(PACIFICA_IO, 0x02)	/* arg: PACIFICA_PAGING_*; returns a VM fd */
#define PACIFICA_GET_VCPU_MMAP_SIZE	_IO(PACIFICA_IO, 0x03)

/* ioctls on a VM fd. */
#define PACIFICA_SET_MEMORY_REGION	_IOW(PACIFICA_IO, 0x10, struct pacifica_memory_region)
#define PACIFICA_CREATE_VCPU		_IO(PACIFICA_IO, 0x11)	/* arg: vCPU id; returns a vCPU fd */
/*
 * An in-kernel local APIC for every vCPU (as KVM's split irqchip: the rest
 * of the platform stays in userspace). Before the first CREATE_VCPU
 * (EBUSY after it), once (EEXIST); arg 0.
 */
#define PACIFICA_CREATE_IRQCHIP		_IO(PACIFICA_IO, 0x12)
/* Delivers an MSI to the local APICs; returns how many accepted it. */
#define PACIFICA_SIGNAL_MSI		_IOW(PACIFICA_IO, 0x13, struct pacifica_msi)

/* ioctls on a vCPU fd. */
#define PACIFICA_RUN			_IO(PACIFICA_IO, 0x20)
#define PACIFICA_GET_REGS		_IOR(PACIFICA_IO, 0x21, struct pacifica_regs)
#define PACIFICA_SET_REGS		_IOW(PACIFICA_IO, 0x22, struct pacifica_regs)
#define PACIFICA_GET_SREGS		_IOR(PACIFICA_IO, 0x23, struct pacifica_sregs)
#define PACIFICA_SET_SREGS		_IOW(PACIFICA_IO, 0x24, struct pacifica_sregs)
#define PACIFICA_GET_STATS		_IOR(PACIFICA_IO, 0x25, struct pacifica_exit_stats)
#define PACIFICA_GET_LAPIC		_IOR(PACIFICA_IO, 0x26, struct pacifica_lapic_state)
#define PACIFICA_SET_LAPIC		_IOW(PACIFICA_IO, 0x27, struct pacifica_lapic_state)
/*
 * The two below never wait for a running PACIFICA_RUN: any thread may call
 * them while another runs the vCPU, which they force out of the guest.
 */
#define PACIFICA_NMI			_IO(PACIFICA_IO, 0x28)
#define PACIFICA_SET_LINT		_IOW(PACIFICA_IO, 0x29, struct pacifica_lint)

#endif /* _UAPI_LINUX_PACIFICA_H */

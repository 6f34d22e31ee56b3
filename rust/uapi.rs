// SPDX-License-Identifier: GPL-2.0

//! The userspace interface of `/dev/pacifica`.
//!
//! This file is the one definition of the ABI. The module compiles it as
//! `crate::uapi`, and the userspace tools include the same file by path
//! (`#[path = "../../rust/uapi.rs"]`), so the two sides cannot drift apart.
//! It depends on `core` only.
//!
//! The interface is shaped like KVM's: the device fd creates VM fds, a VM fd
//! registers guest memory and creates vCPU fds, and a vCPU fd runs the guest
//! and maps a [`Run`] page that describes the last exit. Every ioctl and its
//! errors are described in `Documentation/uapi.rst`.

#![allow(dead_code)]

/// The ioctl "type" byte. 0xAF is not taken in Linux's ioctl-number list
/// next to KVM's 0xAE, which makes the kinship visible in strace output.
pub const PACIFICA_IO: u32 = 0xAF;

/// The version [`PACIFICA_GET_API_VERSION`] returns. Bumped on every
/// incompatible change of this file.
pub const PACIFICA_API_VERSION: u32 = 1;

const IOC_NONE: u32 = 0;
const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | (PACIFICA_IO << 8) | nr
}
const fn io(nr: u32) -> u32 {
    ioc(IOC_NONE, nr, 0)
}
const fn ior<T>(nr: u32) -> u32 {
    ioc(IOC_READ, nr, core::mem::size_of::<T>())
}
const fn iow<T>(nr: u32) -> u32 {
    ioc(IOC_WRITE, nr, core::mem::size_of::<T>())
}

// ioctls on the device fd (/dev/pacifica).

/// Returns [`PACIFICA_API_VERSION`].
pub const PACIFICA_GET_API_VERSION: u32 = io(0x00);
/// Fills a [`ModuleInfo`]: SVM features and the module's page accounting.
pub const PACIFICA_GET_INFO: u32 = ior::<ModuleInfo>(0x01);
/// Creates a VM; the argument is a `PACIFICA_PAGING_*` value. Returns a VM fd.
pub const PACIFICA_CREATE_VM: u32 = io(0x02);
/// Returns the size to `mmap` on a vCPU fd to see its [`Run`] page.
pub const PACIFICA_GET_VCPU_MMAP_SIZE: u32 = io(0x03);

// ioctls on a VM fd.

/// Registers a [`MemoryRegion`] of guest memory.
pub const PACIFICA_SET_MEMORY_REGION: u32 = iow::<MemoryRegion>(0x10);
/// Creates a vCPU; the argument is its id (0..[`PACIFICA_MAX_VCPUS`]).
/// Returns a vCPU fd.
pub const PACIFICA_CREATE_VCPU: u32 = io(0x11);

// ioctls on a vCPU fd.

/// Runs the vCPU until an exit userspace must handle, a signal, or an error.
pub const PACIFICA_RUN: u32 = io(0x20);
/// Reads the general registers into a [`Regs`].
pub const PACIFICA_GET_REGS: u32 = ior::<Regs>(0x21);
/// Writes the general registers from a [`Regs`].
pub const PACIFICA_SET_REGS: u32 = iow::<Regs>(0x22);
/// Reads the system registers into an [`Sregs`].
pub const PACIFICA_GET_SREGS: u32 = ior::<Sregs>(0x23);
/// Writes the system registers from an [`Sregs`].
pub const PACIFICA_SET_SREGS: u32 = iow::<Sregs>(0x24);
/// Reads the vCPU's exit counters into an [`ExitStats`].
pub const PACIFICA_GET_STATS: u32 = ior::<ExitStats>(0x25);

/// Paging mode for [`PACIFICA_CREATE_VM`]: hardware nested paging.
pub const PACIFICA_PAGING_NPT: u64 = 0;
/// Paging mode for [`PACIFICA_CREATE_VM`]: software shadow paging.
pub const PACIFICA_PAGING_SHADOW: u64 = 1;

/// Most vCPUs one VM can have.
pub const PACIFICA_MAX_VCPUS: u32 = 8;
/// Most memory regions one VM can have.
pub const PACIFICA_MAX_MEMORY_REGIONS: u32 = 32;
/// Most guest RAM one VM may register, all regions together (256 GiB);
/// `PACIFICA_SET_MEMORY_REGION` beyond it fails with E2BIG.
pub const PACIFICA_MAX_GUEST_RAM: u64 = 256 << 30;

/// `ModuleInfo::features` bit: nested paging (CPUID 8000_000A EDX bit 0).
pub const PACIFICA_FEATURE_NPT: u64 = 1 << 0;
/// `ModuleInfo::features` bit: next-RIP saving (EDX bit 3).
pub const PACIFICA_FEATURE_NRIPS: u64 = 1 << 1;
/// `ModuleInfo::features` bit: VMCB clean bits (EDX bit 5).
pub const PACIFICA_FEATURE_VMCB_CLEAN: u64 = 1 << 2;
/// `ModuleInfo::features` bit: flush by ASID (EDX bit 6).
pub const PACIFICA_FEATURE_FLUSH_BY_ASID: u64 = 1 << 3;
/// `ModuleInfo::features` bit: decode assists (EDX bit 7).
pub const PACIFICA_FEATURE_DECODE_ASSISTS: u64 = 1 << 4;
/// `ModuleInfo::features` bit: virtual GIF (EDX bit 16).
pub const PACIFICA_FEATURE_VGIF: u64 = 1 << 5;

/// What [`PACIFICA_GET_INFO`] reports.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    /// [`PACIFICA_API_VERSION`].
    pub api_version: u32,
    /// SVM revision (CPUID 8000_000A EAX[7:0]).
    pub svm_revision: u32,
    /// Number of ASIDs (CPUID 8000_000A EBX).
    pub nr_asids: u32,
    /// Online CPUs with SVM enabled by the module.
    pub nr_cpus: u32,
    /// `PACIFICA_FEATURE_*` bits.
    pub features: u64,
    /// Raw CPUID 8000_000A EDX.
    pub cpuid_svm_edx: u32,
    /// Padding; zero.
    pub pad: u32,
    /// Pages the module has allocated and not yet freed (VMCBs, page tables,
    /// run pages, ...), excluding pinned guest memory.
    pub pages_allocated: u64,
    /// Guest pages currently pinned by all VMs.
    pub pages_pinned: u64,
    /// VMs currently alive.
    pub nr_vms: u64,
}

/// A region of guest-physical memory backed by the caller's own mapping.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryRegion {
    /// Slot number, 0..[`PACIFICA_MAX_MEMORY_REGIONS`]; each used once.
    pub slot: u32,
    /// Must be zero.
    pub flags: u32,
    /// Guest-physical start; page-aligned.
    pub guest_phys_addr: u64,
    /// Size in bytes; page-aligned and non-zero.
    pub memory_size: u64,
    /// Start of the caller's mapping; page-aligned, readable and writable.
    pub userspace_addr: u64,
}

/// General registers, in the order of KVM's `struct kvm_regs`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Regs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
}

/// A segment register as the VMCB holds it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Segment {
    pub base: u64,
    pub limit: u32,
    pub selector: u16,
    /// The VMCB attribute format (APM Vol. 2, 15.5.1): bits 0-3 type,
    /// 4 S, 5-6 DPL, 7 P, 8 AVL, 9 L, 10 D/B, 11 G.
    pub attrib: u16,
}

/// A descriptor-table register (GDTR or IDTR).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dtable {
    pub base: u64,
    pub limit: u16,
    pub pad: [u16; 3],
}

/// System registers.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sregs {
    pub cs: Segment,
    pub ds: Segment,
    pub es: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub ss: Segment,
    pub tr: Segment,
    pub ldt: Segment,
    pub gdt: Dtable,
    pub idt: Dtable,
    pub cr0: u64,
    pub cr2: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub cr8: u64,
    /// The guest's EFER as the guest sees it (without SVME).
    pub efer: u64,
}

/// `Run::exit_reason`: the module does not know why (never reported).
pub const PACIFICA_EXIT_UNKNOWN: u32 = 0;
/// `Run::exit_reason`: port I/O; see [`IoExit`].
pub const PACIFICA_EXIT_IO: u32 = 2;
/// `Run::exit_reason`: VMMCALL the module does not serve; see [`HypercallExit`].
pub const PACIFICA_EXIT_HYPERCALL: u32 = 3;
/// `Run::exit_reason`: the guest executed HLT.
pub const PACIFICA_EXIT_HLT: u32 = 5;
/// `Run::exit_reason`: access to guest-physical memory outside every
/// region; see [`MmioExit`].
pub const PACIFICA_EXIT_MMIO: u32 = 6;
/// `Run::exit_reason`: the guest shut down (triple fault).
pub const PACIFICA_EXIT_SHUTDOWN: u32 = 8;
/// `Run::exit_reason`: VMRUN refused the guest state (VMEXIT_INVALID);
/// see [`InternalExit`].
pub const PACIFICA_EXIT_FAIL_ENTRY: u32 = 9;
/// `Run::exit_reason`: an exit the module cannot handle; see [`InternalExit`].
pub const PACIFICA_EXIT_INTERNAL_ERROR: u32 = 17;

/// `IoExit::direction`: the guest reads the port (IN, INS).
pub const PACIFICA_EXIT_IO_IN: u8 = 0;
/// `IoExit::direction`: the guest writes the port (OUT, OUTS).
pub const PACIFICA_EXIT_IO_OUT: u8 = 1;

/// `InternalExit::suberror`: an SVM exit code with no handler.
pub const PACIFICA_INTERNAL_UNHANDLED_EXIT: u32 = 1;
/// `InternalExit::suberror`: an instruction the module had to emulate but
/// could not decode or does not support (for example MMIO through an
/// unsupported opcode, or string I/O to MMIO).
pub const PACIFICA_INTERNAL_EMULATION: u32 = 2;
/// `InternalExit::suberror`: a nested page fault inside guest RAM.
pub const PACIFICA_INTERNAL_NPF_IN_RAM: u32 = 3;
/// `InternalExit::suberror`: the guest used a mechanism the module does not
/// support (yet): a hardware task switch under shadow paging. The guest
/// state is left as it was before the instruction; the vCPU cannot go on.
pub const PACIFICA_INTERNAL_UNSUPPORTED: u32 = 4;

/// Port I/O. For OUT the data is already in the run page at `data_offset`;
/// for IN userspace writes it there before the next [`PACIFICA_RUN`].
/// `count` items of `size` bytes each (more than one for REP INS/OUTS).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoExit {
    pub direction: u8,
    /// 1, 2 or 4.
    pub size: u8,
    pub port: u16,
    pub count: u32,
    /// Offset of the data from the start of the [`Run`] page.
    pub data_offset: u64,
}

/// A guest access to guest-physical memory outside every region. For a
/// write `data` holds the value; for a read userspace fills `data` before
/// the next [`PACIFICA_RUN`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmioExit {
    pub phys_addr: u64,
    pub data: [u8; 8],
    /// 1, 2, 4 or 8.
    pub len: u32,
    pub is_write: u8,
    pub pad: [u8; 3],
}

/// VMMCALL with a number the module does not serve. `nr` is the guest's
/// RAX and `args` its RBX, RCX, RDX and RSI; `ret` becomes the guest's RAX
/// on the next [`PACIFICA_RUN`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HypercallExit {
    pub nr: u64,
    pub args: [u64; 4],
    pub ret: u64,
}

/// An exit the module could not handle, with the raw SVM exit information.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InternalExit {
    /// `PACIFICA_INTERNAL_*`.
    pub suberror: u32,
    pub pad: u32,
    /// The VMCB's EXITCODE.
    pub exit_code: u64,
    pub exit_info_1: u64,
    pub exit_info_2: u64,
    pub exit_int_info: u64,
    /// Guest RIP at the exit.
    pub rip: u64,
}

/// The exit-specific part of the [`Run`] page.
#[repr(C)]
#[derive(Clone, Copy)]
pub union ExitData {
    pub io: IoExit,
    pub mmio: MmioExit,
    pub hypercall: HypercallExit,
    pub internal: InternalExit,
    pub pad: [u8; 256],
}

/// The page userspace maps from a vCPU fd (offset 0, [`PACIFICA_RUN_PAGE_SIZE`]
/// bytes). The module writes it before [`PACIFICA_RUN`] returns and reads the
/// results of IN, MMIO reads and hypercalls from it on the next run.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Run {
    /// `PACIFICA_EXIT_*`.
    pub exit_reason: u32,
    /// Written by userspace, never by the module: while it is non-zero,
    /// [`PACIFICA_RUN`] fails with EINTR before entering the guest. A VMM
    /// thread that wants a vCPU thread out of the guest sets it and then
    /// signals that thread: a signal that arrives just before the vCPU
    /// thread calls RUN is not lost (as KVM's `immediate_exit`).
    pub immediate_exit: u8,
    pub pad: [u8; 3],
    /// Guest RIP at the exit (of the exiting instruction).
    pub rip: u64,
    pub exit: ExitData,
}

/// Size of the vCPU mapping.
pub const PACIFICA_RUN_PAGE_SIZE: usize = 4096;
/// Where I/O data lives in the run page.
pub const PACIFICA_RUN_IO_DATA_OFFSET: usize = 1024;
/// How many bytes of I/O data one exit carries at most.
pub const PACIFICA_RUN_IO_DATA_SIZE: usize = 2048;

// Indices into `ExitStats::counts`.

/// Every #VMEXIT.
pub const PACIFICA_STAT_EXITS: usize = 0;
/// Exits that returned to userspace.
pub const PACIFICA_STAT_USER_EXITS: usize = 1;
pub const PACIFICA_STAT_IO: usize = 2;
pub const PACIFICA_STAT_HLT: usize = 3;
/// Nested page faults (MMIO under NPT).
pub const PACIFICA_STAT_NPF: usize = 4;
pub const PACIFICA_STAT_MMIO: usize = 5;
pub const PACIFICA_STAT_CPUID: usize = 6;
pub const PACIFICA_STAT_MSR: usize = 7;
pub const PACIFICA_STAT_VMMCALL: usize = 8;
pub const PACIFICA_STAT_SHUTDOWN: usize = 9;
/// Physical interrupts taken while the guest ran.
pub const PACIFICA_STAT_INTR: usize = 10;
pub const PACIFICA_STAT_NMI: usize = 11;
/// SVM instructions and other intercepted instructions that give the guest #UD.
pub const PACIFICA_STAT_UD: usize = 12;
/// #GP injected for denied MSRs and bad MSR values.
pub const PACIFICA_STAT_GP: usize = 13;
/// [`PACIFICA_RUN`] calls ended by a pending signal.
pub const PACIFICA_STAT_SIGNAL: usize = 14;
/// Internal errors and failed entries.
pub const PACIFICA_STAT_INTERNAL: usize = 15;
/// Guest page faults intercepted (shadow paging).
pub const PACIFICA_STAT_PF: usize = 16;
/// Control-register accesses intercepted (shadow paging).
pub const PACIFICA_STAT_CR: usize = 17;
/// INVLPG intercepted (shadow paging).
pub const PACIFICA_STAT_INVLPG: usize = 18;
/// Other exits handled in the kernel (INVD, WBINVD, ...).
pub const PACIFICA_STAT_OTHER: usize = 19;
/// #DB and #AC intercepted and reflected to the guest (see
/// Documentation/security.rst: intercepted so that an exception loop is a
/// loop of exits the host can interrupt).
pub const PACIFICA_STAT_EXCEPTION: usize = 20;
/// Number of defined counters.
pub const PACIFICA_STAT_NR: usize = 21;

/// Names of the counters, for tools that print them.
pub const PACIFICA_STAT_NAMES: [&str; PACIFICA_STAT_NR] = [
    "exits", "user_exits", "io", "hlt", "npf", "mmio", "cpuid", "msr", "vmmcall", "shutdown",
    "intr", "nmi", "ud", "gp", "signal", "internal", "pf", "cr", "invlpg", "other", "exception",
];

/// Per-vCPU exit counters, indexed by `PACIFICA_STAT_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitStats {
    pub counts: [u64; 32],
}

/// VMMCALL number the module serves itself: returns 0 in RAX. A cheap
/// round trip through the kernel, for measuring exit cost.
pub const PACIFICA_HC_PING: u64 = 0;

const _: () = {
    assert!(core::mem::size_of::<Run>() <= PACIFICA_RUN_IO_DATA_OFFSET);
    assert!(PACIFICA_RUN_IO_DATA_OFFSET + PACIFICA_RUN_IO_DATA_SIZE <= PACIFICA_RUN_PAGE_SIZE);
    assert!(core::mem::size_of::<Segment>() == 16);
    assert!(core::mem::size_of::<Dtable>() == 16);
    assert!(core::mem::size_of::<Sregs>() == 8 * 16 + 2 * 16 + 6 * 8);
    assert!(core::mem::size_of::<ModuleInfo>() == 56);
};

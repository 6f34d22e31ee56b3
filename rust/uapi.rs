// SPDX-License-Identifier: GPL-2.0

//! The userspace interface of `/dev/pacifica`, as Rust.
//!
//! The ABI is defined once, in C: `include/uapi/linux/pacifica.h`.
//! `scripts/uapi-bindgen` turns it into `uapi_bindings` (for the module by
//! Kbuild, for the userspace tools by the `pacifica-uapi` crate's build
//! script), with bindgen's compile-time checks of every size and offset.
//! This file, shared by the module and the tools by path, re-exports those
//! definitions and adds what Rust callers want on top: short names for the
//! structures, the constants in the types their fields have, the counters'
//! names. It defines no number of its own. It depends on `core` only.
//!
//! The interface is shaped like KVM's: the device fd creates VM fds, a VM fd
//! registers guest memory and creates vCPU fds, and a vCPU fd runs the guest
//! and maps a [`Run`] page that describes the last exit. Every ioctl and its
//! errors are described in `Documentation/uapi.rst`.

#![allow(dead_code)]

use crate::uapi_bindings as c;

pub use c::*;

/// What `PACIFICA_GET_INFO` reports.
pub type ModuleInfo = c::pacifica_module_info;
/// A region of guest-physical memory backed by the caller's own mapping.
pub type MemoryRegion = c::pacifica_memory_region;
/// General registers, in the order of KVM's `struct kvm_regs`.
pub type Regs = c::pacifica_regs;
/// A segment register as the VMCB holds it.
pub type Segment = c::pacifica_segment;
/// A descriptor-table register (GDTR or IDTR).
pub type Dtable = c::pacifica_dtable;
/// System registers.
pub type Sregs = c::pacifica_sregs;
/// Port I/O exit.
pub type IoExit = c::pacifica_io_exit;
/// An access to guest-physical memory outside every region.
pub type MmioExit = c::pacifica_mmio_exit;
/// A VMMCALL the module does not serve.
pub type HypercallExit = c::pacifica_hypercall_exit;
/// An exit the module could not handle, with the raw SVM exit information.
pub type InternalExit = c::pacifica_internal_exit;
/// The exit-specific part of the [`Run`] page.
pub type ExitData = c::pacifica_exit_data;
/// The page userspace maps from a vCPU fd.
pub type Run = c::pacifica_run;
/// A vCPU's local APIC, for `PACIFICA_GET_LAPIC` and `PACIFICA_SET_LAPIC`.
pub type LapicState = c::pacifica_lapic_state;
/// Where `LapicState::regs` starts: after IA32_APIC_BASE and the reserved
/// words.
pub const LAPIC_STATE_REGS: usize = 64;
/// ExtINT acknowledge: userspace's PIC gives the vector.
pub type IntaExit = c::pacifica_inta_exit;
/// The EOI of a level-triggered vector.
pub type EoiExit = c::pacifica_eoi_exit;
/// A message-signalled interrupt, for `PACIFICA_SIGNAL_MSI`.
pub type Msi = c::pacifica_msi;
/// A local interrupt pin's level, for `PACIFICA_SET_LINT`.
pub type Lint = c::pacifica_lint;
/// Per-vCPU exit counters, indexed by `PACIFICA_STAT_*`.
pub type ExitStats = c::pacifica_exit_stats;

// The constants whose fields or arguments are not `u32` (bindgen gives
// every small macro the type `u32`), in the type they are used as.

/// `PACIFICA_CREATE_VM`'s argument: hardware nested paging.
pub const PACIFICA_PAGING_NPT: u64 = c::PACIFICA_PAGING_NPT as u64;
/// `PACIFICA_CREATE_VM`'s argument: software shadow paging.
pub const PACIFICA_PAGING_SHADOW: u64 = c::PACIFICA_PAGING_SHADOW as u64;
/// `ModuleInfo::features`: nested paging.
pub const PACIFICA_FEATURE_NPT: u64 = c::PACIFICA_FEATURE_NPT as u64;
/// `ModuleInfo::features`: next-RIP saving.
pub const PACIFICA_FEATURE_NRIPS: u64 = c::PACIFICA_FEATURE_NRIPS as u64;
/// `ModuleInfo::features`: VMCB clean bits.
pub const PACIFICA_FEATURE_VMCB_CLEAN: u64 = c::PACIFICA_FEATURE_VMCB_CLEAN as u64;
/// `ModuleInfo::features`: flush by ASID.
pub const PACIFICA_FEATURE_FLUSH_BY_ASID: u64 = c::PACIFICA_FEATURE_FLUSH_BY_ASID as u64;
/// `ModuleInfo::features`: decode assists.
pub const PACIFICA_FEATURE_DECODE_ASSISTS: u64 = c::PACIFICA_FEATURE_DECODE_ASSISTS as u64;
/// `ModuleInfo::features`: virtual GIF.
pub const PACIFICA_FEATURE_VGIF: u64 = c::PACIFICA_FEATURE_VGIF as u64;
/// `IoExit::direction`: IN, INS.
pub const PACIFICA_EXIT_IO_IN: u8 = c::PACIFICA_EXIT_IO_IN as u8;
/// `IoExit::direction`: OUT, OUTS.
pub const PACIFICA_EXIT_IO_OUT: u8 = c::PACIFICA_EXIT_IO_OUT as u8;
/// The VMMCALL number (RAX) the module serves itself.
pub const PACIFICA_HC_PING: u64 = c::PACIFICA_HC_PING as u64;
/// Size of the vCPU mapping.
pub const PACIFICA_RUN_PAGE_SIZE: usize = c::PACIFICA_RUN_PAGE_SIZE as usize;
/// Where I/O data lives in the run page.
pub const PACIFICA_RUN_IO_DATA_OFFSET: usize = c::PACIFICA_RUN_IO_DATA_OFFSET as usize;
/// How many bytes of I/O data one exit carries at most.
pub const PACIFICA_RUN_IO_DATA_SIZE: usize = c::PACIFICA_RUN_IO_DATA_SIZE as usize;

/// Names of the counters, indexed by `PACIFICA_STAT_*`, for tools that
/// print them.
pub const PACIFICA_STAT_NAMES: [&str; c::PACIFICA_STAT_NR as usize] = [
    "exits", "user_exits", "io", "hlt", "npf", "mmio", "cpuid", "msr", "vmmcall", "shutdown",
    "intr", "nmi", "ud", "gp", "signal", "internal", "pf", "cr", "invlpg", "other", "exception",
    "irq_injected", "irq_window", "apic_access", "nmi_injected", "nmi_window", "halt", "wakeup",
    "timer", "inta", "level_eoi", "apic_eoi", "apic_icr", "apic_timer", "kick",
];

impl ExitStats {
    /// The counter `stat` (a `PACIFICA_STAT_*` index).
    pub fn get(&self, stat: u32) -> u64 {
        self.counts[stat as usize]
    }
}

const _: () = {
    assert!(core::mem::size_of::<Run>() <= PACIFICA_RUN_IO_DATA_OFFSET);
    assert!(PACIFICA_RUN_IO_DATA_OFFSET + PACIFICA_RUN_IO_DATA_SIZE <= PACIFICA_RUN_PAGE_SIZE);
    assert!(c::PACIFICA_STAT_NR <= c::PACIFICA_STAT_MAX);
    // The state ioctls' byte layout (`Vcpu::get_lapic`).
    assert!(core::mem::size_of::<LapicState>() == LAPIC_STATE_REGS + 1024);
    assert!(core::mem::offset_of!(LapicState, regs) == LAPIC_STATE_REGS);
};

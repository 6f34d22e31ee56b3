// SPDX-License-Identifier: GPL-2.0

//! The userspace side of Pacifica, an AMD-V (SVM) hypervisor.
//!
//! The crate is both the `pacifica` VMM binary and a library the selftests
//! share with it:
//!
//! - [`sys`]: safe wrappers around the `/dev/pacifica` ioctls (system, VM,
//!   vCPU, the run page and its exits, guest memory). With `backend`, the
//!   only module with `unsafe` code.
//! - [`loader`]: puts a guest image into guest memory (Multiboot v1 or
//!   static ELF64) and says how to start it.
//! - [`boot`]: the register state each boot protocol starts the vCPU in.
//! - [`devices`]: the emulated devices (a 16550 UART, an exit port) and the
//!   bus that routes accesses to them.
//! - [`backend`]: the hypervisors a guest runs on, `/dev/pacifica` and
//!   `/dev/kvm` (through `kvm-ioctls`), behind one trait, with KVM's exits
//!   translated into [`sys::Exit`]. Two explained `unsafe` blocks in its
//!   KVM part.
//! - [`vmm`]: the run loop and the exit handlers, shared by the backends.
//! - [`size`]: parsing of sizes such as `64M`.
//! - [`guests`]: the guest images built from `tools/guests/`.
//! - [`bench`]: `pacifica bench` and `bench-report`, the nanobenchmarks
//!   of `tools/guests/bench64.S`, their table and chart.

#![deny(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

// The ABI of `/dev/pacifica`: generated from the module's C header
// (include/uapi/linux/pacifica.h), with the module's Rust interface on top.
pub use pacifica_uapi::uapi;

// The module's hardware definitions (`core` only), shared by path as the
// uapi is, so that every bit is defined once.
#[path = "../../../rust/hw/apic.rs"]
#[doc(hidden)]
pub mod hw_apic;
#[path = "../../../rust/hw/cr.rs"]
#[doc(hidden)]
pub mod hw_cr;
#[path = "../../../rust/hw/paging.rs"]
#[doc(hidden)]
pub mod hw_paging;
#[path = "../../../rust/hw/seg.rs"]
#[doc(hidden)]
pub mod hw_seg;
#[path = "../../../rust/hw/svm.rs"]
#[doc(hidden)]
pub mod hw_svm;

// The module's CPUID policy, which the KVM backend applies too, so that a
// guest sees the same CPUID on either hypervisor.
#[path = "../../../rust/policy/cpuid.rs"]
#[doc(hidden)]
pub mod policy_cpuid;

/// The hardware definitions the VMM shares with the module.
pub mod hw {
    pub use super::hw_apic as apic;
    pub use super::hw_cr as cr;
    pub use super::hw_paging as paging;
    pub use super::hw_seg as seg;
    pub use super::hw_svm as svm;
}

pub mod backend;
pub mod bench;
pub mod boot;
pub mod devices;
pub mod guests;
pub mod loader;
pub mod pc;
pub mod size;
#[allow(unsafe_code)]
pub mod sys;
pub mod vmm;

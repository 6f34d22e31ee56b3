// SPDX-License-Identifier: GPL-2.0

//! Pacifica: an AMD-V (SVM) hypervisor with nested and shadow paging.
//!
//! This is the crate root: it lists the modules and declares the kernel
//! module. `Documentation/architecture.rst` walks through the pieces.

use kernel::prelude::*;

mod dev;
mod exit;
mod global;
mod shim;
mod testbed;
mod vcpu;
mod vm;

/// Hardware definitions; `core` only, shared with the host tests. They
/// name the architecture, so not every constant has a user yet.
#[allow(dead_code, unreachable_pub)]
mod hw {
    pub(crate) mod apic;
    pub(crate) mod cr;
    pub(crate) mod gpr;
    pub(crate) mod msr;
    pub(crate) mod paging;
    pub(crate) mod seg;
    pub(crate) mod svm;
    pub(crate) mod vmcb;
}

/// Software that stands in for missing decode assists; `core` only.
#[allow(unreachable_pub)]
mod emulate {
    pub(crate) mod insn;
    pub(crate) mod walk;
}

/// The guest-visible CPUID and MSR policy; `core` only.
#[allow(dead_code, unreachable_pub)]
mod policy {
    pub(crate) mod cpuid;
    pub(crate) mod msr;
    pub(crate) mod state;
}

/// Interrupt controllers; `core` only (Documentation/interrupts.rst).
#[allow(dead_code, unreachable_pub)]
mod irq {
    pub(crate) mod inbox;
    pub(crate) mod lapic;
}

/// SVM instructions, the world switch and per-CPU enablement.
mod svm {
    pub(crate) mod cpu;
    pub(crate) mod ops;
}

/// Memory: hardware pages, guest memory, nested page tables.
mod mm {
    pub(crate) mod guest;
    #[allow(dead_code, unreachable_pub)]
    pub(crate) mod npt;
    pub(crate) mod pages;
    #[allow(dead_code, unreachable_pub)]
    pub(crate) mod shadow;
    pub(crate) mod shadow_mmu;
}

#[allow(dead_code, missing_docs, unreachable_pub)]
mod uapi;

/// The ABI as bindgen generates it from include/uapi/linux/pacifica.h
/// (Kbuild runs scripts/uapi-bindgen); `uapi` is its interface.
#[allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    unreachable_pub,
    clippy::all
)]
mod uapi_bindings {
    include!("uapi_bindings.rs");
}

module! {
    type: Pacifica,
    name: "pacifica",
    author: "The Pacifica developers",
    description: "AMD-V (SVM) hypervisor with nested and shadow paging",
    license: "GPL",
}

struct Pacifica;

impl kernel::Module for Pacifica {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        global::init()?;
        Ok(Pacifica)
    }
}

impl Drop for Pacifica {
    fn drop(&mut self) {
        global::exit();
    }
}

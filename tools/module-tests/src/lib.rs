// SPDX-License-Identifier: GPL-2.0

//! The parts of pacifica.ko that depend only on `core`, compiled from the
//! module's own files (never copies) so that `cargo test` exercises them on
//! the host with fakes instead of hardware. The re-exports give them the
//! same paths (`crate::hw::paging`, ...) they have inside the module.

#![allow(dead_code)]

#[path = "../../../rust/hw/apic.rs"]
pub mod hw_apic;
#[path = "../../../rust/hw/cr.rs"]
pub mod hw_cr;
#[path = "../../../rust/irq/lapic.rs"]
pub mod irq_lapic;
#[path = "../../../rust/irq/inbox.rs"]
pub mod irq_inbox;
#[path = "../../../rust/hw/gpr.rs"]
pub mod hw_gpr;
#[path = "../../../rust/hw/msr.rs"]
pub mod hw_msr;
#[path = "../../../rust/hw/paging.rs"]
pub mod hw_paging;
#[path = "../../../rust/hw/seg.rs"]
pub mod hw_seg;
#[path = "../../../rust/hw/svm.rs"]
pub mod hw_svm;
#[path = "../../../rust/hw/vmcb.rs"]
pub mod hw_vmcb;
#[path = "../../../rust/emulate/insn.rs"]
pub mod emulate_insn;
#[path = "../../../rust/emulate/walk.rs"]
pub mod emulate_walk;
#[path = "../../../rust/policy/cpuid.rs"]
pub mod policy_cpuid;
#[path = "../../../rust/policy/msr.rs"]
pub mod policy_msr;
#[path = "../../../rust/policy/state.rs"]
pub mod policy_state;
#[path = "../../../rust/mm/npt.rs"]
pub mod mm_npt;
#[path = "../../../rust/mm/shadow.rs"]
pub mod mm_shadow;
#[allow(unused_imports)]
#[path = "../../../rust/exit/mod.rs"]
pub mod exit;
#[path = "../../../rust/testbed.rs"]
pub mod testbed;
pub use pacifica_uapi::uapi;

pub mod hw {
    pub use super::hw_apic as apic;
    pub use super::hw_cr as cr;
    pub use super::hw_gpr as gpr;
    pub use super::hw_msr as msr;
    pub use super::hw_paging as paging;
    pub use super::hw_seg as seg;
    pub use super::hw_svm as svm;
    pub use super::hw_vmcb as vmcb;
}

pub mod irq {
    pub use super::irq_inbox as inbox;
    pub use super::irq_lapic as lapic;
}

pub mod emulate {
    pub use super::emulate_insn as insn;
    pub use super::emulate_walk as walk;
}

pub mod policy {
    pub use super::policy_cpuid as cpuid;
    pub use super::policy_msr as msr;
    pub use super::policy_state as state;
}

pub mod mm {
    pub use super::mm_npt as npt;
    pub use super::mm_shadow as shadow;
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod exit_tests;
#[cfg(test)]
mod lapic_tests;

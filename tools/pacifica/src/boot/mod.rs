// SPDX-License-Identifier: GPL-2.0

//! The machine state each boot protocol starts the vCPU in.
//!
//! - [`protected`]: the Multiboot v1 state, 32-bit protected mode with
//!   paging off.
//! - [`long`]: 64-bit long mode over identity-mapped page tables, for
//!   static ELF64 images.
//!
//! Both share the low-memory [`layout`], the [`segments`] (and the GDT that
//! describes them) and the identity [`paging`] tables. Everything here is
//! pure data: it computes register values and byte images, and the
//! [`loader`](crate::loader) writes the images into guest memory.

pub mod layout;
pub mod long;
pub mod paging;
pub mod protected;
pub mod segments;

use crate::uapi;

/// The registers a vCPU starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootState {
    /// General registers (RIP, RSP, RFLAGS and the protocol's arguments).
    pub regs: uapi::Regs,
    /// Segments, descriptor tables, control registers and EFER.
    pub sregs: uapi::Sregs,
}

/// CR0 bits (APM Vol. 2, 3.1.1).
pub mod cr0 {
    /// Protection enable.
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor: WAIT/FWAIT honour TS.
    pub const MP: u64 = 1 << 1;
    /// Extension type; hard-wired to 1 on every CPU with SVM.
    pub const ET: u64 = 1 << 4;
    /// Numeric error: x87 errors raise #MF instead of an external interrupt.
    pub const NE: u64 = 1 << 5;
    /// Write protect: supervisor writes honour read-only pages.
    pub const WP: u64 = 1 << 16;
    /// Paging.
    pub const PG: u64 = 1 << 31;
}

/// CR4 bits (APM Vol. 2, 3.1.3).
pub mod cr4 {
    /// Physical-address extension; required for long mode.
    pub const PAE: u64 = 1 << 5;
    /// The OS supports FXSAVE/FXRSTOR: enables SSE instructions.
    pub const OSFXSR: u64 = 1 << 9;
    /// The OS handles SIMD floating-point exceptions (#XF).
    pub const OSXMMEXCPT: u64 = 1 << 10;
}

/// EFER bits (APM Vol. 2, 3.1.7).
pub mod efer {
    /// Long mode enable.
    pub const LME: u64 = 1 << 8;
    /// Long mode active.
    pub const LMA: u64 = 1 << 10;
}

/// RFLAGS with only the always-one bit 1 set: interrupts disabled.
pub const RFLAGS_RESERVED: u64 = 1 << 1;

/// The value in EAX that tells a kernel it was loaded by a Multiboot v1
/// boot loader.
pub const MULTIBOOT_BOOTLOADER_MAGIC: u64 = 0x2BAD_B002;

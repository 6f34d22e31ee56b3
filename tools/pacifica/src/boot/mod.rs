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

/// CR0, CR4 and EFER bits, from the module's `hw/` files.
pub use crate::hw::cr::{cr0, cr4};
pub use crate::hw::svm::efer;

/// RFLAGS with only the always-one bit 1 set: interrupts disabled.
pub const RFLAGS_RESERVED: u64 = crate::hw::cr::rflags::FIXED;

/// The value in EAX that tells a kernel it was loaded by a Multiboot v1
/// boot loader.
pub const MULTIBOOT_BOOTLOADER_MAGIC: u64 = 0x2BAD_B002;

// SPDX-License-Identifier: GPL-2.0

//! Puts a guest image into guest memory and says how to start it.
//!
//! Two kinds of image are recognised, in this order:
//!
//! 1. A Multiboot v1 kernel: any file with a valid Multiboot header in its
//!    first 8 KiB (usually an ELF32). It starts in 32-bit protected mode
//!    ([`boot::protected`](crate::boot::protected)).
//! 2. A static ELF64 x86-64 executable (`ET_EXEC`). It starts in 64-bit
//!    long mode over identity-mapped page tables
//!    ([`boot::long`](crate::boot::long)).
//!
//! Both get a Multiboot information structure describing RAM at
//! [`BOOT_INFO_ADDR`](crate::boot::layout::BOOT_INFO_ADDR). All boot data lies in the boot area below
//! [`BOOT_AREA_END`](crate::boot::layout::BOOT_AREA_END) (see [`boot::layout`](crate::boot::layout)), which the
//! image must not overlap. RAM starts at guest-physical address 0.

mod elf;
mod error;
pub mod info;
pub mod linux;
mod long;
pub mod multiboot;
mod place;

pub use error::LoadError;
pub use info::{boot_info, memory_map, MemoryMapEntry, BOOT_LOADER_NAME};
pub use multiboot::{find_header, AoutAddresses, MultibootHeader};

use crate::boot::layout::{BOOT_INFO_ADDR, BOOT_INFO_SIZE, MAX_RAM, MIN_RAM};
use crate::boot::BootState;
use crate::sys::GuestMemory;

/// How an image is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Multiboot v1, 32-bit protected mode.
    Multiboot,
    /// Static ELF64, 64-bit long mode.
    Elf64,
    /// A Linux bzImage, the 64-bit boot protocol.
    LinuxBzImage,
    /// A Linux vmlinux, its PVH entry.
    LinuxPvh,
}

/// A loaded image, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boot {
    /// How the image is started.
    pub protocol: Protocol,
    /// Guest-physical address of the first instruction.
    pub entry: u64,
    /// One past the highest guest-physical address the image occupies.
    pub image_end: u64,
    /// The registers to start the vCPU with.
    pub state: BootState,
}

/// Loads `image` into `mem` (RAM at guest-physical 0) and writes the boot
/// data its protocol needs.
pub fn load(image: &[u8], mem: &mut GuestMemory) -> Result<Boot, LoadError> {
    check_ram_size(mem.size() as u64)?;
    if let Some(header) = multiboot::find_header(image) {
        return multiboot::load(image, &header?, mem);
    }
    if elf::is_elf64(image) {
        return long::load(image, mem);
    }
    Err(LoadError::UnknownFormat)
}

/// Loads `image` as [`load`] does, with `cmdline` as the Multiboot
/// command line in the information structure both protocols pass.
pub fn load_with_cmdline(image: &[u8], cmdline: &str, mem: &mut GuestMemory) -> Result<Boot, LoadError> {
    if cmdline.len() > info::CMDLINE_MAX {
        return Err(LoadError::CmdlineTooLong { len: cmdline.len(), max: info::CMDLINE_MAX });
    }
    if cmdline.contains('\0') {
        return Err(LoadError::BadCmdline("it holds a NUL byte".into()));
    }
    let boot = load(image, mem)?;
    // The structure `load` wrote, in its page: the command line joins it.
    let page = mem.slice_mut(BOOT_INFO_ADDR, BOOT_INFO_SIZE as usize)?;
    info::set_cmdline(page, BOOT_INFO_ADDR as u32, cmdline)
        .ok_or(LoadError::CmdlineTooLong { len: cmdline.len(), max: info::CMDLINE_MAX })?;
    Ok(boot)
}

/// Checks that RAM is large enough for the boot area and an image, small
/// enough for the identity map, and a whole number of pages.
pub fn check_ram_size(size: u64) -> Result<(), LoadError> {
    if !(MIN_RAM..=MAX_RAM).contains(&size) || !size.is_multiple_of(4096) {
        return Err(LoadError::RamSize {
            size,
            min: MIN_RAM,
            max: MAX_RAM,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;

// SPDX-License-Identifier: GPL-2.0

//! Multiboot v1 kernels (Multiboot Specification 0.6.96).
//!
//! The header (3.1) lies 4-byte aligned in the first 8 KiB of the file.
//! With flag bit 16 its address fields say where to load the file (the
//! "a.out kludge", for any file format); without it the file must be ELF and
//! its program headers say where. GRUB decides the same way.

use super::info::boot_info;
use super::place::place;
use super::{elf, Boot, LoadError, Protocol};
use crate::boot::layout::{BOOT_INFO_ADDR, GDT_ADDR};
use crate::boot::protected::multiboot_state;
use crate::boot::segments::gdt;
use crate::sys::GuestMemory;

/// The header's magic number.
pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// How far into the file the header may start.
pub const SEARCH_LIMIT: usize = 8192;

/// Flag: align modules on page boundaries. Pacifica loads no modules, so
/// this is trivially honoured.
pub const FLAG_PAGE_ALIGN: u32 = 1 << 0;
/// Flag: the kernel needs `mem_*` (and the memory map); always provided.
pub const FLAG_MEMORY_INFO: u32 = 1 << 1;
/// Flag: the kernel needs a video mode; there is no display.
pub const FLAG_VIDEO_MODE: u32 = 1 << 2;
/// Flag: the address fields are valid (the a.out kludge).
pub const FLAG_AOUT_KLUDGE: u32 = 1 << 16;
/// Flags 0-15 are requirements a loader must refuse if it does not know
/// them (3.1.2); 16-31 are optional.
const REQUIRED_MASK: u32 = 0xffff;

/// The address fields of a header with [`FLAG_AOUT_KLUDGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AoutAddresses {
    /// Where the header itself is loaded.
    pub header_addr: u32,
    /// Where the text starts (the file offset follows from `header_addr`).
    pub load_addr: u32,
    /// End of the data to load; 0 means the end of the file.
    pub load_end_addr: u32,
    /// End of the bss to zero; 0 means no bss.
    pub bss_end_addr: u32,
    /// The entry point.
    pub entry_addr: u32,
}

/// A Multiboot v1 header found in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultibootHeader {
    /// File offset of the magic number.
    pub offset: usize,
    /// The flags word.
    pub flags: u32,
    /// The address fields, present with [`FLAG_AOUT_KLUDGE`].
    pub addresses: Option<AoutAddresses>,
}

fn read_u32(image: &[u8], offset: usize) -> Option<u32> {
    let bytes = image.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// Finds the first valid Multiboot header (magic, flags and checksum
/// summing to zero) in the first 8 KiB of `image`.
///
/// Returns `None` if there is none, and an error if the header is
/// truncated or requires what Pacifica cannot provide.
pub fn find_header(image: &[u8]) -> Option<Result<MultibootHeader, LoadError>> {
    let limit = image.len().min(SEARCH_LIMIT);
    let offset = (0..limit).step_by(4).find(|&at| {
        let word = |i: usize| read_u32(image, at + 4 * i);
        match (word(0), word(1), word(2)) {
            (Some(magic), Some(flags), Some(sum)) => {
                magic == HEADER_MAGIC && magic.wrapping_add(flags).wrapping_add(sum) == 0
            }
            _ => false,
        }
    })?;
    Some(parse_header(image, offset))
}

fn parse_header(image: &[u8], offset: usize) -> Result<MultibootHeader, LoadError> {
    let word =
        |i: usize| read_u32(image, offset + 4 * i).ok_or(LoadError::HeaderTruncated { offset });
    let flags = word(1)?;
    let unknown = flags & REQUIRED_MASK & !(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE);
    if unknown != 0 {
        return Err(LoadError::UnsupportedFlags { flags, unknown });
    }
    if flags & FLAG_VIDEO_MODE != 0 {
        return Err(LoadError::VideoModeRequested);
    }
    let addresses = if flags & FLAG_AOUT_KLUDGE != 0 {
        Some(AoutAddresses {
            header_addr: word(3)?,
            load_addr: word(4)?,
            load_end_addr: word(5)?,
            bss_end_addr: word(6)?,
            entry_addr: word(7)?,
        })
    } else {
        None
    };
    Ok(MultibootHeader {
        offset,
        flags,
        addresses,
    })
}

/// Loads a Multiboot kernel and writes the GDT and Multiboot information.
pub(super) fn load(
    image: &[u8],
    header: &MultibootHeader,
    mem: &mut GuestMemory,
) -> Result<Boot, LoadError> {
    let (entry, end) = match header.addresses {
        Some(addresses) => load_aout(image, header.offset, &addresses, mem)?,
        None => {
            let loaded = elf::load(
                image,
                mem,
                &[elf::EM_386, elf::EM_X86_64],
                "3 (i386) or 62 (x86-64)",
            )?;
            (loaded.entry, loaded.end)
        }
    };
    // Paging is off, so the kernel must be addressable with 32 bits.
    if end > 1 << 32 {
        return Err(LoadError::Above4G(end));
    }
    mem.write(GDT_ADDR, &gdt())?;
    mem.write(
        BOOT_INFO_ADDR,
        &boot_info(mem.size() as u64, BOOT_INFO_ADDR as u32),
    )?;
    let state = multiboot_state(entry as u32, BOOT_INFO_ADDR as u32);
    Ok(Boot {
        protocol: Protocol::Multiboot,
        entry,
        image_end: end,
        state,
    })
}

/// Loads by the header's address fields. Returns the entry and image end.
fn load_aout(
    image: &[u8],
    header_offset: usize,
    a: &AoutAddresses,
    mem: &mut GuestMemory,
) -> Result<(u64, u64), LoadError> {
    let bad = |what: String| Err(LoadError::BadAddresses(what));
    if a.load_addr > a.header_addr {
        return bad(format!(
            "load_addr {:#x} is above header_addr {:#x}",
            a.load_addr, a.header_addr
        ));
    }
    // The header's file offset minus its distance from load_addr is where
    // the text starts in the file.
    let Some(file_start) = header_offset.checked_sub((a.header_addr - a.load_addr) as usize) else {
        return bad(format!(
            "header_addr {:#x} - load_addr {:#x} exceeds the header's file offset {header_offset:#x}",
            a.header_addr, a.load_addr
        ));
    };
    let file_len = match a.load_end_addr {
        0 => image.len() - file_start,
        end if end <= a.load_addr => {
            return bad(format!(
                "load_end_addr {end:#x} is not above load_addr {:#x}",
                a.load_addr
            ))
        }
        end => (end - a.load_addr) as usize,
    };
    let Some(bytes) = image.get(file_start..file_start + file_len) else {
        return bad(format!(
            "{file_len:#x} bytes to load from file offset {file_start:#x}, but the file has {:#x}",
            image.len()
        ));
    };
    let load_end = u64::from(a.load_addr) + file_len as u64;
    let bss_len = match u64::from(a.bss_end_addr) {
        0 => 0,
        bss_end if bss_end < load_end => {
            return bad(format!(
                "bss_end_addr {bss_end:#x} is below the end of the loaded data {load_end:#x}"
            ))
        }
        bss_end => bss_end - load_end,
    };
    let end = place(mem, u64::from(a.load_addr), bytes, bss_len)?;
    let entry = u64::from(a.entry_addr);
    if !(u64::from(a.load_addr)..end).contains(&entry) {
        return Err(LoadError::EntryOutsideImage(entry));
    }
    Ok((entry, end))
}

// SPDX-License-Identifier: GPL-2.0

//! The Multiboot v1 information structure (Multiboot Specification
//! 0.6.96, 3.3), which both protocols hand to the guest.
//!
//! At the base address lies the 116-byte structure; the memory map follows
//! at offset [`MMAP_OFFSET`] and the boot loader's name at
//! [`NAME_OFFSET`], all within one page, and a command line, when there is
//! one ([`set_cmdline`]), at [`CMDLINE_OFFSET`]. Only the fields Pacifica
//! fills are flagged valid: memory sizes, memory map, boot loader name and
//! the command line.

/// `flags` bit: `mem_lower` and `mem_upper` are valid.
pub const INFO_MEMORY: u32 = 1 << 0;
/// `flags` bit: `cmdline` is valid.
pub const INFO_CMDLINE: u32 = 1 << 2;
/// `flags` bit: `mmap_length` and `mmap_addr` are valid.
pub const INFO_MEM_MAP: u32 = 1 << 6;
/// `flags` bit: `boot_loader_name` is valid.
pub const INFO_BOOT_LOADER_NAME: u32 = 1 << 9;

/// Size of the information structure.
pub const INFO_SIZE: usize = 116;
/// Offset of the memory map from the structure's start.
pub const MMAP_OFFSET: usize = 0x80;
/// Offset of the boot loader name from the structure's start.
pub const NAME_OFFSET: usize = 0x100;
/// Offset of the command line from the structure's start.
pub const CMDLINE_OFFSET: usize = 0x200;
/// The longest command line, which with its NUL ends the page.
pub const CMDLINE_MAX: usize = 0x1000 - CMDLINE_OFFSET - 1;
/// What the guest finds in `boot_loader_name`.
pub const BOOT_LOADER_NAME: &str = "pacifica";

/// Field offsets in the structure.
mod field {
    pub const FLAGS: usize = 0;
    pub const MEM_LOWER: usize = 4;
    pub const MEM_UPPER: usize = 8;
    pub const CMDLINE: usize = 16;
    pub const MMAP_LENGTH: usize = 44;
    pub const MMAP_ADDR: usize = 48;
    pub const BOOT_LOADER_NAME: usize = 64;
}

/// Memory-map entry type: RAM the OS may use.
pub const MEMORY_AVAILABLE: u32 = 1;
/// Memory-map entry type: reserved.
pub const MEMORY_RESERVED: u32 = 2;

/// KiB of conventional memory below the legacy hole, as on a PC.
pub const MEM_LOWER_KIB: u32 = 640;
/// Start of upper memory: 1 MiB.
const UPPER_START: u64 = 1 << 20;
/// Start of the legacy video/ROM hole: 640 KiB.
const HOLE_START: u64 = (MEM_LOWER_KIB as u64) << 10;

/// One memory-map entry. In memory it is preceded by its `size` field
/// (always 20, the bytes that follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryMapEntry {
    /// First byte of the range.
    pub base: u64,
    /// Length of the range in bytes.
    pub length: u64,
    /// [`MEMORY_AVAILABLE`] or [`MEMORY_RESERVED`].
    pub kind: u32,
}

/// Size of one memory-map entry in memory, including its `size` field.
pub const MMAP_ENTRY_SIZE: usize = 24;

/// The memory map for `ram_size` bytes of RAM at address 0.
///
/// Pacifica's RAM has no holes, but the map marks 640 KiB..1 MiB reserved
/// like a PC's, so that it agrees with `mem_lower` = 640 and a `mem_upper`
/// that counts from 1 MiB, and so that guests written for PCs keep out of
/// the range they would expect to hold video memory and ROMs.
pub fn memory_map(ram_size: u64) -> Vec<MemoryMapEntry> {
    vec![
        MemoryMapEntry {
            base: 0,
            length: HOLE_START,
            kind: MEMORY_AVAILABLE,
        },
        MemoryMapEntry {
            base: HOLE_START,
            length: UPPER_START - HOLE_START,
            kind: MEMORY_RESERVED,
        },
        MemoryMapEntry {
            base: UPPER_START,
            length: ram_size - UPPER_START,
            kind: MEMORY_AVAILABLE,
        },
    ]
}

/// The bytes of the information structure, memory map and name for
/// `ram_size` bytes of RAM (at least 1 MiB), to be written at guest-physical
/// `base` (below 4 GiB: the structure holds 32-bit addresses).
pub fn boot_info(ram_size: u64, base: u32) -> Vec<u8> {
    let map = memory_map(ram_size);
    let mut bytes = vec![0u8; NAME_OFFSET + BOOT_LOADER_NAME.len() + 1];
    let mut put =
        |offset: usize, value: u32| bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    put(
        field::FLAGS,
        INFO_MEMORY | INFO_MEM_MAP | INFO_BOOT_LOADER_NAME,
    );
    put(field::MEM_LOWER, MEM_LOWER_KIB);
    put(field::MEM_UPPER, mem_upper_kib(ram_size));
    put(field::MMAP_LENGTH, (map.len() * MMAP_ENTRY_SIZE) as u32);
    put(field::MMAP_ADDR, base + MMAP_OFFSET as u32);
    put(field::BOOT_LOADER_NAME, base + NAME_OFFSET as u32);
    for (i, entry) in map.iter().enumerate() {
        let at = MMAP_OFFSET + i * MMAP_ENTRY_SIZE;
        bytes[at..at + 4].copy_from_slice(&20u32.to_le_bytes());
        bytes[at + 4..at + 12].copy_from_slice(&entry.base.to_le_bytes());
        bytes[at + 12..at + 20].copy_from_slice(&entry.length.to_le_bytes());
        bytes[at + 20..at + 24].copy_from_slice(&entry.kind.to_le_bytes());
    }
    bytes[NAME_OFFSET..NAME_OFFSET + BOOT_LOADER_NAME.len()]
        .copy_from_slice(BOOT_LOADER_NAME.as_bytes());
    bytes
}

/// Adds `cmdline` to the structure in `info`, the page [`boot_info`]
/// filled for guest-physical `base`: the string at [`CMDLINE_OFFSET`],
/// NUL-ended, and its address and flag. `None` if it is longer than
/// [`CMDLINE_MAX`], holds a NUL, or `info` is shorter than a page.
pub fn set_cmdline(info: &mut [u8], base: u32, cmdline: &str) -> Option<()> {
    if cmdline.len() > CMDLINE_MAX || cmdline.contains('\0') || info.len() < CMDLINE_OFFSET + CMDLINE_MAX + 1 {
        return None;
    }
    let text = CMDLINE_OFFSET..CMDLINE_OFFSET + cmdline.len();
    info[text.clone()].copy_from_slice(cmdline.as_bytes());
    info[text.end] = 0;
    let flags = u32::from_le_bytes(info[field::FLAGS..field::FLAGS + 4].try_into().ok()?);
    info[field::FLAGS..field::FLAGS + 4].copy_from_slice(&(flags | INFO_CMDLINE).to_le_bytes());
    let at = base + CMDLINE_OFFSET as u32;
    info[field::CMDLINE..field::CMDLINE + 4].copy_from_slice(&at.to_le_bytes());
    Some(())
}

/// `mem_upper`: KiB of memory from 1 MiB to the end of RAM.
pub fn mem_upper_kib(ram_size: u64) -> u32 {
    u32::try_from((ram_size - UPPER_START) / 1024).unwrap_or(u32::MAX)
}

const _: () = assert!(INFO_SIZE <= MMAP_OFFSET);
const _: () = assert!(MMAP_OFFSET + 3 * MMAP_ENTRY_SIZE <= NAME_OFFSET);
const _: () = assert!(NAME_OFFSET + BOOT_LOADER_NAME.len() < CMDLINE_OFFSET);

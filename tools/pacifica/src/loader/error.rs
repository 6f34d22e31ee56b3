// SPDX-License-Identifier: GPL-2.0

//! What can go wrong while loading an image.

use crate::sys::MemoryError;

/// An image that cannot be loaded, and why.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// RAM is too small, too large or not a whole number of pages.
    #[error("guest RAM of {size:#x} bytes is not usable: it must be a multiple of 4 KiB between {min:#x} and {max:#x}")]
    RamSize {
        /// The size given.
        size: u64,
        /// The smallest size accepted.
        min: u64,
        /// The largest size accepted.
        max: u64,
    },
    /// Guest RAM could not be mapped.
    #[error("cannot map {size:#x} bytes of guest RAM: {source}")]
    OutOfMemory {
        /// The size asked for.
        size: u64,
        /// Why.
        source: std::io::Error,
    },
    /// Neither a Multiboot header nor an ELF64 header was found.
    #[error("image is neither a Multiboot v1 kernel (no valid header in its first 8 KiB) nor an ELF64 executable")]
    UnknownFormat,
    /// The Multiboot header ends past the end of the file.
    #[error("Multiboot header at offset {offset:#x} is cut off by the end of the file")]
    HeaderTruncated {
        /// File offset of the header.
        offset: usize,
    },
    /// The Multiboot header requires features this loader does not know.
    #[error("Multiboot header requires unsupported features (flags {flags:#010x}, unknown required bits {unknown:#06x})")]
    UnsupportedFlags {
        /// The header's flags.
        flags: u32,
        /// The required bits (0-15) this loader does not implement.
        unknown: u32,
    },
    /// The Multiboot header asks for a video mode, and there is no display.
    #[error("Multiboot header requests a video mode (flag bit 2), but pacifica has no display")]
    VideoModeRequested,
    /// The Multiboot header's address fields are inconsistent.
    #[error("Multiboot address fields are invalid: {0}")]
    BadAddresses(String),
    /// The file is not a parsable ELF file.
    #[error("image is not a valid ELF file: {0}")]
    Elf(#[from] goblin::error::Error),
    /// The ELF file is big-endian.
    #[error("ELF image is big-endian; x86 needs little-endian")]
    BigEndian,
    /// The ELF file is not an executable.
    #[error("ELF image has type {0}, expected 2 (ET_EXEC, a static executable)")]
    NotExecutable(u16),
    /// The ELF file is for another machine.
    #[error("ELF image is for machine {machine}, expected {expected}")]
    WrongMachine {
        /// `e_machine`.
        machine: u16,
        /// What was expected, in words.
        expected: &'static str,
    },
    /// The ELF file has nothing to load.
    #[error("ELF image has no loadable (PT_LOAD) segment")]
    NoLoadableSegment,
    /// A segment's file bytes are not inside the file.
    #[error("segment {index} claims file bytes {offset:#x}+{size:#x}, but the file has {file_len:#x} bytes")]
    SegmentOutsideFile {
        /// Program header index.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        size: u64,
        /// The file's length.
        file_len: usize,
    },
    /// A segment has more file bytes than memory bytes.
    #[error("segment {index} has p_filesz {filesz:#x} larger than p_memsz {memsz:#x}")]
    SegmentSizes {
        /// Program header index.
        index: usize,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// Part of the image would lie outside RAM.
    #[error("image range {start:#x}..{end:#x} lies outside guest RAM 0..{ram:#x}")]
    OutsideRam {
        /// Start of the range.
        start: u64,
        /// End of the range (exclusive).
        end: u64,
        /// RAM size.
        ram: u64,
    },
    /// Part of the image would overwrite the VMM's boot data.
    #[error("image range {start:#x}..{end:#x} overlaps the boot area below {boot_end:#x}; load it at or above that address")]
    OverlapsBootArea {
        /// Start of the range.
        start: u64,
        /// End of the range (exclusive).
        end: u64,
        /// End of the boot area.
        boot_end: u64,
    },
    /// The entry point lies outside every loaded segment.
    #[error("entry point {0:#x} is not inside any loaded segment")]
    EntryOutsideImage(u64),
    /// A Multiboot image must lie below 4 GiB: it starts with paging off.
    #[error("Multiboot image reaches {0:#x}, above 4 GiB, which 32-bit code cannot address")]
    Above4G(u64),
    /// Writing to guest memory failed (a loader bug: ranges are checked).
    #[error(transparent)]
    Memory(#[from] MemoryError),

    #[error("kernel is neither a Linux bzImage (no \"HdrS\" setup header) nor an ELF64 vmlinux")]
    /// The --kernel image is no Linux kernel.
    NotLinux,

    #[error("bzImage has no 64-bit entry point (xloadflags bit 0): a 32-bit kernel")]
    /// A bzImage without the 64-bit entry.
    No64BitEntry,

    #[error("vmlinux has no PVH entry point (ELF note XEN_ELFNOTE_PHYS32_ENTRY); build it with CONFIG_PVH=y or boot its bzImage")]
    /// A vmlinux without the PVH note.
    NoPvhEntry,

    #[error("cannot load the kernel: {0}")]
    /// linux-loader refused the kernel.
    Linux(String),

    #[error("the kernel needs RAM up to {needs:#x} to decompress and run, but the guest has {ram:#x} bytes; give it more with --mem")]
    /// RAM cannot hold the decompressed kernel.
    KernelTooLarge {
        /// End of the kernel's decompressed image.
        needs: u64,
        /// Bytes of guest RAM.
        ram: u64,
    },

    #[error("initrd of {size:#x} bytes does not fit: {room:#x} bytes of RAM are free above the kernel where it can read it; give the guest more with --mem")]
    /// The initrd does not fit in RAM.
    InitrdTooLarge {
        /// Bytes of initrd.
        size: u64,
        /// Bytes available.
        room: u64,
    },

    #[error("command line of {len} bytes is longer than the {max} the kernel accepts")]
    /// The command line is too long.
    CmdlineTooLong {
        /// Its length.
        len: usize,
        /// The most the kernel (and the layout) accept.
        max: usize,
    },

    #[error("invalid command line: {0}")]
    /// The command line has characters a kernel cannot take.
    BadCmdline(String),

    #[error("a Linux guest takes at most {max:#x} bytes of RAM (the PC's device window starts there), not {size:#x}")]
    /// Too much RAM for the PC's memory map.
    LinuxRam {
        /// Bytes asked for.
        size: u64,
        /// The most supported.
        max: u64,
    },
}

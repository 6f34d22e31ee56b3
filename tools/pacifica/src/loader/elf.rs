// SPDX-License-Identifier: GPL-2.0

//! Loading the `PT_LOAD` segments of an ELF executable, with `goblin`.
//!
//! Only the ELF header and the program headers are parsed: section headers
//! and symbols play no part in loading, and a kernel with unusual sections
//! should still load.

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::header::{Header, EI_CLASS, ELFCLASS64, ET_EXEC};
use goblin::elf::program_header::{ProgramHeader, PT_LOAD};

use super::place::place;
use super::LoadError;
use crate::sys::GuestMemory;

pub(super) use goblin::elf::header::{EM_386, EM_X86_64};

/// An ELF image in guest memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LoadedElf {
    /// The entry point as a physical address.
    pub entry: u64,
    /// One past the highest loaded byte.
    pub end: u64,
}

/// Whether `image` starts with an ELF header of class ELFCLASS64.
pub(super) fn is_elf64(image: &[u8]) -> bool {
    image.starts_with(b"\x7fELF") && image.get(EI_CLASS) == Some(&ELFCLASS64)
}

/// Loads the `PT_LOAD` segments of `image` at their physical addresses
/// (`p_paddr`) and zeroes their `.bss` parts.
///
/// `machines` lists the accepted `e_machine` values and `expected` says
/// what they are, for the error message. The entry point is translated like
/// GRUB does: if it lies in a segment's virtual range, it is moved by that
/// segment's `p_paddr - p_vaddr` (for kernels linked at a higher virtual
/// address than they load at).
pub(super) fn load(
    image: &[u8],
    mem: &mut GuestMemory,
    machines: &[u16],
    expected: &'static str,
) -> Result<LoadedElf, LoadError> {
    let header = goblin::elf::Elf::parse_header(image)?;
    check_header(&header, machines, expected)?;
    let container = if is_elf64(image) {
        Container::Big
    } else {
        Container::Little
    };
    let ctx = Ctx::new(container, Endian::Little);
    let phdrs = ProgramHeader::parse(
        image,
        header.e_phoff as usize,
        usize::from(header.e_phnum),
        ctx,
    )?;

    let mut end = None;
    for (index, ph) in phdrs
        .iter()
        .enumerate()
        .filter(|(_, ph)| ph.p_type == PT_LOAD && ph.p_memsz > 0)
    {
        let bytes = segment_bytes(image, index, ph)?;
        let seg_end = place(mem, ph.p_paddr, bytes, ph.p_memsz - ph.p_filesz)?;
        end = end.max(Some(seg_end));
    }
    let end = end.ok_or(LoadError::NoLoadableSegment)?;
    let entry = physical_entry(&phdrs, header.e_entry)?;
    Ok(LoadedElf { entry, end })
}

fn check_header(
    header: &Header,
    machines: &[u16],
    expected: &'static str,
) -> Result<(), LoadError> {
    if header.endianness()? != Endian::Little {
        return Err(LoadError::BigEndian);
    }
    if header.e_type != ET_EXEC {
        return Err(LoadError::NotExecutable(header.e_type));
    }
    if !machines.contains(&header.e_machine) {
        return Err(LoadError::WrongMachine {
            machine: header.e_machine,
            expected,
        });
    }
    Ok(())
}

/// The file bytes of segment `index`, after checking that they exist and do
/// not exceed its memory size.
fn segment_bytes<'a>(
    image: &'a [u8],
    index: usize,
    ph: &ProgramHeader,
) -> Result<&'a [u8], LoadError> {
    if ph.p_filesz > ph.p_memsz {
        return Err(LoadError::SegmentSizes {
            index,
            filesz: ph.p_filesz,
            memsz: ph.p_memsz,
        });
    }
    let outside = || LoadError::SegmentOutsideFile {
        index,
        offset: ph.p_offset,
        size: ph.p_filesz,
        file_len: image.len(),
    };
    let start = usize::try_from(ph.p_offset).map_err(|_| outside())?;
    let len = usize::try_from(ph.p_filesz).map_err(|_| outside())?;
    let end = start.checked_add(len).ok_or_else(outside)?;
    image.get(start..end).ok_or_else(outside)
}

/// The physical address of `entry`, which must lie in a loaded segment.
fn physical_entry(phdrs: &[ProgramHeader], entry: u64) -> Result<u64, LoadError> {
    let loads = || {
        phdrs
            .iter()
            .filter(|ph| ph.p_type == PT_LOAD && ph.p_memsz > 0)
    };
    let contains = |start: u64, ph: &ProgramHeader| entry >= start && entry - start < ph.p_memsz;
    if let Some(ph) = loads().find(|ph| contains(ph.p_vaddr, ph)) {
        return Ok(entry - ph.p_vaddr + ph.p_paddr);
    }
    if loads().any(|ph| contains(ph.p_paddr, ph)) {
        return Ok(entry);
    }
    Err(LoadError::EntryOutsideImage(entry))
}

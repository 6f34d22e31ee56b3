// SPDX-License-Identifier: GPL-2.0

//! Loader tests on synthetic images built here, byte by byte.

use super::info::{
    CMDLINE_MAX, INFO_BOOT_LOADER_NAME, INFO_CMDLINE, INFO_MEMORY, INFO_MEM_MAP, MEMORY_AVAILABLE, MEMORY_RESERVED,
};
use super::multiboot::{
    FLAG_AOUT_KLUDGE, FLAG_MEMORY_INFO, FLAG_PAGE_ALIGN, FLAG_VIDEO_MODE, HEADER_MAGIC,
};
use super::*;
use crate::boot::layout::{BOOT_INFO_ADDR, GDT_ADDR, HALT_STUB_ADDR, PML4_ADDR, STACK_TOP};
use crate::boot::segments::{gdt, GDT_SIZE};

const MIB: u64 = 1 << 20;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;

/// A `PT_LOAD` segment for [`elf`].
struct Seg {
    vaddr: u64,
    paddr: u64,
    data: Vec<u8>,
    memsz: u64,
}

impl Seg {
    fn at(paddr: u64, data: Vec<u8>, memsz: u64) -> Self {
        Self {
            vaddr: paddr,
            paddr,
            data,
            memsz,
        }
    }
}

/// Writes a minimal ELF executable: header, program headers, then each
/// segment's bytes 16-byte aligned. No section headers.
fn elf(is_64: bool, machine: u16, e_type: u16, entry: u64, segs: &[Seg]) -> Vec<u8> {
    let (ehsize, phentsize) = if is_64 { (64, 56) } else { (52, 32) };
    let mut offsets = Vec::new();
    let mut next = (ehsize + phentsize * segs.len()).next_multiple_of(16);
    for seg in segs {
        offsets.push(next);
        next = (next + seg.data.len()).next_multiple_of(16);
    }
    let mut out = Vec::new();
    let word = |out: &mut Vec<u8>, v: u64| {
        if is_64 {
            out.extend_from_slice(&v.to_le_bytes())
        } else {
            out.extend_from_slice(&(v as u32).to_le_bytes())
        }
    };
    out.extend_from_slice(&[0x7f, b'E', b'L', b'F', if is_64 { 2 } else { 1 }, 1, 1]);
    out.resize(16, 0);
    out.extend_from_slice(&e_type.to_le_bytes());
    out.extend_from_slice(&machine.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    word(&mut out, entry);
    word(&mut out, ehsize as u64); // e_phoff
    word(&mut out, 0); // e_shoff
    out.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    for v in [ehsize as u16, phentsize as u16, segs.len() as u16, 0, 0, 0] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    assert_eq!(out.len(), ehsize);
    for (seg, &offset) in segs.iter().zip(&offsets) {
        let pt_load = 1u32;
        let flags = 7u32;
        if is_64 {
            out.extend_from_slice(&pt_load.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            for v in [
                offset as u64,
                seg.vaddr,
                seg.paddr,
                seg.data.len() as u64,
                seg.memsz,
                0x1000,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        } else {
            let fields = [
                offset as u64,
                seg.vaddr,
                seg.paddr,
                seg.data.len() as u64,
                seg.memsz,
            ];
            out.extend_from_slice(&pt_load.to_le_bytes());
            for v in fields.into_iter().chain([u64::from(flags), 0x1000]) {
                out.extend_from_slice(&(v as u32).to_le_bytes());
            }
        }
    }
    for (seg, &offset) in segs.iter().zip(&offsets) {
        out.resize(offset, 0);
        out.extend_from_slice(&seg.data);
    }
    out
}

/// A Multiboot header with `flags` and, with the a.out kludge, `addresses`.
fn mb_header(flags: u32, addresses: Option<[u32; 5]>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [
        HEADER_MAGIC,
        flags,
        0u32.wrapping_sub(HEADER_MAGIC).wrapping_sub(flags),
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in addresses.into_iter().flatten() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// A Multiboot ELF32 kernel at 1 MiB: header, then `code`, then a bss.
fn multiboot_elf(code: &[u8], bss: u64) -> Vec<u8> {
    let mut data = mb_header(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO, None);
    data.extend_from_slice(code);
    let memsz = data.len() as u64 + bss;
    elf(
        false,
        EM_386,
        ET_EXEC,
        MIB + 12,
        &[Seg::at(MIB, data, memsz)],
    )
}

fn memory(size: u64) -> GuestMemory {
    let mut mem = GuestMemory::new(size as usize).unwrap();
    // Garbage, so that the tests see what the loader zeroes (only in the
    // first 16 MiB, where the test images lie, to keep large RAM cheap).
    let dirty = mem.size().min(16 << 20);
    mem.as_slice_mut()[..dirty].fill(0xaa);
    mem
}

fn u32_at(mem: &GuestMemory, gpa: u64) -> u32 {
    u32::from_le_bytes(mem.slice(gpa, 4).unwrap().try_into().unwrap())
}

fn u64_at(mem: &GuestMemory, gpa: u64) -> u64 {
    u64::from_le_bytes(mem.slice(gpa, 8).unwrap().try_into().unwrap())
}

// Multiboot header discovery.

#[test]
fn header_is_found_at_an_aligned_offset() {
    let mut image = vec![0u8; 0x40];
    image.extend(mb_header(FLAG_MEMORY_INFO, None));
    let header = find_header(&image).unwrap().unwrap();
    assert_eq!(header.offset, 0x40);
    assert_eq!(header.flags, FLAG_MEMORY_INFO);
    assert_eq!(header.addresses, None);
}

#[test]
fn headers_with_bad_checksum_misalignment_or_too_far_are_ignored() {
    let mut bad_sum = mb_header(0, None);
    bad_sum[8] ^= 1;
    assert!(find_header(&bad_sum).is_none());

    let mut unaligned = vec![0u8; 2];
    unaligned.extend(mb_header(0, None));
    assert!(find_header(&unaligned).is_none());

    let mut far = vec![0u8; 8192];
    far.extend(mb_header(0, None));
    assert!(find_header(&far).is_none());

    let mut last = vec![0u8; 8192 - 12];
    last.extend(mb_header(0, None));
    assert_eq!(find_header(&last).unwrap().unwrap().offset, 8180);
}

#[test]
fn unknown_required_flags_are_refused_and_optional_ones_ignored() {
    let err = find_header(&mb_header(1 << 5, None)).unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::UnsupportedFlags {
                flags: 0x20,
                unknown: 0x20
            }
        ),
        "{err}"
    );
    assert!(matches!(
        find_header(&mb_header(FLAG_VIDEO_MODE, None)).unwrap(),
        Err(LoadError::VideoModeRequested)
    ));
    let header = find_header(&mb_header(1 << 20, None)).unwrap().unwrap();
    assert_eq!(header.flags, 1 << 20);
}

#[test]
fn truncated_address_fields_are_refused() {
    let header = mb_header(FLAG_AOUT_KLUDGE, None);
    assert!(matches!(
        find_header(&header).unwrap(),
        Err(LoadError::HeaderTruncated { offset: 0 })
    ));
}

// Multiboot loading.

#[test]
fn multiboot_elf_segments_are_loaded_and_bss_zeroed() {
    let code = [0xf4u8, 0x90, 0x90, 0x90];
    let image = multiboot_elf(&code, 0x100);
    let mut mem = memory(64 * MIB);
    let boot = load(&image, &mut mem).unwrap();
    assert_eq!(boot.protocol, Protocol::Multiboot);
    assert_eq!(boot.entry, MIB + 12);
    assert_eq!(
        mem.slice(MIB, 12).unwrap(),
        &mb_header(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO, None)[..]
    );
    assert_eq!(mem.slice(MIB + 12, 4).unwrap(), &code);
    assert!(
        mem.slice(MIB + 16, 0x100).unwrap().iter().all(|&b| b == 0),
        "bss zeroed"
    );
    assert_eq!(boot.image_end, MIB + 16 + 0x100);
    assert_eq!(
        mem.slice(boot.image_end, 1).unwrap(),
        &[0xaa],
        "nothing past the image touched"
    );
}

#[test]
fn multiboot_state_points_at_entry_and_info() {
    let mut mem = memory(64 * MIB);
    let boot = load(&multiboot_elf(&[0xf4], 0), &mut mem).unwrap();
    let regs = boot.state.regs;
    assert_eq!(regs.rip, MIB + 12);
    assert_eq!(regs.rax, 0x2bad_b002);
    assert_eq!(regs.rbx, BOOT_INFO_ADDR);
    assert_eq!(boot.state.sregs.cr0, 0x11);
    assert_eq!(boot.state.sregs.cs.attrib, 0xc9b);
    assert_eq!(
        mem.slice(GDT_ADDR, GDT_SIZE).unwrap(),
        &gdt()
    );
}

#[test]
fn multiboot_info_describes_ram() {
    let mut mem = memory(64 * MIB);
    load(&multiboot_elf(&[0xf4], 0), &mut mem).unwrap();
    let info = BOOT_INFO_ADDR;
    let flags = u32_at(&mem, info);
    assert_eq!(flags, INFO_MEMORY | INFO_MEM_MAP | INFO_BOOT_LOADER_NAME);
    assert_eq!(u32_at(&mem, info + 4), 640, "mem_lower");
    assert_eq!(
        u32_at(&mem, info + 8),
        64512,
        "mem_upper = (64 MiB - 1 MiB) / 1 KiB"
    );

    // Walk the memory map the way a kernel does: by each entry's size field.
    let (length, addr) = (u32_at(&mem, info + 44), u32_at(&mem, info + 48));
    assert!(
        u64::from(addr) >= info + 116,
        "map does not overlap the structure"
    );
    let mut entries = Vec::new();
    let mut at = u64::from(addr);
    while at < u64::from(addr) + u64::from(length) {
        let size = u32_at(&mem, at);
        entries.push((
            u64_at(&mem, at + 4),
            u64_at(&mem, at + 12),
            u32_at(&mem, at + 20),
        ));
        at += u64::from(size) + 4;
    }
    assert_eq!(
        entries,
        [
            (0, 0xa0000, MEMORY_AVAILABLE),
            (0xa0000, 0x60000, MEMORY_RESERVED),
            (MIB, 63 * MIB, MEMORY_AVAILABLE)
        ]
    );

    let name = u64::from(u32_at(&mem, info + 64));
    assert_eq!(mem.slice(name, 9).unwrap(), b"pacifica\0");
}

#[test]
fn multiboot_and_elf64_images_get_the_command_line() {
    for image in [multiboot_elf(&[0xf4], 0), elf64_image(0x20_0000)] {
        let mut mem = memory(64 * MIB);
        load_with_cmdline(&image, "root=/dev/x quiet", &mut mem).unwrap();
        let flags = u32_at(&mem, BOOT_INFO_ADDR);
        assert_eq!(flags, INFO_MEMORY | INFO_MEM_MAP | INFO_BOOT_LOADER_NAME | INFO_CMDLINE);
        let at = u64::from(u32_at(&mem, BOOT_INFO_ADDR + 16));
        assert!(at >= BOOT_INFO_ADDR + 0x110 && at < BOOT_INFO_ADDR + 0x1000);
        assert_eq!(mem.slice(at, 18).unwrap(), b"root=/dev/x quiet\0");
        let name = u64::from(u32_at(&mem, BOOT_INFO_ADDR + 64));
        assert_eq!(mem.slice(name, 9).unwrap(), b"pacifica\0", "the name is intact");
    }
    let mut mem = memory(64 * MIB);
    let image = multiboot_elf(&[0xf4], 0);
    assert!(load_with_cmdline(&image, &"x".repeat(CMDLINE_MAX), &mut mem).is_ok());
    assert!(matches!(
        load_with_cmdline(&image, &"x".repeat(CMDLINE_MAX + 1), &mut mem),
        Err(LoadError::CmdlineTooLong { .. })
    ));
    assert!(matches!(load_with_cmdline(&image, "a\0b", &mut mem), Err(LoadError::BadCmdline(_))));
}

#[test]
fn mem_upper_follows_the_ram_size() {
    for (ram, upper) in [(2 * MIB, 1024), (128 * MIB, 130048), (1 << 30, 1047552)] {
        let mut mem = memory(ram);
        load(&multiboot_elf(&[0xf4], 0), &mut mem).unwrap();
        assert_eq!(u32_at(&mem, BOOT_INFO_ADDR + 8), upper, "ram {ram:#x}");
    }
}

#[test]
fn higher_half_entry_is_translated_to_its_physical_address() {
    let mut data = mb_header(FLAG_MEMORY_INFO, None);
    data.push(0xf4);
    let seg = Seg {
        vaddr: 0xc010_0000,
        paddr: 2 * MIB,
        memsz: data.len() as u64,
        data,
    };
    let image = elf(false, EM_386, ET_EXEC, 0xc010_000c, &[seg]);
    let mut mem = memory(16 * MIB);
    let boot = load(&image, &mut mem).unwrap();
    assert_eq!(boot.entry, 2 * MIB + 12);
    assert_eq!(mem.slice(2 * MIB + 12, 1).unwrap(), &[0xf4]);
}

#[test]
fn aout_kludge_loads_a_flat_binary() {
    // A flat binary linked at 1 MiB: header at offset 0, code after it,
    // 0x20 bytes of bss.
    let load_addr = MIB as u32;
    let mut image = mb_header(FLAG_AOUT_KLUDGE, Some([load_addr, load_addr, 0, 0, 0]));
    let code_offset = image.len() as u32;
    image.extend_from_slice(&[0xf4; 8]);
    let load_end = load_addr + image.len() as u32;
    let fields = [
        load_addr,
        load_addr,
        load_end,
        load_end + 0x20,
        load_addr + code_offset,
    ];
    let header = mb_header(FLAG_AOUT_KLUDGE, Some(fields));
    image[..header.len()].copy_from_slice(&header);

    let mut mem = memory(8 * MIB);
    let boot = load(&image, &mut mem).unwrap();
    assert_eq!(boot.entry, MIB + u64::from(code_offset));
    assert_eq!(mem.slice(MIB, image.len()).unwrap(), &image[..]);
    assert!(mem
        .slice(u64::from(load_end), 0x20)
        .unwrap()
        .iter()
        .all(|&b| b == 0));
    assert_eq!(boot.image_end, u64::from(load_end) + 0x20);
}

#[test]
fn aout_kludge_with_inconsistent_addresses_is_refused() {
    let m = MIB as u32;
    for fields in [
        [m, m + 0x10, 0, 0, m],    // load_addr above header_addr
        [m + 0x100, m, 0, 0, m],   // text would start before the file
        [m, m, m, 0, m],           // load_end_addr not above load_addr
        [m, m, m + 0x1000, 0, m],  // more to load than the file has
        [m, m, m + 32, m + 16, m], // bss ends before the data
    ] {
        let mut image = mb_header(FLAG_AOUT_KLUDGE, Some(fields));
        image.extend_from_slice(&[0; 32]);
        let err = load(&image, &mut memory(8 * MIB)).unwrap_err();
        assert!(
            matches!(err, LoadError::BadAddresses(_)),
            "{fields:x?}: {err}"
        );
    }
    let mut image = mb_header(FLAG_AOUT_KLUDGE, Some([m, m, 0, 0, m + 0x1000]));
    image.extend_from_slice(&[0; 32]);
    assert!(matches!(
        load(&image, &mut memory(8 * MIB)),
        Err(LoadError::EntryOutsideImage(_))
    ));
}

// ELF64 loading.

fn elf64_image(entry: u64) -> Vec<u8> {
    elf(
        true,
        EM_X86_64,
        ET_EXEC,
        entry,
        &[Seg::at(2 * MIB, vec![0xf4; 16], 0x1000)],
    )
}

#[test]
fn elf64_image_starts_in_long_mode() {
    let mut mem = memory(64 * MIB);
    let boot = load(&elf64_image(2 * MIB + 4), &mut mem).unwrap();
    assert_eq!(boot.protocol, Protocol::Elf64);
    assert_eq!(boot.entry, 2 * MIB + 4);
    let (regs, sregs) = (boot.state.regs, boot.state.sregs);
    assert_eq!(regs.rip, 2 * MIB + 4);
    assert_eq!((regs.rbx, regs.rdi), (BOOT_INFO_ADDR, BOOT_INFO_ADDR));
    assert_eq!(sregs.cr3, PML4_ADDR);
    assert_eq!(sregs.efer & 0x500, 0x500);
    assert_eq!(sregs.cs.attrib, 0xa9b);
    assert!(
        mem.slice(2 * MIB + 16, 0x1000 - 16)
            .unwrap()
            .iter()
            .all(|&b| b == 0),
        "bss zeroed"
    );
}

#[test]
fn elf64_boot_data_is_in_memory() {
    let mut mem = memory(64 * MIB);
    let boot = load(&elf64_image(2 * MIB), &mut mem).unwrap();
    assert_eq!(mem.slice(GDT_ADDR, GDT_SIZE).unwrap(), &gdt());
    assert_eq!(
        u64_at(&mem, PML4_ADDR) & !0xfff,
        0x3000,
        "PML4[0] points at the PDPT"
    );
    assert_eq!(
        u64_at(&mem, 0x3000) & !0xfff,
        0x4000,
        "PDPT[0] points at the first PD"
    );
    assert_eq!(
        u64_at(&mem, 0x4000 + 8),
        (2 * MIB) | 0xe3,
        "PD[1] maps 2 MiB as a large page"
    );
    assert_eq!(u64_at(&mem, boot.state.regs.rsp), HALT_STUB_ADDR);
    assert_eq!(boot.state.regs.rsp, STACK_TOP - 8);
    assert_eq!(mem.slice(HALT_STUB_ADDR, 1).unwrap(), &[0xf4]);
    assert_eq!(u32_at(&mem, BOOT_INFO_ADDR + 8), 64512);
}

#[test]
fn elf64_must_be_an_x86_64_executable() {
    let seg = || [Seg::at(2 * MIB, vec![0xf4], 1)];
    let dyn_image = elf(true, EM_X86_64, ET_DYN, 2 * MIB, &seg());
    assert!(matches!(
        load(&dyn_image, &mut memory(8 * MIB)),
        Err(LoadError::NotExecutable(3))
    ));
    let arm = elf(true, 183, ET_EXEC, 2 * MIB, &seg());
    assert!(matches!(
        load(&arm, &mut memory(8 * MIB)),
        Err(LoadError::WrongMachine { machine: 183, .. })
    ));
    let mut big_endian = elf64_image(2 * MIB);
    big_endian[5] = 2;
    assert!(load(&big_endian, &mut memory(8 * MIB)).is_err());
}

#[test]
fn elf32_without_multiboot_header_is_unknown() {
    let image = elf(
        false,
        EM_386,
        ET_EXEC,
        2 * MIB,
        &[Seg::at(2 * MIB, vec![0xf4], 1)],
    );
    assert!(matches!(
        load(&image, &mut memory(8 * MIB)),
        Err(LoadError::UnknownFormat)
    ));
    assert!(matches!(
        load(b"#!/bin/sh\n", &mut memory(8 * MIB)),
        Err(LoadError::UnknownFormat)
    ));
    assert!(matches!(
        load(&[], &mut memory(8 * MIB)),
        Err(LoadError::UnknownFormat)
    ));
}

// Checks shared by both protocols.

#[test]
fn segments_must_stay_out_of_the_boot_area() {
    let image = elf(
        true,
        EM_X86_64,
        ET_EXEC,
        0x7f000,
        &[Seg::at(0x7f000, vec![0xf4], 0x2000)],
    );
    let err = load(&image, &mut memory(8 * MIB)).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::OverlapsBootArea {
                start: 0x7f000,
                end: 0x81000,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn segments_must_fit_in_ram() {
    let image = elf(
        true,
        EM_X86_64,
        ET_EXEC,
        7 * MIB,
        &[Seg::at(7 * MIB, vec![0xf4], 2 * MIB)],
    );
    let err = load(&image, &mut memory(8 * MIB)).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::OutsideRam {
                start: 0x70_0000,
                end: 0x90_0000,
                ram: 0x80_0000
            }
        ),
        "{err}"
    );
    let image = elf(
        true,
        EM_X86_64,
        ET_EXEC,
        0,
        &[Seg::at(u64::MAX - 4, vec![0xf4], 16)],
    );
    assert!(matches!(
        load(&image, &mut memory(8 * MIB)),
        Err(LoadError::OutsideRam { .. })
    ));
}

#[test]
fn malformed_segments_are_refused() {
    let mut image = elf64_image(2 * MIB);
    // p_filesz of the first program header (offset 64 + 32) beyond the file.
    image[96..104].copy_from_slice(&0x10_0000u64.to_le_bytes());
    let err = load(&image, &mut memory(8 * MIB)).unwrap_err();
    assert!(
        matches!(err, LoadError::SegmentSizes { index: 0, .. }),
        "{err}"
    );
    // And with p_memsz raised too: the bytes are not in the file.
    image[104..112].copy_from_slice(&0x10_0000u64.to_le_bytes());
    let err = load(&image, &mut memory(8 * MIB)).unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::SegmentOutsideFile {
                index: 0,
                size: 0x10_0000,
                ..
            }
        ),
        "{err}"
    );
    // Program headers past the end of the file.
    let mut image = elf64_image(2 * MIB);
    image[32..40].copy_from_slice(&0xffff_0000u64.to_le_bytes());
    assert!(matches!(
        load(&image, &mut memory(8 * MIB)),
        Err(LoadError::Elf(_))
    ));
}

#[test]
fn entry_outside_every_segment_is_refused() {
    let err = load(&elf64_image(3 * MIB), &mut memory(8 * MIB)).unwrap_err();
    assert!(
        matches!(err, LoadError::EntryOutsideImage(0x30_0000)),
        "{err}"
    );
}

#[test]
fn images_without_loadable_segments_are_refused() {
    let image = elf(true, EM_X86_64, ET_EXEC, 2 * MIB, &[]);
    assert!(matches!(
        load(&image, &mut memory(8 * MIB)),
        Err(LoadError::NoLoadableSegment)
    ));
}

#[test]
fn ram_size_limits() {
    assert!(check_ram_size(2 * MIB).is_ok());
    assert!(check_ram_size(64 << 30).is_ok());
    for bad in [MIB, (64 << 30) + 4096, 64 * MIB + 1] {
        assert!(
            matches!(check_ram_size(bad), Err(LoadError::RamSize { .. })),
            "{bad:#x}"
        );
    }
}

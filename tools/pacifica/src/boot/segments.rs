// SPDX-License-Identifier: GPL-2.0

//! Flat segments, in the VMCB's attribute format and as GDT descriptors.
//!
//! VMRUN loads the hidden part of every segment register straight from the
//! VMCB, so the GDT in guest memory is not read at entry. The guest reads it
//! as soon as it reloads a segment register, though, so the GDT the loaders
//! write is computed from the very [`Segment`] values put into the sregs:
//! the two cannot disagree.

use super::layout::{GDT_ADDR, TSS_ADDR};
use crate::hw::seg::attr;
use crate::uapi::{Dtable, Segment, Sregs};

/// Selector of the 32-bit code segment (GDT entry 1).
pub const CODE32_SELECTOR: u16 = 0x08;
/// Selector of the data segment (GDT entry 2).
pub const DATA_SELECTOR: u16 = 0x10;
/// Selector of the 64-bit code segment (GDT entry 3).
pub const CODE64_SELECTOR: u16 = 0x18;
/// Selector of the TSS (GDT entries 4 and 5: a 16-byte descriptor in long mode).
pub const TSS_SELECTOR: u16 = 0x20;
/// Size of the GDT: six 8-byte entries.
pub const GDT_SIZE: usize = 6 * 8;
/// Limit of the TSS: the 104 bytes of a 32-bit or 64-bit TSS, minus one.
pub const TSS_LIMIT: u32 = 0x67;

/// Which code segment CS holds (the GDT has both, so that a guest may
/// switch between them with a far jump).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMode {
    /// 32-bit protected mode (D=1).
    Protected32,
    /// 64-bit mode (L=1, D=0).
    Long64,
}

/// The flat 4 GiB code segment for `mode`.
pub fn code_segment(mode: CodeMode) -> Segment {
    let (size, selector) = match mode {
        CodeMode::Protected32 => (attr::DB, CODE32_SELECTOR),
        CodeMode::Long64 => (attr::L, CODE64_SELECTOR),
    };
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        attrib: attr::CODE | attr::READABLE | attr::ACCESSED | attr::S | attr::P | size | attr::G,
    }
}

/// The flat 4 GiB read/write data segment used for DS, ES, FS, GS and SS.
pub fn data_segment() -> Segment {
    Segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: DATA_SELECTOR,
        attrib: attr::WRITABLE | attr::ACCESSED | attr::S | attr::P | attr::DB | attr::G,
    }
}

/// The task register: VMRUN refuses a guest whose TR is not a present,
/// busy TSS (APM Vol. 2, 15.5.1), even if the guest never uses it.
pub fn task_segment() -> Segment {
    Segment {
        base: TSS_ADDR,
        limit: TSS_LIMIT,
        selector: TSS_SELECTOR,
        attrib: attr::TSS_BUSY | attr::P,
    }
}

/// The LDT register: none loaded (selector 0), but with a valid present LDT
/// type as at processor reset.
pub fn ldt_segment() -> Segment {
    Segment {
        base: 0,
        limit: 0xffff,
        selector: 0,
        attrib: attr::LDT | attr::P,
    }
}

/// GDTR: the table at [`GDT_ADDR`].
pub fn gdtr() -> Dtable {
    Dtable {
        base: GDT_ADDR,
        limit: (GDT_SIZE - 1) as u16,
        pad: [0; 3],
    }
}

/// IDTR: an empty table, so any exception escalates to a triple fault that
/// the VMM reports, instead of running through stale vectors.
pub fn idtr() -> Dtable {
    Dtable::default()
}

/// The segment part of a boot state: a flat code segment for `mode`, the
/// flat data segment in every data register, the TSS, an empty LDT, and the
/// GDT and IDT above. Control registers are left zero for the caller.
pub fn flat_sregs(mode: CodeMode) -> Sregs {
    let data = data_segment();
    Sregs {
        cs: code_segment(mode),
        ds: data,
        es: data,
        fs: data,
        gs: data,
        ss: data,
        tr: task_segment(),
        ldt: ldt_segment(),
        gdt: gdtr(),
        idt: idtr(),
        ..Default::default()
    }
}

/// Encodes a segment as an 8-byte descriptor (APM Vol. 2, 4.7 and 4.8).
///
/// The VMCB holds the byte-granular limit; with G set the descriptor holds
/// it in 4 KiB units.
pub fn descriptor(seg: &Segment) -> u64 {
    let limit = if seg.attrib & attr::G != 0 {
        seg.limit >> 12
    } else {
        seg.limit
    };
    let limit = u64::from(limit);
    let attrib = u64::from(seg.attrib);
    (limit & 0xffff)
        | (seg.base & 0xff_ffff) << 16
        | (attrib & 0xff) << 40
        | ((limit >> 16) & 0xf) << 48
        | ((attrib >> 8) & 0xf) << 52
        | ((seg.base >> 24) & 0xff) << 56
}

/// The GDT image: null, 32-bit code, data, 64-bit code, and the TSS
/// descriptor whose upper half (bits 63:32 of the base, used in long mode)
/// is entry 5. The same for every mode: CS picks its code segment.
pub fn gdt() -> [u8; GDT_SIZE] {
    let tss = task_segment();
    let entries = [
        0,
        descriptor(&code_segment(CodeMode::Protected32)),
        descriptor(&data_segment()),
        descriptor(&code_segment(CodeMode::Long64)),
        descriptor(&tss),
        tss.base >> 32,
    ];
    let mut bytes = [0u8; GDT_SIZE];
    for (chunk, entry) in bytes.chunks_exact_mut(8).zip(entries) {
        chunk.copy_from_slice(&entry.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_segments_have_the_documented_attributes() {
        assert_eq!(code_segment(CodeMode::Protected32).attrib, 0xc9b);
        assert_eq!(code_segment(CodeMode::Long64).attrib, 0xa9b);
        assert_eq!(data_segment().attrib, 0xc93);
        assert_eq!(task_segment().attrib, 0x8b);
        assert_eq!(task_segment().limit, 0x67);
        assert_eq!(ldt_segment().attrib, 0x82);
    }

    #[test]
    fn descriptors_match_the_well_known_flat_encodings() {
        assert_eq!(
            descriptor(&code_segment(CodeMode::Protected32)),
            0x00cf_9b00_0000_ffff
        );
        assert_eq!(
            descriptor(&code_segment(CodeMode::Long64)),
            0x00af_9b00_0000_ffff
        );
        assert_eq!(descriptor(&data_segment()), 0x00cf_9300_0000_ffff);
    }

    #[test]
    fn tss_descriptor_carries_base_and_byte_limit() {
        let tss = Segment {
            base: 0x1234_5678,
            limit: 0x67,
            selector: 0x18,
            attrib: 0x8b,
        };
        assert_eq!(descriptor(&tss), 0x1200_8b34_5678_0067);
    }

    #[test]
    fn gdt_entries_sit_at_their_selectors() {
        let gdt = gdt();
        let entry = |sel: u16| {
            let i = usize::from(sel);
            u64::from_le_bytes(gdt[i..i + 8].try_into().unwrap())
        };
        assert_eq!(entry(0), 0);
        for mode in [CodeMode::Protected32, CodeMode::Long64] {
            let cs = code_segment(mode);
            assert_eq!(entry(cs.selector), descriptor(&cs));
        }
        assert_eq!(entry(CODE32_SELECTOR), 0x00cf_9b00_0000_ffff);
        assert_eq!(entry(CODE64_SELECTOR), 0x00af_9b00_0000_ffff);
        assert_eq!(entry(DATA_SELECTOR), descriptor(&data_segment()));
        assert_eq!(entry(TSS_SELECTOR), descriptor(&task_segment()));
        assert_eq!(entry(TSS_SELECTOR + 8), 0);
        assert_eq!(usize::from(gdtr().limit) + 1, GDT_SIZE);
        assert!(GDT_ADDR + GDT_SIZE as u64 <= TSS_ADDR);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Segment descriptors (APM Vol. 2, 4.7-4.8) and the VMCB's packed form of
//! their attributes (APM Vol. 2, 15.5.1). Depends on `core` only.

/// VMCB segment attribute fields: descriptor bits 40-47 in bits 0-7 and
/// bits 52-55 in bits 8-11.
pub mod attr {
    pub const TYPE: u16 = 0xf;
    pub const S: u16 = 1 << 4;
    pub const DPL_SHIFT: u16 = 5;
    pub const P: u16 = 1 << 7;
    pub const L: u16 = 1 << 9;
    pub const DB: u16 = 1 << 10;
    pub const G: u16 = 1 << 11;
    /// Type bits of a code or data segment (S = 1).
    pub const ACCESSED: u16 = 1 << 0;
    pub const CODE: u16 = 1 << 3;
    pub const CONFORMING: u16 = 1 << 2;
    pub const WRITABLE: u16 = 1 << 1;
    pub const READABLE: u16 = 1 << 1;
    /// System segment types (S = 0).
    pub const LDT: u16 = 0x2;
    pub const TSS16_AVAILABLE: u16 = 0x1;
    pub const TSS16_BUSY: u16 = 0x3;
    pub const TSS_AVAILABLE: u16 = 0x9;
    pub const TSS_BUSY: u16 = 0xb;
    /// The type bit that tells a busy TSS from an available one.
    pub const TSS_BUSY_BIT: u16 = 1 << 1;
}

/// Selector fields.
pub mod selector {
    /// Table indicator: the LDT instead of the GDT.
    pub const TI: u16 = 1 << 2;
    /// The index and TI bits, without the RPL: zero for a null selector.
    pub const INDEX_TI: u16 = 0xfffc;
    /// The byte offset of the descriptor in its table.
    pub const fn offset(sel: u16) -> u64 {
        (sel & !7) as u64
    }
}

/// A legacy descriptor: its low and high doublewords. A system descriptor
/// in long mode has a second eight bytes, of which only the upper base
/// bits and the type field (which must be zero) matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub lo: u32,
    pub hi: u32,
}

impl Descriptor {
    /// Decodes the eight bytes at a descriptor table entry.
    pub fn from_bytes(b: [u8; 8]) -> Self {
        let q = u64::from_le_bytes(b);
        Self { lo: q as u32, hi: (q >> 32) as u32 }
    }

    /// The base address (low 32 bits).
    pub fn base(self) -> u64 {
        u64::from((self.lo >> 16) | ((self.hi & 0xff) << 16) | (self.hi & 0xff00_0000))
    }

    /// The limit in bytes, scaled by the granularity bit.
    pub fn limit(self) -> u32 {
        let raw = (self.lo & 0xffff) | (self.hi & 0xf_0000);
        if self.hi & (1 << 23) != 0 {
            (raw << 12) | 0xfff
        } else {
            raw
        }
    }

    /// The attributes in the VMCB's format.
    pub fn attrib(self) -> u16 {
        (((self.hi >> 8) & 0xff) | ((self.hi >> 12) & 0xf00)) as u16
    }

    /// Whether this is a system descriptor (S = 0) of type `ty`.
    pub fn is_system(self, ty: u16) -> bool {
        self.attrib() & (attr::S | attr::TYPE) == ty
    }

    /// Whether the present bit is set.
    pub fn present(self) -> bool {
        self.attrib() & attr::P != 0
    }

    /// The same descriptor with its TSS busy bit set.
    pub fn with_busy(self) -> Self {
        Self { lo: self.lo, hi: self.hi | (u32::from(attr::TSS_BUSY_BIT) << 8) }
    }
}

/// Whether attributes `a` describe a TSS, available or busy, 16- or 32-bit.
pub fn is_tss(a: u16) -> bool {
    a & attr::S == 0 && matches!(a & attr::TYPE, attr::TSS16_AVAILABLE | attr::TSS16_BUSY | attr::TSS_AVAILABLE | attr::TSS_BUSY)
}

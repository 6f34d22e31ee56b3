// SPDX-License-Identifier: GPL-2.0

//! A walker of the guest's own page tables, for the accesses the module
//! makes on the guest's behalf (fetching an instruction to decode it, the
//! memory side of INS/OUTS). It follows the same rules as the processor
//! (APM Vol. 2, 5.3-5.5): every paging mode, large pages, U/S, R/W with
//! CR0.WP, NX with EFER.NXE, reserved bits, and it sets the accessed and
//! dirty bits the processor would set. Depends on `core` only.

use crate::hw::cr::{cr0, cr4};
use crate::hw::paging::PTE_ADDR_MASK;
use crate::hw::svm::efer;

/// Guest-physical memory as the walker sees it.
pub trait GuestPhys {
    /// Reads the 8 bytes at `gpa` (4 for the 32-bit format, zero-extended
    /// when `wide` is false), or `None` when `gpa` is not guest RAM.
    fn read_pte(&self, gpa: u64, wide: bool) -> Option<u64>;
    /// Sets `bits` in the entry at `gpa` atomically; returns false when
    /// `gpa` is not guest RAM.
    fn set_pte_bits(&self, gpa: u64, wide: bool, bits: u64) -> bool;
}

/// The guest state that selects and parameterises the walk.
#[derive(Clone, Copy, Debug, Default)]
pub struct PagingState {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub efer: u64,
    /// The guest's physical-address width (CPUID 8000_0008 EAX[7:0]);
    /// entry address bits above it are reserved. 0 means 52.
    pub maxphyaddr: u8,
}

/// The kind of access being translated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    pub write: bool,
    pub user: bool,
    pub fetch: bool,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WalkError {
    /// The guest gets a #PF with this error code (CR2 = the address).
    PageFault(u32),
    /// A page-table entry lies outside guest RAM: real hardware would read
    /// MMIO here; the module reports it instead of guessing.
    TableNotInRam(u64),
}

/// Page-table entry bits, by short names.
mod pte {
    pub(super) use crate::hw::paging::{
        PTE_A as A, PTE_D as D, PTE_NX as NX, PTE_P as P, PTE_PS as PS, PTE_RW as RW, PTE_US as US,
    };
}

pub use crate::hw::paging::pf;

const CR0_PG: u64 = cr0::PG;
const CR0_WP: u64 = cr0::WP;
const CR4_PSE: u64 = cr4::PSE;
const CR4_PAE: u64 = cr4::PAE;
const EFER_LMA: u64 = efer::LMA;
const EFER_NXE: u64 = efer::NXE;

/// A successful translation and what the guest's tables allow for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    pub gpa: u64,
    /// Every level has U/S set: user mode may access the page.
    pub user: bool,
    /// Every level has R/W set.
    pub writable: bool,
    /// Some level has NX set (and EFER.NXE is on).
    pub nx: bool,
    /// The final entry's dirty bit, after this walk.
    pub dirty: bool,
    /// The size of the guest page: 4 KiB, 2 MiB, 4 MiB or 1 GiB.
    pub page_size: u64,
    /// Guest-physical addresses of the page-table entries the walk used,
    /// top level first; `tables_used` of them are valid.
    pub tables: [u64; 4],
    pub tables_used: usize,
}

/// Translates the linear address `la` for `access`.
pub fn translate(
    mem: &impl GuestPhys,
    st: &PagingState,
    la: u64,
    access: Access,
) -> Result<u64, WalkError> {
    walk(mem, st, la, access).map(|t| t.gpa)
}

/// Translates `la` for `access` and reports the permissions of the
/// mapping, for building shadow entries.
pub fn walk(mem: &impl GuestPhys, st: &PagingState, la: u64, access: Access) -> Result<Translation, WalkError> {
    if st.cr0 & CR0_PG == 0 {
        return Ok(Translation {
            gpa: la & 0xffff_ffff,
            user: true,
            writable: true,
            nx: false,
            dirty: true,
            page_size: 4096,
            tables: [0; 4],
            tables_used: 0,
        });
    }
    let nxe = st.efer & EFER_NXE != 0;
    let fault = |present: bool, rsvd: bool| {
        let mut code = 0;
        if present {
            code |= pf::P;
        }
        if access.write {
            code |= pf::W;
        }
        if access.user {
            code |= pf::U;
        }
        if rsvd {
            code |= pf::RSV | pf::P;
        }
        if access.fetch && (nxe || st.cr4 & CR4_PAE != 0) {
            code |= pf::I;
        }
        WalkError::PageFault(code)
    };

    // (table address, entry width, levels, index bits per level)
    let (wide, levels): (bool, u32) = if st.efer & EFER_LMA != 0 {
        (true, 4)
    } else if st.cr4 & CR4_PAE != 0 {
        (true, 3)
    } else {
        (false, 2)
    };
    let mut table = if levels == 3 { st.cr3 & 0xffff_ffe0 } else { st.cr3 & PTE_ADDR_MASK };
    if !wide {
        table &= 0xffff_f000;
    }
    let (mut user_ok, mut write_ok, mut nx) = (true, true, false);
    let mut walked: [(u64, u64); 4] = [(0, 0); 4];
    // Address bits between MAXPHYADDR and bit 51 are reserved in 64-bit
    // entries (APM Vol. 2, 5.3.1).
    let maxphy = if st.maxphyaddr == 0 || st.maxphyaddr >= 52 { 52 } else { u32::from(st.maxphyaddr) };
    let phys_reserved = ((1u64 << 52) - 1) & !((1u64 << maxphy) - 1);

    for level in (1..=levels).rev() {
        let (shift, index_bits) = if wide { (12 + 9 * (level - 1), 9) } else { (12 + 10 * (level - 1), 10) };
        let index = (la >> shift) & ((1 << index_bits) - 1);
        let entry_size = if wide { 8 } else { 4 };
        // PAE's top level is the four PDPTEs, indexed by bits 30-31.
        let index = if levels == 3 && level == 3 { (la >> 30) & 3 } else { index };
        let gpa = table + index * entry_size;
        let e = mem.read_pte(gpa, wide).ok_or(WalkError::TableNotInRam(gpa))?;
        if e & pte::P == 0 {
            return Err(fault(false, false));
        }
        if wide && ((e & pte::NX != 0 && !nxe) || e & phys_reserved != 0) {
            return Err(fault(true, true));
        }
        walked[(levels - level) as usize] = (gpa, e);
        // PAE PDPTEs have no U/S, R/W or NX bits.
        if !(levels == 3 && level == 3) {
            user_ok &= e & pte::US != 0;
            write_ok &= e & pte::RW != 0;
            nx |= wide && e & pte::NX != 0;
        }
        let large = level > 1 && e & pte::PS != 0 && !(levels == 3 && level == 3) && (wide || st.cr4 & CR4_PSE != 0);
        // Reserved bits (APM Vol. 2, 5.3-5.4): PS in a PML4E, and the low
        // address bits of a large page's frame (the PAT bit, 12, excepted).
        // A legacy PAE PDPTE's control bits are left alone: processors
        // differ in what they let software and their own walks put there.
        let reserved = match (wide, level, large) {
            (true, 4, true) => true,
            (true, 3, true) => e & 0x3fff_e000 != 0,
            (true, 2, true) => e & 0x001f_e000 != 0,
            (false, 2, true) => e & (1 << 21) != 0,
            _ => false,
        };
        if reserved {
            return Err(fault(true, true));
        }
        if level == 1 || large {
            if access.user && !user_ok {
                return Err(fault(true, false));
            }
            let wp = st.cr0 & CR0_WP != 0;
            if access.write && !write_ok && (access.user || wp) {
                return Err(fault(true, false));
            }
            if access.fetch && nx {
                return Err(fault(true, false));
            }
            // Set A in every entry used, and D in the final one on a write.
            for (i, &(egpa, ent)) in walked.iter().take((levels - level + 1) as usize).enumerate() {
                let last = i == (levels - level) as usize;
                let mut bits = if levels == 3 && i == 0 { 0 } else { pte::A };
                if last && access.write {
                    bits |= pte::D;
                }
                if bits != 0 && ent & bits != bits && !mem.set_pte_bits(egpa, wide, bits) {
                    return Err(WalkError::TableNotInRam(egpa));
                }
            }
            let dirty = e & pte::D != 0 || access.write;
            let page_mask = (1u64 << shift) - 1;
            let base = if wide {
                e & PTE_ADDR_MASK & !page_mask
            } else if large {
                // PSE-36: bits 13-20 of a 4 MiB PDE are physical bits 32-39.
                (e & 0xffc0_0000) | ((e & 0x001f_e000) << 19)
            } else {
                e & 0xffff_f000
            };
            return Ok(Translation {
                gpa: base | (la & page_mask),
                user: user_ok,
                writable: write_ok,
                nx: nx && nxe,
                dirty,
                page_size: page_mask + 1,
                tables: walked.map(|(gpa, _)| gpa),
                tables_used: (levels - level + 1) as usize,
            });
        }
        table = if wide { e & PTE_ADDR_MASK } else { e & 0xffff_f000 };
    }
    // Level 1 always returns above.
    Err(fault(false, false))
}

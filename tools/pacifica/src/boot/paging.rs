// SPDX-License-Identifier: GPL-2.0

//! Identity-mapping page tables for the ELF64 long-mode protocol.
//!
//! Long mode requires paging, so the VMM gives the guest four-level tables
//! that map every guest-physical address to itself with 2 MiB pages: one
//! PML4 entry, one PDPT entry per GiB and one page directory per GiB. They
//! cover all of RAM and at least the first 4 GiB, so a 64-bit guest reaches
//! MMIO addresses below 4 GiB exactly as a 32-bit guest does.

use super::layout::{PDPT_ADDR, PD_ADDR, PML4_ADDR};

/// Page-table entry bits, by short names (defined in the module's
/// `hw/paging.rs`). A and D are set up front so that the guest's first walk
/// need not write them.
mod pte {
    pub(super) use crate::hw::paging::{PTE_A as A, PTE_D as D, PTE_P as P, PTE_PS as PS, PTE_RW as RW};
}

/// Bytes one page directory maps.
pub const GIB: u64 = 1 << 30;
/// Bytes one large page maps.
pub const LARGE_PAGE: u64 = 2 << 20;
/// Entries in one table.
pub const ENTRIES: usize = 512;

/// One 4 KiB table and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePage {
    /// Guest-physical address of the table.
    pub gpa: u64,
    /// Its 512 entries.
    pub entries: Box<[u64; ENTRIES]>,
}

impl TablePage {
    fn new(gpa: u64) -> Self {
        Self {
            gpa,
            entries: Box::new([0; ENTRIES]),
        }
    }

    /// The table as it lies in memory.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.entries.iter().flat_map(|e| e.to_le_bytes()).collect()
    }
}

/// How many page directories cover `ram_size` bytes and the first 4 GiB.
pub fn page_directories(ram_size: u64) -> u64 {
    ram_size.div_ceil(GIB).max(4)
}

/// Builds the identity map for `ram_size` bytes of RAM: the PML4 at
/// [`PML4_ADDR`], the PDPT at [`PDPT_ADDR`] and the page directories from
/// [`PD_ADDR`] on. The caller checks that they fit (see
/// [`MAX_RAM`](super::layout::MAX_RAM)); CR3 is [`PML4_ADDR`].
pub fn identity_map(ram_size: u64) -> Vec<TablePage> {
    let table = pte::P | pte::RW | pte::A;
    let mut pml4 = TablePage::new(PML4_ADDR);
    let mut pdpt = TablePage::new(PDPT_ADDR);
    pml4.entries[0] = PDPT_ADDR | table;
    let mut tables = Vec::new();
    for gib in 0..page_directories(ram_size) {
        let mut pd = TablePage::new(PD_ADDR + gib * 0x1000);
        for (i, entry) in pd.entries.iter_mut().enumerate() {
            *entry = (gib * GIB + i as u64 * LARGE_PAGE) | table | pte::D | pte::PS;
        }
        pdpt.entries[gib as usize] = pd.gpa | table;
        tables.push(pd);
    }
    tables.insert(0, pdpt);
    tables.insert(0, pml4);
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks the tables like the CPU does for a 2 MiB page.
    fn translate(tables: &[TablePage], va: u64) -> Option<u64> {
        let table_at = |gpa: u64| tables.iter().find(|t| t.gpa == gpa);
        let mut table = table_at(PML4_ADDR)?;
        for shift in [39, 30] {
            let entry = table.entries[((va >> shift) & 0x1ff) as usize];
            if entry & pte::P == 0 {
                return None;
            }
            table = table_at(entry & crate::hw::paging::PTE_ADDR_MASK)?;
        }
        let pde = table.entries[((va >> 21) & 0x1ff) as usize];
        assert_ne!(pde & pte::PS, 0, "leaf must be a 2 MiB page");
        (pde & pte::P != 0).then_some((pde & crate::hw::paging::PTE_ADDR_MASK & !(LARGE_PAGE - 1)) | (va & (LARGE_PAGE - 1)))
    }

    #[test]
    fn small_ram_still_maps_the_first_4_gib() {
        let tables = identity_map(64 << 20);
        assert_eq!(tables.len(), 2 + 4);
        for va in [0, 0x1000, 0x10_0000, 0x3ff_ffff, 0xfee0_0000, 0xffff_ffff] {
            assert_eq!(translate(&tables, va), Some(va), "{va:#x}");
        }
        assert_eq!(translate(&tables, 4 << 30), None);
    }

    #[test]
    fn large_ram_is_covered_to_its_end() {
        let ram = (5 << 30) + (512 << 20);
        let tables = identity_map(ram);
        assert_eq!(page_directories(ram), 6);
        assert_eq!(tables.len(), 2 + 6);
        assert_eq!(translate(&tables, ram - 1), Some(ram - 1));
        assert_eq!(translate(&tables, 6 << 30), None);
    }

    #[test]
    fn tables_sit_at_the_documented_addresses() {
        let tables = identity_map(1 << 30);
        assert_eq!(tables[0].gpa, PML4_ADDR);
        assert_eq!(tables[1].gpa, PDPT_ADDR);
        assert_eq!(tables[2].gpa, PD_ADDR);
        assert_eq!(tables[0].entries[0], PDPT_ADDR | pte::P | pte::RW | pte::A);
        assert_eq!(tables[2].entries[1], LARGE_PAGE | 0xe3);
        assert_eq!(tables[0].to_bytes().len(), 4096);
    }
}

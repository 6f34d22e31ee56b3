// SPDX-License-Identifier: GPL-2.0

//! Page-table entry bits (APM Vol. 2, 5.4: the same bits in every format
//! the module reads or writes: legacy, PAE and long-mode guest tables,
//! shadow tables, and the nested page tables, APM 15.25.5), and the #PF
//! error code. Depends on `core` only.

pub const PTE_P: u64 = 1 << 0;
pub const PTE_RW: u64 = 1 << 1;
pub const PTE_US: u64 = 1 << 2;
pub const PTE_A: u64 = 1 << 5;
pub const PTE_D: u64 = 1 << 6;
pub const PTE_PS: u64 = 1 << 7;
pub const PTE_NX: u64 = 1 << 63;
/// Physical-address bits of an entry (bits 12-51).
pub const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

pub const PAGE_SIZE: u64 = 4096;
pub const LARGE_PAGE_SIZE: u64 = 2 << 20;
/// Entries in one table.
pub const ENTRIES: usize = 512;

/// #PF error-code bits (APM Vol. 2, 8.4.2).
pub mod pf {
    pub const P: u32 = 1 << 0;
    pub const W: u32 = 1 << 1;
    pub const U: u32 = 1 << 2;
    pub const RSV: u32 = 1 << 3;
    pub const I: u32 = 1 << 4;
}

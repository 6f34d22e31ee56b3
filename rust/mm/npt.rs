// SPDX-License-Identifier: GPL-2.0

//! Building nested page tables: guest-physical to host-physical, four
//! levels in the long-mode format (APM 15.25), with 2 MiB pages where the
//! guest-physical and host-physical addresses are both 2 MiB aligned and
//! the host memory is contiguous, 4 KiB pages elsewhere.
//!
//! The builder only sees tables through [`Tables`], so the same code runs
//! in the module (on pages from the page allocator) and in the host tests.
//! Depends on `core` only.

use crate::hw::paging::*;

/// Storage for page tables, addressed by their physical address.
pub trait Tables {
    /// Allocates a zeroed table and returns its physical address, or `None`
    /// when out of memory.
    fn alloc(&mut self) -> Option<u64>;
    /// Reads entry `index` of the table at `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at `table`.
    fn write(&mut self, table: u64, index: usize, entry: u64);
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    NoMemory,
    /// Part of the range is mapped already.
    Overlap,
    /// An address is not aligned to the page size asked for.
    Misaligned,
}

/// Permissions of a leaf: guest memory is readable, writable and
/// executable; the guest's own page tables restrict it further.
const LEAF: u64 = PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D;
const NONLEAF: u64 = PTE_P | PTE_RW | PTE_US | PTE_A;

fn index(gpa: u64, level: u32) -> usize {
    ((gpa >> (12 + 9 * (level - 1))) & 511) as usize
}

/// Maps one page of `size` (4 KiB or 2 MiB) at `gpa` to `hpa` under the
/// root table `root`.
pub fn map_page(t: &mut impl Tables, root: u64, gpa: u64, hpa: u64, size: u64) -> Result<(), MapError> {
    let leaf_level = if size == LARGE_PAGE_SIZE { 2 } else { 1 };
    if !gpa.is_multiple_of(size) || !hpa.is_multiple_of(size) {
        return Err(MapError::Misaligned);
    }
    let mut table = root;
    for level in (leaf_level + 1..=4).rev() {
        let i = index(gpa, level);
        let e = t.read(table, i);
        table = if e & PTE_P == 0 {
            let next = t.alloc().ok_or(MapError::NoMemory)?;
            t.write(table, i, next | NONLEAF);
            next
        } else if e & PTE_PS != 0 {
            return Err(MapError::Overlap);
        } else {
            e & PTE_ADDR_MASK
        };
    }
    let i = index(gpa, leaf_level);
    let e = t.read(table, i);
    if e & PTE_P != 0 {
        return Err(MapError::Overlap);
    }
    let ps = if leaf_level == 2 { PTE_PS } else { 0 };
    t.write(table, i, hpa | LEAF | ps);
    Ok(())
}

/// Maps `n` pages of 4 KiB starting at `gpa`, whose host-physical
/// addresses `hpa(i)` gives, using 2 MiB pages wherever a whole aligned
/// 2 MiB of guest-physical space is backed by aligned contiguous host
/// memory. Returns how many 2 MiB pages it used.
pub fn map_range(
    t: &mut impl Tables,
    root: u64,
    gpa: u64,
    n: usize,
    hpa: impl Fn(usize) -> u64,
) -> Result<usize, MapError> {
    const PER_LARGE: usize = (LARGE_PAGE_SIZE / PAGE_SIZE) as usize;
    let mut i = 0;
    let mut large = 0;
    while i < n {
        let g = gpa + i as u64 * PAGE_SIZE;
        let h = hpa(i);
        let contiguous = || (1..PER_LARGE).all(|k| hpa(i + k) == h + k as u64 * PAGE_SIZE);
        if g.is_multiple_of(LARGE_PAGE_SIZE) && h.is_multiple_of(LARGE_PAGE_SIZE) && i + PER_LARGE <= n && contiguous() {
            map_page(t, root, g, h, LARGE_PAGE_SIZE)?;
            i += PER_LARGE;
            large += 1;
        } else {
            map_page(t, root, g, h, PAGE_SIZE)?;
            i += 1;
        }
    }
    Ok(large)
}

/// Translates `gpa` through the tables, as the hardware would: the host
/// physical address, or `None` if it is not mapped.
pub fn translate(t: &impl Tables, root: u64, gpa: u64) -> Option<u64> {
    let mut table = root;
    for level in (1..=4).rev() {
        let e = t.read(table, index(gpa, level));
        if e & PTE_P == 0 {
            return None;
        }
        if level == 1 || (level == 2 && e & PTE_PS != 0) {
            let mask = (1u64 << (12 + 9 * (level - 1))) - 1;
            return Some((e & PTE_ADDR_MASK & !mask) | (gpa & mask));
        }
        table = e & PTE_ADDR_MASK;
    }
    None
}

/// Clears the leaf mapping `gpa`, if any (4 KiB or 2 MiB).
pub fn unmap_leaf(t: &mut impl Tables, root: u64, gpa: u64) {
    let mut table = root;
    for level in (1..=4).rev() {
        let i = index(gpa, level);
        let e = t.read(table, i);
        if e & PTE_P == 0 {
            return;
        }
        if level == 1 || (level == 2 && e & PTE_PS != 0) {
            t.write(table, i, 0);
            return;
        }
        table = e & PTE_ADDR_MASK;
    }
}

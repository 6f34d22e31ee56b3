// SPDX-License-Identifier: GPL-2.0

//! Pages the module allocates for the hardware (VMCBs, host save areas,
//! permission maps, nested page tables, run pages), with their physical
//! addresses, and the accounting `PACIFICA_GET_INFO` reports.

use crate::shim::{self, bindings};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::prelude::*;

/// Pages currently allocated through [`HwPages`].
static PAGES_ALLOCATED: AtomicU64 = AtomicU64::new(0);

/// Pages currently allocated by the module (excluding pinned guest memory).
pub(crate) fn pages_allocated() -> u64 {
    PAGES_ALLOCATED.load(Ordering::Relaxed)
}

/// `2^order` zeroed, physically contiguous pages in the direct map.
///
/// # Invariants
///
/// `va` is the start of a live allocation of `2^order` pages from
/// `pac_alloc_pages(order)`, owned by this value.
pub(crate) struct HwPages {
    va: *mut u8,
    order: u32,
}

// SAFETY: the pages are plain memory owned by this value; moving the owner
// between threads is fine.
unsafe impl Send for HwPages {}
// SAFETY: shared references only give out addresses; writes go through
// `&mut self` or raw pointers whose users synchronise.
unsafe impl Sync for HwPages {}

impl HwPages {
    /// Allocates `2^order` zeroed pages.
    pub(crate) fn new(order: u32) -> Result<Self> {
        Self::alloc(order, false)
    }

    /// One zeroed page below 4 GiB.
    pub(crate) fn page_dma32() -> Result<Self> {
        Self::alloc(0, true)
    }

    fn alloc(order: u32, dma32: bool) -> Result<Self> {
        // SAFETY: `pac_alloc_pages` may sleep; we are in process context.
        let va = unsafe { bindings::pac_alloc_pages(order, i32::from(dma32)) } as *mut u8;
        if va.is_null() {
            return Err(ENOMEM);
        }
        PAGES_ALLOCATED.fetch_add(1 << order, Ordering::Relaxed);
        // INVARIANT: `va` is a fresh allocation of `2^order` pages.
        Ok(HwPages { va, order })
    }

    /// One zeroed page.
    pub(crate) fn page() -> Result<Self> {
        Self::new(0)
    }

    /// Kernel virtual address.
    pub(crate) fn va(&self) -> *mut u8 {
        self.va
    }

    /// Physical address.
    pub(crate) fn pa(&self) -> u64 {
        shim::virt_to_phys(self.va)
    }

    /// Size in bytes.
    pub(crate) fn len(&self) -> usize {
        4096 << self.order
    }

    /// The pages as a `T`.
    ///
    /// # Safety
    ///
    /// `T` must fit in [`Self::len`] bytes, need at most 4096-byte alignment,
    /// and every bit pattern (including zero) must be a valid `T`.
    pub(crate) unsafe fn as_mut<T>(&mut self) -> &mut T {
        // SAFETY: the allocation is page-aligned, large enough and valid for
        // `T` per the caller; `&mut self` makes the borrow exclusive.
        unsafe { &mut *(self.va as *mut T) }
    }

    /// The pages as bytes.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: by the type invariant `va` points at `len()` bytes we own.
        unsafe { core::slice::from_raw_parts_mut(self.va, self.len()) }
    }
}

impl Drop for HwPages {
    fn drop(&mut self) {
        // SAFETY: by the type invariant the pages came from
        // `pac_alloc_pages(self.order)` and are still allocated.
        unsafe { bindings::pac_free_pages(self.va as *mut _, self.order) };
        PAGES_ALLOCATED.fetch_sub(1 << self.order, Ordering::Relaxed);
    }
}

/// Page tables (nested or shadow) in pages of the module, addressed by
/// physical address, with an optional bound on their number.
///
/// # Invariants
///
/// Every table address handed to `read`/`write` was returned by `alloc` (or
/// is `root`), so it is the physical address of a page in `pages`.
pub(crate) struct TablePages {
    pages: KVec<HwPages>,
    limit: usize,
}

impl TablePages {
    /// Tables whose first page, the root, is below 4 GiB if `dma32`; at
    /// most `limit` pages in all. Returns them and the root's address.
    pub(crate) fn new(dma32: bool, limit: usize) -> Result<(Self, u64)> {
        let root = if dma32 { HwPages::page_dma32()? } else { HwPages::page()? };
        let pa = root.pa();
        let mut pages = KVec::new();
        pages.push(root, GFP_KERNEL_ACCOUNT)?;
        Ok((TablePages { pages, limit }, pa))
    }

    /// Pages in use.
    pub(crate) fn len(&self) -> usize {
        self.pages.len()
    }

    /// No tables at all: a placeholder that allocates nothing.
    pub(crate) fn empty() -> Self {
        TablePages { pages: KVec::new(), limit: 0 }
    }
}

impl crate::mm::npt::Tables for TablePages {
    fn alloc(&mut self) -> Option<u64> {
        if self.pages.len() >= self.limit {
            return None;
        }
        let p = HwPages::page().ok()?;
        let pa = p.pa();
        self.pages.push(p, GFP_KERNEL_ACCOUNT).ok()?;
        Some(pa)
    }

    fn read(&self, table: u64, index: usize) -> u64 {
        let p = crate::shim::phys_to_virt(table) as *const u64;
        // SAFETY: by the type invariant `table` is one of our pages, and
        // `index % 512` keeps the read inside it.
        unsafe { p.add(index % 512).read_volatile() }
    }

    fn write(&mut self, table: u64, index: usize, entry: u64) {
        let p = crate::shim::phys_to_virt(table) as *mut u64;
        // SAFETY: as in `read`. Writers are serialised by the lock that owns
        // these tables; the hardware only reads them.
        unsafe { p.add(index % 512).write_volatile(entry) }
    }
}

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
        // SAFETY: `pac_alloc_pages` may sleep; we are in process context.
        let va = unsafe { bindings::pac_alloc_pages(order) } as *mut u8;
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

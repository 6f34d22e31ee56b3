// SPDX-License-Identifier: GPL-2.0

//! Guest memory: the VMM's own mappings, pinned for the VM's life, mapped
//! into the nested page tables, and reachable by the module through the
//! kernel's direct map for the accesses it makes on the guest's behalf.

use super::npt;
use super::pages::TablePages;
use crate::emulate::walk::GuestPhys;
use crate::global;
use crate::hw::paging::PAGE_SIZE;
use crate::shim::{self, mm_struct, page};
use crate::uapi;
use core::sync::atomic::Ordering;
use kernel::prelude::*;

/// Page pointers per chunk of a region's page array: one page of them, so
/// that the only allocation that grows with the region is the array of
/// chunks (a 256 GiB region needs 128K chunks, an array of 3 MiB, which
/// `KVVec` takes from vmalloc when no contiguous memory is at hand).
const CHUNK: usize = 512;

/// One registered region.
///
/// # Invariants
///
/// `chunks` holds `size / PAGE_SIZE` page pointers, [`CHUNK`] per chunk,
/// each pinned by `pin_user_pages`; `mm` was charged for all of them
/// before the first was pinned. Both are undone only in `drop`.
struct Region {
    slot: u32,
    gpa: u64,
    size: u64,
    chunks: KVVec<KVec<*mut page>>,
    mm: *mut mm_struct,
}

// SAFETY: the page pointers are references to pinned pages, usable from
// any thread.
unsafe impl Send for Region {}

impl Region {
    /// Charges, then pins, the `n` pages of the caller's memory at `uaddr`,
    /// chunk by chunk, allocating as it goes; on failure nothing stays
    /// pinned or charged.
    fn pin(r: &uapi::MemoryRegion) -> Result<Self> {
        let n = (r.memory_size / PAGE_SIZE) as usize;
        // The charge comes first: over RLIMIT_MEMLOCK, nothing is
        // allocated at all.
        let mm = shim::account_locked(n)?;
        // From here `drop` uncharges the `n` pages and unpins what `chunks`
        // holds.
        let mut region = Region { slot: r.slot, gpa: r.guest_phys_addr, size: r.memory_size, chunks: KVVec::new(), mm };
        region.chunks = KVVec::with_capacity(n.div_ceil(CHUNK), GFP_KERNEL_ACCOUNT)?;
        let mut done = 0;
        while done < n {
            if shim::signal_pending() {
                return Err(EINTR);
            }
            let len = CHUNK.min(n - done);
            let mut chunk = KVec::with_capacity(len, GFP_KERNEL_ACCOUNT)?;
            chunk.extend_with(len, core::ptr::null_mut(), GFP_KERNEL_ACCOUNT)?;
            shim::pin_user_pages(r.userspace_addr + (done as u64) * PAGE_SIZE, &mut chunk)?;
            // Cannot fail: the capacity was reserved above (and a failure
            // would only leak the chunk's pins, never free pinned pages).
            region.chunks.push(chunk, GFP_KERNEL_ACCOUNT)?;
            global::get().pages_pinned.fetch_add(len as u64, Ordering::Relaxed);
            done += len;
        }
        Ok(region)
    }

    /// The `i`th page of the region.
    fn page(&self, i: usize) -> *mut page {
        self.chunks[i / CHUNK][i % CHUNK]
    }

    fn nr_pages(&self) -> usize {
        (self.size / PAGE_SIZE) as usize
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        for chunk in self.chunks.iter_mut() {
            // SAFETY: by the type invariant each chunk was pinned once and
            // is unpinned only here.
            unsafe { shim::unpin_user_pages(chunk) };
            global::get().pages_pinned.fetch_sub(chunk.len() as u64, Ordering::Relaxed);
        }
        // SAFETY: `mm` was charged `nr_pages` by `account_locked` in `pin`.
        unsafe { shim::unaccount_locked(self.nr_pages(), self.mm) };
    }
}

/// A VM's memory: its regions and the nested page tables mapping them.
pub(crate) struct GuestMemory {
    regions: KVec<Region>,
    /// Regions whose mapping failed half-way: a running vCPU may still hold
    /// a TLB entry for a page of them, so they stay pinned until the VM goes.
    retired: KVec<Region>,
    tables: TablePages,
    /// Physical address of the top-level table (the VMCB's `nested_cr3`).
    pub(crate) npt_root: u64,
}

/// What failed when adding a region, for the errno.
fn check_region(r: &uapi::MemoryRegion, existing: &[Region]) -> Result {
    let page = PAGE_SIZE;
    if r.flags != 0 || r.slot >= uapi::PACIFICA_MAX_MEMORY_REGIONS {
        return Err(EINVAL);
    }
    if r.memory_size == 0 || r.memory_size % page != 0 || r.guest_phys_addr % page != 0 || r.userspace_addr % page != 0 {
        return Err(EINVAL);
    }
    // Guest-physical space ends at 2^52 (the architectural maximum); user
    // addresses must not wrap either.
    let end = r.guest_phys_addr.checked_add(r.memory_size).ok_or(EINVAL)?;
    if end > 1 << 52 || r.userspace_addr.checked_add(r.memory_size).is_none() {
        return Err(EINVAL);
    }
    // All of a VM's regions together stay within the documented limit.
    let total: u64 = existing.iter().map(|e| e.size).sum();
    if r.memory_size > uapi::PACIFICA_MAX_GUEST_RAM - total.min(uapi::PACIFICA_MAX_GUEST_RAM) {
        return Err(E2BIG);
    }
    for e in existing {
        if e.slot == r.slot {
            return Err(EEXIST);
        }
        if r.guest_phys_addr < e.gpa + e.size && e.gpa < end {
            return Err(EEXIST);
        }
    }
    Ok(())
}

impl GuestMemory {
    /// Empty memory with an empty top-level table.
    pub(crate) fn new() -> Result<Self> {
        let (tables, npt_root) = TablePages::new(false, usize::MAX)?;
        Ok(GuestMemory { regions: KVec::new(), retired: KVec::new(), tables, npt_root })
    }

    /// Pins and maps a new region (`PACIFICA_SET_MEMORY_REGION`).
    pub(crate) fn add(&mut self, r: &uapi::MemoryRegion) -> Result {
        check_region(r, &self.regions)?;
        // Room for the region wherever it ends up, before anything is
        // pinned or mapped: a push that fails after mapping would unpin
        // pages the nested page tables point at.
        self.regions.reserve(1, GFP_KERNEL_ACCOUNT)?;
        self.retired.reserve(1, GFP_KERNEL_ACCOUNT)?;
        let n = (r.memory_size / PAGE_SIZE) as usize;
        let region = Region::pin(r)?;
        let hpa = |i: usize| {
            // SAFETY: the region's pages are pinned (type invariant).
            unsafe { shim::page_to_phys(region.page(i)) }
        };
        // The overlap check above means the range is unmapped; a failure
        // here is an allocation failure. The leaves written so far are
        // cleared again, and the pages stay pinned (retired) because
        // another vCPU may have cached a translation to one of them.
        if let Err(e) = npt::map_range(&mut self.tables, self.npt_root, r.guest_phys_addr, n, hpa) {
            self.unmap_partial(r.guest_phys_addr, n);
            // Cannot fail: room was reserved above.
            let _ = self.retired.push(region, GFP_KERNEL_ACCOUNT);
            return Err(match e {
                npt::MapError::NoMemory => ENOMEM,
                _ => EEXIST,
            });
        }
        // Cannot fail: room was reserved above.
        let _ = self.regions.push(region, GFP_KERNEL_ACCOUNT);
        Ok(())
    }

    /// Clears the leaves of a range whose mapping failed half-way.
    fn unmap_partial(&mut self, gpa: u64, n: usize) {
        for i in 0..n {
            let g = gpa + i as u64 * PAGE_SIZE;
            npt::unmap_leaf(&mut self.tables, self.npt_root, g);
        }
    }

    /// The host-physical address of the guest page at `gpa`, if it is RAM.
    pub(crate) fn hpa(&self, gpa: u64) -> Option<u64> {
        let r = self.find(gpa)?;
        let off = gpa - r.gpa;
        // SAFETY: the region's pages are pinned (type invariant of `Region`).
        let pa = unsafe { shim::page_to_phys(r.page((off / PAGE_SIZE) as usize)) };
        Some(pa + off % PAGE_SIZE)
    }

    /// Whether `gpa` lies in a region.
    pub(crate) fn is_ram(&self, gpa: u64) -> bool {
        self.find(gpa).is_some()
    }

    fn find(&self, gpa: u64) -> Option<&Region> {
        self.regions.iter().find(|r| gpa >= r.gpa && gpa - r.gpa < r.size)
    }

    /// The kernel address of the byte at `gpa`, valid up to the end of its
    /// 4 KiB page, or `None` outside guest RAM.
    fn hva(&self, gpa: u64) -> Option<*mut u8> {
        Some(shim::phys_to_virt(self.hpa(gpa)?))
    }

    /// Copies guest memory at `gpa` into `buf`; false if any of it is not RAM.
    pub(crate) fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        self.chunks(gpa, buf.len(), |hva, off, len| {
            // SAFETY: `hva` is valid for `len` bytes within one pinned page;
            // the guest may write it concurrently, which only makes the
            // bytes read stale, never invalid.
            unsafe { core::ptr::copy_nonoverlapping(hva, buf[off..].as_mut_ptr(), len) }
        })
    }

    /// Copies `data` into guest memory at `gpa`; false if any of it is not RAM.
    pub(crate) fn write(&self, gpa: u64, data: &[u8]) -> bool {
        self.chunks(gpa, data.len(), |hva, off, len| {
            // SAFETY: as in `read`; the page is pinned writable.
            unsafe { core::ptr::copy_nonoverlapping(data[off..].as_ptr(), hva, len) }
        })
    }

    /// Sets `bits` in the naturally aligned doubleword at `gpa` atomically,
    /// as a locked OR of the CPU's own would; returns the old value, or
    /// `None` if `gpa` is misaligned or not RAM.
    pub(crate) fn fetch_or_u32(&self, gpa: u64, bits: u32) -> Option<u32> {
        if gpa % 4 != 0 {
            return None;
        }
        let h = self.hva(gpa)?;
        // SAFETY: `h` is a 4-byte aligned doubleword in a pinned page; the
        // atomic OR races correctly with the guest's own accesses.
        let a = unsafe { &*(h as *const core::sync::atomic::AtomicU32) };
        Some(a.fetch_or(bits, Ordering::SeqCst))
    }

    /// Calls `f(hva, offset, len)` for each page-bounded piece of
    /// `[gpa, gpa + len)`, after checking that all of it is RAM.
    fn chunks(&self, gpa: u64, len: usize, mut f: impl FnMut(*mut u8, usize, usize)) -> bool {
        let pieces = |visit: &mut dyn FnMut(u64, usize, usize) -> bool| {
            let mut done = 0usize;
            while done < len {
                let g = gpa.wrapping_add(done as u64);
                let l = ((PAGE_SIZE - g % PAGE_SIZE) as usize).min(len - done);
                if !visit(g, done, l) {
                    return false;
                }
                done += l;
            }
            true
        };
        // Check everything first so that a write is all or nothing.
        if !pieces(&mut |g, _, _| self.hva(g).is_some()) {
            return false;
        }
        pieces(&mut |g, off, l| {
            if let Some(h) = self.hva(g) {
                f(h, off, l);
            }
            true
        })
    }
}

impl GuestPhys for GuestMemory {
    fn read_pte(&self, gpa: u64, wide: bool) -> Option<u64> {
        let mut b = [0u8; 8];
        let n = if wide { 8 } else { 4 };
        self.read(gpa, &mut b[..n]).then(|| u64::from_le_bytes(b))
    }

    fn set_pte_bits(&self, gpa: u64, wide: bool, bits: u64) -> bool {
        // Entries are naturally aligned, so they never straddle pages.
        let Some(h) = self.hva(gpa) else { return false };
        if wide {
            // SAFETY: `h` is an 8-byte aligned entry in a pinned page; the
            // atomic OR races correctly with the guest's own updates.
            let a = unsafe { &*(h as *const core::sync::atomic::AtomicU64) };
            a.fetch_or(bits, Ordering::SeqCst);
        } else {
            // SAFETY: as above, for a 4-byte entry.
            let a = unsafe { &*(h as *const core::sync::atomic::AtomicU32) };
            a.fetch_or(bits as u32, Ordering::SeqCst);
        }
        true
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A vCPU's shadow MMU: the guest's view of its paging registers, the
//! shadow tables built from the guest's own (`mm/shadow.rs`), one set per
//! guest address space it has recently used, and the hardware registers the
//! VMCB gets instead of the guest's.
//!
//! Under shadow paging the hardware always pages (CR0.PG = 1) with CR0.WP = 1
//! and EFER.NXE = 1, in long mode exactly when the guest is, and in PAE mode
//! otherwise; the guest's CR0, CR3, CR4 and EFER live here and every access
//! to them is intercepted.
//!
//! Shadow tables are cached per guest CR3 ([`MAX_ROOTS`] of them, least
//! recently used evicted), so a guest switching between processes finds its
//! shadow tables again. That is sound because every guest page table a
//! shadow entry was made from is write-protected: a guest write to one
//! drops the other roots made from it, and the current root is dropped at
//! the next CR3 write (until then its stale entries are what a TLB may
//! hold). All roots go on a paging-mode change. The shadow tables are
//! bounded per vCPU ([`SHADOW_PAGES_MAX`] across its roots): the least
//! recently used roots go first, and a root that fills it alone is rebuilt.

use super::guest::GuestMemory;
use super::pages::TablePages;
use super::shadow::{self, Fault, Format, GuestCrs, OutOfMemory, Refused, Tracker};
use crate::exit::env::ShadowPaging;
use crate::emulate::walk::{Access, PagingState};
use crate::hw::svm::efer;
use kernel::prelude::*;
use kernel::rbtree::RBTree;

/// The shadow MMU's memory budget per VM, in pages (64 MiB): shadow tables
/// and the bookkeeping of what they were made from, charged to the memory
/// cgroup of the VMM that created the VM (Documentation/security.rst). A
/// documented limit of the ABI, so it is defined in the uapi header.
pub(crate) const SHADOW_BUDGET_PER_VM: usize = crate::uapi::PACIFICA_SHADOW_BUDGET_PAGES as usize;
/// Most pages one vCPU's shadow MMU may hold (8 MiB): the VM's budget
/// shared by the most vCPUs a VM can have.
pub(crate) const SHADOW_PAGES_MAX: usize = SHADOW_BUDGET_PER_VM / crate::uapi::PACIFICA_MAX_VCPUS as usize;
/// Guest address spaces whose shadow tables a vCPU keeps.
pub(crate) const MAX_ROOTS: usize = 16;
/// Most guest pages one root may track as protected or writable.
const TRACKED_MAX: usize = 8192;
/// Tracked guest pages per page of the budget: a red-black tree node is
/// well under 64 bytes.
const TRACKED_PER_PAGE: usize = 64;

use crate::hw::cr::cr0::{RESET as CR0_RESET, CD as CR0_CD, ET as CR0_ET, NW as CR0_NW, PE as CR0_PE, PG as CR0_PG, WP as CR0_WP};
use crate::hw::cr::cr4::{PAE as CR4_PAE, PGE as CR4_PGE, PSE as CR4_PSE};

/// Changing these changes how linear addresses translate.
const CR0_PAGING_BITS: u64 = CR0_PG | CR0_PE | CR0_WP;
const CR4_PAGING_BITS: u64 = CR4_PSE | CR4_PAE | CR4_PGE;

/// A set of guest page numbers.
struct GfnSet {
    tree: RBTree<u64, ()>,
    len: usize,
}

impl GfnSet {
    fn new() -> Self {
        GfnSet { tree: RBTree::new(), len: 0 }
    }

    fn contains(&self, gfn: u64) -> bool {
        self.tree.get(&gfn).is_some()
    }

    fn insert(&mut self, gfn: u64) -> bool {
        if self.contains(gfn) {
            return true;
        }
        if self.len >= TRACKED_MAX || self.tree.try_create_and_insert(gfn, (), GFP_KERNEL_ACCOUNT).is_err() {
            return false;
        }
        self.len += 1;
        true
    }
}

/// Guest page numbers mapped writable, each with the linear address of
/// its writable shadow entry, or [`MANY`] when there is more than one.
struct WritableMap {
    tree: RBTree<u64, u64>,
    len: usize,
}

/// A page mapped writable at several linear addresses.
const MANY: u64 = u64::MAX;

impl WritableMap {
    fn new() -> Self {
        WritableMap { tree: RBTree::new(), len: 0 }
    }

    fn contains(&self, gfn: u64) -> bool {
        self.tree.get(&gfn).is_some()
    }

    fn insert(&mut self, gfn: u64, la: u64) -> bool {
        if let Some(v) = self.tree.get_mut(&gfn) {
            if *v != la {
                *v = MANY;
            }
            return true;
        }
        if self.len >= TRACKED_MAX || self.tree.try_create_and_insert(gfn, la, GFP_KERNEL_ACCOUNT).is_err() {
            return false;
        }
        self.len += 1;
        true
    }

    fn take(&mut self, gfn: u64) -> Option<u64> {
        let v = self.tree.remove(&gfn);
        if v.is_some() {
            self.len -= 1;
        }
        v
    }
}

/// The shadow tables of one guest address space.
struct Root {
    /// The guest CR3 they translate.
    cr3: u64,
    tables: TablePages,
    pa: u64,
    /// Guest page tables these tables were made from.
    protected: GfnSet,
    /// Guest pages these tables map writable, and where.
    writable: WritableMap,
    /// The guest wrote one of its page tables while this root was current:
    /// drop it at the next CR3 write.
    stale: bool,
    /// Page tables this (stale) root may map writable.
    exempt: GfnSet,
    /// When it was last current, for eviction.
    used: u64,
    /// The largest guest page an entry was made from: what INVLPG must drop
    /// around its address.
    largest_page: u64,
}

impl Root {
    fn new(cr3: u64, format: Format) -> Result<Self> {
        let (tables, pa) = TablePages::new(format == Format::Pae3, SHADOW_PAGES_MAX)?;
        Ok(Root {
            cr3,
            tables,
            pa,
            protected: GfnSet::new(),
            writable: WritableMap::new(),
            stale: false,
            exempt: GfnSet::new(),
            used: 0,
            largest_page: 4096,
        })
    }
}

impl Root {
    /// Pages of the budget the root uses: its tables and its bookkeeping.
    fn cost(&self) -> usize {
        let tracked = self.protected.len + self.writable.len + self.exempt.len;
        self.tables.len() + tracked.div_ceil(TRACKED_PER_PAGE)
    }
}

/// The root slots, always [`MAX_ROOTS`] long. On the heap: an array of
/// roots is too large for the kernel stack.
type Roots = KVec<Option<Root>>;

/// The [`Tracker`] view of all roots, with `cur` the current one.
struct Track<'a> {
    roots: &'a mut Roots,
    cur: usize,
}

impl Tracker for Track<'_> {
    fn writable(&self, gfn: u64) -> bool {
        self.roots.iter().flatten().any(|r| r.writable.contains(gfn))
    }

    fn protected(&self, gfn: u64) -> bool {
        self.roots.iter().flatten().any(|r| r.protected.contains(gfn))
    }

    fn exempt(&self, gfn: u64) -> bool {
        self.roots[self.cur].as_ref().is_some_and(|r| r.exempt.contains(gfn))
    }

    fn protect(&mut self, gfn: u64) -> bool {
        self.roots[self.cur].as_mut().is_some_and(|r| r.protected.insert(gfn))
    }

    fn add_writable(&mut self, gfn: u64, la: u64) -> bool {
        self.roots[self.cur].as_mut().is_some_and(|r| r.writable.insert(gfn, la))
    }
}

/// The shadow MMU of one vCPU.
///
/// # Invariants
///
/// `roots[cur]` is always a root, the one the VMCB's CR3 must point at,
/// and every root has the format of the guest's mode.
pub(crate) struct ShadowMmu {
    pub(crate) crs: GuestCrs,
    roots: Roots,
    cur: usize,
    format: Format,
    clock: u64,
    /// Entries of the current root were made read-only: the vCPU's TLB
    /// must be flushed before the guest runs again.
    flush_needed: bool,
    /// The page [`Self::guard_tss`] keeps read-only.
    tss_guard: Option<u64>,
}

impl ShadowMmu {
    /// A shadow MMU for a guest at reset (real mode, paging off).
    pub(crate) fn new() -> Result<Self> {
        let crs = GuestCrs { cr0: CR0_RESET, ..Default::default() };
        let mut roots = KVec::with_capacity(MAX_ROOTS, GFP_KERNEL_ACCOUNT)?;
        for _ in 0..MAX_ROOTS {
            roots.push(None, GFP_KERNEL_ACCOUNT)?;
        }
        // INVARIANT: `roots[0]` is a root, in the format of a reset guest.
        roots[0] = Some(Root::new(0, Format::Pae3)?);
        Ok(ShadowMmu { crs, roots, cur: 0, format: Format::Pae3, clock: 0, flush_needed: false, tss_guard: None })
    }

    /// The guest's paging state, for walking its tables.
    pub(crate) fn paging_state(&self) -> PagingState {
        let c = &self.crs;
        let maxphyaddr = crate::global::get().cpus.info.maxphyaddr;
        PagingState { cr0: c.cr0, cr3: c.cr3, cr4: c.cr4, efer: c.efer, maxphyaddr }
    }

    /// Drops every root and starts one empty root for the guest's current
    /// CR3, in the format its mode needs. The caller must pass the new root
    /// to the VMCB and flush the vCPU's TLB.
    pub(crate) fn reset(&mut self) -> Result {
        let format = Format::for_guest(&self.paging_state());
        let root = Root::new(self.crs.cr3, format)?;
        for slot in self.roots.iter_mut() {
            *slot = None;
        }
        // INVARIANT: the only root is current and in the guest's format.
        self.roots[0] = Some(root);
        self.cur = 0;
        self.format = format;
        Ok(())
    }

    /// The guest wrote CR3: switch to the shadow tables of the new address
    /// space, reusing cached ones. The caller must pass the new root to the
    /// VMCB and flush the vCPU's TLB.
    fn switch_root(&mut self) -> Result {
        let cr3 = self.crs.cr3;
        self.clock += 1;
        let found = self.roots.iter().position(|r| r.as_ref().is_some_and(|r| r.cr3 == cr3 && !r.stale));
        let slot = match found {
            Some(i) => i,
            None => {
                // A free slot, else the least recently used root.
                let slot = self.roots.iter().position(Option::is_none).unwrap_or_else(|| {
                    (0..MAX_ROOTS).min_by_key(|&i| self.roots[i].as_ref().map_or(0, |r| r.used)).unwrap_or(0)
                });
                let root = Root::new(cr3, self.format)?;
                self.roots[slot] = Some(root);
                slot
            }
        };
        if self.roots[self.cur].as_ref().is_some_and(|r| r.stale) && slot != self.cur {
            self.roots[self.cur] = None;
        }
        // INVARIANT: `slot` holds a root in the guest's format.
        self.cur = slot;
        if let Some(r) = self.roots[slot].as_mut() {
            r.used = self.clock;
        }
        Ok(())
    }

    fn current(&mut self) -> Option<&mut Root> {
        self.roots[self.cur].as_mut()
    }

    /// The hardware CR0: the guest's, always paging and write-protecting.
    pub(crate) fn hw_cr0(&self) -> u64 {
        self.crs.cr0 | CR0_PG | CR0_WP
    }

    /// The hardware CR3: the current shadow root.
    pub(crate) fn hw_cr3(&self) -> u64 {
        self.roots[self.cur].as_ref().map_or(0, |r| r.pa)
    }

    /// The hardware CR4: the guest's, with PAE (the shadow formats need it)
    /// and without PGE (shadow entries are never global).
    pub(crate) fn hw_cr4(&self) -> u64 {
        (self.crs.cr4 | CR4_PAE) & !CR4_PGE
    }

    /// The hardware EFER: long mode exactly when the guest is in it (the
    /// hardware always pages), NX always available, SVME for VMRUN.
    pub(crate) fn hw_efer(&self) -> u64 {
        let lm = if self.crs.efer & efer::LMA != 0 { efer::LME | efer::LMA } else { 0 };
        (self.crs.efer & !(efer::LME | efer::LMA)) | lm | efer::NXE | efer::SVME
    }

    /// Resolves a hardware page fault at `la`; see [`shadow::fault`]. Keeps
    /// the roots consistent with the guest's writes to its page tables,
    /// rebuilding when the tables are full. The current root may change,
    /// which the caller must pass on to the VMCB (with a TLB flush).
    pub(crate) fn fault(&mut self, mem: &GuestMemory, la: u64, access: Access) -> Fault {
        let st = self.paging_state();
        self.keep_within_budget();
        // Each round resolves one obstacle: up to four page tables to
        // protect, a page-table write, a rebuild.
        for _ in 0..8 {
            let cur = self.cur;
            let format = self.format;
            let Some(root) = self.roots[cur].as_mut() else { return Fault::NoMemory };
            let pa = root.pa;
            // The tables are taken out while the tracker borrows every root.
            let mut tables = core::mem::replace(&mut root.tables, TablePages::empty());
            let mut track = Track { roots: &mut self.roots, cur };
            let guard = self.tss_guard;
            let f = shadow::fault(&mut tables, pa, format, mem, &st, la, access, |gpa| mem.hpa(gpa), &mut track, guard);
            let Some(root) = self.roots[cur].as_mut() else { return Fault::NoMemory };
            root.tables = tables;
            match f {
                Fault::Mapped { guest_page } => {
                    root.largest_page = root.largest_page.max(guest_page);
                    return f;
                }
                Fault::PageTableWrite(gfn) => {
                    // Roots made from this page table would go stale: drop
                    // the others now; the current one, if it was made from
                    // it too, at the next CR3 write.
                    for (i, slot) in self.roots.iter_mut().enumerate() {
                        if i != cur && slot.as_ref().is_some_and(|r| r.protected.contains(gfn)) {
                            *slot = None;
                        }
                    }
                    let Some(root) = self.roots[cur].as_mut() else { return Fault::NoMemory };
                    if root.protected.contains(gfn) {
                        root.stale = true;
                        if !root.exempt.insert(gfn) && self.reset().is_err() {
                            return Fault::NoMemory;
                        }
                    }
                }
                Fault::MustProtect(gfn) => {
                    if !self.write_protect_everywhere(gfn, mem) && self.reset().is_err() {
                        return Fault::NoMemory;
                    }
                }
                Fault::NoMemory => {
                    if self.reset().is_err() {
                        return Fault::NoMemory;
                    }
                }
                other => return other,
            }
        }
        Fault::NoMemory
    }

    /// Makes every writable shadow entry of guest page `gfn` read-only, so
    /// that the page can serve as a page table; a root that maps it at
    /// more places than it remembers is dropped instead. Sets
    /// `flush_needed` when the current root changed (its TLB entries must
    /// go). Returns false if the current root had to go, which the caller
    /// turns into a reset.
    fn write_protect_everywhere(&mut self, gfn: u64, mem: &GuestMemory) -> bool {
        let hpa = mem.hpa(gfn << 12).unwrap_or(0);
        let (cur, format) = (self.cur, self.format);
        for (i, slot) in self.roots.iter_mut().enumerate() {
            let Some(root) = slot.as_mut() else { continue };
            let Some(la) = root.writable.take(gfn) else { continue };
            let done = la != MANY && shadow::write_protect(&mut root.tables, root.pa, format, la, hpa);
            if !done {
                if i == cur {
                    return false;
                }
                *slot = None;
            } else if i == cur {
                self.flush_needed = true;
            }
        }
        true
    }

    /// Keeps the cost of all roots (their tables and bookkeeping) below
    /// [`SHADOW_PAGES_MAX`] (less one fault's worth of tables): the least
    /// recently used other roots go first; the current root alone over
    /// budget is rebuilt by `fault` (its tables are capped, its
    /// bookkeeping by `TRACKED_MAX`).
    fn keep_within_budget(&mut self) {
        const SLACK: usize = 4;
        loop {
            let total: usize = self.roots.iter().flatten().map(Root::cost).sum();
            if total + SLACK <= SHADOW_PAGES_MAX {
                return;
            }
            let cur = self.cur;
            let victim = (0..MAX_ROOTS)
                .filter(|&i| i != cur && self.roots[i].is_some())
                .min_by_key(|&i| self.roots[i].as_ref().map_or(0, |r| r.used));
            match victim {
                Some(i) => self.roots[i] = None,
                None => return,
            }
        }
    }

    /// Whether roots may be cached across CR3 writes in a VM of `vcpus`
    /// vCPUs. The write protection is tracked per vCPU, so another vCPU's
    /// write to a page table would not be seen by this one's cached roots:
    /// with more than one vCPU, every CR3 write starts afresh.
    pub(crate) fn caching_allowed(vcpus: u32) -> bool {
        vcpus <= 1
    }

}

/// The exit handlers' view (`exit/env.rs`). Allocation failures become
/// [`OutOfMemory`]: the handler refuses the guest's operation or reports
/// it, and the host stays intact.
impl ShadowPaging for ShadowMmu {
    fn crs(&self) -> GuestCrs {
        self.crs
    }

    fn restore_crs(&mut self, crs: GuestCrs) {
        self.crs = crs;
    }

    fn paging_state(&self) -> PagingState {
        ShadowMmu::paging_state(self)
    }

    fn hw_regs(&self) -> [u64; 4] {
        [self.hw_cr0(), self.hw_cr3(), self.hw_cr4(), self.hw_efer()]
    }

    fn rebuild(&mut self) -> core::result::Result<(), OutOfMemory> {
        self.reset().map_err(|_| OutOfMemory)
    }

    /// Keeps the page of linear address `tss` (TR's base), or none, mapped
    /// read-only in legacy protected mode. A CPU that ignores the TASK_SWITCH
    /// intercept (QEMU's TCG) would let a task switch load CR3 from the new
    /// TSS into the hardware, past the shadow MMU; its first memory write
    /// is a store to the current TSS, at TR's base, so with that page
    /// read-only every task switch faults before it changes anything
    /// (Documentation/security.rst, "Testbed workarounds"). Returns whether
    /// the guard moved: then the tables were rebuilt without writable
    /// entries for it, and the caller must pass the new root on.
    fn guard_tss(&mut self, tss: Option<u64>) -> Result<bool, OutOfMemory> {
        let page = tss.map(|la| la & 0xffff_f000);
        if page == self.tss_guard {
            return Ok(false);
        }
        // The guard counts only once no entry made without it is left.
        self.rebuild()?;
        self.tss_guard = page;
        Ok(true)
    }

    /// Whether a TLB flush is owed since the last call: entries of the
    /// current root were made read-only.
    fn take_flush(&mut self) -> bool {
        core::mem::replace(&mut self.flush_needed, false)
    }

    /// Drops the shadow entries INVLPG of `la` must drop. Returns whether
    /// everything had to go (a 1 GiB guest page may be involved): then the
    /// caller must pass the new root on and flush the whole TLB; otherwise
    /// it flushes the TLB entries of the page.
    fn invalidate(&mut self, la: u64) -> Result<bool, OutOfMemory> {
        let format = self.format;
        match self.current() {
            Some(root) if root.largest_page <= 4 << 20 => {
                shadow::invalidate(&mut root.tables, root.pa, format, la, root.largest_page);
                Ok(false)
            }
            _ => {
                self.rebuild()?;
                Ok(true)
            }
        }
    }

    /// The span INVLPG drops around its address (see [`Self::invalidate`]).
    fn largest_page(&self) -> u64 {
        self.roots[self.cur].as_ref().map_or(4096, |r| r.largest_page)
    }

    /// MOV to CR0 (also CLTS and LMSW). Returns whether the shadow tables
    /// must be rebuilt.
    fn set_cr0(&mut self, v: u64) -> Result<bool, Refused> {
        let old = self.crs.cr0;
        if v >> 32 != 0 || (v & CR0_NW != 0 && v & CR0_CD == 0) || (v & CR0_PG != 0 && v & CR0_PE == 0) {
            return Err(Refused);
        }
        let mut e = self.crs.efer;
        if v & CR0_PG != 0 && old & CR0_PG == 0 && e & efer::LME != 0 {
            // Activating long mode needs PAE (APM 14.6.1).
            if self.crs.cr4 & CR4_PAE == 0 {
                return Err(Refused);
            }
            e |= efer::LMA;
        }
        if v & CR0_PG == 0 {
            e &= !efer::LMA;
        }
        self.crs.efer = e;
        self.crs.cr0 = v | CR0_ET;
        Ok((old ^ v) & CR0_PAGING_BITS != 0)
    }

    /// MOV to CR3: a new address space, whose shadow tables are cached if
    /// `cache` (see [`Self::caching_allowed`]), else built afresh. The
    /// caller must pass the root on and flush the TLB.
    fn set_cr3(&mut self, v: u64, cache: bool) -> Result<(), Refused> {
        let maxphyaddr = crate::global::get().cpus.info.maxphyaddr.min(52);
        if self.crs.efer & efer::LMA != 0 && v >> maxphyaddr != 0 {
            return Err(Refused);
        }
        self.crs.cr3 = if self.crs.efer & efer::LMA != 0 { v } else { v & 0xffff_ffff };
        // Out of memory for a new root: start over from one empty root.
        if !cache || self.switch_root().is_err() {
            self.reset().map_err(|_| Refused)?;
        }
        Ok(())
    }

    /// The module itself wrote guest page `gfn` (the memory side of INS):
    /// if it is one of the guest's page tables, roots made from it are
    /// treated as after a guest write to it.
    fn module_wrote(&mut self, gfn: u64) {
        let cur = self.cur;
        let protected = self.roots.iter().flatten().any(|r| r.protected.contains(gfn));
        if !protected {
            return;
        }
        for (i, slot) in self.roots.iter_mut().enumerate() {
            if i != cur && slot.as_ref().is_some_and(|r| r.protected.contains(gfn)) {
                *slot = None;
            }
        }
        if let Some(r) = self.roots[cur].as_mut() {
            r.stale = true;
        }
    }

    /// MOV to CR4. Returns whether the shadow tables must be rebuilt.
    fn set_cr4(&mut self, v: u64, allowed: u64) -> Result<bool, Refused> {
        if v & !allowed != 0 || (self.crs.efer & efer::LMA != 0 && v & CR4_PAE == 0) {
            return Err(Refused);
        }
        let old = self.crs.cr4;
        self.crs.cr4 = v;
        Ok((old ^ v) & CR4_PAGING_BITS != 0)
    }

    /// WRMSR EFER, already validated. Returns whether the shadow tables must
    /// be rebuilt.
    fn set_efer(&mut self, v: u64) -> bool {
        let old = self.crs.efer;
        self.crs.efer = v & !efer::SVME;
        (old ^ self.crs.efer) & (efer::NXE | efer::LMA) != 0
    }
}

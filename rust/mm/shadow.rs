// SPDX-License-Identifier: GPL-2.0

//! Shadow page tables: what the hardware walks when a VM runs without
//! nested paging. They map the guest's linear addresses straight to host
//! physical addresses, and are built lazily from the guest's own tables,
//! one 4 KiB page per hardware page fault.
//!
//! The invariant: a shadow entry never allows more than the guest's tables
//! allowed when it was made. Stale entries are what a real TLB could hold
//! too; in the current address space they go when the guest invalidates
//! (INVLPG, a CR3 write, a paging-mode change). Shadow tables of other
//! address spaces are kept for when the guest switches back, which is sound
//! because the guest's page tables are write-protected: a write to one
//! drops every shadow table that may have been made from it.
//! Accessed and dirty bits: the guest walk sets A on every entry it uses and
//! D on a write; a page whose guest entry is not yet dirty is mapped
//! read-only, so the first write faults and sets D.
//!
//! The hardware runs in long mode with four-level shadow tables when the
//! guest is in long mode, and in legacy PAE mode with three-level shadow
//! tables otherwise: for a 32-bit guest with or without PAE, for protected
//! mode without paging (an identity map of the guest-physical space) and
//! for real mode (paged real mode, APM 15.19). Depends on `core` only.

use crate::mm::npt::Tables;
use crate::emulate::walk::{self, Access, GuestPhys, PagingState, WalkError};
use crate::hw::paging::{PTE_A, PTE_ADDR_MASK, PTE_D, PTE_NX, PTE_P, PTE_RW, PTE_US};

/// Why a guest write to a paging register is refused: the guest gets #GP.
#[derive(Debug)]
pub struct Refused;

/// The guest's paging registers, as the guest sees them.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestCrs {
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    /// Without SVME.
    pub efer: u64,
}

/// The shadow MMU ran out of memory for its tables (the caller keeps the
/// host intact and refuses or reports the guest's operation).
#[derive(Debug)]
pub struct OutOfMemory;

/// The shape of the shadow tables (and of the hardware's paging mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Four levels, 48-bit linear addresses: a guest in long mode.
    Long4,
    /// PAE: four PDPTEs, then two levels of 512 entries; 32-bit linear
    /// addresses. The root must lie below 4 GiB.
    Pae3,
}

const EFER_LMA: u64 = crate::hw::svm::efer::LMA;
const CR0_WP: u64 = crate::hw::cr::cr0::WP;
const CR0_PE: u64 = crate::hw::cr::cr0::PE;

impl Format {
    /// The format a guest in paging state `st` needs.
    pub fn for_guest(st: &PagingState) -> Self {
        if st.efer & EFER_LMA != 0 {
            Format::Long4
        } else {
            Format::Pae3
        }
    }

    fn levels(self) -> u32 {
        match self {
            Format::Long4 => 4,
            Format::Pae3 => 3,
        }
    }

    fn index(self, la: u64, level: u32) -> usize {
        if self == Format::Pae3 && level == 3 {
            return ((la >> 30) & 3) as usize;
        }
        ((la >> (12 + 9 * (level - 1))) & 511) as usize
    }

    /// A non-leaf entry. PAE's PDPTEs take only P (their R/W and U/S bits
    /// are reserved); elsewhere the leaf alone restricts access.
    fn table_entry(self, level: u32, pa: u64) -> u64 {
        if self == Format::Pae3 && level == 3 {
            pa | PTE_P
        } else {
            pa | PTE_P | PTE_RW | PTE_US | PTE_A
        }
    }
}

/// What the shadow MMU knows about guest pages across all its shadow
/// tables (every cached root), for keeping the guest's page tables
/// write-protected. Page numbers are guest-physical addresses >> 12.
///
/// The invariant: a page some root's entries were made from (a
/// *protected* page) is never mapped writable by any root, except by a
/// current root that is marked stale, which is dropped at the next CR3
/// write and whose exempted pages [`Tracker::exempt`] names.
pub trait Tracker {
    /// Whether some root maps `gfn` writable.
    fn writable(&self, gfn: u64) -> bool;
    /// Whether some root's entries were made from page table `gfn`.
    fn protected(&self, gfn: u64) -> bool;
    /// Whether the current (stale) root may map `gfn` writable although it
    /// is one of the guest's page tables.
    fn exempt(&self, gfn: u64) -> bool;
    /// Records that the current root's entries come from page table `gfn`;
    /// false when out of memory.
    fn protect(&mut self, gfn: u64) -> bool;
    /// Records that the current root maps `gfn` writable at linear address
    /// `la`; false when out of memory.
    fn add_writable(&mut self, gfn: u64, la: u64) -> bool;
}

/// What a hardware page fault under shadow paging turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The shadow tables now allow the access: run the guest again. The
    /// guest mapped the address with a page of `guest_page` bytes.
    Mapped { guest_page: u64 },
    /// The guest's own tables refuse it: the guest gets #PF with this error
    /// code and CR2 = the address.
    Guest(u32),
    /// The translation leads to guest-physical `gpa`, outside RAM: MMIO.
    Mmio(u64),
    /// A guest page-table entry lies outside RAM, at this guest-physical
    /// address.
    TableNotInRam(u64),
    /// No memory for another shadow table: free the shadow tables and retry.
    NoMemory,
    /// The walk went through guest page `gfn`, which some root maps
    /// writable: those entries must become read-only (see
    /// [`write_protect`]) before it can be protected. Retry afterwards.
    MustProtect(u64),
    /// The guest writes to page `gfn`, one of its page tables: shadow
    /// tables made from it may go stale. The caller stops protecting it,
    /// drops every cached root but the current one, marks the current one
    /// to be dropped at the next CR3 write, and retries.
    PageTableWrite(u64),
    /// The guest writes to the guarded page (see [`fault`]'s `guard`),
    /// which its own tables let it write: the caller emulates the write,
    /// or stops a task switch.
    Guarded,
}

/// The leaf for a guest translation `t` reached by `access`; read-only if
/// the page is one of the guest's page tables (`protected`).
fn leaf(t: &walk::Translation, hpa: u64, access: Access, st: &PagingState, protected: bool) -> u64 {
    let mut e = hpa | PTE_P | PTE_A;
    if t.user {
        e |= PTE_US;
    }
    // Writable only once the guest entry is dirty, so that the write that
    // dirties it is seen.
    if t.writable && t.dirty {
        e |= PTE_RW | PTE_D;
    } else if access.write && !access.user && st.cr0 & CR0_WP == 0 {
        // CR0.WP = 0 lets the supervisor write read-only pages; the hardware
        // runs with WP = 1, so give the supervisor a writable mapping the
        // user cannot use. A user access later faults and gets its own.
        e = (e | PTE_RW | PTE_D) & !PTE_US;
    }
    if protected {
        e &= !PTE_RW;
    }
    if t.nx {
        e |= PTE_NX;
    }
    e
}

/// Resolves a hardware page fault at linear address `la` caused by
/// `access`, given the guest's paging state `st` and memory `mem`, with
/// `hpa_of` giving the host-physical address of a guest-physical page in
/// RAM. Makes the 4 KiB shadow entry the guest's tables allow, keeping the
/// guest's page tables write-protected (see [`Tracker`]).
///
/// `guard`, a page-aligned linear address, is mapped read-only whatever
/// the guest's tables say while the guest is in legacy protected mode, the
/// one mode with task switches: there a write to it is the first thing a
/// task switch does (see `ShadowMmu::guard_tss`). A change of CR0.PE or
/// EFER.LMA rebuilds the tables, so no entry outlives the mode it was
/// made for.
#[allow(clippy::too_many_arguments)]
pub fn fault(
    t: &mut impl Tables,
    root: u64,
    format: Format,
    mem: &impl GuestPhys,
    st: &PagingState,
    la: u64,
    access: Access,
    hpa_of: impl Fn(u64) -> Option<u64>,
    track: &mut impl Tracker,
    guard: Option<u64>,
) -> Fault {
    let tr = match walk::walk(mem, st, la, access) {
        Ok(tr) => tr,
        Err(WalkError::PageFault(code)) => return Fault::Guest(code),
        Err(WalkError::TableNotInRam(gpa)) => return Fault::TableNotInRam(gpa),
    };
    for &entry in &tr.tables[..tr.tables_used] {
        let gfn = entry >> 12;
        if track.exempt(gfn) {
            continue;
        }
        if !track.protected(gfn) && track.writable(gfn) {
            return Fault::MustProtect(gfn);
        }
        if !track.protect(gfn) {
            return Fault::NoMemory;
        }
    }
    let gfn = tr.gpa >> 12;
    let Some(hpa) = hpa_of(gfn << 12) else {
        return Fault::Mmio(tr.gpa);
    };
    let protected = track.protected(gfn) && !track.exempt(gfn);
    let mut e = leaf(&tr, hpa, access, st, protected);
    if st.cr0 & CR0_PE != 0 && st.efer & EFER_LMA == 0 && guard == Some(la & 0xffff_f000) {
        if access.write {
            return Fault::Guarded;
        }
        e &= !PTE_RW;
    }
    if protected && access.write {
        // The guest may write this page (its walk allowed it): it is
        // changing one of its own page tables.
        return Fault::PageTableWrite(gfn);
    }
    if e & PTE_RW != 0 && !track.add_writable(gfn, la & !0xfff) {
        return Fault::NoMemory;
    }
    let mut table = root;
    for level in (2..=format.levels()).rev() {
        let i = format.index(la, level);
        let ent = t.read(table, i);
        table = if ent & PTE_P == 0 {
            let Some(next) = t.alloc() else { return Fault::NoMemory };
            t.write(table, i, format.table_entry(level, next));
            next
        } else {
            ent & PTE_ADDR_MASK
        };
    }
    t.write(table, format.index(la, 1), e);
    Fault::Mapped { guest_page: tr.page_size }
}

/// Removes the shadow entries that translate `la` through a guest page of
/// `span` bytes (4 KiB, 2 MiB or 4 MiB; INVLPG of any address in a large
/// page drops the whole page). A span beyond 4 KiB unlinks whole shadow
/// page tables, which stay allocated until the next reset.
pub fn invalidate(t: &mut impl Tables, root: u64, format: Format, la: u64, span: u64) {
    let size = span.max(4096);
    let (leaf_level, step) = if size > 4096 { (2, 2u64 << 20) } else { (1, 4096) };
    let start = la & !(size - 1);
    // Counted, not compared with an end address: the range may end at 2^64.
    for k in 0..size / step {
        let chunk = start.wrapping_add(k * step);
        let mut table = root;
        let mut present = true;
        for level in (leaf_level + 1..=format.levels()).rev() {
            let e = t.read(table, format.index(chunk, level));
            if e & PTE_P == 0 {
                present = false;
                break;
            }
            table = e & PTE_ADDR_MASK;
        }
        if present {
            t.write(table, format.index(chunk, leaf_level), 0);
        }
    }
}

/// Makes the shadow entry at `la` read-only if it maps host-physical page
/// `hpa`. Returns whether there was such an entry.
pub fn write_protect(t: &mut impl Tables, root: u64, format: Format, la: u64, hpa: u64) -> bool {
    let mut table = root;
    for level in (2..=format.levels()).rev() {
        let e = t.read(table, format.index(la, level));
        if e & PTE_P == 0 {
            return false;
        }
        table = e & PTE_ADDR_MASK;
    }
    let i = format.index(la, 1);
    let e = t.read(table, i);
    if e & PTE_P == 0 || e & PTE_ADDR_MASK != hpa & PTE_ADDR_MASK {
        return false;
    }
    t.write(table, i, e & !PTE_RW);
    true
}

/// What the hardware would do with `access` at `la` through the shadow
/// tables (CR0.WP = 1, EFER.NXE = 1): the host-physical address, or `None`
/// for a page fault. For tests and assertions.
pub fn translate(t: &impl Tables, root: u64, format: Format, la: u64, access: Access) -> Option<u64> {
    let mut table = root;
    for level in (1..=format.levels()).rev() {
        let e = t.read(table, format.index(la, level));
        if e & PTE_P == 0 {
            return None;
        }
        if level == 1 {
            let denied = (access.write && e & PTE_RW == 0)
                || (access.user && e & PTE_US == 0)
                || (access.fetch && e & PTE_NX != 0);
            return (!denied).then_some((e & PTE_ADDR_MASK) | (la & 0xfff));
        }
        table = e & PTE_ADDR_MASK;
    }
    None
}

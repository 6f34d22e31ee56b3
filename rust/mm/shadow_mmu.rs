// SPDX-License-Identifier: GPL-2.0

//! A vCPU's shadow MMU: the guest's view of its paging registers, the
//! shadow tables built from the guest's own (`mm/shadow.rs`), and the
//! hardware registers the VMCB gets instead of the guest's.
//!
//! Under shadow paging the hardware always pages (CR0.PG = 1) with CR0.WP = 1
//! and EFER.NXE = 1, in long mode exactly when the guest is, and in PAE mode
//! otherwise; the guest's CR0, CR3, CR4 and EFER live here and every access
//! to them is intercepted. The shadow tables are bounded per vCPU
//! ([`SHADOW_PAGES_MAX`]); when they are full they are dropped and rebuilt,
//! as they are when the guest switches address spaces or paging modes.

use super::guest::GuestMemory;
use super::pages::TablePages;
use super::shadow::{self, Fault, Format};
use crate::emulate::walk::{Access, PagingState};
use crate::hw::svm::efer;
use kernel::prelude::*;

/// Most pages of shadow tables one vCPU may hold (8 MiB).
pub(crate) const SHADOW_PAGES_MAX: usize = 2048;

const CR0_PE: u64 = 1 << 0;
const CR0_ET: u64 = 1 << 4;
const CR0_NW: u64 = 1 << 29;
const CR0_CD: u64 = 1 << 30;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PSE: u64 = 1 << 4;
const CR4_PAE: u64 = 1 << 5;
const CR4_PGE: u64 = 1 << 7;
/// CR4 bits a guest may set under shadow paging: VME PVI TSD DE PSE PAE MCE
/// PGE PCE OSFXSR OSXMMEXCPT FSGSBASE.
const CR4_ALLOWED: u64 = 0x7ff | (1 << 16);
/// Changing these changes how linear addresses translate.
const CR0_PAGING_BITS: u64 = CR0_PG | CR0_PE | CR0_WP;
const CR4_PAGING_BITS: u64 = CR4_PSE | CR4_PAE | CR4_PGE;

/// Why a guest write to a paging register is refused: the guest gets #GP.
#[derive(Debug)]
pub(crate) struct Refused;

/// The guest's paging registers, as the guest sees them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GuestCrs {
    pub(crate) cr0: u64,
    pub(crate) cr3: u64,
    pub(crate) cr4: u64,
    /// Without SVME.
    pub(crate) efer: u64,
}

/// The shadow MMU of one vCPU.
pub(crate) struct ShadowMmu {
    pub(crate) crs: GuestCrs,
    tables: TablePages,
    root: u64,
    format: Format,
    /// The largest guest page a shadow entry was made from since the last
    /// reset: what INVLPG must drop around its address.
    largest_page: u64,
}

impl ShadowMmu {
    /// A shadow MMU for a guest at reset (real mode, paging off).
    pub(crate) fn new() -> Result<Self> {
        let crs = GuestCrs { cr0: 0x6000_0010, ..Default::default() };
        let (tables, root) = TablePages::new(true, SHADOW_PAGES_MAX)?;
        Ok(ShadowMmu { crs, tables, root, format: Format::Pae3, largest_page: 4096 })
    }

    /// The guest's paging state, for walking its tables.
    pub(crate) fn paging_state(&self) -> PagingState {
        let c = &self.crs;
        PagingState { cr0: c.cr0, cr3: c.cr3, cr4: c.cr4, efer: c.efer }
    }

    /// Drops every shadow table and starts an empty root in the format the
    /// guest's mode needs. The caller must flush the vCPU's TLB.
    pub(crate) fn reset(&mut self) -> Result {
        let format = Format::for_guest(&self.paging_state());
        let (tables, root) = TablePages::new(format == Format::Pae3, SHADOW_PAGES_MAX)?;
        self.tables = tables;
        self.root = root;
        self.format = format;
        self.largest_page = 4096;
        Ok(())
    }

    /// The hardware CR0: the guest's, always paging and write-protecting.
    pub(crate) fn hw_cr0(&self) -> u64 {
        self.crs.cr0 | CR0_PG | CR0_WP
    }

    /// The hardware CR3: the shadow root.
    pub(crate) fn hw_cr3(&self) -> u64 {
        self.root
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

    /// Resolves a hardware page fault at `la`; see [`shadow::fault`]. When
    /// the tables are full they are dropped and the fault retried once; the
    /// root then changes, which the caller must pass on to the VMCB.
    pub(crate) fn fault(&mut self, mem: &GuestMemory, la: u64, access: Access) -> Fault {
        let st = self.paging_state();
        for _ in 0..2 {
            let f = shadow::fault(&mut self.tables, self.root, self.format, mem, &st, la, access, |gpa| {
                mem.hpa(gpa)
            });
            if let Fault::Mapped { guest_page } = f {
                self.largest_page = self.largest_page.max(guest_page);
            }
            if f != Fault::NoMemory || self.reset().is_err() {
                return f;
            }
        }
        Fault::NoMemory
    }

    /// Drops the shadow entries INVLPG of `la` must drop. Returns whether
    /// everything had to go (a 1 GiB guest page may be involved): then the
    /// caller must pass the new root on and flush the whole TLB; otherwise
    /// it flushes the TLB entries of the page.
    pub(crate) fn invalidate(&mut self, la: u64) -> Result<bool> {
        if self.largest_page > 4 << 20 {
            self.reset()?;
            return Ok(true);
        }
        shadow::invalidate(&mut self.tables, self.root, self.format, la, self.largest_page);
        Ok(false)
    }

    /// The span INVLPG drops around its address (see [`Self::invalidate`]).
    pub(crate) fn largest_page(&self) -> u64 {
        self.largest_page
    }

    /// MOV to CR0 (also CLTS and LMSW). Returns whether the shadow tables
    /// must be rebuilt.
    pub(crate) fn set_cr0(&mut self, v: u64) -> core::result::Result<bool, Refused> {
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

    /// MOV to CR3: a new address space.
    pub(crate) fn set_cr3(&mut self, v: u64) -> core::result::Result<(), Refused> {
        if self.crs.efer & efer::LMA != 0 && v >> 52 != 0 {
            return Err(Refused);
        }
        self.crs.cr3 = if self.crs.efer & efer::LMA != 0 { v } else { v & 0xffff_ffff };
        Ok(())
    }

    /// MOV to CR4. Returns whether the shadow tables must be rebuilt.
    pub(crate) fn set_cr4(&mut self, v: u64) -> core::result::Result<bool, Refused> {
        if v & !CR4_ALLOWED != 0 || (self.crs.efer & efer::LMA != 0 && v & CR4_PAE == 0) {
            return Err(Refused);
        }
        let old = self.crs.cr4;
        self.crs.cr4 = v;
        Ok((old ^ v) & CR4_PAGING_BITS != 0)
    }

    /// WRMSR EFER, already validated. Returns whether the shadow tables must
    /// be rebuilt.
    pub(crate) fn set_efer(&mut self, v: u64) -> bool {
        let old = self.crs.efer;
        self.crs.efer = v & !efer::SVME;
        (old ^ self.crs.efer) & (efer::NXE | efer::LMA) != 0
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What an exit handler reaches beyond the guest's registers and VMCB: the
//! [`Env`] (guest memory, the run page, the host) and, without nested
//! paging, the shadow MMU through [`ShadowPaging`]. The module implements
//! both on its vCPU (`vcpu.rs`) and its shadow MMU (`mm/shadow_mmu.rs`);
//! the host tests implement them on plain memory, so that `cargo test`
//! runs the exit handlers themselves. Depends on `core` only.

use crate::emulate::walk::{Access, PagingState, WalkError};
use crate::mm::shadow::{Fault, GuestCrs, OutOfMemory, Refused};
use crate::uapi;

/// Guest memory, the run page and the host, as one exit's handler sees them.
pub(crate) trait Env {
    /// The shadow MMU of a VM without nested paging.
    type Shadow: ShadowPaging;

    /// Copies guest-physical memory at `gpa` into `buf`; false if any of
    /// it is not guest RAM.
    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool;
    /// Copies `data` into guest-physical memory at `gpa`; false if any of
    /// it is not guest RAM.
    fn write(&self, gpa: u64, data: &[u8]) -> bool;
    /// ORs `bits` into the aligned 32-bit word at `gpa` atomically and
    /// returns its old value; `None` if `gpa` is unaligned or not RAM.
    fn fetch_or_u32(&self, gpa: u64, bits: u32) -> Option<u32>;
    /// Whether `gpa` is guest RAM.
    fn is_ram(&self, gpa: u64) -> bool;
    /// Translates linear address `la` through the guest's page tables
    /// described by `ps`, setting accessed and dirty bits as the CPU would.
    fn translate(&self, ps: &PagingState, la: u64, access: Access) -> Result<u64, WalkError>;
    /// Resolves a hardware page fault at `la` under shadow paging.
    fn shadow_fault(&self, mmu: &mut Self::Shadow, la: u64, access: Access) -> Fault;

    /// The result userspace left in the run page for a hypercall exit.
    fn run_hypercall_ret(&self) -> u64;
    /// The data userspace left in the run page for an MMIO read exit.
    fn run_mmio_data(&self) -> [u8; 8];
    /// The vector userspace left in the run page for an INTA exit.
    fn run_inta_vector(&self) -> u32;
    /// Writes the run page, all but the byte userspace owns.
    fn write_run(&self, run: &uapi::Run);
    /// Copies from offset `at` of the run page's I/O data area.
    fn io_read(&self, at: usize, out: &mut [u8]);
    /// Copies to offset `at` of the run page's I/O data area.
    fn io_write(&self, at: usize, data: &[u8]);

    /// The vCPU's number in its VM.
    fn vcpu_id(&self) -> u32;
    /// The host CPU's CPUID leaf `leaf`, subleaf `subleaf`: EAX..EDX.
    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4];
    /// The host's time stamp counter.
    fn host_tsc(&self) -> u64;
    /// The host's monotonic clock in nanoseconds: the local APIC's bus
    /// clock.
    fn now_ns(&self) -> u64;
    /// Whether the CPU reports the next RIP of an intercepted instruction
    /// (NRIPS).
    fn has_nrips(&self) -> bool;
    /// The guest-physical address width.
    fn maxphyaddr(&self) -> u8;
    /// Whether shadow roots may be cached across CR3 writes
    /// (`ShadowMmu::caching_allowed`).
    fn shadow_caching(&self) -> bool;
    /// Reports an exit no handler knows, with the VMCB's control fields
    /// (once per vCPU: the caller rate-limits).
    fn report_unhandled(&self, code: u64, info: [u64; 3], intercepts: &[u32; 6], rip: u64);
}

/// The shadow MMU, as the exit handlers drive it. Every change that
/// returns "rebuilt" or a new root leaves the caller to load the hardware
/// registers into the VMCB and flush the vCPU's TLB
/// ([`super::GuestState::shadow_rebuilt`]).
pub(crate) trait ShadowPaging {
    /// The guest's paging registers, as the guest sees them.
    fn crs(&self) -> GuestCrs;
    /// Puts back registers taken with [`Self::crs`] (a refused change).
    fn restore_crs(&mut self, crs: GuestCrs);
    /// The guest's paging state, for walking its tables.
    fn paging_state(&self) -> PagingState;
    /// The hardware CR0, CR3, CR4 and EFER the guest runs on.
    fn hw_regs(&self) -> [u64; 4];
    /// Drops every shadow table and starts again for the current CR3.
    fn rebuild(&mut self) -> Result<(), OutOfMemory>;
    /// MOV to CR0; returns whether the tables must be rebuilt.
    fn set_cr0(&mut self, v: u64) -> Result<bool, Refused>;
    /// MOV to CR3, with roots cached if `cache`.
    fn set_cr3(&mut self, v: u64, cache: bool) -> Result<(), Refused>;
    /// MOV to CR4, with the bits `allowed`; returns whether the tables
    /// must be rebuilt.
    fn set_cr4(&mut self, v: u64, allowed: u64) -> Result<bool, Refused>;
    /// WRMSR EFER (validated); returns whether the tables must be rebuilt.
    fn set_efer(&mut self, v: u64) -> bool;
    /// INVLPG of `la`; returns whether everything was dropped.
    fn invalidate(&mut self, la: u64) -> Result<bool, OutOfMemory>;
    /// The span INVLPG drops around its address.
    fn largest_page(&self) -> u64;
    /// The module wrote guest page `gfn`.
    fn module_wrote(&mut self, gfn: u64);
    /// Keeps the page at TR's base read-only (the testbed's TSS guard);
    /// returns whether the tables were rebuilt.
    fn guard_tss(&mut self, tss: Option<u64>) -> Result<bool, OutOfMemory>;
    /// Whether entries of the current root became read-only since the
    /// last call (a TLB flush is owed).
    fn take_flush(&mut self) -> bool;
}

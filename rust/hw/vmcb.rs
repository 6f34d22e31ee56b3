// SPDX-License-Identifier: GPL-2.0

//! The Virtual Machine Control Block, laid out as in AMD's APM Vol. 2,
//! Appendix B ("Layout of VMCB"), with field names from Linux's
//! `arch/x86/include/asm/svm.h`.
//!
//! Every field's offset is asserted at compile time, not only the total
//! size, so two mistakes cannot cancel out. This file depends on `core` only
//! and is also compiled into the host tests.

use core::mem::{offset_of, size_of};

/// The control area (APM Table B-1), offsets 0x000-0x3ff.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmcbControl {
    /// Intercept vectors: CR reads/writes, DR reads/writes, exceptions,
    /// then the three words of instruction intercepts (`INTERCEPT_*`).
    pub intercepts: [u32; 6],
    reserved_018: [u8; 0x3c - 0x18],
    pub pause_filter_thresh: u16,
    pub pause_filter_count: u16,
    pub iopm_base_pa: u64,
    pub msrpm_base_pa: u64,
    pub tsc_offset: u64,
    pub asid: u32,
    pub tlb_ctl: u8,
    reserved_05d: [u8; 3],
    pub int_ctl: u32,
    pub int_vector: u32,
    pub int_state: u32,
    reserved_06c: [u8; 4],
    pub exit_code: u64,
    pub exit_info_1: u64,
    pub exit_info_2: u64,
    pub exit_int_info: u32,
    pub exit_int_info_err: u32,
    pub nested_ctl: u64,
    pub avic_vapic_bar: u64,
    pub ghcb_gpa: u64,
    pub event_inj: u32,
    pub event_inj_err: u32,
    pub nested_cr3: u64,
    pub virt_ext: u64,
    pub clean: u32,
    reserved_0c4: u32,
    pub next_rip: u64,
    pub insn_len: u8,
    pub insn_bytes: [u8; 15],
    pub avic_backing_page: u64,
    reserved_0e8: [u8; 8],
    pub avic_logical_id: u64,
    pub avic_physical_id: u64,
    reserved_100: [u8; 8],
    pub vmsa_pa: u64,
    reserved_110: [u8; 0x400 - 0x110],
}

/// A segment register in the state save area (APM Table B-2).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct VmcbSeg {
    pub selector: u16,
    pub attrib: u16,
    pub limit: u32,
    pub base: u64,
}

/// The state save area (APM Table B-2), at VMCB offset 0x400. Only the
/// fields of a non-SEV guest are named.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct VmcbSave {
    pub es: VmcbSeg,
    pub cs: VmcbSeg,
    pub ss: VmcbSeg,
    pub ds: VmcbSeg,
    pub fs: VmcbSeg,
    pub gs: VmcbSeg,
    pub gdtr: VmcbSeg,
    pub ldtr: VmcbSeg,
    pub idtr: VmcbSeg,
    pub tr: VmcbSeg,
    reserved_0a0: [u8; 0xcb - 0xa0],
    pub cpl: u8,
    reserved_0cc: [u8; 4],
    pub efer: u64,
    reserved_0d8: [u8; 0x148 - 0xd8],
    pub cr4: u64,
    pub cr3: u64,
    pub cr0: u64,
    pub dr7: u64,
    pub dr6: u64,
    pub rflags: u64,
    pub rip: u64,
    reserved_180: [u8; 0x1d8 - 0x180],
    pub rsp: u64,
    reserved_1e0: [u8; 0x1f8 - 0x1e0],
    pub rax: u64,
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub cr2: u64,
    reserved_248: [u8; 0x268 - 0x248],
    pub g_pat: u64,
    pub dbgctl: u64,
    pub br_from: u64,
    pub br_to: u64,
    pub last_excp_from: u64,
    pub last_excp_to: u64,
    reserved_298: [u8; 0xc00 - 0x298],
}

/// A whole VMCB: one 4 KiB page.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct Vmcb {
    pub control: VmcbControl,
    pub save: VmcbSave,
}

macro_rules! assert_offsets {
    ($ty:ty { $($field:ident: $off:expr),* $(,)? }) => {
        const _: () = { $(assert!(offset_of!($ty, $field) == $off);)* };
    };
}

assert_offsets!(VmcbControl {
    intercepts: 0x000, pause_filter_thresh: 0x03c, pause_filter_count: 0x03e,
    iopm_base_pa: 0x040, msrpm_base_pa: 0x048, tsc_offset: 0x050, asid: 0x058,
    tlb_ctl: 0x05c, int_ctl: 0x060, int_vector: 0x064, int_state: 0x068,
    exit_code: 0x070, exit_info_1: 0x078, exit_info_2: 0x080, exit_int_info: 0x088,
    exit_int_info_err: 0x08c, nested_ctl: 0x090, avic_vapic_bar: 0x098, ghcb_gpa: 0x0a0,
    event_inj: 0x0a8, event_inj_err: 0x0ac, nested_cr3: 0x0b0, virt_ext: 0x0b8,
    clean: 0x0c0, next_rip: 0x0c8, insn_len: 0x0d0, insn_bytes: 0x0d1,
    avic_backing_page: 0x0e0, avic_logical_id: 0x0f0, avic_physical_id: 0x0f8,
    vmsa_pa: 0x108,
});

assert_offsets!(VmcbSave {
    es: 0x000, cs: 0x010, ss: 0x020, ds: 0x030, fs: 0x040, gs: 0x050, gdtr: 0x060,
    ldtr: 0x070, idtr: 0x080, tr: 0x090, cpl: 0x0cb, efer: 0x0d0, cr4: 0x148, cr3: 0x150,
    cr0: 0x158, dr7: 0x160, dr6: 0x168, rflags: 0x170, rip: 0x178, rsp: 0x1d8, rax: 0x1f8,
    star: 0x200, lstar: 0x208, cstar: 0x210, sfmask: 0x218, kernel_gs_base: 0x220,
    sysenter_cs: 0x228, sysenter_esp: 0x230, sysenter_eip: 0x238, cr2: 0x240,
    g_pat: 0x268, dbgctl: 0x270, br_from: 0x278, br_to: 0x280, last_excp_from: 0x288,
    last_excp_to: 0x290,
});

assert_offsets!(Vmcb { control: 0x000, save: 0x400 });

const _: () = {
    assert!(size_of::<VmcbSeg>() == 16);
    assert!(size_of::<VmcbControl>() == 0x400);
    assert!(size_of::<VmcbSave>() == 0xc00);
    assert!(size_of::<Vmcb>() == 4096);
};

impl VmcbControl {
    /// Sets intercept `bit` of vector `word` (one of the `INTERCEPT_*` pairs).
    pub fn set_intercept(&mut self, (word, bit): (usize, u32)) {
        self.intercepts[word] |= 1 << bit;
    }

    /// Clears intercept `bit` of vector `word`.
    pub fn clear_intercept(&mut self, (word, bit): (usize, u32)) {
        self.intercepts[word] &= !(1 << bit);
    }

    /// Whether intercept `bit` of vector `word` is set.
    pub fn has_intercept(&self, (word, bit): (usize, u32)) -> bool {
        self.intercepts[word] & (1 << bit) != 0
    }

    /// Sets or clears intercept `bit` of vector `word`.
    pub fn intercept_if(&mut self, which: (usize, u32), on: bool) {
        if on {
            self.set_intercept(which);
        } else {
            self.clear_intercept(which);
        }
    }

    /// V_TPR: the guest's CR8 (with V_INTR_MASKING).
    pub fn v_tpr(&self) -> u32 {
        self.int_ctl & 0xf
    }

    /// Sets V_TPR to `cr8` (0-15).
    pub fn set_v_tpr(&mut self, cr8: u32) {
        self.int_ctl = (self.int_ctl & !crate::hw::svm::int_ctl::V_TPR_MASK) | (cr8 & 0xf);
    }
}

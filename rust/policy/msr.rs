// SPDX-License-Identifier: GPL-2.0

//! Which MSRs a guest may touch, and how the intercepted ones behave.
//!
//! The MSRs that VMLOAD/VMSAVE switch with the VMCB are passed through:
//! the guest owns its copies and the host's are restored after every exit.
//! Every other MSR is intercepted. A few are emulated on the VMCB's copy
//! (EFER, PAT, TSC); the rest give #GP, as an MSR the CPU does not have
//! would. Depends on `core` only.

/// MSR numbers, by the short names the policy uses.
pub(crate) use crate::hw::msr as nr;

/// MSRs the guest reads without an exit. Writes of the ones that hold
/// addresses are still intercepted (see [`WRITE_CHECKED`]).
pub const PASSTHROUGH: [u32; 10] = [
    nr::FS_BASE,
    nr::GS_BASE,
    nr::KERNEL_GS_BASE,
    nr::STAR,
    nr::LSTAR,
    nr::CSTAR,
    nr::SFMASK,
    nr::SYSENTER_CS,
    nr::SYSENTER_ESP,
    nr::SYSENTER_EIP,
];

/// Passed-through MSRs whose writes are intercepted anyway, because the
/// processor must refuse a non-canonical address with #GP and an emulated
/// CPU (QEMU's TCG) may not: the module checks it itself. Guests write
/// these rarely (FSGSBASE instructions do not exit).
pub const WRITE_CHECKED: [u32; 5] = [nr::FS_BASE, nr::GS_BASE, nr::KERNEL_GS_BASE, nr::LSTAR, nr::CSTAR];

/// Size of the MSR permission map (APM 15.11): 8 KiB.
pub const MSRPM_SIZE: usize = 8192;

/// Bit offset of `msr`'s read-intercept bit in the permission map (its
/// write bit follows), or `None` for MSRs outside the three ranges the map
/// covers (always intercepted).
pub fn msrpm_bit(msr: u32) -> Option<usize> {
    let (base, byte) = match msr {
        0x0000_0000..=0x0000_1fff => (0x0000_0000, 0x000),
        0xc000_0000..=0xc000_1fff => (0xc000_0000, 0x800),
        0xc001_0000..=0xc001_1fff => (0xc001_0000, 0x1000),
        _ => return None,
    };
    Some(byte * 8 + (msr - base) as usize * 2)
}

/// Fills a permission map: every MSR intercepted but [`PASSTHROUGH`].
pub fn fill_permission_map(map: &mut [u8]) {
    map.fill(0xff);
    for msr in PASSTHROUGH {
        if let Some(bit) = msrpm_bit(msr) {
            let write = if WRITE_CHECKED.contains(&msr) { 2 } else { 0 };
            map[bit / 8] &= !(3 << (bit % 8));
            map[bit / 8] |= write << (bit % 8);
        }
    }
}

/// The guest state an intercepted MSR access can see and change.
pub struct MsrState<'a> {
    /// The VMCB's EFER (with SVME, which the guest never sees).
    pub efer: &'a mut u64,
    /// CR0, to refuse changing EFER.LME while paging is on.
    pub cr0: u64,
    pub g_pat: &'a mut u64,
    pub tsc_offset: &'a mut u64,
    /// The host TSC now.
    pub host_tsc: u64,
    /// The VMCB's copies of the [`WRITE_CHECKED`] MSRs, in that order.
    pub bases: [&'a mut u64; 5],
}

/// Whether `v` is a canonical 48-bit address (bits 63-47 all equal).
pub fn is_canonical(v: u64) -> bool {
    ((v as i64) << 16 >> 16) as u64 == v
}

const EFER_SVME: u64 = crate::hw::svm::efer::SVME;
const EFER_LME: u64 = crate::hw::svm::efer::LME;
const EFER_LMA: u64 = crate::hw::svm::efer::LMA;
use crate::policy::state::EFER_GUEST_BITS;
const CR0_PG: u64 = crate::hw::cr::cr0::PG;

fn pat_valid(v: u64) -> bool {
    v.to_le_bytes().iter().all(|&t| matches!(t, 0 | 1 | 4 | 5 | 6 | 7))
}

/// RDMSR of an intercepted MSR: the value, or `None` for #GP.
pub fn read(msr: u32, st: &MsrState<'_>) -> Option<u64> {
    match msr {
        nr::EFER => Some(*st.efer & !EFER_SVME),
        _ if WRITE_CHECKED.contains(&msr) => {
            WRITE_CHECKED.iter().position(|&m| m == msr).map(|i| *st.bases[i])
        }
        nr::PAT => Some(*st.g_pat),
        nr::TSC => Some(st.host_tsc.wrapping_add(*st.tsc_offset)),
        _ => None,
    }
}

/// WRMSR of an intercepted MSR: `false` for #GP.
pub fn write(msr: u32, value: u64, st: &mut MsrState<'_>) -> bool {
    match msr {
        nr::EFER => {
            // LMA is read-only; anything else outside the guest bits is
            // reserved (SVME included: the guest has no SVM).
            let v = value & !EFER_LMA;
            if v & !EFER_GUEST_BITS != 0 {
                return false;
            }
            if st.cr0 & CR0_PG != 0 && (v ^ *st.efer) & EFER_LME != 0 {
                return false;
            }
            *st.efer = v | (*st.efer & EFER_LMA) | EFER_SVME;
            true
        }
        nr::PAT if pat_valid(value) => {
            *st.g_pat = value;
            true
        }
        nr::TSC => {
            *st.tsc_offset = value.wrapping_sub(st.host_tsc);
            true
        }
        _ if WRITE_CHECKED.contains(&msr) && is_canonical(value) => {
            match WRITE_CHECKED.iter().position(|&m| m == msr) {
                Some(i) => {
                    *st.bases[i] = value;
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

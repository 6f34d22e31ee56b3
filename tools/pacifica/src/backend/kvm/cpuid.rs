// SPDX-License-Identifier: GPL-2.0

//! The CPUID a KVM guest of the PC machine gets: Pacifica's own policy
//! (`rust/policy/cpuid.rs`, shared with the module) applied to this CPU's
//! CPUID, so that a Linux guest sees the same processor on both
//! hypervisors. KVM's supported CPUID is no such thing: it offers what KVM
//! can virtualize (XSAVE and its components, KVM's paravirtual leaves),
//! which differs from what Pacifica offers and, under QEMU's TCG, is not
//! even self-consistent (leaf 0xd sizes that disagree with each other).

use kvm_bindings::{kvm_cpuid_entry2, CpuId, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

use crate::policy_cpuid::{guest_cpuid, GuestKind, Regs};

/// This CPU's answer to CPUID(`leaf`, `subleaf`).
fn host_cpuid(leaf: u32, subleaf: u32) -> Regs {
    let r = std::arch::x86_64::__cpuid_count(leaf, subleaf);
    [r.eax, r.ebx, r.ecx, r.edx]
}

/// The leaves whose answer depends on the subleaf.
fn indexed(leaf: u32) -> bool {
    matches!(leaf, 4 | 7 | 0xb | 0xd)
}

/// The guest's CPUID entries for `kind`, computed from `host`.
pub fn entries(kind: GuestKind, host: impl Fn(u32, u32) -> Regs + Copy) -> Vec<kvm_cpuid_entry2> {
    let entry = |function: u32, index: u32| {
        let [eax, ebx, ecx, edx] = guest_cpuid(function, index, kind, host);
        let flags = if indexed(function) { KVM_CPUID_FLAG_SIGNIFCANT_INDEX } else { 0 };
        kvm_cpuid_entry2 { function, index, flags, eax, ebx, ecx, edx, ..Default::default() }
    };
    let ranges = [0, 0x4000_0000, 0x8000_0000].map(|base| base..=guest_cpuid(base, 0, kind, host)[0]);
    ranges.into_iter().flatten().map(|leaf| entry(leaf, 0)).collect()
}

/// [`entries`] for this CPU, as `KVM_SET_CPUID2` takes them.
pub fn pacifica_cpuid(kind: GuestKind) -> Result<CpuId, vmm_sys_util::fam::Error> {
    CpuId::from_entries(&entries(kind, host_cpuid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_gets_the_policy_leaf_by_leaf() {
        let host = |leaf: u32, _| match leaf {
            0 => [0x10, 1, 2, 3],
            0x8000_0000 => [0x8000_0008, 0, 0, 0],
            _ => [u32::MAX; 4],
        };
        let kind = GuestKind { lapic: true, tsc_deadline: true, ..Default::default() };
        let got = entries(kind, host);
        // Basic leaves up to the policy's 0xd, the hypervisor leaves, the
        // extended leaves up to 0x8000_0008.
        assert_eq!(got.len(), 0xe + 2 + 9);
        for e in &got {
            let want = guest_cpuid(e.function, e.index, kind, host);
            assert_eq!([e.eax, e.ebx, e.ecx, e.edx], want, "leaf {:#x}", e.function);
        }
        let leaf7 = got.iter().find(|e| e.function == 7).unwrap();
        assert_eq!(leaf7.flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
        let leaf1 = got.iter().find(|e| e.function == 1).unwrap();
        assert_eq!(leaf1.flags, 0);
        assert_ne!(leaf1.ecx & (1 << 24), 0, "TSC-deadline offered");
        assert!(got.iter().any(|e| e.function == 0x4000_0000));
    }
}

// SPDX-License-Identifier: GPL-2.0

//! What CPUID tells a guest: the host's answer, filtered to the features
//! Pacifica virtualizes, plus the hypervisor leaves. Features a guest could
//! use to reach host state (SVM itself, XSAVE/AVX with their XCR0, RDTSCP
//! with its TSC_AUX, PCID, LA57, PKU, the APIC of a VM without an in-kernel
//! one) are hidden
//! rather than half-supported. Depends on `core` only.

use crate::hw::apic;

/// The signature at leaf 0x4000_0000 in EBX, ECX, EDX.
pub const SIGNATURE: &[u8; 12] = b"PacificaSVM\0";

/// Highest hypervisor leaf.
pub const HV_MAX_LEAF: u32 = 0x4000_0001;

/// A CPUID answer: EAX, EBX, ECX, EDX.
pub type Regs = [u32; 4];

const fn bits(list: &[u32]) -> u32 {
    let mut v = 0;
    let mut i = 0;
    while i < list.len() {
        v |= 1 << list[i];
        i += 1;
    }
    v
}

mod leaf1 {
    // ECX
    pub const SSE3: u32 = 1 << 0;
    pub const PCLMULQDQ: u32 = 1 << 1;
    pub const SSSE3: u32 = 1 << 9;
    pub const CX16: u32 = 1 << 13;
    pub const SSE41: u32 = 1 << 19;
    pub const SSE42: u32 = 1 << 20;
    pub const MOVBE: u32 = 1 << 22;
    pub const POPCNT: u32 = 1 << 23;
    pub const AES: u32 = 1 << 25;
    pub const RDRAND: u32 = 1 << 30;
    pub const HYPERVISOR: u32 = 1 << 31;
    pub const ECX_ALLOWED: u32 =
        SSE3 | PCLMULQDQ | SSSE3 | CX16 | SSE41 | SSE42 | MOVBE | POPCNT | AES | RDRAND;
    // EDX: FPU VME DE PSE TSC MSR PAE CX8 SEP PGE CMOV PAT PSE36 CLFSH MMX
    // FXSR SSE SSE2. Not MCE/MCA (no machine-check MSRs), APIC (only
    // with an in-kernel one: `EDX_APIC`), MTRR, ACPI, HTT, TM, PBE.
    pub const EDX_ALLOWED: u32 = super::bits(&[0, 1, 2, 3, 4, 5, 6, 8, 11, 13, 15, 16, 17, 19, 23, 24, 25, 26]);
    /// EDX bit 9: an on-chip APIC, offered with the in-kernel one.
    pub const EDX_APIC: u32 = 1 << 9;
}

mod leaf7 {
    // EBX: FSGSBASE BMI1 SMEP BMI2 ERMS ADX SMAP CLFLUSHOPT SHA
    pub const EBX_ALLOWED: u32 =
        (1 << 0) | (1 << 3) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 19) | (1 << 20) | (1 << 23) | (1 << 29);
}

mod ext1 {
    // ECX: LAHF CMP_LEGACY ABM SSE4A MISALIGNSSE 3DNOWPREFETCH
    pub const ECX_ALLOWED: u32 = (1 << 0) | (1 << 1) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8);
    // EDX: the legacy bits of leaf 1 plus SYSCALL NX MMXEXT FFXSR PAGE1GB
    // LM; not RDTSCP (27), whose TSC_AUX would be the host's.
    pub const EDX_ALLOWED: u32 =
        super::bits(&[0, 1, 2, 3, 4, 5, 6, 8, 11, 13, 15, 16, 17, 20, 22, 23, 24, 25, 26, 29]);
}

/// What a guest's CPUID depends on besides the leaf.
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestKind {
    pub vcpu_id: u32,
    /// The VM runs on shadow page tables, whose MMU does not implement
    /// SMEP and SMAP: they are hidden (the guest gets #GP setting them in
    /// CR4, as a CPU without them would give).
    pub shadow: bool,
    /// The VM has in-kernel local APICs: leaf 1 offers the APIC (EDX
    /// bit 9) and x2APIC (ECX bit 21), leaf 6 the always-running APIC
    /// timer (ARAT).
    pub lapic: bool,
    /// The APIC timer's TSC-deadline mode (CPUID.1:ECX bit 24), offered
    /// with the in-kernel APIC when the TSC's rate is known.
    pub tsc_deadline: bool,
}

/// Leaf 7 EBX bits the shadow MMU does not virtualize: SMEP, SMAP.
const SHADOW_HIDDEN_7_EBX: u32 = (1 << 7) | (1 << 20);

/// The guest's answer to CPUID(`leaf`, `subleaf`), given the host's CPUID.
pub fn guest_cpuid(leaf: u32, subleaf: u32, kind: GuestKind, host: impl Fn(u32, u32) -> Regs) -> Regs {
    let vcpu_id = kind.vcpu_id;
    let max_basic = host(0, 0)[0].min(0xd);
    let max_ext = host(0x8000_0000, 0)[0].min(0x8000_0008);
    match leaf {
        0 => {
            let h = host(0, 0);
            [max_basic, h[1], h[2], h[3]]
        }
        1 => {
            let h = host(1, 0);
            // EBX: brand index and CLFLUSH size kept, one logical CPU per
            // package, APIC id = vCPU id.
            let ebx = (h[1] & 0xffff) | (1 << 16) | (vcpu_id << 24);
            let (ecx_apic, edx_apic) = if kind.lapic { (apic::cpuid::X2APIC, leaf1::EDX_APIC) } else { (0, 0) };
            let ecx_deadline = if kind.lapic && kind.tsc_deadline { apic::cpuid::TSC_DEADLINE } else { 0 };
            let ecx = (h[2] & leaf1::ECX_ALLOWED) | leaf1::HYPERVISOR | ecx_apic | ecx_deadline;
            [h[0], ebx, ecx, (h[3] & leaf1::EDX_ALLOWED) | edx_apic]
        }
        // Power management: only ARAT, true of the in-kernel APIC's timer
        // (an hrtimer, whatever the CPU's sleep state).
        6 if kind.lapic && max_basic >= 6 => [apic::cpuid::LEAF6_ARAT, 0, 0, 0],
        7 if subleaf == 0 && max_basic >= 7 => {
            let mut ebx = host(7, 0)[1] & leaf7::EBX_ALLOWED;
            if kind.shadow {
                ebx &= !SHADOW_HIDDEN_7_EBX;
            }
            [0, ebx, 0, 0]
        }
        0x4000_0000 => {
            let w = |i: usize| u32::from_le_bytes([SIGNATURE[i], SIGNATURE[i + 1], SIGNATURE[i + 2], SIGNATURE[i + 3]]);
            [HV_MAX_LEAF, w(0), w(4), w(8)]
        }
        0x4000_0001 => [0; 4],
        0x8000_0000 => {
            let h = host(0x8000_0000, 0);
            [max_ext, h[1], h[2], h[3]]
        }
        0x8000_0001 => {
            let h = host(0x8000_0001, 0);
            [h[0], 0, h[2] & ext1::ECX_ALLOWED, h[3] & ext1::EDX_ALLOWED]
        }
        // Brand string and cache descriptions are harmless.
        0x8000_0002..=0x8000_0006 if leaf <= max_ext => host(leaf, 0),
        // Address sizes; no core count.
        0x8000_0008 if leaf <= max_ext => [host(leaf, 0)[0], 0, 0, 0],
        _ => [0; 4],
    }
}

/// The CR4 bits a guest of `kind` may set: the baseline every x86-64
/// processor has, and the ones its CPUID (above) offers. MOV CR4 and
/// `PACIFICA_SET_SREGS` refuse the others, so a guest cannot turn on a
/// feature (OSXSAVE, PKE, PCIDE, LA57, ...) it was not given.
pub fn guest_cr4_allowed(kind: GuestKind, host: impl Fn(u32, u32) -> Regs) -> u64 {
    use crate::hw::cr::cr4;
    let ebx7 = guest_cpuid(7, 0, kind, host)[1];
    let mut allowed = cr4::BASELINE;
    for (cpuid_bit, cr4_bit) in [(0, cr4::FSGSBASE), (7, cr4::SMEP), (20, cr4::SMAP)] {
        if ebx7 & (1 << cpuid_bit) != 0 {
            allowed |= cr4_bit;
        }
    }
    allowed
}


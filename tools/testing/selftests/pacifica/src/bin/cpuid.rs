// SPDX-License-Identifier: GPL-2.0

//! The guest's CPUID: it says "hypervisor present", names Pacifica at
//! 0x4000_0000, and hides SVM, so a guest neither mistakes itself for bare
//! metal nor tries to use virtualisation it cannot have.
//!
//! Guest: `guests/cpuid.S`, which stores EAX, EBX, ECX, EDX of each leaf
//! it asks at DATA_BASE, 16 bytes per leaf.

use pacifica_selftests::guests::cpuid as guest;
use pacifica_selftests::layout::DATA_BASE;
use pacifica_selftests::uapi::PACIFICA_STAT_CPUID;
use pacifica_selftests::{diag, ensure, ensure_eq, tap, test, Failure, Mode, TestResult, TestVm};

/// The signature the module returns in EBX, ECX, EDX of leaf 0x4000_0000.
const SIGNATURE: &[u8; 12] = b"PacificaSVM\0";

/// The leaves `cpuid_leaves64` asks, in order.
const LEAVES: [u32; 6] = [0, 1, 0x4000_0000, 0x8000_0000, 0x8000_0001, 0x8000_000a];

/// EAX, EBX, ECX, EDX of one leaf.
type Cpuid = [u32; 4];

/// Runs the 64-bit guest and returns each leaf's registers, printing them
/// if `show`.
fn leaves_shown(show: bool) -> Result<Vec<(u32, Cpuid)>, Failure> {
    let mut vm = TestVm::new(Mode::Long64, guest::IMAGE, guest::CPUID_LEAVES64)?;
    vm.run_to_hlt()?;
    vm.ensure_no_exceptions()?;
    let cpuid_exits = vm.stat(PACIFICA_STAT_CPUID)?;
    ensure!(
        cpuid_exits >= LEAVES.len() as u64,
        "the cpuid exit counter is {cpuid_exits}, but the guest ran CPUID {} times",
        LEAVES.len()
    );
    let mut out = Vec::new();
    for (i, &leaf) in LEAVES.iter().enumerate() {
        let base = DATA_BASE + 16 * i as u64;
        let regs = [
            vm.read_u32(base)?,
            vm.read_u32(base + 4)?,
            vm.read_u32(base + 8)?,
            vm.read_u32(base + 12)?,
        ];
        if show {
            diag!(
                "leaf {leaf:#010x}: eax {:#010x} ebx {:#010x} ecx {:#010x} edx {:#010x}",
                regs[0],
                regs[1],
                regs[2],
                regs[3]
            );
        }
        out.push((leaf, regs));
    }
    Ok(out)
}

fn leaves() -> Result<Vec<(u32, Cpuid)>, Failure> {
    leaves_shown(false)
}

fn leaf(all: &[(u32, Cpuid)], which: u32) -> Cpuid {
    all.iter()
        .find(|(l, _)| *l == which)
        .map(|(_, r)| *r)
        .unwrap_or_default()
}

fn signature(regs: &Cpuid) -> Vec<u8> {
    regs[1..].iter().flat_map(|r| r.to_le_bytes()).collect()
}

/// Leaf 1 ECX bit 31, "hypervisor present", is set.
fn hypervisor_bit_set() -> TestResult {
    let all = leaves()?;
    let ecx = leaf(&all, 1)[2];
    ensure!(
        ecx & (1 << 31) != 0,
        "leaf 1 ECX {ecx:#010x} lacks the hypervisor bit 31"
    );
    Ok(())
}

/// Leaf 0x4000_0000 names Pacifica in EBX, ECX, EDX and, as KVM's does,
/// gives the highest hypervisor leaf in EAX.
fn hypervisor_signature() -> TestResult {
    let all = leaves()?;
    let regs = leaf(&all, 0x4000_0000);
    let sig = signature(&regs);
    ensure_eq!(
        String::from_utf8_lossy(&sig),
        String::from_utf8_lossy(SIGNATURE),
        "leaf 0x40000000 signature"
    );
    ensure!(
        (0x4000_0000..0x4000_0100).contains(&regs[0]),
        "leaf 0x40000000 EAX {:#x} is not a hypervisor leaf number",
        regs[0]
    );
    Ok(())
}

/// The signature is the same in 32-bit mode.
fn hypervisor_signature_32() -> TestResult {
    let mut vm = TestVm::new(Mode::Protected32, guest::IMAGE, guest::CPUID_HV32)?;
    vm.run_to_hlt()?;
    let mut regs = [0; 4];
    for (i, reg) in regs.iter_mut().enumerate() {
        *reg = vm.read_u32(DATA_BASE + 4 * i as u64)?;
    }
    let sig = signature(&regs);
    ensure_eq!(
        String::from_utf8_lossy(&sig),
        String::from_utf8_lossy(SIGNATURE),
        "leaf 0x40000000 signature in 32-bit mode"
    );
    Ok(())
}

/// Leaf 0x8000_0001 ECX bit 2 (SVM) is clear: the guest cannot use SVM.
fn svm_hidden() -> TestResult {
    let all = leaves()?;
    let ecx = leaf(&all, 0x8000_0001)[2];
    ensure!(
        ecx & (1 << 2) == 0,
        "leaf 0x80000001 ECX {ecx:#010x} shows SVM (bit 2)"
    );
    Ok(())
}

/// The rest passes through sensibly: the vendor is the host's (AMD on
/// the test machine) and the extended range reaches 0x8000_0001.
fn vendor_and_ranges_sane() -> TestResult {
    let all = leaves_shown(true)?;
    let l0 = leaf(&all, 0);
    let vendor: Vec<u8> = [l0[1], l0[3], l0[2]]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    diag!(
        "vendor {:?}, max basic leaf {:#x}",
        String::from_utf8_lossy(&vendor),
        l0[0]
    );
    ensure!(l0[0] >= 1, "max basic leaf {:#x}", l0[0]);
    let max_ext = leaf(&all, 0x8000_0000)[0];
    ensure!(max_ext >= 0x8000_0001, "max extended leaf {max_ext:#x}");
    Ok(())
}

fn main() {
    tap::run(&[
        test!(hypervisor_bit_set),
        test!(hypervisor_signature),
        test!(hypervisor_signature_32),
        test!(svm_hidden),
        test!(vendor_and_ranges_sane),
    ]);
}

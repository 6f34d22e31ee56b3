// SPDX-License-Identifier: GPL-2.0

//! Which MSRs a guest may use.
//!
//! Allowed: the syscall/sysenter MSRs a kernel programs at boot (LSTAR,
//! STAR, SYSENTER_CS/ESP/EIP, KERNEL_GS_BASE) hold what the guest writes;
//! EFER reads as the guest set it (LME|LMA), without the SVME bit the host
//! needs for VMRUN. Denied: the SVM MSRs VM_HSAVE_PA and VM_CR give the
//! guest #GP on read and write, which its own IDT catches; the module
//! counts them in PACIFICA_STAT_GP.
//!
//! Guest: `guests/msr.S`. Each MSR has a 16-byte result slot: the value
//! RDMSR returned, then the vectors of WRMSR and RDMSR (NO_FAULT if none).

use pacifica_selftests::guests::msr as guest;
use pacifica_selftests::layout::{DATA_BASE, NO_FAULT};
use pacifica_selftests::uapi::{PACIFICA_STAT_GP, PACIFICA_STAT_MSR};
use pacifica_selftests::{
    diag, ensure, ensure_eq, skip, tap, test, Failure, Mode, TestResult, TestVm,
};

/// #GP.
const GP: u32 = 13;

/// One result slot of the guest.
#[derive(Debug)]
struct Slot {
    value: u64,
    write_vector: u32,
    read_vector: u32,
}

fn slot(vm: &TestVm, index: u64) -> Result<Slot, Failure> {
    let base = DATA_BASE + 16 * index;
    Ok(Slot {
        value: vm.read_u64(base)?,
        write_vector: vm.read_u32(base + 8)?,
        read_vector: vm.read_u32(base + 12)?,
    })
}

fn run(entry: u64) -> Result<TestVm, Failure> {
    let mut vm = TestVm::new(Mode::Long64, guest::IMAGE, entry)?;
    vm.run_to_hlt()?;
    vm.print_stats()?;
    Ok(vm)
}

/// The syscall MSRs keep what the guest writes, without faults.
fn syscall_msrs_write_and_read_back() -> TestResult {
    let vm = run(guest::MSR_ALLOWED64)?;
    let expected: [(&str, u64); 6] = [
        ("LSTAR", 0xffff_ffff_8123_4560),
        ("STAR", 0x0023_0010_0000_0000),
        ("SYSENTER_CS", 0x10),
        ("SYSENTER_ESP", 0x8765_4320),
        ("SYSENTER_EIP", 0x8123_4560),
        ("KERNEL_GS_BASE", 0xffff_8880_1234_5000),
    ];
    for (i, (name, value)) in expected.iter().enumerate() {
        let s = slot(&vm, i as u64)?;
        ensure_eq!(
            s.write_vector,
            NO_FAULT as u32,
            "vector of WRMSR {name} (0xff: none)"
        );
        ensure_eq!(
            s.read_vector,
            NO_FAULT as u32,
            "vector of RDMSR {name} (0xff: none)"
        );
        ensure_eq!(s.value, *value, "{name} read back");
    }
    vm.ensure_no_exceptions()?;
    ensure!(
        vm.stat(PACIFICA_STAT_GP)? == 0,
        "#GP counted for allowed MSRs"
    );
    Ok(())
}

/// EFER reads as the guest's long-mode EFER (LME | LMA), with SVME hidden.
fn efer_readable_without_svme() -> TestResult {
    let vm = run(guest::MSR_ALLOWED64)?;
    let s = slot(&vm, 6)?;
    diag!("guest EFER {:#x}", s.value);
    ensure_eq!(
        s.read_vector,
        NO_FAULT as u32,
        "vector of RDMSR EFER (0xff: none)"
    );
    ensure_eq!(s.value & 0x500, 0x500, "EFER.LME and EFER.LMA");
    ensure_eq!(s.value & (1 << 12), 0, "EFER.SVME as the guest sees it");
    Ok(())
}

/// VM_HSAVE_PA and VM_CR give #GP on read and on write.
fn svm_msrs_give_gp() -> TestResult {
    let vm = run(guest::MSR_DENIED64)?;
    let cases = [
        (0, "RDMSR VM_HSAVE_PA", true),
        (1, "WRMSR VM_HSAVE_PA", false),
        (2, "RDMSR VM_CR", true),
        (3, "WRMSR VM_CR", false),
    ];
    for (index, name, is_read) in cases {
        let s = slot(&vm, index)?;
        let vector = if is_read {
            s.read_vector
        } else {
            s.write_vector
        };
        ensure_eq!(vector, GP, "vector of {name} (13: #GP, 0xff: none)");
    }
    ensure_eq!(
        vm.log.exceptions,
        vec![GP as u8; 4],
        "exceptions the guest's handler reported"
    );
    let gp = vm.stat(PACIFICA_STAT_GP)?;
    ensure!(gp >= 4, "gp exit counter {gp} for 4 denied accesses");
    let msr = vm.stat(PACIFICA_STAT_MSR)?;
    ensure!(
        msr >= 4,
        "msr exit counter {msr} for 4 intercepted accesses"
    );
    Ok(())
}

/// A non-canonical LSTAR gives #GP and leaves the old value.
///
/// If the module lets the guest write LSTAR directly (no MSR intercept, as
/// is usual: the VMCB holds LSTAR), the check is the CPU's. QEMU's TCG
/// does not make it, so there the test skips instead of failing the
/// module for the emulator; on hardware it is a real check.
fn lstar_noncanonical_gives_gp() -> TestResult {
    let vm = run(guest::MSR_NONCANONICAL64)?;
    let first = slot(&vm, 0)?;
    ensure_eq!(first.write_vector, NO_FAULT as u32, "canonical WRMSR LSTAR");
    let bad = slot(&vm, 1)?;
    if bad.write_vector == NO_FAULT as u32 && vm.stat(PACIFICA_STAT_MSR)? == 0 {
        skip!(
            "LSTAR is not intercepted and this CPU accepted a non-canonical value (QEMU TCG does)"
        );
    }
    ensure_eq!(
        bad.write_vector,
        GP,
        "vector of WRMSR LSTAR 0x0000800000000000"
    );
    let after = slot(&vm, 2)?;
    ensure_eq!(after.read_vector, NO_FAULT as u32, "RDMSR LSTAR");
    ensure_eq!(
        after.value,
        0xffff_ffff_8123_4560,
        "LSTAR after the refused write"
    );
    Ok(())
}

fn main() {
    tap::run(&[
        test!(syscall_msrs_write_and_read_back),
        test!(efer_readable_without_svme),
        test!(svm_msrs_give_gp),
        test!(lstar_noncanonical_gives_gp),
    ]);
}

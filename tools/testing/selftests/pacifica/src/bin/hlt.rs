// SPDX-License-Identifier: GPL-2.0

//! HLT exits to userspace, and the next run resumes after it.
//!
//! Guest: `guests/hlt.S`. It sets EAX to 1, halts, sets EAX to 2, halts,
//! sets EAX to 3 and halts for good. Each HLT must be one `Hlt` exit whose
//! run page names the HLT's own address, after which the vCPU continues
//! with the next instruction (the module advances RIP past the one-byte
//! HLT: without next-RIP support, as under QEMU, it must do so itself).

use pacifica_selftests::guests::hlt;
use pacifica_selftests::uapi::{PACIFICA_STAT_HLT, PACIFICA_STAT_USER_EXITS};
use pacifica_selftests::{ensure_eq, tap, test, Mode, TestResult, TestVm};

fn hlt_twice(mode: Mode, entry: u64, first: u64, second: u64) -> TestResult {
    let mut vm = TestVm::new(mode, hlt::IMAGE, entry)?;
    for (round, hlt_addr) in [(1u64, first), (2, second)] {
        vm.run_to_hlt()?;
        ensure_eq!(
            vm.vcpu.run_page().rip,
            hlt_addr,
            "run page RIP at HLT {round}"
        );
        let regs = vm.regs()?;
        ensure_eq!(regs.rax, round, "EAX at HLT {round}");
        ensure_eq!(
            regs.rip,
            hlt_addr + 1,
            "RIP after HLT {round} (past the 1-byte HLT)"
        );
    }
    ensure_eq!(vm.stat(PACIFICA_STAT_HLT)?, 2, "hlt exit counter");
    ensure_eq!(vm.stat(PACIFICA_STAT_USER_EXITS)?, 2, "user exit counter");
    vm.ensure_no_exceptions()
}

/// In 32-bit protected mode.
fn hlt32_exits_and_resumes() -> TestResult {
    hlt_twice(
        Mode::Protected32,
        hlt::HLT32,
        hlt::HLT32_FIRST,
        hlt::HLT32_SECOND,
    )
}

/// In 64-bit long mode.
fn hlt64_exits_and_resumes() -> TestResult {
    hlt_twice(
        Mode::Long64,
        hlt::HLT64,
        hlt::HLT64_FIRST,
        hlt::HLT64_SECOND,
    )
}

fn main() {
    tap::run(&[
        test!(hlt32_exits_and_resumes),
        test!(hlt64_exits_and_resumes),
    ]);
}

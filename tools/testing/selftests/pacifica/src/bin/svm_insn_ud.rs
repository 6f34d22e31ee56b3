// SPDX-License-Identifier: GPL-2.0

//! The SVM instructions raise #UD in the guest: VMRUN, VMLOAD, VMSAVE,
//! STGI, CLGI, SKINIT and INVLPGA. The module intercepts each (VMRUN must
//! be intercepted for VMRUN to work at all; the others would otherwise run
//! on the real CPU with the guest's RAX as a host-physical address) and
//! injects #UD, as the architecture does when EFER.SVME is clear, which is
//! what the guest sees. Each is counted in PACIFICA_STAT_UD.
//!
//! Guest: `guests/svm_insn.S`, with its own IDT; each instruction's vector
//! is stored at DATA_BASE, 4 bytes apiece.

use pacifica_selftests::guests::svm_insn as guest;
use pacifica_selftests::layout::{DATA_BASE, NO_FAULT};
use pacifica_selftests::uapi::PACIFICA_STAT_UD;
use pacifica_selftests::{ensure_eq, fail, tap, test, Mode, TestResult, TestVm};

/// #UD.
const UD: u32 = 6;

const INSNS: [&str; 7] = [
    "VMRUN", "VMLOAD", "VMSAVE", "STGI", "CLGI", "SKINIT", "INVLPGA",
];

fn all_ud(mode: Mode, entry: u64) -> TestResult {
    let mut vm = TestVm::new(mode, guest::IMAGE, entry)?;
    vm.run_to_hlt()?;
    vm.print_stats()?;
    let mut wrong = Vec::new();
    for (i, name) in INSNS.iter().enumerate() {
        let vector = vm.read_u32(DATA_BASE + 4 * i as u64)?;
        if vector != UD {
            let what = if vector == NO_FAULT as u32 {
                "no exception".to_owned()
            } else {
                format!("vector {vector}")
            };
            wrong.push(format!("{name}: {what}"));
        }
    }
    if !wrong.is_empty() {
        fail!(
            "expected #UD (6) from every SVM instruction; got {}",
            wrong.join(", ")
        );
    }
    ensure_eq!(
        vm.log.exceptions,
        vec![UD as u8; INSNS.len()],
        "exceptions the guest reported"
    );
    ensure_eq!(
        vm.stat(PACIFICA_STAT_UD)?,
        INSNS.len() as u64,
        "ud exit counter"
    );
    Ok(())
}

/// In 64-bit mode.
fn svm_insns_ud_64() -> TestResult {
    all_ud(Mode::Long64, guest::SVM_INSNS64)
}

/// In 32-bit protected mode.
fn svm_insns_ud_32() -> TestResult {
    all_ud(Mode::Protected32, guest::SVM_INSNS32)
}

fn main() {
    tap::run(&[test!(svm_insns_ud_64), test!(svm_insns_ud_32)]);
}

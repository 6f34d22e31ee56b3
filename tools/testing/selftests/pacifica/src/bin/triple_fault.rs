// SPDX-License-Identifier: GPL-2.0

//! A guest that triple-faults shuts down: the run ends with a Shutdown
//! exit, the module counts it, and the VM is still destroyed cleanly.
//!
//! Guest: `guests/triple_fault.S`. The harness starts guests with an IDT
//! limit of 0, so the first exception cannot be delivered and escalates
//! through #GP and #DF to a shutdown (APM Vol. 2, 8.2.9). The module must
//! report it to userspace, not retry the guest forever or take the host
//! down with it.

use pacifica_selftests::guest::{describe_exit, ensure_back_to, module_info};
use pacifica_selftests::guests::triple_fault as guest;
use pacifica_selftests::sys::Exit;
use pacifica_selftests::uapi::PACIFICA_STAT_SHUTDOWN;
use pacifica_selftests::{diag, ensure_eq, tap, test, Flow, Mode, TestResult, TestVm};

fn shuts_down(mode: Mode, entry: u64) -> TestResult {
    let before = module_info()?;
    {
        let mut vm = TestVm::new(mode, guest::IMAGE, entry)?;
        vm.run_until(|exit| match exit {
            Exit::Shutdown => Flow::Stop(()),
            other => Flow::Fail(format!("expected a shutdown, got {}", describe_exit(other))),
        })?;
        ensure_eq!(vm.stat(PACIFICA_STAT_SHUTDOWN)?, 1, "shutdown exit counter");
        // What running a shut-down vCPU again does is the module's choice
        // (KVM reports the shutdown again); it must not hang or crash.
        let again = vm.run_until(|exit| Flow::Stop(describe_exit(exit)));
        diag!("running again after the shutdown: {again:?}");
    }
    ensure_back_to(&before, "destroying the shut-down VM")
}

/// UD2 in 32-bit protected mode.
fn ud2_without_idt_32() -> TestResult {
    shuts_down(Mode::Protected32, guest::TRIPLE_UD2_32)
}

/// INT3 in 64-bit mode.
fn int3_without_idt_64() -> TestResult {
    shuts_down(Mode::Long64, guest::TRIPLE_INT3_64)
}

/// UD2 in 64-bit mode.
fn ud2_without_idt_64() -> TestResult {
    shuts_down(Mode::Long64, guest::TRIPLE_UD2_64)
}

fn main() {
    tap::run(&[
        test!(ud2_without_idt_32),
        test!(int3_without_idt_64),
        test!(ud2_without_idt_64),
    ]);
}

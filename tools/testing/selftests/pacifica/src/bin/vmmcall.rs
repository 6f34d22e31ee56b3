// SPDX-License-Identifier: GPL-2.0

//! VMMCALL: PACIFICA_HC_PING is answered in the kernel (RAX = 0, no exit
//! to userspace, other registers kept); any other number exits to
//! userspace as a Hypercall with RAX as the number and RBX, RCX, RDX, RSI
//! as arguments, and the value userspace returns becomes the guest's RAX.
//!
//! Guest: `guests/vmmcall.S`.

use pacifica_selftests::guest::describe_exit;
use pacifica_selftests::guests::vmmcall as guest;
use pacifica_selftests::layout::DATA_BASE;
use pacifica_selftests::sys::Exit;
use pacifica_selftests::uapi::{PACIFICA_STAT_USER_EXITS, PACIFICA_STAT_VMMCALL};
use pacifica_selftests::{ensure, ensure_eq, tap, test, Flow, Mode, TestResult, TestVm};

/// What userspace answers hypercall 0x1234 with.
const RET64: u64 = 0xfeed_face_1234_5678;

/// The hypercalls that reached userspace: number and arguments.
type Calls = Vec<(u64, [u64; 4])>;

fn run(mode: Mode, entry: u64, ret: u64) -> Result<(TestVm, Calls), pacifica_selftests::Failure> {
    let mut vm = TestVm::new(mode, guest::IMAGE, entry)?;
    let mut calls = Vec::new();
    vm.run_until(|exit| match exit {
        Exit::Hypercall { nr, args, ret: r } => {
            calls.push((*nr, *args));
            **r = ret;
            Flow::Continue
        }
        Exit::Hlt => Flow::Stop(()),
        other => Flow::Fail(format!("unexpected exit: {}", describe_exit(other))),
    })?;
    vm.ensure_no_exceptions()?;
    vm.print_stats()?;
    Ok((vm, calls))
}

fn check(mode: Mode, entry: u64, args: [u64; 4], ret: u64) -> TestResult {
    let (vm, calls) = run(mode, entry, ret)?;
    ensure_eq!(
        calls,
        vec![(0x1234, args)],
        "hypercall exits (the ping must not exit)"
    );
    ensure_eq!(vm.read_u64(DATA_BASE)?, 0, "RAX after PACIFICA_HC_PING");
    ensure_eq!(
        vm.read_u64(DATA_BASE + 8)?,
        0x1111,
        "RBX after PACIFICA_HC_PING"
    );
    ensure_eq!(
        vm.read_u64(DATA_BASE + 0x10)?,
        ret,
        "RAX after hypercall 0x1234"
    );
    let vmmcalls = vm.stat(PACIFICA_STAT_VMMCALL)?;
    ensure!(
        vmmcalls >= 2,
        "vmmcall exit counter {vmmcalls} for 2 VMMCALLs"
    );
    // The hypercall and the HLT; the ping stayed in the kernel.
    ensure_eq!(vm.stat(PACIFICA_STAT_USER_EXITS)?, 2, "user exit counter");
    Ok(())
}

/// In 64-bit mode, with 64-bit arguments and return value.
fn vmmcall_64() -> TestResult {
    let args = [
        0xa1a1_a1a1_0000_0001,
        0xa2a2_a2a2_0000_0002,
        0xa3a3_a3a3_0000_0003,
        0xa4a4_a4a4_0000_0004,
    ];
    check(Mode::Long64, guest::VMMCALL64, args, RET64)
}

/// In 32-bit mode. The guest stores only EAX, so the return value's upper
/// half is not checked.
fn vmmcall_32() -> TestResult {
    let args = [0xa1a1_0001, 0xa2a2_0002, 0xa3a3_0003, 0xa4a4_0004];
    let (vm, calls) = run(Mode::Protected32, guest::VMMCALL32, RET64)?;
    ensure_eq!(calls.len(), 1, "hypercall exits (the ping must not exit)");
    let (nr, got) = calls[0];
    ensure_eq!(nr, 0x1234, "hypercall number");
    // Bits 63:32 of the registers are undefined after a mode switch; the
    // guest sets only the low halves.
    ensure_eq!(
        got.map(|a| a & 0xffff_ffff),
        args,
        "hypercall arguments (low halves)"
    );
    ensure_eq!(vm.read_u32(DATA_BASE)?, 0, "EAX after PACIFICA_HC_PING");
    ensure_eq!(
        vm.read_u32(DATA_BASE + 8)?,
        0x1111,
        "EBX after PACIFICA_HC_PING"
    );
    ensure_eq!(
        vm.read_u32(DATA_BASE + 0x10)?,
        RET64 as u32,
        "EAX after hypercall 0x1234"
    );
    Ok(())
}

fn main() {
    tap::run(&[test!(vmmcall_64), test!(vmmcall_32)]);
}

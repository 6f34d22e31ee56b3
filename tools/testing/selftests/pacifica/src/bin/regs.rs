// SPDX-License-Identifier: GPL-2.0

//! Registers survive the world switch in both directions: what SET_REGS
//! writes is what the guest finds, and what the guest leaves is what
//! GET_REGS reads; SET_SREGS / GET_SREGS round-trip the state the harness
//! starts guests with. A world switch that forgot R8-R15 or RBP (which
//! VMRUN does not save) shows up here first.
//!
//! Guest: `guests/regs.S`, which stores the registers it starts with at
//! DATA_BASE and then inverts all of them but RSP.

use pacifica_selftests::guest::initial_sregs;
use pacifica_selftests::guests::regs as guest;
use pacifica_selftests::layout::{DATA_BASE, STACK_TOP};
use pacifica_selftests::uapi::Regs;
use pacifica_selftests::{ensure_eq, tap, test, Context, Mode, TestResult, TestVm};

/// Flags the test starts the guest with: CF, PF, ZF, SF, OF and the
/// reserved bit 1. IF stays clear: nothing may interrupt the guest.
const RFLAGS: u64 = 0x8c7;

fn as_array(r: &Regs) -> [u64; 18] {
    [
        r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rsp, r.rbp, r.r8, r.r9, r.r10, r.r11, r.r12,
        r.r13, r.r14, r.r15, r.rip, r.rflags,
    ]
}

const NAMES: [&str; 18] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15", "rip", "rflags",
];

/// Distinct, full-width values for every register but RSP, RIP, RFLAGS.
fn test_regs() -> Regs {
    let v = |i: u64| 0x0101_0101_0101_0101u64.wrapping_mul(i) ^ 0x8000_0000_0000_0000 | i;
    Regs {
        rax: v(1),
        rbx: v(2),
        rcx: v(3),
        rdx: v(4),
        rsi: v(5),
        rdi: v(6),
        rsp: STACK_TOP - 0x100,
        rbp: v(8),
        r8: v(9),
        r9: v(10),
        r10: v(11),
        r11: v(12),
        r12: v(13),
        r13: v(14),
        r14: v(15),
        r15: v(16),
        rip: guest::REGS_SWAP64,
        rflags: RFLAGS,
    }
}

/// GET_REGS returns what SET_REGS wrote, before any run.
fn regs_round_trip() -> TestResult {
    let vm = TestVm::new(Mode::Long64, guest::IMAGE, guest::REGS_SWAP64)?;
    let regs = test_regs();
    vm.vcpu.set_regs(&regs).context("SET_REGS")?;
    ensure_eq!(vm.regs()?, regs, "GET_REGS after SET_REGS");
    Ok(())
}

/// GET_SREGS returns what SET_SREGS wrote, in both modes.
fn sregs_round_trip() -> TestResult {
    for mode in [Mode::Protected32, Mode::Long64] {
        let vm = TestVm::new(mode, guest::IMAGE, guest::REGS_SWAP64)?;
        let got = vm.vcpu.get_sregs().context("GET_SREGS")?;
        ensure_eq!(
            got,
            initial_sregs(mode),
            "GET_SREGS after SET_SREGS ({})",
            mode.name()
        );
    }
    Ok(())
}

/// Every register reaches the guest, and every register the guest changes
/// comes back.
fn regs_reach_guest_and_back() -> TestResult {
    let mut vm = TestVm::new(Mode::Long64, guest::IMAGE, guest::REGS_SWAP64)?;
    let regs = test_regs();
    vm.vcpu.set_regs(&regs).context("SET_REGS")?;
    vm.run_to_hlt()?;
    vm.ensure_no_exceptions()?;

    let sent = as_array(&regs);
    for (i, name) in NAMES.iter().enumerate().take(16) {
        let seen = vm.read_u64(DATA_BASE + 8 * i as u64)?;
        ensure_eq!(seen, sent[i], "{name} as the guest saw it");
    }
    ensure_eq!(
        vm.read_u64(DATA_BASE + 0x80)?,
        RFLAGS,
        "rflags as the guest saw it"
    );

    let back = as_array(&vm.regs()?);
    for (i, name) in NAMES.iter().enumerate().take(16) {
        let expected = if *name == "rsp" { sent[i] } else { !sent[i] };
        ensure_eq!(back[i], expected, "{name} after the guest inverted it");
    }
    ensure_eq!(back[17], RFLAGS, "rflags after the run");
    Ok(())
}

fn main() {
    tap::run(&[
        test!(regs_round_trip),
        test!(sregs_round_trip),
        test!(regs_reach_guest_and_back),
    ]);
}

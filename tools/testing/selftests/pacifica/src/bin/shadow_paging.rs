// SPDX-License-Identifier: GPL-2.0

//! Shadow paging: what it intercepts, that its memory stays bounded, and
//! that it runs beside nested paging.
//!
//! Guests: `guests/shadow.S` (`pt_switch64`, `alias_many64`) and
//! `guests/lcg.S`. Every other guest-running program also runs under shadow
//! paging (the runner sets `PACIFICA_SELFTEST_PAGING=shadow`); this one
//! compares the two modes directly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use pacifica_selftests::guest::{describe_exit, module_info};
use pacifica_selftests::guests::{lcg, shadow};
use pacifica_selftests::layout::{DATA_BASE, PORT_TEST, RAM_SIZE, STACK_TOP};
use pacifica_selftests::sys::Exit;
use pacifica_selftests::uapi::{
    PACIFICA_PAGING_NPT, PACIFICA_PAGING_SHADOW, PACIFICA_STAT_CR, PACIFICA_STAT_INVLPG,
    PACIFICA_STAT_PF, PACIFICA_STAT_USER_EXITS,
};
use pacifica_selftests::{
    diag, ensure, ensure_eq, fail, tap, test, Failure, Flow, Mode, TestResult, TestVm,
};

/// What the module lets one vCPU's shadow tables grow to (`SHADOW_PAGES_MAX`
/// in rust/mm/shadow_mmu.rs).
const SHADOW_PAGES_MAX: u64 = 2048;

/// RAM for `alias_many64`: 32 pages of 2 MiB.
const ALIAS_RAM: usize = 64 << 20;

/// Runs `pt_switch64` in `paging` mode and returns its exit counters
/// (#PF, CR, INVLPG).
fn pt_switch(paging: u64) -> Result<[u64; 3], Failure> {
    let mut vm = TestVm::with_paging(
        Mode::Long64,
        shadow::IMAGE,
        shadow::PT_SWITCH64,
        RAM_SIZE as usize,
        paging,
    )?;
    vm.run_to_hlt()?;
    ensure_eq!(vm.read_u64(DATA_BASE)?, 1, "last value the guest stored");
    ensure_eq!(
        vm.read_u64(DATA_BASE + 8)?,
        0x2000,
        "the guest's CR3 at the end"
    );
    ensure_eq!(
        vm.stat(PACIFICA_STAT_USER_EXITS)?,
        1,
        "exits to userspace (the HLT)"
    );
    vm.ensure_no_exceptions()?;
    Ok([
        vm.stat(PACIFICA_STAT_PF)?,
        vm.stat(PACIFICA_STAT_CR)?,
        vm.stat(PACIFICA_STAT_INVLPG)?,
    ])
}

/// The same guest: no paging exits under NPT, #PF, CR and INVLPG exits
/// under shadow paging, and the same results.
fn paging_exits_only_under_shadow() -> TestResult {
    let npt = pt_switch(PACIFICA_PAGING_NPT)?;
    let sh = pt_switch(PACIFICA_PAGING_SHADOW)?;
    diag!("pf/cr/invlpg exits: NPT {npt:?}, shadow {sh:?}");
    ensure_eq!(npt, [0, 0, 0], "paging exits under NPT");
    ensure!(sh[0] > 0, "shadow paging took no #PF exits");
    // Two MOV CR3 per switch, plus the final MOV from CR3.
    ensure!(
        sh[1] >= 201,
        "shadow paging took {} CR exits, expected at least 201",
        sh[1]
    );
    ensure_eq!(sh[2], 100, "INVLPG exits under shadow paging");
    Ok(())
}

/// The value `alias_many64` finds for slot `i`, 2 MiB page `j`.
fn alias_value(i: u64, j: u64) -> u64 {
    (i << 32) | (j << 8) | 0x5a
}

/// Runs `alias_many64` in `paging` mode, watching the module's page count
/// from another thread; returns the highest count seen above the start.
fn alias_many(paging: u64) -> Result<u64, Failure> {
    let before = module_info()?.pages_allocated;
    let mut vm = TestVm::with_paging(
        Mode::Long64,
        shadow::IMAGE,
        shadow::ALIAS_MANY64,
        ALIAS_RAM,
        paging,
    )?;
    let mut sum = 0u64;
    for j in 0..32u64 {
        for i in 1..=128u64 {
            let gpa = (j << 21) + 8 * i;
            vm.mem
                .write(gpa, &alias_value(i, j).to_le_bytes())
                .map_err(|e| Failure::Fail(format!("writing guest memory at {gpa:#x}: {e}")))?;
            sum = sum.wrapping_add(alias_value(i, j));
        }
    }
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, done) = (peak.clone(), done.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Ok(info) = module_info() {
                    peak.fetch_max(info.pages_allocated, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let result = vm.run_to_hlt();
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    result?;
    ensure_eq!(
        vm.read_u64(DATA_BASE)?,
        sum.wrapping_mul(2),
        "sum over every alias, twice"
    );
    vm.ensure_no_exceptions()?;
    Ok(peak.load(Ordering::Relaxed).saturating_sub(before))
}

/// A guest that maps far more linear space than the shadow tables may
/// hold still runs correctly, and the module's memory stays bounded.
fn shadow_memory_is_bounded() -> TestResult {
    let grown = alias_many(PACIFICA_PAGING_SHADOW)?;
    // The guest's aliases need 128 * (2 + 32) shadow tables; the VM's own
    // pages (VMCB, run page, nested tables of 64 MiB) come on top.
    diag!("module pages above the start while the guest ran: {grown} (shadow limit {SHADOW_PAGES_MAX})");
    ensure!(
        grown <= SHADOW_PAGES_MAX + 128,
        "the module grew by {grown} pages, more than the shadow limit of {SHADOW_PAGES_MAX} allows"
    );
    let npt = alias_many(PACIFICA_PAGING_NPT)?;
    diag!("the same guest under NPT: {npt} pages");
    Ok(())
}

/// Runs `lcg64` with `seed` to its HLT, checking each value it writes.
fn run_lcg(paging: u64, seed: u32, barrier: &Barrier) -> TestResult {
    const ROUNDS: u32 = 1000;
    let mut vm = TestVm::with_paging(
        Mode::Long64,
        lcg::IMAGE,
        lcg::LCG64,
        RAM_SIZE as usize,
        paging,
    )?;
    let mut regs = vm.regs()?;
    regs.rbx = u64::from(seed);
    regs.rcx = u64::from(ROUNDS);
    regs.rdi = DATA_BASE;
    regs.rsp = STACK_TOP;
    vm.vcpu
        .set_regs(&regs)
        .map_err(|e| Failure::Fail(format!("SET_REGS: {e}")))?;
    barrier.wait();
    let mut x = seed;
    vm.run_until(|exit| match exit {
        Exit::IoOut {
            port,
            size: 4,
            data,
        } if u64::from(*port) == PORT_TEST => {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            let got = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            if got == x {
                Flow::Continue
            } else {
                Flow::Fail(format!("wrote {got:#x}, expected {x:#x}"))
            }
        }
        Exit::Hlt => Flow::Stop(()),
        other => Flow::Fail(format!("unexpected exit {}", describe_exit(other))),
    })?;
    ensure_eq!(vm.read_u32(DATA_BASE)?, x, "final value in guest memory");
    Ok(())
}

/// A nested-paging VM and a shadow-paging VM run at the same time.
fn npt_and_shadow_at_once() -> TestResult {
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = [
        (PACIFICA_PAGING_NPT, 0x1357_9bdfu32),
        (PACIFICA_PAGING_SHADOW, 0x2468_ace0),
    ]
    .into_iter()
    .map(|(paging, seed)| {
        let barrier = barrier.clone();
        thread::spawn(move || run_lcg(paging, seed, &barrier))
    })
    .collect();
    let mut failures = Vec::new();
    for (t, name) in threads.into_iter().zip(["NPT", "shadow"]) {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(Failure::Fail(m) | Failure::Skip(m))) => failures.push(format!("{name}: {m}")),
            Err(_) => failures.push(format!("{name}: the thread panicked")),
        }
    }
    if !failures.is_empty() {
        fail!("{}", failures.join("; "));
    }
    Ok(())
}

fn main() {
    tap::run(&[
        test!(paging_exits_only_under_shadow),
        test!(shadow_memory_is_bounded).timeout(240),
        test!(npt_and_shadow_at_once).timeout(120),
    ]);
}

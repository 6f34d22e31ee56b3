// SPDX-License-Identifier: GPL-2.0

//! VMs, and vCPUs of one VM, run concurrently without mixing up state.
//!
//! Guest: `guests/lcg.S`: from a seed in EBX it computes ECX rounds of a
//! linear congruential generator, writing each value to PORT_TEST, and
//! stores the last at [RDI]. Each thread checks every value against its
//! own seed's sequence, so a register or exit delivered to the wrong
//! vCPU, or host state of one CPU leaking into another's guest, shows up
//! as a wrong value. With more threads than CPUs in the test machine, the
//! vCPU threads are also preempted and migrated between CPUs mid-run.

use std::sync::{Arc, Barrier};
use std::thread;

use std::time::Duration;

use pacifica_selftests::guest::{describe_exit, run_vcpu, setup_vcpu, GuestLog};
use pacifica_selftests::guests::lcg;
use pacifica_selftests::layout::{DATA_BASE, PORT_TEST, STACK2_TOP, STACK_TOP};
use pacifica_selftests::sys::{Exit, Vcpu};
use pacifica_selftests::{
    diag, ensure_eq, fail, tap, test, Context, Failure, Flow, Mode, TestResult, TestVm,
};

/// Rounds each guest computes: 2000 I/O exits per vCPU.
const ROUNDS: u32 = 2000;

/// How long one guest may take: its exits compete for the test machine's
/// CPUs with those of the others.
const TIMEOUT: Duration = Duration::from_secs(90);

fn step(x: u32) -> u32 {
    x.wrapping_mul(1_103_515_245).wrapping_add(12_345)
}

/// Starts `vcpu` at lcg64 with `seed`, storing its result at `result`.
fn start_lcg(vcpu: &Vcpu, seed: u32, result: u64, stack: u64) -> TestResult {
    setup_vcpu(vcpu, Mode::Long64, lcg::LCG64, stack)?;
    let mut regs = vcpu.get_regs().context("GET_REGS")?;
    regs.rbx = u64::from(seed);
    regs.rcx = u64::from(ROUNDS);
    regs.rdi = result;
    vcpu.set_regs(&regs).context("SET_REGS")
}

/// Runs `vcpu` to its HLT, checking every value it writes; returns the
/// last value.
fn run_lcg(vcpu: &mut Vcpu, seed: u32) -> Result<u32, Failure> {
    let mut x = seed;
    let mut count = 0;
    let mut log = GuestLog::default();
    run_vcpu(vcpu, &mut log, TIMEOUT, |exit| match exit {
        Exit::IoOut {
            port,
            size: 4,
            data,
        } if u64::from(*port) == PORT_TEST => {
            x = step(x);
            count += 1;
            let got = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            if got != x {
                return Flow::Fail(format!(
                    "seed {seed:#x}: value {count} is {got:#x}, expected {x:#x}"
                ));
            }
            Flow::Continue
        }
        Exit::Hlt => Flow::Stop(()),
        other => Flow::Fail(format!(
            "seed {seed:#x}: unexpected exit {}",
            describe_exit(other)
        )),
    })?;
    ensure_eq!(count, ROUNDS, "values written by seed {seed:#x}");
    Ok(x)
}

/// `n` threads, each with its own VM, all started together.
fn vms_in_parallel(n: usize) -> TestResult {
    let barrier = Arc::new(Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || -> TestResult {
                let seed = 0x1000_0001u32.wrapping_mul(i as u32 + 1);
                let mut vm = TestVm::new(Mode::Long64, lcg::IMAGE, lcg::LCG64)
                    .map_err(|e| e.prefixed(format!("VM {i}")))?;
                start_lcg(&vm.vcpu, seed, DATA_BASE, STACK_TOP)?;
                barrier.wait();
                let last =
                    run_lcg(&mut vm.vcpu, seed).map_err(|e| e.prefixed(format!("VM {i}")))?;
                ensure_eq!(
                    vm.read_u32(DATA_BASE)?,
                    last,
                    "VM {i}: result in guest memory"
                );
                Ok(())
            })
        })
        .collect();
    let mut failures = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(Failure::Fail(m) | Failure::Skip(m))) => failures.push(m),
            Err(_) => failures.push("a thread panicked".into()),
        }
    }
    if !failures.is_empty() {
        fail!("{}", failures.join("\n"));
    }
    diag!("{n} VMs x {ROUNDS} exits each: all values right");
    Ok(())
}

/// Two threads, two VMs.
fn two_vms_in_parallel() -> TestResult {
    vms_in_parallel(2)
}

/// Four threads, four VMs: more vCPU threads than the test machine has
/// CPUs, so they are preempted and migrated while in the guest.
fn four_vms_in_parallel() -> TestResult {
    vms_in_parallel(4)
}

/// One VM, two vCPUs in two threads, sharing guest memory.
fn two_vcpus_one_vm() -> TestResult {
    let mut vm = TestVm::new(Mode::Long64, lcg::IMAGE, lcg::LCG64)?;
    let vcpu1 = vm.vm.create_vcpu(1).context("CREATE_VCPU 1")?;
    let seeds = [0x1234_5678u32, 0x9abc_def1];
    start_lcg(&vm.vcpu, seeds[0], DATA_BASE, STACK_TOP)?;
    start_lcg(&vcpu1, seeds[1], DATA_BASE + 8, STACK2_TOP)?;
    let barrier = Arc::new(Barrier::new(2));
    let b = barrier.clone();
    let other = thread::spawn(move || -> Result<u32, Failure> {
        let mut vcpu1 = vcpu1;
        b.wait();
        run_lcg(&mut vcpu1, seeds[1]).map_err(|e| e.prefixed("vCPU 1"))
    });
    barrier.wait();
    let mine = run_lcg(&mut vm.vcpu, seeds[0]).map_err(|e| e.prefixed("vCPU 0"));
    let theirs = other
        .join()
        .map_err(|_| Failure::Fail("vCPU 1's thread panicked".into()))?;
    let (mine, theirs) = (mine?, theirs?);
    ensure_eq!(
        vm.read_u32(DATA_BASE)?,
        mine,
        "vCPU 0's result in guest memory"
    );
    ensure_eq!(
        vm.read_u32(DATA_BASE + 8)?,
        theirs,
        "vCPU 1's result in guest memory"
    );
    Ok(())
}

fn main() {
    tap::run(&[
        test!(two_vms_in_parallel).timeout(120),
        test!(four_vms_in_parallel).timeout(180),
        test!(two_vcpus_one_vm).timeout(120),
    ]);
}

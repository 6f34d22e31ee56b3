// SPDX-License-Identifier: GPL-2.0

//! The nanobenchmark guest runs to its end, and nested paging keeps the
//! MMU-heavy benchmarks free of exits.
//!
//! `pacifica bench` in miniature (Documentation/benchmarks.rst): the
//! benchmark guest (`tools/guests/bench64.S`, built into the `pacifica`
//! library) runs once with a few operations per benchmark on
//! pacifica-npt and on pacifica-shadow, through the same code as
//! `pacifica bench`. Every benchmark must report a result, and under
//! nested paging pgfault, ptemod, syscall, call/ret, divzero and the
//! context-switch tests must take zero exits per operation (host
//! interrupts left out), while vmmcall (PACIFICA_HC_PING) is answered in
//! the kernel without reaching userspace. Shadow paging is a SKIP when
//! pacifica.ko does not have it. The KVM configurations are left to
//! `make bench`, which swaps the modules.

use std::io;
use std::sync::OnceLock;

use pacifica::bench::{self, BenchError, ConfigResult, BENCHMARKS};
use pacifica::guests::BENCH64_ELF;
use pacifica_selftests::{diag, fail, skip, tap, test, TestResult};

/// A few operations per benchmark: enough for a per-operation exit count
/// (a zero-exit benchmark with even one exit per operation shows).
const SCALE: f64 = 0.02;

/// One repetition's results per configuration, run once.
fn results(config: &'static str) -> &'static Result<ConfigResult, String> {
    static NPT: OnceLock<Result<ConfigResult, String>> = OnceLock::new();
    static SHADOW: OnceLock<Result<ConfigResult, String>> = OnceLock::new();
    let cell = if config == "pacifica-npt" {
        &NPT
    } else {
        &SHADOW
    };
    cell.get_or_init(|| {
        bench::run_config(BENCH64_ELF, config, SCALE, 1, None, &mut io::sink()).map_err(|e| match e
        {
            BenchError::Vmm(v) => v.to_string(),
            other => other.to_string(),
        })
    })
}

/// Every benchmark of `config` reported cycles for its operations.
fn every_benchmark_completes(config: &'static str) -> TestResult {
    let r = match results(config) {
        Ok(r) => r,
        Err(e) if e.contains("shadow paging is not supported") => skip!("{e}"),
        Err(e) => fail!("{config}: {e}"),
    };
    if r.benchmarks.len() != BENCHMARKS.len() {
        fail!(
            "{config}: {} of {} benchmarks reported",
            r.benchmarks.len(),
            BENCHMARKS.len()
        );
    }
    for b in &r.benchmarks {
        let Some(cycles) = b.cycles_per_op else {
            fail!("{config}: {} has no result", b.name);
        };
        let exits = b.exits_per_op.map_or(f64::NAN, |s| s.median);
        diag!(
            "{config} {}: {} ops, {:.0} cycles/op, {exits:.3} exits/op",
            b.name,
            b.ops,
            cycles.median
        );
        if b.runs.iter().any(|s| s.cycles == 0) {
            fail!("{config}: {} measured zero cycles", b.name);
        }
    }
    Ok(())
}

fn bench_completes_on_pacifica_npt() -> TestResult {
    every_benchmark_completes("pacifica-npt")
}

fn bench_completes_on_pacifica_shadow() -> TestResult {
    every_benchmark_completes("pacifica-shadow")
}

/// The nested-paging target: zero exits per operation.
fn npt_mmu_benchmarks_take_no_exits() -> TestResult {
    let Ok(r) = results("pacifica-npt") else {
        fail!("pacifica-npt did not run");
    };
    let mut bad = Vec::new();
    for want in BENCHMARKS.iter().filter(|b| b.npt_zero_exits) {
        match r.benchmarks.iter().find(|b| b.name == want.name) {
            Some(b) => {
                let exits = b.exits_per_op.map_or(f64::NAN, |s| s.median);
                if exits != 0.0 {
                    bad.push(format!(
                        "{} {exits:.3} ({:?})",
                        b.name, b.runs[0].hv_counters
                    ));
                }
            }
            None => bad.push(format!("{} missing", want.name)),
        }
    }
    if !bad.is_empty() {
        fail!("exits per operation under NPT: {}", bad.join("; "));
    }
    Ok(())
}

/// PACIFICA_HC_PING never reaches the VMM.
fn npt_vmmcall_stays_in_the_kernel() -> TestResult {
    let Ok(r) = results("pacifica-npt") else {
        fail!("pacifica-npt did not run");
    };
    let Some(b) = r.benchmarks.iter().find(|b| b.name == "vmmcall") else {
        fail!("no vmmcall result");
    };
    let user = b.user_exits_per_op.map_or(f64::NAN, |s| s.median);
    if user != 0.0 {
        fail!("vmmcall: {user} exits per operation reached the VMM (want 0)");
    }
    Ok(())
}

fn main() {
    tap::run(&[
        test!(bench_completes_on_pacifica_npt),
        test!(npt_mmu_benchmarks_take_no_exits),
        test!(npt_vmmcall_stays_in_the_kernel),
        test!(bench_completes_on_pacifica_shadow),
    ]);
}

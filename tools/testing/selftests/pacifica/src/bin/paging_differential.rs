// SPDX-License-Identifier: GPL-2.0

//! The paging guests print the same thing on every correct hypervisor.
//!
//! Each differential guest (`modes.elf`, `paging32.elf`, `paging64.elf`, and
//! the demo guests `hello.elf` and `hello64.elf`, in
//! `/usr/share/pacifica/guests/`, from `tools/guests/`) prints what the
//! architecture guarantees about its page tables and ends through port
//! 0xf4. It runs on the four configurations of
//! [`hypervisors`](pacifica_selftests::hypervisors) (Pacifica and KVM, each
//! with nested and with shadow paging), and every configuration must give
//! the same serial output and exit status as the first one that ran
//! (pacifica-npt, normally). The last test checks that pacifica.ko is back
//! after the KVM runs.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use pacifica_selftests::hypervisors::{
    first_difference, run_everywhere, run_pacifica, Config, Outcome, Run, CONFIGS, GUEST_DIR,
};
use pacifica_selftests::{diag, fail, tap, test, Failure, TestResult};

/// The differential guests.
const GUESTS: [&str; 5] = ["modes.elf", "paging32.elf", "paging64.elf", "hello.elf", "hello64.elf"];
/// A guest that takes longer than this is stopped and fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// After this long, configurations not started yet fail, so the
/// whole program stays within run-selftests' limit and pacifica.ko is
/// always reloaded in time.
const BUDGET: Duration = Duration::from_secs(180);

/// Outcomes, indexed by configuration then guest; filled by the first test.
static RESULTS: Mutex<Option<Vec<Vec<Outcome>>>> = Mutex::new(None);

/// Runs everything, with the module juggling.
fn every_configuration_runs() -> TestResult {
    let (results, restored) = run_everywhere(
        BUDGET,
        |config| {
            GUESTS
                .iter()
                .map(|guest| run_pacifica(config, &[Path::new(GUEST_DIR).join(guest)], RUN_TIMEOUT))
                .collect::<Vec<_>>()
        },
        |_, reason| vec![Outcome::Broken(reason); GUESTS.len()],
    );
    for (c, config) in CONFIGS.iter().enumerate() {
        for (g, guest) in GUESTS.iter().enumerate() {
            diag!("{} {guest}: {}", config.name(), results[c][g].summary());
        }
    }
    *RESULTS.lock().unwrap_or_else(|e| e.into_inner()) = Some(results);
    restored.map_err(|e| Failure::Fail(format!("restoring pacifica.ko: {e}")))
}

/// The first configuration whose run of guest `g` completed, and its run.
fn reference(results: &[Vec<Outcome>], g: usize) -> Option<(Config, &Run)> {
    CONFIGS.iter().find_map(|c| match &results[c.index()][g] {
        Outcome::Ran(r) => Some((*c, r)),
        _ => None,
    })
}

/// Guest `g` on `config` matches the reference.
fn compare(config: Config, g: usize) -> TestResult {
    let guard = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(results) = guard.as_ref() else {
        fail!("the configurations did not run");
    };
    let run = match &results[config.index()][g] {
        Outcome::Ran(r) => r,
        Outcome::NotRun(why) => fail!("{} on {}: {why}", GUESTS[g], config.name()),
        Outcome::Broken(why) => fail!("{} on {}: {why}", GUESTS[g], config.name()),
    };
    let Some((ref_config, reference)) = reference(results, g) else {
        fail!("no configuration ran {}", GUESTS[g]);
    };
    if ref_config == config {
        // The reference itself: the guest must have reached its end.
        if run.status != Some(0) {
            diag!("output:\n{}\nstderr: {}", run.output, run.stderr);
            fail!(
                "{} on {} ended with status {:?}, expected 0",
                GUESTS[g],
                config.name(),
                run.status
            );
        }
        return Ok(());
    }
    if run.status != reference.status || run.output != reference.output {
        diag!("{}:\n{}", ref_config.name(), reference.output);
        diag!("{}:\n{}", config.name(), run.output);
        if !run.stderr.is_empty() {
            diag!("stderr: {}", run.stderr.trim());
        }
        fail!(
            "{} differs between {} (status {:?}) and {} (status {:?}): {}",
            GUESTS[g],
            ref_config.name(),
            reference.status,
            config.name(),
            run.status,
            first_difference(&reference.output, &run.output)
        );
    }
    Ok(())
}

macro_rules! comparisons {
    ($($name:ident => $config:ident, $guest:expr;)*) => {
        $(fn $name() -> TestResult { compare(Config::$config, $guest) })*
        const COMPARISONS: &[tap::Test] = &[$(test!($name)),*];
    };
}

comparisons! {
    modes_on_pacifica_npt => PacificaNpt, 0;
    modes_on_pacifica_shadow => PacificaShadow, 0;
    modes_on_kvm_npt => KvmNpt, 0;
    modes_on_kvm_shadow => KvmShadow, 0;
    paging32_on_pacifica_npt => PacificaNpt, 1;
    paging32_on_pacifica_shadow => PacificaShadow, 1;
    paging32_on_kvm_npt => KvmNpt, 1;
    paging32_on_kvm_shadow => KvmShadow, 1;
    paging64_on_pacifica_npt => PacificaNpt, 2;
    paging64_on_pacifica_shadow => PacificaShadow, 2;
    paging64_on_kvm_npt => KvmNpt, 2;
    paging64_on_kvm_shadow => KvmShadow, 2;
    hello_on_pacifica_npt => PacificaNpt, 3;
    hello_on_pacifica_shadow => PacificaShadow, 3;
    hello_on_kvm_npt => KvmNpt, 3;
    hello_on_kvm_shadow => KvmShadow, 3;
    hello64_on_pacifica_npt => PacificaNpt, 4;
    hello64_on_pacifica_shadow => PacificaShadow, 4;
    hello64_on_kvm_npt => KvmNpt, 4;
    hello64_on_kvm_shadow => KvmShadow, 4;
}

/// pacifica.ko is loaded again for the selftests that follow.
fn pacifica_is_back() -> TestResult {
    if !Path::new(pacifica_selftests::sys::DEVICE_PATH).exists() {
        fail!(
            "{} is missing after the KVM runs",
            pacifica_selftests::sys::DEVICE_PATH
        );
    }
    Ok(())
}

fn main() {
    let mut tests = vec![test!(every_configuration_runs).timeout(BUDGET.as_secs() + 90)];
    tests.extend_from_slice(COMPARISONS);
    tests.push(test!(pacifica_is_back));
    tap::run(&tests);
}

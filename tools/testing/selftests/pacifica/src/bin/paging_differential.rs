// SPDX-License-Identifier: GPL-2.0

//! The paging guests print the same thing on every correct hypervisor.
//!
//! Each differential guest (`modes.elf`, `paging32.elf`, `paging64.elf`, and
//! the demo guests `hello.elf` and `hello64.elf`, in
//! `/usr/share/pacifica/guests/`, from `tools/guests/`) prints what the
//! architecture guarantees about its page tables and ends through port
//! 0xf4. It runs, through the `pacifica` command, on four configurations:
//!
//! | configuration   | command                                                |
//! |-----------------|--------------------------------------------------------|
//! | pacifica-npt    | `pacifica run --paging npt`                            |
//! | pacifica-shadow | `pacifica run --paging shadow`                         |
//! | kvm-npt         | `pacifica run --backend kvm --paging npt`, kvm_amd npt=1 |
//! | kvm-shadow      | `pacifica run --backend kvm --paging shadow`, kvm_amd npt=0 |
//!
//! and every configuration that ran must give the same serial output and
//! exit status as the first one that ran (pacifica-npt, normally). A
//! configuration that cannot run here fails with the reason (a KVM that
//! cannot be loaded or cannot run a guest, say): a comparison that did not
//! happen is no pass. KVM in L1 needs L1's TSC rate, which run-l1 passes
//! on every boot (tools/qemu/tsc-khz.c).
//!
//! pacifica.ko and kvm_amd cannot both have SVM on, so the first test
//! unloads pacifica.ko, loads kvm_amd with npt=1, then with npt=0, and
//! always ends by unloading KVM and loading pacifica.ko again (from
//! `/lib/modules/pacifica.ko`), whatever failed on the way, so that the
//! selftests after this one still have the module. The last test checks
//! that it is back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use pacifica_selftests::{diag, fail, tap, test, Failure, TestResult};

/// Where the guest images are installed in the test machine.
const GUEST_DIR: &str = "/usr/share/pacifica/guests";
/// The differential guests.
const GUESTS: [&str; 5] = ["modes.elf", "paging32.elf", "paging64.elf", "hello.elf", "hello64.elf"];
/// The module file the runner loads at boot.
const PACIFICA_KO: &str = "/lib/modules/pacifica.ko";
/// A guest that takes longer than this is stopped and fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// After this long, configurations not started yet fail, so the
/// whole program stays within run-selftests' limit and pacifica.ko is
/// always reloaded in time.
const BUDGET: Duration = Duration::from_secs(180);

/// The four configurations, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Config {
    PacificaNpt,
    PacificaShadow,
    KvmNpt,
    KvmShadow,
}

const CONFIGS: [Config; 4] = [
    Config::PacificaNpt,
    Config::PacificaShadow,
    Config::KvmNpt,
    Config::KvmShadow,
];

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::PacificaNpt => "pacifica-npt",
            Config::PacificaShadow => "pacifica-shadow",
            Config::KvmNpt => "kvm-npt",
            Config::KvmShadow => "kvm-shadow",
        }
    }

    /// The `pacifica run` options.
    fn args(self) -> &'static [&'static str] {
        match self {
            Config::PacificaNpt => &["--paging", "npt"],
            Config::PacificaShadow => &["--paging", "shadow"],
            Config::KvmNpt => &["--backend", "kvm", "--paging", "npt"],
            Config::KvmShadow => &["--backend", "kvm", "--paging", "shadow"],
        }
    }

    fn index(self) -> usize {
        CONFIGS.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// What one guest did on one configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    /// The serial output (pacifica's stdout).
    output: String,
    /// The exit status (`None`: killed by a signal or the timeout).
    status: Option<i32>,
    /// pacifica's stderr, for diagnostics only.
    stderr: String,
}

/// The result of a guest on a configuration.
#[derive(Debug, Clone)]
enum Outcome {
    Ran(Run),
    /// Not run (yet): a failure if it stays so.
    NotRun(String),
    /// The VMM could not even be started, or the run timed out.
    Broken(String),
}

/// Outcomes, indexed by configuration then guest; filled by the first test.
static RESULTS: Mutex<Option<Vec<Vec<Outcome>>>> = Mutex::new(None);

/// The `pacifica` command: from PATH, as run-l1 installs it.
fn pacifica() -> PathBuf {
    std::env::var_os("PACIFICA").map_or_else(|| PathBuf::from("pacifica"), PathBuf::from)
}

/// Runs `pacifica run ARGS IMAGE` with a timeout.
fn run_guest(config: Config, image: &Path) -> Outcome {
    let mut child = match Command::new(pacifica())
        .arg("run")
        .args(config.args())
        .arg(image)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Outcome::Broken(format!("cannot start {:?}: {e}", pacifica())),
    };
    // The guests print a few KiB: the pipes cannot fill up before exit,
    // so reading after the wait is safe.
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > RUN_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Broken(format!(
                    "still running after {}s, killed",
                    RUN_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Outcome::Broken(format!("waiting for pacifica: {e}")),
        }
    };
    let mut output = String::new();
    let mut stderr = String::new();
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut output);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    Outcome::Ran(Run {
        output,
        status: status.code(),
        stderr,
    })
}

/// Runs a module command; the error says what it printed.
fn module_cmd(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd} {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn module_loaded(name: &str) -> bool {
    std::fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.split_whitespace().next() == Some(name)))
        .unwrap_or(false)
}

/// Unloads KVM and loads pacifica.ko again. Run on every path out of the
/// KVM part, however it ended.
struct Restore;

impl Restore {
    fn restore(&self) -> Result<(), String> {
        for module in ["kvm_amd", "kvm"] {
            if module_loaded(module) {
                module_cmd("rmmod", &[module])?;
            }
        }
        if !module_loaded("pacifica") {
            let ko = std::env::var("PACIFICA_KO").unwrap_or_else(|_| PACIFICA_KO.to_owned());
            module_cmd("insmod", &[&ko])?;
        }
        Ok(())
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            diag!("restoring pacifica.ko: {e}");
        }
    }
}

/// Runs every guest on `config`, or fails them all with `reason`.
fn run_all(config: Config, results: &mut [Vec<Outcome>], broken: Option<String>) {
    for (g, guest) in GUESTS.iter().enumerate() {
        results[config.index()][g] = match &broken {
            Some(reason) => Outcome::Broken(reason.clone()),
            None => run_guest(config, &Path::new(GUEST_DIR).join(guest)),
        };
    }
}

/// Loads kvm_amd with `npt` and checks that KVM can run a guest at all
/// (hello.elf); the error says why not.
fn prepare_kvm(npt: u8, config: Config) -> Result<(), String> {
    for module in ["kvm_amd", "kvm"] {
        if module_loaded(module) {
            module_cmd("rmmod", &[module])?;
        }
    }
    module_cmd("modprobe", &["kvm_amd", &format!("npt={npt}")])
        .map_err(|e| format!("kvm_amd cannot be loaded: {e}"))?;
    if !Path::new("/dev/kvm").exists() {
        return Err("kvm_amd loaded but /dev/kvm is missing".into());
    }
    match run_guest(config, &Path::new(GUEST_DIR).join("hello.elf")) {
        Outcome::Ran(r) if r.status == Some(0) => Ok(()),
        Outcome::Ran(r) => Err(format!(
            "KVM cannot run hello.elf (status {:?}): {}",
            r.status,
            r.stderr.trim()
        )),
        Outcome::Broken(why) | Outcome::NotRun(why) => Err(format!("KVM cannot run hello.elf: {why}")),
    }
}

/// Runs everything, with the module juggling.
fn every_configuration_runs() -> TestResult {
    let start = Instant::now();
    let mut results = vec![vec![Outcome::NotRun("not run".into()); GUESTS.len()]; CONFIGS.len()];

    run_all(Config::PacificaNpt, &mut results, None);
    run_all(Config::PacificaShadow, &mut results, None);

    let restore = Restore;
    let kvm_reason = match module_cmd("rmmod", &["pacifica"]) {
        Ok(()) => None,
        Err(e) => Some(format!("pacifica.ko cannot be unloaded for KVM: {e}")),
    };
    for (config, npt) in [(Config::KvmNpt, 1), (Config::KvmShadow, 0)] {
        let reason = kvm_reason.clone().or_else(|| {
            if start.elapsed() > BUDGET {
                return Some(format!(
                    "out of time ({}s budget) before this configuration",
                    BUDGET.as_secs()
                ));
            }
            prepare_kvm(npt, config).err()
        });
        if let Some(reason) = &reason {
            diag!("{}: {reason}", config.name());
        }
        run_all(config, &mut results, reason);
    }
    let restored = restore.restore();
    std::mem::forget(restore);

    for (c, config) in CONFIGS.iter().enumerate() {
        for (g, guest) in GUESTS.iter().enumerate() {
            let what = match &results[c][g] {
                Outcome::Ran(r) => format!("status {:?}, {} bytes", r.status, r.output.len()),
                Outcome::NotRun(why) => format!("not run: {why}"),
                Outcome::Broken(why) => format!("broken: {why}"),
            };
            diag!("{} {guest}: {what}", config.name());
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

/// Prints where two outputs first differ.
fn first_difference(a: &str, b: &str) -> String {
    for (n, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}: {x:?} vs {y:?}", n + 1);
        }
    }
    format!(
        "one output is a prefix of the other ({} vs {} lines)",
        a.lines().count(),
        b.lines().count()
    )
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

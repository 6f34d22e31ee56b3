// SPDX-License-Identifier: GPL-2.0

//! One guest on the four hypervisor configurations, through the `pacifica`
//! command, for the tests that compare them (`paging_differential`,
//! `linux_guest`):
//!
//! | configuration   | command                                                  |
//! |-----------------|----------------------------------------------------------|
//! | pacifica-npt    | `pacifica run --paging npt`                              |
//! | pacifica-shadow | `pacifica run --paging shadow`                           |
//! | kvm-npt         | `pacifica run --backend kvm --paging npt`, kvm_amd npt=1 |
//! | kvm-shadow      | `pacifica run --backend kvm --paging shadow`, kvm_amd npt=0 |
//!
//! pacifica.ko and kvm_amd cannot both have SVM on, so [`run_everywhere`]
//! runs the Pacifica configurations, unloads pacifica.ko, loads kvm_amd
//! with npt=1, then with npt=0, and always ends by unloading KVM and
//! loading pacifica.ko again (from `/lib/modules/pacifica.ko`), whatever
//! failed on the way, so that the selftests after it still have the
//! module. A configuration that cannot run here gets the reason (a KVM
//! that cannot be loaded or cannot run a guest, say): a comparison that did
//! not happen is no pass. KVM in L1 needs L1's TSC rate, which run-l1
//! passes on every boot (tools/qemu/tsc-khz.c).

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::diag;

/// Where the guest images are installed in the test machine.
pub const GUEST_DIR: &str = "/usr/share/pacifica/guests";
/// The module file the runner loads at boot.
const PACIFICA_KO: &str = "/lib/modules/pacifica.ko";

/// A hypervisor configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// Pacifica with nested paging.
    PacificaNpt,
    /// Pacifica with shadow paging.
    PacificaShadow,
    /// KVM (kvm_amd npt=1) through the same VMM.
    KvmNpt,
    /// KVM (kvm_amd npt=0) through the same VMM.
    KvmShadow,
}

/// The four configurations, in the order they run.
pub const CONFIGS: [Config; 4] = [
    Config::PacificaNpt,
    Config::PacificaShadow,
    Config::KvmNpt,
    Config::KvmShadow,
];

impl Config {
    /// Its name in test output.
    pub fn name(self) -> &'static str {
        match self {
            Config::PacificaNpt => "pacifica-npt",
            Config::PacificaShadow => "pacifica-shadow",
            Config::KvmNpt => "kvm-npt",
            Config::KvmShadow => "kvm-shadow",
        }
    }

    /// The `pacifica run` options.
    pub fn args(self) -> &'static [&'static str] {
        match self {
            Config::PacificaNpt => &["--paging", "npt"],
            Config::PacificaShadow => &["--paging", "shadow"],
            Config::KvmNpt => &["--backend", "kvm", "--paging", "npt"],
            Config::KvmShadow => &["--backend", "kvm", "--paging", "shadow"],
        }
    }

    /// Its position in [`CONFIGS`].
    pub fn index(self) -> usize {
        CONFIGS.iter().position(|c| *c == self).unwrap_or(0)
    }
}

/// What one run of `pacifica` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The serial output (pacifica's stdout).
    pub output: String,
    /// Each complete line of the output with when it arrived, counted from
    /// the start of the run.
    pub lines: Vec<(Duration, String)>,
    /// The exit status (`None`: killed by a signal).
    pub status: Option<i32>,
    /// pacifica's stderr, for diagnostics only.
    pub stderr: String,
}

impl Run {
    /// When the first line starting with `prefix` arrived, and the rest
    /// of that line.
    pub fn time_of(&self, prefix: &str) -> Option<(Duration, &str)> {
        self.lines.iter().find_map(|(t, l)| l.strip_prefix(prefix).map(|rest| (*t, rest)))
    }
}

/// The result of a guest on a configuration.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It ran to an exit.
    Ran(Run),
    /// Not run (yet): a failure if it stays so.
    NotRun(String),
    /// The VMM could not even be started, or the run timed out.
    Broken(String),
}

impl Outcome {
    /// One line for the test's diagnostics.
    pub fn summary(&self) -> String {
        match self {
            Outcome::Ran(r) => format!("status {:?}, {} bytes", r.status, r.output.len()),
            Outcome::NotRun(why) => format!("not run: {why}"),
            Outcome::Broken(why) => format!("broken: {why}"),
        }
    }
}

/// The `pacifica` command: from PATH, as run-l1 installs it.
fn pacifica() -> PathBuf {
    std::env::var_os("PACIFICA").map_or_else(|| PathBuf::from("pacifica"), PathBuf::from)
}

/// Runs `pacifica run CONFIG-ARGS ARGS` until it exits or `timeout` passes.
pub fn run_pacifica<S: AsRef<OsStr>>(config: Config, args: &[S], timeout: Duration) -> Outcome {
    run_pacifica_with_stdin(config, args, timeout, Stdio::null())
}

/// [`run_pacifica`] with `stdin` as pacifica's standard input.
pub fn run_pacifica_with_stdin<S: AsRef<OsStr>>(config: Config, args: &[S], timeout: Duration, stdin: Stdio) -> Outcome {
    let start = Instant::now();
    let mut child = match Command::new(pacifica())
        .arg("run")
        .args(config.args())
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Outcome::Broken(format!("cannot start {:?}: {e}", pacifica())),
    };
    // Both pipes are drained as the guest writes, so that a guest that
    // prints a lot cannot block on a full pipe, and each line is stamped.
    let stdout = child.stdout.take().map(|out| {
        std::thread::spawn(move || {
            let mut reader = BufReader::new(out);
            let (mut bytes, mut lines) = (Vec::new(), Vec::new());
            let mut line = Vec::new();
            while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                bytes.extend_from_slice(&line);
                if line.ends_with(b"\n") {
                    let text = String::from_utf8_lossy(&line);
                    lines.push((start.elapsed(), text.trim_end_matches(['\r', '\n']).to_owned()));
                }
                line.clear();
            }
            (String::from_utf8_lossy(&bytes).into_owned(), lines)
        })
    });
    let stderr = child.stderr.take().map(|mut err| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        })
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("still running after {}s, killed", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("waiting for pacifica: {e}"));
            }
        }
    };
    let (output, lines) = stdout.and_then(|t| t.join().ok()).unwrap_or_default();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    match status {
        Ok(status) => Outcome::Ran(Run { output, lines, status: status.code(), stderr }),
        Err(why) => {
            diag!("output before it was stopped:\n{output}\nstderr: {}", stderr.trim());
            Outcome::Broken(why)
        }
    }
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
    let hello = Path::new(GUEST_DIR).join("hello.elf");
    match run_pacifica(config, &[hello], Duration::from_secs(30)) {
        Outcome::Ran(r) if r.status == Some(0) => Ok(()),
        Outcome::Ran(r) => Err(format!(
            "KVM cannot run hello.elf (status {:?}): {}",
            r.status,
            r.stderr.trim()
        )),
        Outcome::Broken(why) | Outcome::NotRun(why) => Err(format!("KVM cannot run hello.elf: {why}")),
    }
}

/// Calls `run` on each configuration in [`CONFIGS`] order with the right
/// module loaded, or `broken` with the reason it cannot run (no KVM, or
/// `budget` spent before it started), and leaves pacifica.ko loaded. The
/// error says why pacifica.ko could not be loaded again.
pub fn run_everywhere<T>(
    budget: Duration,
    mut run: impl FnMut(Config) -> T,
    broken: impl Fn(Config, String) -> T,
) -> (Vec<T>, Result<(), String>) {
    let start = Instant::now();
    let mut results = vec![run(Config::PacificaNpt), run(Config::PacificaShadow)];

    let restore = Restore;
    let kvm_reason = match module_cmd("rmmod", &["pacifica"]) {
        Ok(()) => None,
        Err(e) => Some(format!("pacifica.ko cannot be unloaded for KVM: {e}")),
    };
    for (config, npt) in [(Config::KvmNpt, 1), (Config::KvmShadow, 0)] {
        let reason = kvm_reason.clone().or_else(|| {
            if start.elapsed() > budget {
                return Some(format!(
                    "out of time ({}s budget) before this configuration",
                    budget.as_secs()
                ));
            }
            prepare_kvm(npt, config).err()
        });
        results.push(match reason {
            Some(reason) => {
                diag!("{}: {reason}", config.name());
                broken(config, reason)
            }
            None => run(config),
        });
    }
    let restored = restore.restore();
    std::mem::forget(restore);
    (results, restored)
}

/// Where two outputs first differ.
pub fn first_difference(a: &str, b: &str) -> String {
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

// SPDX-License-Identifier: GPL-2.0

//! A Linux guest boots to userspace and passes its check script on every
//! hypervisor configuration, with the same results on all of them.
//!
//! The guest is the one `make linux-guest` builds (tools/linux-guest/),
//! installed in `/usr/share/pacifica/linux/`. With `pacifica.check` on its
//! command line its init runs `/check` and ends the run with the script's
//! status through the exit port. The script prints `RESULT` lines (uname,
//! the fork/exec count, the page-fault stress, a file's checksum), which
//! must be the same on every configuration, and `TIME sleep-start` and
//! `TIME sleep-end` with the guest's uptime around a `sleep 2`, which this
//! program times on the host as the lines arrive: the sleep must last 2 s
//! of guest time, and the host's clock must agree with the guest's within
//! 10%. It checks its own /proc/interrupts (the local timer and the
//! serial line's IRQ 4) and ends with status 0 only when everything passed.
//!
//! The bzImage runs on Pacifica and KVM, each with nested and with shadow
//! paging ([`hypervisors`](pacifica_selftests::hypervisors)); the
//! uncompressed vmlinux boots through its PVH entry once, and the bzImage
//! once more on the PIC platform (`--platform pic`), both on pacifica-npt.
//! The last tests give the VMM bad kernels, initrds, command lines and
//! memory sizes, which it must refuse with status 1 and a message.

use std::ffi::OsString;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use pacifica_selftests::hypervisors::{run_everywhere, run_pacifica, Config, Outcome, Run, CONFIGS};
use pacifica_selftests::{diag, fail, tap, test, Failure, TestResult};

/// Where `make linux-guest` installs the guest in the test machine.
const LINUX_DIR: &str = "/usr/share/pacifica/linux";
/// The command line: the console, a short boot log, a panic ends the
/// run, the TSC trusted (L1 runs under TCG, whose timer interrupts come
/// late enough for the guest's clocksource watchdog to distrust a TSC that
/// is right), and the check.
const CMDLINE: &str = "console=ttyS0 loglevel=4 panic=-1 tsc=reliable pacifica.check";
/// A boot and check that takes longer than this is stopped and fails
/// (shadow paging takes about a minute in L1, nested paging ten seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(150);
/// After this long, configurations not started yet fail, so that the
/// program stays within run-selftests' limit.
const BUDGET: Duration = Duration::from_secs(240);
/// What the guest sleeps between its two TIME lines.
const SLEEP: Duration = Duration::from_secs(2);

/// How often a KVM run is tried when the guest hits [`KVM_L1_CRASH`].
const KVM_TRIES: usize = 3;
/// The oops KVM's guests hit now and then in L1, never Pacifica's: an
/// IRET that page-faults again and again on the entry trampoline until
/// its stack overflows (Documentation/testing.rst, "The Linux guest").
const KVM_L1_CRASH: &str = "BUG: ENTRY_TRAMPOLINE stack guard page was hit";

/// The bzImage's outcome on each configuration; filled by the first test.
static RESULTS: Mutex<Option<Vec<Outcome>>> = Mutex::new(None);

/// `--kernel IMAGE --initrd ... --cmdline CMDLINE` for the guest's `image`.
fn linux_args(image: &str, cmdline: &str) -> Vec<OsString> {
    let dir = Path::new(LINUX_DIR);
    vec![
        "--kernel".into(),
        dir.join(image).into(),
        "--initrd".into(),
        dir.join("initrd.cpio.gz").into(),
        "--cmdline".into(),
        cmdline.into(),
    ]
}

/// Boots `image` (bzImage or vmlinux) on `config` with the check, and
/// `extra` options.
fn boot(config: Config, image: &str, extra: &[&str]) -> Outcome {
    let mut args = linux_args(image, CMDLINE);
    args.extend(extra.iter().map(OsString::from));
    run_pacifica(config, &args, RUN_TIMEOUT)
}

/// The lines every configuration must print alike.
fn results_of(run: &Run) -> Vec<&str> {
    run.lines.iter().map(|(_, l)| l.as_str()).filter(|l| l.starts_with("RESULT ")).collect()
}

/// Everything one run must show by itself: status 0, the check passed,
/// and the sleep took 2 s of host time.
fn check_run(what: &str, run: &Run) -> TestResult {
    let failed: Vec<&str> = run.lines.iter().map(|(_, l)| l.as_str()).filter(|l| l.contains("CHECK FAILED")).collect();
    if run.status != Some(0) || !run.lines.iter().any(|(_, l)| l == "CHECK OK") {
        diag!("output:\n{}\nstderr: {}", run.output, run.stderr.trim());
        fail!("{what}: status {:?}, failed checks: {failed:?}", run.status);
    }
    let (Some((start, up0)), Some((end, up1))) = (run.time_of("TIME sleep-start "), run.time_of("TIME sleep-end ")) else {
        fail!("{what}: the TIME lines are missing");
    };
    let (Ok(up0), Ok(up1)) = (up0.trim().parse::<f64>(), up1.trim().parse::<f64>()) else {
        fail!("{what}: the TIME lines carry no uptime: {up0:?}, {up1:?}");
    };
    // The guest's clock between the lines, and the host's.
    let (guest, host) = (up1 - up0, end.saturating_sub(start).as_secs_f64());
    diag!("{what}: `sleep 2` took {guest:.2}s of guest time, {host:.3}s of host time");
    if guest < SLEEP.as_secs_f64() - 0.01 {
        fail!("{what}: `sleep 2` took only {guest:.2}s of the guest's own time");
    }
    if (host - guest).abs() > 0.10 * guest {
        fail!("{what}: {guest:.2}s of guest time were {host:.3}s on the host, more than 10% off");
    }
    Ok(())
}

/// Boots the bzImage everywhere, with the module juggling.
fn every_configuration_boots() -> TestResult {
    let boot_kvm_retrying = |config: Config| {
        let kvm = matches!(config, Config::KvmNpt | Config::KvmShadow);
        let mut outcome = boot(config, "bzImage", &[]);
        for attempt in 2..=KVM_TRIES {
            match &outcome {
                Outcome::Ran(run) if kvm && run.status != Some(0) && run.output.contains(KVM_L1_CRASH) => {
                    diag!("{}: the guest hit KVM's known oops in L1 ({KVM_L1_CRASH}); try {attempt} of {KVM_TRIES}", config.name());
                    outcome = boot(config, "bzImage", &[]);
                }
                _ => break,
            }
        }
        outcome
    };
    let (results, restored) = run_everywhere(BUDGET, boot_kvm_retrying, |_, reason| Outcome::Broken(reason));
    for (config, outcome) in CONFIGS.iter().zip(&results) {
        diag!("{}: {}", config.name(), outcome.summary());
    }
    *RESULTS.lock().unwrap_or_else(|e| e.into_inner()) = Some(results);
    restored.map_err(|e| Failure::Fail(format!("restoring pacifica.ko: {e}")))
}

/// The bzImage on `config` passed, and printed what pacifica-npt printed.
fn passes_on(config: Config) -> TestResult {
    let guard = RESULTS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(results) = guard.as_ref() else {
        fail!("the configurations did not run");
    };
    let run = match &results[config.index()] {
        Outcome::Ran(r) => r,
        Outcome::NotRun(why) | Outcome::Broken(why) => fail!("{}: {why}", config.name()),
    };
    check_run(config.name(), run)?;
    let Outcome::Ran(reference) = &results[Config::PacificaNpt.index()] else {
        fail!("pacifica-npt did not run, so there is nothing to compare with");
    };
    let (mine, theirs) = (results_of(run), results_of(reference));
    if mine.is_empty() || mine != theirs {
        fail!("{} printed {mine:?}, pacifica-npt {theirs:?}", config.name());
    }
    Ok(())
}

fn passes_on_pacifica_npt() -> TestResult {
    passes_on(Config::PacificaNpt)
}

fn passes_on_pacifica_shadow() -> TestResult {
    passes_on(Config::PacificaShadow)
}

fn passes_on_kvm_npt() -> TestResult {
    passes_on(Config::KvmNpt)
}

fn passes_on_kvm_shadow() -> TestResult {
    passes_on(Config::KvmShadow)
}

/// The uncompressed vmlinux boots through its PVH entry point.
fn vmlinux_boots_through_pvh() -> TestResult {
    match boot(Config::PacificaNpt, "vmlinux", &[]) {
        Outcome::Ran(run) => check_run("vmlinux (PVH) on pacifica-npt", &run),
        Outcome::NotRun(why) | Outcome::Broken(why) => fail!("vmlinux on pacifica-npt: {why}"),
    }
}

/// Without the MP table Linux runs on the 8259 and the PIT, and passes.
fn the_pic_platform_boots() -> TestResult {
    let what = "--platform pic on pacifica-npt";
    let run = match boot(Config::PacificaNpt, "bzImage", &["--platform", "pic"]) {
        Outcome::Ran(run) => run,
        Outcome::NotRun(why) | Outcome::Broken(why) => fail!("{what}: {why}"),
    };
    check_run(what, &run)?;
    let line = |irq: &str| run.lines.iter().find(|(_, l)| l.split_whitespace().next() == Some(irq));
    match (line("0:"), line("4:")) {
        (Some((_, timer)), Some((_, serial))) if timer.contains("XT-PIC") && serial.contains("XT-PIC") => Ok(()),
        (timer, serial) => fail!("{what}: IRQ 0 {timer:?} and IRQ 4 {serial:?} are not both on the XT-PIC"),
    }
}

/// What the guest's init prints before its shell starts.
const SHELL_BANNER: &str = "Pacifica Linux guest:";

/// The console works both ways: bytes on the VMM's stdin reach the guest's
/// shell through COM1's receiver and IRQ 4, and its output comes back.
/// The input goes in once the init's banner is out (a UART's receiver
/// holds only what arrives after the driver opened it, as on hardware).
fn console_input_reaches_the_shell() -> TestResult {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};
    let dir = Path::new(LINUX_DIR);
    let mut child = Command::new(std::env::var_os("PACIFICA").unwrap_or_else(|| "pacifica".into()))
        .args(["run", "--paging", "npt", "--cmdline", "console=ttyS0 loglevel=4 panic=-1 tsc=reliable"])
        .arg("--kernel")
        .arg(dir.join("bzImage"))
        .arg("--initrd")
        .arg(dir.join("initrd.cpio.gz"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| Failure::Fail(format!("cannot start pacifica: {e}")))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        fail!("pacifica's pipes are missing");
    };
    // A watchdog: the run must end within RUN_TIMEOUT whatever the guest
    // does; `done` tells it the run ended first.
    let pid = child.id();
    let (done, ended) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if ended.recv_timeout(RUN_TIMEOUT).is_err() {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    });
    let mut lines = Vec::new();
    let mut sent = false;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        if !sent && line.starts_with(SHELL_BANNER) {
            // `$((6 * 7))` echoes as typed but prints 42 only when run.
            stdin
                .write_all(b"echo \"sum $((6 * 7))\"\npoweroff\n")
                .map_err(|e| Failure::Fail(format!("writing to pacifica's stdin: {e}")))?;
            sent = true;
        }
        lines.push(line);
    }
    drop(stdin);
    let status = child.wait().map_err(|e| Failure::Fail(e.to_string()))?;
    let _ = done.send(());
    let _ = watchdog.join();
    let ran = lines.iter().any(|l| l.trim_end_matches('\r') == "sum 42");
    if !sent || !ran || status.code() != Some(0) {
        diag!("output:\n{}", lines.join("\n"));
        fail!("banner seen: {sent}, the command ran: {ran}, status {:?}", status.code());
    }
    Ok(())
}

/// With a terminal on stdin (L1's console, where run-selftests runs), the
/// VMM puts it in raw mode for the run and still ends when the guest does:
/// `make run`'s demo, which powers off by itself.
fn the_run_ends_with_a_terminal_on_stdin() -> TestResult {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Skip("stdin is not a terminal here".into()));
    }
    let args = linux_args("bzImage", "console=ttyS0 loglevel=4 panic=-1 tsc=reliable pacifica.demo");
    let stdin = std::process::Stdio::inherit();
    match pacifica_selftests::hypervisors::run_pacifica_with_stdin(Config::PacificaNpt, &args, RUN_TIMEOUT, stdin) {
        Outcome::Ran(run) if run.status == Some(0) && run.lines.iter().any(|(_, l)| l.starts_with("guest# poweroff")) => Ok(()),
        Outcome::Ran(run) => {
            diag!("output:\n{}\nstderr: {}", run.output, run.stderr.trim());
            fail!("the demo ended with status {:?}", run.status)
        }
        Outcome::NotRun(why) | Outcome::Broken(why) => fail!("the demo with a terminal on stdin: {why}"),
    }
}

/// Linux's three ways to reset a PC without ACPI end the run: the 8042's
/// pulse (`reboot=kbd`, its default here) and port 0xcf9 (`reboot=pci`)
/// with status 122, the triple fault (`reboot=triple`) with 124.
fn the_reset_paths_end_the_run() -> TestResult {
    for (how, want) in [("kbd", 122), ("pci", 122), ("triple", 124)] {
        let cmdline = format!("console=ttyS0 loglevel=4 panic=-1 tsc=reliable reboot={how} pacifica.reboot");
        let args = linux_args("bzImage", &cmdline);
        match run_pacifica(Config::PacificaNpt, &args, RUN_TIMEOUT) {
            Outcome::Ran(run) if run.status == Some(want) => diag!("reboot={how}: status {want}: {}", run.stderr.trim()),
            Outcome::Ran(run) => {
                diag!("output:\n{}\nstderr: {}", run.output, run.stderr.trim());
                fail!("reboot={how} ended with status {:?}, expected {want}", run.status)
            }
            Outcome::NotRun(why) | Outcome::Broken(why) => fail!("reboot={how}: {why}"),
        }
    }
    Ok(())
}

/// `pacifica run ARGS` on pacifica-npt fails before the guest runs, with
/// status 1 and `message` on stderr.
fn refused(what: &str, args: &[OsString], message: &str) -> TestResult {
    match run_pacifica(Config::PacificaNpt, args, Duration::from_secs(30)) {
        Outcome::Ran(run) if run.status == Some(1) && run.stderr.contains(message) => {
            diag!("{what}: {}", run.stderr.trim());
            Ok(())
        }
        Outcome::Ran(run) => fail!(
            "{what}: status {:?}, stderr {:?}; expected status 1 and {message:?}",
            run.status,
            run.stderr.trim()
        ),
        Outcome::NotRun(why) | Outcome::Broken(why) => fail!("{what}: {why}"),
    }
}

/// --kernel and --initrd for the bzImage, with `extra` after them.
fn with(extra: &[&str]) -> Vec<OsString> {
    let mut args = linux_args("bzImage", CMDLINE);
    args.truncate(4);
    args.extend(extra.iter().map(OsString::from));
    args
}

fn a_kernel_of_no_known_format_is_refused() -> TestResult {
    let path = Path::new("/tmp/linux_guest.not-a-kernel");
    std::fs::write(path, b"#!/bin/sh\necho I am no kernel\n").map_err(|e| Failure::Fail(e.to_string()))?;
    let args: Vec<OsString> = vec!["--kernel".into(), path.into()];
    refused("a shell script as --kernel", &args, "neither a Linux bzImage")?;
    // The Multiboot loader's images are no Linux kernels either.
    let hello: Vec<OsString> =
        vec!["--kernel".into(), Path::new(pacifica_selftests::hypervisors::GUEST_DIR).join("hello64.elf").into()];
    refused("hello64.elf as --kernel", &hello, "no PVH entry")
}

fn an_initrd_that_does_not_fit_is_refused() -> TestResult {
    let path = Path::new("/tmp/linux_guest.big-initrd");
    let file = std::fs::File::create(path).map_err(|e| Failure::Fail(e.to_string()))?;
    // Sparse: 48 MiB that take no room in L1's RAM-backed /tmp.
    file.set_len(48 << 20).map_err(|e| Failure::Fail(e.to_string()))?;
    let mut args = with(&["--mem", "48M"]);
    args[3] = path.into();
    let result = refused("a 48 MiB initrd in 48 MiB of RAM", &args, "does not fit");
    let _ = std::fs::remove_file(path);
    result
}

fn a_command_line_too_long_is_refused() -> TestResult {
    let long = "x".repeat(4096);
    refused("a 4096-byte command line", &with(&["--cmdline", &long]), "is longer than")?;
    refused("a command line with a newline", &with(&["--cmdline", "a\nb"]), "invalid command line")
}

fn the_pic_platform_on_kvm_is_not_supported() -> TestResult {
    // KVM need not be loaded: the VMM refuses before it opens anything.
    let mut args = with(&["--platform", "pic"]);
    args.splice(0..0, ["--backend".into(), "kvm".into()]);
    refused("--backend kvm --platform pic", &args, "not supported")
}

fn too_little_memory_for_the_kernel_is_refused() -> TestResult {
    refused("4 MiB of RAM", &with(&["--mem", "4M"]), "give it more with --mem")?;
    refused("4 GiB of RAM", &with(&["--mem", "4G"]), "at most")
}

fn main() {
    tap::run(&[
        test!(every_configuration_boots).timeout(BUDGET.as_secs() + 2 * RUN_TIMEOUT.as_secs()),
        test!(passes_on_pacifica_npt),
        test!(passes_on_pacifica_shadow),
        test!(passes_on_kvm_npt),
        test!(passes_on_kvm_shadow),
        test!(vmlinux_boots_through_pvh).timeout(RUN_TIMEOUT.as_secs() + 15),
        test!(the_pic_platform_boots).timeout(RUN_TIMEOUT.as_secs() + 15),
        test!(console_input_reaches_the_shell).timeout(RUN_TIMEOUT.as_secs() + 15),
        test!(the_run_ends_with_a_terminal_on_stdin).timeout(RUN_TIMEOUT.as_secs() + 15),
        test!(the_reset_paths_end_the_run).timeout(3 * RUN_TIMEOUT.as_secs()),
        test!(a_kernel_of_no_known_format_is_refused),
        test!(an_initrd_that_does_not_fit_is_refused),
        test!(a_command_line_too_long_is_refused),
        test!(too_little_memory_for_the_kernel_is_refused),
        test!(the_pic_platform_on_kvm_is_not_supported),
    ]);
}

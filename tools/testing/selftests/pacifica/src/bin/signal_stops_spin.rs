// SPDX-License-Identifier: GPL-2.0

//! A signal stops a guest that never exits by itself.
//!
//! `PACIFICA_RUN` must check for pending signals while it loops over
//! VMRUN, as `KVM_RUN` does: otherwise a guest spinning in `jmp .` holds its
//! thread in the kernel forever, deaf to timers, to Ctrl-C and even to
//! SIGKILL (the kernel acts on a fatal signal only when the thread returns
//! to userspace).
//!
//! Guest: `guests/spin.S`: `spin64` is `jmp .`, `halt64` sets EAX to 0x600d
//! and halts.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pacifica_selftests::guest::{ensure_back_to, module_info};
use pacifica_selftests::guests::spin;
use pacifica_selftests::uapi::{PACIFICA_STAT_EXITS, PACIFICA_STAT_SIGNAL};
use pacifica_selftests::watchdog::Watchdog;
use pacifica_selftests::{
    diag, ensure, ensure_eq, errno, fail, tap, test, Context, Failure, Mode, TestResult, TestVm,
};

/// How long a signalled RUN may take to return. Generous for TCG; on
/// hardware it is the time to the next host timer tick at most.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// Runs the vCPU, which must not exit by itself, until RUN fails; returns
/// the error and how long it took.
fn run_until_error(vm: &mut TestVm) -> Result<(std::io::Error, Duration), Failure> {
    let start = Instant::now();
    match vm.vcpu.run() {
        Ok(exit) => fail!(
            "a spinning guest exited: {}",
            pacifica_selftests::guest::describe_exit(&exit)
        ),
        Err(e) => Ok((e, start.elapsed())),
    }
}

/// Checks that RUN ended with EINTR, in time, with the guest still in its
/// loop.
fn ensure_interrupted(vm: &mut TestVm, what: &str) -> TestResult {
    let (err, took) = run_until_error(vm)?;
    ensure!(
        err.raw_os_error() == Some(libc::EINTR),
        "RUN failed with {} after {what}, expected EINTR",
        errno::describe(&err)
    );
    ensure!(took < STOP_WITHIN, "RUN took {took:?} to notice {what}");
    ensure_eq!(
        vm.regs()?.rip,
        spin::SPIN64,
        "guest RIP after {what} (the spin loop)"
    );
    Ok(())
}

/// A thread-directed signal (tgkill, as a VMM's vCPU kick) makes RUN
/// return EINTR, again and again, and the vCPU then resumes normally.
fn kick_interrupts_spinning_guest() -> TestResult {
    let mut vm = TestVm::new(Mode::Long64, spin::IMAGE, spin::SPIN64)?;
    for round in 0..20 {
        let kicker = Watchdog::arm(Duration::from_millis(if round == 0 { 300 } else { 10 }));
        ensure_interrupted(&mut vm, "a kick").map_err(|e| e.prefixed(format!("round {round}")))?;
        drop(kicker);
    }
    let signals = vm.stat(PACIFICA_STAT_SIGNAL)?;
    ensure!(
        signals >= 20,
        "signal exit counter {signals} after 20 interrupted runs"
    );
    // The state is intact: moved to a HLT, the guest gets there.
    vm.set_rip(spin::HALT64)?;
    vm.run_to_hlt()?;
    ensure_eq!(vm.regs()?.rax, 0x600d, "RAX at halt64");
    Ok(())
}

/// `immediate_exit` in the run page: RUN fails with EINTR without entering
/// the guest (no exit is counted, RIP stays), for as long as it is set,
/// and the module leaves the byte alone; cleared, the guest runs.
fn immediate_exit_returns_before_entering() -> TestResult {
    let mut vm = TestVm::new(Mode::Long64, spin::IMAGE, spin::HALT64)?;
    vm.vcpu.run_page_mut().immediate_exit = 1;
    let exits = vm.stat(PACIFICA_STAT_EXITS)?;
    for _ in 0..3 {
        let err = match vm.vcpu.run() {
            Ok(exit) => fail!(
                "RUN with immediate_exit set entered the guest: {}",
                pacifica_selftests::guest::describe_exit(&exit)
            ),
            Err(e) => e,
        };
        ensure!(
            err.raw_os_error() == Some(libc::EINTR),
            "RUN with immediate_exit set failed with {}, expected EINTR",
            errno::describe(&err)
        );
    }
    ensure_eq!(vm.stat(PACIFICA_STAT_EXITS)?, exits, "exits while immediate_exit was set");
    ensure_eq!(vm.regs()?.rip, spin::HALT64, "guest RIP while immediate_exit was set");
    ensure_eq!(vm.vcpu.run_page().immediate_exit, 1, "immediate_exit after RUN (userspace's byte)");
    vm.vcpu.run_page_mut().immediate_exit = 0;
    vm.run_to_hlt()?;
    ensure_eq!(vm.regs()?.rax, 0x600d, "RAX at halt64");
    Ok(())
}

/// Arms ITIMER_REAL to fire after `first` and then every `every`.
fn set_itimer(first: Duration, every: Duration) -> TestResult {
    let tv = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let timer = libc::itimerval {
        it_interval: tv(every),
        it_value: tv(first),
    };
    // SAFETY: setitimer reads one itimerval; the old value is not wanted.
    let ret = unsafe { libc::setitimer(libc::ITIMER_REAL, &timer, std::ptr::null_mut()) };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("setitimer");
    }
    Ok(())
}

/// A process-directed timer signal (setitimer, SIGALRM) reaches the thread
/// in RUN (the harness's own threads block it) and makes RUN return EINTR.
fn itimer_interrupts_spinning_guest() -> TestResult {
    let mut vm = TestVm::new(Mode::Long64, spin::IMAGE, spin::SPIN64)?;
    // Periodic, so that a signal that lands just before RUN is entered
    // (and is consumed in userspace) is followed by another.
    set_itimer(Duration::from_millis(200), Duration::from_millis(50))?;
    let result = ensure_interrupted(&mut vm, "SIGALRM from setitimer");
    set_itimer(Duration::ZERO, Duration::ZERO)?;
    result
}

/// The child side of the tests below: a VM spinning in RUN forever.
/// Prints "ready" first, so that the parent knows it got this far.
fn spin_child() -> ! {
    let result = (|| -> TestResult {
        let mut vm = TestVm::new(Mode::Long64, spin::IMAGE, spin::SPIN64)?;
        println!("ready");
        std::io::stdout().flush().ok();
        loop {
            match vm.vcpu.run() {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => fail!("RUN: {}", errno::describe(&e)),
                Ok(exit) => fail!("exit: {}", pacifica_selftests::guest::describe_exit(&exit)),
            }
        }
    })();
    println!("error: {result:?}");
    std::process::exit(2);
}

/// Starts this program as a spinning child, kills it with `signal` once it
/// runs its guest, and requires it to die of that signal within
/// STOP_WITHIN and its VM to be destroyed.
fn signal_kills_spinning_child(signal: libc::c_int, name: &str) -> TestResult {
    let before = module_info()?;
    let exe = std::env::current_exe().context("current_exe")?;
    let mut child = Command::new(exe)
        .arg("--spin-child")
        .stdout(Stdio::piped())
        .spawn()
        .context("spawning the spinning child")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .context("reading from the child")?;
    if line.trim() != "ready" {
        let _ = child.kill();
        let _ = child.wait();
        fail!("the child did not start its guest: {:?}", line.trim());
    }
    // Give it time to be deep inside RUN.
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child, which has not been reaped yet.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(std::io::Error::last_os_error()).context(format!("kill {name}"));
    }
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waitpid")? {
            break status;
        }
        if start.elapsed() > STOP_WITHIN {
            // Leave it; SIGKILL it for good measure, it is stuck in RUN.
            let _ = child.kill();
            fail!("the child spinning in RUN survived {name} for {STOP_WITHIN:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    diag!(
        "child ended {:.2}s after {name}: {status}",
        start.elapsed().as_secs_f64()
    );
    use std::os::unix::process::ExitStatusExt;
    ensure_eq!(status.signal(), Some(signal), "signal the child died of");
    ensure_back_to(&before, "the child's death")
}

/// SIGKILL ends a process whose thread is inside RUN.
fn sigkill_ends_spinning_child() -> TestResult {
    signal_kills_spinning_child(libc::SIGKILL, "SIGKILL")
}

/// So does SIGTERM with its default action (the child installs no
/// handlers).
fn sigterm_ends_spinning_child() -> TestResult {
    signal_kills_spinning_child(libc::SIGTERM, "SIGTERM")
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--spin-child") {
        spin_child();
    }
    tap::run(&[
        test!(kick_interrupts_spinning_guest),
        test!(immediate_exit_returns_before_entering),
        test!(itimer_interrupts_spinning_guest),
        test!(sigkill_ends_spinning_child),
        test!(sigterm_ends_spinning_child),
    ]);
}

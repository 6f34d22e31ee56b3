// SPDX-License-Identifier: GPL-2.0

//! The in-kernel local APIC (PACIFICA_CREATE_IRQCHIP): its registers
//! through the xAPIC page and as x2APIC MSRs, IA32_APIC_BASE, and the
//! delivery of self-IPIs with IF, STI's interrupt shadow, the TPR (by the
//! page and by CR8) and a physical destination, all without an exit to
//! userspace; the timer in its three modes, measured with the guest's
//! TSC, across migrations of the vCPU thread; HLT in the kernel, woken by
//! the timer, by an MSI from another thread, by an NMI, and ended by a
//! signal; NMIs and their blocking until IRET; a userspace PIC through
//! LINT0 and its INTA exits; LINT1 as NMI; level-triggered EOI exits. A VM
//! without the irqchip keeps today's behaviour (the other selftests). Runs
//! in both paging modes.
//!
//! Guest: `guests/lapic.S`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pacifica::hw::apic::{base, lvt, reg, spiv, VERSION};
use pacifica_selftests::guest::{measured_tsc_khz, module_info, run_vcpu, until_hlt};
use pacifica_selftests::guests::lapic as guest;
use pacifica_selftests::layout::{DATA_BASE, PORT_TEST_IMM};
use pacifica_selftests::sys::{Exit, GuestMemory};
use pacifica_selftests::uapi::{
    PACIFICA_STAT_APIC_ACCESS, PACIFICA_STAT_HALT, PACIFICA_STAT_IRQ_INJECTED, PACIFICA_STAT_IRQ_WINDOW,
    PACIFICA_STAT_LEVEL_EOI, PACIFICA_STAT_NMI_INJECTED, PACIFICA_STAT_NMI_WINDOW, PACIFICA_STAT_SIGNAL,
    PACIFICA_STAT_TIMER, PACIFICA_STAT_USER_EXITS, PACIFICA_STAT_WAKEUP, PACIFICA_STAT_INTA,
};
use pacifica_selftests::uapi;
use pacifica_selftests::watchdog::Watchdog;
use pacifica_selftests::{diag, ensure, ensure_eq, tap, test, Context, Failure, Flow, Mode, TestResult, TestVm};

/// Where the guests keep their flags and logs (guests/lapic.S).
const READY: u64 = DATA_BASE + 0x118;
const TSC_LOG: u64 = DATA_BASE + 0x200;
const TSC_ARM0: u64 = DATA_BASE + 0x180;
const TSC_ARM1: u64 = DATA_BASE + 0x188;
const TSC_DEADLINE: u64 = DATA_BASE + 0x190;
const TSC_KHZ: u64 = DATA_BASE + 0x1f0;
/// The vectors the guests count, and the PIC's.
const VEC: u32 = 0x40;
const VEC2: u32 = 0x50;
const EXT_VEC: u32 = 0x68;
/// How late an interrupt may be and still count as on time: the testbed
/// runs the guest under two levels of emulation.
const LATE: Duration = Duration::from_millis(200);
/// An MSI to physical APIC ID 0.
const MSI_TO_0: u64 = 0xfee0_0000;
const MSI_LEVEL: u32 = (1 << 15) | (1 << 14);

/// The doubleword at `gpa` of `mem`, read from any thread.
fn peek(mem: &GuestMemory, gpa: u64) -> u32 {
    let mut b = [0; 4];
    mem.read(gpa, &mut b).map(|()| u32::from_le_bytes(b)).unwrap_or(0)
}

/// Waits for the guest to set READY, then `settle` more (it halts).
fn wait_ready(mem: &GuestMemory, settle: Duration) -> bool {
    let start = Instant::now();
    while peek(mem, READY) == 0 {
        if start.elapsed() > Duration::from_secs(20) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(settle);
    true
}

/// Runs `entry` to its HLT in a VM with a local APIC and checks the
/// doublewords it left at DATA_BASE.
fn run(entry: u64, expect: &[(&str, u32)], exceptions: u64) -> Result<TestVm, pacifica_selftests::Failure> {
    let mut vm = TestVm::with_lapic(Mode::Long64, guest::IMAGE, entry)?;
    vm.run_to_hlt()?;
    vm.print_stats()?;
    let log: Vec<u32> = (0..vm.read_u32(DATA_BASE + 0x100)?.min(16))
        .map(|i| vm.read_u32(DATA_BASE + 0x140 + 4 * u64::from(i)))
        .collect::<Result<_, _>>()?;
    pacifica_selftests::diag!("vectors taken: {log:x?}");
    vm.expect_results(expect)?;
    // Everything but the final HLT (and the guest's reports of the
    // exceptions it expected) stayed in the kernel.
    ensure_eq!(vm.stat(PACIFICA_STAT_USER_EXITS)?, 1 + exceptions, "exits to userspace");
    Ok(vm)
}

/// Reset values and write masks, read through the xAPIC page.
fn registers_through_the_page() -> TestResult {
    let vm = run(
        guest::REGS64,
        &[
            ("version", VERSION),
            ("ID of vCPU 0", 0),
            ("SPIV at reset", 0xff),
            ("TPR after writing all ones", 0xff),
            ("LDR after writing all ones", 0xff00_0000),
            ("LINT0 written while software-disabled", 0x700 | lvt::MASKED),
            ("IA32_APIC_BASE", (base::DEFAULT_ADDR | base::ENABLE | base::BSP) as u32),
            ("byte 2 of the version register", VERSION >> 16),
        ],
        0,
    )?;
    ensure!(vm.stat(PACIFICA_STAT_APIC_ACCESS)? >= 9, "APIC access counter");
    Ok(())
}

/// Self-IPIs through the ICR, held back by IF = 0, STI's shadow, TPR and
/// CR8, and let in as each opens.
fn self_ipis_wait_for_if_the_shadow_and_tpr() -> TestResult {
    let vm = run(
        guest::SELF_IPI64,
        &[
            ("taken with IF = 0", 0),
            ("taken in STI's shadow", 0),
            ("taken once IF is set", 1),
            ("taken while TPR = the vector's class", 1),
            ("taken once TPR dropped", 2),
            ("taken while CR8 = the vector's class", 2),
            ("taken once CR8 dropped", 3),
            ("ICR delivery status", 0),
            ("vector of the physical-destination IPI", 0x50),
            ("interrupts taken in all, none twice", 4),
        ],
        0,
    )?;
    ensure_eq!(vm.stat(PACIFICA_STAT_IRQ_INJECTED)?, 4, "interrupts injected");
    ensure!(vm.stat(PACIFICA_STAT_IRQ_WINDOW)? >= 1, "an interrupt offered while IF = 0");
    vm.ensure_no_exceptions()?;
    Ok(())
}

/// x2APIC: the switch through IA32_APIC_BASE, the ID and SELF_IPI MSRs,
/// and the #GPs the architecture gives.
fn x2apic_msrs() -> TestResult {
    run(
        guest::X2APIC64,
        &[
            ("x2APIC ID of vCPU 0", 0),
            ("interrupts taken after SELF_IPI", 1),
            ("WRMSR EOI with a non-zero value", 13),
            ("x2APIC straight back to xAPIC", 13),
        ],
        2,
    )?;
    Ok(())
}

/// PACIFICA_GET_LAPIC shows what the guest wrote; PACIFICA_SET_LAPIC
/// gives a new VM's guest an APIC it reads back through the page.
fn state_ioctls_save_and_restore() -> TestResult {
    let word = |s: &uapi::LapicState, off: u32| u32::from_le_bytes(s.regs[off as usize..][..4].try_into().unwrap());
    let vm = run(guest::SELF_IPI64, &[], 0)?;
    let saved = vm.vcpu.get_lapic().context("GET_LAPIC")?;
    ensure_eq!(saved.apic_base, base::DEFAULT_ADDR | base::ENABLE | base::BSP, "IA32_APIC_BASE");
    ensure_eq!(word(&saved, reg::SPIV), spiv::ENABLED | 0xff, "SPIV the guest wrote");
    ensure_eq!(word(&saved, reg::LVR), VERSION, "version");
    ensure_eq!(word(&saved, reg::ISR), 0, "nothing in service after the EOIs");
    // A fresh VM whose APIC has TPR 0x20 and LDR 0x0100_0000 from the start.
    let mut vm2 = TestVm::with_lapic(Mode::Long64, guest::IMAGE, guest::REGS64)?;
    let mut state = *vm2.vcpu.get_lapic().context("GET_LAPIC")?;
    state.regs[reg::TASKPRI as usize] = 0x20;
    state.regs[reg::LDR as usize + 3] = 0x01;
    vm2.vcpu.set_lapic(&state).context("SET_LAPIC")?;
    ensure_eq!(vm2.vcpu.get_sregs().context("GET_SREGS")?.cr8, 2, "CR8 follows the TPR");
    let back = vm2.vcpu.get_lapic().context("GET_LAPIC")?;
    ensure_eq!((word(&back, reg::TASKPRI), word(&back, reg::LDR)), (0x20, 0x0100_0000), "TPR and LDR read back");
    vm2.run_to_hlt()?;
    // regs64 reads the reset SPIV and then writes TPR and LDR itself.
    ensure_eq!(vm2.read_u32(DATA_BASE + 8)?, 0xff, "SPIV the guest read");
    Ok(())
}

/// Moves the calling thread to the next CPU it may run on; returns the
/// CPU it ran on before.
fn migrate(cpus: &[usize], round: usize) -> std::io::Result<usize> {
    // SAFETY: sched_getcpu has no preconditions.
    let before = unsafe { libc::sched_getcpu() };
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the CPU number is below CPU_SETSIZE (it came from the mask).
    unsafe { libc::CPU_SET(cpus[round % cpus.len()], &mut set) };
    // SAFETY: `set` is a valid cpu_set_t of the size given; 0 is this thread.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(before as usize)
}

/// The CPUs this thread may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: as in `migrate`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads inside `set`.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// IA32_APIC_BASE: relocation moves the page (the old address becomes
/// MMIO for userspace), disabling removes it, enabling again resets the
/// registers.
fn apic_base_relocation_and_disable() -> TestResult {
    let mut vm = TestVm::with_lapic(Mode::Long64, guest::IMAGE, guest::BASE64)?;
    let mut mmio = Vec::new();
    vm.run_until(|exit| match exit {
        Exit::MmioRead { addr, data } => {
            mmio.push(*addr);
            data.fill(0xff);
            Flow::Continue
        }
        other => until_hlt(other),
    })?;
    vm.expect_results(&[
        ("version at the new address", VERSION),
        ("SPIV kept across the move", spiv::ENABLED | 0x3f),
        ("the old address, now MMIO", u32::MAX),
        ("the page of a disabled APIC, MMIO", u32::MAX),
        ("SPIV after disable and enable", 0xff),
        ("IA32_APIC_BASE", (base::DEFAULT_ADDR | base::ENABLE | base::BSP) as u32),
    ])?;
    ensure_eq!(mmio, vec![base::DEFAULT_ADDR + u64::from(reg::LVR), 0xfed0_0000 + u64::from(reg::LVR)], "MMIO exits");
    vm.ensure_no_exceptions()
}

/// A vector waits while one of a higher class is in service, until its
/// EOI.
fn lower_class_waits_for_the_eoi() -> TestResult {
    let vm = run(
        guest::PRIO64,
        &[
            ("taken inside 0x50's handler before its EOI", 1),
            ("taken in all", 2),
            ("first", VEC2),
            ("then", VEC),
        ],
        0,
    )?;
    vm.ensure_no_exceptions()
}

/// The timer in one-shot, periodic and TSC-deadline mode fires at the
/// programmed time, measured with the guest's TSC, never early; masked, it
/// raises nothing; every wait is an in-kernel HLT woken by the timer; the
/// vCPU thread moves between CPUs during the periodic part.
fn timer_modes_fire_on_time() -> TestResult {
    let khz = module_info()?.guest_tsc_khz;
    ensure!(khz > 0, "guest_tsc_khz is 0: L1's kernel does not know its TSC rate");
    let cpus = allowed_cpus();
    ensure!(cpus.len() >= 2, "the migration check needs two CPUs, this thread may use {cpus:?}");
    let mut vm = TestVm::with_lapic(Mode::Long64, guest::IMAGE, guest::TIMER64)?;
    vm.mem.write(TSC_KHZ, &khz.to_le_bytes())?;
    let mut round = 0;
    let mut seen = std::collections::BTreeSet::new();
    vm.run_until(|exit| match exit {
        Exit::IoOut { port, data, .. } if u64::from(*port) == PORT_TEST_IMM && data == &[7] => {
            round += 1;
            match migrate(&cpus, round) {
                Ok(cpu) => {
                    seen.insert(cpu);
                    Flow::Continue
                }
                Err(e) => Flow::Fail(format!("sched_setaffinity: {e}")),
            }
        }
        other => until_hlt(other),
    })?;
    vm.print_stats()?;
    let deadline_mode = vm.read_u32(DATA_BASE + 0xc)?;
    ensure_eq!(deadline_mode, 1, "CPUID.1:ECX[24] (TSC-deadline) with a known TSC rate");
    // Five periods at least: a period that ended while the guest's
    // handler ran is taken as soon as it returns, before the guest looks.
    let periods = vm.read_u32(DATA_BASE + 4)?;
    ensure!(periods >= 6, "interrupts after five periods: {periods}");
    vm.expect_results(&[("interrupts after the one-shot timer", 1)])?;
    for (what, at, want) in [
        ("taken during 10 ms of a masked periodic timer", 8, 0),
        ("TSC-deadline offered", 0xc, 1),
        ("taken after the TSC deadline", 0x10, 1),
    ] {
        ensure_eq!(vm.read_u32(DATA_BASE + at)?, want, "{what}");
    }
    let tick = |i: u64| vm.read_u64(TSC_LOG + 8 * i);
    let ticks = |d: Duration| d.as_micros() as u64 * khz / 1000;
    // One-shot and periodic count the APIC's 1 GHz bus in host time
    // (CLOCK_MONOTONIC): they are checked against the TSC's rate as
    // measured against that clock, with 5% of slack for the measurement.
    // TSC-deadline is the TSC itself.
    let real_khz = measured_tsc_khz(Duration::from_millis(200));
    diag!("guest_tsc_khz {khz}, measured against CLOCK_MONOTONIC {real_khz}");
    let early = |d: Duration| d.as_micros() as u64 * real_khz / 1000 * 95 / 100;
    let arm0 = vm.read_u64(TSC_ARM0)?;
    let one_shot = tick(0)? - arm0;
    diag!("one-shot 1 ms: {} us", one_shot * 1000 / khz);
    ensure!(one_shot >= early(Duration::from_millis(1)), "one-shot fired early: {one_shot} ticks");
    ensure!(one_shot <= ticks(Duration::from_millis(1) + LATE), "one-shot fired late: {one_shot} ticks");
    let arm1 = vm.read_u64(TSC_ARM1)?;
    for k in 1..=5u64 {
        let t = tick(k)? - arm1;
        diag!("periodic 2 ms, interrupt {k}: {} us", t * 1000 / khz);
        ensure!(t >= early(Duration::from_millis(2 * k)), "periodic interrupt {k} early: {t} ticks");
    }
    let five = tick(5)? - arm1;
    ensure!(five <= ticks(Duration::from_millis(10) + LATE), "five periods took {five} ticks");
    let deadline = vm.read_u64(TSC_DEADLINE)?;
    let fired = tick(u64::from(vm.read_u32(DATA_BASE + 0x14)?))?;
    diag!("TSC deadline: taken {} ticks after it", fired.wrapping_sub(deadline) as i64);
    ensure!(fired >= deadline, "TSC-deadline interrupt {} ticks early", deadline - fired);
    ensure!(fired - deadline <= ticks(LATE), "TSC-deadline interrupt {} ticks late", fired - deadline);
    ensure!(vm.stat(PACIFICA_STAT_TIMER)? >= 7, "timer expiries counted");
    // An interrupt that comes before the HLT spares it the sleep.
    let (halts, wakeups) = (vm.stat(PACIFICA_STAT_HALT)?, vm.stat(PACIFICA_STAT_WAKEUP)?);
    ensure!(halts >= 1, "no HLT slept in the kernel");
    ensure_eq!(wakeups, halts, "wake-ups against in-kernel halts");
    ensure!(seen.len() >= 2, "the vCPU thread ran on CPUs {seen:?} only");
    // The exits to userspace: five migrations and the STOP; no HLT.
    ensure_eq!(vm.stat(PACIFICA_STAT_USER_EXITS)?, 6, "exits to userspace");
    vm.ensure_no_exceptions()
}

/// Events from userspace: an MSI from another thread wakes the halted
/// vCPU; a level-triggered MSI's EOI exits with its vector; NMIs with
/// IF = 0, and NMI blocking until IRET; a userspace PIC's interrupt
/// through LINT0 in ExtINT mode waits for IF and goes through an INTA
/// exit; LINT1 in NMI mode.
fn injections_from_userspace() -> TestResult {
    let mut tvm = TestVm::with_lapic(Mode::Long64, guest::IMAGE, guest::INJECT64)?;
    let events = tvm.vcpu.events().context("dup of the vCPU fd")?;
    let TestVm { vcpu, vm, mem, log, .. } = &mut tvm;
    let (vm, mem) = (&*vm, &*mem);
    let mut eois = Vec::new();
    let mut intas = 0;
    let stop = AtomicBool::new(false);
    let sent = std::thread::scope(|s| {
        let sender = s.spawn(|| -> Result<u32, String> {
            if !wait_ready(mem, Duration::from_millis(200)) {
                return Err("the guest never got ready".into());
            }
            let n = vm.signal_msi(MSI_TO_0, VEC).map_err(|e| format!("SIGNAL_MSI: {e}"))?;
            Ok(n)
        });
        let r = run_vcpu(vcpu, log, Duration::from_secs(60), |exit| {
            let r = match exit {
                Exit::IoOut { port, data, .. } if u64::from(*port) == PORT_TEST_IMM => match data[0] {
                    1 => vm.signal_msi(MSI_TO_0, VEC2 | MSI_LEVEL).map(drop),
                    2..=4 => events.nmi(),
                    5 => events.set_lint(0, true),
                    6 => events.set_lint(1, true).and_then(|()| events.set_lint(1, false)),
                    other => return Flow::Fail(format!("unexpected request {other}")),
                },
                Exit::Inta { vector } => {
                    intas += 1;
                    **vector = EXT_VEC;
                    events.set_lint(0, false)
                }
                Exit::Eoi { vector } => {
                    eois.push(*vector);
                    Ok(())
                }
                other => return until_hlt(other),
            };
            match r {
                Ok(()) => Flow::Continue,
                Err(e) => Flow::Fail(format!("injection ioctl: {e}")),
            }
        });
        stop.store(true, Ordering::Relaxed);
        let sent = sender.join().map_err(|_| Failure::Fail("sender thread panicked".into()))?;
        r.map(|()| sent)
    })?;
    let sent = sent.map_err(Failure::Fail)?;
    ensure_eq!(sent, 1, "APICs that accepted the MSI");
    tvm.print_stats()?;
    tvm.expect_results(&[
        ("interrupts after the MSI woke HLT", 1),
        ("after the level-triggered MSI", 2),
        ("NMIs taken with IF = 0", 1),
        ("NMIs inside the handler while a second one waits", 2),
        ("NMIs after its IRET", 3),
        ("PIC interrupts taken with IF = 0", 0),
        ("PIC interrupts once IF was set", 1),
        ("NMIs after a pulse on LINT1", 4),
        ("APIC interrupts in all", 2),
    ])?;
    ensure_eq!(eois, vec![VEC2], "EOI exits (the level-triggered vector only)");
    ensure_eq!(intas, 1, "INTA exits");
    ensure_eq!(tvm.stat(PACIFICA_STAT_INTA)?, 1, "INTA counter");
    ensure_eq!(tvm.stat(PACIFICA_STAT_LEVEL_EOI)?, 1, "level EOI counter");
    ensure_eq!(tvm.stat(PACIFICA_STAT_NMI_INJECTED)?, 4, "NMIs injected");
    ensure!(tvm.stat(PACIFICA_STAT_NMI_WINDOW)? >= 1, "an NMI held back by blocking");
    ensure!(tvm.stat(PACIFICA_STAT_HALT)? >= 1 && tvm.stat(PACIFICA_STAT_WAKEUP)? >= 1, "the MSI woke a halted vCPU");
    // Nobody else may be the MSI's destination.
    ensure_eq!(tvm.vm.signal_msi(MSI_TO_0 | (5 << 12), VEC).context("SIGNAL_MSI to APIC 5")?, 0, "MSI to a missing APIC");
    tvm.ensure_no_exceptions()
}

/// `cli; hlt`: a signal ends the run with EINTR and the vCPU stays halted
/// (the next run sleeps again); an NMI from another thread wakes it; and
/// a process stuck in it dies of SIGKILL.
fn cli_hlt_sleeps_until_nmi_and_is_killable() -> TestResult {
    let mut tvm = TestVm::with_lapic(Mode::Long64, guest::IMAGE, guest::CLIHLT64)?;
    for round in 0..2 {
        let watchdog = Watchdog::arm(Duration::from_millis(300));
        let r = tvm.vcpu.run();
        let fired = watchdog.fired();
        drop(watchdog);
        match r {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) && fired => {}
            Err(e) => return Err(Failure::Fail(format!("round {round}: RUN failed: {e}"))),
            Ok(_) => return Err(Failure::Fail(format!("round {round}: RUN returned with an exit from cli; hlt"))),
        }
    }
    ensure_eq!(tvm.stat(PACIFICA_STAT_HALT)?, 1, "one HLT, slept through two runs");
    ensure!(tvm.stat(PACIFICA_STAT_SIGNAL)? >= 2, "signals counted");
    ensure_eq!(tvm.stat(PACIFICA_STAT_WAKEUP)?, 0, "wake-ups before the NMI");
    let events = tvm.vcpu.events().context("dup of the vCPU fd")?;
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            let _ = events.nmi();
        });
        tvm.run_to_hlt()
    })?;
    ensure_eq!(tvm.read_u32(DATA_BASE)?, 1, "NMIs taken");
    ensure_eq!(tvm.stat(PACIFICA_STAT_WAKEUP)?, 1, "woken once");
    // SIGKILL: a child stuck in cli; hlt dies at once.
    // SAFETY: the child only builds a VM and runs it, then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match TestVm::with_lapic(Mode::Long64, guest::IMAGE, guest::CLIHLT64) {
            Ok(mut vm) => loop {
                let _ = vm.vcpu.run();
            },
            Err(_) => 3,
        };
        // SAFETY: _exit ends the child without running the parent's handlers.
        unsafe { libc::_exit(code) };
    }
    ensure!(pid > 0, "fork failed");
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: `pid` is our child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let start = Instant::now();
    let mut status = 0;
    loop {
        // SAFETY: as above; `status` is a valid int.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        ensure!(start.elapsed() < Duration::from_secs(10), "the child in cli; hlt survived SIGKILL for 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    ensure!(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL, "child status {status:#x}");
    Ok(())
}

fn main() {
    tap::run(&[
        test!(registers_through_the_page),
        test!(self_ipis_wait_for_if_the_shadow_and_tpr),
        test!(x2apic_msrs),
        test!(state_ioctls_save_and_restore),
        test!(apic_base_relocation_and_disable),
        test!(lower_class_waits_for_the_eoi),
        test!(timer_modes_fire_on_time),
        test!(injections_from_userspace),
        test!(cli_hlt_sleeps_until_nmi_and_is_killable),
    ]);
}

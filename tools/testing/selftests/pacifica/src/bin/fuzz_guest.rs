// SPDX-License-Identifier: GPL-2.0

//! The guest fuzzer: random guests, built at runtime from templated
//! snippets with random operands, run in both paging modes and both CPU
//! modes, each in a forked child under a watchdog.
//!
//! The snippets (`src/guest_fuzz/gen.rs`) cover every SVM instruction, task
//! switches, far transfers, segment and descriptor-table loads, CR/DR/MSR
//! accesses, CPUID and friends, string I/O with random segments and
//! counts, MMIO and unbacked memory, page tables pointing anywhere, random
//! bytes, HLT, triple faults, breakpoints, #AC, POPF/IRET tricks and ring
//! 3. Each snippet belongs to a named class; `--avoid` leaves classes out.
//!
//! A run passes when it ends in a documented way (a documented exit, or
//! EINTR from the watchdog), GET_REGS and GET_SREGS work and show no host
//! state, and afterwards the module's accounting is back at its baseline
//! and the kernel log has no warning. A child that dies or hangs fails its
//! seed; the seed of every run goes to standard error first, so that even
//! if L1 dies the console shows the last one.
//!
//! ```text
//! fuzz_guest [--seed N] [--runs N] [--seconds S] [--paging npt|shadow|both]
//!            [--mode 32|64|both] [--avoid CLASS,...|none]
//!            [--replay SEED [--first N]] [--seed-log -|FILE|none] [--list]
//! ```

use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use pacifica::hw::seg::attr;
use pacifica_selftests::errno;
use pacifica_selftests::kmsg::Kmsg;
use pacifica_selftests::guest::{ensure_back_to, initial_regs, initial_sregs, module_info};
use pacifica_selftests::layout::{EXC_COUNT, PORT_DONE, PORT_EXC, RAM_SIZE};
use gen::{DONE_HLT_AT, DONE_OUT};
use pacifica_selftests::sys::Exit;
use pacifica_selftests::tap::{self, Test};
use pacifica_selftests::uapi::{self, Segment};
use pacifica_selftests::watchdog::Watchdog;
use pacifica_selftests::{diag, Failure, Mode, TestResult, TestVm};

#[path = "../guest_fuzz/asm.rs"]
#[allow(dead_code)]
mod asm;
#[path = "../guest_fuzz/gen.rs"]
mod gen;

use gen::{Guest, CLASSES};

/// How long one guest may run before the watchdog stops it (EINTR).
const RUN_BUDGET: Duration = Duration::from_millis(500);
/// How long a child may take in all before it counts as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(15);
/// Exits to userspace after which a run is ended.
const MAX_USER_EXITS: u32 = 2000;
/// Failed runs after which a combination stops.
const MAX_FAILURES: usize = 8;
/// The default time budget, for all combinations together.
const DEFAULT_SECONDS: u64 = 64;

struct Config {
    seed: u64,
    runs: Option<u64>,
    seconds: u64,
    paging: Vec<(u64, &'static str)>,
    modes: Vec<bool>,
    on: Vec<bool>,
    avoid: Vec<&'static str>,
    replay: Option<u64>,
    /// With `--replay`: keep only the first N snippets.
    first: Option<usize>,
    /// Where the seed of each run goes before it runs: standard error, a
    /// file (`/dev/console` survives L1), or nowhere.
    seed_log: Option<String>,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

fn config() -> &'static Config {
    CONFIG.get().expect("configured")
}

/// Totals over the whole program: snippets per class, runs per ending.
struct Totals {
    classes: Vec<u64>,
    endings: std::collections::BTreeMap<String, u64>,
    runs: u64,
}

static TOTALS: Mutex<Option<Totals>> = Mutex::new(None);

fn usage() -> ! {
    eprintln!(
        "usage: fuzz_guest [--seed N] [--runs N] [--seconds S] [--paging npt|shadow|both]\n\
         \x20                 [--mode 32|64|both] [--avoid CLASS,...|none] [--replay SEED [--first N]]\n\
         \x20                 [--seed-log -|FILE|none] [--list]\n\
         --runs is per paging mode and CPU mode; --seconds is for everything (default {DEFAULT_SECONDS});\n\
         with both, whichever ends first. --avoid defaults to {}.",
        gen::DEFAULT_AVOID.join(",")
    );
    std::process::exit(2)
}

fn parse_num(s: &str) -> u64 {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.unwrap_or_else(|_| usage())
}

fn parse_args() -> Config {
    let mut args = std::env::args().skip(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    let mut c = Config {
        seed: gen::mix(now, u64::from(std::process::id())),
        runs: None,
        seconds: DEFAULT_SECONDS,
        paging: vec![(uapi::PACIFICA_PAGING_NPT, "npt"), (uapi::PACIFICA_PAGING_SHADOW, "shadow")],
        modes: vec![false, true],
        on: vec![true; CLASSES.len()],
        avoid: Vec::new(),
        replay: None,
        first: None,
        seed_log: Some("-".into()),
    };
    let mut avoid: Vec<String> = gen::DEFAULT_AVOID.iter().map(|s| s.to_string()).collect();
    let mut seconds_given = false;
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--seed" => c.seed = parse_num(&val()),
            "--runs" => c.runs = Some(parse_num(&val())),
            "--seconds" => {
                c.seconds = parse_num(&val());
                seconds_given = true;
            }
            "--paging" => {
                c.paging = match val().as_str() {
                    "npt" => vec![(uapi::PACIFICA_PAGING_NPT, "npt")],
                    "shadow" => vec![(uapi::PACIFICA_PAGING_SHADOW, "shadow")],
                    "both" => c.paging,
                    _ => usage(),
                }
            }
            "--mode" => {
                c.modes = match val().as_str() {
                    "32" => vec![false],
                    "64" => vec![true],
                    "both" => c.modes,
                    _ => usage(),
                }
            }
            "--avoid" => {
                let v = val();
                avoid = if v == "none" || v.is_empty() {
                    Vec::new()
                } else {
                    v.split(',').map(str::to_owned).collect()
                };
            }
            "--replay" => c.replay = Some(parse_num(&val())),
            "--first" => c.first = Some(parse_num(&val()) as usize),
            "--seed-log" => {
                let v = val();
                c.seed_log = (v != "none").then_some(v);
            }
            "--list" => {
                for (cl, d) in CLASSES.iter().map(|cl| (cl, gen::DEFAULT_AVOID.contains(&cl.name))) {
                    println!("{:12} {} {}", cl.name, if d { "off" } else { "on " }, cl.what);
                }
                std::process::exit(0)
            }
            _ => usage(),
        }
    }
    for name in &avoid {
        match gen::class_index(name) {
            Some(i) => {
                c.on[i] = false;
                c.avoid.push(CLASSES[i].name);
            }
            None => {
                eprintln!("fuzz_guest: no class {name}; the classes are:");
                for cl in CLASSES {
                    eprintln!("  {:12} {}", cl.name, cl.what);
                }
                std::process::exit(2)
            }
        }
    }
    // A run count alone means no time limit.
    if c.runs.is_some() && !seconds_given {
        c.seconds = u64::MAX / 4;
    }
    c
}

/// The command line that reruns one guest verbosely.
fn replay_line(seed: u64, paging: &str, long: bool) -> String {
    let avoid = if config().avoid.is_empty() { "none".to_owned() } else { config().avoid.join(",") };
    format!(
        "fuzz_guest --replay {seed:#x} --paging {paging} --mode {} --avoid {avoid}",
        if long { 64 } else { 32 }
    )
}

/// Kernel addresses Linux uses (direct map, vmalloc/vmemmap, the CPU
/// entry area). The generator never makes a 64-bit value in them.
fn host_like(v: u64) -> bool {
    (0xffff_8880_0000_0000..0xffff_c880_0000_0000).contains(&v)
        || (0xffff_c900_0000_0000..0xffff_eb00_0000_0000).contains(&v)
        || (0xffff_fe00_0000_0000..0xffff_fe80_0000_0000).contains(&v)
}

/// The kernel's text, from /proc/kallsyms, when it shows addresses.
fn kernel_text() -> Option<(u64, u64)> {
    static TEXT: OnceLock<Option<(u64, u64)>> = OnceLock::new();
    *TEXT.get_or_init(|| {
        let s = std::fs::read_to_string("/proc/kallsyms").ok()?;
        let find = |name: &str| {
            s.lines().find_map(|l| {
                let mut w = l.split_whitespace();
                let (a, _, n) = (w.next()?, w.next()?, w.next()?);
                (n == name).then(|| u64::from_str_radix(a, 16).ok()).flatten()
            })
        };
        let (a, b) = (find("_stext")?, find("_end")?);
        (a != 0 && b > a).then_some((a, b))
    })
}

/// What a run ended with, for the totals: a short category and details.
struct Ending {
    category: String,
    detail: String,
}

fn ending(category: &str, detail: impl Into<String>) -> Ending {
    Ending { category: category.to_owned(), detail: detail.into() }
}

/// Now and then one of the events a VMM sends a vCPU with an APIC: an MSI
/// (any vector, delivery mode, trigger and destination, malformed ones
/// included, whose EINVAL is documented), an NMI, a LINT pin's level.
fn inject_random(vm: &pacifica_selftests::sys::Vm, ev: &pacifica_selftests::sys::VcpuEvents, rng: &mut gen::Rng) -> Result<(), String> {
    if !rng.chance(1, 4) {
        return Ok(());
    }
    let r = match rng.below(4) {
        0 => {
            let address = 0xfee0_0000 | (rng.pick(&[0u64, 0, 0xff, 1]) << 12) | (rng.below(2) << 2);
            let data = rng.below(256) as u32 | (rng.pick(&[0u32, 0, 1, 4, 7]) << 8) | ((rng.below(4) as u32) << 14);
            match vm.signal_msi(address, data) {
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
                other => other.map(drop),
            }
        }
        1 => ev.nmi(),
        _ => ev.set_lint(rng.below(2) as u32, rng.chance(1, 2)),
    };
    r.map_err(|e| format!("an injection ioctl failed: {}", errno::describe(&e)))
}

/// Runs `g` once in a VM of `paging`, in this process. `Err` is an
/// undocumented ending or a broken invariant.
fn run_guest(g: &Guest, paging: u64, seed: u64, verbose: bool) -> Result<Ending, String> {
    let mode = if g.long { Mode::Long64 } else { Mode::Protected32 };
    let f = |e: Failure| match e {
        Failure::Fail(m) | Failure::Skip(m) => m,
    };
    // Odd seeds run with an in-kernel local APIC, so that the guest's
    // accesses to its page and MSRs, and what it asks of it, are the
    // kernel's to serve.
    let lapic = seed % 2 == 1;
    let mut vm = TestVm::build(mode, &g.image, g.entry, RAM_SIZE as usize, paging, lapic).map_err(f)?;
    for (gpa, bytes) in &g.writes {
        vm.mem.write(*gpa, bytes).map_err(|e| e.to_string())?;
    }
    let mut sregs = initial_sregs(mode);
    sregs.gdt = uapi::Dtable { base: pacifica_selftests::layout::FUZZ_GDT_BASE, limit: gen::GDT_LIMIT, pad: [0; 3] };
    sregs.idt = uapi::Dtable { base: pacifica_selftests::layout::IDT_BASE, limit: if g.long { 0xfff } else { 0x7ff }, pad: [0; 3] };
    sregs.tr = Segment { base: gen::TSS_MAIN, limit: gen::TSS_LIMIT, selector: gen::SEL_TSS, attrib: attr::TSS_BUSY | attr::P };
    sregs.cr0 = g.cr0;
    sregs.cr3 = g.cr3;
    sregs.cr4 = g.cr4;
    vm.vcpu.set_sregs(&sregs).map_err(|e| format!("SET_SREGS of the fuzzer's start state: {}", errno::describe(&e)))?;
    vm.vcpu
        .set_regs(&initial_regs(g.entry, gen::STREAM_STACK))
        .map_err(|e| format!("SET_REGS: {}", errno::describe(&e)))?;

    let mut rng = gen::Rng(seed ^ 0x10_da7a);
    // With an APIC, events from "userspace" arrive between the runs too.
    let events = if lapic { Some(vm.vcpu.events().map_err(|e| format!("dup of the vCPU fd: {e}"))?) } else { None };
    let mut exits = 0u32;
    let mut printed = 0u32;
    let mut say = |msg: String| {
        if verbose && printed < 400 {
            diag!("{msg}");
            printed += 1;
        }
    };
    let watchdog = Watchdog::arm(RUN_BUDGET);
    let end = loop {
        if exits >= MAX_USER_EXITS {
            break ending("exit budget", format!("{exits} exits"));
        }
        // The watchdog's signal may land while this thread serves an exit
        // (a long REP OUTS exits every 2 KiB): stop here then too.
        if watchdog.fired() {
            break ending("watchdog", "still running when the watchdog fired");
        }
        if let Some(ev) = &events {
            inject_random(&vm.vm, ev, &mut rng)?;
        }
        let r = vm.vcpu.run();
        let exit = match r {
            Ok(exit) => exit,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {
                if watchdog.fired() {
                    break ending("watchdog", "EINTR: still running when the watchdog fired");
                }
                continue;
            }
            Err(e) => return Err(format!("PACIFICA_RUN failed with {} after {exits} exits", errno::describe(&e))),
        };
        exits += 1;
        let mut note = String::new();
        let mut stop = None;
        match exit {
            Exit::IoOut { port, .. } if u64::from(port) == PORT_DONE => {
                let rip = vm.vcpu.run_page().rip;
                note = "OUT to PORT_DONE".into();
                if rip == g.end + DONE_OUT {
                    stop = Some(ending("end of stream", ""));
                }
                if rip == g.halt + DONE_OUT {
                    stop = Some(ending("handler gave up", ""));
                }
            }
            Exit::IoOut { port, data, size } => {
                if u64::from(port) == PORT_EXC && data.len() == 1 {
                    note = format!("exception {}", pacifica_selftests::guest::vector_name(data[0]));
                } else {
                    note = format!("OUT port {port:#x} size {size} {} bytes", data.len());
                }
            }
            Exit::IoIn { port, size, data } => {
                note = format!("IN port {port:#x} size {size} {} bytes", data.len());
                for b in data.iter_mut() {
                    *b = rng.next() as u8;
                }
            }
            Exit::MmioRead { addr, data } => {
                note = format!("MMIO read {addr:#x} len {}", data.len());
                for b in data.iter_mut() {
                    *b = rng.next() as u8;
                }
            }
            Exit::MmioWrite { addr, data } => note = format!("MMIO write {addr:#x} {data:02x?}"),
            Exit::Hypercall { nr, ret, .. } => {
                note = format!("hypercall {nr:#x}");
                *ret = rng.next();
            }
            Exit::Hlt => {
                let rip = vm.vcpu.run_page().rip;
                note = "HLT".into();
                if rip == g.end + DONE_HLT_AT || rip == g.end + DONE_HLT_AT + 1 {
                    stop = Some(ending("end of stream", ""));
                }
                if rip == g.halt + DONE_HLT_AT || rip == g.halt + DONE_HLT_AT + 1 {
                    stop = Some(ending("handler gave up", ""));
                }
            }
            Exit::Shutdown => stop = Some(ending("shutdown", "")),
            Exit::FailEntry(i) => {
                stop = Some(ending("failed entry", format!("exit code {:#x}", i.exit_code)));
            }
            Exit::InternalError(i) => {
                let name = match i.suberror {
                    uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT => "unhandled exit",
                    uapi::PACIFICA_INTERNAL_EMULATION => "emulation",
                    uapi::PACIFICA_INTERNAL_NPF_IN_RAM => "NPF in RAM",
                    uapi::PACIFICA_INTERNAL_UNSUPPORTED => "unsupported",
                    other => return Err(format!("internal error with undocumented suberror {other}: {i:x?}")),
                };
                // The instruction's bytes come only with an emulation
                // failure, at most 15, and nothing past them: the rest of
                // the field is never kernel memory.
                let n = usize::from(i.insn_len);
                let emulation = i.suberror == uapi::PACIFICA_INTERNAL_EMULATION;
                if n > i.insn_bytes.len() || (n > 0 && !emulation) || i.insn_bytes[n.min(15)..].iter().any(|&b| b != 0) {
                    return Err(format!("internal error with malformed instruction bytes: {i:x?}"));
                }
                stop = Some(ending(
                    &format!("internal error: {name}"),
                    format!("exit code {:#x} info1 {:#x} info2 {:#x} rip {:#x}", i.exit_code, i.exit_info_1, i.exit_info_2, i.rip),
                ));
            }
            Exit::Unknown(reason) => return Err(format!("undocumented exit reason {reason}")),
            Exit::Inta { vector } => {
                // The PIC's vector, or nothing (its line went down).
                *vector = if rng.chance(1, 8) { u32::MAX } else { rng.below(256) as u32 };
                note = format!("INTA: {:#x}", *vector);
            }
            Exit::Eoi { vector } => note = format!("EOI of level-triggered {vector:#x}"),
        }
        if verbose {
            let rip = vm.vcpu.run_page().rip;
            say(format!("{rip:#x}: {}", if note.is_empty() { "stop" } else { &note }));
        }
        if let Some(e) = stop {
            break e;
        }
    };
    drop(watchdog);
    say(format!("ended: {} {}", end.category, end.detail));

    // A shut-down or refused vCPU stays stopped until SET_SREGS.
    if end.category == "shutdown" || end.category == "failed entry" {
        match vm.vcpu.run() {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(format!("RUN after {}: {}, documented EINVAL", end.category, errno::describe(&e))),
            Ok(exit) => {
                return Err(format!(
                    "RUN after {} ran again: {}",
                    end.category,
                    pacifica_selftests::guest::describe_exit(&exit)
                ))
            }
        }
    }
    let regs = vm.vcpu.get_regs().map_err(|e| format!("GET_REGS after the run: {}", errno::describe(&e)))?;
    let s = vm.vcpu.get_sregs().map_err(|e| format!("GET_SREGS after the run: {}", errno::describe(&e)))?;
    let text = kernel_text().is_some_and(|(a, b)| (a..b).contains(&regs.rip));
    if host_like(regs.rip) || text {
        return Err(format!("GET_REGS shows a host RIP {:#x} after {}", regs.rip, end.category));
    }
    let bases = [
        ("GDTR", s.gdt.base),
        ("IDTR", s.idt.base),
        ("TR", s.tr.base),
        ("LDTR", s.ldt.base),
        ("FS", s.fs.base),
        ("GS", s.gs.base),
        ("CS", s.cs.base),
        ("SS", s.ss.base),
    ];
    for (name, base) in bases {
        if host_like(base) {
            return Err(format!("GET_SREGS shows a host {name} base {base:#x} after {}", end.category));
        }
    }
    if s.efer & 1 << 12 != 0 {
        return Err(format!("GET_SREGS shows EFER.SVME ({:#x}); the ABI says without SVME", s.efer));
    }
    // The state the guest reached, given back: SET_SREGS refuses what no
    // VMRUN would take, so a refusal here means the guest got into such a
    // state (noted, not failed: it is the testbed CPU's doing).
    let mut end = end;
    if end.category != "failed entry" && !end.category.starts_with("internal") && end.category != "shutdown" {
        // QEMU keeps the type LTR saw ("available") in TR's hidden state,
        // where a CPU has "busy"; that alone is not worth a note.
        let mut back = s;
        if back.tr.attrib & 0xf == 0x9 || back.tr.attrib & 0xf == 0x1 {
            back.tr.attrib |= 0x2;
        }
        if let Err(e) = vm.vcpu.set_sregs(&back) {
            end.detail = format!(
                "{} [GET_SREGS not accepted by SET_SREGS: {}; CS {:#x}/{:#x} SS {:#x}/{:#x} TR {:#x}/{:#x} LDTR {:#x}/{:#x} CR0 {:#x} CR3 {:#x} CR4 {:#x} EFER {:#x}]",
                end.detail, errno::describe(&e), s.cs.selector, s.cs.attrib, s.ss.selector, s.ss.attrib,
                s.tr.selector, s.tr.attrib, s.ldt.selector, s.ldt.attrib, s.cr0, s.cr3, s.cr4, s.efer
            );
            end.category = format!("{} (state not settable)", end.category);
        }
    }
    let exc = vm.read_u32(EXC_COUNT).unwrap_or(0);
    say(format!(
        "final RIP {:#x} RSP {:#x} CR0 {:#x} CR3 {:#x} CR4 {:#x} EFER {:#x} CS {:#x}/{:#x}; {exc} exceptions, {exits} exits",
        regs.rip, regs.rsp, s.cr0, s.cr3, s.cr4, s.efer, s.cs.selector, s.cs.attrib
    ));
    Ok(end)
}

/// The result of one child.
enum Outcome {
    Ended(String, String),
    Failed(String),
}

/// Runs `g` in a forked child and says how it went.
fn run_in_child(g: &Guest, paging: u64, seed: u64, verbose: bool) -> Outcome {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two fds.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Outcome::Failed(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    let _ = std::io::stdout().flush();
    // SAFETY: the child runs the guest and _exits; it takes no lock the
    // parent's other threads could hold (they only wait on channels).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Outcome::Failed(format!("fork: {}", std::io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: closing the read end, ours in the child.
        unsafe { libc::close(fds[0]) };
        let msg = match run_guest(g, paging, seed, verbose) {
            Ok(e) => format!("ok\t{}\t{}", e.category, e.detail),
            Err(m) => format!("fail\t{m}"),
        };
        let _ = std::io::stdout().flush();
        // SAFETY: writing our buffer to our pipe, then leaving without
        // running the parent's destructors or atexit handlers.
        unsafe {
            libc::write(fds[1], msg.as_ptr().cast(), msg.len());
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the write end.
    unsafe { libc::close(fds[1]) };
    // SAFETY: the read end is ours alone from here on.
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let start = Instant::now();
    let mut status = 0;
    let mut hung = false;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if r < 0 {
            return Outcome::Failed(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
        if !hung && start.elapsed() > CHILD_TIMEOUT {
            hung = true;
            // SAFETY: killing our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if hung && start.elapsed() > CHILD_TIMEOUT + Duration::from_secs(10) {
            return Outcome::Failed(format!(
                "the child hung for {}s and SIGKILL did not end it within 10s (stuck in the kernel)",
                CHILD_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let mut msg = String::new();
    let _ = pipe.read_to_string(&mut msg);
    if hung {
        return Outcome::Failed(format!(
            "the child hung: no result within {}s although the watchdog stops RUN after {:?}",
            CHILD_TIMEOUT.as_secs(),
            RUN_BUDGET
        ));
    }
    if libc::WIFSIGNALED(status) {
        return Outcome::Failed(format!("the child died of signal {}", libc::WTERMSIG(status)));
    }
    match msg.split_once('\t') {
        Some(("ok", rest)) => {
            let (cat, detail) = rest.split_once('\t').unwrap_or((rest, ""));
            Outcome::Ended(cat.to_owned(), detail.to_owned())
        }
        Some(("fail", m)) => Outcome::Failed(m.to_owned()),
        _ => Outcome::Failed(format!("the child said nothing (status {status:#x})")),
    }
}

/// Logs the seed about to run on standard error, for the console of a
/// machine that may not survive it.
fn log_seed(seed: u64, paging: &str, long: bool) {
    static FILE: OnceLock<Option<std::fs::File>> = OnceLock::new();
    let line = format!("# fuzz_guest: {}\n", replay_line(seed, paging, long));
    match config().seed_log.as_deref() {
        None => {}
        Some("-") => {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(line.as_bytes());
            let _ = e.flush();
        }
        Some(path) => {
            let f = FILE.get_or_init(|| std::fs::OpenOptions::new().append(true).create(true).open(path).ok());
            if let Some(mut f) = f.as_ref() {
                let _ = f.write_all(line.as_bytes());
                let _ = f.flush();
            }
        }
    }
}

fn print_totals() {
    let t = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(t) = t.as_ref() else { return };
    let classes: Vec<String> = CLASSES
        .iter()
        .zip(&t.classes)
        .map(|(c, n)| format!("{}={n}{}", c.name, if config().on[gen::class_index(c.name).unwrap()] { "" } else { "(off)" }))
        .collect();
    diag!("snippets per class so far: {}", classes.join(" "));
    let endings: Vec<String> = t.endings.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    diag!("{} runs so far ended with: {}", t.runs, endings.join(", "));
}

/// Runs guests of one paging mode and CPU mode until the share of the
/// time or the run count is used up.
fn fuzz(paging: u64, pname: &'static str, long: bool) -> TestResult {
    let c = config();
    let combos = (c.paging.len() * c.modes.len()) as u64;
    let share = Duration::from_secs(c.seconds / combos.max(1)).max(Duration::from_secs(1));
    let index = c.paging.iter().position(|p| p.0 == paging).unwrap_or(0) * 2 + usize::from(long);
    let baseline = module_info()?;
    let mut kmsg = Kmsg::open().ok();
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut runs = 0u64;
    let mut notables = 0;
    while c.runs.is_none_or(|n| runs < n) && start.elapsed() < share && failures.len() < MAX_FAILURES {
        let seed = gen::mix(c.seed, (index as u64) << 40 | runs);
        runs += 1;
        let g = gen::generate(seed, long, &c.on);
        log_seed(seed, pname, long);
        let outcome = run_in_child(&g, paging, seed, false);
        let mut problems = Vec::new();
        let category = match outcome {
            Outcome::Ended(cat, detail) => {
                // Documented, but worth a look: say which seeds.
                let notable = ["failed entry", "internal error: unhandled exit", "internal error: NPF in RAM", "internal error: unsupported"];
                if (notable.contains(&cat.as_str()) || cat.ends_with("(state not settable)")) && notables < 12 {
                    notables += 1;
                    let names: Vec<&str> = g.snippets.iter().map(|s| CLASSES[s.class].name).collect();
                    diag!("{} ended with {cat} ({detail}); snippets: {}", replay_line(seed, pname, long), names.join(" "));
                }
                cat
            }
            Outcome::Failed(m) => {
                problems.push(m);
                "FAILED".to_owned()
            }
        };
        if let Err(Failure::Fail(m) | Failure::Skip(m)) = ensure_back_to(&baseline, "the VM's child exited") {
            problems.push(m);
        }
        let bad = kmsg.as_mut().map(Kmsg::new_problems).unwrap_or_default();
        if !bad.is_empty() {
            problems.push(format!("the kernel log reports: {}", bad.join(" | ")));
        }
        {
            let mut t = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
            let t = t.get_or_insert_with(|| Totals { classes: vec![0; CLASSES.len()], endings: Default::default(), runs: 0 });
            for s in &g.snippets {
                t.classes[s.class] += 1;
            }
            *t.endings.entry(category).or_default() += 1;
            t.runs += 1;
        }
        if !problems.is_empty() {
            let names: Vec<&str> = g.snippets.iter().map(|s| CLASSES[s.class].name).collect();
            failures.push(format!(
                "seed {seed:#x} ({pname}, {}-bit): {}\n  snippets: {}\n  replay: {}",
                if long { 64 } else { 32 },
                problems.join("; "),
                names.join(" "),
                replay_line(seed, pname, long)
            ));
        }
    }
    diag!(
        "{pname} {}-bit: {runs} guests in {:.1}s (seed {:#x})",
        if long { 64 } else { 32 },
        start.elapsed().as_secs_f64(),
        c.seed
    );
    print_totals();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Failure::Fail(format!("{} of {runs} runs failed:\n{}", failures.len(), failures.join("\n"))))
    }
}

fn npt_32bit() -> TestResult {
    fuzz(uapi::PACIFICA_PAGING_NPT, "npt", false)
}
fn npt_64bit() -> TestResult {
    fuzz(uapi::PACIFICA_PAGING_NPT, "npt", true)
}
fn shadow_32bit() -> TestResult {
    fuzz(uapi::PACIFICA_PAGING_SHADOW, "shadow", false)
}
fn shadow_64bit() -> TestResult {
    fuzz(uapi::PACIFICA_PAGING_SHADOW, "shadow", true)
}

/// `--replay`: one guest, its snippets and every exit.
fn replay() -> TestResult {
    let c = config();
    let seed = c.replay.expect("replay seed");
    let (paging, pname) = c.paging[0];
    let long = c.modes[c.modes.len() - 1];
    let mut g = gen::generate(seed, long, &c.on);
    if let Some(n) = c.first {
        // A reduction: HLT where snippet N began.
        if n < g.snippets.len() {
            let at = g.snippets[n].start;
            let i = (at - g.entry) as usize;
            g.image[i..i + 3].copy_from_slice(&[0xf4, 0xeb, 0xfd]);
            g.end = at;
            g.snippets.truncate(n);
        }
    }
    diag!(
        "guest {seed:#x}: {pname}, {}-bit{}, LTR in the prologue: {}, {} snippets, {} bytes of code",
        if long { 64 } else { 32 },
        if long { String::new() } else { format!(", paging {:?}", g.paging32) },
        g.ltr,
        g.snippets.len(),
        g.image.len()
    );
    for s in &g.snippets {
        let bytes = &g.image[(s.start - g.entry) as usize..(s.end - g.entry) as usize];
        let hex: Vec<String> = bytes.iter().map(|b| format!("0x{b:02x}")).collect();
        diag!("{:#07x} {:11} {}: .byte {}", s.start, CLASSES[s.class].name, s.name, hex.join(","));
    }
    let baseline = module_info()?;
    let mut kmsg = Kmsg::open().ok();
    log_seed(seed, pname, long);
    let outcome = run_in_child(&g, paging, seed, true);
    ensure_back_to(&baseline, "the replayed VM's child exited")?;
    let bad = kmsg.as_mut().map(Kmsg::new_problems).unwrap_or_default();
    pacifica_selftests::ensure!(bad.is_empty(), "the kernel log reports: {}", bad.join(" | "));
    match outcome {
        Outcome::Ended(cat, detail) => {
            diag!("ended with {cat} {detail}");
            Ok(())
        }
        Outcome::Failed(m) => Err(Failure::Fail(m)),
    }
}

fn main() {
    let c = CONFIG.get_or_init(parse_args);
    let avoid = if c.avoid.is_empty() { "none".to_owned() } else { c.avoid.join(",") };
    // Printed before TAP starts, as a diagnostic: the seed to rerun with.
    println!("# fuzz_guest --seed {:#x} --avoid {avoid}", c.seed);
    let _ = kernel_text();
    if c.replay.is_some() {
        tap::run(&[Test { name: "replay", func: replay, timeout: Duration::from_secs(120) }]);
    }
    let combos = (c.paging.len() * c.modes.len()) as u64;
    let secs = match c.runs {
        Some(n) => (n * 3).min(c.seconds / combos.max(1)) + 60,
        None => c.seconds / combos.max(1) + 60,
    };
    let mut tests = Vec::new();
    for &(p, _) in &c.paging {
        for &long in &c.modes {
            let (name, func): (&'static str, fn() -> TestResult) = match (p == uapi::PACIFICA_PAGING_SHADOW, long) {
                (false, false) => ("npt_32bit", npt_32bit),
                (false, true) => ("npt_64bit", npt_64bit),
                (true, false) => ("shadow_32bit", shadow_32bit),
                (true, true) => ("shadow_64bit", shadow_64bit),
            };
            tests.push(Test { name, func, timeout: Duration::from_secs(secs) });
        }
    }
    tap::run(&tests);
}

#[cfg(test)]
mod tests {
    //! Host tests of the generator: no /dev/pacifica needed.

    use super::gen::{self, CLASSES};
    use pacifica_selftests::layout::{BUF_BASE, CODE_BASE, EXC_RESUME};

    fn all_on() -> Vec<bool> {
        vec![true; CLASSES.len()]
    }

    #[test]
    fn every_snippet_resumes_at_the_next_one() {
        for seed in 0..300u64 {
            for long in [false, true] {
                let g = gen::generate(gen::mix(seed, 7), long, &all_on());
                assert!(CODE_BASE + g.image.len() as u64 <= BUF_BASE, "seed {seed}: image too large");
                let mut at = g.snippets.first().map_or(g.end, |s| s.start);
                for s in &g.snippets {
                    assert_eq!(s.start, at, "seed {seed}: snippets are not back to back");
                    let i = (s.start - CODE_BASE) as usize;
                    let mut prefix = vec![0xc7, 0x04, 0x25];
                    prefix.extend_from_slice(&(EXC_RESUME as u32).to_le_bytes());
                    prefix.extend_from_slice(&(s.end as u32).to_le_bytes());
                    assert_eq!(&g.image[i..i + 11], &prefix[..], "seed {seed}: {} does not resume after itself", s.name);
                    at = s.end;
                }
                assert_eq!(at, g.end);
                let done = (g.end - CODE_BASE) as usize;
                assert_eq!(&g.image[done + gen::DONE_OUT as usize], &0xee, "the stream ends with OUT to PORT_DONE");
                assert_eq!(&g.image[done + gen::DONE_HLT_AT as usize], &0xf4, "and HLT");
            }
        }
    }

    #[test]
    fn generation_is_deterministic_and_avoid_works() {
        let a = gen::generate(42, true, &all_on());
        let b = gen::generate(42, true, &all_on());
        assert_eq!(a.image, b.image);
        let mut on = all_on();
        let svm = gen::class_index("svm").unwrap();
        on[svm] = false;
        for seed in 0..200 {
            let g = gen::generate(seed, seed % 2 == 0, &on);
            assert!(g.snippets.iter().all(|s| s.class != svm));
        }
        assert!(gen::DEFAULT_AVOID.iter().all(|n| gen::class_index(n).is_some()));
    }

    #[test]
    fn host_ranges_are_the_kernels() {
        assert!(super::host_like(0xffff_8880_0123_4000));
        assert!(super::host_like(0xffff_fe00_0000_1000));
        assert!(!super::host_like(0xffff_ffff_8000_0000));
        assert!(!super::host_like(0xffff_8000_1234_5678));
        assert!(!super::host_like(0x7fff_ffff_f000));
    }
}

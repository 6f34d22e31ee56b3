// SPDX-License-Identifier: GPL-2.0

//! The ioctl fuzzer: random sequences of every ioctl on every kind of fd,
//! with random and boundary arguments, in forked children, from several
//! threads and processes at once; see Documentation/security.rst for the
//! attacker it plays ("any sequence of ioctls, mmaps and closes on the
//! device, VM and vCPU fds, from several threads and forked processes,
//! with any arguments").
//!
//! ```text
//! fuzz_ioctl [--seed N] [--children N] [--calls N] [--seconds S]
//!            [--threads N] [--only TEST] [--child-seed N]
//! ```
//!
//! Without arguments it runs a bounded budget (about 20 seconds per test in
//! L1) for `make test`; `--seconds S` runs the tests for S seconds in all
//! instead, for `make fuzz`. The seed is printed first; `--seed` replays a
//! run, and a failing child prints its own seed, which `--only TEST
//! --child-seed N` replays alone.
//!
//! Each child opens `/dev/pacifica` and draws its operations from a tape of
//! random words (`ioctl_fuzz::Tape`). Every ioctl's result is checked against
//! `Documentation/uapi.rst` (`ioctl_fuzz::documented`): success, or an errno the
//! document names for that ioctl on that kind of fd; arguments the document
//! says are invalid must fail; a few results are checked further (the
//! run page after RUN, GET_REGS after SET_REGS). The parent fails the test
//! when a child breaks that rule, dies by a signal or hangs (printing the
//! child's last operations), when the module's page accounting is not back
//! at its baseline once the child is gone, or when the kernel log reports
//! a warning, BUG, Oops or the like. Where the kernel has KCOV, sequences
//! that reached new code in the module go into a corpus and are mutated.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pacifica_selftests::ioctl_fuzz::{
    self as fuzz,
    derive, documented, documented_any_kind, ioctl_name, is_defined, mutate, served_by,
    CoverMap, FdKind, Kcov, Kmsg, Rng, Shared, Tape, MMAP_ERRNOS,
};
use pacifica_selftests::guest::{boot_structures, ensure_back_to, initial_regs, initial_sregs, module_info};
use pacifica_selftests::guests;
use pacifica_selftests::layout::*;
use pacifica_selftests::uapi::{self, MemoryRegion, Regs, Sregs};
use pacifica_selftests::watchdog::Thread;
use pacifica_selftests::{diag, ensure, errno, tap, Failure, Mode, Test, TestResult};

const PAGE: u64 = 4096;
/// Guest memory comes from a reserved arena of slots, 2 MiB each and 2 MiB
/// aligned (so the module can use 2 MiB nested pages), with a PROT_NONE
/// guard after the last: a region longer than its mapping runs into our
/// own slots or into PROT_NONE, never into the rest of the process.
const SLOT_SIZE: usize = 2 << 20;
const NR_SLOTS: usize = 10;
const ARENA_SIZE: usize = (NR_SLOTS + 1) * SLOT_SIZE;
/// An address where nothing is mapped (far below the mmap area, far above
/// the program).
const UNMAPPED: u64 = 1 << 44;
/// The group `tools/udev/60-pacifica.rules` gives the device to.
const PACIFICA_GID: libc::gid_t = 200;
const NOBODY: libc::uid_t = 65534;

/// What the command line asked for.
#[derive(Debug, Clone)]
struct Config {
    seed: u64,
    children: Option<usize>,
    calls: Option<usize>,
    seconds: Option<u64>,
    threads: usize,
    only: Option<String>,
    child_seed: Option<u64>,
    /// How many tests run (they share `--seconds`).
    ntests: u64,
}

static CONFIG: OnceLock<Config> = OnceLock::new();

fn config() -> &'static Config {
    CONFIG.get().expect("config parsed in main")
}

fn parse_num(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_args() -> Result<Config, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut cfg = Config {
        seed: fuzz::mix(now ^ u64::from(std::process::id())),
        children: None,
        calls: None,
        seconds: None,
        threads: 4,
        only: None,
        child_seed: None,
        ntests: 4,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--seed" => cfg.seed = parse_num(&val()?).ok_or("bad --seed")?,
            "--children" => cfg.children = Some(parse_num(&val()?).ok_or("bad --children")? as usize),
            "--calls" => cfg.calls = Some(parse_num(&val()?).ok_or("bad --calls")? as usize),
            "--seconds" => cfg.seconds = Some(parse_num(&val()?).ok_or("bad --seconds")?),
            "--threads" => cfg.threads = (parse_num(&val()?).ok_or("bad --threads")? as usize).clamp(1, 16),
            "--only" => cfg.only = Some(val()?),
            "--child-seed" => cfg.child_seed = Some(parse_num(&val()?).ok_or("bad --child-seed")?),
            "-h" | "--help" => {
                return Err("usage: fuzz_ioctl [--seed N] [--children N] [--calls N] [--seconds S] \
                            [--threads N] [--only TEST] [--child-seed N]"
                    .into())
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(cfg)
}

// ---------------------------------------------------------------------------
// The operations.

/// Every operation the generator can choose, in the order of the weight
/// tables and of the result counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
enum Op {
    OpenDevice,
    OpenOther,
    Close,
    Dup,
    CreateVm,
    GetApiVersion,
    GetInfo,
    GetMmapSize,
    SetMemoryRegion,
    CreateVcpu,
    Run,
    GetRegs,
    SetRegs,
    GetSregs,
    SetSregs,
    GetStats,
    UnknownIoctl,
    WrongKindIoctl,
    VfsIoctl,
    MmapRun,
    MunmapRun,
    ScribbleRun,
    MremapRun,
    MapSlot,
    UnmapSlot,
    ProtectSlot,
    DontNeedSlot,
    FillSlot,
    PrepareVcpu,
    Fork,
    ReopenProc,
    CreateIrqchip,
    GetLapic,
    SetLapic,
    SignalMsi,
    Nmi,
    SetLint,
}

const NR_OPS: usize = Op::SetLint as usize + 1;

const OP_NAMES: [&str; NR_OPS] = [
    "open(/dev/pacifica)",
    "open(other)",
    "close",
    "dup",
    "CREATE_VM",
    "GET_API_VERSION",
    "GET_INFO",
    "GET_VCPU_MMAP_SIZE",
    "SET_MEMORY_REGION",
    "CREATE_VCPU",
    "RUN",
    "GET_REGS",
    "SET_REGS",
    "GET_SREGS",
    "SET_SREGS",
    "GET_STATS",
    "unknown ioctl",
    "ioctl on another fd kind",
    "FIOCLEX/FIONCLEX/FIONBIO",
    "mmap(vCPU)",
    "munmap(run page)",
    "write the run page",
    "mremap(run page)",
    "map guest memory",
    "unmap guest memory",
    "mprotect guest memory",
    "MADV_DONTNEED guest memory",
    "write guest memory",
    "set up a guest",
    "fork",
    "open(/proc/self/fd/N)",
    "CREATE_IRQCHIP",
    "GET_LAPIC",
    "SET_LAPIC",
    "SIGNAL_MSI",
    "NMI",
    "SET_LINT",
];

const ALL_OPS: [Op; NR_OPS] = [
    Op::OpenDevice,
    Op::OpenOther,
    Op::Close,
    Op::Dup,
    Op::CreateVm,
    Op::GetApiVersion,
    Op::GetInfo,
    Op::GetMmapSize,
    Op::SetMemoryRegion,
    Op::CreateVcpu,
    Op::Run,
    Op::GetRegs,
    Op::SetRegs,
    Op::GetSregs,
    Op::SetSregs,
    Op::GetStats,
    Op::UnknownIoctl,
    Op::WrongKindIoctl,
    Op::VfsIoctl,
    Op::MmapRun,
    Op::MunmapRun,
    Op::ScribbleRun,
    Op::MremapRun,
    Op::MapSlot,
    Op::UnmapSlot,
    Op::ProtectSlot,
    Op::DontNeedSlot,
    Op::FillSlot,
    Op::PrepareVcpu,
    Op::Fork,
    Op::ReopenProc,
    Op::CreateIrqchip,
    Op::GetLapic,
    Op::SetLapic,
    Op::SignalMsi,
    Op::Nmi,
    Op::SetLint,
];

/// How often each operation is chosen, by the role of the thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Everything, single-threaded.
    Mixed,
    /// Mostly RUN, in the threaded test.
    Runner,
    /// vCPU and VM ioctls, closes and unmaps while another thread runs.
    Hammer,
    /// Like `Mixed`, with forks.
    Forker,
}

fn weights(role: Role) -> [u32; NR_OPS] {
    //    open oth clo dup cvm api inf msz smr cvc run grg srg gsr ssr gst unk wrk vfs mmr mur scr mre map unm pro dnd fil prp frk rpr irq gla sla msi nmi lnt
    match role {
        Role::Mixed => [
            3, 1, 4, 2, 5, 1, 2, 1, 12, 6, 12, 4, 4, 3, 7, 2, 4, 4, 1, 5, 2, 3, 1, 5, 2, 2, 1, 3, 9, 0, 1, 2, 2, 3, 3, 2, 2,
        ],
        Role::Runner => [
            0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 40, 2, 2, 1, 3, 1, 0, 0, 0, 1, 0, 3, 0, 0, 0, 0, 0, 2, 8, 0, 0, 0, 0, 1, 0, 0, 0,
        ],
        // The injections come from other threads while the runner runs.
        Role::Hammer => [
            1, 0, 3, 2, 1, 0, 1, 0, 6, 3, 4, 10, 8, 6, 10, 4, 2, 2, 0, 4, 3, 4, 1, 3, 3, 2, 1, 4, 5, 0, 0, 1, 2, 3, 6, 4, 4,
        ],
        Role::Forker => [
            3, 1, 4, 2, 5, 1, 2, 1, 10, 6, 12, 4, 4, 3, 7, 2, 3, 3, 1, 5, 2, 3, 1, 5, 2, 2, 1, 3, 9, 3, 1, 2, 2, 3, 2, 1, 1,
        ],
    }
}

/// The kinds of fd the child tracks, with the objects behind them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Device,
    /// VM number n of this child.
    Vm(u32),
    /// vCPU `id` of VM n.
    Vcpu(u32, u32),
    Other(&'static str),
}

impl Kind {
    fn oracle(self) -> FdKind {
        match self {
            Kind::Device => FdKind::Device,
            Kind::Vm(_) => FdKind::Vm,
            Kind::Vcpu(..) => FdKind::Vcpu,
            Kind::Other(_) => FdKind::Other,
        }
    }

    fn describe(self) -> String {
        match self {
            Kind::Device => "dev".into(),
            Kind::Vm(v) => format!("vm{v}"),
            Kind::Vcpu(v, id) => format!("vm{v}/vcpu{id}"),
            Kind::Other(what) => what.into(),
        }
    }
}

/// What the child knows of a VM (only what it did itself: a forked
/// process or another thread may have done more).
#[derive(Clone, Debug, Default)]
struct VmModel {
    /// vCPU ids created (ids are never given back, even after a close).
    used_ids: u32,
    regions: Vec<MemoryRegion>,
    /// CREATE_IRQCHIP succeeded.
    irqchip: bool,
}

/// What a single-threaded child knows of a vCPU's state.
#[derive(Clone, Debug, Default)]
struct VcpuModel {
    regs_set: bool,
    sregs_set: bool,
    /// The vCPU may have stopped in a way the model does not follow.
    unknown: bool,
    /// The registers last set, while nothing can have changed them.
    regs: Option<Regs>,
}

#[derive(Clone, Copy, Debug, Default)]
struct SlotState {
    /// Bytes mapped from the slot's start; 0 when the slot is PROT_NONE.
    len: usize,
    prot: i32,
}

#[derive(Clone, Copy, Debug)]
struct RunMap {
    addr: u64,
    len: usize,
    prot: i32,
    vcpu: (u32, u32),
}

/// The child's view of its fds, objects and mappings, shared by its
/// threads. Mappings change, and guest memory and run pages are written,
/// only with the lock held, so that no thread writes a page another has
/// just unmapped.
#[derive(Clone, Debug, Default)]
struct World {
    fds: BTreeMap<RawFd, Kind>,
    /// Numbers this child closed (EBADF, unless opened again since).
    closed: Vec<RawFd>,
    next_vm: u32,
    vms: HashMap<u32, VmModel>,
    vcpus: HashMap<(u32, u32), VcpuModel>,
    slots: [SlotState; NR_SLOTS],
    runs: Vec<RunMap>,
    forks: u32,
}

/// The test kinds: what the children of each test do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChildKind {
    Random,
    Threads,
    Fork,
    Unprivileged,
}

impl ChildKind {
    fn name(self) -> &'static str {
        match self {
            ChildKind::Random => "ioctl_fuzz_random_sequences",
            ChildKind::Threads => "ioctl_fuzz_threads_on_one_vcpu",
            ChildKind::Fork => "ioctl_fuzz_fork_shared_fds",
            ChildKind::Unprivileged => "ioctl_fuzz_unprivileged",
        }
    }
}

/// What every thread of a child shares.
struct Env {
    arena: u64,
    shared: &'static Shared,
    cover: Option<&'static CoverMap>,
    /// Several threads use the same fds: a number may change kind between
    /// the choice and the call, and the model of the objects is partial.
    racy: bool,
    /// One thread of one process: the model of each vCPU is exact.
    solo: bool,
    world: Mutex<World>,
    kicker: Arc<Kicker>,
    /// Set by a thread that failed, so the others stop.
    stop: AtomicBool,
}

/// Signals every registered thread every few milliseconds, so that a RUN
/// (or a vCPU ioctl waiting for another thread's RUN) always ends: the
/// watchdog of every thread at once. The signal's handler does nothing and
/// has no SA_RESTART (`watchdog::install_handlers`, inherited from the
/// parent), so blocking calls return EINTR. (By `watchdog::Thread`, with
/// tgkill: a process forked by the fork test would otherwise inherit
/// glibc's pthread_kill lock held, and its kicker would wait for it.)
struct Kicker {
    threads: Mutex<Vec<Thread>>,
    interval: Duration,
    done: AtomicBool,
}

impl Kicker {
    fn start(interval: Duration) -> Arc<Kicker> {
        let k = Arc::new(Kicker {
            threads: Mutex::new(Vec::new()),
            interval,
            done: AtomicBool::new(false),
        });
        let k2 = k.clone();
        std::thread::spawn(move || {
            pacifica_selftests::watchdog::block_signals_in_this_thread();
            while !k2.done.load(Ordering::Relaxed) {
                std::thread::sleep(k2.interval);
                let threads = k2.threads.lock().unwrap_or_else(|e| e.into_inner());
                for t in threads.iter() {
                    // A registered thread unregisters (under this lock)
                    // before it ends, so `t` is alive.
                    t.signal(libc::SIGUSR1);
                }
            }
        });
        k
    }

    fn register(&self) {
        self.threads.lock().unwrap_or_else(|e| e.into_inner()).push(Thread::current());
    }

    fn unregister(&self) {
        let me = Thread::current();
        self.threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&t| t != me);
    }
}

/// Four pages for ioctl arguments: two read-write, one read-only, one
/// PROT_NONE, so that a structure can sit in good memory, straddle into
/// read-only or inaccessible memory, or lie entirely in either.
struct Scratch {
    base: u64,
}

impl Scratch {
    fn new(rng: &mut Rng) -> Scratch {
        // SAFETY: a fresh anonymous mapping; the protections only change
        // pages of it.
        let base = unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                4 * PAGE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert!(p != libc::MAP_FAILED, "mmap of the scratch pages");
            let bytes = std::slice::from_raw_parts_mut(p.cast::<u8>(), 4 * PAGE as usize);
            for chunk in bytes.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
            }
            libc::mprotect(p.cast::<u8>().add(2 * PAGE as usize).cast(), PAGE as usize, libc::PROT_READ);
            libc::mprotect(p.cast::<u8>().add(3 * PAGE as usize).cast(), PAGE as usize, libc::PROT_NONE);
            p as u64
        };
        Scratch { base }
    }

    /// Whether `addr..addr+len` lies in the read-write pages.
    fn writable(&self, addr: u64, len: usize) -> bool {
        addr >= self.base && addr.saturating_add(len as u64) <= self.base + 2 * PAGE
    }

    fn write(&self, addr: u64, bytes: &[u8]) {
        assert!(self.writable(addr, bytes.len()));
        // SAFETY: checked to lie in our read-write scratch pages.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr as *mut u8, bytes.len()) };
    }

    fn read(&self, addr: u64, len: usize) -> Vec<u8> {
        assert!(self.writable(addr, len));
        // SAFETY: as in `write`.
        unsafe { std::slice::from_raw_parts(addr as *const u8, len).to_vec() }
    }
}

/// The bytes of a uapi structure (they have no implicit padding).
fn bytes_of<T: Copy>(v: &T) -> Vec<u8> {
    // SAFETY: `v` is a live `T`; the uapi structures are repr(C) with
    // explicit padding fields, so every byte is initialised.
    unsafe { std::slice::from_raw_parts((v as *const T).cast::<u8>(), std::mem::size_of::<T>()).to_vec() }
}

fn from_bytes<T: Copy + Default>(b: &[u8]) -> T {
    let mut v = T::default();
    assert_eq!(b.len(), std::mem::size_of::<T>());
    // SAFETY: `b` has exactly the size of `T`, and every bit pattern is a
    // valid uapi structure (integers only).
    unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), (&mut v as *mut T).cast::<u8>(), b.len()) };
    v
}

fn errno_name(e: i32) -> String {
    match errno::name(e) {
        "E?" => format!("errno {e}"),
        n => n.to_owned(),
    }
}

fn names(errnos: &[i32]) -> String {
    if errnos.is_empty() {
        return "none".into();
    }
    errnos.iter().map(|&e| errno_name(e)).collect::<Vec<_>>().join(", ")
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Interesting 64-bit values: limits, sign and canonical boundaries.
const BOUNDARY: [u64; 26] = [
    0,
    1,
    2,
    0x7f,
    0xff,
    0xfff,
    0x1000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x7fff_ffff_ffff,
    0x8000_0000_0000,
    0xffff_8000_0000_0000,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    u64::MAX,
    u64::MAX - 1,
    u64::MAX - 0xfff,
    CODE_BASE,
    STACK_TOP,
    MMIO_BASE,
    1 << 52,
    0xffff_ffff_ffff_f000,
];

/// The tiny guests: the selftests' own images at their labels.
fn entries() -> Vec<(&'static [u8], u64, Mode)> {
    use guests::*;
    use Mode::{Long64 as L, Protected32 as P};
    vec![
        (hlt::IMAGE, hlt::HLT64, L),
        (hlt::IMAGE, hlt::HLT32, P),
        (spin::IMAGE, spin::SPIN64, L),
        (spin::IMAGE, spin::SPIN_WRITE64, L),
        (spin::IMAGE, spin::SPIN32, P),
        (io::IMAGE, io::OUT_SIZES64, L),
        (io::IMAGE, io::IN_SIZES64, L),
        (io::IMAGE, io::REP_INS64, L),
        (io::IMAGE, io::REP_OUTS_LARGE64, L),
        (io::IMAGE, io::REP_INS_DOWN32, P),
        (io::IMAGE, io::INS_SINGLE32, P),
        (io::IMAGE, io::REP_ZERO64, L),
        (mmio::IMAGE, mmio::MMIO_WRITE64, L),
        (mmio::IMAGE, mmio::MMIO_READ64, L),
        (mmio::IMAGE, mmio::MMIO_OTHER64, L),
        (mmio::IMAGE, mmio::MMIO_READ32, P),
        (msr::IMAGE, msr::MSR_ALLOWED64, L),
        (msr::IMAGE, msr::MSR_DENIED64, L),
        (msr::IMAGE, msr::MSR_NONCANONICAL64, L),
        (svm_insn::IMAGE, svm_insn::SVM_INSNS64, L),
        (svm_insn::IMAGE, svm_insn::SVM_INSNS32, P),
        (hardening::IMAGE, hardening::CLI_SPIN64, L),
        (hardening::IMAGE, hardening::CR8_SPIN64, L),
        (hardening::IMAGE, hardening::DB_LOOP64, L),
        (hardening::IMAGE, hardening::FORBIDDEN64, L),
        (hardening::IMAGE, hardening::LME_PAGING_OFF32, P),
        (triple_fault::IMAGE, triple_fault::TRIPLE_UD2_64, L),
        (triple_fault::IMAGE, triple_fault::TRIPLE_INT3_64, L),
        (triple_fault::IMAGE, triple_fault::TRIPLE_UD2_32, P),
        (vmmcall::IMAGE, vmmcall::VMMCALL64, L),
        (vmmcall::IMAGE, vmmcall::VMMCALL32, P),
        (cpuid::IMAGE, cpuid::CPUID_LEAVES64, L),
        (cpuid::IMAGE, cpuid::CPUID_HV32, P),
        (regs::IMAGE, regs::REGS_SWAP64, L),
        (shadow::IMAGE, shadow::PT_SWITCH64, L),
        (shadow::IMAGE, shadow::ALIAS_MANY64, L),
        (lcg::IMAGE, lcg::LCG64, L),
    ]
}


/// One thread of a child: its tape, its scratch pages, its KCOV.
struct Ctx<'a> {
    env: &'a Env,
    tape: Tape,
    scratch: Scratch,
    kcov: Option<Kcov>,
    who: String,
    role: Role,
    calls: usize,
    budget: usize,
    /// Processes this thread forked (fork test).
    children: Vec<libc::pid_t>,
    /// Whether this is a forked grandchild.
    grandchild: bool,
}

/// What an ioctl's caller predicts about its result.
#[derive(Default)]
struct Expect {
    /// The arguments are invalid by uapi.rst: success is a bug.
    must_fail: Option<String>,
    /// The errno uapi.rst names for this case, if it names exactly one
    /// (only when the argument was certainly read as written).
    exact: Option<(i32, String)>,
}

impl<'a> Ctx<'a> {
    fn new(env: &'a Env, seed: u64, prefix: Vec<u64>, who: String, role: Role, budget: usize) -> Self {
        let mut rng = Rng::new(seed ^ 0xabcd);
        Ctx {
            env,
            tape: Tape::new(seed, prefix),
            scratch: Scratch::new(&mut rng),
            kcov: None,
            who,
            role,
            calls: 0,
            budget,
            children: Vec::new(),
            grandchild: false,
        }
    }

    fn world(&self) -> std::sync::MutexGuard<'a, World> {
        self.env.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a violation and ends the child (all its threads).
    fn fail(&self, what: &str, msg: &str) -> ! {
        self.env.shared.fail(&format!("{} call {}: {what}: {msg}", self.who, self.calls));
        self.env.stop.store(true, Ordering::SeqCst);
        // SAFETY: ends the process at once; the shared page has the story.
        unsafe { libc::_exit(1) }
    }

    /// Logs an operation before it is made; returns the log slot.
    fn log(&mut self, what: &str) -> usize {
        self.calls += 1;
        self.env.shared.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = &self.kcov {
            k.reset();
        }
        self.env.shared.log(&format!("{} {what}", self.who))
    }

    /// Logs an operation's result, counts it, and feeds KCOV's trace into
    /// the coverage map.
    fn done(&mut self, slot: usize, op: Op, what: &str, result: Result<i64, i32>) {
        if let (Some(k), Some(cover)) = (&self.kcov, self.env.cover) {
            let new = cover.add(&k.pcs());
            self.env.shared.new_cover.fetch_add(new, Ordering::Relaxed);
        }
        let r = match result {
            Ok(v) => format!("= {v:#x}"),
            Err(e) => format!("= {}", errno_name(e)),
        };
        self.env.shared.log_update(slot, &format!("{} {what} {r}", self.who));
        self.env.shared.count(op as usize, result.map(|_| ()));
    }

    // -- choosing fds and arguments ---------------------------------------

    /// An fd for an operation that wants `want` (`None`: any kind), and
    /// its kind (`None`: no open fd at that number).
    fn pick_fd(&mut self, want: Option<fn(&Kind) -> bool>) -> (RawFd, Option<Kind>) {
        let w = self.world();
        let r = self.tape.below(100);
        let matching: Vec<(RawFd, Kind)> = match want {
            Some(f) => w.fds.iter().filter(|(_, k)| f(k)).map(|(&fd, &k)| (fd, k)).collect(),
            None => w.fds.iter().map(|(&fd, &k)| (fd, k)).collect(),
        };
        if r < 88 && !matching.is_empty() {
            let (fd, k) = matching[self.tape.below(matching.len() as u64) as usize];
            return (fd, Some(k));
        }
        if r < 95 && !w.fds.is_empty() {
            let all: Vec<(RawFd, Kind)> = w.fds.iter().map(|(&fd, &k)| (fd, k)).collect();
            let (fd, k) = all[self.tape.below(all.len() as u64) as usize];
            return (fd, Some(k));
        }
        let closed: Vec<RawFd> = w.closed.iter().copied().filter(|fd| !w.fds.contains_key(fd)).collect();
        let fd = match self.tape.below(5) {
            0 | 1 if !closed.is_empty() => closed[self.tape.below(closed.len() as u64) as usize],
            2 => -1,
            3 => 1 << 20,
            _ => i32::MAX,
        };
        (fd, None)
    }

    fn is_vcpu(k: &Kind) -> bool {
        matches!(k, Kind::Vcpu(..))
    }
    fn is_vm(k: &Kind) -> bool {
        matches!(k, Kind::Vm(_))
    }
    fn is_dev(k: &Kind) -> bool {
        matches!(k, Kind::Device)
    }

    fn boundary(&mut self) -> u64 {
        if self.tape.chance(15) {
            self.tape.word()
        } else {
            self.tape.pick(&BOUNDARY)
        }
    }

    /// A pointer for a structure of `size` bytes, with `content` written
    /// there when the place is ours and writable. Returns the address, a
    /// label, and whether the kernel will read exactly `content`.
    fn pick_ptr(&mut self, size: usize, content: Option<&[u8]>, kernel_writes: bool) -> (u64, String, bool) {
        let s = self.scratch.base;
        let half = (size / 2) as u64;
        let choice = self.tape.weighted(&[62, 6, 4, 4, 3, 3, 2, 2, 2, 2, 1, 1, 2, 2, 3, 2]);
        let (addr, label) = match choice {
            0 => {
                let a = s + 8 * self.tape.below(16);
                (a, "scratch".to_owned())
            }
            1 => (s + 1 + self.tape.below(7), "scratch, misaligned".to_owned()),
            2 => (s + 2 * PAGE - half, "straddling into a read-only page".to_owned()),
            3 => (s + 2 * PAGE, "a read-only page".to_owned()),
            4 => (s + 3 * PAGE - half, "straddling read-only into PROT_NONE".to_owned()),
            5 => (s + 3 * PAGE + self.tape.below(PAGE), "a PROT_NONE page".to_owned()),
            6 => (0, "NULL".to_owned()),
            7 => (1 + self.tape.below(PAGE - 1), "the zero page".to_owned()),
            8 => (UNMAPPED + self.tape.below(PAGE), "unmapped memory".to_owned()),
            9 => (0xffff_8880_0000_0000 + 8 * self.tape.below(1 << 27), "the kernel's direct map".to_owned()),
            10 => (0xffff_ffff_8100_0000, "kernel text".to_owned()),
            11 => (0xffff_ffff_ff60_0000, "the vsyscall page".to_owned()),
            12 => {
                if kernel_writes {
                    (0x0000_8000_0000_0000 - 8, "the end of user space".to_owned())
                } else {
                    (0x0000_7fff_ffff_f000 - half, "crossing the end of user space".to_owned())
                }
            }
            13 => {
                let a = self.tape.pick(&[u64::MAX - half, u64::MAX, 0xffff_ffff_ffff_f000, 0x8000_0000_0000_0000]);
                (a, "near 2^64".to_owned())
            }
            14 => {
                let i = self.tape.below(NR_SLOTS as u64);
                (self.env.arena + i * SLOT_SIZE as u64 + 8 * self.tape.below(64), format!("guest memory slot {i}"))
            }
            _ => {
                let w = self.world();
                match w.runs.first() {
                    Some(r) => (r.addr + 8 * self.tape.below(64), "a run page".to_owned()),
                    None => (0, "NULL".to_owned()),
                }
            }
        };
        let mut known = false;
        if let Some(c) = content {
            if self.scratch.writable(addr, c.len()) {
                self.scratch.write(addr, c);
                known = true;
            } else if self.scratch.writable(addr, 1) {
                let room = (s + 2 * PAGE - addr) as usize;
                self.scratch.write(addr, &c[..room.min(c.len())]);
            }
        }
        (addr, label, known)
    }

    fn gen_regs(&mut self) -> Regs {
        let mut r = if self.tape.chance(60) {
            initial_regs(CODE_BASE + self.tape.below(0x400), STACK_TOP)
        } else {
            Regs::default()
        };
        let all = self.tape.chance(20);
        let n = if all { 18 } else { self.tape.below(4) };
        for _ in 0..n {
            let v = self.boundary();
            let field = self.tape.below(18) as usize;
            let mut words: [u64; 18] = from_bytes(&bytes_of(&r));
            words[field] = v;
            r = from_bytes(&bytes_of(&words));
        }
        if self.tape.chance(25) {
            // TF, IF, DF, IOPL, NT, RF, VM, AC, VIF, VIP, ID, and reserved bits.
            let bit = self.tape.pick(&[8u32, 9, 10, 12, 13, 14, 16, 17, 18, 19, 20, 21, 3, 5, 15, 22, 31, 63]);
            r.rflags ^= 1 << bit;
        }
        r
    }

    fn gen_sregs(&mut self) -> Sregs {
        let mut s = match self.tape.below(20) {
            0..=8 => initial_sregs(Mode::Long64),
            9..=14 => initial_sregs(Mode::Protected32),
            15..=16 => {
                // Real mode: CR0.ET only, 16-bit segments.
                let mut s = initial_sregs(Mode::Protected32);
                s.cr0 = 0x10;
                s.cr3 = 0;
                for seg in [&mut s.cs, &mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss] {
                    seg.limit = 0xffff;
                    seg.selector = 0;
                    seg.attrib = 0x93;
                }
                s.cs.attrib = 0x9b;
                s
            }
            17 => Sregs::default(),
            _ => {
                let bytes: Vec<u8> = (0..std::mem::size_of::<Sregs>() / 8)
                    .flat_map(|_| self.tape.word().to_ne_bytes())
                    .collect();
                from_bytes(&bytes)
            }
        };
        let n = if self.tape.chance(45) { 0 } else { 1 + self.tape.below(3) };
        for _ in 0..n {
            match self.tape.below(13) {
                0 => s.cr0 ^= 1 << self.tape.pick(&[0u32, 1, 2, 3, 4, 5, 16, 18, 29, 30, 31, 6, 32, 63]),
                1 => s.cr4 ^= 1 << self.tape.below(26),
                2 => s.efer ^= 1 << self.tape.pick(&[0u32, 8, 10, 11, 12, 13, 14, 15, 1, 9, 16, 63]),
                3 => s.cr3 = self.boundary(),
                4 => s.cr8 = self.tape.pick(&[0, 1, 7, 15, 16, 17, 0xff, u64::MAX]),
                5 => s.cr2 = self.boundary(),
                6..=8 => {
                    let segs = [&mut s.cs, &mut s.ds, &mut s.es, &mut s.fs, &mut s.gs, &mut s.ss, &mut s.tr, &mut s.ldt];
                    let i = self.tape.below(8) as usize;
                    let seg = segs.into_iter().nth(i).expect("8 segments");
                    match self.tape.below(5) {
                        0 => seg.attrib ^= 1 << self.tape.below(16),
                        1 => seg.attrib = self.tape.word() as u16,
                        2 => seg.base = self.tape.pick(&BOUNDARY),
                        3 => seg.limit = self.tape.pick(&BOUNDARY) as u32,
                        _ => seg.selector = self.tape.word() as u16,
                    }
                }
                9 => s.gdt.base = self.boundary(),
                10 => s.idt.limit = self.tape.word() as u16,
                11 => s.reserved[self.tape.below(8) as usize] = self.tape.word(),
                _ => {
                    s.idt.base = self.boundary();
                    s.gdt.limit = self.tape.word() as u16;
                }
            }
        }
        s
    }

    fn gen_region(&mut self) -> MemoryRegion {
        let slot = match self.tape.below(10) {
            0..=6 => self.tape.below(8) as u32,
            7 => self.tape.below(32) as u32,
            _ => self.tape.pick(&[31u32, 32, 33, 0xff, 0x8000_0000, u32::MAX]),
        };
        let flags = if self.tape.chance(92) { 0 } else { self.tape.pick(&[1u32, 2, 0x8000_0000, u32::MAX]) };
        let size = match self.tape.below(20) {
            0..=3 => PAGE * (1 + self.tape.below(16)),
            4..=6 => self.tape.pick(&[64 << 10, 1 << 20, 2 << 20, 4 << 20]),
            7..=9 => RAM_SIZE,
            10 => 0,
            11 => self.tape.pick(&[1, PAGE - 1, PAGE + 1, (2 << 20) + 1]),
            12 => self.tape.pick(&[256 << 30, (256 << 30) + PAGE, (256 << 30) - PAGE, 128 << 30]),
            13 => self.tape.pick(&[1 << 40, 1 << 52, 1 << 63, !0xfff, u64::MAX]),
            14 => (ARENA_SIZE as u64) + PAGE,
            _ => SLOT_SIZE as u64 * (1 + self.tape.below(3)),
        };
        let gpa = match self.tape.below(20) {
            0..=5 => 0,
            6..=9 => PAGE * self.tape.below(512),
            10..=12 => (2 << 20) * self.tape.below(16),
            13 => self.tape.pick(&[1 << 32, MMIO_BASE, 0xfee0_0000, 0xffff_f000]),
            14 => (1u64 << 52).wrapping_sub(size),
            15 => self.tape.pick(&[1 << 52, (1 << 52) - PAGE, 1 << 51]),
            16 => self.tape.pick(&[!0xfff, 1 << 63, u64::MAX - size.wrapping_sub(1)]),
            17 => PAGE * self.tape.below(64) + 1 + self.tape.below(0xffe),
            _ => self.tape.word() & 0x000f_ffff_ffff_f000,
        };
        let arena = self.env.arena;
        let userspace_addr = match self.tape.below(30) {
            0..=17 => arena + SLOT_SIZE as u64 * self.tape.below(NR_SLOTS as u64),
            18..=19 => arena + SLOT_SIZE as u64 * self.tape.below(NR_SLOTS as u64) + PAGE * self.tape.below(512),
            20 => arena + SLOT_SIZE as u64 * self.tape.below(NR_SLOTS as u64) + 1 + self.tape.below(0xffe),
            21 => self.scratch.base + 2 * PAGE * self.tape.below(2),
            22 => UNMAPPED,
            23 => self.tape.pick(&[0xffff_8880_0000_0000, 0xffff_ffff_8100_0000]),
            24 => self.tape.pick(&[0xffff_ffff_ffff_f000, 0x8000_0000_0000_0000, 0x7fff_ffff_f000]),
            25 => 0,
            26 => arena + NR_SLOTS as u64 * SLOT_SIZE as u64,
            _ => {
                let w = self.world();
                w.runs.first().map_or(UNMAPPED, |r| r.addr)
            }
        };
        MemoryRegion {
            slot,
            flags,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr,
        }
    }

    /// A request number no fd of the module serves.
    fn unknown_cmd(&mut self) -> u32 {
        let ioc = |dir: u32, ty: u32, nr: u32, size: u32| (dir << 30) | ((size & 0x3fff) << 16) | (ty << 8) | nr;
        loop {
            let cmd = match self.tape.below(5) {
                0 => ioc(self.tape.below(4) as u32, 0xaf, self.tape.below(256) as u32, self.tape.below(0x4000) as u32),
                1 => {
                    let (c, _) = self.tape.pick(&fuzz::IOCTLS);
                    ioc(self.tape.below(4) as u32, 0xaf, c & 0xff, (c >> 16) & 0x3fff)
                }
                2 => ioc(self.tape.below(4) as u32, 0xae, self.tape.below(256) as u32, self.tape.below(0x400) as u32),
                3 => {
                    let (c, _) = self.tape.pick(&fuzz::IOCTLS);
                    c ^ (1 << (16 + self.tape.below(14)))
                }
                _ => self.tape.word() as u32,
            };
            // Types the VFS or the fds of other kinds answer themselves
            // (FIOCLEX and friends, FS_IOC_*, FIFREEZE, pipes' watch
            // queues): not "unknown" on every fd.
            let ty = (cmd >> 8) & 0xff;
            if !is_defined(cmd) && ![0x00, 0x12, 0x15, 0x54, 0x57, 0x58, 0x66, 0x94].contains(&ty) {
                return cmd;
            }
        }
    }

    // -- the checked calls ------------------------------------------------

    /// `ioctl(fd, cmd, arg)` checked against uapi.rst. `kind` is what the
    /// child believes `fd` to be. Returns the result and tracks new fds.
    // The one checked ioctl: every part of the call is its own argument.
    #[allow(clippy::too_many_arguments)]
    fn ioctl(&mut self, op: Op, fd: RawFd, kind: Option<Kind>, cmd: u32, arg: u64, arg_label: &str, expect: Expect) -> Result<i64, i32> {
        let hi = if self.tape.chance(3) { self.tape.word() << 32 } else { 0 };
        let what = format!(
            "ioctl({fd}={}, {}{}, {arg_label})",
            kind.map_or("none".into(), Kind::describe),
            if is_defined(cmd) { ioctl_name(cmd).to_owned() } else { format!("{cmd:#x}") },
            if hi != 0 { format!(" | {hi:#x}") } else { String::new() },
        );
        let slot = self.log(&what);
        // SAFETY: the kernel validates `arg` (every address the fuzzer
        // passes is ours to scribble on, or not mapped writable at all).
        let ret = unsafe { libc::ioctl(fd, (u64::from(cmd) | hi) as libc::c_ulong, arg as libc::c_ulong) };
        let result = if ret < 0 { Err(last_errno()) } else { Ok(i64::from(ret)) };
        self.done(slot, op, &what, result);
        let fd_kind = kind.map_or(FdKind::Invalid, Kind::oracle);
        match result {
            Err(e) => {
                let allowed: Vec<i32> = if self.env.racy {
                    documented_any_kind(cmd)
                } else {
                    documented(cmd, fd_kind).to_vec()
                };
                if !allowed.contains(&e) {
                    self.fail(&what, &format!(
                        "failed with {}, which Documentation/uapi.rst does not document for {} on a {:?} fd (documented: {})",
                        errno_name(e), ioctl_name(cmd), fd_kind, names(&allowed)
                    ));
                }
                if let Some((ex, why)) = expect.exact {
                    if e != ex && !(e == libc::EINTR && documented(cmd, fd_kind).contains(&libc::EINTR)) {
                        self.fail(&what, &format!("failed with {}, but uapi.rst says {} for {why}", errno_name(e), errno_name(ex)));
                    }
                }
            }
            Ok(v) => {
                let served = served_by(cmd);
                let success_possible = if self.env.racy { served.is_some() } else { served == Some(fd_kind) };
                if !success_possible {
                    self.fail(&what, &format!("succeeded (returned {v}) on a {fd_kind:?} fd; uapi.rst: ENOTTY/EBADF"));
                }
                if let Some(why) = &expect.must_fail {
                    if matches!(cmd, uapi::PACIFICA_CREATE_VM | uapi::PACIFICA_CREATE_VCPU) {
                        // SAFETY: closing the fd the call just gave us.
                        unsafe { libc::close(v as RawFd) };
                    }
                    self.fail(&what, &format!("succeeded (returned {v}), but must fail: {why}"));
                }
                let ok = match cmd {
                    uapi::PACIFICA_GET_API_VERSION => v == i64::from(uapi::PACIFICA_API_VERSION),
                    uapi::PACIFICA_GET_VCPU_MMAP_SIZE => v == uapi::PACIFICA_RUN_PAGE_SIZE as i64,
                    uapi::PACIFICA_CREATE_VM | uapi::PACIFICA_CREATE_VCPU => v >= 0,
                    _ => v == 0,
                };
                if !ok {
                    self.fail(&what, &format!("returned {v}"));
                }
                if matches!(cmd, uapi::PACIFICA_CREATE_VM | uapi::PACIFICA_CREATE_VCPU) {
                    let newfd = v as RawFd;
                    let mut w = self.world();
                    let new_kind = match (cmd, kind) {
                        (uapi::PACIFICA_CREATE_VM, _) => {
                            let id = w.next_vm;
                            w.next_vm += 1;
                            w.vms.insert(id, VmModel::default());
                            Kind::Vm(id)
                        }
                        // Racy, the number may have become another VM's by
                        // the time of the call: the model then errs, which
                        // only steers later choices (racy children make no
                        // predictions from it).
                        (_, Some(Kind::Vm(vm))) => {
                            if let Some(m) = w.vms.get_mut(&vm) {
                                m.used_ids |= 1 << arg;
                            }
                            w.vcpus.insert((vm, arg as u32), VcpuModel::default());
                            Kind::Vcpu(vm, arg as u32)
                        }
                        _ => {
                            // Racy: a number believed not to be a VM was one
                            // by the time of the call.
                            let id = w.next_vm;
                            w.next_vm += 1;
                            w.vms.insert(id, VmModel::default());
                            Kind::Vcpu(id, arg as u32)
                        }
                    };
                    w.fds.insert(newfd, new_kind);
                }
            }
        }
        result
    }

    /// A plain system call's result, checked against the errnos allowed.
    fn check_sys(&mut self, what: &str, result: Result<i64, i32>, allowed: &[i32]) {
        if let Err(e) = result {
            if !allowed.contains(&e) {
                self.fail(what, &format!("failed with {}, expected one of {}", errno_name(e), names(allowed)));
            }
        }
    }

    // -- the operations ---------------------------------------------------

    fn step(&mut self) {
        let op = ALL_OPS[self.tape.weighted(&weights(self.role))];
        // An operation on an object that does not exist is mostly an
        // ENOTTY or EBADF: usually make the object first.
        // 0: a device fd, 1: a VM fd, 2: a vCPU fd.
        let need = match op {
            Op::CreateVm | Op::GetApiVersion | Op::GetInfo | Op::GetMmapSize => Some(0),
            Op::SetMemoryRegion | Op::CreateVcpu | Op::CreateIrqchip | Op::SignalMsi => Some(1),
            Op::Run | Op::GetRegs | Op::SetRegs | Op::GetSregs | Op::SetSregs | Op::GetStats | Op::MmapRun
            | Op::PrepareVcpu | Op::GetLapic | Op::SetLapic | Op::Nmi | Op::SetLint => Some(2),
            _ => None,
        };
        if let Some(need) = need {
            let has = {
                let w = self.world();
                [Self::is_dev, Self::is_vm, Self::is_vcpu].map(|g| w.fds.values().any(g))
            };
            if !has[need] && self.tape.chance(75) {
                let first = if need == 2 && has[1] {
                    Op::CreateVcpu
                } else if need >= 1 && has[0] {
                    Op::CreateVm
                } else {
                    Op::OpenDevice
                };
                return self.do_op(first);
            }
        }
        self.do_op(op);
    }

    fn do_op(&mut self, op: Op) {
        match op {
            Op::OpenDevice => self.open_device(),
            Op::OpenOther => self.open_other(),
            Op::Close => self.close(),
            Op::Dup => self.dup(),
            Op::CreateVm => self.create_vm(),
            Op::GetApiVersion | Op::GetMmapSize => {
                let (fd, kind) = self.pick_fd(Some(Self::is_dev));
                let cmd = if op == Op::GetApiVersion { uapi::PACIFICA_GET_API_VERSION } else { uapi::PACIFICA_GET_VCPU_MMAP_SIZE };
                let arg = self.boundary();
                let _ = self.ioctl(op, fd, kind, cmd, arg, &format!("{arg:#x}"), Expect::default());
            }
            Op::GetInfo => self.get_struct(op, Self::is_dev, uapi::PACIFICA_GET_INFO, std::mem::size_of::<uapi::ModuleInfo>()),
            Op::SetMemoryRegion => self.set_memory_region(),
            Op::CreateVcpu => self.create_vcpu(),
            Op::CreateIrqchip => self.create_irqchip(),
            Op::GetLapic => {
                self.get_struct(op, Self::is_vcpu, uapi::PACIFICA_GET_LAPIC, std::mem::size_of::<uapi::LapicState>())
            }
            Op::SetLapic => self.set_lapic(),
            Op::SignalMsi => self.signal_msi(),
            Op::Nmi => {
                let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
                let arg = if self.tape.chance(80) { 0 } else { self.boundary() };
                let _ = self.ioctl(op, fd, kind, uapi::PACIFICA_NMI, arg, &format!("{arg:#x}"), Expect::default());
            }
            Op::SetLint => self.set_lint(),
            Op::Run => self.run(),
            Op::GetRegs => self.get_regs(),
            Op::SetRegs => self.set_regs(),
            Op::GetSregs => self.get_struct(op, Self::is_vcpu, uapi::PACIFICA_GET_SREGS, std::mem::size_of::<Sregs>()),
            Op::SetSregs => {
                let s = self.gen_sregs();
                self.set_sregs(&s);
            }
            Op::GetStats => self.get_struct(op, Self::is_vcpu, uapi::PACIFICA_GET_STATS, std::mem::size_of::<uapi::ExitStats>()),
            Op::UnknownIoctl => {
                let (fd, kind) = self.pick_fd(None);
                let cmd = self.unknown_cmd();
                let (arg, label, _) = self.pick_ptr(256, None, true);
                let expect = Expect { must_fail: Some("an unknown request number".into()), exact: None };
                let _ = self.ioctl(op, fd, kind, cmd, arg, &label, expect);
            }
            Op::WrongKindIoctl => {
                let (fd, kind) = self.pick_fd(None);
                let (cmd, _) = self.tape.pick(&fuzz::IOCTLS);
                // On the right kind, what changes a vCPU's state is the
                // other operations' job (they keep the model).
                if kind.map(Kind::oracle) == served_by(cmd)
                    && matches!(cmd, uapi::PACIFICA_RUN | uapi::PACIFICA_SET_REGS | uapi::PACIFICA_SET_SREGS)
                {
                    return;
                }
                let (arg, label) = if self.tape.chance(50) {
                    let (a, l, _) = self.pick_ptr(256, None, true);
                    (a, l)
                } else {
                    let v = self.tape.below(4);
                    (v, format!("{v}"))
                };
                // RUN and CREATE_* on the right kind are the other ops' job,
                // but are harmless here too.
                let _ = self.ioctl(op, fd, kind, cmd, arg, &label, Expect::default());
            }
            Op::VfsIoctl => self.vfs_ioctl(),
            Op::MmapRun => self.mmap_run(),
            Op::MunmapRun => self.munmap_run(),
            Op::ScribbleRun => self.scribble_run(),
            Op::MremapRun => self.mremap_run(),
            Op::MapSlot => {
                self.map_slot(None);
            }
            Op::UnmapSlot => self.unmap_slot(),
            Op::ProtectSlot => self.protect_slot(),
            Op::DontNeedSlot => self.dontneed_slot(),
            Op::FillSlot => self.fill_slot(),
            Op::PrepareVcpu => self.prepare_vcpu(),
            Op::Fork => self.fork(),
            Op::ReopenProc => self.reopen_proc(),
        }
    }

    fn add_fd(&mut self, fd: RawFd, kind: Kind) {
        let mut w = self.world();
        w.fds.insert(fd, kind);
    }

    fn too_many_fds(&self) -> bool {
        self.world().fds.len() >= 40
    }

    fn open_device(&mut self) {
        if self.too_many_fds() {
            return self.close();
        }
        let flags = self.tape.pick(&[libc::O_RDWR, libc::O_RDWR, libc::O_RDONLY, libc::O_WRONLY, libc::O_RDWR | libc::O_NONBLOCK]);
        let what = format!("open(/dev/pacifica, {flags:#x})");
        let slot = self.log(&what);
        // SAFETY: a valid C string.
        let fd = unsafe { libc::open(c"/dev/pacifica".as_ptr(), flags | libc::O_CLOEXEC) };
        let r = if fd < 0 { Err(last_errno()) } else { Ok(i64::from(fd)) };
        self.done(slot, Op::OpenDevice, &what, r);
        self.check_sys(&what, r, &[libc::EMFILE, libc::ENFILE]);
        if fd >= 0 {
            self.add_fd(fd, Kind::Device);
        }
    }

    fn open_other(&mut self) {
        if self.too_many_fds() {
            return self.close();
        }
        let what = "open(a pipe, /dev/null or an eventfd)";
        let slot = self.log(what);
        let mut new = Vec::new();
        // SAFETY: plain system calls creating fds we then own.
        unsafe {
            match self.tape.below(3) {
                0 => {
                    let mut p = [0; 2];
                    if libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) == 0 {
                        new.push((p[0], Kind::Other("pipe")));
                        new.push((p[1], Kind::Other("pipe")));
                    }
                }
                1 => {
                    let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
                    if fd >= 0 {
                        new.push((fd, Kind::Other("/dev/null")));
                    }
                }
                _ => {
                    let fd = libc::eventfd(0, libc::EFD_CLOEXEC);
                    if fd >= 0 {
                        new.push((fd, Kind::Other("eventfd")));
                    }
                }
            }
        }
        self.done(slot, Op::OpenOther, what, Ok(new.len() as i64));
        for (fd, k) in new {
            self.add_fd(fd, k);
        }
    }

    fn close(&mut self) {
        let (fd, kind) = self.pick_fd(None);
        {
            let mut w = self.world();
            if w.fds.remove(&fd).is_some() {
                w.closed.push(fd);
                if w.closed.len() > 32 {
                    w.closed.remove(0);
                }
            }
        }
        let what = format!("close({fd}={})", kind.map_or("none".into(), Kind::describe));
        let slot = self.log(&what);
        // SAFETY: closing a number the child opened (or none at all); never
        // one of the harness's own fds, which are not in the pool.
        let r = unsafe { libc::close(fd) };
        let r = if r < 0 { Err(last_errno()) } else { Ok(0) };
        self.done(slot, Op::Close, &what, r);
        if kind.is_some() && !self.env.racy {
            self.check_sys(&what, r, &[]);
        } else {
            self.check_sys(&what, r, &[libc::EBADF]);
        }
    }

    fn dup(&mut self) {
        if self.too_many_fds() {
            return self.close();
        }
        let (fd, kind) = self.pick_fd(None);
        let target = if self.tape.chance(50) {
            None
        } else {
            let w = self.world();
            let mut cands: Vec<RawFd> = w.fds.keys().copied().collect();
            cands.extend(w.closed.iter().copied());
            cands.push(100 + (self.tape.below(20) as RawFd));
            drop(w);
            Some(cands[self.tape.below(cands.len() as u64) as usize])
        };
        let what = match target {
            None => format!("dup({fd}={})", kind.map_or("none".into(), Kind::describe)),
            Some(t) => format!("dup3({fd}={}, {t})", kind.map_or("none".into(), Kind::describe)),
        };
        let slot = self.log(&what);
        // SAFETY: duplicating (possibly onto) numbers the child owns.
        let r = unsafe {
            match target {
                None => libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3),
                Some(t) if t == fd => libc::dup2(fd, t),
                Some(t) => libc::dup3(fd, t, libc::O_CLOEXEC),
            }
        };
        let r = if r < 0 { Err(last_errno()) } else { Ok(i64::from(r)) };
        self.done(slot, Op::Dup, &what, r);
        self.check_sys(&what, r, &[libc::EBADF, libc::EMFILE, libc::EBUSY, libc::EINTR]);
        if let (Ok(new), Some(k)) = (r, kind) {
            self.add_fd(new as RawFd, k);
        } else if let Ok(new) = r {
            // Racy: the source was something the model had just lost.
            self.add_fd(new as RawFd, Kind::Other("unknown"));
        }
    }

    fn live_vms(&self) -> usize {
        let w = self.world();
        let mut ids: Vec<u32> = w
            .fds
            .values()
            .filter_map(|k| match k {
                Kind::Vm(v) | Kind::Vcpu(v, _) => Some(*v),
                _ => None,
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    fn create_vm(&mut self) {
        if self.too_many_fds() || self.live_vms() >= 4 {
            return self.close();
        }
        let (fd, kind) = self.pick_fd(Some(Self::is_dev));
        let mode = if self.tape.chance(85) {
            self.tape.below(2)
        } else {
            self.tape.pick(&[2, 3, 0xff, 1 << 32, (1 << 32) | 1, 1 << 63, u64::MAX, u64::MAX - 1])
        };
        let expect = Expect {
            must_fail: (mode > 1).then(|| format!("paging mode {mode:#x}")),
            exact: None,
        };
        let _ = self.ioctl(Op::CreateVm, fd, kind, uapi::PACIFICA_CREATE_VM, mode, &format!("{mode:#x}"), expect);
    }

    fn create_vcpu(&mut self) {
        if self.too_many_fds() {
            return self.close();
        }
        let (fd, kind) = self.pick_fd(Some(Self::is_vm));
        let id = if self.tape.chance(85) {
            self.tape.below(u64::from(uapi::PACIFICA_MAX_VCPUS))
        } else {
            self.tape.pick(&[8, 9, 31, 32, 64, 0xff, 1 << 32, 1 << 63, u64::MAX])
        };
        let mut expect = Expect::default();
        if id >= u64::from(uapi::PACIFICA_MAX_VCPUS) {
            expect.must_fail = Some(format!("vCPU id {id:#x} >= PACIFICA_MAX_VCPUS"));
        } else if let Some(Kind::Vm(vm)) = kind {
            let w = self.world();
            if !self.env.racy && w.vms.get(&vm).is_some_and(|m| m.used_ids & (1 << id) != 0) {
                expect.must_fail = Some(format!("vCPU id {id} was created before"));
            }
        }
        let _ = self.ioctl(Op::CreateVcpu, fd, kind, uapi::PACIFICA_CREATE_VCPU, id, &format!("{id:#x}"), expect);
    }

    /// CREATE_IRQCHIP: arg 0 on a VM without vCPUs succeeds once; after a
    /// vCPU it is EBUSY, a second time EEXIST, any other arg EINVAL.
    fn create_irqchip(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vm));
        let arg = if self.tape.chance(80) { 0 } else { self.boundary() };
        let mut expect = Expect::default();
        if arg != 0 {
            expect.must_fail = Some(format!("arg {arg:#x} is not 0"));
        } else if let Some(Kind::Vm(vm)) = kind {
            let w = self.world();
            match w.vms.get(&vm) {
                Some(m) if !self.env.racy && m.irqchip => expect.must_fail = Some("the irqchip exists".into()),
                Some(m) if !self.env.racy && m.used_ids != 0 => expect.must_fail = Some("the VM has vCPUs".into()),
                _ => {}
            }
        }
        if self.ioctl(Op::CreateIrqchip, fd, kind, uapi::PACIFICA_CREATE_IRQCHIP, arg, &format!("{arg:#x}"), expect).is_ok() {
            if let Some(Kind::Vm(vm)) = kind {
                if let Some(m) = self.world().vms.get_mut(&vm) {
                    m.irqchip = true;
                }
            }
        }
    }

    fn get_struct(&mut self, op: Op, want: fn(&Kind) -> bool, cmd: u32, size: usize) {
        let (fd, kind) = self.pick_fd(Some(want));
        let (arg, label, _) = self.pick_ptr(size, None, true);
        let r = self.ioctl(op, fd, kind, cmd, arg, &label, Expect::default());
        if r.is_ok() && cmd == uapi::PACIFICA_GET_INFO && self.scratch.writable(arg, size) {
            let info: uapi::ModuleInfo = from_bytes(&self.scratch.read(arg, size));
            if info.api_version != uapi::PACIFICA_API_VERSION {
                self.fail(&label, &format!("GET_INFO gave api_version {}", info.api_version));
            }
        }
    }

    fn set_memory_region(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vm));
        let r = self.gen_region();
        let _ = self.set_region(fd, kind, r);
    }

    /// SET_MEMORY_REGION with `r`, with the predictions uapi.rst allows.
    fn set_region(&mut self, fd: RawFd, kind: Option<Kind>, r: MemoryRegion) -> Result<i64, i32> {
        let bytes = bytes_of(&r);
        let (arg, label, known) = self.pick_ptr(bytes.len(), Some(&bytes), false);
        let label = format!(
            "{label}: slot {} flags {:#x} gpa {:#x} size {:#x} uaddr {:#x}",
            r.slot, r.flags, r.guest_phys_addr, r.memory_size, r.userspace_addr
        );
        let mut expect = Expect::default();
        let vm = match kind {
            Some(Kind::Vm(vm)) => Some(vm),
            _ => None,
        };
        let invalid = if r.flags != 0 {
            Some("flags not 0")
        } else if r.slot >= uapi::PACIFICA_MAX_MEMORY_REGIONS {
            Some("slot out of range")
        } else if r.memory_size == 0 {
            Some("size 0")
        } else if !(r.guest_phys_addr | r.memory_size | r.userspace_addr).is_multiple_of(PAGE) {
            Some("misalignment")
        } else if r.guest_phys_addr.checked_add(r.memory_size).is_none_or(|end| end > 1 << 52)
            || r.userspace_addr.checked_add(r.memory_size).is_none()
        {
            Some("a range that wraps or ends beyond 2^52")
        } else {
            None
        };
        if known {
            if let Some(why) = invalid {
                expect.must_fail = Some(why.into());
                if !self.env.racy && vm.is_some() {
                    expect.exact = Some((libc::EINVAL, why.into()));
                }
            } else if let (Some(vm), false) = (vm, self.env.racy) {
                let w = self.world();
                if let Some(m) = w.vms.get(&vm) {
                    let end = r.guest_phys_addr + r.memory_size;
                    let total: u64 = m.regions.iter().map(|e| e.memory_size).sum();
                    if m.regions.iter().any(|e| e.slot == r.slot) {
                        expect.must_fail = Some(format!("slot {} is in use", r.slot));
                    } else if m.regions.iter().any(|e| r.guest_phys_addr < e.guest_phys_addr + e.memory_size && e.guest_phys_addr < end) {
                        expect.must_fail = Some("it overlaps another region".into());
                    } else if total + r.memory_size > uapi::PACIFICA_MAX_GUEST_RAM {
                        expect.must_fail = Some("the VM's regions would exceed 256 GiB".into());
                    }
                }
            }
        }
        let res = self.ioctl(Op::SetMemoryRegion, fd, kind, uapi::PACIFICA_SET_MEMORY_REGION, arg, &label, expect);
        if res.is_ok() && known {
            if let Some(vm) = vm {
                let mut w = self.world();
                if let Some(m) = w.vms.get_mut(&vm) {
                    m.regions.push(r);
                }
            }
        }
        res
    }

    fn vcpu_model_mut(w: &mut World, kind: Option<Kind>) -> Option<&mut VcpuModel> {
        match kind {
            Some(Kind::Vcpu(vm, id)) => w.vcpus.get_mut(&(vm, id)),
            _ => None,
        }
    }

    fn run(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        if self.tape.chance(20) {
            self.scribble_run();
        }
        let mut expect = Expect::default();
        if self.env.solo {
            let mut w = self.world();
            if let Some(m) = Self::vcpu_model_mut(&mut w, kind) {
                if !(m.unknown || m.regs_set && m.sregs_set) {
                    expect.must_fail = Some(format!(
                        "the vCPU has not had {} set since its creation or its last shutdown or failed entry",
                        if m.regs_set { "SET_SREGS" } else { "SET_REGS" }
                    ));
                }
                m.regs = None;
            }
        }
        let arg = if self.tape.chance(80) { 0 } else { self.boundary() };
        let r = self.ioctl(Op::Run, fd, kind, uapi::PACIFICA_RUN, arg, &format!("{arg:#x}"), expect);
        if r.is_ok() && self.env.solo {
            self.check_exit(kind);
        }
        // Stopped (after a shutdown, say): usually give it a guest again.
        // (The word is drawn whatever the result, so that a RUN that
        // ends differently on replay shifts no later choice.)
        let again = self.tape.chance(60);
        if r == Err(libc::EINVAL) && again {
            self.prepare_vcpu_on(fd, kind);
        }
    }

    /// After a successful RUN in a single-threaded child: the run page
    /// describes a documented exit, and the model follows its effect.
    fn check_exit(&mut self, kind: Option<Kind>) {
        let Some(Kind::Vcpu(vm, id)) = kind else { return };
        let mut w = self.world();
        let Some(map) = w.runs.iter().find(|m| m.vcpu == (vm, id) && m.prot & libc::PROT_READ != 0).copied() else {
            // Without the page the exit is unknown: so is the state.
            if let Some(m) = w.vcpus.get_mut(&(vm, id)) {
                m.unknown = true;
            }
            return;
        };
        // SAFETY: a live, readable, page-sized mapping of the run page
        // (tracked under the world lock, which we hold).
        let run: uapi::Run = unsafe { std::ptr::read_volatile(map.addr as *const uapi::Run) };
        let regions = w.vms.get(&vm).map(|m| m.regions.clone()).unwrap_or_default();
        let mut problem = None;
        let mut stopped = false;
        // SAFETY (for the union reads): every variant is plain integers.
        match run.exit_reason {
            uapi::PACIFICA_EXIT_IO => {
                let io = unsafe { run.exit.io };
                let bytes = u64::from(io.size) * u64::from(io.count);
                if ![1, 2, 4].contains(&io.size) || io.direction > 1 || io.count == 0
                    || io.data_offset < uapi::PACIFICA_RUN_IO_DATA_OFFSET as u64
                    || io.data_offset + bytes > (uapi::PACIFICA_RUN_IO_DATA_OFFSET + uapi::PACIFICA_RUN_IO_DATA_SIZE) as u64
                {
                    problem = Some(format!("an I/O exit outside the documented values: {io:?}"));
                }
            }
            uapi::PACIFICA_EXIT_MMIO => {
                // SAFETY: every variant of the exit union is integers, so any
                // bytes the module (or another thread) left are a valid MmioExit.
                let mmio = unsafe { run.exit.mmio };
                let end = mmio.phys_addr.wrapping_add(u64::from(mmio.len));
                let in_ram = regions.iter().any(|r| {
                    mmio.phys_addr >= r.guest_phys_addr && end <= r.guest_phys_addr + r.memory_size && end > mmio.phys_addr
                });
                if ![1, 2, 4, 8].contains(&mmio.len) || mmio.is_write > 1 {
                    problem = Some(format!("an MMIO exit outside the documented values: {mmio:?}"));
                } else if in_ram {
                    problem = Some(format!("an MMIO exit at {:#x}, inside a registered region", mmio.phys_addr));
                }
            }
            uapi::PACIFICA_EXIT_HYPERCALL | uapi::PACIFICA_EXIT_HLT => {}
            uapi::PACIFICA_EXIT_SHUTDOWN | uapi::PACIFICA_EXIT_FAIL_ENTRY => stopped = true,
            uapi::PACIFICA_EXIT_INTERNAL_ERROR => {
                // SAFETY: as for the MMIO exit above: plain integers.
                let i = unsafe { run.exit.internal };
                if !(1..=4).contains(&i.suberror) {
                    problem = Some(format!("an internal error with suberror {}", i.suberror));
                }
            }
            other => problem = Some(format!("exit reason {other}, which uapi.rst does not define")),
        }
        if let Some(m) = w.vcpus.get_mut(&(vm, id)) {
            if stopped {
                m.sregs_set = false;
            }
            if run.exit_reason == uapi::PACIFICA_EXIT_INTERNAL_ERROR {
                m.unknown = true;
            }
        }
        drop(w);
        if let Some(p) = problem {
            self.fail("RUN", &p);
        }
    }

    fn get_regs(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        let size = std::mem::size_of::<Regs>();
        let (arg, label, _) = self.pick_ptr(size, None, true);
        let r = self.ioctl(Op::GetRegs, fd, kind, uapi::PACIFICA_GET_REGS, arg, &label, Expect::default());
        if r.is_ok() && self.env.solo && self.scratch.writable(arg, size) {
            let got: Regs = from_bytes(&self.scratch.read(arg, size));
            let mut w = self.world();
            if let Some(set) = Self::vcpu_model_mut(&mut w, kind).and_then(|m| m.regs) {
                let want = Regs { rflags: set.rflags | 2, ..set };
                if got != want {
                    drop(w);
                    self.fail(&label, &format!("GET_REGS after SET_REGS gave {got:x?}, set {set:x?}"));
                }
            }
        }
    }

    fn set_regs(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        let regs = self.gen_regs();
        self.set_regs_to(fd, kind, &regs);
    }

    fn set_regs_to(&mut self, fd: RawFd, kind: Option<Kind>, regs: &Regs) {
        let bytes = bytes_of(regs);
        let (arg, label, known) = self.pick_ptr(bytes.len(), Some(&bytes), false);
        let r = self.ioctl(Op::SetRegs, fd, kind, uapi::PACIFICA_SET_REGS, arg, &format!("{label}: rip {:#x}", regs.rip), Expect::default());
        let mut w = self.world();
        if let Some(m) = Self::vcpu_model_mut(&mut w, kind) {
            match r {
                Ok(_) if known => {
                    m.regs_set = true;
                    m.regs = Some(*regs);
                }
                Ok(_) => {
                    m.regs_set = true;
                    m.regs = None;
                }
                Err(_) => {}
            }
        }
    }

    fn set_sregs(&mut self, s: &Sregs) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        self.set_sregs_on(fd, kind, s);
    }

    fn set_sregs_on(&mut self, fd: RawFd, kind: Option<Kind>, s: &Sregs) {
        let bytes = bytes_of(s);
        let (arg, label, _) = self.pick_ptr(bytes.len(), Some(&bytes), false);
        let label = format!("{label}: cr0 {:#x} cr4 {:#x} efer {:#x} cs.attrib {:#x}", s.cr0, s.cr4, s.efer, s.cs.attrib);
        let r = self.ioctl(Op::SetSregs, fd, kind, uapi::PACIFICA_SET_SREGS, arg, &label, Expect::default());
        let mut w = self.world();
        if let Some(m) = Self::vcpu_model_mut(&mut w, kind) {
            if r.is_ok() {
                m.sregs_set = true;
                m.unknown = false;
            } else if r != Err(libc::EFAULT) && r != Err(libc::EINTR) {
                // uapi.rst: "Until this call succeeds the vCPU cannot run"
                // is the module's choice for failures after the checks;
                // a refused state leaves the old one, so nothing is known.
                m.unknown = true;
            }
        }
    }

    /// SET_LAPIC with a plausible APIC base (some bits flipped), now and
    /// then a reserved word set, and random register words: EINVAL or
    /// ENXIO are documented, anything may be accepted.
    fn set_lapic(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        let mut s = uapi::LapicState::default();
        s.apic_base = self.tape.pick(&[0xfee0_0900, 0xfee0_0d00, 0xfee0_0000, 0xfee0_0400, 0xfed0_0800, 0]);
        if self.tape.chance(20) {
            s.apic_base ^= 1 << self.tape.below(64);
        }
        if self.tape.chance(10) {
            s.reserved[self.tape.below(7) as usize] = self.tape.word();
        }
        for _ in 0..self.tape.below(24) {
            let off = self.tape.below(64) as usize * 16;
            let v = if self.tape.chance(50) { self.tape.below(256) as u32 } else { self.tape.word() as u32 };
            s.regs[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
        let bytes = bytes_of(&s);
        let (arg, label, _) = self.pick_ptr(bytes.len(), Some(&bytes), false);
        let label = format!("{label}: apic_base {:#x}", s.apic_base);
        let _ = self.ioctl(Op::SetLapic, fd, kind, uapi::PACIFICA_SET_LAPIC, arg, &label, Expect::default());
    }

    /// SIGNAL_MSI: mostly messages in the APIC window (every delivery
    /// mode, trigger and destination), sometimes anything; EINVAL, ENXIO
    /// or a count of the APICs that took it.
    fn signal_msi(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vm));
        let mut m = uapi::Msi { address: 0xfee0_0000, data: 0, flags: 0 };
        m.address |= (self.tape.pick(&[0u64, 1, 0xff, 0x0f]) << 12) | (self.tape.below(2) << 2);
        m.data = self.tape.below(256) as u32 | ((self.tape.below(8) as u32) << 8) | ((self.tape.below(4) as u32) << 14);
        if self.tape.chance(15) {
            m.address = self.tape.word();
        }
        if self.tape.chance(10) {
            m.flags = self.tape.word() as u32;
        }
        let bytes = bytes_of(&m);
        let (arg, label, _) = self.pick_ptr(bytes.len(), Some(&bytes), false);
        let label = format!("{label}: address {:#x} data {:#x} flags {:#x}", m.address, m.data, m.flags);
        let _ = self.ioctl(Op::SignalMsi, fd, kind, uapi::PACIFICA_SIGNAL_MSI, arg, &label, Expect::default());
    }

    /// SET_LINT: a pin and level, now and then out of range.
    fn set_lint(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        let mut l = uapi::Lint { pin: self.tape.below(2) as u32, level: self.tape.below(2) as u32 };
        if self.tape.chance(15) {
            l.pin = self.tape.word() as u32;
        }
        if self.tape.chance(15) {
            l.level = self.tape.word() as u32;
        }
        let bytes = bytes_of(&l);
        let (arg, label, _) = self.pick_ptr(bytes.len(), Some(&bytes), false);
        let label = format!("{label}: pin {} level {}", l.pin, l.level);
        let _ = self.ioctl(Op::SetLint, fd, kind, uapi::PACIFICA_SET_LINT, arg, &label, Expect::default());
    }

    fn vfs_ioctl(&mut self) {
        let (fd, kind) = self.pick_fd(None);
        let (cmd, name) = self.tape.pick(&[(0x5451u32, "FIOCLEX"), (0x5450, "FIONCLEX"), (0x5421, "FIONBIO")]);
        let (arg, label, _) = if cmd == 0x5421 {
            let v = (self.tape.below(2) as i32).to_le_bytes();
            self.pick_ptr(4, Some(&v), false)
        } else {
            (0, "0".into(), true)
        };
        let what = format!("ioctl({fd}={}, {name}, {label})", kind.map_or("none".into(), Kind::describe));
        let slot = self.log(&what);
        // SAFETY: as in `ioctl`; FIONBIO reads an int from `arg`.
        let r = unsafe { libc::ioctl(fd, cmd as libc::c_ulong, arg as libc::c_ulong) };
        let r = if r < 0 { Err(last_errno()) } else { Ok(i64::from(r)) };
        self.done(slot, Op::VfsIoctl, &what, r);
        self.check_sys(&what, r, &[libc::EBADF, libc::EFAULT]);
    }

    // -- the run page -----------------------------------------------------

    fn mmap_run(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        let len = if self.tape.chance(65) {
            4096
        } else {
            self.tape.pick(&[1usize, 4095, 4097, 8192, 0, 1 << 20, 1 << 46])
        };
        let off: i64 = if self.tape.chance(80) {
            0
        } else {
            self.tape.pick(&[4096i64, 1, 8192, 0x7fff_ffff_f000, i64::MIN, -4096])
        };
        let prot = self.tape.pick(&[
            libc::PROT_READ | libc::PROT_WRITE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::PROT_READ,
            libc::PROT_WRITE,
            libc::PROT_NONE,
            libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            libc::PROT_EXEC,
        ]);
        let flags = self.tape.pick(&[
            libc::MAP_SHARED,
            libc::MAP_SHARED,
            libc::MAP_SHARED,
            libc::MAP_PRIVATE,
            libc::MAP_SHARED_VALIDATE,
            libc::MAP_SHARED | libc::MAP_POPULATE,
            libc::MAP_SHARED | libc::MAP_LOCKED,
            libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
        ]);
        let what = format!(
            "mmap({len:#x}, prot {prot:#x}, flags {flags:#x}, {fd}={}, {off:#x})",
            kind.map_or("none".into(), Kind::describe)
        );
        let mut w = self.world();
        if w.runs.len() >= 6 {
            drop(w);
            return self.munmap_run();
        }
        let slot = self.log(&what);
        // SAFETY: a new mapping at an address of the kernel's choice; it
        // replaces nothing.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, off) };
        let r = if p == libc::MAP_FAILED { Err(last_errno()) } else { Ok(p as i64) };
        self.done(slot, Op::MmapRun, &what, r);
        let page_len = (len as u64).div_ceil(PAGE) * PAGE;
        // MAP_SHARED_VALIDATE (3) has MAP_PRIVATE's bit too: compare the type.
        let fits = page_len == PAGE && off == 0 && flags & 3 != libc::MAP_PRIVATE;
        let is_vcpu = matches!(kind, Some(Kind::Vcpu(..)));
        match r {
            Ok(addr) => {
                let may_succeed = self.env.racy || (is_vcpu && fits);
                if !may_succeed {
                    // SAFETY: the mapping just made.
                    unsafe { libc::munmap(p, len) };
                    drop(w);
                    self.fail(&what, "succeeded; uapi.rst: the run page maps only as 4096 bytes at offset 0, shared, of a vCPU fd");
                }
                let vcpu = match kind {
                    Some(Kind::Vcpu(v, i)) => (v, i),
                    _ => (u32::MAX, u32::MAX),
                };
                // Racy: the number may have been something else by then; only
                // a 4096-byte mapping is kept, others are dropped at once.
                if page_len == PAGE && vcpu.0 != u32::MAX {
                    w.runs.push(RunMap { addr: addr as u64, len: PAGE as usize, prot, vcpu });
                } else {
                    // SAFETY: the mapping just made.
                    unsafe { libc::munmap(p, len) };
                }
            }
            Err(e) => {
                drop(w);
                let mut allowed = MMAP_ERRNOS.to_vec();
                // MAP_SHARED_VALIDATE with MAP_SYNC on a file without DAX.
                allowed.push(libc::EOPNOTSUPP);
                self.check_sys(&what, Err(e), &allowed);
                if is_vcpu && fits && !self.env.racy && e == libc::EINVAL && len != 0 && flags & libc::MAP_SYNC == 0 {
                    self.fail(&what, "EINVAL for the documented run-page mapping");
                }
            }
        }
    }

    fn munmap_run(&mut self) {
        let mut w = self.world();
        if w.runs.is_empty() {
            return;
        }
        let i = self.tape.below(w.runs.len() as u64) as usize;
        let m = w.runs.remove(i);
        let what = format!("munmap(run page at {:#x})", m.addr);
        let slot = self.log(&what);
        // SAFETY: a run-page mapping the child made and tracks.
        let r = unsafe { libc::munmap(m.addr as *mut libc::c_void, m.len) };
        drop(w);
        let r = if r < 0 { Err(last_errno()) } else { Ok(0) };
        self.done(slot, Op::MunmapRun, &what, r);
        self.check_sys(&what, r, &[]);
    }

    fn scribble_run(&mut self) {
        let w = self.world();
        let writable: Vec<RunMap> = w.runs.iter().filter(|m| m.prot & libc::PROT_WRITE != 0).copied().collect();
        if writable.is_empty() {
            return;
        }
        let m = writable[self.tape.below(writable.len() as u64) as usize];
        let (off, len) = match self.tape.below(4) {
            0 => (0, 8),
            1 => (self.tape.below(64) as usize * 8, 8),
            2 => (uapi::PACIFICA_RUN_IO_DATA_OFFSET + self.tape.below(256) as usize * 8, 8),
            _ => (0, 4096),
        };
        let what = format!("write {len} bytes at {off:#x} of the run page of vm{}/vcpu{}", m.vcpu.0, m.vcpu.1);
        let slot = self.log(&what);
        let mut bytes = Vec::with_capacity(len);
        while bytes.len() < len {
            bytes.extend_from_slice(&self.tape.word().to_le_bytes());
        }
        // SAFETY: a live writable page-sized mapping (tracked under the
        // lock we hold); `off + len` <= 4096.
        unsafe {
            let dst = (m.addr as *mut u8).add(off);
            for (i, b) in bytes.iter().take(len).enumerate() {
                std::ptr::write_volatile(dst.add(i), *b);
            }
        }
        drop(w);
        self.done(slot, Op::ScribbleRun, &what, Ok(0));
    }

    fn mremap_run(&mut self) {
        let mut w = self.world();
        if w.runs.is_empty() {
            return;
        }
        let i = self.tape.below(w.runs.len() as u64) as usize;
        let m = w.runs[i];
        let new_len = self.tape.pick(&[4096usize, 8192, 1 << 20]);
        let what = format!("mremap(run page at {:#x}, {new_len:#x}, MAYMOVE)", m.addr);
        let slot = self.log(&what);
        // SAFETY: remapping a run-page mapping we track, to a place of the
        // kernel's choice.
        let p = unsafe { libc::mremap(m.addr as *mut libc::c_void, m.len, new_len, libc::MREMAP_MAYMOVE) };
        let r = if p == libc::MAP_FAILED { Err(last_errno()) } else { Ok(p as i64) };
        if let Ok(addr) = r {
            w.runs[i].addr = addr as u64;
            w.runs[i].len = new_len;
        }
        drop(w);
        self.done(slot, Op::MremapRun, &what, r);
        self.check_sys(&what, r, &[libc::EFAULT, libc::EINVAL, libc::ENOMEM, libc::EAGAIN]);
    }

    // -- guest memory -----------------------------------------------------

    fn slot_addr(&self, i: usize) -> u64 {
        self.env.arena + (i * SLOT_SIZE) as u64
    }

    /// Maps slot `i` (or a random one) afresh; returns its index. Caller
    /// need not hold the lock.
    fn map_slot(&mut self, want: Option<(usize, usize)>) -> Option<usize> {
        let (i, len) = want.unwrap_or_else(|| {
            let i = self.tape.below(NR_SLOTS as u64) as usize;
            let len = self.tape.pick(&[PAGE as usize, 2 * PAGE as usize, 16 * PAGE as usize, 64 << 10, RAM_SIZE as usize, SLOT_SIZE]);
            (i, len)
        });
        let prot = if want.is_some() {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            self.tape.pick(&[
                libc::PROT_READ | libc::PROT_WRITE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::PROT_READ,
                libc::PROT_NONE,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
            ])
        };
        let backing = if want.is_some() { 0 } else { self.tape.below(10) };
        let addr = self.slot_addr(i);
        let mut w = self.world();
        let what = format!("map slot {i} ({len:#x} bytes at {addr:#x}, prot {prot:#x}, backing {backing})");
        let slot = self.log(&what);
        // SAFETY: the slot lies in the child's reserved arena; MAP_FIXED
        // replaces only the arena's own pages, and every write to them is
        // made under the world lock we hold, after checking the slot state.
        let ok = unsafe {
            libc::mmap(addr as *mut libc::c_void, SLOT_SIZE, libc::PROT_NONE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0);
            w.slots[i] = SlotState::default();
            let p = match backing {
                0..=5 => libc::mmap(addr as *mut libc::c_void, len, prot, libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0),
                6..=7 => libc::mmap(addr as *mut libc::c_void, len, prot, libc::MAP_FIXED | libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0),
                _ => {
                    let fd = libc::memfd_create(c"pacifica-fuzz".as_ptr(), libc::MFD_CLOEXEC);
                    if fd < 0 {
                        libc::MAP_FAILED
                    } else {
                        let p = if libc::ftruncate(fd, len as i64) == 0 {
                            libc::mmap(addr as *mut libc::c_void, len, prot, libc::MAP_FIXED | libc::MAP_SHARED, fd, 0)
                        } else {
                            libc::MAP_FAILED
                        };
                        libc::close(fd);
                        p
                    }
                }
            };
            p != libc::MAP_FAILED
        };
        if ok {
            w.slots[i] = SlotState { len, prot };
        }
        drop(w);
        self.done(slot, Op::MapSlot, &what, if ok { Ok(0) } else { Err(last_errno()) });
        ok.then_some(i)
    }

    fn unmap_slot(&mut self) {
        let i = self.tape.below(NR_SLOTS as u64) as usize;
        let addr = self.slot_addr(i);
        let mut w = self.world();
        let what = format!("unmap slot {i}");
        let slot = self.log(&what);
        // SAFETY: as in `map_slot`: arena pages only, under the lock.
        let p = unsafe {
            libc::mmap(addr as *mut libc::c_void, SLOT_SIZE, libc::PROT_NONE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0)
        };
        w.slots[i] = SlotState::default();
        drop(w);
        self.done(slot, Op::UnmapSlot, &what, if p == libc::MAP_FAILED { Err(last_errno()) } else { Ok(0) });
    }

    fn protect_slot(&mut self) {
        let i = self.tape.below(NR_SLOTS as u64) as usize;
        let prot = self.tape.pick(&[libc::PROT_READ, libc::PROT_NONE, libc::PROT_READ | libc::PROT_WRITE]);
        let mut w = self.world();
        let st = w.slots[i];
        if st.len == 0 {
            return;
        }
        let what = format!("mprotect slot {i} to {prot:#x}");
        let slot = self.log(&what);
        // SAFETY: arena pages only, under the lock.
        let r = unsafe { libc::mprotect(self.slot_addr(i) as *mut libc::c_void, st.len, prot) };
        if r == 0 {
            w.slots[i].prot = prot;
        }
        drop(w);
        self.done(slot, Op::ProtectSlot, &what, if r < 0 { Err(last_errno()) } else { Ok(0) });
    }

    fn dontneed_slot(&mut self) {
        let i = self.tape.below(NR_SLOTS as u64) as usize;
        let w = self.world();
        let st = w.slots[i];
        if st.len == 0 {
            return;
        }
        let what = format!("madvise(slot {i}, MADV_DONTNEED)");
        let slot = self.log(&what);
        // SAFETY: arena pages only, under the lock; the guest keeps its
        // pinned pages (uapi.rst).
        let r = unsafe { libc::madvise(self.slot_addr(i) as *mut libc::c_void, st.len, libc::MADV_DONTNEED) };
        drop(w);
        self.done(slot, Op::DontNeedSlot, &what, if r < 0 { Err(last_errno()) } else { Ok(0) });
    }

    /// Writes `bytes` at `offset` of slot `i` if it is mapped writable
    /// that far. The caller holds the lock (`w`).
    fn write_slot(&self, w: &World, i: usize, offset: u64, bytes: &[u8]) -> bool {
        let st = w.slots[i];
        if st.prot & libc::PROT_WRITE == 0 || offset as usize + bytes.len() > st.len {
            return false;
        }
        // SAFETY: checked to lie in the writable mapped part of the slot,
        // whose state cannot change while the lock is held.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), (self.slot_addr(i) + offset) as *mut u8, bytes.len()) };
        true
    }

    fn fill_slot(&mut self) {
        let i = self.tape.below(NR_SLOTS as u64) as usize;
        let how = self.tape.below(3);
        let len = 64 + self.tape.below(1024) as usize;
        let mut bytes = Vec::with_capacity(len);
        while bytes.len() < len {
            bytes.extend_from_slice(&self.tape.word().to_le_bytes());
        }
        let off = match how {
            0 => CODE_BASE,
            1 => PAGE * self.tape.below(256),
            _ => 0,
        };
        let w = self.world();
        let what = format!("write {len} random bytes at {off:#x} of slot {i}");
        let slot = self.log(&what);
        let ok = if how == 2 {
            boot_structures().iter().all(|(gpa, b)| self.write_slot(&w, i, *gpa, b))
        } else {
            self.write_slot(&w, i, off, &bytes[..len])
        };
        drop(w);
        self.done(slot, Op::FillSlot, &what, Ok(i64::from(ok)));
    }

    /// Gives a vCPU a guest that can run: guest RAM at 0 with the
    /// harness's GDT and page tables, one of the selftest guests (perhaps
    /// with a few bytes changed) or random bytes, and valid registers.
    fn prepare_vcpu(&mut self) {
        let (fd, kind) = self.pick_fd(Some(Self::is_vcpu));
        self.prepare_vcpu_on(fd, kind);
    }

    fn prepare_vcpu_on(&mut self, fd: RawFd, kind: Option<Kind>) {
        let Some(Kind::Vcpu(vm, _)) = kind else {
            return self.create_vcpu();
        };
        // Guest RAM at 0 backed by a slot we can write.
        let (region, vm_fd) = {
            let w = self.world();
            let region = w.vms.get(&vm).and_then(|m| {
                m.regions.iter().find_map(|r| {
                    let off = r.userspace_addr.checked_sub(self.env.arena)?;
                    let i = (off / SLOT_SIZE as u64) as usize;
                    (r.guest_phys_addr == 0 && off % SLOT_SIZE as u64 == 0 && i < NR_SLOTS
                        && r.memory_size >= RAM_SIZE && w.slots[i].len as u64 >= RAM_SIZE
                        && w.slots[i].prot & libc::PROT_WRITE != 0)
                        .then_some(i)
                })
            });
            let vm_fd = w.fds.iter().find(|(_, k)| **k == Kind::Vm(vm)).map(|(&f, _)| f);
            (region, vm_fd)
        };
        let i = match (region, vm_fd) {
            (Some(i), _) => i,
            (None, Some(vm_fd)) => {
                let i = self.tape.below(NR_SLOTS as u64) as usize;
                let Some(i) = self.map_slot(Some((i, RAM_SIZE as usize))) else { return };
                let used: Vec<u32> = self.world().vms.get(&vm).map(|m| m.regions.iter().map(|r| r.slot).collect()).unwrap_or_default();
                let Some(rslot) = (0..uapi::PACIFICA_MAX_MEMORY_REGIONS).find(|s| !used.contains(s)) else { return };
                let r = MemoryRegion { slot: rslot, flags: 0, guest_phys_addr: 0, memory_size: RAM_SIZE, userspace_addr: self.slot_addr(i) };
                if self.set_region(vm_fd, Some(Kind::Vm(vm)), r).is_err() {
                    return;
                }
                i
            }
            (None, None) => return,
        };
        let all = entries();
        let (image, entry, mode) = all[self.tape.below(all.len() as u64) as usize];
        let mut code = image.to_vec();
        let random = self.tape.chance(15);
        if random {
            code = (0..16 + self.tape.below(240)).map(|_| self.tape.word() as u8).collect();
        } else if self.tape.chance(25) && !std::ptr::eq(image, guests::hardening::IMAGE) {
            for _ in 0..1 + self.tape.below(8) {
                let at = self.tape.below(code.len() as u64) as usize;
                code[at] = self.tape.word() as u8;
            }
        }
        let entry = if random { CODE_BASE } else { entry };
        {
            let w = self.world();
            let what = format!("load {} bytes of guest code, entry {entry:#x}, {} mode, into slot {i}", code.len(), mode.name());
            let slot = self.log(&what);
            let ok = boot_structures().iter().all(|(gpa, b)| self.write_slot(&w, i, *gpa, b))
                && self.write_slot(&w, i, CODE_BASE, &code);
            drop(w);
            self.done(slot, Op::PrepareVcpu, &what, Ok(i64::from(ok)));
        }
        let mut sregs = initial_sregs(mode);
        if self.tape.chance(15) {
            sregs = self.gen_sregs();
        }
        self.set_sregs_on(fd, kind, &sregs);
        let mut regs = initial_regs(entry, STACK_TOP);
        if self.tape.chance(15) {
            regs = self.gen_regs();
        }
        self.set_regs_to(fd, kind, &regs);
    }

    // -- processes ------------------------------------------------------

    fn fork(&mut self) {
        if self.grandchild || self.world().forks >= 3 {
            return;
        }
        let n = {
            let mut w = self.world();
            w.forks += 1;
            w.forks
        };
        let what = format!("fork (process g{n} shares every fd)");
        let slot = self.log(&what);
        let child_seed = self.tape.word();
        // SAFETY: this child has one thread that uses the world (this
        // one) and the kicker, which holds no lock the new process needs
        // (it signals with tgkill, see `Kicker`): the new process makes
        // its own kicker.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            self.grandchild = true;
            self.who = format!("g{n}");
            self.tape = Tape::new(child_seed, Vec::new());
            self.kcov = None;
            self.children.clear();
            // The kicker thread did not come along: a new one.
            let kicker = Kicker::start(self.env.kicker.interval);
            kicker.register();
            let env: &Env = self.env;
            let budget = self.budget.saturating_sub(self.calls) / 2 + 10;
            let start = self.calls;
            while self.calls - start < budget && !env.stop.load(Ordering::Relaxed) {
                self.step();
            }
            // SAFETY: ends the forked process; the parent reaps it.
            unsafe { libc::_exit(0) };
        }
        let r = if pid < 0 { Err(last_errno()) } else { Ok(i64::from(pid)) };
        self.done(slot, Op::Fork, &what, r);
        if pid > 0 {
            self.children.push(pid);
        }
    }

    /// Waits for the processes this one forked; a death by a signal or a
    /// hang is a failure.
    fn reap(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for pid in std::mem::take(&mut self.children) {
            let mut status = 0;
            loop {
                // SAFETY: waiting for our own child.
                let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                if r == pid {
                    break;
                }
                if r < 0 && last_errno() != libc::EINTR {
                    self.fail("waitpid", &format!("lost child {pid}: {}", errno_name(last_errno())));
                }
                if Instant::now() > deadline {
                    let where_ = task_report(pid);
                    // SAFETY: killing our own child.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    self.fail("reaping", &format!("forked process {pid} did not finish within 30 s; its threads: {where_}"));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if libc::WIFSIGNALED(status) {
                self.fail("reaping", &format!("forked process {pid} died by signal {}", libc::WTERMSIG(status)));
            }
            if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
                self.fail("reaping", &format!("forked process {pid} failed (status {status:#x})"));
            }
        }
    }

    fn reopen_proc(&mut self) {
        if self.too_many_fds() {
            return self.close();
        }
        let (fd, kind) = self.pick_fd(None);
        let path = format!("/proc/self/fd/{fd}\0");
        let what = format!("open(/proc/self/fd/{fd}={})", kind.map_or("none".into(), Kind::describe));
        let slot = self.log(&what);
        // SAFETY: a NUL-terminated path.
        let r = unsafe { libc::open(path.as_ptr().cast(), libc::O_RDWR | libc::O_CLOEXEC) };
        let res = if r < 0 { Err(last_errno()) } else { Ok(i64::from(r)) };
        self.done(slot, Op::ReopenProc, &what, res);
        if r >= 0 {
            // Reopening /dev/pacifica gives a device fd; reopening an anon
            // inode must not give a working VM or vCPU fd (it has no
            // object), so its ioctls must be refused.
            let k = match kind {
                Some(Kind::Device) => Kind::Device,
                Some(Kind::Other(o)) => Kind::Other(o),
                _ => Kind::Other("reopened"),
            };
            self.add_fd(r, k);
        }
    }
}

// ---------------------------------------------------------------------------
// Children.

/// Reserves the arena: PROT_NONE, 2 MiB aligned, never unmapped.
fn reserve_arena() -> u64 {
    // SAFETY: a fresh reservation at an address of the kernel's choice.
    let p = unsafe {
        libc::mmap(std::ptr::null_mut(), ARENA_SIZE + SLOT_SIZE, libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1, 0)
    };
    assert!(p != libc::MAP_FAILED, "reserving the arena");
    (p as u64).div_ceil(SLOT_SIZE as u64) * SLOT_SIZE as u64
}

fn drop_privileges(memlock: u64, nofile: Option<u64>) -> Result<(), String> {
    let limit = libc::rlimit { rlim_cur: memlock, rlim_max: memlock };
    let groups = [PACIFICA_GID];
    // SAFETY: plain system calls on this process's credentials and limits.
    let ok = unsafe {
        libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit) == 0
            && nofile.is_none_or(|n| {
                let l = libc::rlimit { rlim_cur: n, rlim_max: n };
                libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0
            })
            && libc::setgroups(1, groups.as_ptr()) == 0
            && libc::setgid(NOBODY) == 0
            && libc::setuid(NOBODY) == 0
    };
    if ok {
        Ok(())
    } else {
        Err(format!("could not become nobody: {}", std::io::Error::last_os_error()))
    }
}

/// Where each thread of a process is: its state, the wait channel and the
/// kernel stack (as root), so that a hang says whether it is in the
/// kernel and where.
fn task_report(pid: libc::pid_t) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "gone".into();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let dir = t.path();
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let stat = read("stat");
        // The state follows the parenthesised command name.
        let state = stat.rsplit_once(") ").map_or("?", |(_, rest)| &rest[..1.min(rest.len())]);
        let stack_text = read("stack");
        let stack: Vec<&str> = stack_text.lines().map(|l| l.split_whitespace().nth(1).unwrap_or(l)).collect();
        out.push(format!(
            "[tid {} state {} wchan {} syscall {} stack {}]",
            t.file_name().to_string_lossy(),
            state,
            read("wchan"),
            read("syscall").split_whitespace().next().unwrap_or("?"),
            stack.join("<")
        ));
    }
    out.join(" ")
}

/// The body of a forked child; never returns.
fn child_main(kind: ChildKind, seed: u64, calls: usize, threads: usize, shared: &'static Shared, cover: Option<&'static CoverMap>, prefix: Vec<u64>) -> ! {
    std::panic::set_hook(Box::new(move |info| {
        shared.fail(&format!("the fuzzer panicked: {info}"));
    }));
    // SAFETY: plain system calls on this new process: stdout and stderr go
    // to /dev/null (the TAP stream is the parent's), and the child dies
    // with the parent.
    unsafe {
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        libc::dup2(null, 1);
        libc::dup2(null, 2);
        libc::close(null);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut rng = Rng::new(seed ^ 0x1234_5678);
    let kcov = cover.and_then(|_| Kcov::enable_for_this_thread());
    let interval = Duration::from_millis(*[5u64, 10, 20, 20, 50, 200].get(rng.below(6) as usize).unwrap_or(&20));
    let nofile = rng.below(10) == 0;
    if kind == ChildKind::Unprivileged {
        let memlock = [0u64, 4 << 10, 64 << 10, 1 << 20, 8 << 20][rng.below(5) as usize];
        if let Err(e) = drop_privileges(memlock, nofile.then(|| 16 + rng.below(16))) {
            shared.fail(&e);
            // SAFETY: ending the child.
            unsafe { libc::_exit(1) };
        }
        shared.log(&format!("became nobody with RLIMIT_MEMLOCK {memlock}"));
    } else if nofile {
        let n = 16 + rng.below(16);
        let l = libc::rlimit { rlim_cur: n, rlim_max: n };
        // SAFETY: lowering our own limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) };
        shared.log(&format!("RLIMIT_NOFILE {n}"));
    }
    let kicker = Kicker::start(interval);
    let env = Env {
        arena: reserve_arena(),
        shared,
        cover,
        racy: kind == ChildKind::Threads,
        solo: matches!(kind, ChildKind::Random | ChildKind::Unprivileged),
        world: Mutex::new(World::default()),
        kicker: kicker.clone(),
        stop: AtomicBool::new(false),
    };
    shared.log(&format!("child seed {seed:#x}, kick every {interval:?}, KCOV {}", kcov.is_some()));
    let role = match kind {
        ChildKind::Threads => Role::Runner,
        ChildKind::Fork => Role::Forker,
        _ => Role::Mixed,
    };
    let mut main = Ctx::new(&env, seed, prefix, "t0".into(), role, calls);
    main.kcov = kcov;
    kicker.register();
    if matches!(kind, ChildKind::Threads | ChildKind::Fork) {
        // Something to share: a VM with a vCPU that runs.
        for op in [Op::OpenDevice, Op::CreateVm, Op::CreateVcpu, Op::PrepareVcpu, Op::MmapRun, Op::CreateVcpu, Op::PrepareVcpu] {
            main.do_op(op);
        }
    }
    if kind == ChildKind::Threads {
        let per = calls / threads.max(1);
        std::thread::scope(|s| {
            for t in 1..threads {
                let env = &env;
                s.spawn(move || {
                    let mut ctx = Ctx::new(env, derive(seed, t as u64), Vec::new(), format!("t{t}"), Role::Hammer, per);
                    env.kicker.register();
                    while ctx.calls < per && !env.stop.load(Ordering::Relaxed) {
                        ctx.step();
                    }
                    env.kicker.unregister();
                });
            }
            main.budget = per;
            while main.calls < per && !env.stop.load(Ordering::Relaxed) {
                main.step();
            }
        });
    } else {
        while main.calls < calls {
            main.step();
        }
    }
    main.reap();
    shared.set_tape(main.tape.recorded());
    // SAFETY: ends the child; closing its fds is the exit's job (and what
    // the parent's accounting check is about).
    unsafe { libc::_exit(0) }
}

// ---------------------------------------------------------------------------
// The parent.

/// How each test spends its budget.
struct Budget {
    children: usize,
    calls: usize,
    time: Duration,
}

fn budget(kind: ChildKind) -> Budget {
    let cfg = config();
    let default_calls = match kind {
        ChildKind::Threads => 600,
        _ => 300,
    };
    let (children, time) = match cfg.seconds {
        Some(s) => (usize::MAX, Duration::from_secs(s) / cfg.ntests.max(1) as u32),
        None => (cfg.children.unwrap_or(64), Duration::from_secs(if cfg.children.is_some() { 3600 } else { 18 })),
    };
    Budget {
        children,
        calls: cfg.calls.unwrap_or(default_calls),
        time,
    }
}

/// How long one child may take before it counts as hung.
const CHILD_TIMEOUT: Duration = Duration::from_secs(60);

/// What the parent learned from one child.
enum Outcome {
    Passed,
    Failed(String),
}

fn last_ops(shared: &Shared) -> String {
    let mut s = String::from("its last operations, oldest first:");
    for l in shared.last_ops(20) {
        let _ = write!(s, "\n  {l}");
    }
    s
}

/// Forks one child and judges it: its exit, the accounting, the log.
#[allow(clippy::too_many_arguments)]
fn one_child(kind: ChildKind, seed: u64, calls: usize, shared: &'static Shared, cover: Option<&'static CoverMap>, prefix: Vec<u64>, baseline: &uapi::ModuleInfo, kmsg: &mut Option<Kmsg>) -> Result<Outcome, Failure> {
    shared.reset();
    let threads = config().threads;
    let from_corpus = !prefix.is_empty();
    // SAFETY: the child runs `child_main`, which only returns by _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Failure::Fail(format!("fork: {}", std::io::Error::last_os_error())));
    }
    if pid == 0 {
        child_main(kind, seed, calls, threads, shared, cover, prefix);
    }
    let start = Instant::now();
    let mut status = 0;
    let mut hung = false;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            break;
        }
        if r < 0 && last_errno() != libc::EINTR {
            return Err(Failure::Fail(format!("waitpid: {}", std::io::Error::last_os_error())));
        }
        if !hung && start.elapsed() > CHILD_TIMEOUT {
            hung = true;
            // SAFETY: killing our own child (and its process group is not
            // ours to kill: its forked processes die with it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if hung && start.elapsed() > CHILD_TIMEOUT + Duration::from_secs(20) {
            return Ok(Outcome::Failed(format!(
                "child (seed {seed:#x}) hung and does not die of SIGKILL: stuck in the kernel; {}",
                last_ops(shared)
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut problems = Vec::new();
    if hung {
        problems.push(format!("did not finish within {}s (killed)", CHILD_TIMEOUT.as_secs()));
    } else if libc::WIFSIGNALED(status) {
        problems.push(format!("died by signal {}", libc::WTERMSIG(status)));
    } else if libc::WEXITSTATUS(status) != 0 {
        problems.push(format!("exited with status {}", libc::WEXITSTATUS(status)));
    }
    if let Some(msg) = shared.failure() {
        problems.push(msg);
    }
    if let Err(Failure::Fail(m) | Failure::Skip(m)) = ensure_back_to(baseline, "the child's exit") {
        problems.push(format!("the module's accounting did not return to its baseline {m}"));
    }
    if let Some(k) = kmsg {
        let bad = k.new_problems();
        if !bad.is_empty() {
            problems.push(format!("the kernel log reports:\n  {}", bad.join("\n  ")));
        }
    }
    if problems.is_empty() {
        return Ok(Outcome::Passed);
    }
    let mut replay = format!("fuzz_ioctl --only {} --child-seed {seed:#x}", kind.name());
    if config().calls.is_some() {
        let _ = write!(replay, " --calls {calls}");
    }
    if kind == ChildKind::Threads {
        let _ = write!(replay, " --threads {threads}");
    }
    if from_corpus {
        replay.push_str(" (approximately: this child's choices began with a KCOV corpus entry; --seed replays the whole run)");
    }
    Ok(Outcome::Failed(format!(
        "child (seed {seed:#x}) {}\nreplay: {replay}\n{}",
        problems.join("; "),
        last_ops(shared)
    )))
}

fn fuzz_test(kind: ChildKind) -> TestResult {
    let cfg = config();
    let b = budget(kind);
    let seed = derive(cfg.seed, kind as u64);
    let baseline = module_info()?;
    let mut kmsg = match Kmsg::open() {
        Ok(k) => Some(k),
        Err(e) => {
            diag!("cannot read /dev/kmsg ({e}): the kernel log is checked by run-l1 only");
            None
        }
    };
    if kind == ChildKind::Unprivileged {
        // What the udev rule does on a real system (L1's /init does too).
        // SAFETY: a valid C string; chown/chmod only change the node.
        let (a, c) = unsafe { (libc::chown(c"/dev/pacifica".as_ptr(), 0, PACIFICA_GID), libc::chmod(c"/dev/pacifica".as_ptr(), 0o660)) };
        ensure!(a == 0 && c == 0, "giving /dev/pacifica to group {PACIFICA_GID}: {}", std::io::Error::last_os_error());
    }
    let shared = Shared::new().map_err(|e| Failure::Fail(format!("mapping the shared page: {e}")))?;
    let cover: Option<&'static CoverMap> = if fuzz::kcov_available() {
        // Every kernel PC the calls reach counts, not only the module's:
        // on 6.12 the module's Rust code has no KCOV instrumentation (only
        // the C shim has), and the paths the calls take through mm/ and the
        // VFS are what the module's choices steer.
        let range = (0, u64::MAX);
        let module = fuzz::module_text_range();
        diag!("KCOV: guiding by every kernel PC (the module's text: {:#x}..{:#x})", module.0, module.1);
        Some(Box::leak(Box::new(CoverMap::new(range).map_err(|e| Failure::Fail(e.to_string()))?)))
    } else {
        None
    };
    diag!(
        "{}: seed {seed:#x} (run seed {:#x}), up to {} children of {} calls{}, {:?}",
        kind.name(),
        cfg.seed,
        if b.children == usize::MAX { "unlimited".into() } else { b.children.to_string() },
        b.calls,
        if kind == ChildKind::Threads { format!(" on {} threads", cfg.threads) } else { String::new() },
        b.time
    );
    if cover.is_none() {
        diag!("KCOV not available: random sequences only");
    }
    let start = Instant::now();
    let mut rng = Rng::new(seed);
    let mut corpus: Vec<Vec<u64>> = Vec::new();
    let mut total_calls = 0u64;
    let mut n = 0usize;
    let mut failures = Vec::new();
    let replay = cfg.child_seed;
    while n < b.children && (start.elapsed() < b.time || n == 0) && (replay.is_none() || n == 0) {
        let child_seed = replay.unwrap_or_else(|| derive(seed, n as u64));
        let prefix = if cover.is_some() && !corpus.is_empty() && rng.below(10) < 7 {
            mutate(&mut rng, &corpus)
        } else {
            Vec::new()
        };
        let outcome = one_child(kind, child_seed, b.calls, shared, cover, prefix, &baseline, &mut kmsg)?;
        total_calls += shared.calls.load(Ordering::Relaxed);
        if cover.is_some() && shared.new_cover.load(Ordering::Relaxed) > 0 {
            corpus.push(shared.tape());
            if corpus.len() > 64 {
                corpus.remove(rng.below(64) as usize);
            }
        }
        n += 1;
        if let Outcome::Failed(msg) = outcome {
            failures.push(format!("child {n}: {msg}"));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    diag!(
        "{}: {n} children, {total_calls} calls in {:.1}s{}",
        kind.name(),
        start.elapsed().as_secs_f64(),
        cover.map_or(String::new(), |c| format!("; KCOV: {} kernel PCs (hashed), corpus {}", c.count(), corpus.len()))
    );
    let mut line = String::new();
    for (i, name) in OP_NAMES.iter().enumerate() {
        let counts = shared.counts(i);
        if counts.is_empty() {
            continue;
        }
        let parts: Vec<String> = counts
            .iter()
            .map(|&(r, c)| if r == 0 { format!("ok {c}") } else { format!("{} {c}", errno_name(r as i32)) })
            .collect();
        let _ = writeln!(line, "  {name}: {}", parts.join(", "));
    }
    diag!("results:\n{}", line.trim_end());
    if !failures.is_empty() {
        return Err(Failure::Fail(failures.join("\n")));
    }
    Ok(())
}

fn random_sequences() -> TestResult {
    fuzz_test(ChildKind::Random)
}
fn threads_on_one_vcpu() -> TestResult {
    fuzz_test(ChildKind::Threads)
}
fn fork_shared_fds() -> TestResult {
    fuzz_test(ChildKind::Fork)
}
fn unprivileged() -> TestResult {
    fuzz_test(ChildKind::Unprivileged)
}

fn main() {
    let cfg = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut cfg = cfg;
    let only = cfg.only.clone();
    let seconds = cfg.seconds;
    cfg.ntests = if only.is_some() { 1 } else { 4 };
    let ntests = cfg.ntests;
    CONFIG.set(cfg).expect("config set once");
    let all = [
        (ChildKind::Random, random_sequences as fn() -> TestResult),
        (ChildKind::Threads, threads_on_one_vcpu),
        (ChildKind::Fork, fork_shared_fds),
        (ChildKind::Unprivileged, unprivileged),
    ];
    // Each test's own deadline: its budget, the last child's timeout and
    // the accounting checks.
    let limit = seconds.map_or(18, |s| s / ntests) + CHILD_TIMEOUT.as_secs() + 60;
    let limit = if config().children.is_some() { 3600 * 24 } else { limit };
    let tests: Vec<Test> = all
        .iter()
        .filter(|(k, _)| only.as_deref().is_none_or(|o| o == k.name()))
        .map(|&(k, f)| Test::new(k.name(), f).timeout(limit))
        .collect();
    if tests.is_empty() {
        eprintln!("--only: no test named {}", only.unwrap_or_default());
        std::process::exit(2);
    }
    // Every test prints the run's seed first thing.
    tap::run(&tests);
}

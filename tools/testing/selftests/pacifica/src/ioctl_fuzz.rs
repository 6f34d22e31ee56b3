// SPDX-License-Identifier: GPL-2.0

//! The pieces of the ioctl fuzzer (`src/bin/fuzz_ioctl.rs`) that are not
//! about any one operation: a seeded PRNG and the "tape" of random choices
//! a child consumes, the page of memory a child shares with its parent (its
//! last operations, its verdict, its tape), the kernel-log watcher, KCOV,
//! and the oracle: which errnos `Documentation/uapi.rst` documents for each
//! ioctl on each kind of fd.
//!
//! Everything here works without `/dev/pacifica`, and the logic that can be
//! checked on the host has unit tests.

use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

use crate::uapi;

/// SplitMix64: small, fast, good enough for choosing fuzz arguments, and
/// the same sequence from the same seed on every machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose whole sequence is determined by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// The SplitMix64 finaliser: a bijection that scatters the bits of `z`.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed derived from `seed` and `index`, for the children and threads of
/// one run: each gets its own sequence, and each can be replayed alone.
pub fn derive(seed: u64, index: u64) -> u64 {
    mix(seed ^ mix(index.wrapping_add(0x5eed)))
}

/// The random choices of one sequence of operations.
///
/// Every decision the generator makes reads one word. The words come from
/// `prefix` first (a sequence from the corpus, perhaps mutated) and then
/// from the PRNG; all of them are recorded, so that a sequence that found
/// new coverage can go back into the corpus and be mutated word by word:
/// changing one word changes one decision and leaves the others alone.
#[derive(Clone, Debug)]
pub struct Tape {
    prefix: Vec<u64>,
    pos: usize,
    rng: Rng,
    record: Vec<u64>,
}

/// Most words a tape records (and a corpus entry holds).
pub const TAPE_MAX: usize = 16384;

impl Tape {
    /// A tape that replays `prefix`, then continues with words from `seed`.
    pub fn new(seed: u64, prefix: Vec<u64>) -> Self {
        Tape {
            prefix,
            pos: 0,
            rng: Rng::new(seed),
            record: Vec::new(),
        }
    }

    /// The next word.
    pub fn word(&mut self) -> u64 {
        let w = match self.prefix.get(self.pos) {
            Some(&w) => w,
            None => self.rng.next_u64(),
        };
        self.pos += 1;
        if self.record.len() < TAPE_MAX {
            self.record.push(w);
        }
        w
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        let w = self.word();
        if n == 0 {
            0
        } else {
            w % n
        }
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (which must not be empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// An index into `weights`, each chosen in proportion to its weight.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < u64::from(w) {
                return i;
            }
            x -= u64::from(w);
        }
        weights.len() - 1
    }

    /// The words used so far.
    pub fn recorded(&self) -> &[u64] {
        &self.record
    }
}

/// A new tape prefix made from the corpus: one entry with some words
/// replaced, cut short, spliced with another entry, or with a run of words
/// repeated. `corpus` must not be empty.
pub fn mutate(rng: &mut Rng, corpus: &[Vec<u64>]) -> Vec<u64> {
    let mut t = corpus[rng.below(corpus.len() as u64) as usize].clone();
    if t.is_empty() {
        return t;
    }
    let n = t.len() as u64;
    match rng.below(4) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(n) as usize;
                t[i] = rng.next_u64();
            }
        }
        1 => t.truncate(rng.below(n) as usize),
        2 => {
            let other = &corpus[rng.below(corpus.len() as u64) as usize];
            let cut = rng.below(n) as usize;
            let from = rng.below(other.len() as u64 + 1) as usize;
            t.truncate(cut);
            t.extend_from_slice(&other[from.min(other.len())..]);
        }
        _ => {
            let start = rng.below(n) as usize;
            let len = (1 + rng.below(64)) as usize;
            let chunk: Vec<u64> = t[start..(start + len).min(t.len())].to_vec();
            let at = rng.below(n) as usize;
            t.splice(at..at, chunk);
        }
    }
    t.truncate(TAPE_MAX);
    t
}

/// The kinds of fd the oracle knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FdKind {
    /// `/dev/pacifica`.
    Device,
    /// A VM fd.
    Vm,
    /// A vCPU fd.
    Vcpu,
    /// An fd of something else: a pipe, `/dev/null`, an eventfd.
    Other,
    /// A number that is not an open fd.
    Invalid,
}

/// Every request number the uapi header defines, with its name.
pub const IOCTLS: [(u32, &str); 18] = [
    (uapi::PACIFICA_GET_API_VERSION, "GET_API_VERSION"),
    (uapi::PACIFICA_GET_INFO, "GET_INFO"),
    (uapi::PACIFICA_CREATE_VM, "CREATE_VM"),
    (uapi::PACIFICA_GET_VCPU_MMAP_SIZE, "GET_VCPU_MMAP_SIZE"),
    (uapi::PACIFICA_SET_MEMORY_REGION, "SET_MEMORY_REGION"),
    (uapi::PACIFICA_CREATE_VCPU, "CREATE_VCPU"),
    (uapi::PACIFICA_CREATE_IRQCHIP, "CREATE_IRQCHIP"),
    (uapi::PACIFICA_SIGNAL_MSI, "SIGNAL_MSI"),
    (uapi::PACIFICA_RUN, "RUN"),
    (uapi::PACIFICA_GET_REGS, "GET_REGS"),
    (uapi::PACIFICA_SET_REGS, "SET_REGS"),
    (uapi::PACIFICA_GET_SREGS, "GET_SREGS"),
    (uapi::PACIFICA_SET_SREGS, "SET_SREGS"),
    (uapi::PACIFICA_GET_STATS, "GET_STATS"),
    (uapi::PACIFICA_GET_LAPIC, "GET_LAPIC"),
    (uapi::PACIFICA_SET_LAPIC, "SET_LAPIC"),
    (uapi::PACIFICA_NMI, "NMI"),
    (uapi::PACIFICA_SET_LINT, "SET_LINT"),
];

/// The name of a request number, or `"unknown"`.
pub fn ioctl_name(cmd: u32) -> &'static str {
    IOCTLS
        .iter()
        .find(|(c, _)| *c == cmd)
        .map_or("unknown", |(_, n)| n)
}

/// Whether `cmd` is one of the numbers the uapi header defines.
pub fn is_defined(cmd: u32) -> bool {
    IOCTLS.iter().any(|(c, _)| *c == cmd)
}

/// Which fd kind serves `cmd`, if any.
pub fn served_by(cmd: u32) -> Option<FdKind> {
    use uapi::*;
    match cmd {
        PACIFICA_GET_API_VERSION | PACIFICA_GET_INFO | PACIFICA_CREATE_VM
        | PACIFICA_GET_VCPU_MMAP_SIZE => Some(FdKind::Device),
        PACIFICA_SET_MEMORY_REGION | PACIFICA_CREATE_VCPU | PACIFICA_CREATE_IRQCHIP
        | PACIFICA_SIGNAL_MSI => Some(FdKind::Vm),
        PACIFICA_RUN | PACIFICA_GET_REGS | PACIFICA_SET_REGS | PACIFICA_GET_SREGS
        | PACIFICA_SET_SREGS | PACIFICA_GET_STATS | PACIFICA_GET_LAPIC | PACIFICA_SET_LAPIC
        | PACIFICA_NMI | PACIFICA_SET_LINT => {
            Some(FdKind::Vcpu)
        }
        _ => None,
    }
}

use libc::{E2BIG, EBADF, EBUSY, EEXIST, EFAULT, EINTR, EINVAL, EIO, EMFILE, ENOMEM, ENOTTY, ENXIO};

/// The errnos `Documentation/uapi.rst` documents for `cmd` on an fd of
/// `kind`, besides success. Where the request is not served by that kind
/// of fd (or not defined at all) that is ENOTTY ("an unknown request number
/// on any fd gives ENOTTY"); a number that is no fd gives EBADF, VFS's
/// answer before any driver sees the call. A bad pointer gives EFAULT for
/// every request that takes one; every vCPU ioctl may give EINTR (it waits
/// interruptibly while another thread runs the vCPU).
pub fn documented(cmd: u32, kind: FdKind) -> &'static [i32] {
    use uapi::*;
    match kind {
        FdKind::Invalid => return &[EBADF],
        FdKind::Other => return &[ENOTTY],
        _ => {}
    }
    if served_by(cmd) != Some(kind) {
        return &[ENOTTY];
    }
    match cmd {
        PACIFICA_GET_API_VERSION | PACIFICA_GET_VCPU_MMAP_SIZE => &[],
        PACIFICA_GET_INFO => &[EFAULT],
        PACIFICA_CREATE_VM => &[EINVAL, ENOMEM, EMFILE],
        PACIFICA_SET_MEMORY_REGION => &[EINVAL, EEXIST, EFAULT, E2BIG, ENOMEM, EINTR],
        PACIFICA_CREATE_VCPU => &[EINVAL, EEXIST, ENOMEM, EMFILE],
        PACIFICA_CREATE_IRQCHIP => &[EINVAL, EEXIST, EBUSY],
        PACIFICA_RUN => &[EINVAL, EINTR, EIO],
        PACIFICA_GET_REGS | PACIFICA_SET_REGS | PACIFICA_GET_SREGS | PACIFICA_GET_STATS => {
            &[EFAULT, EINTR]
        }
        PACIFICA_SET_SREGS => &[EFAULT, EINVAL, EINTR],
        PACIFICA_GET_LAPIC => &[EFAULT, EINTR, ENXIO, ENOMEM],
        PACIFICA_SET_LAPIC => &[EFAULT, EINVAL, EINTR, ENXIO, ENOMEM],
        // These never wait for the vCPU: no EINTR.
        PACIFICA_SIGNAL_MSI => &[EFAULT, EINVAL, ENXIO],
        PACIFICA_NMI => &[EINVAL, ENXIO],
        PACIFICA_SET_LINT => &[EFAULT, EINVAL, ENXIO],
        _ => &[ENOTTY],
    }
}

/// The errnos `cmd` may give when the fd's kind is not known for sure
/// (another thread may have closed the number and opened something else
/// there meanwhile): what it documents on any kind, and EBADF and ENOTTY.
pub fn documented_any_kind(cmd: u32) -> Vec<i32> {
    let mut all = vec![EBADF, ENOTTY];
    for kind in [FdKind::Device, FdKind::Vm, FdKind::Vcpu] {
        for &e in documented(cmd, kind) {
            if !all.contains(&e) {
                all.push(e);
            }
        }
    }
    all
}

/// The errnos the VFS itself gives for `mmap(2)` of a file, whatever the
/// file: bad flags, length or offset (EINVAL), an offset that overflows
/// (EOVERFLOW), no room (ENOMEM), a file with no mmap (ENODEV), a file not
/// open for it or a mapping the system refuses (EACCES, EPERM), MAP_LOCKED
/// over RLIMIT_MEMLOCK (EAGAIN), no fd (EBADF). The run page's own errno
/// (uapi.rst) is EINVAL.
pub const MMAP_ERRNOS: [i32; 8] = [
    EINVAL,
    libc::EOVERFLOW,
    ENOMEM,
    libc::ENODEV,
    libc::EACCES,
    libc::EPERM,
    libc::EAGAIN,
    EBADF,
];

pub use crate::kmsg::{is_bad_log_line, Kmsg, BAD_LOG_PATTERNS};

/// Where debugfs puts the KCOV control file.
pub const KCOV_PATH: &str = "/sys/kernel/debug/kcov";

/// Whether the kernel offers KCOV, mounting debugfs first if it is not.
pub fn kcov_available() -> bool {
    if std::path::Path::new(KCOV_PATH).exists() {
        return true;
    }
    // SAFETY: valid C strings; mount(2) changes nothing if it fails.
    unsafe {
        libc::mount(
            c"debugfs".as_ptr(),
            c"/sys/kernel/debug".as_ptr(),
            c"debugfs".as_ptr(),
            0,
            std::ptr::null(),
        );
    }
    std::path::Path::new(KCOV_PATH).exists()
}

/// `_IOR('c', 1, unsigned long)`.
pub const KCOV_INIT_TRACE: u64 = (2 << 30) | (8 << 16) | ((b'c' as u64) << 8) | 1;
/// `_IO('c', 100)`.
pub const KCOV_ENABLE: u64 = ((b'c' as u64) << 8) | 100;
/// `_IO('c', 101)`.
pub const KCOV_DISABLE: u64 = ((b'c' as u64) << 8) | 101;
/// `KCOV_ENABLE`'s argument: collect the PCs of basic blocks.
pub const KCOV_TRACE_PC: u64 = 0;

/// Entries of a KCOV buffer: one count and this many PCs minus one.
const KCOV_ENTRIES: usize = 64 << 10;

/// KCOV for the calling thread: the PCs the kernel ran for it between
/// [`reset`](Self::reset) and [`pcs`](Self::pcs).
///
/// # Invariants
///
/// `area` is a shared mapping of `KCOV_ENTRIES` u64s of the KCOV fd `fd`,
/// which stays open (and the mapping mapped) for the value's life.
pub struct Kcov {
    fd: libc::c_int,
    area: *mut u64,
}

impl Kcov {
    /// Opens KCOV and enables it for the calling thread; `None` if the
    /// kernel has no KCOV or refuses.
    pub fn enable_for_this_thread() -> Option<Self> {
        // SAFETY: a valid C string.
        let fd = unsafe { libc::open(c"/sys/kernel/debug/kcov".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return None;
        }
        let size = KCOV_ENTRIES * 8;
        // SAFETY: KCOV's documented set-up sequence on our own fd; the
        // mapping is fresh and belongs to the new value.
        unsafe {
            if libc::ioctl(fd, KCOV_INIT_TRACE as _, KCOV_ENTRIES as libc::c_ulong) != 0 {
                libc::close(fd);
                return None;
            }
            let area = libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if area == libc::MAP_FAILED {
                libc::close(fd);
                return None;
            }
            if libc::ioctl(fd, KCOV_ENABLE as _, KCOV_TRACE_PC as libc::c_ulong) != 0 {
                libc::munmap(area, size);
                libc::close(fd);
                return None;
            }
            Some(Kcov { fd, area: area.cast() })
        }
    }

    fn count(&self) -> &AtomicU64 {
        // SAFETY: `area` is a live, aligned mapping (type invariant); the
        // kernel updates its first word concurrently, so it is atomic.
        unsafe { &*(self.area as *const AtomicU64) }
    }

    /// Starts a new trace.
    pub fn reset(&self) {
        self.count().store(0, Ordering::Relaxed);
    }

    /// The PCs traced since the last [`reset`](Self::reset).
    pub fn pcs(&self) -> Vec<u64> {
        let n = (self.count().load(Ordering::Relaxed) as usize).min(KCOV_ENTRIES - 1);
        // SAFETY: entries 1..=n of the mapping (type invariant), which the
        // kernel wrote before it stored the count.
        let slice = unsafe { std::slice::from_raw_parts(self.area.add(1), n) };
        slice.to_vec()
    }
}

impl Drop for Kcov {
    fn drop(&mut self) {
        // SAFETY: our own fd and mapping (type invariant).
        unsafe {
            libc::ioctl(self.fd, KCOV_DISABLE as _, 0 as libc::c_ulong);
            libc::munmap(self.area.cast(), KCOV_ENTRIES * 8);
            libc::close(self.fd);
        }
    }
}

/// A fresh shared anonymous mapping of `len` bytes, zeroed, never unmapped:
/// a parent and the children it forks afterwards see the same bytes.
pub fn shared_zeroed(len: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh mapping that nothing else refers to.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.cast())
    }
}

/// Bits of the coverage map shared by every child of a run.
const COVER_BITS: usize = 1 << 20;

/// Which (hashed) kernel PCs any child of the run has reached.
pub struct CoverMap {
    bits: &'static [AtomicU8],
    /// Only PCs in `lo..hi` count (the module's text, when known).
    lo: u64,
    hi: u64,
}

impl CoverMap {
    /// An empty map, shared with children forked afterwards, counting PCs
    /// in `range` only.
    pub fn new(range: (u64, u64)) -> io::Result<Self> {
        let p = shared_zeroed(COVER_BITS / 8)?;
        // SAFETY: the mapping is zeroed, COVER_BITS/8 bytes long, never
        // unmapped, and AtomicU8 has the layout of u8.
        let bits = unsafe { std::slice::from_raw_parts(p as *const AtomicU8, COVER_BITS / 8) };
        Ok(CoverMap {
            bits,
            lo: range.0,
            hi: range.1,
        })
    }

    /// Records `pcs`; returns how many were new.
    pub fn add(&self, pcs: &[u64]) -> u64 {
        let mut new = 0;
        for &pc in pcs {
            if pc < self.lo || pc >= self.hi {
                continue;
            }
            let h = (mix(pc) as usize) % COVER_BITS;
            let bit = 1u8 << (h % 8);
            if self.bits[h / 8].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
                new += 1;
            }
        }
        new
    }

    /// How many bits are set.
    pub fn count(&self) -> u64 {
        self.bits
            .iter()
            .map(|b| u64::from(b.load(Ordering::Relaxed).count_ones()))
            .sum()
    }
}

/// Where the module's code is, from `/sys/module/pacifica/sections/.text`
/// and the size in `/proc/modules`; everything when unknown.
pub fn module_text_range() -> (u64, u64) {
    let text = std::fs::read_to_string("/sys/module/pacifica/sections/.text")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok());
    let size = std::fs::read_to_string("/proc/modules").ok().and_then(|m| {
        m.lines()
            .find(|l| l.starts_with("pacifica "))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    });
    match (text, size) {
        (Some(t), Some(s)) if t != 0 => (t, t + s),
        _ => (0, u64::MAX),
    }
}

/// Slots of the operation log: the last operations a child did.
pub const LOG_SLOTS: usize = 64;
const LOG_LEN: usize = 248;
const MSG_LEN: usize = 8192;
/// Results counted per operation: success, then errno 1..=133.
pub const RESULTS: usize = 134;
/// Operation names counted.
pub const OPS: usize = 48;

/// One entry of the operation log.
#[repr(C)]
struct LogSlot {
    len: AtomicU32,
    seq: AtomicU32,
    text: [u8; LOG_LEN],
}

/// The memory a child shares with its parent: written by the child (and
/// its threads and forked children), read by the parent once it is gone.
/// Only atomics and byte arrays, so a crash at any point leaves it
/// readable.
#[repr(C)]
pub struct Shared {
    failed: AtomicU32,
    msg_len: AtomicU32,
    msg: [u8; MSG_LEN],
    log_next: AtomicU64,
    log: [LogSlot; LOG_SLOTS],
    /// Calls made, by all threads and processes of the child.
    pub calls: AtomicU64,
    /// New coverage bits the child found.
    pub new_cover: AtomicU64,
    tape_len: AtomicU64,
    tape: [AtomicU64; TAPE_MAX],
    results: [[AtomicU32; RESULTS]; OPS],
}

impl Shared {
    /// A zeroed area shared with children forked afterwards.
    pub fn new() -> io::Result<&'static Shared> {
        let p = shared_zeroed(std::mem::size_of::<Shared>())?;
        // SAFETY: zeroed memory is a valid `Shared` (atomics and bytes), the
        // mapping is large enough, page-aligned and never unmapped.
        Ok(unsafe { &*(p as *const Shared) })
    }

    /// Forgets the last child's log, verdict and tape (not the counts).
    pub fn reset(&self) {
        self.failed.store(0, Ordering::SeqCst);
        self.msg_len.store(0, Ordering::SeqCst);
        self.log_next.store(0, Ordering::SeqCst);
        for s in &self.log {
            s.len.store(0, Ordering::Relaxed);
        }
        self.calls.store(0, Ordering::Relaxed);
        self.new_cover.store(0, Ordering::Relaxed);
        self.tape_len.store(0, Ordering::Relaxed);
    }

    /// Appends an operation to the log; returns its slot for
    /// [`log_update`](Self::log_update).
    pub fn log(&self, text: &str) -> usize {
        let seq = self.log_next.fetch_add(1, Ordering::Relaxed);
        let slot = (seq % LOG_SLOTS as u64) as usize;
        self.write_slot(slot, seq as u32, text);
        slot
    }

    /// Replaces the text of a slot (the operation and now its result).
    pub fn log_update(&self, slot: usize, text: &str) {
        let seq = self.log[slot].seq.load(Ordering::Relaxed);
        self.write_slot(slot, seq, text);
    }

    fn write_slot(&self, slot: usize, seq: u32, text: &str) {
        let s = &self.log[slot];
        let bytes = text.as_bytes();
        let n = bytes.len().min(LOG_LEN);
        // SAFETY: the slot's text lies in our shared mapping; concurrent
        // writers of the same slot can only garble the text, which is a
        // byte array valid for any contents.
        unsafe {
            let dst = s.text.as_ptr() as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, n);
        }
        s.seq.store(seq, Ordering::Relaxed);
        s.len.store(n as u32, Ordering::Release);
    }

    /// The last `n` operations logged, oldest first.
    pub fn last_ops(&self, n: usize) -> Vec<String> {
        let next = self.log_next.load(Ordering::Acquire);
        let first = next.saturating_sub(n.min(LOG_SLOTS) as u64);
        (first..next)
            .map(|seq| {
                let s = &self.log[(seq % LOG_SLOTS as u64) as usize];
                let len = s.len.load(Ordering::Acquire) as usize;
                format!("[{seq}] {}", String::from_utf8_lossy(&s.text[..len.min(LOG_LEN)]))
            })
            .collect()
    }

    /// Records the child's failure (the first one only).
    pub fn fail(&self, msg: &str) {
        if self.failed.swap(1, Ordering::SeqCst) != 0 {
            return;
        }
        let n = msg.len().min(MSG_LEN);
        // SAFETY: the message buffer lies in our mapping and only the
        // first failing writer gets here.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), self.msg.as_ptr() as *mut u8, n);
        }
        self.msg_len.store(n as u32, Ordering::SeqCst);
    }

    /// The failure a child recorded.
    pub fn failure(&self) -> Option<String> {
        if self.failed.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let n = self.msg_len.load(Ordering::SeqCst) as usize;
        Some(String::from_utf8_lossy(&self.msg[..n.min(MSG_LEN)]).into_owned())
    }

    /// Counts one result (`Ok` or an errno) of operation `op`.
    pub fn count(&self, op: usize, result: Result<(), i32>) {
        let r = match result {
            Ok(()) => 0,
            Err(e) if (1..RESULTS as i32).contains(&e) => e as usize,
            Err(_) => RESULTS - 1,
        };
        self.results[op.min(OPS - 1)][r].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts of operation `op`: (result, count) for every result seen,
    /// result 0 being success.
    pub fn counts(&self, op: usize) -> Vec<(usize, u32)> {
        self.results[op]
            .iter()
            .enumerate()
            .map(|(r, c)| (r, c.load(Ordering::Relaxed)))
            .filter(|&(_, c)| c != 0)
            .collect()
    }

    /// Stores the tape the child used.
    pub fn set_tape(&self, words: &[u64]) {
        let n = words.len().min(TAPE_MAX);
        for (slot, &w) in self.tape.iter().zip(&words[..n]) {
            slot.store(w, Ordering::Relaxed);
        }
        self.tape_len.store(n as u64, Ordering::Release);
    }

    /// The tape the child stored.
    pub fn tape(&self) -> Vec<u64> {
        let n = (self.tape_len.load(Ordering::Acquire) as usize).min(TAPE_MAX);
        self.tape[..n].iter().map(|w| w.load(Ordering::Relaxed)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_seeds_differ() {
        let a: Vec<u64> = (0..8).map({ let mut r = Rng::new(7); move |_| r.next_u64() }).collect();
        let b: Vec<u64> = (0..8).map({ let mut r = Rng::new(7); move |_| r.next_u64() }).collect();
        let c: Vec<u64> = (0..8).map({ let mut r = Rng::new(8); move |_| r.next_u64() }).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(derive(1, 0), derive(1, 1));
        assert_ne!(derive(1, 0), derive(2, 0));
    }

    #[test]
    fn tape_replays_its_prefix_then_records_fresh_words() {
        let mut t = Tape::new(1, vec![10, 20]);
        assert_eq!(t.word(), 10);
        assert_eq!(t.word(), 20);
        let fresh = t.word();
        assert_eq!(t.recorded(), &[10, 20, fresh]);
        // Replaying the recorded tape gives the same decisions.
        let mut again = Tape::new(99, t.recorded().to_vec());
        assert_eq!((again.word(), again.word(), again.word()), (10, 20, fresh));
        let mut w = Tape::new(3, vec![]);
        for _ in 0..100 {
            assert!(w.weighted(&[0, 5, 0, 1]) % 2 == 1);
        }
    }

    #[test]
    fn mutations_stay_bounded() {
        let mut rng = Rng::new(5);
        let corpus = vec![vec![1, 2, 3, 4], vec![5; 100]];
        for _ in 0..200 {
            assert!(mutate(&mut rng, &corpus).len() <= TAPE_MAX);
        }
    }

    #[test]
    fn oracle_follows_uapi_rst() {
        use uapi::*;
        for (cmd, _) in IOCTLS {
            assert_eq!(documented(cmd, FdKind::Invalid), &[EBADF]);
            assert_eq!(documented(cmd, FdKind::Other), &[ENOTTY]);
            let kind = served_by(cmd).unwrap();
            for other in [FdKind::Device, FdKind::Vm, FdKind::Vcpu] {
                if other != kind {
                    assert_eq!(documented(cmd, other), &[ENOTTY], "{}", ioctl_name(cmd));
                }
            }
        }
        assert!(documented(PACIFICA_SET_MEMORY_REGION, FdKind::Vm).contains(&E2BIG));
        assert!(documented(PACIFICA_RUN, FdKind::Vcpu).contains(&EINTR));
        assert!(!documented(PACIFICA_GET_REGS, FdKind::Vcpu).contains(&EINVAL));
        assert_eq!(documented(0xaf7f, FdKind::Vcpu), &[ENOTTY]);
        let any = documented_any_kind(PACIFICA_CREATE_VCPU);
        assert!(any.contains(&EBADF) && any.contains(&EEXIST) && !any.contains(&EFAULT));
    }

    #[test]
    fn kernel_log_problems_are_recognised() {
        assert!(is_bad_log_line("WARNING: CPU: 0 PID: 1 at mm/gup.c:1234"));
        assert!(is_bad_log_line("BUG: unable to handle page fault"));
        assert!(is_bad_log_line("rcu: INFO: rcu_sched detected stalls"));
        assert!(!is_bad_log_line("pacifica: SVM revision 1, 16 ASIDs"));
    }

    #[test]
    fn kcov_numbers_match_linux() {
        assert_eq!(KCOV_INIT_TRACE, 0x8008_6301);
        assert_eq!(KCOV_ENABLE, 0x6364);
        assert_eq!(KCOV_DISABLE, 0x6365);
    }

    #[test]
    fn shared_area_logs_and_fails() {
        let s = Shared::new().unwrap();
        s.reset();
        for i in 0..100 {
            let slot = s.log(&format!("op {i}"));
            s.log_update(slot, &format!("op {i} = ok"));
        }
        let last = s.last_ops(3);
        assert_eq!(last, vec!["[97] op 97 = ok", "[98] op 98 = ok", "[99] op 99 = ok"]);
        assert_eq!(s.failure(), None);
        s.fail("first");
        s.fail("second");
        assert_eq!(s.failure().as_deref(), Some("first"));
        s.set_tape(&[1, 2, 3]);
        assert_eq!(s.tape(), vec![1, 2, 3]);
        s.count(0, Err(libc::EINVAL));
        s.count(0, Ok(()));
        assert_eq!(s.counts(0), vec![(0, 1), (libc::EINVAL as usize, 1)]);
    }
}

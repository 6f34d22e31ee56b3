// SPDX-License-Identifier: GPL-2.0

//! Stopping a running vCPU from outside, with signals.
//!
//! `PACIFICA_RUN` returns `EINTR` when a signal is pending for the thread
//! that runs the guest, as `KVM_RUN` does. The harness relies on that twice:
//! a [`Watchdog`] ends a run that takes too long, and the tests of signal
//! handling kick a spinning guest on purpose.
//!
//! The signals used, [`KICK_SIGNAL`] (SIGALRM) and SIGUSR1, get a handler
//! that does nothing, installed without `SA_RESTART`: the point is only to
//! make the ioctl return, and the default action would kill the process.
//!
//! A signal sent just before the thread enters the ioctl is consumed by the
//! handler while the thread is still in userspace, and the ioctl would then
//! block. KVM closes that window with `immediate_exit`; Pacifica's ABI has
//! nothing like it, so a watchdog keeps kicking every few milliseconds until
//! it is disarmed.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

/// The signal watchdogs send.
pub const KICK_SIGNAL: libc::c_int = libc::SIGALRM;

/// How often a fired watchdog repeats its signal.
const KICK_INTERVAL: Duration = Duration::from_millis(20);

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs the do-nothing handler for SIGALRM and SIGUSR1, without
/// `SA_RESTART` so that a blocking ioctl returns `EINTR`.
pub fn install_handlers() {
    for sig in [libc::SIGALRM, libc::SIGUSR1] {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; the handler is an `extern "C"` function that touches
        // nothing, so it is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// Blocks SIGALRM and SIGUSR1 in the calling thread, so that a signal sent
/// to the whole process (by `setitimer`, say) reaches a thread that runs a
/// vCPU instead of a helper thread of the harness.
pub fn block_signals_in_this_thread() {
    // SAFETY: the set is initialised by sigemptyset before use, and
    // pthread_sigmask only changes this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// A thread of this process, by its kernel thread id, to be signalled.
///
/// tgkill(2), not pthread_kill(3): glibc's pthread_kill takes a lock in the
/// target's thread descriptor, and a process forked while another thread
/// held that lock (signalling the forking thread) inherits it locked, so
/// that every later pthread_kill of that thread in the new process waits
/// forever. The fuzzers fork from processes whose helper threads signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thread {
    pid: libc::pid_t,
    tid: libc::pid_t,
}

impl Thread {
    /// The calling thread.
    pub fn current() -> Self {
        // SAFETY: neither call has preconditions.
        unsafe { Thread { pid: libc::getpid(), tid: libc::gettid() } }
    }

    /// Sends `signal` to the thread. The caller makes sure the thread is
    /// still alive (a dead thread's id may name a new thread of this
    /// process); tgkill takes no user-space lock.
    pub fn signal(self, signal: libc::c_int) {
        // SAFETY: a plain system call; it only delivers a signal, to this
        // process (`pid`), whose handlers `install_handlers` set.
        unsafe { libc::syscall(libc::SYS_tgkill, self.pid, self.tid, signal) };
    }
}

/// After a delay, signals the thread that armed it, again and again, until
/// dropped.
///
/// The harness arms one around every run loop so that a guest that never
/// exits makes `PACIFICA_RUN` fail with `EINTR` and the test fail with a
/// message; the signal tests arm one to interrupt a guest on purpose.
///
/// # Invariants
///
/// `target` is the thread that created the watchdog. The watchdog cannot
/// leave that thread (it is not `Send`) and its drop joins the helper
/// thread, so the helper never signals a thread that has exited.
pub struct Watchdog {
    fired: Arc<AtomicBool>,
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
    /// Keeps the watchdog on its thread (raw pointers are not `Send`).
    _not_send: PhantomData<*const ()>,
}

impl Watchdog {
    /// Starts signalling the calling thread with [`KICK_SIGNAL`] once
    /// `delay` has passed.
    pub fn arm(delay: Duration) -> Self {
        Self::arm_with(delay, KICK_SIGNAL)
    }

    /// Like [`arm`](Self::arm), with another signal (one that
    /// [`install_handlers`] handles, or one that is meant to kill).
    pub fn arm_with(delay: Duration, signal: libc::c_int) -> Self {
        let target = Thread::current();
        let fired = Arc::new(AtomicBool::new(false));
        let (done, rx) = mpsc::channel::<()>();
        let flag = fired.clone();
        let thread = thread::spawn(move || {
            block_signals_in_this_thread();
            let mut wait = delay;
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(wait) {
                flag.store(true, Ordering::SeqCst);
                // By the type invariant `target` is alive until the watchdog
                // is dropped, and the drop waits for this thread.
                target.signal(signal);
                wait = KICK_INTERVAL;
            }
        });
        // INVARIANT: `target` is the current thread, and `Self` is not Send.
        Self {
            fired,
            done: Some(done),
            thread: Some(thread),
            _not_send: PhantomData,
        }
    }

    /// Whether the delay has passed and the signals have started.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

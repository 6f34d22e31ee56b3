// SPDX-License-Identifier: GPL-2.0

//! A tiny kselftest harness: TAP version 13 on standard output, kselftest's
//! exit codes, and a deadline per test.
//!
//! A test is a plain `fn() -> TestResult`. It reports a failure or a skip by
//! returning [`Failure`], usually through the macros [`ensure!`],
//! [`ensure_eq!`], [`fail!`] and [`skip!`], or through `?` on a result
//! given [`Context`]. Diagnostics are `# ` lines, printed with [`diag!`].
//!
//! The workspace builds with `panic = "abort"`, so a panic cannot be caught
//! per test; the panic hook prints a `not ok` line and `Bail out!` first, so
//! the output still says which test died.

use std::fmt::Display;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::watchdog;

/// kselftest's exit code when every test passed (or was skipped).
pub const KSFT_PASS: i32 = 0;
/// kselftest's exit code when a test failed.
pub const KSFT_FAIL: i32 = 1;
/// kselftest's exit code when the whole program was skipped.
pub const KSFT_SKIP: i32 = 4;

/// How long a test may run unless it says otherwise. Generous: the test
/// machine emulates SVM with QEMU TCG, where a VM exit costs microseconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a test did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The behaviour was wrong; the message says how.
    Fail(String),
    /// The test could not run here; the message says why.
    Skip(String),
}

impl Failure {
    /// The same failure with `prefix: ` in front of its message, to say
    /// which iteration or step it came from.
    pub fn prefixed(self, prefix: impl Display) -> Self {
        match self {
            Failure::Fail(msg) => Failure::Fail(format!("{prefix}: {msg}")),
            Failure::Skip(msg) => Failure::Skip(format!("{prefix}: {msg}")),
        }
    }
}

/// What a test returns.
pub type TestResult = Result<(), Failure>;

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Fail(format!("unexpected error: {}", crate::errno::describe(&e)))
    }
}

impl From<pacifica::sys::MemoryError> for Failure {
    fn from(e: pacifica::sys::MemoryError) -> Self {
        Failure::Fail(e.to_string())
    }
}

/// Adds what was being done to an error, turning it into a [`Failure`].
pub trait Context<T> {
    /// Fails with "`what`: the error".
    fn context(self, what: impl Display) -> Result<T, Failure>;
}

impl<T> Context<T> for io::Result<T> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::Fail(format!("{what}: {}", crate::errno::describe(&e))))
    }
}

impl<T> Context<T> for Result<T, pacifica::sys::MemoryError> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::Fail(format!("{what}: {e}")))
    }
}

/// One test of a program.
#[derive(Clone, Copy, Debug)]
pub struct Test {
    /// Its name in the TAP output: the function's name.
    pub name: &'static str,
    /// The test itself.
    pub func: fn() -> TestResult,
    /// After this long the harness gives up on the whole program.
    pub timeout: Duration,
}

impl Test {
    /// A test with [`DEFAULT_TIMEOUT`]. The [`test!`](crate::test!) macro
    /// names it after the function.
    pub const fn new(name: &'static str, func: fn() -> TestResult) -> Self {
        Self {
            name,
            func,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The same test with another deadline, for tests that loop many times.
    pub const fn timeout(self, secs: u64) -> Self {
        Self {
            timeout: Duration::from_secs(secs),
            ..self
        }
    }
}

/// A [`Test`] named after its function: `test!(hlt_exits)`.
#[macro_export]
macro_rules! test {
    ($func:ident) => {
        $crate::tap::Test::new(stringify!($func), $func)
    };
}

/// Prints a `# ` diagnostic line (several if the message has newlines).
#[macro_export]
macro_rules! diag {
    ($($arg:tt)*) => {
        $crate::tap::diag_str(&format!($($arg)*))
    };
}

/// Fails the test with a formatted message.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::tap::Failure::Fail(format!($($arg)*)))
    };
}

/// Skips the test with a formatted reason.
#[macro_export]
macro_rules! skip {
    ($($arg:tt)*) => {
        return Err($crate::tap::Failure::Skip(format!($($arg)*)))
    };
}

/// Fails the test with the message unless the condition holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::fail!($($arg)*);
        }
    };
}

/// Fails the test unless the two values are equal, printing both in hex.
#[macro_export]
macro_rules! ensure_eq {
    ($left:expr, $right:expr, $($arg:tt)*) => {{
        let (left, right) = (&$left, &$right);
        if left != right {
            $crate::fail!(
                "{}: got {:#x?}, expected {:#x?}",
                format!($($arg)*),
                left,
                right
            );
        }
    }};
}

/// Prints `msg` as TAP diagnostics, one `# ` line per line.
pub fn diag_str(msg: &str) {
    let mut out = io::stdout().lock();
    for line in msg.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = out.flush();
}

/// The number and name of the running test, for the panic hook and the
/// deadline thread.
static CURRENT: Mutex<(usize, &str)> = Mutex::new((0, ""));
/// Tests that passed, failed and were skipped so far, for the totals line.
static PASSED: AtomicUsize = AtomicUsize::new(0);

/// Runs `tests` as one kselftest program and exits with kselftest's code.
///
/// Prints `1..0 # SKIP` and exits [`KSFT_SKIP`] when the device is absent,
/// which is how kselftest expects a program to say "not applicable here".
pub fn run(tests: &[Test]) -> ! {
    println!("TAP version 13");
    if !Path::new(pacifica::sys::DEVICE_PATH).exists() {
        println!("1..0 # SKIP {} not present", pacifica::sys::DEVICE_PATH);
        std::process::exit(KSFT_SKIP);
    }
    watchdog::install_handlers();
    install_panic_hook();
    println!("1..{}", tests.len());

    let (mut failed, mut skipped) = (0, 0);
    for (i, test) in tests.iter().enumerate() {
        let number = i + 1;
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = (number, test.name);
        let deadline = Deadline::arm(number, test.name, test.timeout);
        let start = Instant::now();
        let result = (test.func)();
        let elapsed = start.elapsed();
        drop(deadline);
        match result {
            Ok(()) => {
                PASSED.fetch_add(1, Ordering::Relaxed);
                println!("ok {number} {}", test.name);
            }
            Err(Failure::Skip(reason)) => {
                skipped += 1;
                println!("ok {number} {} # SKIP {reason}", test.name);
            }
            Err(Failure::Fail(msg)) => {
                failed += 1;
                diag_str(&msg);
                diag!("{} failed after {:.1}s", test.name, elapsed.as_secs_f64());
                println!("not ok {number} {}", test.name);
            }
        }
    }
    println!(
        "# Totals: pass:{} fail:{failed} xfail:0 xpass:0 skip:{skipped} error:0",
        PASSED.load(Ordering::Relaxed)
    );
    let _ = io::stdout().flush();
    std::process::exit(if failed > 0 { KSFT_FAIL } else { KSFT_PASS });
}

/// Makes a panic print which test it ended before the process aborts.
fn install_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let (number, name) = *CURRENT.lock().unwrap_or_else(|e| e.into_inner());
        diag_str(&format!("panic: {info}"));
        println!("not ok {number} {name} # panicked");
        println!("Bail out! {name} panicked");
        let _ = io::stdout().flush();
        default(info);
    }));
}

/// The last resort against a hang: if the test is still running when its
/// deadline passes (say, stuck in an ioctl that ignores signals), print
/// `not ok` and `Bail out!` and end the whole program.
struct Deadline {
    done: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Deadline {
    fn arm(number: usize, name: &'static str, timeout: Duration) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            watchdog::block_signals_in_this_thread();
            if let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(timeout) {
                // The test thread may hold the stdout lock (it may be the
                // very thing that hangs), so write the file descriptor.
                let msg = format!(
                    "# {name} did not finish within {}s\nnot ok {number} {name} # TIMEOUT\n\
                     Bail out! {name} timed out\n",
                    timeout.as_secs()
                );
                // SAFETY: write(2) and _exit(2) on a valid buffer; _exit
                // ends the process without running anything else.
                unsafe {
                    libc::write(1, msg.as_ptr().cast(), msg.len());
                    libc::_exit(KSFT_FAIL);
                }
            }
        });
        Self {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The kernel log as it grows (`/dev/kmsg`), and the lines that report a
//! problem: what the fuzzers check after every child, as `run-l1` checks
//! the whole log after every command.

use std::io;

/// Kernel log lines that fail the fuzzer (the same list `run-l1` greps
/// for, with the lockup and stall reports).
pub const BAD_LOG_PATTERNS: [&str; 15] = [
    "WARNING:",
    "BUG:",
    "Oops",
    "general protection",
    "Call Trace",
    "UBSAN",
    "refcount_t:",
    "INFO: task",
    "RCU stall",
    // "rcu: INFO: rcu_preempt detected stalls" and "... self-detected stall".
    "detected stall",
    "rcu: INFO:",
    "DEBUG_LOCKS_WARN_ON",
    "Kernel panic",
    "soft lockup",
    "KASAN",
];

/// Whether a kernel log line reports a problem.
pub fn is_bad_log_line(line: &str) -> bool {
    BAD_LOG_PATTERNS.iter().any(|p| line.contains(p))
}

/// A reader of the kernel log from a point on (`/dev/kmsg`).
pub struct Kmsg {
    fd: libc::c_int,
}

impl Kmsg {
    /// Starts reading at the end of the log: only lines logged from now
    /// on are returned.
    pub fn open() -> io::Result<Self> {
        // SAFETY: a valid C string; the fd is owned by the new value.
        let fd = unsafe {
            libc::open(
                c"/dev/kmsg".as_ptr(),
                libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: seeking our own fd.
        unsafe { libc::lseek(fd, 0, libc::SEEK_END) };
        Ok(Kmsg { fd })
    }

    /// The messages logged since the last call (or since `open`).
    pub fn new_lines(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            // SAFETY: reading into a buffer we own.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                match io::Error::last_os_error().raw_os_error() {
                    // EPIPE: records were overwritten before we read them;
                    // the read position moved on to the oldest one left.
                    Some(libc::EPIPE) | Some(libc::EINTR) => continue,
                    _ => break,
                }
            }
            if n == 0 {
                break;
            }
            let rec = String::from_utf8_lossy(&buf[..n as usize]);
            // "prio,seq,usec,flags;message\n KEY=value..."
            let first = rec.lines().next().unwrap_or("");
            let msg = first.split_once(';').map_or(first, |(_, m)| m);
            lines.push(msg.to_owned());
        }
        lines
    }

    /// The problem reports logged since the last call.
    pub fn new_problems(&mut self) -> Vec<String> {
        self.new_lines()
            .into_iter()
            .filter(|l| is_bad_log_line(l))
            .collect()
    }
}

impl Drop for Kmsg {
    fn drop(&mut self) {
        // SAFETY: our own fd.
        unsafe { libc::close(self.fd) };
    }
}


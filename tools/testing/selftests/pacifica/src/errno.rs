// SPDX-License-Identifier: GPL-2.0

//! Errno names, checks of expected errors, and the raw `ioctl(2)` the tests
//! of bad input need.
//!
//! The typed wrappers of `pacifica::sys` cannot pass a bad pointer or an
//! unknown request number, which is exactly what those tests must do, so
//! they call [`raw_ioctl`].

use std::io;
use std::os::fd::RawFd;

use crate::tap::{Failure, TestResult};

/// The symbolic name of `errno`, as in `errno(3)`, or `"E?"`.
pub fn name(errno: i32) -> &'static str {
    match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ENOSPC => "ENOSPC",
        libc::ERANGE => "ERANGE",
        libc::ENOSYS => "ENOSYS",
        libc::EOVERFLOW => "EOVERFLOW",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ETIMEDOUT => "ETIMEDOUT",
        _ => "E?",
    }
}

/// An error as "EINVAL (22)", or its text when it carries no errno.
pub fn describe(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(errno) => format!("{} ({errno})", name(errno)),
        None => e.to_string(),
    }
}

fn names(accepted: &[i32]) -> String {
    accepted
        .iter()
        .map(|&e| name(e))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Checks that `result` failed with one of the `accepted` errnos, the first
/// being the one the documentation names, the others tolerated variants.
///
/// Always prints what happened as a diagnostic, so that a run in the test
/// machine shows the module's actual choices even when they are accepted.
pub fn expect_errno<T>(what: &str, result: io::Result<T>, accepted: &[i32]) -> TestResult {
    match result {
        Ok(_) => {
            crate::diag!("{what}: succeeded");
            Err(Failure::Fail(format!(
                "{what} succeeded, expected {}",
                names(accepted)
            )))
        }
        Err(e) => {
            crate::diag!("{what}: {}", describe(&e));
            match e.raw_os_error() {
                Some(errno) if accepted.contains(&errno) => Ok(()),
                _ => Err(Failure::Fail(format!(
                    "{what} failed with {}, expected {}",
                    describe(&e),
                    names(accepted)
                ))),
            }
        }
    }
}

/// `ioctl(fd, request, arg)` with `arg` passed as a bare integer.
///
/// Not `unsafe` although `arg` may be any address: the kernel reads and
/// writes user memory only through `copy_{from,to}_user`, which fail with
/// `EFAULT` on a bad address, and the tests pass addresses that belong to
/// no Rust object (unmapped, or owned by the test and not otherwise used).
/// A request number that makes the module write to a *valid* address the
/// program also uses would corrupt it: callers pass only numbers whose
/// arguments they own.
pub fn raw_ioctl(fd: RawFd, request: u32, arg: u64) -> io::Result<i32> {
    // SAFETY: see above: the kernel validates `arg` before using it, and the
    // callers guarantee that a valid `arg` points at memory they own.
    let ret = unsafe { libc::ioctl(fd, request as _, arg as libc::c_ulong) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

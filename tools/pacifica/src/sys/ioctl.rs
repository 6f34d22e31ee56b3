// SPDX-License-Identifier: GPL-2.0

//! The raw `ioctl(2)` calls: vmm-sys-util's helpers (as kvm-ioctls uses
//! them), with the C convention (-1 and `errno`) turned into an
//! [`io::Result`].
//!
//! They are `unsafe` because the kernel interprets the argument according
//! to the request number, which these helpers cannot check; the typed
//! wrappers in `system.rs`, `vm.rs` and `vcpu.rs` pair each request with
//! the type the uapi header defines for it.

use std::io;
use std::os::fd::BorrowedFd;

use vmm_sys_util::ioctl as sys;

/// Converts an `ioctl` return value into a result.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Issues `request` with no argument, or with an integer argument `arg`.
///
/// # Safety
///
/// `request` must be an ioctl whose argument is an integer (or unused), so
/// the kernel does not dereference `arg`.
pub(super) unsafe fn ioctl_with_val(fd: BorrowedFd<'_>, request: u32, arg: u64) -> io::Result<libc::c_int> {
    // SAFETY: the caller guarantees that the kernel treats `arg` as a plain
    // integer for this request, so no memory is accessed through it.
    check(unsafe { sys::ioctl_with_val(&fd, request.into(), arg as libc::c_ulong) })
}

/// Issues `request`, whose argument the kernel reads, with a pointer to `arg`.
///
/// # Safety
///
/// `request` must be an ioctl that reads at most `size_of::<T>()` bytes from
/// its argument and does not write to it.
pub(super) unsafe fn ioctl_with_ref<T>(fd: BorrowedFd<'_>, request: u32, arg: &T) -> io::Result<libc::c_int> {
    // SAFETY: `arg` is a valid, live reference of `size_of::<T>()` bytes, and
    // the caller guarantees the kernel reads no more than that.
    check(unsafe { sys::ioctl_with_ref(&fd, request.into(), arg) })
}

/// Issues `request`, whose argument the kernel fills, with a pointer to `arg`.
///
/// # Safety
///
/// `request` must be an ioctl that writes at most `size_of::<T>()` bytes to
/// its argument, and any bytes it writes must form a valid `T` (true for the
/// plain-integer `repr(C)` structs of the uapi header).
pub(super) unsafe fn ioctl_with_mut<T>(fd: BorrowedFd<'_>, request: u32, arg: &mut T) -> io::Result<libc::c_int> {
    // SAFETY: `arg` is a valid, exclusive reference of `size_of::<T>()` bytes,
    // and the caller guarantees the kernel writes no more than that and only
    // values valid for `T`.
    check(unsafe { sys::ioctl_with_mut_ref(&fd, request.into(), arg) })
}

// SPDX-License-Identifier: GPL-2.0

//! An owned memory mapping, unmapped on drop.
//!
//! A vCPU's run page (a shared mapping of the vCPU fd) is one of these;
//! guest RAM is `vm-memory`'s (`memory.rs`).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// A mapping of `len` bytes at `ptr`.
///
/// # Invariants
///
/// `ptr..ptr + len` is a readable and writable mapping created by `mmap`
/// that this value owns exclusively and unmaps when dropped; `len > 0`.
#[derive(Debug)]
pub(crate) struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `Mmap` is a plain owned allocation; nothing in it is tied to the
// thread that created it, and shared access only hands out `&[u8]`-like views
// through the owning types' `&self` methods.
unsafe impl Send for Mmap {}
// SAFETY: see `Send`: `&Mmap` only exposes the address and length.
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` from offset 0, shared with the kernel.
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        Self::map(len, libc::MAP_SHARED, fd.as_raw_fd())
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a null hint lets the kernel choose an address that overlaps
        // no existing mapping, so no Rust object is affected; the result is
        // checked before use.
        let ptr = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0) };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(ptr.cast::<u8>())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        // INVARIANT: `mmap` succeeded with PROT_READ | PROT_WRITE and `len > 0`.
        Ok(Self { ptr, len })
    }

    /// The start of the mapping.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The mapping as bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: by the type invariant `ptr..ptr + len` is mapped readable
        // and owned by `self`; the borrow of `self` keeps it mapped.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: by the type invariant this is exactly a mapping we own, and
        // no borrow of it can outlive `self`. A failure cannot be acted upon.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

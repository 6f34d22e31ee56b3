// SPDX-License-Identifier: GPL-2.0

//! Guest RAM: rust-vmm's `vm-memory` mapping, registered with a VM.

use std::io;

use vm_memory::mmap::{FromRangesError, MmapRegionError};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend as _, GuestMemoryMmap};

use super::Vm;
use crate::uapi;

/// An access to guest memory that does not fit in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryError {
    /// The guest-physical range lies (partly) outside guest memory.
    #[error(
        "guest-physical range {gpa:#x}+{len:#x} lies outside the {size:#x} bytes of guest memory"
    )]
    OutOfRange {
        /// Start of the access.
        gpa: u64,
        /// Length of the access in bytes.
        len: u64,
        /// Size of guest memory in bytes.
        size: u64,
    },
}

/// Memory that backs a contiguous range of guest-physical addresses.
///
/// It is a `vm-memory` [`GuestMemoryMmap`] of one region at guest-physical
/// 0: a private, anonymous, zero-filled mapping (`MAP_NORESERVE`, so only
/// pages the guest or the VMM touch cost host memory), which the rust-vmm
/// crates (linux-loader) take as it is ([`Self::vm_memory`]).
///
/// The byte-slice views ([`Self::slice`], [`Self::as_slice`]) are for the
/// VMM's own use while no vCPU of the VM runs (it loads images before the
/// first run and serves exits between runs, on the thread that runs the
/// vCPU); memory a running guest may write is reached through
/// `vm-memory`'s volatile accessors instead.
#[derive(Debug)]
pub struct GuestMemory {
    mem: GuestMemoryMmap,
    /// The host address of guest-physical 0.
    host: *mut u8,
    size: usize,
}

// SAFETY: `host` points into `mem`'s mapping, which `GuestMemoryMmap`
// (itself `Send` and `Sync`) owns; the raw pointer adds no thread-bound
// state, and mutable views are only handed out through `&mut self`.
unsafe impl Send for GuestMemory {}
// SAFETY: as for `Send`: `&GuestMemory` gives only shared views.
unsafe impl Sync for GuestMemory {}

impl GuestMemory {
    /// Maps `size` bytes of zeroed memory. `size` must be non-zero; the
    /// module also requires it to be a multiple of 4 KiB to register it.
    pub fn new(size: usize) -> io::Result<Self> {
        if size == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), size)]).map_err(|e| match e {
            FromRangesError::MmapRegion(MmapRegionError::Mmap(e)) => e,
            other => io::Error::new(io::ErrorKind::InvalidInput, other),
        })?;
        let host = mem.get_host_address(GuestAddress(0)).map_err(io::Error::other)?;
        Ok(Self { mem, host, size })
    }

    /// The memory as `vm-memory` sees it, for the rust-vmm crates.
    pub fn vm_memory(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// The host address of the first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.host
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// All of guest memory as bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `host..host + size` is the one region of `mem`, mapped
        // readable and writable for as long as `mem` lives, which the
        // borrow of `self` guarantees.
        unsafe { std::slice::from_raw_parts(self.host, self.size) }
    }

    /// All of guest memory as mutable bytes.
    pub fn as_slice_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the view exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.host, self.size) }
    }

    /// The `len` bytes at `gpa`, or an error if they do not all exist.
    pub fn slice(&self, gpa: u64, len: usize) -> Result<&[u8], MemoryError> {
        let range = self.range(gpa, len)?;
        Ok(&self.as_slice()[range])
    }

    /// The `len` bytes at `gpa`, mutable, or an error if they do not all exist.
    pub fn slice_mut(&mut self, gpa: u64, len: usize) -> Result<&mut [u8], MemoryError> {
        let range = self.range(gpa, len)?;
        Ok(&mut self.as_slice_mut()[range])
    }

    /// Copies guest memory at `gpa` into `buf` (through `vm-memory`).
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        self.range(gpa, buf.len())?;
        self.mem.read_slice(buf, GuestAddress(gpa)).map_err(|_| self.out_of_range(gpa, buf.len()))
    }

    /// Copies `buf` into guest memory at `gpa` (through `vm-memory`).
    pub fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemoryError> {
        self.range(gpa, buf.len())?;
        self.mem.write_slice(buf, GuestAddress(gpa)).map_err(|_| self.out_of_range(gpa, buf.len()))
    }

    /// Registers this memory with `vm` in `slot`, at guest-physical `gpa`.
    pub fn register(&self, vm: &Vm, slot: u32, gpa: u64) -> io::Result<()> {
        let region = uapi::MemoryRegion {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: self.size() as u64,
            userspace_addr: self.as_ptr() as u64,
        };
        vm.set_memory_region(&region)
    }

    /// Checks that `gpa..gpa + len` lies inside the memory and returns it as
    /// an index range. Done with checked arithmetic because both values may
    /// come from a guest image.
    fn range(&self, gpa: u64, len: usize) -> Result<std::ops::Range<usize>, MemoryError> {
        let size = self.size();
        let err = || self.out_of_range(gpa, len);
        let start = usize::try_from(gpa).map_err(|_| err())?;
        let end = start.checked_add(len).ok_or_else(err)?;
        if end > size {
            return Err(err());
        }
        Ok(start..end)
    }
}

impl GuestMemory {
    fn out_of_range(&self, gpa: u64, len: usize) -> MemoryError {
        MemoryError::OutOfRange { gpa, len: len as u64, size: self.size as u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_memory_is_zeroed_and_sized() {
        let mem = GuestMemory::new(1 << 20).unwrap();
        assert_eq!(mem.size(), 1 << 20);
        assert!(mem.as_slice().iter().all(|&b| b == 0));
    }

    #[test]
    fn zero_size_is_refused() {
        let err = GuestMemory::new(0).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    }

    #[test]
    fn write_then_read_round_trips() {
        let mut mem = GuestMemory::new(0x10000).unwrap();
        mem.write(0x1234, b"pacifica").unwrap();
        let mut buf = [0u8; 8];
        mem.read(0x1234, &mut buf).unwrap();
        assert_eq!(&buf, b"pacifica");
        assert_eq!(mem.as_slice()[0x1234], b'p');
        // The same bytes through vm-memory, as linux-loader will see them.
        let v: u64 = mem.vm_memory().read_obj(GuestAddress(0x1234)).unwrap();
        assert_eq!(v.to_le_bytes(), *b"pacifica");
    }

    #[test]
    fn access_ending_exactly_at_the_end_is_allowed() {
        let mut mem = GuestMemory::new(0x1000).unwrap();
        mem.write(0xffc, &[1, 2, 3, 4]).unwrap();
        assert_eq!(mem.slice(0xffc, 4).unwrap(), &[1, 2, 3, 4]);
    }

    #[test]
    fn accesses_past_the_end_are_refused() {
        let mut mem = GuestMemory::new(0x1000).unwrap();
        let err = mem.write(0xffd, &[0; 4]).unwrap_err();
        assert_eq!(
            err,
            MemoryError::OutOfRange {
                gpa: 0xffd,
                len: 4,
                size: 0x1000
            }
        );
        assert!(mem.read(0x1000, &mut [0; 1]).is_err());
        assert!(mem.slice(u64::MAX, 2).is_err());
        assert!(mem.slice_mut(usize::MAX as u64 - 1, 4).is_err());
    }
}

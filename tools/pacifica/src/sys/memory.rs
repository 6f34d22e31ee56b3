// SPDX-License-Identifier: GPL-2.0

//! Guest RAM: an anonymous mapping registered with a VM.

use std::io;

use super::mmap::Mmap;
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
/// It is a private, anonymous, zero-filled mapping (`MAP_NORESERVE`, so only
/// pages the guest or the VMM touch cost host memory). Offsets into it are
/// guest-physical addresses relative to where it is registered; the VMM
/// registers its RAM at guest-physical address 0, so the two coincide.
#[derive(Debug)]
pub struct GuestMemory {
    map: Mmap,
}

impl GuestMemory {
    /// Maps `size` bytes of zeroed memory. `size` must be non-zero; the
    /// module also requires it to be a multiple of 4 KiB to register it.
    pub fn new(size: usize) -> io::Result<Self> {
        Ok(Self {
            map: Mmap::anonymous(size)?,
        })
    }

    /// The host address of the first byte.
    pub fn as_ptr(&self) -> *mut u8 {
        self.map.ptr().as_ptr()
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.map.len()
    }

    /// All of guest memory as bytes.
    pub fn as_slice(&self) -> &[u8] {
        self.map.as_slice()
    }

    /// All of guest memory as mutable bytes.
    pub fn as_slice_mut(&mut self) -> &mut [u8] {
        self.map.as_slice_mut()
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

    /// Copies guest memory at `gpa` into `buf`.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), MemoryError> {
        buf.copy_from_slice(self.slice(gpa, buf.len())?);
        Ok(())
    }

    /// Copies `buf` into guest memory at `gpa`.
    pub fn write(&mut self, gpa: u64, buf: &[u8]) -> Result<(), MemoryError> {
        self.slice_mut(gpa, buf.len())?.copy_from_slice(buf);
        Ok(())
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
        let err = || MemoryError::OutOfRange {
            gpa,
            len: len as u64,
            size: size as u64,
        };
        let start = usize::try_from(gpa).map_err(|_| err())?;
        let end = start.checked_add(len).ok_or_else(err)?;
        if end > size {
            return Err(err());
        }
        Ok(start..end)
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

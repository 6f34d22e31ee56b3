// SPDX-License-Identifier: GPL-2.0

//! The device fd, `/dev/pacifica`.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::ioctl::{ioctl_with_mut, ioctl_with_val};
use super::{Vm, DEVICE_PATH};
use crate::uapi;

/// An open `/dev/pacifica`: asks about the module and creates VMs.
#[derive(Debug)]
pub struct System {
    fd: OwnedFd,
}

impl System {
    /// Opens [`DEVICE_PATH`] read-write and close-on-exec.
    pub fn open() -> io::Result<Self> {
        Self::open_path(DEVICE_PATH)
    }

    /// Opens the device at `path` (for a device node outside `/dev`).
    pub fn open_path(path: impl AsRef<Path>) -> io::Result<Self> {
        // std opens every file with O_CLOEXEC.
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Self { fd: file.into() })
    }

    /// The interface version the module implements
    /// (compare with [`uapi::PACIFICA_API_VERSION`]).
    pub fn api_version(&self) -> io::Result<u32> {
        // SAFETY: PACIFICA_GET_API_VERSION takes no argument.
        let version =
            unsafe { ioctl_with_val(self.fd.as_fd(), uapi::PACIFICA_GET_API_VERSION, 0)? };
        Ok(version as u32)
    }

    /// The SVM features the module found and its resource accounting.
    pub fn info(&self) -> io::Result<uapi::ModuleInfo> {
        let mut info = uapi::ModuleInfo::default();
        // SAFETY: PACIFICA_GET_INFO writes one `ModuleInfo`, a struct of
        // integers for which every bit pattern is valid.
        unsafe { ioctl_with_mut(self.fd.as_fd(), uapi::PACIFICA_GET_INFO, &mut info)? };
        Ok(info)
    }

    /// Creates a VM with the given `uapi::PACIFICA_PAGING_*` mode (EINVAL
    /// for another).
    pub fn create_vm(&self, paging: u64) -> io::Result<Vm> {
        // SAFETY: PACIFICA_CREATE_VM takes the paging mode as an integer.
        let fd = unsafe { ioctl_with_val(self.fd.as_fd(), uapi::PACIFICA_CREATE_VM, paging)? };
        // SAFETY: on success PACIFICA_CREATE_VM returns a new fd that nothing
        // else owns, so it is ours to own and close.
        Ok(Vm::new(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// How many bytes to map from a vCPU fd to see its run page.
    pub fn vcpu_mmap_size(&self) -> io::Result<usize> {
        // SAFETY: PACIFICA_GET_VCPU_MMAP_SIZE takes no argument.
        let size =
            unsafe { ioctl_with_val(self.fd.as_fd(), uapi::PACIFICA_GET_VCPU_MMAP_SIZE, 0)? };
        Ok(size as usize)
    }
}

impl AsRawFd for System {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

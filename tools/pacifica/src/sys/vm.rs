// SPDX-License-Identifier: GPL-2.0

//! A VM fd: guest memory regions and vCPUs.

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::ioctl::{ioctl_with_ref, ioctl_with_val};
use super::Vcpu;
use crate::uapi;

/// A virtual machine, created by [`System::create_vm`](super::System::create_vm).
#[derive(Debug)]
pub struct Vm {
    fd: OwnedFd,
}

impl Vm {
    pub(super) fn new(fd: OwnedFd) -> Self {
        Self { fd }
    }

    /// Registers a region of guest-physical memory backed by the caller's
    /// mapping at `r.userspace_addr`.
    ///
    /// The module pins the mapping's pages until the VM is destroyed; the
    /// caller must keep the mapping alive that long, or the guest sees the
    /// pinned pages of a mapping the process no longer has. Prefer
    /// [`GuestMemory::register`](super::GuestMemory::register), whose memory
    /// is dropped after a VM declared before it.
    pub fn set_memory_region(&self, r: &uapi::MemoryRegion) -> io::Result<()> {
        // SAFETY: PACIFICA_SET_MEMORY_REGION reads one `MemoryRegion`.
        unsafe { ioctl_with_ref(self.fd.as_fd(), uapi::PACIFICA_SET_MEMORY_REGION, r)? };
        Ok(())
    }

    /// Gives every vCPU created after it an in-kernel local APIC
    /// (`PACIFICA_CREATE_IRQCHIP`): before the first vCPU, once.
    pub fn create_irqchip(&self) -> io::Result<()> {
        // SAFETY: PACIFICA_CREATE_IRQCHIP takes the integer 0 and no memory.
        unsafe { ioctl_with_val(self.fd.as_fd(), uapi::PACIFICA_CREATE_IRQCHIP, 0)? };
        Ok(())
    }

    /// Delivers a message-signalled interrupt to the local APICs
    /// (`PACIFICA_SIGNAL_MSI`); returns how many accepted it.
    pub fn signal_msi(&self, address: u64, data: u32) -> io::Result<u32> {
        let msi = uapi::Msi { address, data, flags: 0 };
        // SAFETY: PACIFICA_SIGNAL_MSI reads one `Msi`.
        let n = unsafe { ioctl_with_ref(self.fd.as_fd(), uapi::PACIFICA_SIGNAL_MSI, &msi)? };
        Ok(n as u32)
    }

    /// A second handle to the same VM (a duplicated fd), for a thread
    /// that signals interrupts.
    pub fn try_clone(&self) -> io::Result<Vm> {
        Ok(Self { fd: self.fd.try_clone()? })
    }

    /// Creates the vCPU `id` (0..[`uapi::PACIFICA_MAX_VCPUS`]) and maps its
    /// run page.
    pub fn create_vcpu(&self, id: u32) -> io::Result<Vcpu> {
        // SAFETY: PACIFICA_CREATE_VCPU takes the vCPU id as an integer.
        let fd =
            unsafe { ioctl_with_val(self.fd.as_fd(), uapi::PACIFICA_CREATE_VCPU, u64::from(id))? };
        // SAFETY: on success PACIFICA_CREATE_VCPU returns a new fd that
        // nothing else owns, so it is ours to own and close.
        Vcpu::new(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl AsRawFd for Vm {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A vCPU fd and its run page.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use super::ioctl::{ioctl_with_mut, ioctl_with_ref, ioctl_with_val};
use super::mmap::Mmap;
use super::{Exit, RunPage};
use crate::uapi;

/// A virtual CPU, created by [`Vm::create_vcpu`](super::Vm::create_vcpu).
///
/// # Invariants
///
/// `run` maps exactly one [`RunPage`] (`uapi::PACIFICA_RUN_PAGE_SIZE`
/// bytes, page-aligned) of this vCPU's fd. The module writes it only while
/// `PACIFICA_RUN` executes, which takes `&mut self`.
#[derive(Debug)]
pub struct Vcpu {
    fd: OwnedFd,
    run: Mmap,
}

impl Vcpu {
    pub(super) fn new(fd: OwnedFd) -> io::Result<Self> {
        let run = Mmap::shared(fd.as_fd(), uapi::PACIFICA_RUN_PAGE_SIZE)?;
        // INVARIANT: `run` is a fresh mapping of PACIFICA_RUN_PAGE_SIZE bytes
        // at offset 0 of the fd; mmap returns page-aligned addresses.
        Ok(Self { fd, run })
    }

    /// Reads the general registers.
    pub fn get_regs(&self) -> io::Result<uapi::Regs> {
        let mut regs = uapi::Regs::default();
        // SAFETY: PACIFICA_GET_REGS writes one `Regs` (all integers).
        unsafe { ioctl_with_mut(self.fd.as_fd(), uapi::PACIFICA_GET_REGS, &mut regs)? };
        Ok(regs)
    }

    /// Writes the general registers.
    pub fn set_regs(&self, regs: &uapi::Regs) -> io::Result<()> {
        // SAFETY: PACIFICA_SET_REGS reads one `Regs`.
        unsafe { ioctl_with_ref(self.fd.as_fd(), uapi::PACIFICA_SET_REGS, regs)? };
        Ok(())
    }

    /// Reads the system registers.
    pub fn get_sregs(&self) -> io::Result<uapi::Sregs> {
        let mut sregs = uapi::Sregs::default();
        // SAFETY: PACIFICA_GET_SREGS writes one `Sregs` (all integers).
        unsafe { ioctl_with_mut(self.fd.as_fd(), uapi::PACIFICA_GET_SREGS, &mut sregs)? };
        Ok(sregs)
    }

    /// Writes the system registers.
    pub fn set_sregs(&self, sregs: &uapi::Sregs) -> io::Result<()> {
        // SAFETY: PACIFICA_SET_SREGS reads one `Sregs`.
        unsafe { ioctl_with_ref(self.fd.as_fd(), uapi::PACIFICA_SET_SREGS, sregs)? };
        Ok(())
    }

    /// Reads the in-kernel local APIC's state (`PACIFICA_GET_LAPIC`; ENXIO
    /// in a VM without `PACIFICA_CREATE_IRQCHIP`).
    pub fn get_lapic(&self) -> io::Result<Box<uapi::LapicState>> {
        let mut state = Box::<uapi::LapicState>::default();
        // SAFETY: PACIFICA_GET_LAPIC writes one `LapicState` (integers).
        unsafe { ioctl_with_mut(self.fd.as_fd(), uapi::PACIFICA_GET_LAPIC, &mut *state)? };
        Ok(state)
    }

    /// A handle that injects events into this vCPU from any thread,
    /// while another one runs it (its own fd, a duplicate).
    pub fn events(&self) -> io::Result<VcpuEvents> {
        Ok(VcpuEvents { fd: self.fd.try_clone()? })
    }

    /// Writes the in-kernel local APIC's state (`PACIFICA_SET_LAPIC`).
    pub fn set_lapic(&self, state: &uapi::LapicState) -> io::Result<()> {
        // SAFETY: PACIFICA_SET_LAPIC reads one `LapicState`.
        unsafe { ioctl_with_ref(self.fd.as_fd(), uapi::PACIFICA_SET_LAPIC, state)? };
        Ok(())
    }

    /// Reads the vCPU's exit counters (indexed by `uapi::PACIFICA_STAT_*`).
    pub fn stats(&self) -> io::Result<uapi::ExitStats> {
        let mut stats = uapi::ExitStats::default();
        // SAFETY: PACIFICA_GET_STATS writes one `ExitStats` (all integers).
        unsafe { ioctl_with_mut(self.fd.as_fd(), uapi::PACIFICA_GET_STATS, &mut stats)? };
        Ok(stats)
    }

    /// Runs the guest until an exit userspace must handle.
    ///
    /// Fails with the ioctl's errno (`EINTR` when a signal interrupted the
    /// run; just call `run` again), or with `InvalidData` when the run page
    /// describes an exit that cannot be decoded safely (see
    /// [`DecodeError`](super::DecodeError)). The results of an IN, an MMIO
    /// read or a hypercall are written into the returned [`Exit`] and reach
    /// the guest on the next call.
    pub fn run(&mut self) -> io::Result<Exit<'_>> {
        // SAFETY: PACIFICA_RUN takes no argument; the run page it writes is
        // mapped for as long as `self` lives, and `&mut self` guarantees that
        // no reference into the page exists during the call.
        unsafe { ioctl_with_val(self.fd.as_fd(), uapi::PACIFICA_RUN, 0)? };
        self.page_mut()
            .decode()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The run page as the module last wrote it.
    pub fn run_page(&self) -> &uapi::Run {
        self.page().run()
    }

    /// The run page, writable (for example to answer an exit by hand).
    pub fn run_page_mut(&mut self) -> &mut uapi::Run {
        self.page_mut().run_mut()
    }

    /// The whole shared page, including the I/O data area.
    pub fn page(&self) -> &RunPage {
        // SAFETY: by the type invariant the mapping holds one page-aligned
        // `RunPage` for as long as `self` lives and the module writes it only
        // during PACIFICA_RUN, which needs `&mut self`. `RunPage` consists of
        // integers and byte arrays, valid for any bytes.
        unsafe { self.run.ptr().cast::<RunPage>().as_ref() }
    }

    /// The whole shared page, writable.
    pub fn page_mut(&mut self) -> &mut RunPage {
        // SAFETY: as in `page`, and `&mut self` makes the borrow exclusive.
        unsafe { self.run.ptr().cast::<RunPage>().as_mut() }
    }
}

impl AsRawFd for Vcpu {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Injects events into a vCPU with an in-kernel APIC without waiting for a
/// running `PACIFICA_RUN` (`Vcpu::events`); `Send` and `Sync`.
#[derive(Debug)]
pub struct VcpuEvents {
    fd: OwnedFd,
}

impl VcpuEvents {
    /// An NMI (`PACIFICA_NMI`).
    pub fn nmi(&self) -> io::Result<()> {
        // SAFETY: PACIFICA_NMI takes the integer 0 and no memory.
        unsafe { ioctl_with_val(self.fd.as_fd(), uapi::PACIFICA_NMI, 0)? };
        Ok(())
    }

    /// The level of LINT0 (`pin` 0) or LINT1 (`pin` 1)
    /// (`PACIFICA_SET_LINT`).
    pub fn set_lint(&self, pin: u32, level: bool) -> io::Result<()> {
        let lint = uapi::Lint { pin, level: u32::from(level) };
        // SAFETY: PACIFICA_SET_LINT reads one `Lint`.
        unsafe { ioctl_with_ref(self.fd.as_fd(), uapi::PACIFICA_SET_LINT, &lint)? };
        Ok(())
    }
}

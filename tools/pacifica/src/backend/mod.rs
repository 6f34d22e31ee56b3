// SPDX-License-Identifier: GPL-2.0

//! The hypervisors a guest can run on, behind what the run loop needs.
//!
//! A backend sets up a one-vCPU VM with the guest's RAM at guest-physical 0
//! and the boot state the loader computed, and hands the run loop a
//! [`BackendVcpu`]. Its [`run`](BackendVcpu::run) translates whatever the
//! hypervisor reports into Pacifica's own [`Exit`], so the devices, the
//! exit handler ([`handle_exit`](crate::vmm::handler::handle_exit)), the
//! counters and the exit statuses are the same whether the guest runs on
//! `/dev/pacifica` ([`pacifica`]) or on `/dev/kvm` ([`kvm`]).

#[allow(unsafe_code)]
pub mod kvm;
pub mod pacifica;

use std::io;

use crate::boot::BootState;
use crate::pc::InterruptSink;
use crate::sys::{Exit, GuestMemory};
use crate::vmm::VmmError;

/// Which hypervisor runs the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `/dev/pacifica`, with a `uapi::PACIFICA_PAGING_*` mode.
    Pacifica {
        /// `uapi::PACIFICA_PAGING_NPT` or `uapi::PACIFICA_PAGING_SHADOW`.
        paging: u64,
    },
    /// `/dev/kvm`. KVM chooses nested or shadow paging itself, from how
    /// `kvm_amd` (`npt=`) or `kvm_intel` (`ept=`) was loaded; `expect`
    /// says what the user asked for, checked against that.
    Kvm {
        /// The paging the user asked for, if any.
        expect: Option<kvm::KvmPaging>,
    },
}

/// Why a run of the vCPU ended without an exit to handle: the one error
/// type of the run loop, for every backend.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A signal stopped the run: run again.
    #[error("interrupted by a signal")]
    Interrupted,
    /// The hypervisor reported an exit that cannot be decoded safely.
    #[error("{0}")]
    BadExit(String),
    /// The hypervisor refused to run the vCPU.
    #[error("{0}")]
    Os(io::Error),
}

impl From<io::Error> for RunError {
    /// An error of the run ioctl: EINTR is [`RunError::Interrupted`].
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::Interrupted {
            RunError::Interrupted
        } else {
            RunError::Os(e)
        }
    }
}

/// A vCPU the shared run loop can drive, owning its VM and guest memory.
pub trait BackendVcpu {
    /// Runs the guest until the next exit the VMM must handle.
    fn run(&mut self) -> Result<Exit<'_>, RunError>;

    /// The guest's RIP at the last exit, for diagnostics.
    fn rip(&mut self) -> u64;

    /// The hypervisor's own counters as `(name, value)` pairs for
    /// `--stats`, non-zero ones only.
    fn stats(&mut self) -> io::Result<Vec<(String, u64)>>;

    /// Where the PC's interrupt controllers send their outputs: the VM's
    /// in-kernel local APIC. Only a vCPU started with an irqchip has one.
    fn interrupt_sink(&self) -> Result<Box<dyn InterruptSink>, VmmError>;
}

/// The machine a backend sets up around the guest's RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Machine {
    /// Pacifica's tiny machine: no interrupt controller, HLT ends the run.
    Tiny,
    /// The PC: an in-kernel local APIC per vCPU (the hypervisor's), the
    /// rest of the platform in the VMM (`pc`).
    Pc,
}

/// Creates the VM on `backend` as `machine` with `mem` as its RAM at
/// guest-physical 0 and vCPU 0 in `state`.
pub fn start(
    backend: Backend,
    machine: Machine,
    mem: GuestMemory,
    state: &BootState,
) -> Result<Box<dyn BackendVcpu>, VmmError> {
    match backend {
        Backend::Pacifica { paging } => {
            Ok(Box::new(pacifica::PacificaVcpu::new(paging, machine, mem, state)?))
        }
        Backend::Kvm { expect } => Ok(Box::new(kvm::KvmVcpu::new(expect, machine, mem, state)?)),
    }
}

/// The guest TSC's rate in kHz on `backend`, if the hypervisor knows it
/// (for Linux's `tsc_early_khz=`).
pub fn tsc_khz(backend: Backend) -> Result<Option<u32>, VmmError> {
    match backend {
        Backend::Pacifica { .. } => {
            let info = pacifica::open_system()?
                .info()
                .map_err(VmmError::sys("PACIFICA_GET_INFO"))?;
            Ok(u32::try_from(info.guest_tsc_khz).ok().filter(|&khz| khz != 0))
        }
        Backend::Kvm { .. } => kvm::tsc_khz(),
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The VMM: sets up a one-vCPU VM, loads the image and runs it.
//!
//! [`run_image`] does everything `pacifica run` does: read and load the
//! image into fresh guest RAM at guest-physical 0 ([`prepare`], pure host
//! work), open `/dev/pacifica`, create the VM with the chosen paging mode,
//! register RAM, create vCPU 0 in the protocol's start state, and run it
//! until the guest stops. The run loop is one `match` in
//! [`handler::handle_exit`]; why the guest stopped is a [`Stop`].

pub mod handler;
pub mod info;
pub mod stats;

mod error;
mod stop;

pub use error::VmmError;
pub use stop::{
    Stop, STATUS_FAIL_ENTRY, STATUS_INTERNAL_ERROR, STATUS_SHUTDOWN, STATUS_USAGE, STATUS_VMM_ERROR,
};

use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::devices::Devices;
use crate::loader::{self, Boot};
use crate::sys::{GuestMemory, System, Vcpu, DEVICE_PATH};
use crate::uapi;

/// Counters the VMM keeps itself (the module keeps the exit counters).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Port I/O exits that touched a port no device claims.
    pub unclaimed_pio: u64,
    /// MMIO exits at an address no device claims.
    pub unclaimed_mmio: u64,
    /// Hypercalls the VMM does not know (answered with all ones).
    pub unknown_hypercalls: u64,
}

/// How to run a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Bytes of guest RAM, at guest-physical 0.
    pub mem_size: u64,
    /// `uapi::PACIFICA_PAGING_*`.
    pub paging: u64,
    /// Whether to read the module's exit counters at the end.
    pub stats: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Why the guest stopped.
    pub stop: Stop,
    /// Guest RIP of the last exit, as the run page reported it.
    pub rip: u64,
    /// The module's exit counters, if asked for.
    pub kernel_stats: Option<io::Result<uapi::ExitStats>>,
    /// The VMM's own counters.
    pub counters: Counters,
    /// Wall-clock time from the first run to the stop.
    pub wall: Duration,
}

/// Loads `image` into fresh RAM of `mem_size` bytes. Needs no hardware.
pub fn prepare(image: &[u8], mem_size: u64) -> Result<(GuestMemory, Boot), loader::LoadError> {
    loader::check_ram_size(mem_size)?;
    let mut mem =
        GuestMemory::new(mem_size as usize).map_err(|source| loader::LoadError::OutOfMemory {
            size: mem_size,
            source,
        })?;
    let boot = loader::load(image, &mut mem)?;
    Ok((mem, boot))
}

/// Runs the image at `path` until the guest stops, with the UART writing
/// to `console`.
pub fn run_image(
    path: &Path,
    config: &Config,
    console: impl Write + 'static,
) -> Result<Outcome, VmmError> {
    let image = std::fs::read(path).map_err(|source| VmmError::ReadImage {
        path: path.to_owned(),
        source,
    })?;
    let (mem, boot) = prepare(&image, config.mem_size).map_err(|source| VmmError::Load {
        path: path.to_owned(),
        source,
    })?;

    let system = open_system()?;
    let vm = system
        .create_vm(config.paging)
        .map_err(|e| create_vm_error(config.paging, e))?;
    mem.register(&vm, 0, 0).map_err(VmmError::sys(format!(
        "registering {:#x} bytes of RAM at 0",
        mem.size()
    )))?;
    let mut vcpu = vm
        .create_vcpu(0)
        .map_err(VmmError::sys("creating vCPU 0"))?;
    vcpu.set_sregs(&boot.state.sregs)
        .map_err(VmmError::sys("setting the vCPU's system registers"))?;
    vcpu.set_regs(&boot.state.regs)
        .map_err(VmmError::sys("setting the vCPU's registers"))?;

    let mut devices = Devices::new(console);
    let mut counters = Counters::default();
    let start = Instant::now();
    let stop = run_loop(&mut vcpu, &mut devices, &mut counters)?;
    let wall = start.elapsed();
    let kernel_stats = config.stats.then(|| vcpu.stats());
    let rip = vcpu.run_page().rip;
    // The VM (and its pinned pages) goes before the memory backing it.
    drop(vcpu);
    drop(vm);
    drop(mem);
    Ok(Outcome {
        stop,
        rip,
        kernel_stats,
        counters,
        wall,
    })
}

/// Opens the device and checks that it speaks this tool's interface.
pub fn open_system() -> Result<System, VmmError> {
    let system = System::open().map_err(|source| VmmError::Open {
        path: DEVICE_PATH,
        source,
    })?;
    let module = system
        .api_version()
        .map_err(VmmError::sys("PACIFICA_GET_API_VERSION"))?;
    if module != uapi::PACIFICA_API_VERSION {
        return Err(VmmError::ApiVersion {
            module,
            tool: uapi::PACIFICA_API_VERSION,
        });
    }
    Ok(system)
}

/// Turns "this paging mode is not implemented" into a message of its own.
fn create_vm_error(paging: u64, e: io::Error) -> VmmError {
    match (paging, e.raw_os_error()) {
        (uapi::PACIFICA_PAGING_SHADOW, Some(libc::EOPNOTSUPP)) => VmmError::ShadowUnsupported,
        (uapi::PACIFICA_PAGING_NPT, Some(libc::EOPNOTSUPP)) => VmmError::NptUnsupported,
        _ => VmmError::sys(format!("PACIFICA_CREATE_VM with paging mode {paging}"))(e),
    }
}

/// Runs the vCPU until a handler stops it. A signal only interrupts one
/// PACIFICA_RUN: the loop resumes the guest.
fn run_loop(
    vcpu: &mut Vcpu,
    devices: &mut Devices,
    counters: &mut Counters,
) -> Result<Stop, VmmError> {
    loop {
        let next = match vcpu.run() {
            Ok(exit) => handler::handle_exit(exit, devices, counters),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // The run page could not be decoded (see sys::DecodeError).
            Err(e) if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::InvalidData => {
                ControlFlow::Break(Stop::BadRunPage(e.to_string()))
            }
            Err(e) => return Err(VmmError::sys("PACIFICA_RUN")(e)),
        };
        if let ControlFlow::Break(stop) = next {
            return Ok(stop);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_vm_errors_name_the_missing_paging_mode() {
        let eopnotsupp = || io::Error::from_raw_os_error(libc::EOPNOTSUPP);
        let shadow = create_vm_error(uapi::PACIFICA_PAGING_SHADOW, eopnotsupp());
        assert_eq!(
            shadow.to_string(),
            "shadow paging is not supported by this pacifica.ko"
        );
        assert!(matches!(
            create_vm_error(uapi::PACIFICA_PAGING_NPT, eopnotsupp()),
            VmmError::NptUnsupported
        ));
        let other = create_vm_error(
            uapi::PACIFICA_PAGING_NPT,
            io::Error::from_raw_os_error(libc::ENOMEM),
        );
        assert!(
            other
                .to_string()
                .starts_with("PACIFICA_CREATE_VM with paging mode 0 failed"),
            "{other}"
        );
    }

    #[test]
    fn prepare_checks_the_ram_size_before_mapping() {
        let err = prepare(&[], 1 << 20).unwrap_err();
        assert!(
            matches!(
                err,
                loader::LoadError::RamSize {
                    size: 0x10_0000,
                    ..
                }
            ),
            "{err}"
        );
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The VMM: sets up a one-vCPU VM, loads the image and runs it.
//!
//! [`run_image`] does everything `pacifica run` does: read and load the
//! image into fresh guest RAM at guest-physical 0 ([`prepare`], pure host
//! work), start the VM on the chosen [`Backend`] (`/dev/pacifica` with a
//! paging mode, or `/dev/kvm`) with vCPU 0 in the protocol's start state,
//! and run it until the guest stops. The run loop ([`run_loop`]) is the
//! same for every backend; each exit is handled by one `match` in
//! [`handler::handle_exit`]; why the guest stopped is a [`Stop`].

pub mod console;
pub mod handler;
pub mod info;
pub mod linux;
pub mod stats;

mod error;
mod stop;

pub use error::VmmError;
pub use stop::{
    Stop, STATUS_FAIL_ENTRY, STATUS_INTERNAL_ERROR, STATUS_SHUTDOWN, STATUS_USAGE, STATUS_VMM_ERROR,
};

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::backend::RunError;
use crate::backend::{self, Backend, BackendVcpu};
use crate::devices::Devices;
use crate::loader::{self, Boot};
use crate::pc::mptable::{mptable, CpuSignature, MPTABLE_ADDR};
use crate::sys::{Exit, GuestMemory};

pub use crate::backend::pacifica::open_system;

/// Exits the run loop saw, by kind: what reached the VMM, whichever
/// backend ran the guest.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExitCounts {
    /// Port writes (OUT, OUTS).
    pub io_out: u64,
    /// Port reads (IN, INS).
    pub io_in: u64,
    /// Reads outside RAM.
    pub mmio_read: u64,
    /// Writes outside RAM.
    pub mmio_write: u64,
    /// Hypercalls handed to the VMM.
    pub hypercall: u64,
    /// HLT.
    pub hlt: u64,
    /// Triple faults.
    pub shutdown: u64,
    /// Failed entries.
    pub fail_entry: u64,
    /// Internal errors of the hypervisor.
    pub internal_error: u64,
    /// Exit reasons the VMM does not know.
    pub unknown: u64,
}

impl ExitCounts {
    /// Counts one exit.
    pub fn count(&mut self, exit: &Exit<'_>) {
        let counter = match exit {
            Exit::IoOut { .. } => &mut self.io_out,
            Exit::IoIn { .. } => &mut self.io_in,
            Exit::MmioRead { .. } => &mut self.mmio_read,
            Exit::MmioWrite { .. } => &mut self.mmio_write,
            Exit::Hypercall { .. } => &mut self.hypercall,
            Exit::Hlt => &mut self.hlt,
            Exit::Shutdown => &mut self.shutdown,
            Exit::FailEntry(_) => &mut self.fail_entry,
            Exit::InternalError(_) => &mut self.internal_error,
            Exit::Unknown(_) | Exit::Inta { .. } | Exit::Eoi { .. } => &mut self.unknown,
        };
        *counter += 1;
    }

    /// `(name, count)` for every kind, in a fixed order.
    pub fn named(&self) -> [(&'static str, u64); 10] {
        [
            ("io_out", self.io_out),
            ("io_in", self.io_in),
            ("mmio_read", self.mmio_read),
            ("mmio_write", self.mmio_write),
            ("hypercall", self.hypercall),
            ("hlt", self.hlt),
            ("shutdown", self.shutdown),
            ("fail_entry", self.fail_entry),
            ("internal_error", self.internal_error),
            ("unknown", self.unknown),
        ]
    }
}

/// Counters the VMM keeps itself (the hypervisor may keep more).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Port I/O exits that touched a port no device claims.
    pub unclaimed_pio: u64,
    /// MMIO exits at an address no device claims.
    pub unclaimed_mmio: u64,
    /// Hypercalls the VMM does not know (answered with all ones).
    pub unknown_hypercalls: u64,
    /// Every exit that reached the VMM, by kind.
    pub exits: ExitCounts,
}

/// How to run a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Bytes of guest RAM, at guest-physical 0.
    pub mem_size: u64,
    /// The hypervisor, and for Pacifica the paging mode.
    pub backend: Backend,
    /// Whether to read the hypervisor's counters at the end.
    pub stats: bool,
}

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Why the guest stopped.
    pub stop: Stop,
    /// Guest RIP at the last exit.
    pub rip: u64,
    /// The hypervisor's own counters, if asked for.
    pub backend_stats: Option<std::io::Result<Vec<(String, u64)>>>,
    /// The VMM's own counters.
    pub counters: Counters,
    /// Wall-clock time from the first run to the stop.
    pub wall: Duration,
}

/// Loads `image` into fresh RAM of `mem_size` bytes, with `cmdline` as its
/// Multiboot command line if given. Needs no hardware.
pub fn prepare(
    image: &[u8],
    cmdline: Option<&str>,
    mem_size: u64,
) -> Result<(GuestMemory, Boot), loader::LoadError> {
    loader::check_ram_size(mem_size)?;
    let mut mem =
        GuestMemory::new(mem_size as usize).map_err(|source| loader::LoadError::OutOfMemory {
            size: mem_size,
            source,
        })?;
    let boot = match cmdline {
        Some(line) => loader::load_with_cmdline(image, line, &mut mem)?,
        None => loader::load(image, &mut mem)?,
    };
    Ok((mem, boot))
}

/// Runs the image at `path` (with its Multiboot command line `cmdline`) on
/// the configured backend and `machine` until the guest stops, with the
/// UART writing to `console`. The PC machine gets the MP table and the
/// devices of [`crate::pc`], as a Linux guest does.
pub fn run_image(
    path: &Path,
    cmdline: Option<&str>,
    machine: backend::Machine,
    config: &Config,
    console: impl Write + Send + 'static,
) -> Result<Outcome, VmmError> {
    let image = std::fs::read(path).map_err(|source| VmmError::ReadImage {
        path: path.to_owned(),
        source,
    })?;
    let load_error = |source| VmmError::Load { path: path.to_owned(), source };
    let (mut mem, boot) = prepare(&image, cmdline, config.mem_size).map_err(load_error)?;
    if machine == backend::Machine::Tiny {
        let vcpu = backend::start(config.backend, machine, mem, &boot.state)?;
        return run_machine(vcpu, Devices::new(console), config);
    }
    mem.write(MPTABLE_ADDR, &mptable(1, CpuSignature::default()))
        .map_err(|e| load_error(e.into()))?;
    run_pc(mem, &boot.state, config, console)
}

/// Runs vCPU 0 in `state` on the PC machine with `mem` as its RAM (its MP
/// table, if any, written), the terminal's input on COM1, until the guest
/// stops.
fn run_pc(
    mem: GuestMemory,
    state: &crate::boot::BootState,
    config: &Config,
    console: impl Write + Send + 'static,
) -> Result<Outcome, VmmError> {
    let vcpu = backend::start(config.backend, backend::Machine::Pc, mem, state)?;
    // The PIT's thread runs until `pc` goes, at the end.
    let pc = crate::pc::build(1, console, vcpu.interrupt_sink()?);
    let terminal = console::RawTerminal::new();
    console::spawn_input(pc.serial.clone(), terminal.is_some());
    let outcome = run_machine(vcpu, pc.devices, config);
    drop(terminal);
    outcome
}

/// Runs `vcpu` with `devices` until the guest stops, and gathers what
/// `--stats` shows.
fn run_machine(
    mut vcpu: Box<dyn backend::BackendVcpu>,
    mut devices: Devices,
    config: &Config,
) -> Result<Outcome, VmmError> {
    let mut counters = Counters::default();
    let start = Instant::now();
    let mut stop = run_loop(vcpu.as_mut(), &mut devices, &mut counters)?;
    let wall = start.elapsed();
    let rip = vcpu.rip();
    // A backend that cannot say where an internal error or failed entry
    // happened (KVM does not) gets the RIP it reports now.
    if let Stop::InternalError(info) | Stop::FailEntry(info) = &mut stop {
        if info.rip == 0 {
            info.rip = rip;
        }
    }
    let backend_stats = config.stats.then(|| vcpu.stats());
    Ok(Outcome {
        stop,
        rip,
        backend_stats,
        counters,
        wall,
    })
}

/// Runs the vCPU until a handler stops it. A signal only interrupts one
/// run: the loop resumes the guest.
pub fn run_loop(
    vcpu: &mut dyn BackendVcpu,
    devices: &mut Devices,
    counters: &mut Counters,
) -> Result<Stop, VmmError> {
    loop {
        let next = match vcpu.run() {
            Ok(exit) => {
                counters.exits.count(&exit);
                handler::handle_exit(exit, devices, counters)
            }
            Err(RunError::Interrupted) => continue,
            Err(RunError::BadExit(why)) => ControlFlow::Break(Stop::BadRunPage(why)),
            Err(RunError::Os(e)) => return Err(VmmError::sys("running the vCPU")(e)),
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
    fn exits_are_counted_by_kind() {
        let mut counts = ExitCounts::default();
        counts.count(&Exit::Hlt);
        counts.count(&Exit::IoOut {
            port: 0x3f8,
            size: 1,
            data: b"x",
        });
        counts.count(&Exit::IoOut {
            port: 0x3f8,
            size: 1,
            data: b"y",
        });
        assert_eq!((counts.io_out, counts.hlt, counts.io_in), (2, 1, 0));
        assert_eq!(counts.named()[0], ("io_out", 2));
    }

    #[test]
    fn prepare_checks_the_ram_size_before_mapping() {
        let err = prepare(&[], None, 1 << 20).unwrap_err();
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

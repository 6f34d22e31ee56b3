// SPDX-License-Identifier: GPL-2.0

//! The emulated devices and the buses that route guest accesses to them.
//!
//! A guest has two address spaces outside RAM: the 64 KiB of I/O ports and
//! the guest-physical addresses no memory region covers (MMIO). Each is a
//! [`Bus`]. Pacifica's machine is deliberately tiny:
//!
//! | where            | what                                             |
//! |------------------|--------------------------------------------------|
//! | ports 0x3f8-0x3ff | COM1, a 16550A UART ([`Serial`]) writing to stdout |
//! | port 0xf4         | the exit port ([`ExitPort`]): a byte ends the run |
//!
//! There are no MMIO devices yet. Reads of unclaimed ports and addresses
//! return all ones, as on a PC whose bus floats high; writes to them are
//! dropped. The VMM counts both.

mod bus;
mod exit_port;
mod serial;

pub use bus::{Bus, BusError};
pub use exit_port::{ExitPort, EXIT_PORT};
pub use serial::{Serial, COM1_BASE, COM1_LEN};

use std::io::Write;

/// What a device asks the VMM to do after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Resume the guest.
    Continue,
    /// End the run; the VMM exits with this status.
    Exit(u8),
    /// The guest reset the machine: end the run.
    Reset,
}

/// A device on a [`Bus`]. Offsets are relative to the device's base, and
/// a device may be accessed with any width its range allows.
pub trait Device {
    /// Fills `data` with what the device returns at `offset`.
    fn read(&mut self, offset: u64, data: &mut [u8]);
    /// Gives the device `data` written at `offset`.
    fn write(&mut self, offset: u64, data: &[u8]) -> Action;
}

/// The value an unclaimed read returns: all ones.
pub const UNCLAIMED_BYTE: u8 = 0xff;

/// The machine's devices.
pub struct Devices {
    /// Port I/O.
    pub pio: Bus,
    /// Memory-mapped I/O.
    pub mmio: Bus,
    /// The interrupt controllers of the PC machine, for the INTA and EOI
    /// exits (`None` on the tiny machine).
    pub irqchip: Option<crate::pc::SharedIrqChip>,
}

impl Devices {
    /// The standard machine, with the UART writing to `console`.
    pub fn new(console: impl Write + 'static) -> Self {
        let mut pio = Bus::new();
        pio.insert(
            "serial",
            COM1_BASE,
            COM1_LEN,
            Box::new(Serial::new(console)),
        )
        .and_then(|()| pio.insert("exit", EXIT_PORT, 1, Box::new(ExitPort)))
        .expect("the standard devices do not overlap");
        Self {
            pio,
            mmio: Bus::new(),
            irqchip: None,
        }
    }
}

// SPDX-License-Identifier: GPL-2.0

//! COM1, a 16550A UART from rust-vmm's `vm-superio`.
//!
//! The guest's transmitted bytes go to the writer given (stdout in the
//! VMM). `vm-superio` models a transmitter that is always empty (LSR bits
//! 5 and 6 set), so a guest polling LSR before each byte never waits.
//! Received bytes are queued with [`Serial::enqueue`] (the PC machine's
//! console input). The UART's interrupt goes to the [`Trigger`] given:
//! nowhere on the tiny machine ([`NoInterrupt`]), ISA IRQ 4 on the PC
//! (`pc::IrqPulse`). `vm-superio` calls it when an interrupt condition
//! arises (transmitter empty, data received) and the guest enabled it.

use std::convert::Infallible;
use std::io::Write;

use vm_superio::serial::NoEvents;
use vm_superio::Trigger;

use super::{Action, Device, UNCLAIMED_BYTE};

/// COM1's first port.
pub const COM1_BASE: u64 = 0x3f8;
/// Number of UART registers (ports).
pub const COM1_LEN: u64 = 8;

/// The UART's interrupt line, connected to nothing.
#[derive(Debug, Default)]
pub struct NoInterrupt;

impl Trigger for NoInterrupt {
    type E = Infallible;

    fn trigger(&self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// A 16550A UART whose output goes to `W` and whose interrupt goes to
/// `T`.
pub struct Serial<W: Write, T: Trigger = NoInterrupt> {
    uart: vm_superio::Serial<T, NoEvents, W>,
}

impl<W: Write> Serial<W> {
    /// A UART in its reset state, transmitting to `out`, its interrupt
    /// connected to nothing.
    pub fn new(out: W) -> Self {
        Self::with_interrupt(out, NoInterrupt)
    }
}

impl<W: Write, T: Trigger> Serial<W, T> {
    /// A UART in its reset state, transmitting to `out`, raising its
    /// interrupt through `irq`.
    pub fn with_interrupt(out: W, irq: T) -> Self {
        Self {
            uart: vm_superio::Serial::new(irq, out),
        }
    }

    /// Queues received bytes, as many as the receive FIFO has room for;
    /// returns how many it took.
    pub fn enqueue(&mut self, bytes: &[u8]) -> usize {
        let room = self.uart.fifo_capacity();
        let n = bytes.len().min(room);
        if n == 0 {
            return 0;
        }
        // It fails only for more bytes than the FIFO has room for, or
        // when the trigger fails, which the PC's cannot.
        self.uart.enqueue_raw_bytes(&bytes[..n]).unwrap_or_default()
    }

    /// The writer the UART transmits to.
    pub fn writer(&self) -> &W {
        self.uart.writer()
    }

    /// The register number of byte `i` of an access at `offset`, if it is
    /// one of the eight registers. A wider access touches consecutive
    /// registers, as it would consecutive ports on a PC.
    fn register(offset: u64, i: usize) -> Option<u8> {
        let register = offset.checked_add(i as u64)?;
        (register < COM1_LEN).then_some(register as u8)
    }
}

impl<W: Write, T: Trigger> Device for Serial<W, T> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = Self::register(offset, i).map_or(UNCLAIMED_BYTE, |r| self.uart.read(r));
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Action {
        for (i, &byte) in data.iter().enumerate() {
            if let Some(register) = Self::register(offset, i) {
                // A failed write to the host's stdout (a closed pipe, say)
                // loses the byte, as a UART with no cable attached would;
                // the guest cannot be told and must not be stopped for it.
                let _ = self.uart.write(register, byte);
            }
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const THR: u64 = 0;
    const LCR: u64 = 3;
    const LSR: u64 = 5;
    const SCR: u64 = 7;
    const LSR_THR_EMPTY: u8 = 1 << 5;

    #[test]
    fn transmitted_bytes_reach_the_writer() {
        let mut serial = Serial::new(Vec::new());
        for &b in b"hi\n" {
            assert_eq!(serial.write(THR, &[b]), Action::Continue);
        }
        assert_eq!(serial.writer(), b"hi\n");
    }

    #[test]
    fn line_status_shows_the_transmitter_empty() {
        let mut serial = Serial::new(Vec::new());
        let mut lsr = [0u8];
        serial.read(LSR, &mut lsr);
        assert_ne!(lsr[0] & LSR_THR_EMPTY, 0);
        serial.write(THR, b"x");
        serial.read(LSR, &mut lsr);
        assert_ne!(lsr[0] & LSR_THR_EMPTY, 0);
    }

    #[test]
    fn divisor_latch_writes_are_not_transmitted() {
        let mut serial = Serial::new(Vec::new());
        serial.write(LCR, &[0x80]); // DLAB on: offset 0 is the divisor
        serial.write(THR, &[0x01]);
        serial.write(LCR, &[0x03]); // DLAB off, 8N1
        serial.write(THR, b"A");
        assert_eq!(serial.writer(), b"A");
    }

    #[test]
    fn wide_accesses_touch_consecutive_registers_and_stop_at_the_end() {
        let mut serial = Serial::new(Vec::new());
        serial.write(SCR, &[0x5a, 0x77]);
        let mut data = [0u8; 2];
        serial.read(SCR, &mut data);
        assert_eq!(data, [0x5a, 0xff]);
    }
}

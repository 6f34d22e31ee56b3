// SPDX-License-Identifier: GPL-2.0

//! The exit port: how a guest ends its run with a status.
//!
//! Writing a byte `v` to port [`EXIT_PORT`] stops the guest, and `pacifica`
//! exits with status `v`. Port 0xf4 is where QEMU's `isa-debug-exit` device
//! usually sits, so the same guest can report its result under both.

use super::{Action, Device, UNCLAIMED_BYTE};

/// The exit port's address.
pub const EXIT_PORT: u64 = 0xf4;

/// The exit port device.
#[derive(Debug, Default)]
pub struct ExitPort;

impl Device for ExitPort {
    /// The port has nothing to say: it reads as all ones.
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(UNCLAIMED_BYTE);
    }

    /// The first byte written is the status; wider writes use their low byte.
    fn write(&mut self, _offset: u64, data: &[u8]) -> Action {
        data.first()
            .map_or(Action::Continue, |&status| Action::Exit(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_byte_becomes_the_exit_status() {
        assert_eq!(ExitPort.write(0, &[0]), Action::Exit(0));
        assert_eq!(ExitPort.write(0, &[42]), Action::Exit(42));
        assert_eq!(ExitPort.write(0, &[0x34, 0x12]), Action::Exit(0x34));
        assert_eq!(ExitPort.write(0, &[]), Action::Continue);
    }

    #[test]
    fn reads_return_all_ones() {
        let mut data = [0u8; 2];
        ExitPort.read(0, &mut data);
        assert_eq!(data, [0xff, 0xff]);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The PC's reset paths, each of which ends the run with [`Action::Reset`]:
//!
//! - the reset control register at port 0xcf9: a write with bit 2 (reset
//!   CPU) set, as Linux's `reboot=pci` does after writing bit 1 alone;
//! - the 8042 keyboard controller's pulse-output command 0xfe written to
//!   its command port 0x64 (Linux's `reboot=kbd`, its default without
//!   ACPI). The controller reads as present and idle (status 0) and has no
//!   keyboard: port 0x60 reads zero, other commands are ignored.
//!
//! The third way, the triple fault of `reboot=triple`, is a shutdown exit
//! the hypervisor reports ([`Stop::Shutdown`](crate::vmm::Stop::Shutdown)).

use crate::devices::{Action, Device};

/// The reset control register.
pub const RESET_CONTROL_PORT: u64 = 0xcf9;
/// The 8042's data port.
pub const I8042_DATA_PORT: u64 = 0x60;
/// The 8042's command (write) and status (read) port.
pub const I8042_COMMAND_PORT: u64 = 0x64;
/// The 8042 command that pulses the CPU's reset line.
const I8042_PULSE_RESET: u8 = 0xfe;
/// Port 0xcf9: reset the CPU.
const RCR_RESET_CPU: u8 = 1 << 2;

/// The reset control register at 0xcf9.
#[derive(Debug, Default)]
pub struct ResetControl {
    value: u8,
}

impl Device for ResetControl {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
        data[0] = self.value;
    }

    fn write(&mut self, _offset: u64, data: &[u8]) -> Action {
        self.value = data[0] & 0x0e;
        if data[0] & RCR_RESET_CPU != 0 {
            Action::Reset
        } else {
            Action::Continue
        }
    }
}

/// One port of the 8042 ([`I8042_DATA_PORT`] or [`I8042_COMMAND_PORT`]),
/// as far as resetting goes.
#[derive(Debug)]
pub struct I8042 {
    /// The port this instance decodes.
    pub port: u64,
}

impl Device for I8042 {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        data.fill(0);
    }

    fn write(&mut self, _offset: u64, data: &[u8]) -> Action {
        if self.port == I8042_COMMAND_PORT && data[0] == I8042_PULSE_RESET {
            Action::Reset
        } else {
            Action::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_cf9_resets_on_bit_2_only() {
        let mut rcr = ResetControl::default();
        assert_eq!(rcr.write(0, &[0x02]), Action::Continue);
        let mut b = [0u8];
        rcr.read(0, &mut b);
        assert_eq!(b, [0x02]);
        assert_eq!(rcr.write(0, &[0x06]), Action::Reset);
    }

    #[test]
    fn keyboard_controller_resets_on_0xfe_at_its_command_port() {
        let mut data = I8042 { port: I8042_DATA_PORT };
        let mut command = I8042 { port: I8042_COMMAND_PORT };
        let mut status = [0xffu8];
        command.read(0, &mut status);
        assert_eq!(status, [0], "idle: input buffer empty");
        assert_eq!(data.write(0, &[0xfe]), Action::Continue, "data port");
        assert_eq!(command.write(0, &[0xd1]), Action::Continue);
        assert_eq!(command.write(0, &[0xfe]), Action::Reset);
    }
}

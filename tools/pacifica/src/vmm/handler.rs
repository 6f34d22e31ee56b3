// SPDX-License-Identifier: GPL-2.0

//! Exit handling: one `match` over [`Exit`], one function per exit family.
//!
//! Every handler gets the decoded exit and the machine's devices and
//! counters, and returns whether the guest continues. Nothing here touches
//! `/dev/pacifica`, so the tests drive it with exits decoded from synthetic
//! run pages.

use std::ops::ControlFlow;

use super::{Counters, Stop};
use crate::devices::{Action, Devices};
use crate::sys::Exit;
use crate::uapi;

/// What a handler decides: resume the guest, or stop the run.
pub type Next = ControlFlow<Stop>;

/// What a hypercall the VMM does not know returns in RAX: all ones (-1).
pub const HYPERCALL_UNKNOWN: u64 = u64::MAX;

/// Handles one exit.
pub fn handle_exit(exit: Exit<'_>, devices: &mut Devices, counters: &mut Counters) -> Next {
    match exit {
        Exit::IoOut { port, size, data } => io_out(port, size, data, devices, counters),
        Exit::IoIn { port, size, data } => io_in(port, size, data, devices, counters),
        Exit::MmioRead { addr, data } => mmio_read(addr, data, devices, counters),
        Exit::MmioWrite { addr, data } => mmio_write(addr, data, devices, counters),
        Exit::Hypercall { ret, .. } => hypercall(ret, counters),
        Exit::Hlt => ControlFlow::Break(Stop::Halted),
        Exit::Shutdown => ControlFlow::Break(Stop::Shutdown),
        Exit::FailEntry(info) => ControlFlow::Break(Stop::FailEntry(info)),
        Exit::InternalError(info) => ControlFlow::Break(Stop::InternalError(info)),
        Exit::Unknown(reason) => ControlFlow::Break(Stop::Unknown(reason)),
        // Only a VM with an in-kernel APIC exits so: the PC machine.
        Exit::Inta { vector } => match &devices.irqchip {
            Some(chip) => {
                *vector = u32::from(crate::pc::lock(chip).acknowledge());
                ControlFlow::Continue(())
            }
            None => ControlFlow::Break(Stop::Unknown(uapi::PACIFICA_EXIT_INTA)),
        },
        Exit::Eoi { vector } => match &devices.irqchip {
            Some(chip) => {
                crate::pc::lock(chip).eoi(vector as u8);
                ControlFlow::Continue(())
            }
            None => ControlFlow::Break(Stop::Unknown(uapi::PACIFICA_EXIT_EOI)),
        },
    }
}

/// OUT or REP OUTS: each `size`-byte item is one write to `port`. An
/// unclaimed port counts once per exit, however many items it carried.
fn io_out(
    port: u16,
    size: u8,
    data: &[u8],
    devices: &mut Devices,
    counters: &mut Counters,
) -> Next {
    let mut unclaimed = false;
    for item in data.chunks_exact(usize::from(size)) {
        match devices.pio.write(u64::from(port), item) {
            Some(Action::Continue) => {}
            Some(Action::Exit(status)) => return ControlFlow::Break(Stop::ExitPort(status)),
            Some(Action::Reset) => return ControlFlow::Break(Stop::Reset),
            None => unclaimed = true,
        }
    }
    if unclaimed {
        counters.unclaimed_pio += 1;
    }
    ControlFlow::Continue(())
}

/// IN or REP INS: each `size`-byte item is one read of `port`.
fn io_in(
    port: u16,
    size: u8,
    data: &mut [u8],
    devices: &mut Devices,
    counters: &mut Counters,
) -> Next {
    let mut unclaimed = false;
    for item in data.chunks_exact_mut(usize::from(size)) {
        unclaimed |= !devices.pio.read(u64::from(port), item);
    }
    if unclaimed {
        counters.unclaimed_pio += 1;
    }
    ControlFlow::Continue(())
}

fn mmio_read(addr: u64, data: &mut [u8], devices: &mut Devices, counters: &mut Counters) -> Next {
    if !devices.mmio.read(addr, data) {
        counters.unclaimed_mmio += 1;
    }
    ControlFlow::Continue(())
}

fn mmio_write(addr: u64, data: &[u8], devices: &mut Devices, counters: &mut Counters) -> Next {
    match devices.mmio.write(addr, data) {
        Some(Action::Continue) => ControlFlow::Continue(()),
        Some(Action::Exit(status)) => ControlFlow::Break(Stop::ExitPort(status)),
        Some(Action::Reset) => ControlFlow::Break(Stop::Reset),
        None => {
            counters.unclaimed_mmio += 1;
            ControlFlow::Continue(())
        }
    }
}

/// The VMM serves no hypercalls yet: each returns [`HYPERCALL_UNKNOWN`].
fn hypercall(ret: &mut u64, counters: &mut Counters) -> Next {
    *ret = HYPERCALL_UNKNOWN;
    counters.unknown_hypercalls += 1;
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::RunPage;
    use crate::uapi::{self, HypercallExit, InternalExit};
    use std::cell::RefCell;
    use std::io::Write;
    use std::rc::Rc;

    const DATA: usize = uapi::PACIFICA_RUN_IO_DATA_OFFSET;

    /// A console the test can read after handing it to the devices.
    #[derive(Clone, Default)]
    struct Console(Rc<RefCell<Vec<u8>>>);

    impl Write for Console {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Machine {
        devices: Devices,
        counters: Counters,
        console: Console,
    }

    impl Machine {
        fn new() -> Self {
            let console = Console::default();
            Self {
                devices: Devices::new(console.clone()),
                counters: Counters::default(),
                console,
            }
        }

        fn handle(&mut self, page: &mut RunPage) -> Next {
            handle_exit(
                page.decode().unwrap(),
                &mut self.devices,
                &mut self.counters,
            )
        }

        fn output(&self) -> String {
            String::from_utf8(self.console.0.borrow().clone()).unwrap()
        }
    }

    fn io(direction: u8, size: u8, port: u16, data: &[u8]) -> Box<RunPage> {
        let count = (data.len() / usize::from(size)) as u32;
        let mut page = RunPage::synthetic_io(direction, size, port, count, DATA as u64);
        page.bytes_mut(DATA, data.len())
            .unwrap()
            .copy_from_slice(data);
        page
    }

    fn out(size: u8, port: u16, data: &[u8]) -> Box<RunPage> {
        io(uapi::PACIFICA_EXIT_IO_OUT, size, port, data)
    }

    fn input(size: u8, port: u16, count: usize) -> Box<RunPage> {
        io(
            uapi::PACIFICA_EXIT_IO_IN,
            size,
            port,
            &vec![0u8; usize::from(size) * count],
        )
    }

    fn mmio(addr: u64, len: u32, is_write: u8, data: [u8; 8]) -> Box<RunPage> {
        RunPage::synthetic_mmio(addr, len, is_write, data)
    }

    fn reason(reason: u32) -> Box<RunPage> {
        let mut page = Box::new(RunPage::new());
        page.run_mut().exit_reason = reason;
        page
    }

    #[test]
    fn serial_output_reaches_the_console() {
        let mut m = Machine::new();
        for &b in b"Hello\n" {
            assert_eq!(
                m.handle(&mut out(1, 0x3f8, &[b])),
                ControlFlow::Continue(())
            );
        }
        assert_eq!(m.output(), "Hello\n");
        assert_eq!(m.counters, Counters::default());
    }

    #[test]
    fn rep_outsb_writes_every_item() {
        let mut m = Machine::new();
        assert!(m.handle(&mut out(1, 0x3f8, b"abc")).is_continue());
        assert_eq!(m.output(), "abc");
    }

    #[test]
    fn polling_lsr_sees_the_transmitter_empty() {
        let mut m = Machine::new();
        let mut page = input(1, 0x3fd, 1);
        assert!(m.handle(&mut page).is_continue());
        assert_ne!(page.bytes(DATA, 1).unwrap()[0] & 0x20, 0);
    }

    #[test]
    fn exit_port_stops_with_the_written_byte() {
        let mut m = Machine::new();
        assert_eq!(
            m.handle(&mut out(1, 0xf4, &[0])),
            ControlFlow::Break(Stop::ExitPort(0))
        );
        assert_eq!(
            m.handle(&mut out(1, 0xf4, &[33])),
            ControlFlow::Break(Stop::ExitPort(33))
        );
        assert_eq!(
            m.handle(&mut out(4, 0xf4, &[5, 0, 0, 0])),
            ControlFlow::Break(Stop::ExitPort(5))
        );
    }

    #[test]
    fn unclaimed_ports_read_all_ones_and_are_counted() {
        let mut m = Machine::new();
        let mut page = input(2, 0x60, 3);
        assert!(m.handle(&mut page).is_continue());
        assert_eq!(page.bytes(DATA, 6).unwrap(), &[0xff; 6]);
        assert!(m.handle(&mut out(1, 0x80, &[1])).is_continue());
        assert_eq!(m.counters.unclaimed_pio, 2);
        assert_eq!(m.counters.unclaimed_mmio, 0);
        assert_eq!(m.output(), "");
    }

    #[test]
    fn unclaimed_mmio_reads_all_ones_and_writes_are_dropped() {
        let mut m = Machine::new();
        let mut page = mmio(0xfee0_0030, 4, 0, [0; 8]);
        assert!(m.handle(&mut page).is_continue());
        let data = page.mmio_exit().data;
        assert_eq!(&data[..4], &[0xff; 4]);
        assert_eq!(&data[4..], &[0; 4], "bytes past len are left alone");
        assert!(m.handle(&mut mmio(0xd000_0000, 8, 1, [1; 8])).is_continue());
        assert_eq!(m.counters.unclaimed_mmio, 2);
    }

    #[test]
    fn unknown_hypercalls_return_all_ones_and_continue() {
        let mut m = Machine::new();
        let mut page = reason(uapi::PACIFICA_EXIT_HYPERCALL);
        page.run_mut().exit.hypercall = HypercallExit {
            nr: 77,
            args: [1, 2, 3, 4],
            ret: 0,
        };
        assert!(m.handle(&mut page).is_continue());
        assert_eq!(page.hypercall_exit().ret, u64::MAX);
        assert_eq!(m.counters.unknown_hypercalls, 1);
    }

    #[test]
    fn terminal_exits_stop_the_run() {
        let mut m = Machine::new();
        let info = InternalExit {
            suberror: 1,
            exit_code: 0x7c,
            rip: 0x1234,
            ..Default::default()
        };
        let with_info = |r| {
            let mut page = reason(r);
            page.run_mut().exit.internal = info;
            page
        };
        assert_eq!(
            m.handle(&mut reason(uapi::PACIFICA_EXIT_HLT)),
            ControlFlow::Break(Stop::Halted)
        );
        assert_eq!(
            m.handle(&mut reason(uapi::PACIFICA_EXIT_SHUTDOWN)),
            ControlFlow::Break(Stop::Shutdown)
        );
        assert_eq!(
            m.handle(&mut with_info(uapi::PACIFICA_EXIT_FAIL_ENTRY)),
            ControlFlow::Break(Stop::FailEntry(info))
        );
        assert_eq!(
            m.handle(&mut with_info(uapi::PACIFICA_EXIT_INTERNAL_ERROR)),
            ControlFlow::Break(Stop::InternalError(info))
        );
        assert_eq!(
            m.handle(&mut reason(31)),
            ControlFlow::Break(Stop::Unknown(31))
        );
    }
}

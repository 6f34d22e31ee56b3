// SPDX-License-Identifier: GPL-2.0

//! KVM's exits as Pacifica's [`Exit`].
//!
//! `kvm-ioctls` decodes `kvm_run` into a [`VcpuExit`] that borrows the run
//! page, just as `pacifica::sys` decodes Pacifica's run page into an
//! [`Exit`]; the two differ in shape only. A `VcpuExit` leaves out two
//! things the VMM needs, the size of each port I/O item (a `REP OUTSB` of
//! four bytes and an `OUT DX, EAX` both carry four bytes) and the suberror
//! of an internal error, so they come in a [`RunHeader`] read from the run
//! page beside it.
//!
//! Nothing here touches `/dev/kvm`, so the tests feed it synthetic exits.

#![forbid(unsafe_code)]

use kvm_bindings::{KVM_INTERNAL_ERROR_EMULATION, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON};
use kvm_ioctls::VcpuExit;

use super::super::RunError;
use crate::sys::Exit;
use crate::uapi::{self, InternalExit};

/// An internal-error suberror of KVM's that has no Pacifica equivalent is
/// reported as this plus KVM's number.
pub const KVM_SUBERROR_BASE: u32 = 0x100;

/// `kvm_run` fields a [`VcpuExit`] does not carry.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunHeader {
    /// `kvm_run::exit_reason`.
    pub exit_reason: u32,
    /// `kvm_run::io.size`: bytes per port I/O item (for `KVM_EXIT_IO`).
    pub io_size: u8,
    /// `kvm_run::internal.suberror` (for `KVM_EXIT_INTERNAL_ERROR`).
    pub internal_suberror: u32,
}

/// Translates one KVM exit. [`RunError::Interrupted`] means the run was
/// cut short by a signal and should simply be resumed; [`RunError::BadExit`]
/// that the run page was inconsistent.
pub fn translate<'a>(exit: VcpuExit<'a>, header: RunHeader) -> Result<Exit<'a>, RunError> {
    Ok(match exit {
        VcpuExit::IoOut(port, data) => Exit::IoOut {
            port,
            size: io_size(header, data.len())?,
            data,
        },
        VcpuExit::IoIn(port, data) => Exit::IoIn {
            port,
            size: io_size(header, data.len())?,
            data,
        },
        VcpuExit::MmioRead(addr, data) => Exit::MmioRead {
            addr,
            data: mmio_data(data)?,
        },
        VcpuExit::MmioWrite(addr, data) => {
            mmio_len(data.len())?;
            Exit::MmioWrite { addr, data }
        }
        VcpuExit::Hypercall(call) => Exit::Hypercall {
            nr: call.nr,
            args: [call.args[0], call.args[1], call.args[2], call.args[3]],
            ret: call.ret,
        },
        VcpuExit::Hlt => Exit::Hlt,
        VcpuExit::Shutdown => Exit::Shutdown,
        VcpuExit::FailEntry(reason, _cpu) => Exit::FailEntry(InternalExit {
            exit_code: reason,
            ..Default::default()
        }),
        VcpuExit::InternalError => Exit::InternalError(InternalExit {
            suberror: suberror(header.internal_suberror),
            ..Default::default()
        }),
        VcpuExit::Intr => return Err(RunError::Interrupted),
        // Split irqchip: the EOI of a level-triggered vector for the
        // userspace I/O APIC.
        VcpuExit::IoapicEoi(vector) => Exit::Eoi { vector: u32::from(vector) },
        _ => Exit::Unknown(header.exit_reason),
    })
}

/// Pacifica's suberror for KVM's.
pub fn suberror(kvm: u32) -> u32 {
    match kvm {
        KVM_INTERNAL_ERROR_EMULATION => uapi::PACIFICA_INTERNAL_EMULATION,
        KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON => uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT,
        other => KVM_SUBERROR_BASE + other,
    }
}

fn invalid(what: String) -> RunError {
    RunError::BadExit(what)
}

/// Checks the item size against the data KVM handed over.
fn io_size(header: RunHeader, len: usize) -> Result<u8, RunError> {
    let size = header.io_size;
    if !matches!(size, 1 | 2 | 4) {
        return Err(invalid(format!(
            "KVM I/O exit with access size {size}, expected 1, 2 or 4"
        )));
    }
    if len == 0 || !len.is_multiple_of(usize::from(size)) {
        return Err(invalid(format!(
            "KVM I/O exit with {len} bytes of data, not a whole number of {size}-byte items"
        )));
    }
    Ok(size)
}

fn mmio_len(len: usize) -> Result<(), RunError> {
    if matches!(len, 1 | 2 | 4 | 8) {
        Ok(())
    } else {
        Err(invalid(format!(
            "KVM MMIO exit with length {len}, expected 1, 2, 4 or 8"
        )))
    }
}

fn mmio_data(data: &mut [u8]) -> Result<&mut [u8], RunError> {
    mmio_len(data.len())?;
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::{KVM_EXIT_DEBUG, KVM_EXIT_IO};
    use kvm_ioctls::HypercallExit;

    fn io(size: u8) -> RunHeader {
        RunHeader {
            exit_reason: KVM_EXIT_IO,
            io_size: size,
            internal_suberror: 0,
        }
    }

    #[test]
    fn port_writes_keep_their_item_size() {
        let data = [b'h', b'i', b'!', b'\n'];
        let exit = translate(VcpuExit::IoOut(0x3f8, &data), io(1)).unwrap();
        assert!(matches!(
            exit,
            Exit::IoOut { port: 0x3f8, size: 1, data: d } if d == b"hi!\n"
        ));
        let exit = translate(VcpuExit::IoOut(0xf4, &data), io(4)).unwrap();
        assert!(matches!(exit, Exit::IoOut { size: 4, .. }));
    }

    #[test]
    fn port_reads_fill_kvms_buffer() {
        let mut data = [0u8; 1];
        match translate(VcpuExit::IoIn(0x3fd, &mut data), io(1)).unwrap() {
            Exit::IoIn { port, size, data } => {
                assert_eq!((port, size), (0x3fd, 1));
                data[0] = 0x60;
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(data, [0x60]);
    }

    #[test]
    fn inconsistent_io_is_refused() {
        let data = [0u8; 3];
        let err = translate(VcpuExit::IoOut(0x80, &data), io(2)).unwrap_err();
        assert!(matches!(err, RunError::BadExit(_)), "{err}");
        let err = translate(VcpuExit::IoOut(0x80, &data[..1]), io(3)).unwrap_err();
        assert!(err.to_string().contains("access size 3"), "{err}");
    }

    #[test]
    fn mmio_is_passed_through_and_checked() {
        let mut data = [0u8; 4];
        let exit = translate(VcpuExit::MmioRead(0xfee0_0000, &mut data), io(0)).unwrap();
        assert!(matches!(
            exit,
            Exit::MmioRead {
                addr: 0xfee0_0000,
                ..
            }
        ));
        let data = [1u8; 3];
        assert!(translate(VcpuExit::MmioWrite(0x1000, &data), io(0)).is_err());
    }

    #[test]
    fn stops_and_hypercalls() {
        let none = RunHeader::default();
        assert!(matches!(translate(VcpuExit::Hlt, none).unwrap(), Exit::Hlt));
        assert!(matches!(
            translate(VcpuExit::Shutdown, none).unwrap(),
            Exit::Shutdown
        ));
        match translate(VcpuExit::FailEntry(0x80000021, 0), none).unwrap() {
            Exit::FailEntry(i) => assert_eq!(i.exit_code, 0x8000_0021),
            other => panic!("{other:?}"),
        }
        let internal = RunHeader {
            internal_suberror: KVM_INTERNAL_ERROR_EMULATION,
            ..none
        };
        match translate(VcpuExit::InternalError, internal).unwrap() {
            Exit::InternalError(i) => assert_eq!(i.suberror, uapi::PACIFICA_INTERNAL_EMULATION),
            other => panic!("{other:?}"),
        }
        assert_eq!(suberror(3), KVM_SUBERROR_BASE + 3);
        let mut ret = 0;
        let call = HypercallExit {
            nr: 7,
            args: [1, 2, 3, 4, 5, 6],
            ret: &mut ret,
            longmode: 1,
        };
        match translate(VcpuExit::Hypercall(call), none).unwrap() {
            Exit::Hypercall { nr, args, ret } => {
                assert_eq!((nr, args), (7, [1, 2, 3, 4]));
                *ret = 9;
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ret, 9);
    }

    #[test]
    fn signals_resume_and_strangers_are_unknown() {
        let err = translate(VcpuExit::Intr, RunHeader::default()).unwrap_err();
        assert!(matches!(err, RunError::Interrupted), "{err}");
        let debug = RunHeader {
            exit_reason: KVM_EXIT_DEBUG,
            ..Default::default()
        };
        let exit = translate(VcpuExit::Unsupported(KVM_EXIT_DEBUG), debug).unwrap();
        assert!(matches!(exit, Exit::Unknown(KVM_EXIT_DEBUG)));
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The run page shared with the module, and its decoding into an [`Exit`].
//!
//! The module writes the page; a buggy or hostile module (or a guest that
//! confuses it) could put any bytes there. Decoding therefore checks every
//! size, count and offset against the page before it hands out a slice, so a
//! bad page becomes a [`DecodeError`] instead of an out-of-bounds access.

use std::mem::size_of;

use crate::uapi::{self, Run};

/// Bytes of the page after the [`Run`] structure.
const TAIL_SIZE: usize = uapi::PACIFICA_RUN_PAGE_SIZE - size_of::<Run>();

/// One vCPU's shared page: the [`Run`] structure followed by the rest of the
/// page, which holds the port I/O data at `uapi::PACIFICA_RUN_IO_DATA_OFFSET`.
///
/// Splitting the page into these two fields lets an [`Exit`] borrow the I/O
/// data and a field of [`Run`] at the same time without any pointer tricks.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct RunPage {
    run: Run,
    tail: [u8; TAIL_SIZE],
}

const _: () = assert!(size_of::<RunPage>() == uapi::PACIFICA_RUN_PAGE_SIZE);
const _: () = assert!(std::mem::align_of::<RunPage>() == uapi::PACIFICA_RUN_PAGE_SIZE);

/// Why a run page could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The I/O exit's direction is neither in nor out.
    #[error("I/O exit with direction {0}, expected 0 (in) or 1 (out)")]
    IoDirection(u8),
    /// The I/O exit's access size is not 1, 2 or 4.
    #[error("I/O exit with access size {0}, expected 1, 2 or 4")]
    IoSize(u8),
    /// The I/O exit's item count is zero.
    #[error("I/O exit with a count of 0")]
    IoCount,
    /// The I/O exit's data does not lie within the page's I/O data area.
    #[error(
        "I/O exit data of {len} bytes at offset {offset:#x} lies outside the run page's I/O area"
    )]
    IoData {
        /// `data_offset` from the page.
        offset: u64,
        /// `size * count`.
        len: u64,
    },
    /// The MMIO exit's length is not 1, 2, 4 or 8.
    #[error("MMIO exit with length {0}, expected 1, 2, 4 or 8")]
    MmioLen(u32),
    /// The MMIO exit's direction flag is neither 0 nor 1.
    #[error("MMIO exit with is_write {0}, expected 0 or 1")]
    MmioDirection(u8),
}

/// An exit the VMM must handle, decoded from the run page it borrows.
///
/// The mutable slices and references point into the run page: what the VMM
/// writes there is what the guest sees on the next run.
#[derive(Debug)]
pub enum Exit<'a> {
    /// The guest wrote `data` (`size` bytes per item, one item unless it
    /// used `REP OUTS`) to `port`.
    IoOut {
        /// The port.
        port: u16,
        /// Bytes per item: 1, 2 or 4.
        size: u8,
        /// The items, back to back.
        data: &'a [u8],
    },
    /// The guest reads `port`; fill `data` (`size` bytes per item).
    IoIn {
        /// The port.
        port: u16,
        /// Bytes per item: 1, 2 or 4.
        size: u8,
        /// Where the values go, back to back.
        data: &'a mut [u8],
    },
    /// The guest reads guest-physical `addr` outside its RAM; fill `data`.
    MmioRead {
        /// The guest-physical address.
        addr: u64,
        /// Where the value goes (1, 2, 4 or 8 bytes, little-endian).
        data: &'a mut [u8],
    },
    /// The guest wrote `data` to guest-physical `addr` outside its RAM.
    MmioWrite {
        /// The guest-physical address.
        addr: u64,
        /// The value (1, 2, 4 or 8 bytes, little-endian).
        data: &'a [u8],
    },
    /// VMMCALL with a number the module does not serve itself.
    Hypercall {
        /// The hypercall number (guest RAX).
        nr: u64,
        /// Guest RBX, RCX, RDX and RSI.
        args: [u64; 4],
        /// Becomes the guest's RAX when it resumes.
        ret: &'a mut u64,
    },
    /// The guest executed HLT.
    Hlt,
    /// The guest can take a userspace PIC's interrupt (LINT0 in ExtINT
    /// mode, its line up): acknowledge it and set `vector` (above 255:
    /// nothing to deliver).
    Inta {
        /// Delivered when the guest resumes.
        vector: &'a mut u32,
    },
    /// The guest ended (EOI) a level-triggered interrupt.
    Eoi {
        /// The vector.
        vector: u32,
    },
    /// The guest shut down (triple fault).
    Shutdown,
    /// VMRUN refused the guest state.
    FailEntry(uapi::InternalExit),
    /// The module met an exit it cannot handle.
    InternalError(uapi::InternalExit),
    /// An exit reason this VMM does not know.
    Unknown(u32),
}

impl Default for RunPage {
    fn default() -> Self {
        Self::new()
    }
}

impl RunPage {
    /// A zeroed page (exit reason `PACIFICA_EXIT_UNKNOWN`), for tests and
    /// tools that build exits themselves.
    pub fn new() -> Self {
        let run = Run {
            exit_reason: 0,
            immediate_exit: 0,
            pad: [0; 3],
            rip: 0,
            exit: uapi::ExitData { pad: [0; 256] },
        };
        Self {
            run,
            tail: [0; TAIL_SIZE],
        }
    }

    /// The structured part of the page.
    pub fn run(&self) -> &Run {
        &self.run
    }

    /// The structured part of the page, writable.
    pub fn run_mut(&mut self) -> &mut Run {
        &mut self.run
    }

    /// The exit data read as port I/O, whatever the exit reason.
    pub fn io_exit(&self) -> uapi::IoExit {
        // SAFETY: every variant of `ExitData` is a `repr(C)` struct of
        // integers within the union's 256 initialised bytes, so any bytes
        // are a valid `IoExit`.
        unsafe { self.run.exit.io }
    }

    /// The exit data read as MMIO, whatever the exit reason.
    pub fn mmio_exit(&self) -> uapi::MmioExit {
        // SAFETY: as in `io_exit`, any bytes are a valid `MmioExit`.
        unsafe { self.run.exit.mmio }
    }

    /// The exit data read as a hypercall, whatever the exit reason.
    pub fn hypercall_exit(&self) -> uapi::HypercallExit {
        // SAFETY: as in `io_exit`, any bytes are a valid `HypercallExit`.
        unsafe { self.run.exit.hypercall }
    }

    /// The exit data read as an internal exit, whatever the exit reason.
    pub fn internal_exit(&self) -> uapi::InternalExit {
        // SAFETY: as in `io_exit`, any bytes are a valid `InternalExit`.
        unsafe { self.run.exit.internal }
    }

    /// The `len` bytes at `offset` from the start of the page, if they lie
    /// after the [`Run`] structure and inside the page.
    pub fn bytes(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let start = offset.checked_sub(size_of::<Run>())?;
        self.tail.get(start..start.checked_add(len)?)
    }

    /// Like [`bytes`](Self::bytes), writable.
    pub fn bytes_mut(&mut self, offset: usize, len: usize) -> Option<&mut [u8]> {
        let start = offset.checked_sub(size_of::<Run>())?;
        self.tail.get_mut(start..start.checked_add(len)?)
    }

    /// Decodes the exit the page describes.
    pub fn decode(&mut self) -> Result<Exit<'_>, DecodeError> {
        match self.run.exit_reason {
            uapi::PACIFICA_EXIT_IO => self.decode_io(),
            uapi::PACIFICA_EXIT_MMIO => self.decode_mmio(),
            uapi::PACIFICA_EXIT_HYPERCALL => {
                // SAFETY: every variant of `ExitData` is a `repr(C)` struct of
                // integers (or bytes) within the union's 256 bytes, so any
                // bytes are a valid `HypercallExit`.
                let hypercall = unsafe { &mut self.run.exit.hypercall };
                Ok(Exit::Hypercall {
                    nr: hypercall.nr,
                    args: hypercall.args,
                    ret: &mut hypercall.ret,
                })
            }
            uapi::PACIFICA_EXIT_HLT => Ok(Exit::Hlt),
            uapi::PACIFICA_EXIT_INTA => {
                // SAFETY: as for the hypercall: any bytes are a valid
                // `IntaExit`.
                let inta = unsafe { &mut self.run.exit.inta };
                // Nothing unless userspace says so.
                inta.vector = u32::MAX;
                Ok(Exit::Inta { vector: &mut inta.vector })
            }
            uapi::PACIFICA_EXIT_EOI => {
                // SAFETY: as above, for an `EoiExit`.
                let eoi = unsafe { self.run.exit.eoi };
                Ok(Exit::Eoi { vector: eoi.vector })
            }
            uapi::PACIFICA_EXIT_SHUTDOWN => Ok(Exit::Shutdown),
            uapi::PACIFICA_EXIT_FAIL_ENTRY => Ok(Exit::FailEntry(self.internal_exit())),
            uapi::PACIFICA_EXIT_INTERNAL_ERROR => Ok(Exit::InternalError(self.internal_exit())),
            other => Ok(Exit::Unknown(other)),
        }
    }

    fn decode_io(&mut self) -> Result<Exit<'_>, DecodeError> {
        let io = self.io_exit();
        if !matches!(io.size, 1 | 2 | 4) {
            return Err(DecodeError::IoSize(io.size));
        }
        if io.count == 0 {
            return Err(DecodeError::IoCount);
        }
        let len = u64::from(io.size) * u64::from(io.count);
        let range = io_data_range(io.data_offset, len).ok_or(DecodeError::IoData {
            offset: io.data_offset,
            len,
        })?;
        let data = &mut self.tail[range];
        match io.direction {
            uapi::PACIFICA_EXIT_IO_IN => Ok(Exit::IoIn {
                port: io.port,
                size: io.size,
                data,
            }),
            uapi::PACIFICA_EXIT_IO_OUT => Ok(Exit::IoOut {
                port: io.port,
                size: io.size,
                data,
            }),
            other => Err(DecodeError::IoDirection(other)),
        }
    }

    fn decode_mmio(&mut self) -> Result<Exit<'_>, DecodeError> {
        // SAFETY: every variant of `ExitData` is plain integers, so any bytes
        // are a valid `MmioExit`.
        let mmio = unsafe { &mut self.run.exit.mmio };
        let len = match mmio.len {
            1 | 2 | 4 | 8 => mmio.len as usize,
            other => return Err(DecodeError::MmioLen(other)),
        };
        let addr = mmio.phys_addr;
        match mmio.is_write {
            0 => Ok(Exit::MmioRead {
                addr,
                data: &mut mmio.data[..len],
            }),
            1 => Ok(Exit::MmioWrite {
                addr,
                data: &mmio.data[..len],
            }),
            other => Err(DecodeError::MmioDirection(other)),
        }
    }
}

/// The index range in the page's tail of `len` I/O bytes at page offset
/// `offset`, if they lie inside the I/O data area the ABI reserves.
fn io_data_range(offset: u64, len: u64) -> Option<std::ops::Range<usize>> {
    let area_start = uapi::PACIFICA_RUN_IO_DATA_OFFSET as u64;
    let area_end = area_start + uapi::PACIFICA_RUN_IO_DATA_SIZE as u64;
    let end = offset.checked_add(len)?;
    if offset < area_start || end > area_end {
        return None;
    }
    let run_size = size_of::<Run>() as u64;
    Some((offset - run_size) as usize..(end - run_size) as usize)
}

/// Synthetic run pages, for tests that feed exits without hardware.
#[cfg(test)]
impl RunPage {
    /// A page describing an I/O exit.
    pub(crate) fn synthetic_io(direction: u8, size: u8, port: u16, count: u32, data_offset: u64) -> Box<Self> {
        let mut page = Box::new(RunPage::new());
        page.run_mut().exit_reason = uapi::PACIFICA_EXIT_IO;
        page.run_mut().exit.io = uapi::IoExit { direction, size, port, count, data_offset };
        page
    }

    /// A page describing an MMIO exit.
    pub(crate) fn synthetic_mmio(addr: u64, len: u32, is_write: u8, data: [u8; 8]) -> Box<Self> {
        let mut page = Box::new(RunPage::new());
        page.run_mut().exit_reason = uapi::PACIFICA_EXIT_MMIO;
        page.run_mut().exit.mmio = uapi::MmioExit { phys_addr: addr, data, len, is_write, pad: [0; 3] };
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uapi::{HypercallExit, InternalExit};

    const DATA: usize = uapi::PACIFICA_RUN_IO_DATA_OFFSET;

    fn io_page(direction: u8, size: u8, port: u16, count: u32, data_offset: u64) -> Box<RunPage> {
        RunPage::synthetic_io(direction, size, port, count, data_offset)
    }

    fn mmio_page(addr: u64, len: u32, is_write: u8, data: [u8; 8]) -> Box<RunPage> {
        RunPage::synthetic_mmio(addr, len, is_write, data)
    }

    #[test]
    fn io_out_exposes_the_written_bytes() {
        let mut page = io_page(uapi::PACIFICA_EXIT_IO_OUT, 1, 0x3f8, 1, DATA as u64);
        page.bytes_mut(DATA, 1).unwrap()[0] = b'H';
        match page.decode().unwrap() {
            Exit::IoOut { port, size, data } => {
                assert_eq!((port, size), (0x3f8, 1));
                assert_eq!(data, b"H");
            }
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn rep_io_out_carries_size_times_count_bytes() {
        let mut page = io_page(uapi::PACIFICA_EXIT_IO_OUT, 2, 0x80, 3, DATA as u64 + 16);
        page.bytes_mut(DATA + 16, 6)
            .unwrap()
            .copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        match page.decode().unwrap() {
            Exit::IoOut { size: 2, data, .. } => assert_eq!(data, &[1, 2, 3, 4, 5, 6]),
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn io_in_writes_land_in_the_page() {
        let mut page = io_page(uapi::PACIFICA_EXIT_IO_IN, 4, 0x3fd, 1, DATA as u64);
        match page.decode().unwrap() {
            Exit::IoIn {
                port: 0x3fd,
                size: 4,
                data,
            } => data.copy_from_slice(&[0xaa, 0xbb, 0xcc, 0xdd]),
            other => panic!("decoded {other:?}"),
        }
        assert_eq!(page.bytes(DATA, 4).unwrap(), &[0xaa, 0xbb, 0xcc, 0xdd]);
    }

    #[test]
    fn io_data_filling_the_whole_area_is_accepted() {
        let count = (uapi::PACIFICA_RUN_IO_DATA_SIZE / 4) as u32;
        let mut page = io_page(uapi::PACIFICA_EXIT_IO_IN, 4, 0x60, count, DATA as u64);
        match page.decode().unwrap() {
            Exit::IoIn { data, .. } => assert_eq!(data.len(), uapi::PACIFICA_RUN_IO_DATA_SIZE),
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn io_data_outside_the_area_is_refused() {
        let end = (DATA + uapi::PACIFICA_RUN_IO_DATA_SIZE) as u64;
        let cases = [
            (end - 1, 2, 1),            // straddles the end of the area
            (0, 1, 1),                  // overlaps the Run structure
            (DATA as u64 - 1, 1, 1),    // just before the area
            (DATA as u64, 4, u32::MAX), // far too many items
            (u64::MAX, 1, 1),           // offset + len overflows
        ];
        for (offset, size, count) in cases {
            let mut page = io_page(uapi::PACIFICA_EXIT_IO_OUT, size, 0x3f8, count, offset);
            let len = u64::from(size) * u64::from(count);
            assert_eq!(
                page.decode().unwrap_err(),
                DecodeError::IoData { offset, len },
                "offset {offset:#x}"
            );
        }
    }

    #[test]
    fn bad_io_fields_are_refused() {
        let mut page = io_page(uapi::PACIFICA_EXIT_IO_OUT, 3, 0x3f8, 1, DATA as u64);
        assert_eq!(page.decode().unwrap_err(), DecodeError::IoSize(3));
        let mut page = io_page(uapi::PACIFICA_EXIT_IO_OUT, 1, 0x3f8, 0, DATA as u64);
        assert_eq!(page.decode().unwrap_err(), DecodeError::IoCount);
        let mut page = io_page(7, 1, 0x3f8, 1, DATA as u64);
        assert_eq!(page.decode().unwrap_err(), DecodeError::IoDirection(7));
    }

    #[test]
    fn mmio_write_exposes_len_bytes() {
        let mut page = mmio_page(0xfee0_0000, 4, 1, [1, 2, 3, 4, 5, 6, 7, 8]);
        match page.decode().unwrap() {
            Exit::MmioWrite { addr, data } => {
                assert_eq!(addr, 0xfee0_0000);
                assert_eq!(data, &[1, 2, 3, 4]);
            }
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn mmio_read_fills_the_page() {
        let mut page = mmio_page(0xd000_0000, 2, 0, [0; 8]);
        match page.decode().unwrap() {
            Exit::MmioRead {
                addr: 0xd000_0000,
                data,
            } => {
                assert_eq!(data.len(), 2);
                data.copy_from_slice(&[0x34, 0x12]);
            }
            other => panic!("decoded {other:?}"),
        }
        assert_eq!(&page.mmio_exit().data[..2], &[0x34, 0x12]);
    }

    #[test]
    fn bad_mmio_fields_are_refused() {
        assert_eq!(
            mmio_page(0, 3, 0, [0; 8]).decode().unwrap_err(),
            DecodeError::MmioLen(3)
        );
        assert_eq!(
            mmio_page(0, 16, 1, [0; 8]).decode().unwrap_err(),
            DecodeError::MmioLen(16)
        );
        assert_eq!(
            mmio_page(0, 4, 2, [0; 8]).decode().unwrap_err(),
            DecodeError::MmioDirection(2)
        );
    }

    #[test]
    fn hypercall_ret_is_written_back() {
        let mut page = Box::new(RunPage::new());
        page.run_mut().exit_reason = uapi::PACIFICA_EXIT_HYPERCALL;
        page.run_mut().exit.hypercall = HypercallExit {
            nr: 42,
            args: [1, 2, 3, 4],
            ret: 0,
        };
        match page.decode().unwrap() {
            Exit::Hypercall {
                nr: 42,
                args: [1, 2, 3, 4],
                ret,
            } => *ret = 7,
            other => panic!("decoded {other:?}"),
        }
        assert_eq!(page.hypercall_exit().ret, 7);
    }

    #[test]
    fn simple_and_internal_exits_decode() {
        let internal = InternalExit {
            suberror: 1,
            exit_code: 0x7b,
            rip: 0x1000,
            ..Default::default()
        };
        let mut page = Box::new(RunPage::new());
        page.run_mut().exit.internal = internal;
        for (reason, name) in [
            (uapi::PACIFICA_EXIT_HLT, "Hlt"),
            (uapi::PACIFICA_EXIT_SHUTDOWN, "Shutdown"),
            (uapi::PACIFICA_EXIT_FAIL_ENTRY, "FailEntry"),
            (uapi::PACIFICA_EXIT_INTERNAL_ERROR, "InternalError"),
            (uapi::PACIFICA_EXIT_UNKNOWN, "Unknown"),
            (1234, "Unknown"),
        ] {
            page.run_mut().exit_reason = reason;
            let exit = page.decode().unwrap();
            assert!(format!("{exit:?}").starts_with(name), "{reason}: {exit:?}");
            match exit {
                Exit::FailEntry(i) | Exit::InternalError(i) => assert_eq!(i, internal),
                Exit::Unknown(r) => assert_eq!(r, reason),
                _ => {}
            }
        }
    }

    #[test]
    fn page_bytes_never_reach_into_the_run_structure() {
        let page = RunPage::new();
        assert!(page.bytes(0, 1).is_none());
        assert!(page.bytes(size_of::<Run>(), 1).is_some());
        assert!(page.bytes(uapi::PACIFICA_RUN_PAGE_SIZE - 1, 1).is_some());
        assert!(page.bytes(uapi::PACIFICA_RUN_PAGE_SIZE - 1, 2).is_none());
        assert!(page.bytes(usize::MAX, 2).is_none());
    }
}

// SPDX-License-Identifier: GPL-2.0

//! MMIO through userspace: MOV to and from a guest-physical address outside
//! RAM (MMIO_BASE) exits with the address, the size and, for a write, the
//! data; for a read the value the test supplies reaches the guest register
//! with the architectural treatment of the rest of the register.
//!
//! Guest: `guests/mmio.S`. Reads are answered with [`mmio_value`], a
//! function of the address, so each check knows what the guest must have.

use pacifica_selftests::guest::describe_exit;
use pacifica_selftests::guests::mmio as guest;
use pacifica_selftests::layout::{DATA_BASE, MMIO_BASE};
use pacifica_selftests::sys::Exit;
use pacifica_selftests::tap::Test;
use pacifica_selftests::uapi::PACIFICA_STAT_MMIO;
use pacifica_selftests::{diag, ensure_eq, tap, Failure, Flow, Mode, TestResult, TestVm};

/// The bytes the test answers a read of `len` bytes at `addr` with.
fn mmio_value(addr: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((addr >> 4) as u8)
                .wrapping_mul(0x1d)
                .wrapping_add((i as u8).wrapping_mul(0x37))
                ^ 0xa5
        })
        .collect()
}

fn le(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0, |acc, &b| acc << 8 | u64::from(b))
}

/// One MMIO exit, as the test saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mmio {
    Write { addr: u64, data: Vec<u8> },
    Read { addr: u64, len: usize },
}

fn run(mode: Mode, entry: u64) -> Result<(TestVm, Vec<Mmio>), Failure> {
    let mut vm = TestVm::new(mode, guest::IMAGE, entry)?;
    let mut trace = Vec::new();
    vm.run_until(|exit| match exit {
        Exit::MmioWrite { addr, data } => {
            trace.push(Mmio::Write {
                addr: *addr,
                data: data.to_vec(),
            });
            Flow::Continue
        }
        Exit::MmioRead { addr, data } => {
            data.copy_from_slice(&mmio_value(*addr, data.len()));
            trace.push(Mmio::Read {
                addr: *addr,
                len: data.len(),
            });
            Flow::Continue
        }
        Exit::Hlt => Flow::Stop(()),
        other => Flow::Fail(format!("unexpected exit: {}", describe_exit(other))),
    })?;
    vm.ensure_no_exceptions()?;
    diag!("mmio exit counter: {}", vm.stat(PACIFICA_STAT_MMIO)?);
    Ok((vm, trace))
}

/// Writes of 1, 2, 4 and (64-bit) 8 bytes, in order, with their data.
fn mmio_write(mode: Mode, entry: u64) -> TestResult {
    let (_, trace) = run(mode, entry)?;
    let write = |off: u64, value: u64, len: usize| Mmio::Write {
        addr: MMIO_BASE + off,
        data: value.to_le_bytes()[..len].to_vec(),
    };
    let mut expected = vec![
        write(0x00, 0x5a, 1),
        write(0x10, 0xbeef, 2),
        write(0x20, 0xcafe_f00d, 4),
    ];
    if mode == Mode::Long64 {
        expected.push(write(0x30, 0x1122_3344_5566_7788, 8));
    }
    ensure_eq!(trace, expected, "MMIO exits");
    Ok(())
}

/// Reads of 1, 2, 4 and (64-bit) 8 bytes reach the guest's registers.
fn mmio_read(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let read = |off: u64, len| Mmio::Read {
        addr: MMIO_BASE + off,
        len,
    };
    let mut expected = vec![read(0x40, 1), read(0x50, 2), read(0x60, 4)];
    if mode == Mode::Long64 {
        expected.extend([read(0x70, 8), read(0x80, 4), read(0x90, 8)]);
    }
    ensure_eq!(trace, expected, "MMIO exits");
    let v = |off: u64, len| le(&mmio_value(MMIO_BASE + off, len));
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?),
        0xdead_be00 | v(0x40, 1),
        "EAX after MOV AL, [mmio] (bits 31:8 must stay)"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 4)?),
        0xdead_0000 | v(0x50, 2),
        "EAX after MOV AX, [mmio] (bits 31:16 must stay)"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 8)?),
        v(0x60, 4),
        "EAX after MOV EAX, [mmio]"
    );
    if mode == Mode::Long64 {
        ensure_eq!(
            vm.read_u64(DATA_BASE + 0x10)?,
            v(0x70, 8),
            "RAX after MOV RAX, [mmio]"
        );
        ensure_eq!(
            vm.read_u64(DATA_BASE + 0x18)?,
            v(0x80, 4),
            "RAX after MOV EAX, [mmio] (bits 63:32 must be cleared)"
        );
        ensure_eq!(
            vm.read_u64(DATA_BASE + 0x20)?,
            v(0x90, 8),
            "R10 after MOV R10, [mmio]"
        );
    }
    Ok(())
}

/// MOV r/m, imm (C6, C7) and MOVZX (0F B6) to MMIO. A module whose
/// decoder refuses them reports an emulation failure, and this test fails
/// with the module's internal-error details.
fn mmio_other_forms(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let expected = vec![
        Mmio::Write {
            addr: MMIO_BASE + 0xa0,
            data: vec![0x12],
        },
        Mmio::Write {
            addr: MMIO_BASE + 0xa4,
            data: 0x89ab_cdefu32.to_le_bytes().to_vec(),
        },
        Mmio::Read {
            addr: MMIO_BASE + 0xb0,
            len: 1,
        },
    ];
    ensure_eq!(trace, expected, "MMIO exits");
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?),
        le(&mmio_value(MMIO_BASE + 0xb0, 1)),
        "EAX after MOVZX EAX, byte [mmio]"
    );
    Ok(())
}

/// The status flags of `a - b` on 32 bits, as CMP leaves them.
fn cmp_flags(a: u32, b: u32) -> u64 {
    let r = a.wrapping_sub(b);
    let mut f = 0;
    f |= u64::from(a < b); // CF
    f |= u64::from(r.to_le_bytes()[0].count_ones() % 2 == 0) << 2; // PF
    f |= u64::from((a ^ b ^ r) & 0x10 != 0) << 4; // AF
    f |= u64::from(r == 0) << 6; // ZF
    f |= u64::from(r >> 31) << 7; // SF
    f |= u64::from(((a ^ b) & (a ^ r)) >> 31) << 11; // OF
    f
}

/// OR, ADD, CMP, XCHG, BTS, SUB and TEST on the device: the reads and
/// writes each makes, in order, and what reached registers and flags.
fn mmio_rmw(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let v = |off: u64, len: usize| le(&mmio_value(MMIO_BASE + off, len));
    let read = |off: u64, len: usize| Mmio::Read { addr: MMIO_BASE + off, len };
    let write = |off: u64, bytes: Vec<u8>| Mmio::Write { addr: MMIO_BASE + off, data: bytes };
    let expected = vec![
        read(0xc0, 4),
        write(0xc0, ((v(0xc0, 4) as u32) | 0x100).to_le_bytes().to_vec()),
        read(0xd0, 1),
        write(0xd0, vec![(v(0xd0, 1) as u8).wrapping_add(0x21)]),
        read(0xe0, 4),
        read(0xf0, 4),
        write(0xf0, 0x55aau32.to_le_bytes().to_vec()),
        read(0x100, 4),
        write(0x100, ((v(0x100, 4) as u32) | 8).to_le_bytes().to_vec()),
        read(0x110, 4),
        read(0x120, 1),
    ];
    ensure_eq!(trace, expected, "MMIO exits");
    let status = 0x8d5; // CF PF AF ZF SF OF
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?) & status,
        cmp_flags(v(0xe0, 4) as u32, 0x1122_3344),
        "EFLAGS after CMP [mmio], EAX"
    );
    ensure_eq!(u64::from(vm.read_u32(DATA_BASE + 4)?), v(0xf0, 4), "EDX after XCHG");
    ensure_eq!(u64::from(vm.read_u32(DATA_BASE + 8)? & 0xff), (v(0x100, 4) >> 3) & 1, "CF after BTS");
    ensure_eq!(
        vm.read_u32(DATA_BASE + 0xc)?,
        0xf0u32.wrapping_sub(v(0x110, 4) as u32),
        "ECX after SUB ECX, [mmio]"
    );
    ensure_eq!(u64::from(vm.read_u32(DATA_BASE + 0x10)? & 0xff), (v(0x120, 1) >> 7) & 1, "ZF after TEST");
    Ok(())
}

/// REP STOSD, REP MOVSB and REP MOVSW with the device on one side, and
/// LODSD moving down: one exit per device element, RAM done in the guest.
fn mmio_string(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let read = |off: u64, len: usize| Mmio::Read { addr: MMIO_BASE + off, len };
    let write = |off: u64, bytes: &[u8]| Mmio::Write { addr: MMIO_BASE + off, data: bytes.to_vec() };
    let mut expected: Vec<Mmio> = (0..3).map(|k| write(0x200 + 4 * k, &0x0102_0304u32.to_le_bytes())).collect();
    expected.extend((0..4).map(|k| write(0x300 + k, &[0x41 + k as u8])));
    expected.extend([read(0x400, 2), read(0x402, 2), read(0x504, 4), read(0x500, 4)]);
    ensure_eq!(trace, expected, "MMIO exits");
    let words = [mmio_value(MMIO_BASE + 0x400, 2), mmio_value(MMIO_BASE + 0x402, 2)].concat();
    ensure_eq!(u64::from(vm.read_u32(pacifica_selftests::layout::BUF_BASE + 0x10)?), le(&words), "RAM after REP MOVSW from MMIO");
    ensure_eq!(u64::from(vm.read_u32(DATA_BASE)?), le(&mmio_value(MMIO_BASE + 0x504, 4)), "first LODSD");
    ensure_eq!(u64::from(vm.read_u32(DATA_BASE + 4)?), le(&mmio_value(MMIO_BASE + 0x500, 4)), "second LODSD");
    ensure_eq!(u64::from(vm.read_u32(DATA_BASE + 8)?), MMIO_BASE + 0x4fc, "ESI after two LODSD down");
    ensure_eq!(vm.read_u32(DATA_BASE + 0xc)?, 0, "ECX after the REP MOVSW");
    Ok(())
}

use Mode::{Long64, Protected32};

fn main() {
    tap::run(&[
        Test::new("mmio_write_32", || {
            mmio_write(Protected32, guest::MMIO_WRITE32)
        }),
        Test::new("mmio_write_64", || mmio_write(Long64, guest::MMIO_WRITE64)),
        Test::new("mmio_read_32", || {
            mmio_read(Protected32, guest::MMIO_READ32)
        }),
        Test::new("mmio_read_64", || mmio_read(Long64, guest::MMIO_READ64)),
        Test::new("mmio_other_forms_32", || {
            mmio_other_forms(Protected32, guest::MMIO_OTHER32)
        }),
        Test::new("mmio_other_forms_64", || {
            mmio_other_forms(Long64, guest::MMIO_OTHER64)
        }),
        Test::new("mmio_rmw_32", || mmio_rmw(Protected32, guest::MMIO_RMW32)),
        Test::new("mmio_rmw_64", || mmio_rmw(Long64, guest::MMIO_RMW64)),
        Test::new("mmio_string_32", || mmio_string(Protected32, guest::MMIO_STRING32)),
        Test::new("mmio_string_64", || mmio_string(Long64, guest::MMIO_STRING64)),
    ]);
}

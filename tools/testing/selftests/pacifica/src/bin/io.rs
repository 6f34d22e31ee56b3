// SPDX-License-Identifier: GPL-2.0

//! Port I/O through userspace: IN and OUT of 1, 2 and 4 bytes, the string
//! forms INS and OUTS, with and without REP, forwards and backwards, in
//! 32-bit and 64-bit guests. Data is checked both ways: what the guest
//! wrote must arrive in the exits, and what the test answered must arrive
//! in guest registers and memory.
//!
//! Guest: `guests/io.S`, one label per scenario and mode. Before each run
//! the test fills BUF_BASE with [`buf_byte`]; every IN is answered from an
//! endless per-port stream ([`in_byte`]), so the checks do not depend on how
//! the module splits a long REP into exits.

use std::collections::BTreeMap;

use pacifica_selftests::guests::io as guest;
use pacifica_selftests::layout::{BUF_BASE, DATA_BASE, PORT_TEST, PORT_TEST_IMM};
use pacifica_selftests::sys::Exit;
use pacifica_selftests::tap::Test;
use pacifica_selftests::{ensure, ensure_eq, fail, tap, Failure, Flow, Mode, TestResult, TestVm};

const P8: u16 = PORT_TEST as u16;
const P16: u16 = PORT_TEST as u16 + 2;
const P32: u16 = PORT_TEST as u16 + 4;
const PIMM: u16 = PORT_TEST_IMM as u16;

/// How much of BUF_BASE the test fills before each run.
const BUF_LEN: usize = 32 << 10;

/// Byte `i` of the buffer OUTS reads. Mixing in `i >> 8` makes a slip by a
/// multiple of 256 bytes (a page, say) visible.
fn buf_byte(i: usize) -> u8 {
    (i.wrapping_mul(7).wrapping_add(3) ^ (i >> 8)) as u8
}

/// Byte `i` of the stream the test answers IN on `port` with.
fn in_byte(port: u16, i: usize) -> u8 {
    (i.wrapping_mul(13) ^ (i >> 8) ^ usize::from(port).wrapping_mul(0x5b)) as u8
}

fn in_bytes(port: u16, range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| in_byte(port, i)).collect()
}

fn buf(range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(buf_byte).collect()
}

/// One I/O exit, as the test saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Io {
    Out { port: u16, size: u8, data: Vec<u8> },
    In { port: u16, size: u8, len: usize },
}

/// What a run through the I/O test ports produced.
#[derive(Default)]
struct Trace {
    exits: Vec<Io>,
    in_cursor: BTreeMap<u16, usize>,
}

impl Trace {
    /// All bytes OUT to `port`, checking every access had width `size`.
    fn out_stream(&self, port: u16, size: u8) -> Result<Vec<u8>, Failure> {
        let mut all = Vec::new();
        for exit in &self.exits {
            if let Io::Out {
                port: p,
                size: s,
                data,
            } = exit
            {
                if *p == port {
                    ensure_eq!(*s, size, "access size of an OUT to port {port:#x}");
                    all.extend_from_slice(data);
                }
            }
        }
        Ok(all)
    }

    /// How many bytes IN read from `port`, checking every access had width
    /// `size`.
    fn in_total(&self, port: u16, size: u8) -> Result<usize, Failure> {
        let mut total = 0;
        for exit in &self.exits {
            if let Io::In {
                port: p,
                size: s,
                len,
            } = exit
            {
                if *p == port {
                    ensure_eq!(*s, size, "access size of an IN from port {port:#x}");
                    total += len;
                }
            }
        }
        Ok(total)
    }
}

/// Runs the scenario at `entry` to its HLT, recording every I/O exit.
fn run(mode: Mode, entry: u64) -> Result<(TestVm, Trace), Failure> {
    let mut vm = TestVm::new(mode, guest::IMAGE, entry)?;
    let pattern = buf(0..BUF_LEN);
    vm.mem.write(BUF_BASE, &pattern)?;
    let mut trace = Trace::default();
    vm.run_until(|exit| match exit {
        Exit::IoOut { port, size, data } => {
            trace.exits.push(Io::Out {
                port: *port,
                size: *size,
                data: data.to_vec(),
            });
            Flow::Continue
        }
        Exit::IoIn { port, size, data } => {
            let cursor = trace.in_cursor.entry(*port).or_default();
            for (i, byte) in data.iter_mut().enumerate() {
                *byte = in_byte(*port, *cursor + i);
            }
            *cursor += data.len();
            trace.exits.push(Io::In {
                port: *port,
                size: *size,
                len: data.len(),
            });
            Flow::Continue
        }
        Exit::Hlt => Flow::Stop(()),
        other => Flow::Fail(format!(
            "unexpected exit: {}",
            pacifica_selftests::guest::describe_exit(other)
        )),
    })?;
    vm.ensure_no_exceptions()?;
    Ok((vm, trace))
}

fn le16(b: &[u8]) -> u32 {
    u32::from(u16::from_le_bytes([b[0], b[1]]))
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// OUT of each width through DX and through an immediate port: exactly
/// six exits, in order, with the right port, size and little-endian data.
fn out_sizes(mode: Mode, entry: u64) -> TestResult {
    let (_, trace) = run(mode, entry)?;
    let out = |port, size, data: &[u8]| Io::Out {
        port,
        size,
        data: data.to_vec(),
    };
    let expected = vec![
        out(P8, 1, &[0x11]),
        out(P8, 2, &[0x33, 0x22]),
        out(P8, 4, &[0x77, 0x66, 0x55, 0x44]),
        out(PIMM, 1, &[0x88]),
        out(PIMM, 2, &[0xaa, 0x99]),
        out(PIMM, 4, &[0xee, 0xdd, 0xcc, 0xbb]),
    ];
    ensure_eq!(trace.exits, expected, "I/O exits");
    Ok(())
}

/// IN of each width: one exit each, and the value lands in AL/AX/EAX
/// leaving the rest of RAX as the architecture says.
fn in_sizes(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let input = |port, size| Io::In {
        port,
        size,
        len: usize::from(size),
    };
    let mut expected = vec![
        input(P8, 1),
        input(P8, 2),
        input(P8, 4),
        input(PIMM, 1),
        input(PIMM, 2),
        input(PIMM, 4),
    ];
    if mode == Mode::Long64 {
        expected.extend([input(P8, 1), input(P8, 4)]);
    }
    ensure_eq!(trace.exits, expected, "I/O exits");
    let s = in_bytes(P8, 0..12);
    let t = in_bytes(PIMM, 0..7);
    ensure_eq!(
        vm.read_u32(DATA_BASE)?,
        0xdead_be00 | u32::from(s[0]),
        "EAX after IN AL, DX"
    );
    ensure_eq!(
        vm.read_u32(DATA_BASE + 4)?,
        0xdead_0000 | le16(&s[1..3]),
        "EAX after IN AX, DX"
    );
    ensure_eq!(
        vm.read_u32(DATA_BASE + 8)?,
        le32(&s[3..7]),
        "EAX after IN EAX, DX"
    );
    ensure_eq!(
        vm.read_u32(DATA_BASE + 0xc)?,
        0xdead_be00 | u32::from(t[0]),
        "EAX after IN AL, imm8"
    );
    ensure_eq!(
        vm.read_u32(DATA_BASE + 0x10)?,
        0xdead_0000 | le16(&t[1..3]),
        "EAX after IN AX, imm8"
    );
    ensure_eq!(
        vm.read_u32(DATA_BASE + 0x14)?,
        le32(&t[3..7]),
        "EAX after IN EAX, imm8"
    );
    if mode == Mode::Long64 {
        ensure_eq!(
            vm.read_u64(DATA_BASE + 0x18)?,
            0x1122_3344_5566_7700 | u64::from(s[7]),
            "RAX after IN AL (bits 63:8 must stay)"
        );
        ensure_eq!(
            vm.read_u64(DATA_BASE + 0x20)?,
            u64::from(le32(&s[8..12])),
            "RAX after IN EAX (bits 63:32 must be cleared)"
        );
    }
    Ok(())
}

/// OUTSB, OUTSW, OUTSD without REP: the data comes from guest memory at
/// RSI, which advances by 7.
fn outs_single(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let out = |size, data: Vec<u8>| Io::Out {
        port: P8,
        size,
        data,
    };
    let expected = vec![out(1, buf(0..1)), out(2, buf(1..3)), out(4, buf(3..7))];
    ensure_eq!(trace.exits, expected, "I/O exits");
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?),
        BUF_BASE + 7,
        "ESI after the OUTS"
    );
    Ok(())
}

/// INSB, INSW, INSD without REP: the data lands in guest memory at RDI,
/// which advances by 7, and nothing after it is touched.
fn ins_single(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let input = |size| Io::In {
        port: P8,
        size,
        len: usize::from(size),
    };
    ensure_eq!(trace.exits, vec![input(1), input(2), input(4)], "I/O exits");
    ensure_eq!(
        vm.read_bytes(BUF_BASE, 7)?,
        in_bytes(P8, 0..7),
        "memory written by INS"
    );
    ensure_eq!(
        vm.read_bytes(BUF_BASE + 7, 1)?,
        buf(7..8),
        "the byte after the INS data"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?),
        BUF_BASE + 7,
        "EDI after the INS"
    );
    Ok(())
}

/// REP OUTS of each width continues through memory; ECX ends at 0.
fn rep_outs(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    ensure_eq!(trace.out_stream(P8, 1)?, buf(0..37), "REP OUTSB data");
    ensure_eq!(trace.out_stream(P16, 2)?, buf(37..75), "REP OUTSW data");
    ensure_eq!(trace.out_stream(P32, 4)?, buf(75..119), "REP OUTSD data");
    for (i, name) in ["OUTSB", "OUTSW", "OUTSD"].iter().enumerate() {
        ensure_eq!(
            vm.read_u32(DATA_BASE + 4 * i as u64)?,
            0,
            "ECX after REP {name}"
        );
    }
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 0xc)?),
        BUF_BASE + 119,
        "ESI at the end"
    );
    Ok(())
}

/// REP INS of each width fills memory in order; ECX ends at 0.
fn rep_ins(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    ensure_eq!(trace.in_total(P8, 1)?, 37, "bytes read by REP INSB");
    ensure_eq!(trace.in_total(P16, 2)?, 38, "bytes read by REP INSW");
    ensure_eq!(trace.in_total(P32, 4)?, 44, "bytes read by REP INSD");
    ensure_eq!(
        vm.read_bytes(BUF_BASE, 37)?,
        in_bytes(P8, 0..37),
        "REP INSB data"
    );
    ensure_eq!(
        vm.read_bytes(BUF_BASE + 37, 38)?,
        in_bytes(P16, 0..38),
        "REP INSW data"
    );
    ensure_eq!(
        vm.read_bytes(BUF_BASE + 75, 44)?,
        in_bytes(P32, 0..44),
        "REP INSD data"
    );
    ensure_eq!(
        vm.read_bytes(BUF_BASE + 119, 1)?,
        buf(119..120),
        "the byte after the data"
    );
    for (i, name) in ["INSB", "INSW", "INSD"].iter().enumerate() {
        ensure_eq!(
            vm.read_u32(DATA_BASE + 4 * i as u64)?,
            0,
            "ECX after REP {name}"
        );
    }
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 0xc)?),
        BUF_BASE + 119,
        "EDI at the end"
    );
    Ok(())
}

/// REP OUTS longer than the run page's I/O area, across pages.
fn rep_outs_large(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let start = 0x123;
    ensure_eq!(trace.out_stream(P8, 1)?.len(), 5000, "bytes of REP OUTSB");
    ensure!(
        trace.out_stream(P8, 1)? == buf(start..start + 5000),
        "REP OUTSB data differs"
    );
    let dwords = trace.out_stream(P32, 4)?;
    ensure_eq!(dwords.len(), 12000, "bytes of REP OUTSD");
    if dwords != buf(start + 5000..start + 17000) {
        let at = dwords
            .iter()
            .zip(buf(start + 5000..start + 17000))
            .position(|(a, b)| *a != b);
        fail!("REP OUTSD data differs first at byte {at:?}");
    }
    ensure_eq!(vm.read_u32(DATA_BASE)?, 0, "ECX at the end");
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 4)?),
        BUF_BASE + start as u64 + 17000,
        "ESI at the end"
    );
    let exits = trace.exits.len();
    pacifica_selftests::diag!("{exits} I/O exits for 8000 items");
    Ok(())
}

/// REP INS longer than the run page's I/O area, across pages.
fn rep_ins_large(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let start = BUF_BASE + 0x123;
    ensure_eq!(trace.in_total(P8, 1)?, 5000, "bytes read by REP INSB");
    ensure_eq!(trace.in_total(P32, 4)?, 12000, "bytes read by REP INSD");
    ensure!(
        vm.read_bytes(start, 5000)? == in_bytes(P8, 0..5000),
        "REP INSB data differs"
    );
    ensure!(
        vm.read_bytes(start + 5000, 12000)? == in_bytes(P32, 0..12000),
        "REP INSD data differs"
    );
    ensure_eq!(
        vm.read_bytes(start + 17000, 1)?,
        buf(0x123 + 17000..0x123 + 17001),
        "the byte after"
    );
    ensure_eq!(vm.read_u32(DATA_BASE)?, 0, "ECX at the end");
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 4)?),
        start + 17000,
        "EDI at the end"
    );
    Ok(())
}

/// With DF set, REP OUTS reads memory downwards.
fn rep_outs_down(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let bytes: Vec<u8> = (0..100).rev().map(buf_byte).collect();
    ensure_eq!(trace.out_stream(P8, 1)?, bytes, "REP OUTSB data with DF=1");
    let dwords: Vec<u8> = (0..20)
        .rev()
        .flat_map(|k| buf(0x200 + 4 * k..0x200 + 4 * k + 4))
        .collect();
    ensure_eq!(
        trace.out_stream(P32, 4)?,
        dwords,
        "REP OUTSD data with DF=1"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?),
        BUF_BASE - 1,
        "ESI after REP OUTSB"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 4)?),
        BUF_BASE + 0x200 - 4,
        "ESI after REP OUTSD"
    );
    Ok(())
}

/// With DF set, REP INS fills memory downwards.
fn rep_ins_down(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    ensure_eq!(trace.in_total(P8, 1)?, 100, "bytes read by REP INSB");
    ensure_eq!(trace.in_total(P32, 4)?, 80, "bytes read by REP INSD");
    let bytes: Vec<u8> = (0..100).rev().map(|k| in_byte(P8, k)).collect();
    ensure_eq!(
        vm.read_bytes(BUF_BASE, 100)?,
        bytes,
        "REP INSB data with DF=1"
    );
    ensure_eq!(
        vm.read_bytes(BUF_BASE + 100, 1)?,
        buf(100..101),
        "the byte above the data"
    );
    let dwords: Vec<u8> = (0..20)
        .rev()
        .flat_map(|k| in_bytes(P32, 4 * k..4 * k + 4))
        .collect();
    ensure_eq!(
        vm.read_bytes(BUF_BASE + 0x200, 80)?,
        dwords,
        "REP INSD data with DF=1"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?),
        BUF_BASE - 1,
        "EDI after REP INSB"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 4)?),
        BUF_BASE + 0x200 - 4,
        "EDI after REP INSD"
    );
    Ok(())
}

/// REP with a count of 0 performs no access and causes no exit.
fn rep_zero(mode: Mode, entry: u64) -> TestResult {
    let (vm, trace) = run(mode, entry)?;
    let marker = Io::Out {
        port: P8 + 6,
        size: 1,
        data: vec![0x99],
    };
    ensure_eq!(
        trace.exits,
        vec![marker],
        "I/O exits (REP with ECX=0 must cause none)"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE)?),
        BUF_BASE,
        "ESI after REP OUTSB with ECX=0"
    );
    ensure_eq!(
        u64::from(vm.read_u32(DATA_BASE + 4)?),
        BUF_BASE,
        "EDI after REP INSB with ECX=0"
    );
    Ok(())
}

use Mode::{Long64, Protected32};

fn main() {
    tap::run(&[
        Test::new("out_sizes_32", || {
            out_sizes(Protected32, guest::OUT_SIZES32)
        }),
        Test::new("out_sizes_64", || out_sizes(Long64, guest::OUT_SIZES64)),
        Test::new("in_sizes_32", || in_sizes(Protected32, guest::IN_SIZES32)),
        Test::new("in_sizes_64", || in_sizes(Long64, guest::IN_SIZES64)),
        Test::new("outs_single_32", || {
            outs_single(Protected32, guest::OUTS_SINGLE32)
        }),
        Test::new("outs_single_64", || {
            outs_single(Long64, guest::OUTS_SINGLE64)
        }),
        Test::new("ins_single_32", || {
            ins_single(Protected32, guest::INS_SINGLE32)
        }),
        Test::new("ins_single_64", || ins_single(Long64, guest::INS_SINGLE64)),
        Test::new("rep_outs_32", || rep_outs(Protected32, guest::REP_OUTS32)),
        Test::new("rep_outs_64", || rep_outs(Long64, guest::REP_OUTS64)),
        Test::new("rep_ins_32", || rep_ins(Protected32, guest::REP_INS32)),
        Test::new("rep_ins_64", || rep_ins(Long64, guest::REP_INS64)),
        Test::new("rep_outs_large_32", || {
            rep_outs_large(Protected32, guest::REP_OUTS_LARGE32)
        }),
        Test::new("rep_outs_large_64", || {
            rep_outs_large(Long64, guest::REP_OUTS_LARGE64)
        }),
        Test::new("rep_ins_large_32", || {
            rep_ins_large(Protected32, guest::REP_INS_LARGE32)
        }),
        Test::new("rep_ins_large_64", || {
            rep_ins_large(Long64, guest::REP_INS_LARGE64)
        }),
        Test::new("rep_outs_down_32", || {
            rep_outs_down(Protected32, guest::REP_OUTS_DOWN32)
        }),
        Test::new("rep_outs_down_64", || {
            rep_outs_down(Long64, guest::REP_OUTS_DOWN64)
        }),
        Test::new("rep_ins_down_32", || {
            rep_ins_down(Protected32, guest::REP_INS_DOWN32)
        }),
        Test::new("rep_ins_down_64", || {
            rep_ins_down(Long64, guest::REP_INS_DOWN64)
        }),
        Test::new("rep_zero_32", || rep_zero(Protected32, guest::REP_ZERO32)),
        Test::new("rep_zero_64", || rep_zero(Long64, guest::REP_ZERO64)),
    ]);
}

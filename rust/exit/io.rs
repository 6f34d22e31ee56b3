// SPDX-License-Identifier: GPL-2.0

//! Port I/O exits (APM 15.10.2). Every port is intercepted and served by
//! userspace. IN and OUT move RAX; INS and OUTS (with or without REP) move
//! guest memory through the run page's data area, up to its size per exit:
//! a longer REP re-executes the instruction until RCX reaches zero.

use super::decode::IoInfo;
use super::{fault, fetch_insn, segment_base, user_exit, walk, Env, Flow, GuestState, Pending};
use crate::emulate::insn::SegOverride;
use crate::emulate::walk::{Access, WalkError};
use crate::hw::cr::rflags;
use crate::hw::gpr::Gpr;
use crate::uapi;

/// One batch of INS or OUTS, as decoded at the exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StringOp {
    /// Element size in bytes.
    size: u8,
    /// Elements in this batch.
    count: u32,
    /// Address size in bytes (2, 4 or 8): RSI/RDI/RCX wrap at it.
    addr_size: u8,
    rep: bool,
    /// Segment base of the memory operand.
    seg_base: u64,
    /// RIP after the instruction.
    next_rip: u64,
}

/// The bits of RSI, RDI and RCX an `addr_size`-byte address uses.
pub(super) fn mask(addr_size: u8) -> u64 {
    match addr_size {
        2 => 0xffff,
        4 => 0xffff_ffff,
        _ => u64::MAX,
    }
}

/// Handles an IOIO intercept.
pub(super) fn handle<E: Env>(g: &mut GuestState<'_, E>, info: IoInfo) -> Flow {
    g.count(uapi::PACIFICA_STAT_IO);
    let IoInfo { port, size, input, next_rip, .. } = info;
    if info.string {
        return string(g, port, size, input, next_rip);
    }
    let direction = if input { uapi::PACIFICA_EXIT_IO_IN } else { uapi::PACIFICA_EXIT_IO_OUT };
    if input {
        g.cpu.pending = Pending::In { size };
    } else {
        let rax = g.vmcb.save.rax.to_le_bytes();
        g.env.io_write(0, &rax[..usize::from(size)]);
    }
    let flow = io_exit(g, direction, size, port, 1);
    // IN's result lands at the next run; RIP can move now either way.
    g.vmcb.save.rip = next_rip;
    flow
}

fn io_exit<E: Env>(g: &mut GuestState<'_, E>, direction: u8, size: u8, port: u16, count: u32) -> Flow {
    let io = uapi::IoExit {
        direction,
        size,
        port,
        count,
        data_offset: uapi::PACIFICA_RUN_IO_DATA_OFFSET as u64,
    };
    user_exit(g, uapi::PACIFICA_EXIT_IO, uapi::ExitData { io })
}

/// The linear address of element `k` of a string operation: RSI/RDI moves
/// by `size` per element, down when RFLAGS.DF is set.
fn element_la<E: Env>(g: &mut GuestState<'_, E>, op: &StringOp, index_reg: Gpr, k: u32) -> u64 {
    let df = g.vmcb.save.rflags & rflags::DF != 0;
    let base = g.gpr(index_reg);
    let step = u64::from(op.size).wrapping_mul(u64::from(k));
    let off = if df { base.wrapping_sub(step) } else { base.wrapping_add(step) } & mask(op.addr_size);
    let la = op.seg_base.wrapping_add(off);
    if op.addr_size == 8 {
        la
    } else {
        la & 0xffff_ffff
    }
}

/// Moves RSI or RDI past `count` elements and counts RCX down; RIP moves
/// past the instruction once RCX is zero (or without REP).
fn advance_string<E: Env>(g: &mut GuestState<'_, E>, op: &StringOp, index_reg: Gpr) {
    let m = mask(op.addr_size);
    let df = g.vmcb.save.rflags & rflags::DF != 0;
    let step = u64::from(op.size) * u64::from(op.count);
    let old = g.gpr(index_reg);
    let new = if df { old.wrapping_sub(step) } else { old.wrapping_add(step) };
    g.set_gpr(index_reg, (old & !m) | (new & m));
    let mut done = true;
    if op.rep {
        let rcx = g.gpr(Gpr::Rcx);
        let left = (rcx & m).wrapping_sub(u64::from(op.count)) & m;
        g.set_gpr(Gpr::Rcx, (rcx & !m) | left);
        done = left == 0;
    }
    if done {
        g.vmcb.save.rip = op.next_rip;
    }
}

/// Where one element lies in guest-physical memory: one piece, or two
/// where it straddles a page boundary (`first` bytes at `gpa[0]`, the rest
/// at `gpa[1]`).
struct Element {
    gpa: [u64; 2],
    first: usize,
    size: usize,
}

impl Element {
    /// Translates the element of `op` at linear address `la`; a failure
    /// gives the linear address that did not translate.
    fn at<E: Env>(g: &mut GuestState<'_, E>, op: &StringOp, la: u64, access: Access) -> Result<Self, (u64, WalkError)> {
        let size = usize::from(op.size);
        let first = (4096 - (la & 4095) as usize).min(size);
        let mut gpa = [walk(g, la, access).map_err(|e| (la, e))?, 0];
        if first < size {
            let next = la.wrapping_add(first as u64);
            let next = if op.addr_size == 8 { next } else { next & 0xffff_ffff };
            gpa[1] = walk(g, next, access).map_err(|e| (next, e))?;
        }
        Ok(Self { gpa, first, size })
    }

    fn pieces(&self) -> [(u64, core::ops::Range<usize>); 2] {
        [(self.gpa[0], 0..self.first), (self.gpa[1], self.first..self.size)]
    }

    fn read<E: Env>(&self, g: &GuestState<'_, E>, buf: &mut [u8]) -> bool {
        self.pieces().into_iter().all(|(gpa, r)| r.is_empty() || g.env.read(gpa, &mut buf[r]))
    }

    fn write<E: Env>(&self, g: &mut GuestState<'_, E>, data: &[u8]) {
        for (gpa, r) in self.pieces() {
            if r.is_empty() {
                continue;
            }
            g.env.write(gpa, &data[r]);
            g.module_wrote(gpa);
        }
    }
}

fn string<E: Env>(g: &mut GuestState<'_, E>, port: u16, size: u8, input: bool, next_rip: u64) -> Flow {
    // QEMU leaves EXITINFO1's address-size bits empty, so the prefixes are
    // decoded from the instruction itself (`testbed`).
    let i = match fetch_insn(g) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let m = mask(i.addr_size);
    let total = if i.rep { g.gpr(Gpr::Rcx) & m } else { 1 };
    if total == 0 {
        g.vmcb.save.rip = next_rip;
        return Flow::Continue;
    }
    // INS always writes ES:RDI; OUTS reads DS:RSI unless overridden.
    let seg_base = if input {
        segment_base(g, None, SegOverride::Es)
    } else {
        segment_base(g, i.seg, SegOverride::Ds)
    };
    // `size` is 1, 2 or 4 (`IoInfo::decode`); `max` keeps the division
    // free of a panic path all the same.
    let max = uapi::PACIFICA_RUN_IO_DATA_SIZE.checked_div(usize::from(size)).unwrap_or(0) as u64;
    let mut op = StringOp {
        size,
        count: total.min(max) as u32,
        addr_size: i.addr_size,
        rep: i.rep,
        seg_base,
        next_rip,
    };
    let access = Access { write: input, user: g.user_mode(), fetch: false };
    let index_reg = if input { Gpr::Rdi } else { Gpr::Rsi };
    // Translate every element now, so that a page fault is raised before
    // any port is touched; a batch stops short of a faulting element, which
    // the re-executed instruction then reaches first.
    for k in 0..op.count {
        let la = element_la(g, &op, index_reg, k);
        match Element::at(g, &op, la, access) {
            Ok(e) if !input => {
                let mut buf = [0u8; 4];
                let buf = &mut buf[..usize::from(size)];
                if !e.read(g, buf) {
                    return super::internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
                }
                g.env.io_write(k as usize * usize::from(size), buf);
            }
            Ok(_) => {}
            Err((at, e)) if k == 0 => return fault(g, at, e),
            Err(_) => {
                op.count = k;
                break;
            }
        }
    }
    let flow = if input {
        g.cpu.pending = Pending::StringIn(op);
        io_exit(g, uapi::PACIFICA_EXIT_IO_IN, size, port, op.count)
    } else {
        let f = io_exit(g, uapi::PACIFICA_EXIT_IO_OUT, size, port, op.count);
        advance_string(g, &op, Gpr::Rsi);
        f
    };
    flow
}

/// Stores what userspace read from the port into guest memory.
pub(super) fn complete_string_in<E: Env>(g: &mut GuestState<'_, E>, op: StringOp) {
    let access = Access { write: true, user: g.user_mode(), fetch: false };
    for k in 0..op.count {
        let la = element_la(g, &op, Gpr::Rdi, k);
        let at = k as usize * usize::from(op.size);
        let mut buf = [0u8; 4];
        g.env.io_read(at, &mut buf[..usize::from(op.size)]);
        // Translated successfully at the exit; the guest cannot have run
        // since, so this only fails if another vCPU changed the tables.
        if let Ok(e) = Element::at(g, &op, la, access) {
            e.write(g, &buf[..usize::from(op.size)]);
        }
    }
    advance_string(g, &op, Gpr::Rdi);
}

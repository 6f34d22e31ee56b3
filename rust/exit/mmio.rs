// SPDX-License-Identifier: GPL-2.0

//! Device memory. Guest RAM is mapped whole when it is registered, so a
//! nested page fault (or a shadow page fault on a guest-physical address
//! outside RAM) means the guest touched MMIO: the in-kernel APIC's page,
//! or a device userspace serves. Without decode assists SVM gives only the
//! address (APM 15.25.6), so the module decodes the instruction and
//! emulates it here, whichever device it reaches:
//!
//! - MOV, MOVZX, MOVSX: one read or one write;
//! - ADD, OR, ADC, SBB, AND, SUB, XOR, CMP, TEST, XCHG, BT, BTS, BTR, BTC:
//!   a read, the operation with its flags, and (except CMP, TEST and BT)
//!   a write of the result;
//! - MOVS, STOS, LODS: one element per fault, the RAM side of MOVS copied
//!   here; with REP the instruction is re-executed until RCX is zero, so
//!   elements in RAM run natively and every device element faults again.
//!
//! A read from userspace's device is an exit whose data comes back at the
//! next `PACIFICA_RUN` ([`complete_read`]); the instruction then finishes,
//! and a write it still owes is a second exit. The APIC page is served in
//! the kernel at once. An instruction the decoder does not know ends the
//! run with an emulation error that carries its bytes.

use super::io::mask;
use super::{
    advance, fetch_insn, internal_error, segment_base, user_exit, walk, Env, Flow, GuestState, Pending,
};
use crate::emulate::insn::{self, Extend, Insn, Op, Reg, SegOverride, Source, StrOp};
use crate::emulate::walk::Access;
use crate::hw::cr::rflags;
use crate::hw::gpr::Gpr;
use crate::hw::svm::{event, npf};
use crate::uapi;

/// Who serves a device address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Device {
    /// The in-kernel local APIC's xAPIC page.
    Apic,
    /// Userspace, through an MMIO exit.
    User,
}

/// A read from userspace's device, waiting for its data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Read {
    insn: Insn,
    gpa: u64,
    /// The access's size ([`device_size`]).
    size: u8,
    /// MOVS from the device: where in RAM the element goes.
    dst: u64,
}

/// Handles a fault at guest-physical `gpa` outside RAM with NPF error
/// code `error` (its FETCH and WRITE bits).
pub(super) fn handle<E: Env>(g: &mut GuestState<'_, E>, gpa: u64, error: u64) -> Flow {
    // An exit while an event was being delivered (its IDT entry or stack in
    // MMIO) is no instruction to emulate.
    if g.vmcb.control.exit_int_info & event::VALID != 0 {
        return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
    }
    let device = if super::apic::owns(g, gpa) && error & npf::FETCH == 0 {
        g.count(uapi::PACIFICA_STAT_APIC_ACCESS);
        Device::Apic
    } else {
        // A fault on RAM, or on the guest's own page tables, or an
        // instruction fetch from MMIO, is nothing an emulator can serve.
        if error & (npf::FETCH | npf::GUEST_PAGE_TABLE) != 0 || g.env.is_ram(gpa) {
            let sub = if error & npf::FETCH == 0 && g.env.is_ram(gpa) {
                uapi::PACIFICA_INTERNAL_NPF_IN_RAM
            } else {
                uapi::PACIFICA_INTERNAL_EMULATION
            };
            return internal_error(g, sub);
        }
        Device::User
    };
    let i = match fetch_insn(g) {
        Ok(i) => i,
        Err(f) => return f,
    };
    if device == Device::User {
        g.count(uapi::PACIFICA_STAT_MMIO);
    }
    let Some(size) = device_size(&i) else {
        return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
    };
    if let Op::Str { .. } = i.op {
        // REP with RCX zero touches no memory: nothing can have faulted.
        if i.rep && g.gpr(Gpr::Rcx) & mask(i.addr_size) == 0 {
            advance(g, i.len);
            return Flow::Continue;
        }
    }
    match i.op {
        Op::Store { src, .. } => {
            let v = insn::store_value(src, size, |r| g.gpr(r));
            advance(g, i.len);
            write(g, device, gpa, size, v)
        }
        Op::Str { op: StrOp::Stos, .. } => {
            let v = insn::store_value(Source::Reg(rax()), size, |r| g.gpr(r));
            string_step(g, &i, size, StrOp::Stos);
            write(g, device, gpa, size, v)
        }
        // MOVS into the device: the source element is in RAM.
        Op::Str { op: StrOp::Movs, .. } if error & npf::WRITE != 0 => {
            let mut buf = [0u8; 8];
            let src = string_la(g, &i, Gpr::Rsi);
            if !ram_read(g, src, &mut buf[..usize::from(size)]) {
                return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
            }
            string_step(g, &i, size, StrOp::Movs);
            write(g, device, gpa, size, u64::from_le_bytes(buf))
        }
        _ => {
            let mut dst = 0;
            if let Op::Str { op: StrOp::Movs, .. } = i.op {
                // MOVS from the device: the destination must be RAM, and
                // translated before the device is read.
                let la = string_la(g, &i, Gpr::Rdi);
                let access = Access { write: true, user: g.user_mode(), fetch: false };
                match walk(g, la, access) {
                    Ok(at) if g.env.is_ram(at) && (at & 0xfff) + u64::from(size) <= 0x1000 => dst = at,
                    Ok(_) => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
                    Err(e) => return super::fault(g, la, e),
                }
            }
            let read = Read { insn: i, gpa, size, dst };
            match device {
                Device::Apic => {
                    let v = super::apic::page_read(g, gpa, size);
                    finish(g, device, read, v)
                }
                Device::User => {
                    g.cpu.pending = Pending::MmioRead(read);
                    let mmio = uapi::MmioExit { phys_addr: gpa, len: u32::from(size), ..Default::default() };
                    user_exit(g, uapi::PACIFICA_EXIT_MMIO, uapi::ExitData { mmio })
                }
            }
        }
    }
}

/// Finishes the instruction of a userspace device read with the data
/// userspace put in the run page.
pub(super) fn complete_read<E: Env>(g: &mut GuestState<'_, E>, read: Read) -> Flow {
    let v = u64::from_le_bytes(g.env.run_mmio_data());
    finish(g, Device::User, read, v)
}

fn rax() -> Reg {
    Reg { gpr: Gpr::Rax, high_byte: false }
}

/// The size of the instruction's access to its device operand, or `None`
/// for an instruction this emulator does not run.
fn device_size(i: &Insn) -> Option<u8> {
    match i.op {
        Op::Store { size, .. }
        | Op::Load { size, .. }
        | Op::Alu { size, .. }
        | Op::Xchg { size, .. }
        | Op::Bit { size, .. }
        | Op::Str { size, .. } => Some(size),
        _ => None,
    }
}

/// Everything after the read of `v` (`read.insn.op`'s size, at
/// `read.gpa`): registers, flags, RIP, and the write the instruction owes,
/// last.
fn finish<E: Env>(g: &mut GuestState<'_, E>, device: Device, read: Read, v: u64) -> Flow {
    let Read { insn: i, gpa, size, dst } = read;
    let v = insn::extend(v, size, size, Extend::None);
    let mut store = None;
    match i.op {
        Op::Load { dst, dst_size, extend, .. } => {
            g.merge_gpr(dst, insn::extend(v, size, dst_size, extend), dst_size);
        }
        Op::Alu { op, src, to_mem, .. } => {
            let other = insn::store_value(src, size, |r| g.gpr(r));
            let (a, b) = if to_mem { (v, other) } else { (other, v) };
            let cf = g.vmcb.save.rflags & rflags::CF != 0;
            let (res, flags) = insn::alu(op, size, a, b, cf);
            let s = &mut g.vmcb.save;
            s.rflags = (s.rflags & !rflags::STATUS) | flags;
            match (op.writes(), to_mem, src) {
                (true, true, _) => store = Some(res),
                (true, false, Source::Reg(r)) => g.merge_gpr(r, res, size),
                _ => {}
            }
        }
        Op::Xchg { reg, .. } => {
            store = Some(insn::store_value(Source::Reg(reg), size, |r| g.gpr(r)));
            g.merge_gpr(reg, v, size);
        }
        Op::Bit { op, offset, .. } => {
            // A register offset may reach past the operand; the CPU then
            // accesses the word holding the bit, which is `gpa`.
            let n = match offset {
                Source::Reg(r) => insn::store_value(Source::Reg(r), size, |r| g.gpr(r)),
                Source::Imm(n) => n,
            };
            let (new, old) = insn::bit(op, size, v, n);
            let s = &mut g.vmcb.save;
            s.rflags = (s.rflags & !rflags::CF) | if old { rflags::CF } else { 0 };
            if op != insn::BitOp::Test {
                store = Some(new);
            }
        }
        Op::Str { op: StrOp::Lods, .. } => {
            g.merge_gpr(rax(), v, size);
            string_step(g, &i, size, StrOp::Lods);
            return Flow::Continue;
        }
        Op::Str { op: StrOp::Movs, .. } => {
            let bytes = v.to_le_bytes();
            g.env.write(dst, &bytes[..usize::from(size)]);
            g.module_wrote(dst);
            string_step(g, &i, size, StrOp::Movs);
            return Flow::Continue;
        }
        _ => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    }
    advance(g, i.len);
    match store {
        Some(res) => write(g, device, gpa, size, res),
        None => Flow::Continue,
    }
}

/// Writes `size` bytes of `v` to the device at `gpa`: the last step of an
/// instruction, whose registers and RIP are already updated.
fn write<E: Env>(g: &mut GuestState<'_, E>, device: Device, gpa: u64, size: u8, v: u64) -> Flow {
    match device {
        Device::Apic => super::apic::page_write(g, gpa, size, v),
        Device::User => {
            let mmio = uapi::MmioExit { phys_addr: gpa, data: v.to_le_bytes(), len: u32::from(size), is_write: 1, ..Default::default() };
            user_exit(g, uapi::PACIFICA_EXIT_MMIO, uapi::ExitData { mmio })
        }
    }
}

/// Writes `v` to an address register (RSI, RDI, RCX) of `addr_size`: a
/// 32-bit one clears the upper half, a 16-bit one keeps it.
fn set_addr_reg<E: Env>(g: &mut GuestState<'_, E>, r: Gpr, v: u64, addr_size: u8) {
    let old = g.gpr(r);
    let new = match addr_size {
        2 => (old & !0xffff) | (v & 0xffff),
        4 => v & 0xffff_ffff,
        _ => v,
    };
    g.set_gpr(r, new);
}

/// The linear address RSI (source, DS unless overridden) or RDI
/// (destination, always ES) names.
fn string_la<E: Env>(g: &mut GuestState<'_, E>, i: &Insn, index: Gpr) -> u64 {
    let base = if index == Gpr::Rdi {
        segment_base(g, None, SegOverride::Es)
    } else {
        segment_base(g, i.seg, SegOverride::Ds)
    };
    let la = base.wrapping_add(g.gpr(index) & mask(i.addr_size));
    if g.cpu_mode() == insn::CpuMode::Bits64 {
        la
    } else {
        la & 0xffff_ffff
    }
}

/// One element of a string instruction done: RSI and RDI as the
/// instruction uses them move by `size` (down with RFLAGS.DF); with REP,
/// RCX counts down and RIP stays on the instruction until it is zero.
fn string_step<E: Env>(g: &mut GuestState<'_, E>, i: &Insn, size: u8, op: StrOp) {
    let df = g.vmcb.save.rflags & rflags::DF != 0;
    let regs: &[Gpr] = match op {
        StrOp::Movs => &[Gpr::Rsi, Gpr::Rdi],
        StrOp::Stos => &[Gpr::Rdi],
        StrOp::Lods => &[Gpr::Rsi],
    };
    for &r in regs {
        let old = g.gpr(r);
        let new = if df { old.wrapping_sub(u64::from(size)) } else { old.wrapping_add(u64::from(size)) };
        set_addr_reg(g, r, new, i.addr_size);
    }
    if i.rep {
        let left = (g.gpr(Gpr::Rcx) & mask(i.addr_size)).wrapping_sub(1);
        set_addr_reg(g, Gpr::Rcx, left, i.addr_size);
        if left & mask(i.addr_size) != 0 {
            // The next element: the instruction runs again.
            g.vmcb.control.int_state &= !crate::hw::svm::INT_STATE_SHADOW;
            return;
        }
    }
    advance(g, i.len);
}

/// Reads one element of RAM at linear address `la`; `false` if it does
/// not translate to RAM within one page (the guest changed its tables
/// since the CPU read it).
fn ram_read<E: Env>(g: &mut GuestState<'_, E>, la: u64, buf: &mut [u8]) -> bool {
    let access = Access { write: false, user: g.user_mode(), fetch: false };
    match walk(g, la, access) {
        Ok(gpa) if g.env.is_ram(gpa) && (gpa & 0xfff) as usize + buf.len() <= 0x1000 => g.env.read(gpa, buf),
        _ => false,
    }
}

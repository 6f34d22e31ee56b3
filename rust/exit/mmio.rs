// SPDX-License-Identifier: GPL-2.0

//! Nested page faults. Guest RAM is mapped whole when it is registered, so
//! a nested page fault means the guest touched a guest-physical address
//! outside every region: MMIO, served by userspace. Without decode assists
//! the module decodes the faulting MOV itself to learn the size, the
//! direction and the register (APM 15.25.6 gives only the address).

use super::{advance, fetch_insn, internal_error, user_exit, Env, Flow, GuestState, Pending};
use crate::emulate::insn::{self, Extend, Op, Reg};
use crate::hw::svm::{event, npf};
use crate::uapi;

/// An MMIO read waiting for userspace's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Load {
    size: u8,
    dst: Reg,
    dst_size: u8,
    extend: Extend,
    len: u8,
}

/// Handles a nested page fault at `gpa` with NPF error code `error`.
pub(super) fn handle<E: Env>(g: &mut GuestState<'_, E>, gpa: u64, error: u64) -> Flow {
    // An exit while an event was being delivered (its IDT entry or stack in
    // MMIO) is no MOV to emulate.
    if g.vmcb.control.exit_int_info & event::VALID != 0 {
        return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
    }
    if super::apic::owns(g, gpa) && error & npf::FETCH == 0 {
        return super::apic::mmio(g, gpa);
    }
    // A fault on RAM, or on the guest's own page tables, or an instruction
    // fetch from MMIO, is nothing a MOV emulator can serve.
    if error & (npf::FETCH | npf::GUEST_PAGE_TABLE) != 0 || g.env.is_ram(gpa) {
        let sub = if error & npf::FETCH == 0 && g.env.is_ram(gpa) {
            uapi::PACIFICA_INTERNAL_NPF_IN_RAM
        } else {
            uapi::PACIFICA_INTERNAL_EMULATION
        };
        return internal_error(g, sub);
    }
    let i = match fetch_insn(g) {
        Ok(i) => i,
        Err(f) => return f,
    };
    g.count(uapi::PACIFICA_STAT_MMIO);
    let mut mmio = uapi::MmioExit { phys_addr: gpa, ..Default::default() };
    match i.op {
        Op::Store { size, src } => {
            let value = insn::store_value(src, size, |r| g.gpr(r));
            mmio.data = value.to_le_bytes();
            mmio.len = u32::from(size);
            mmio.is_write = 1;
            advance(g, i.len);
        }
        Op::Load { size, dst, dst_size, extend } => {
            mmio.len = u32::from(size);
            g.cpu.pending = Pending::MmioRead(Load { size, dst, dst_size, extend, len: i.len });
        }
        _ => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    }
    user_exit(g, uapi::PACIFICA_EXIT_MMIO, uapi::ExitData { mmio })
}

/// Loads what userspace read into the destination register.
pub(super) fn complete_load<E: Env>(g: &mut GuestState<'_, E>, l: Load) {
    let data = g.env.run_mmio_data();
    let v = insn::extend(u64::from_le_bytes(data), l.size, l.dst_size, l.extend);
    g.merge_gpr(l.dst, v, l.dst_size);
    advance(g, l.len);
}

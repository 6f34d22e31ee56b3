// SPDX-License-Identifier: GPL-2.0

//! The task register on a CPU that mishandles it: QEMU's TCG, the testbed
//! (Documentation/security.rst, "Testbed workarounds").
//!
//! That CPU accepts LTR of a null selector, and aborts at the next
//! interrupt that changes privilege; and it ignores the TASK_SWITCH
//! intercept, so that under shadow paging a task switch would load CR3
//! from the new TSS into the hardware. There the module intercepts LTR and
//! does it itself, as APM Vol. 3 ("LTR") describes, and keeps the page at
//! TR's base read-only under shadow paging (`ShadowMmu::guard_tss`): a
//! task switch stores to that page before it changes anything, and the
//! store faults into [`tss_page_write`].

use super::{
    advance, exception, fetch_insn, fetch_insn_bytes, internal_error, operand_linear_address, read_linear,
    write_linear, Env, Flow, GuestState,
};
use crate::emulate::insn::{self, Op};
use crate::emulate::walk::Access;
use crate::hw::cr::{cr0, rflags};
use crate::hw::seg::{attr, selector, Descriptor};
use crate::hw::svm::{efer, event, vector, Exception};
use crate::hw::vmcb::VmcbSeg;
use crate::policy::msr::is_canonical;
use crate::uapi;

/// The CPU's own accesses to descriptor tables are supervisor accesses.
const SUPERVISOR_READ: Access = Access { write: false, user: false, fetch: false };
const SUPERVISOR_WRITE: Access = Access { write: true, user: false, fetch: false };

/// A fault whose error code is the selector `sel` (APM Vol. 2, 8.4.1).
fn selector_fault(v: u8, sel: u16) -> Exception {
    Exception { vector: v, error_code: Some(u32::from(sel & selector::INDEX_TI)) }
}

/// LTR, intercepted (TR_WRITE).
pub(super) fn ltr<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_OTHER);
    let i = match fetch_insn(g) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let Op::Ltr { gpr } = i.op else {
        return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
    };
    let (pe, vm86, cpl, gdtr) = {
        let s = &g.vmcb.save;
        (s.cr0 & cr0::PE != 0, s.rflags & rflags::VM != 0, s.cpl, s.gdtr)
    };
    if !pe || vm86 {
        return exception(g, Exception::UD);
    }
    if cpl != 0 {
        return exception(g, Exception::GP0);
    }
    let sel = match (gpr, i.mem) {
        (Some(r), _) => g.gpr(r) as u16,
        (None, Some(mem)) => {
            let la = operand_linear_address(g, &i, &mem);
            let mut b = [0u8; 2];
            if let Err(f) = read_linear(g, la, &mut b, SUPERVISOR_READ) {
                return f;
            }
            u16::from_le_bytes(b)
        }
        (None, None) => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    };
    if sel & selector::INDEX_TI == 0 {
        return exception(g, Exception::GP0);
    }
    let gp = selector_fault(vector::GP, sel);
    let long = g.guest_efer() & efer::LMA != 0;
    // In long mode a system descriptor takes sixteen bytes.
    let size: u64 = if long { 16 } else { 8 };
    let off = selector::offset(sel);
    if sel & selector::TI != 0 || off + size - 1 > u64::from(gdtr.limit) {
        return exception(g, gp);
    }
    let la = gdtr.base.wrapping_add(off);
    let mut b = [0u8; 16];
    if let Err(f) = read_linear(g, la, &mut b[..size as usize], SUPERVISOR_READ) {
        return f;
    }
    let mut lo = [0u8; 8];
    lo.copy_from_slice(&b[..8]);
    let d = Descriptor::from_bytes(lo);
    let available = d.is_system(attr::TSS_AVAILABLE) || (!long && d.is_system(attr::TSS16_AVAILABLE));
    if !available {
        return exception(g, gp);
    }
    if !d.present() {
        return exception(g, selector_fault(vector::NP, sel));
    }
    let mut base = d.base();
    if long {
        let upper = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
        // The upper half's type field must be zero, and the base canonical.
        base |= (upper & 0xffff_ffff) << 32;
        if (upper >> 40) & 0x1f != 0 || !is_canonical(base) {
            return exception(g, gp);
        }
    }
    // The CPU marks the descriptor busy with a locked OR, so that of two
    // CPUs loading one TSS the second gets #GP, then loads TR from it.
    let busy = d.with_busy();
    let hi = la.wrapping_add(4);
    let hi = if long { hi } else { hi & 0xffff_ffff };
    let gpa = match super::walk(g, hi, SUPERVISOR_WRITE) {
        Ok(gpa) => gpa,
        Err(e) => return super::fault(g, hi, e),
    };
    let bit = u32::from(attr::TSS_BUSY_BIT) << 8;
    let old = g.env.fetch_or_u32(gpa, bit);
    match old {
        Some(old) if old & bit != 0 => return exception(g, gp),
        Some(_) => {
            g.module_wrote(gpa);
        }
        // A GDT that is not 4-byte aligned: a plain write, which a CPU
        // would have made atomic.
        None => {
            if let Err(f) = write_linear(g, hi, &busy.hi.to_le_bytes(), SUPERVISOR_WRITE) {
                return f;
            }
        }
    }
    let tr = VmcbSeg { selector: sel, attrib: busy.attrib(), limit: d.limit(), base };
    if g.set_tr(tr).is_err() {
        return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
    }
    advance(g, i.len);
    Flow::Continue
}

/// A write fault at `la` on the page at TR's base, which the guest's
/// tables allow (shadow paging on QEMU's TCG; see the module
/// documentation). A MOV into the guest's TSS is done here, and so is the
/// accessed bit the CPU sets in a descriptor that shares the page (a GDT
/// next to the TSS). Anything else is the store a task switch starts with
/// (JMP or CALL to a TSS or task gate, IRET with NT, an interrupt or
/// exception through a task gate), or a write the module does not
/// emulate: the vCPU stops with `PACIFICA_INTERNAL_UNSUPPORTED`, as for
/// the TASK_SWITCH intercept of a CPU that honours it.
pub(super) fn tss_page_write<E: Env>(g: &mut GuestState<'_, E>, la: u64) -> Flow {
    if g.vmcb.control.exit_int_info & event::VALID != 0 {
        return internal_error(g, uapi::PACIFICA_INTERNAL_UNSUPPORTED);
    }
    let (bytes, have) = match fetch_insn_bytes(g) {
        Ok(b) => b,
        Err(f) => return f,
    };
    let store = match insn::decode(&bytes[..have], g.cpu_mode()) {
        Ok(i) => match (i.op, i.mem) {
            (Op::Store { size, src }, Some(mem)) => Some((i, size, src, mem)),
            _ => None,
        },
        Err(_) => None,
    };
    let Some((i, size, src, mem)) = store else {
        return set_accessed(g, la);
    };
    let la = operand_linear_address(g, &i, &mem);
    let value = insn::store_value(src, size, |r| g.gpr(r)).to_le_bytes();
    let access = Access { write: true, user: g.vmcb.save.cpl == 3, fetch: false };
    if let Err(f) = write_linear(g, la, &value[..usize::from(size)], access) {
        return f;
    }
    advance(g, i.len);
    Flow::Continue
}

/// The write at `la` that was no MOV: if `la` is the type byte of a code or
/// data descriptor in the GDT or LDT whose accessed bit is clear, it is
/// the CPU loading that descriptor. The bit is set here, with a locked OR
/// as the CPU's own, and the instruction runs again, finding it set. A
/// second fault at the same byte is something else: unsupported.
fn set_accessed<E: Env>(g: &mut GuestState<'_, E>, la: u64) -> Flow {
    let unsupported = |g: &mut GuestState<'_, E>| internal_error(g, uapi::PACIFICA_INTERNAL_UNSUPPORTED);
    let (gdtr, ldtr) = {
        let s = &g.vmcb.save;
        (s.gdtr, s.ldtr)
    };
    let in_table = |base: u64, limit: u32| {
        let off = la.wrapping_sub(base) & 0xffff_ffff;
        off % 8 == 5 && off + 2 < u64::from(limit) + 1
    };
    let ldt = ldtr.attrib & attr::P != 0 && in_table(ldtr.base, ldtr.limit);
    if !in_table(gdtr.base, gdtr.limit) && !ldt {
        return unsupported(g);
    }
    let mut b = [0u8; 1];
    if let Err(f) = read_linear(g, la, &mut b, SUPERVISOR_READ) {
        return f;
    }
    // Byte 5 holds P, DPL, S and the type; bit 0 of the type is A.
    if b[0] & (attr::S as u8) == 0 || b[0] & (attr::ACCESSED as u8) != 0 {
        return unsupported(g);
    }
    let gpa = match super::walk(g, la, SUPERVISOR_WRITE) {
        Ok(gpa) => gpa,
        Err(e) => return super::fault(g, la, e),
    };
    let shift = 8 * (gpa % 4) as u32;
    if g.env.fetch_or_u32(gpa & !3, u32::from(attr::ACCESSED) << shift).is_none() {
        return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
    }
    g.module_wrote(gpa);
    Flow::Continue
}

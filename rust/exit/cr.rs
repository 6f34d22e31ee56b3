// SPDX-License-Identifier: GPL-2.0

//! Exits of shadow paging: control-register accesses, page faults and
//! INVLPG. Without decode assists the instruction is decoded here (MOV
//! to/from CR0/CR3/CR4, CLTS, LMSW, SMSW).

use super::{advance, exception, fetch_insn, internal_error, mmio, operand_linear_address, Env, Flow, GuestState, ShadowPaging};
use crate::emulate::insn::{CpuMode, Op, Opcode};
use crate::hw::cr::{cr0, cr4, dr};
use crate::hw::svm::efer;
use crate::policy::state;
use crate::emulate::walk::{pf, Access};
use crate::hw::svm::{npf, Exception};
use crate::mm::shadow::{Fault, Refused};
use crate::uapi;

/// A guest read or write of CR0, CR3 or CR4 (or CLTS, LMSW, SMSW).
pub(super) fn access<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_CR);
    let i = match fetch_insn(g) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let long = g.cpu_mode() == crate::emulate::insn::CpuMode::Bits64;
    let width = |v: u64| if long { v } else { v & 0xffff_ffff };
    let crs = g.guest_crs();
    let result = match i.op {
        Op::MovCr { write: false, cr, gpr } => {
            let v = match cr {
                0 => crs.cr0,
                2 => g.vmcb.save.cr2,
                3 => crs.cr3,
                4 => crs.cr4,
                8 => u64::from(g.vmcb.control.v_tpr()),
                _ => return undefined(g),
            };
            g.set_gpr(gpr, width(v));
            Ok(())
        }
        Op::MovCr { write: true, cr, gpr } => {
            let v = width(g.gpr(gpr));
            match cr {
                0 => set_cr0(g, v),
                3 if g.shadow.is_some() => set_cr3(g, v),
                4 => set_cr4(g, v),
                // Intercepted only with an in-kernel APIC (`apic::offer_interrupt`).
                8 if super::apic::set_cr8(g, v) => Ok(()),
                8 if g.cpu.lapic.is_some() => Err(Refused),
                _ => return undefined(g),
            }
        }
        Op::Other(Opcode::Clts) => set_cr0(g, crs.cr0 & !(1 << 3)),
        // LMSW sets PE but cannot clear it, and touches only MP, EM, TS.
        Op::Lmsw { gpr } => {
            let src = g.gpr(gpr) & 0xf;
            set_cr0(g, (crs.cr0 & !0xe) | src | (crs.cr0 & 1))
        }
        Op::Smsw { gpr } => {
            let old = g.gpr(gpr);
            g.set_gpr(gpr, (old & !0xffff) | (crs.cr0 & 0xffff));
            Ok(())
        }
        _ => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    };
    match result {
        Ok(()) => {
            advance(g, i.len);
            Flow::Continue
        }
        Err(Refused) => {
            g.count(uapi::PACIFICA_STAT_GP);
            exception(g, Exception::GP0)
        }
    }
}

/// MOV to or from DR7, the one debug register intercepted (see
/// `VcpuState::set_guest_dr7`). The CPU checked privilege and CR4.DE
/// before the intercept.
pub(super) fn debug_register<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_OTHER);
    let i = match fetch_insn(g) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let long = g.cpu_mode() == CpuMode::Bits64;
    match i.op {
        Op::MovDr { write: true, dr: 7, gpr } => {
            let v = if long { g.gpr(gpr) } else { g.gpr(gpr) & 0xffff_ffff };
            // The upper half of DR7 is reserved (APM Vol. 2, 13.1.1.5).
            if v >> 32 != 0 {
                g.count(uapi::PACIFICA_STAT_GP);
                return exception(g, Exception::GP0);
            }
            g.set_guest_dr7(v | dr::DR7_FIXED);
        }
        Op::MovDr { write: false, dr: 7, gpr } => {
            let v = g.cpu.guest_dr7;
            g.set_gpr(gpr, v);
        }
        _ => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    }
    advance(g, i.len);
    Flow::Continue
}

fn undefined<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_UD);
    exception(g, Exception::UD)
}

/// Applies a change of the shadow MMU's paging registers: `change` returns
/// whether the shadow tables must be rebuilt. If the change is refused, or
/// the rebuild runs out of memory (then the guest gets #GP, and the host
/// stays intact), the guest's registers are put back as they were.
fn change_crs<E: Env>(
    g: &mut GuestState<'_, E>,
    change: impl FnOnce(&mut E::Shadow) -> Result<bool, Refused>,
) -> Result<(), Refused> {
    let m = g.shadow.as_deref_mut().ok_or(Refused)?;
    let saved = m.crs();
    let result = change(m).and_then(|rebuild| if rebuild { m.rebuild().map_err(|_| Refused) } else { Ok(()) });
    if result.is_err() {
        m.restore_crs(saved);
        return result;
    }
    g.shadow_rebuilt();
    Ok(())
}

fn set_cr0<E: Env>(g: &mut GuestState<'_, E>, v: u64) -> Result<(), Refused> {
    // Leaving long mode from 64-bit code is #GP (APM Vol. 2, 14.7).
    if v & cr0::PG == 0 && g.cpu_mode() == CpuMode::Bits64 {
        return Err(Refused);
    }
    if g.shadow.is_none() {
        return npt_set_cr0(g, v);
    }
    change_crs(g, |m| m.set_cr0(v))
}

/// MOV CR0 under nested paging, intercepted while the guest's EFER.LME is
/// hidden from the VMCB (see `VcpuState::lme_hidden`): turning paging on
/// activates long mode here, as the CPU would have.
fn npt_set_cr0<E: Env>(g: &mut GuestState<'_, E>, v: u64) -> Result<(), Refused> {
    let crs = g.guest_crs();
    let mut efer = crs.efer;
    if !state::cr0_valid(v) {
        return Err(Refused);
    }
    if v & cr0::PG != 0 && crs.cr0 & cr0::PG == 0 && efer & efer::LME != 0 {
        // Activating long mode needs PAE (APM 14.6.1).
        if crs.cr4 & cr4::PAE == 0 {
            return Err(Refused);
        }
        efer |= efer::LMA;
    }
    if v & cr0::PG == 0 {
        efer &= !efer::LMA;
    }
    g.vmcb.save.cr0 = v | cr0::ET;
    g.set_npt_efer(efer);
    if (crs.cr0 ^ v) & (cr0::PG | cr0::PE | cr0::WP) != 0 {
        g.request_tlb_flush();
    }
    Ok(())
}

fn set_cr3<E: Env>(g: &mut GuestState<'_, E>, v: u64) -> Result<(), Refused> {
    // Another address space's shadow tables (cached or new); the TLB must
    // forget the old one's translations, as MOV CR3 does.
    let cache = g.env.shadow_caching();
    change_crs(g, |m| m.set_cr3(v, cache).map(|()| false))
}

fn set_cr4<E: Env>(g: &mut GuestState<'_, E>, v: u64) -> Result<(), Refused> {
    let allowed = g.cpu.cr4_allowed;
    if g.shadow.is_some() {
        return change_crs(g, |m| m.set_cr4(v, allowed));
    }
    // Nested paging: only the bits the guest's CPUID offers, and PAE
    // stays on in long mode.
    let crs = g.guest_crs();
    if v & !allowed != 0 || (crs.efer & efer::LMA != 0 && v & cr4::PAE == 0) {
        return Err(Refused);
    }
    g.vmcb.save.cr4 = v;
    // Paging bits changed: the CPU would flush the TLB (APM Vol. 2, 5.5.3).
    if (crs.cr4 ^ v) & (cr4::PSE | cr4::PAE | cr4::PGE | cr4::SMEP | cr4::SMAP) != 0 {
        g.request_tlb_flush();
    }
    Ok(())
}

/// WRMSR EFER under shadow paging, already validated by the MSR policy.
pub(super) fn set_efer<E: Env>(g: &mut GuestState<'_, E>, v: u64) {
    // Out of memory for new tables leaves EFER as it was; the guest's
    // WRMSR then has no effect, which is the best the host can offer.
    let _ = change_crs(g, |m| Ok(m.set_efer(v)));
}

/// A page fault in the guest under shadow paging: a missing or too strict
/// shadow entry, a fault the guest's own tables give, or MMIO.
pub(super) fn page_fault<E: Env>(g: &mut GuestState<'_, E>, error: u64, la: u64) -> Flow {
    g.count(uapi::PACIFICA_STAT_PF);
    // Outside long mode linear addresses are 32 bits, but a segment base
    // can carry more into the address QEMU reports (a TR base loaded in
    // long mode, say): the page is what the low 32 bits name, as for the
    // walk, and so is CR2.
    let la = if g.guest_efer() & efer::LMA == 0 { la & 0xffff_ffff } else { la };
    if error & u64::from(pf::RSV) != 0 {
        // The shadow tables never hold reserved bits.
        return internal_error(g, uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT);
    }
    let access = Access {
        write: error & u64::from(pf::W) != 0,
        user: error & u64::from(pf::U) != 0,
        fetch: error & u64::from(pf::I) != 0,
    };
    let env = g.env;
    let (fault, rebuilt) = match g.shadow.as_deref_mut() {
        Some(m) => {
            let root = m.hw_regs()[1];
            let f = env.shadow_fault(m, la, access);
            (f, m.hw_regs()[1] != root)
        }
        None => return internal_error(g, uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT),
    };
    let flush = g.shadow.as_deref_mut().is_some_and(|m| m.take_flush());
    if rebuilt || flush {
        // The tables filled up and were rebuilt (the old root is freed, so
        // the VMCB must point at the new one before the guest runs again),
        // or entries became read-only: nothing cached from the old entries
        // may survive.
        g.shadow_rebuilt();
    }
    match fault {
        Fault::Mapped { .. } => {
            // The fault already dropped the stale TLB entry for `la`, but a
            // protection upgrade must not meet a cached old one: drop it
            // explicitly in this vCPU's ASID.
            g.flush_tlb_entry(la);
            Flow::Continue
        }
        Fault::Guest(code) => {
            g.vmcb.save.cr2 = la;
            exception(g, Exception::page_fault(code))
        }
        Fault::Mmio(gpa) => {
            let fetch = if access.fetch { npf::FETCH } else { 0 };
            let write = if access.write { npf::WRITE } else { 0 };
            mmio::handle(g, gpa, fetch | write)
        }
        Fault::Guarded => super::seg::tss_page_write(g, la),
        // The shadow MMU resolves these itself; it returns them only if
        // retrying did not converge.
        Fault::TableNotInRam(_) | Fault::NoMemory | Fault::MustProtect(_) | Fault::PageTableWrite(_) => {
            internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION)
        }
    }
}

/// INVLPG under shadow paging: the shadow entry for the address goes, and
/// with it any TLB entry made from it.
pub(super) fn invlpg<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_INVLPG);
    let i = match fetch_insn(g) {
        Ok(i) if i.op == Op::Other(Opcode::Invlpg) => i,
        Ok(_) => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
        Err(f) => return f,
    };
    let Some(mem) = i.mem else {
        return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION);
    };
    let la = operand_linear_address(g, &i, &mem);
    let (all, span) = match g.shadow.as_deref_mut().map(|m| (m.invalidate(la), m.largest_page())) {
        Some((Ok(all), span)) => (all, span),
        _ => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    };
    if all || span > 4096 {
        // New tables, or entries of a whole large page: flush the vCPU's
        // TLB rather than page by page.
        g.shadow_rebuilt();
    } else {
        g.flush_tlb_entry(la);
    }
    advance(g, i.len);
    Flow::Continue
}

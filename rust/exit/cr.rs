// SPDX-License-Identifier: GPL-2.0

//! Exits of shadow paging: control-register accesses, page faults and
//! INVLPG. Without decode assists the instruction is decoded here (MOV
//! to/from CR0/CR3/CR4, CLTS, LMSW, SMSW).

use super::{advance, exception, fetch_insn, internal_error, mmio, operand_linear_address, Flow};
use crate::emulate::insn::{CpuMode, Op, Opcode};
use crate::hw::cr::{cr0, cr4};
use crate::hw::svm::efer;
use crate::policy::state;
use crate::emulate::walk::{pf, Access};
use crate::hw::svm::{int_ctl, npf, Exception};
use crate::mm::shadow::Fault;
use crate::mm::shadow_mmu::{GuestCrs, Refused, ShadowMmu};
use crate::uapi;
use crate::vcpu::{Vcpu, VcpuState};

/// A guest read or write of CR0, CR3 or CR4 (or CLTS, LMSW, SMSW).
pub(super) fn access(vcpu: &Vcpu, st: &mut VcpuState) -> Flow {
    st.count(uapi::PACIFICA_STAT_CR);
    let i = match fetch_insn(vcpu, st) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let long = st.cpu_mode() == crate::emulate::insn::CpuMode::Bits64;
    let width = |v: u64| if long { v } else { v & 0xffff_ffff };
    let crs = guest_crs(st);
    let result = match i.op {
        Op::MovCr { write: false, cr, gpr } => {
            let v = match cr {
                0 => crs.cr0,
                2 => st.vmcb().save.cr2,
                3 => crs.cr3,
                4 => crs.cr4,
                8 => u64::from(st.vmcb().control.int_ctl & int_ctl::V_TPR_MASK),
                _ => return undefined(vcpu, st),
            };
            st.set_gpr(gpr, width(v));
            Ok(())
        }
        Op::MovCr { write: true, cr, gpr } => {
            let v = width(st.gpr(gpr));
            match cr {
                0 => set_cr0(st, v),
                3 if st.shadow.is_some() => set_cr3(vcpu, st, v),
                4 => set_cr4(st, v),
                _ => return undefined(vcpu, st),
            }
        }
        Op::Other(Opcode::Clts) => set_cr0(st, crs.cr0 & !(1 << 3)),
        // LMSW sets PE but cannot clear it, and touches only MP, EM, TS.
        Op::Lmsw { gpr } => {
            let src = st.gpr(gpr) & 0xf;
            set_cr0(st, (crs.cr0 & !0xe) | src | (crs.cr0 & 1))
        }
        Op::Smsw { gpr } => {
            let old = st.gpr(gpr);
            st.set_gpr(gpr, (old & !0xffff) | (crs.cr0 & 0xffff));
            Ok(())
        }
        _ => return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION),
    };
    match result {
        Ok(()) => {
            advance(st, i.len);
            Flow::Continue
        }
        Err(Refused) => {
            st.count(uapi::PACIFICA_STAT_GP);
            exception(vcpu, st, Exception::GP0)
        }
    }
}

/// MOV to or from DR7, the one debug register intercepted (see
/// `VcpuState::set_guest_dr7`). The CPU checked privilege and CR4.DE
/// before the intercept.
pub(super) fn debug_register(vcpu: &Vcpu, st: &mut VcpuState) -> Flow {
    st.count(uapi::PACIFICA_STAT_OTHER);
    let i = match fetch_insn(vcpu, st) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let long = st.cpu_mode() == CpuMode::Bits64;
    match i.op {
        Op::MovDr { write: true, dr: 7, gpr } => {
            let v = if long { st.gpr(gpr) } else { st.gpr(gpr) & 0xffff_ffff };
            // The upper half of DR7 is reserved (APM Vol. 2, 13.1.1.5).
            if v >> 32 != 0 {
                st.count(uapi::PACIFICA_STAT_GP);
                return exception(vcpu, st, Exception::GP0);
            }
            st.set_guest_dr7(v | 0x400);
        }
        Op::MovDr { write: false, dr: 7, gpr } => {
            let v = st.guest_dr7;
            st.set_gpr(gpr, v);
        }
        _ => return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION),
    }
    advance(st, i.len);
    Flow::Continue
}

fn undefined(vcpu: &Vcpu, st: &mut VcpuState) -> Flow {
    st.count(uapi::PACIFICA_STAT_UD);
    exception(vcpu, st, Exception::UD)
}

/// Applies a change of the shadow MMU's paging registers: `change` returns
/// whether the shadow tables must be rebuilt. If the change is refused, or
/// the rebuild runs out of memory (then the guest gets #GP, and the host
/// stays intact), the guest's registers are put back as they were.
fn change_crs(
    st: &mut VcpuState,
    change: impl FnOnce(&mut ShadowMmu) -> Result<bool, Refused>,
) -> Result<(), Refused> {
    let m = st.shadow.as_mut().ok_or(Refused)?;
    let saved = m.crs;
    let result = change(m).and_then(|rebuild| if rebuild { m.reset().map_err(|_| Refused) } else { Ok(()) });
    if result.is_err() {
        m.crs = saved;
        return result;
    }
    st.shadow_rebuilt();
    Ok(())
}

/// The guest's CR0, CR3, CR4 and EFER: the shadow MMU's, or (nested
/// paging) the VMCB's with a hidden EFER.LME put back.
fn guest_crs(st: &mut VcpuState) -> GuestCrs {
    if let Some(m) = &st.shadow {
        return m.crs;
    }
    let efer = st.guest_efer();
    let s = &st.vmcb().save;
    GuestCrs { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer }
}

fn set_cr0(st: &mut VcpuState, v: u64) -> Result<(), Refused> {
    // Leaving long mode from 64-bit code is #GP (APM Vol. 2, 14.7).
    if v & cr0::PG == 0 && st.cpu_mode() == CpuMode::Bits64 {
        return Err(Refused);
    }
    if st.shadow.is_none() {
        return npt_set_cr0(st, v);
    }
    change_crs(st, |m| m.set_cr0(v))
}

/// MOV CR0 under nested paging, intercepted while the guest's EFER.LME is
/// hidden from the VMCB (see `VcpuState::lme_hidden`): turning paging on
/// activates long mode here, as the CPU would have.
fn npt_set_cr0(st: &mut VcpuState, v: u64) -> Result<(), Refused> {
    let crs = guest_crs(st);
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
    st.vmcb().save.cr0 = v | cr0::ET;
    st.set_npt_efer(efer);
    if (crs.cr0 ^ v) & (cr0::PG | cr0::PE | cr0::WP) != 0 {
        st.request_tlb_flush();
    }
    Ok(())
}

fn set_cr3(vcpu: &Vcpu, st: &mut VcpuState, v: u64) -> Result<(), Refused> {
    // Another address space's shadow tables (cached or new); the TLB must
    // forget the old one's translations, as MOV CR3 does.
    let cache = ShadowMmu::caching_allowed(vcpu.vm.nr_vcpus());
    change_crs(st, |m| m.set_cr3(v, cache).map(|()| false))
}

fn set_cr4(st: &mut VcpuState, v: u64) -> Result<(), Refused> {
    let allowed = st.cr4_allowed;
    if st.shadow.is_some() {
        return change_crs(st, |m| m.set_cr4(v, allowed));
    }
    // Nested paging: only the bits the guest's CPUID offers, and PAE
    // stays on in long mode.
    let crs = guest_crs(st);
    if v & !allowed != 0 || (crs.efer & efer::LMA != 0 && v & cr4::PAE == 0) {
        return Err(Refused);
    }
    st.vmcb().save.cr4 = v;
    // Paging bits changed: the CPU would flush the TLB (APM Vol. 2, 5.5.3).
    if (crs.cr4 ^ v) & (cr4::PSE | cr4::PAE | cr4::PGE | cr4::SMEP | cr4::SMAP) != 0 {
        st.request_tlb_flush();
    }
    Ok(())
}

/// WRMSR EFER under shadow paging, already validated by the MSR policy.
pub(super) fn set_efer(st: &mut VcpuState, v: u64) {
    // Out of memory for new tables leaves EFER as it was; the guest's
    // WRMSR then has no effect, which is the best the host can offer.
    let _ = change_crs(st, |m| Ok(m.set_efer(v)));
}

/// A page fault in the guest under shadow paging: a missing or too strict
/// shadow entry, a fault the guest's own tables give, or MMIO.
pub(super) fn page_fault(vcpu: &Vcpu, st: &mut VcpuState, error: u64, la: u64) -> Flow {
    st.count(uapi::PACIFICA_STAT_PF);
    // Outside long mode linear addresses are 32 bits, but a segment base
    // can carry more into the address QEMU reports (a TR base loaded in
    // long mode, say): the page is what the low 32 bits name, as for the
    // walk, and so is CR2.
    let la = if st.guest_efer() & efer::LMA == 0 { la & 0xffff_ffff } else { la };
    if error & u64::from(pf::RSV) != 0 {
        // The shadow tables never hold reserved bits.
        return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT);
    }
    let access = Access {
        write: error & u64::from(pf::W) != 0,
        user: error & u64::from(pf::U) != 0,
        fetch: error & u64::from(pf::I) != 0,
    };
    let (fault, rebuilt) = {
        let mem = vcpu.vm.mem.lock();
        match st.shadow.as_mut() {
            Some(m) => {
                let root = m.hw_cr3();
                let f = m.fault(&mem, la, access);
                (f, m.hw_cr3() != root)
            }
            None => return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT),
        }
    };
    let flush = st.shadow.as_mut().is_some_and(|m| m.take_flush());
    if rebuilt || flush {
        // The tables filled up and were rebuilt (the old root is freed, so
        // the VMCB must point at the new one before the guest runs again),
        // or entries became read-only: nothing cached from the old entries
        // may survive.
        st.shadow_rebuilt();
    }
    match fault {
        Fault::Mapped { .. } => {
            // The fault already dropped the stale TLB entry for `la`, but a
            // protection upgrade must not meet a cached old one: drop it
            // explicitly in this vCPU's ASID.
            st.flush_tlb_entry(la);
            Flow::Continue
        }
        Fault::Guest(code) => {
            st.vmcb().save.cr2 = la;
            exception(vcpu, st, Exception::page_fault(code))
        }
        Fault::Mmio(gpa) => {
            let fetch = if access.fetch { npf::FETCH } else { 0 };
            mmio::handle(vcpu, st, gpa, fetch)
        }
        Fault::Guarded => super::seg::tss_page_write(vcpu, st, la),
        // The shadow MMU resolves these itself; it returns them only if
        // retrying did not converge.
        Fault::TableNotInRam(_) | Fault::NoMemory | Fault::MustProtect(_) | Fault::PageTableWrite(_) => {
            internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION)
        }
    }
}

/// INVLPG under shadow paging: the shadow entry for the address goes, and
/// with it any TLB entry made from it.
pub(super) fn invlpg(vcpu: &Vcpu, st: &mut VcpuState) -> Flow {
    st.count(uapi::PACIFICA_STAT_INVLPG);
    let i = match fetch_insn(vcpu, st) {
        Ok(i) if i.op == Op::Other(Opcode::Invlpg) => i,
        Ok(_) => return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION),
        Err(f) => return f,
    };
    let Some(mem) = i.mem else {
        return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION);
    };
    let la = operand_linear_address(st, &i, &mem);
    let (all, span) = match st.shadow.as_mut().map(|m| (m.invalidate(la), m.largest_page())) {
        Some((Ok(all), span)) => (all, span),
        _ => return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION),
    };
    if all || span > 4096 {
        // New tables, or entries of a whole large page: flush the vCPU's
        // TLB rather than page by page.
        st.shadow_rebuilt();
    } else {
        st.flush_tlb_entry(la);
    }
    advance(st, i.len);
    Flow::Continue
}

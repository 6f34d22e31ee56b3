// SPDX-License-Identifier: GPL-2.0

//! CPUID, RDMSR/WRMSR and VMMCALL: answered in the kernel, by the policies
//! in `policy/`.

use super::{exception, skip, user_exit, Env, Flow, GuestState, Pending};
use crate::emulate::insn::Opcode;
use crate::hw::gpr::Gpr;
use crate::hw::svm::Exception;
use crate::policy::{cpuid, msr};
use crate::uapi;

const EFER_SVME: u64 = crate::hw::svm::efer::SVME;

/// CPUID: the filtered host answer.
pub(super) fn cpuid<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_CPUID);
    let leaf = g.gpr(Gpr::Rax) as u32;
    let subleaf = g.gpr(Gpr::Rcx) as u32;
    let kind = cpuid::GuestKind { vcpu_id: g.env.vcpu_id(), shadow: g.shadow.is_some(), lapic: g.cpu.lapic.is_some(),
        tsc_deadline: g.cpu.lapic.as_ref().is_some_and(|a| a.tsc_deadline_allowed()),
    };
    let r = cpuid::guest_cpuid(leaf, subleaf, kind, |l, s| g.env.host_cpuid(l, s));
    if let Err(f) = skip(g, Opcode::Cpuid) {
        return f;
    }
    // CPUID writes the low 32 bits and clears the high ones.
    g.set_gpr(Gpr::Rax, u64::from(r[0]));
    g.set_gpr(Gpr::Rbx, u64::from(r[1]));
    g.set_gpr(Gpr::Rcx, u64::from(r[2]));
    g.set_gpr(Gpr::Rdx, u64::from(r[3]));
    Flow::Continue
}

/// RDMSR or WRMSR of an intercepted MSR.
pub(super) fn msr<E: Env>(g: &mut GuestState<'_, E>, nr: u32, write: bool) -> Flow {
    g.count(uapi::PACIFICA_STAT_MSR);
    let value = (g.gpr(Gpr::Rdx) << 32) | (g.gpr(Gpr::Rax) & 0xffff_ffff);
    if let Some(flow) = super::apic::msr(g, nr, value, write) {
        return flow;
    }
    let host_tsc = g.env.host_tsc();
    let guest = g.paging_state();
    let v = &mut *g.vmcb;
    let cr0 = guest.cr0;
    // Under shadow paging the guest's EFER is the shadow MMU's.
    let (mut efer, mut g_pat, mut tsc_offset) = (guest.efer | EFER_SVME, v.save.g_pat, v.control.tsc_offset);
    let s = &v.save;
    let mut bases = [s.fs.base, s.gs.base, s.kernel_gs_base, s.lstar, s.cstar];
    let [fs, gs, kgs, lstar, cstar] = &mut bases;
    let mut state = msr::MsrState {
        efer: &mut efer,
        cr0,
        g_pat: &mut g_pat,
        tsc_offset: &mut tsc_offset,
        host_tsc,
        bases: [fs, gs, kgs, lstar, cstar],
    };
    let result = if write {
        msr::write(nr, value, &mut state).then_some(None)
    } else {
        msr::read(nr, &state).map(Some)
    };
    let Some(read) = result else {
        g.count(uapi::PACIFICA_STAT_GP);
        return exception(g, Exception::GP0);
    };
    let opcode = if write { Opcode::Wrmsr } else { Opcode::Rdmsr };
    if let Err(f) = skip(g, opcode) {
        return f;
    }
    if g.shadow.is_some() {
        super::cr::set_efer(g, efer);
    } else {
        g.set_npt_efer(efer & !EFER_SVME);
    }
    let v = &mut *g.vmcb;
    v.save.g_pat = g_pat;
    v.control.tsc_offset = tsc_offset;
    [v.save.fs.base, v.save.gs.base, v.save.kernel_gs_base, v.save.lstar, v.save.cstar] = bases;
    if let Some(val) = read {
        g.set_gpr(Gpr::Rax, val & 0xffff_ffff);
        g.set_gpr(Gpr::Rdx, val >> 32);
    }
    Flow::Continue
}

/// VMMCALL: [`uapi::PACIFICA_HC_PING`] is answered here; every other
/// number goes to userspace.
pub(super) fn vmmcall<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_VMMCALL);
    if let Err(f) = skip(g, Opcode::Vmmcall) {
        return f;
    }
    let nr = g.gpr(Gpr::Rax);
    if nr == uapi::PACIFICA_HC_PING {
        g.set_gpr(Gpr::Rax, 0);
        return Flow::Continue;
    }
    let args = [g.gpr(Gpr::Rbx), g.gpr(Gpr::Rcx), g.gpr(Gpr::Rdx), g.gpr(Gpr::Rsi)];
    g.cpu.pending = Pending::Hypercall;
    let hypercall = uapi::HypercallExit { nr, args, ret: 0 };
    user_exit(g, uapi::PACIFICA_EXIT_HYPERCALL, uapi::ExitData { hypercall })
}

// SPDX-License-Identifier: GPL-2.0

//! The in-kernel local APIC's side of the exits (`irq/lapic.rs` is the
//! model): its xAPIC page reached through nested or shadow page faults,
//! IA32_APIC_BASE and the x2APIC MSRs, CR8 writes while the TPR holds an
//! interrupt back, and the offer of the next deliverable vector before
//! each VMRUN (Documentation/interrupts.rst).

use super::{advance, exception, fetch_insn, internal_error, skip, Env, Flow, GuestState};
use crate::emulate::insn::{self, Op, Opcode};
use crate::hw::apic::{lvt, reg};
use crate::hw::gpr::Gpr;
use crate::hw::msr;
use crate::hw::cr::rflags;
use crate::hw::svm::{cr_write_intercept, event, int_ctl, Exception, INT_STATE_SHADOW};
use crate::irq::lapic::{Effect, Icr, Lapic};
use crate::uapi;

/// Whether `gpa` lies in the xAPIC page of an enabled in-kernel APIC.
pub(super) fn owns<E: Env>(g: &GuestState<'_, E>, gpa: u64) -> bool {
    g.cpu.lapic.as_ref().and_then(Lapic::mmio_base).is_some_and(|b| gpa & !0xfff == b)
}

/// A guest access to the xAPIC page at `gpa` (a MOV, decoded here as for
/// MMIO). Registers are 32-bit at 16-byte boundaries: a write of another
/// size or place is dropped, a read of part of a register gets those
/// bytes, anything else reads 0 (as on KVM).
pub(super) fn mmio<E: Env>(g: &mut GuestState<'_, E>, gpa: u64) -> Flow {
    g.count(uapi::PACIFICA_STAT_APIC_ACCESS);
    let i = match fetch_insn(g) {
        Ok(i) => i,
        Err(f) => return f,
    };
    let off = (gpa & 0xfff) as u32;
    let (reg_off, byte) = (off & !0xf, off & 0xf);
    let now = g.env.now_ns();
    match i.op {
        Op::Store { size, src } => {
            let v = insn::store_value(src, size, |r| g.gpr(r)) as u32;
            let effect = match g.cpu.lapic.as_mut() {
                Some(a) if size == 4 && byte == 0 => a.write(reg_off, v, now).unwrap_or(Effect::None),
                _ => Effect::None,
            };
            apply(g, effect);
        }
        Op::Load { size, dst, dst_size, extend } => {
            let word = g.cpu.lapic.as_ref().and_then(|a| a.read(reg_off, now).ok()).unwrap_or(0);
            let v = if byte + u32::from(size) <= 4 {
                (u64::from(word) >> (8 * byte)) & (u64::MAX >> (64 - 8 * u32::from(size)))
            } else {
                0
            };
            let v = insn::extend(v, size, dst_size, extend);
            g.merge_gpr(dst, v, dst_size);
        }
        _ => return internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    }
    advance(g, i.len);
    Flow::Continue
}

/// RDMSR or WRMSR of IA32_APIC_BASE or an x2APIC register, when the vCPU
/// has an in-kernel APIC; `None` for every other MSR (and without one).
pub(super) fn msr<E: Env>(g: &mut GuestState<'_, E>, nr: u32, value: u64, write: bool) -> Option<Flow> {
    let now = g.env.now_ns();
    let maxphyaddr = g.env.maxphyaddr();
    let a = g.cpu.lapic.as_mut()?;
    let mut effect = Effect::None;
    let result = match nr {
        msr::APIC_BASE if write => a.set_apic_base(value, maxphyaddr).map(|()| None),
        msr::APIC_BASE => Ok(Some(a.apic_base())),
        msr::X2APIC_BASE..=msr::X2APIC_LAST if write => a.write_msr(nr, value, now).map(|e| {
            effect = e;
            None
        }),
        msr::X2APIC_BASE..=msr::X2APIC_LAST => a.read_msr(nr, now).map(Some),
        _ => return None,
    };
    g.count(uapi::PACIFICA_STAT_APIC_ACCESS);
    let Ok(read) = result else {
        g.count(uapi::PACIFICA_STAT_GP);
        return Some(exception(g, Exception::GP0));
    };
    let opcode = if write { Opcode::Wrmsr } else { Opcode::Rdmsr };
    if let Err(f) = skip(g, opcode) {
        return Some(f);
    }
    if let Some(v) = read {
        g.set_gpr(Gpr::Rax, v & 0xffff_ffff);
        g.set_gpr(Gpr::Rdx, v >> 32);
    }
    apply(g, effect);
    Some(Flow::Continue)
}

/// Acts on what an APIC register write asks for, and keeps V_TPR (the
/// guest's CR8) the TPR's class, whichever way the TPR was written.
fn apply<E: Env>(g: &mut GuestState<'_, E>, effect: Effect) {
    if let Some(a) = g.cpu.lapic.as_ref() {
        g.vmcb.control.set_v_tpr(a.tpr() >> 4);
    }
    match effect {
        Effect::None => {}
        // The timer's expiry is not wired yet (Documentation/interrupts.rst).
        Effect::TimerChanged => {}
        // Only edge-triggered vectors reach the APIC so far (self-IPIs):
        // there is no IOAPIC to tell.
        Effect::LevelEoi(_) => {}
        Effect::Ipi(icr) => deliver_ipi(g, icr),
    }
}

/// An interrupt command the model did not deliver itself. With one vCPU
/// per VM as yet, only fixed interrupts this vCPU is a destination of
/// arrive; the rest (other vCPUs, NMI, INIT, STARTUP) come with the SMP
/// issue and are dropped.
fn deliver_ipi<E: Env>(g: &mut GuestState<'_, E>, icr: Icr) {
    let Some(a) = g.cpu.lapic.as_mut() else { return };
    if icr.delivery != lvt::DM_FIXED && icr.delivery != lvt::DM_LOWEST {
        return;
    }
    let me = if a.x2apic() { g.env.vcpu_id() } else { a.read(reg::ID, 0).unwrap_or(0) >> 24 };
    let broadcast = if a.x2apic() { 0xffff_ffff } else { 0xff };
    let to_me = match icr.shorthand {
        lvt::SHORTHAND_ALL => true,
        lvt::SHORTHAND_OTHERS => false,
        _ => !icr.logical && (icr.dest == me || icr.dest == broadcast),
    };
    if to_me {
        a.request(icr.vector, icr.level);
    }
}

/// MOV to CR8, intercepted while the TPR holds a requested vector back:
/// the TPR's bits 7:4, in V_TPR and the APIC.
pub(super) fn set_cr8<E: Env>(g: &mut GuestState<'_, E>, v: u64) -> bool {
    let Some(a) = g.cpu.lapic.as_mut() else { return false };
    if v > 0xf {
        return false;
    }
    a.set_tpr((v as u32) << 4);
    g.vmcb.control.set_v_tpr(v as u32);
    true
}

/// The guest may have written CR8 (V_TPR) without an exit, and
/// SET_SREGS writes it: the APIC's TPR follows, keeping its low bits when
/// the class did not change. Called first on every exit and by SET_SREGS;
/// every write of the TPR itself sets V_TPR ([`apply`], [`set_cr8`]), so
/// the two agree at every entry.
pub(crate) fn sync_tpr<E: Env>(g: &mut GuestState<'_, E>) {
    let Some(a) = g.cpu.lapic.as_mut() else { return };
    let v_tpr = g.vmcb.control.v_tpr();
    if v_tpr != a.tpr() >> 4 {
        a.set_tpr(v_tpr << 4);
    }
}

/// After each #VMEXIT, before anything else: the vector offered through
/// V_IRQ at the entry (see [`offer_interrupt`]) was taken if the CPU cleared V_IRQ
/// without the exit interrupting its delivery (EXITINTINFO): it moves
/// from IRR to ISR. A refused VMRUN took nothing.
pub(crate) fn after_exit<E: Env>(g: &mut GuestState<'_, E>) {
    sync_tpr(g);
    let offered = g.cpu.virq.take();
    let c = &mut g.vmcb.control;
    if crate::testbed::is_vmexit_invalid(c.exit_code) {
        return;
    }
    let Some(a) = g.cpu.lapic.as_mut() else { return };
    // An interrupt whose delivery the exit interrupted (EXITINTINFO: only
    // the APIC's vectors are interrupts here) was not delivered: it stays
    // requested, and the next entry offers it again (or a higher one)
    // through V_IRQ rather than EVENTINJ, which the run loop set from
    // EXITINTINFO. (QEMU's TCG delivers an interrupt injected through
    // EVENTINJ inside VMRUN, and was seen to deliver one twice.)
    let info = c.exit_int_info;
    if info & event::VALID != 0 && info & (7 << event::TYPE_SHIFT) == event::TYPE_INTR {
        let v = (info & event::VECTOR_MASK) as u8;
        if !a.irr.contains(v) {
            a.isr.clear(v);
            a.irr.set(v);
        }
        c.int_ctl &= !int_ctl::V_IRQ;
        c.event_inj = 0;
        return;
    }
    if let Some(v) = offered {
        if c.int_ctl & int_ctl::V_IRQ == 0 {
            a.acknowledge(v);
            g.cpu.count(uapi::PACIFICA_STAT_IRQ_INJECTED);
        }
    }
}

/// Before each VMRUN: the highest deliverable vector is offered to the
/// guest as a virtual interrupt (V_IRQ with its vector and priority, TPR
/// already applied), which the CPU delivers itself as soon as the guest
/// can take it: RFLAGS.IF set, no interrupt shadow, after any event being
/// injected. [`after_exit`] sees whether it was taken. (KVM injects
/// through EVENTINJ, with an interrupt-window exit whenever the guest
/// cannot take the interrupt yet; on the testbed QEMU's TCG occasionally
/// delivered an interrupt injected that way twice, while V_IRQ needs no
/// window exit at all.) CR8 writes are
/// intercepted only while the TPR holds a requested vector back, so that
/// lowering CR8 delivers it at once.
pub(crate) fn offer_interrupt<E: Env>(g: &mut GuestState<'_, E>) {
    let Some(a) = g.cpu.lapic.as_mut() else { return };
    let c = &mut g.vmcb.control;
    let pending = a.deliverable();
    let blocked_by_tpr = pending.is_none() && a.irr.highest().is_some_and(|v| u32::from(v) >> 4 <= a.tpr() >> 4);
    c.intercept_if(cr_write_intercept(8), blocked_by_tpr);
    let prio = 0xf << int_ctl::V_INTR_PRIO_SHIFT;
    c.int_ctl &= !(int_ctl::V_IRQ | int_ctl::V_IGN_TPR | prio);
    let Some(v) = pending else { return };
    c.int_vector = u32::from(v);
    c.int_ctl |= int_ctl::V_IRQ | int_ctl::V_IGN_TPR | ((u32::from(v) >> 4) << int_ctl::V_INTR_PRIO_SHIFT);
    let s = &g.vmcb.save;
    if s.rflags & rflags::IF == 0 || c.int_state & INT_STATE_SHADOW != 0 {
        g.cpu.count(uapi::PACIFICA_STAT_IRQ_WINDOW);
    }
    g.cpu.virq = Some(v);
}

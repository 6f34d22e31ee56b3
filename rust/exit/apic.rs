// SPDX-License-Identifier: GPL-2.0

//! The in-kernel local APIC's side of the exits (`irq/lapic.rs` is the
//! model): its xAPIC page reached through nested or shadow page faults,
//! IA32_APIC_BASE, IA32_TSC_DEADLINE and the x2APIC MSRs, CR8 writes while
//! the TPR holds an interrupt back, what other threads left in the inbox
//! (`irq/inbox.rs`), the LINT pins, NMI delivery and blocking, a userspace
//! PIC's interrupts (INTA exits), and the offer of the next interrupt
//! before each VMRUN (Documentation/interrupts.rst).

use super::state::Offered;
use super::{exception, skip, user_exit, Env, Flow, GuestState, Pending};
use crate::emulate::insn::Opcode;
use crate::hw::apic::{lvt, reg};
use crate::hw::gpr::Gpr;
use crate::hw::msr;
use crate::hw::cr::rflags;
use crate::hw::svm::{cr_write_intercept, event, int_ctl, intercept, vector, Exception, INT_STATE_SHADOW};
use crate::irq::inbox::{Inbox, LINT0, LINT1};
use crate::irq::lapic::{Effect, Icr, Lapic, Lvt};
use crate::uapi;

/// Whether `gpa` lies in the xAPIC page of an enabled in-kernel APIC.
pub(super) fn owns<E: Env>(g: &GuestState<'_, E>, gpa: u64) -> bool {
    g.cpu.lapic.as_ref().and_then(Lapic::mmio_base).is_some_and(|b| gpa & !0xfff == b)
}

/// A guest read of `size` bytes at `gpa` in the xAPIC page (the MMIO
/// emulator, `mmio.rs`, decodes the instruction). Registers are 32-bit at
/// 16-byte boundaries: a read of part of a register gets those bytes,
/// anything else reads 0 (as on KVM).
pub(super) fn page_read<E: Env>(g: &mut GuestState<'_, E>, gpa: u64, size: u8) -> u64 {
    let off = (gpa & 0xfff) as u32;
    let (reg_off, byte) = (off & !0xf, off & 0xf);
    let now = g.env.now_ns();
    let word = g.cpu.lapic.as_ref().and_then(|a| a.read(reg_off, now).ok()).unwrap_or(0);
    if byte + u32::from(size) <= 4 {
        (u64::from(word) >> (8 * byte)) & (u64::MAX >> (64 - 8 * u32::from(size)))
    } else {
        0
    }
}

/// A guest write of `size` bytes of `value` at `gpa` in the xAPIC page,
/// the last step of its instruction. A write of another size than 4 or
/// off a register's start is dropped.
pub(super) fn page_write<E: Env>(g: &mut GuestState<'_, E>, gpa: u64, size: u8, value: u64) -> Flow {
    let off = (gpa & 0xfff) as u32;
    let (reg_off, byte) = (off & !0xf, off & 0xf);
    let now = g.env.now_ns();
    let effect = match g.cpu.lapic.as_mut() {
        Some(a) if size == 4 && byte == 0 => a.write(reg_off, value as u32, now).unwrap_or(Effect::None),
        _ => Effect::None,
    };
    if size == 4 && byte == 0 {
        count_write(g, reg_off);
    }
    apply(g, effect)
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
        // Without TSC-deadline in CPUID the MSR does not exist (#GP).
        msr::TSC_DEADLINE if !a.tsc_deadline_allowed() => Err(crate::irq::lapic::Refused),
        msr::TSC_DEADLINE if write => {
            effect = a.write_tsc_deadline(value);
            Ok(None)
        }
        msr::TSC_DEADLINE => Ok(Some(a.read_tsc_deadline())),
        msr::X2APIC_BASE..=msr::X2APIC_LAST if write => a.write_msr(nr, value, now).map(|e| {
            effect = e;
            None
        }),
        msr::X2APIC_BASE..=msr::X2APIC_LAST => a.read_msr(nr, now).map(Some),
        _ => return None,
    };
    g.count(uapi::PACIFICA_STAT_APIC_ACCESS);
    if write && result.is_ok() {
        match nr {
            msr::TSC_DEADLINE => count_write(g, reg::LVTT),
            msr::X2APIC_BASE..=msr::X2APIC_LAST => count_write(g, (nr - msr::X2APIC_BASE) << 4),
            _ => {}
        }
    }
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
    Some(apply(g, effect))
}

/// Counts a write of the register at `off` by kind.
fn count_write<E: Env>(g: &mut GuestState<'_, E>, off: u32) {
    match off {
        reg::EOI => g.count(uapi::PACIFICA_STAT_APIC_EOI),
        reg::ICR => g.count(uapi::PACIFICA_STAT_APIC_ICR),
        reg::LVTT | reg::TMICT | reg::TDCR => g.count(uapi::PACIFICA_STAT_APIC_TIMER),
        _ => {}
    }
}

/// Acts on what an APIC register write asks for, and keeps V_TPR (the
/// guest's CR8) the TPR's class, whichever way the TPR was written. The
/// instruction is complete: a level-triggered EOI's exit to userspace
/// resumes after it.
fn apply<E: Env>(g: &mut GuestState<'_, E>, effect: Effect) -> Flow {
    if let Some(a) = g.cpu.lapic.as_ref() {
        g.vmcb.control.set_v_tpr(a.tpr() >> 4);
    }
    match effect {
        // The run loop arms the host timer for the new deadline before
        // the next entry (`Vcpu::service_timer`).
        Effect::None | Effect::TimerChanged => Flow::Continue,
        Effect::LevelEoi(v) => {
            g.count(uapi::PACIFICA_STAT_LEVEL_EOI);
            g.cpu.exit_rip = g.vmcb.save.rip;
            let eoi = uapi::EoiExit { vector: u32::from(v), pad: 0 };
            let mut data = uapi::ExitData { pad: [0; 256] };
            data.eoi = eoi;
            user_exit(g, uapi::PACIFICA_EXIT_EOI, data)
        }
        Effect::Ipi(icr) => {
            deliver_ipi(g, icr);
            Flow::Continue
        }
    }
}

/// An interrupt command the model did not deliver itself. With one vCPU
/// per VM as yet, only interrupts this vCPU is a destination of arrive:
/// fixed and lowest priority (as fixed), and NMI; the rest (other vCPUs,
/// INIT, STARTUP) come with the SMP issue and are dropped.
fn deliver_ipi<E: Env>(g: &mut GuestState<'_, E>, icr: Icr) {
    let Some(a) = g.cpu.lapic.as_mut() else { return };
    let d = a.destination();
    let to_me = match icr.shorthand {
        lvt::SHORTHAND_ALL => true,
        lvt::SHORTHAND_OTHERS => false,
        _ => d.accepts(icr.dest, icr.logical) || (!d.enabled && !icr.logical && icr.dest == d.id),
    };
    if !to_me {
        return;
    }
    match icr.delivery {
        lvt::DM_FIXED | lvt::DM_LOWEST => {
            a.request(icr.vector, icr.level);
        }
        lvt::DM_NMI => post_nmi(g),
        _ => {}
    }
}

/// An NMI arrives (one waits at most: a second one while one waits is
/// the same NMI, as the CPU's latch).
fn post_nmi<E: Env>(g: &mut GuestState<'_, E>) {
    if g.cpu.nmi.masked && !g.cpu.nmi.pending {
        g.count(uapi::PACIFICA_STAT_NMI_WINDOW);
    }
    g.cpu.nmi.pending = true;
}

/// What other threads left in the vCPU's inbox, when they kicked it
/// (`kicked`): fixed vectors go into the IRR, an NMI waits for delivery,
/// the LINT pins' rising edges act. The pins' levels act as their LVT
/// entries say every time (the guest may have changed an entry), and the
/// APIC's destination is published for senders when it changed. Called
/// by the run loop before every entry and while the vCPU halts.
pub(crate) fn take_inbox<E: Env>(g: &mut GuestState<'_, E>, inbox: &Inbox, kicked: bool) {
    let Some(a) = g.cpu.lapic.as_mut() else { return };
    let dest = a.destination();
    if inbox.destination() != dest {
        inbox.publish(dest);
    }
    let mut rising = 0;
    if kicked {
        let taken = inbox.take(|v, level| {
            a.request(v, level);
        });
        rising = inbox.take_lint_rising();
        if taken.nmi {
            post_nmi(g);
        }
    }
    lint(g, inbox.lint_levels(), rising);
}

/// The LINT pins at `levels`. LINT0 in ExtINT mode is a userspace PIC's
/// INTR line, level-sensitive; NMI and fixed entries act on a rising edge.
/// A hardware-disabled APIC passes LINT0 through as INTR and LINT1 as NMI
/// (SDM 11.4.3, "virtual wire").
fn lint<E: Env>(g: &mut GuestState<'_, E>, levels: u32, rising: u32) {
    let Some(a) = g.cpu.lapic.as_mut() else { return };
    let mut extint = false;
    let mut nmi = false;
    for (pin, which, disabled_mode) in [(LINT0, Lvt::Lint0, lvt::DM_EXTINT), (LINT1, Lvt::Lint1, lvt::DM_NMI)] {
        let e = a.lvt(which);
        let (mode, masked) = if a.hw_enabled() { (e & lvt::DM_MASK, e & lvt::MASKED != 0) } else { (disabled_mode, false) };
        if masked {
            continue;
        }
        match mode {
            lvt::DM_EXTINT => extint |= levels & pin != 0,
            lvt::DM_NMI => nmi |= rising & pin != 0,
            lvt::DM_FIXED if rising & pin != 0 => {
                a.request((e & lvt::VECTOR) as u8, e & lvt::LEVEL_TRIGGER != 0);
            }
            _ => {}
        }
    }
    g.cpu.extint_line = extint;
    if nmi {
        post_nmi(g);
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

/// After each #VMEXIT, before anything else: the interrupt offered
/// through V_IRQ at the entry (see [`offer_interrupt`]) was taken if the
/// CPU cleared V_IRQ without the exit interrupting its delivery
/// (EXITINTINFO); an APIC vector then moves from IRR to ISR. An NMI's
/// IRET has completed once the guest is anywhere else. A refused VMRUN
/// took nothing.
pub(crate) fn after_exit<E: Env>(g: &mut GuestState<'_, E>) {
    sync_tpr(g);
    let offered = g.cpu.virq.take();
    if crate::testbed::is_vmexit_invalid(g.vmcb.control.exit_code) {
        return;
    }
    if let Some(rip) = g.cpu.nmi.iret_rip {
        if g.vmcb.save.rip != rip {
            g.cpu.nmi.iret_rip = None;
            g.cpu.nmi.masked = false;
            // The step's own #DB is handled by `nmi_step_done`; any other
            // exit means there is none to wait for (the IRET faulted, or
            // the CPU raised no trap for it).
            let db = crate::hw::svm::exit::EXCP_BASE + u64::from(vector::DB);
            if g.vmcb.control.exit_code != db {
                g.cpu.nmi.stepping = None;
            }
        }
    }
    let c = &mut g.vmcb.control;
    if offered == Some(Offered::Window) {
        c.int_ctl &= !int_ctl::V_IRQ;
        c.clear_intercept(intercept::VINTR);
        return;
    }
    // An interrupt whose delivery the exit interrupted (EXITINTINFO: only
    // the module's vectors are interrupts here) was not delivered: it
    // stays requested, and the next entry offers it again (or a higher
    // one) through V_IRQ rather than EVENTINJ, which the run loop set from
    // EXITINTINFO. (QEMU's TCG delivers an interrupt injected through
    // EVENTINJ inside VMRUN, and was seen to deliver one twice.)
    let info = c.exit_int_info;
    if info & event::VALID != 0 && info & (7 << event::TYPE_SHIFT) == event::TYPE_INTR {
        let v = (info & event::VECTOR_MASK) as u8;
        c.int_ctl &= !int_ctl::V_IRQ;
        c.event_inj = 0;
        if offered == Some(Offered::ExtInt(v)) {
            return;
        }
        if let Some(a) = g.cpu.lapic.as_mut() {
            if !a.irr.contains(v) {
                a.isr.clear(v);
                a.irr.set(v);
            }
        }
        return;
    }
    if c.int_ctl & int_ctl::V_IRQ != 0 {
        return;
    }
    match offered {
        Some(Offered::Apic(v)) => {
            if let Some(a) = g.cpu.lapic.as_mut() {
                a.acknowledge(v);
            }
            g.cpu.count(uapi::PACIFICA_STAT_IRQ_INJECTED);
        }
        Some(Offered::ExtInt(_)) => {
            g.cpu.extint = None;
            g.cpu.count(uapi::PACIFICA_STAT_IRQ_INJECTED);
        }
        _ => {}
    }
}

/// Whether the guest can take a maskable interrupt at the next entry:
/// RFLAGS.IF, no interrupt shadow, no event being injected.
fn interruptible<E: Env>(g: &GuestState<'_, E>) -> bool {
    g.vmcb.save.rflags & rflags::IF != 0
        && g.vmcb.control.int_state & INT_STATE_SHADOW == 0
        && g.vmcb.control.event_inj & event::VALID == 0
}

/// Whether a halted vCPU wakes: an NMI it can take, or a maskable
/// interrupt with RFLAGS.IF set (the guest's `cli; hlt` sleeps until a
/// signal ends the run, or an NMI).
pub(crate) fn wakes_from_halt<E: Env>(g: &GuestState<'_, E>) -> bool {
    let nmi = g.cpu.nmi.pending && !g.cpu.nmi.masked;
    let irq = g.cpu.extint.is_some()
        || g.cpu.extint_line
        || g.cpu.lapic.as_ref().is_some_and(|a| a.deliverable().is_some());
    nmi || (irq && g.vmcb.save.rflags & rflags::IF != 0)
}

/// Before each VMRUN: an NMI the guest can take goes in through EVENTINJ
/// and blocks NMIs until its IRET (intercepted); while one is blocked
/// and waiting, the module single-steps that IRET so that it arrives
/// right after. Then the interrupt: a vector a userspace PIC gave first,
/// else the APIC's highest deliverable vector, is offered to the guest as
/// a virtual interrupt (V_IRQ with its vector and priority, TPR already
/// applied), which the CPU delivers itself as soon as the guest can take
/// it: RFLAGS.IF set, no interrupt shadow, after any event being
/// injected. [`after_exit`] sees whether it was taken. (KVM injects
/// through EVENTINJ, with an interrupt-window exit whenever the guest
/// cannot take the interrupt yet; on the testbed QEMU's TCG occasionally
/// delivered an interrupt injected that way twice, while V_IRQ needs no
/// window exit at all.) CR8 writes are intercepted only while the TPR
/// holds a requested vector back, so that lowering CR8 delivers it at
/// once. A userspace PIC's raised line with nothing acknowledged yet
/// exits to userspace for its INTA when the guest can take the
/// interrupt, and opens an interrupt window (VINTR) until then: the
/// returned `Flow::User`.
pub(crate) fn offer_interrupt<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    if g.cpu.lapic.is_none() {
        return Flow::Continue;
    }
    let flow = offer(g);
    // The testbed's CPU cannot take a CR8 write while V_IRQ is set.
    let c = &mut g.vmcb.control;
    if c.int_ctl & int_ctl::V_IRQ != 0 && crate::testbed::intercept_cr8_with_virq() {
        c.set_intercept(cr_write_intercept(8));
    }
    flow
}

/// [`offer_interrupt`]'s work.
fn offer<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    offer_nmi(g);
    let c = &mut g.vmcb.control;
    let prio = 0xf << int_ctl::V_INTR_PRIO_SHIFT;
    c.int_ctl &= !(int_ctl::V_IRQ | int_ctl::V_IGN_TPR | prio);
    c.clear_intercept(intercept::VINTR);
    let Some(a) = g.cpu.lapic.as_mut() else { return Flow::Continue };
    let pending = a.deliverable();
    let blocked_by_tpr = pending.is_none() && a.irr.highest().is_some_and(|v| u32::from(v) >> 4 <= a.tpr() >> 4);
    c.intercept_if(cr_write_intercept(8), blocked_by_tpr);
    let (offer, v) = match (g.cpu.extint, pending) {
        (Some(v), _) => (Offered::ExtInt(v), v),
        (None, Some(v)) => (Offered::Apic(v), v),
        (None, None) if g.cpu.extint_line => {
            if interruptible(g) {
                g.count(uapi::PACIFICA_STAT_INTA);
                g.cpu.pending = Pending::Inta;
                g.cpu.exit_rip = g.vmcb.save.rip;
                return user_exit(g, uapi::PACIFICA_EXIT_INTA, uapi::ExitData { pad: [0; 256] });
            }
            let c = &mut g.vmcb.control;
            c.set_intercept(intercept::VINTR);
            c.int_vector = 0;
            c.int_ctl |= int_ctl::V_IRQ | int_ctl::V_IGN_TPR | prio;
            g.cpu.virq = Some(Offered::Window);
            return Flow::Continue;
        }
        (None, None) => return Flow::Continue,
    };
    let c = &mut g.vmcb.control;
    c.int_vector = u32::from(v);
    let class = if matches!(offer, Offered::ExtInt(_)) { 0xf } else { u32::from(v) >> 4 };
    c.int_ctl |= int_ctl::V_IRQ | int_ctl::V_IGN_TPR | (class << int_ctl::V_INTR_PRIO_SHIFT);
    let s = &g.vmcb.save;
    if s.rflags & rflags::IF == 0 || c.int_state & INT_STATE_SHADOW != 0 {
        g.cpu.count(uapi::PACIFICA_STAT_IRQ_WINDOW);
    }
    g.cpu.virq = Some(offer);
    Flow::Continue
}

/// The NMI part of [`offer_interrupt`].
fn offer_nmi<E: Env>(g: &mut GuestState<'_, E>) {
    let nmi = g.cpu.nmi;
    if nmi.masked && nmi.iret_rip.is_none() {
        // Kept across a refused VMRUN, which rewrites the intercepts.
        g.vmcb.control.set_intercept(intercept::IRET);
    }
    if !nmi.pending {
        return;
    }
    if !nmi.masked {
        if g.vmcb.control.event_inj & event::VALID != 0 {
            // An interrupted event goes first; the NMI at the next entry.
            return;
        }
        g.vmcb.control.event_inj = event::VALID | event::TYPE_NMI | u32::from(vector::NMI);
        g.vmcb.control.set_intercept(intercept::IRET);
        g.cpu.nmi = super::state::NmiState { pending: false, masked: true, iret_rip: None, stepping: None };
        g.count(uapi::PACIFICA_STAT_NMI_INJECTED);
        return;
    }
    if nmi.iret_rip.is_some() && nmi.stepping.is_none() {
        // The IRET ending the handler executes next: a single-step trap
        // right after it (#DB is intercepted) brings the vCPU back when
        // NMIs unblock, as KVM does without NRIPS.
        g.cpu.nmi.stepping = Some(g.vmcb.save.dr6);
        g.vmcb.save.rflags |= rflags::TF;
    }
}

/// IRET, intercepted while NMIs are blocked: they unblock once it has
/// executed, which [`after_exit`] sees at the next exit.
pub(super) fn iret<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_OTHER);
    g.vmcb.control.clear_intercept(intercept::IRET);
    g.cpu.nmi.iret_rip = Some(g.vmcb.save.rip);
    Flow::Continue
}

/// A #DB while the module single-steps an NMI handler's IRET: its own
/// trap, which the guest never sees (DR6 and TF put back). `false` for a
/// guest's #DB.
pub(super) fn nmi_step_done<E: Env>(g: &mut GuestState<'_, E>) -> bool {
    let Some(dr6) = g.cpu.nmi.stepping else { return false };
    if g.cpu.nmi.iret_rip.is_some() {
        // Still at the IRET (the step did not happen yet).
        return false;
    }
    g.cpu.nmi.stepping = None;
    let s = &mut g.vmcb.save;
    s.dr6 = dr6;
    s.rflags &= !rflags::TF;
    true
}

/// The interrupt window opened for a userspace PIC's interrupt: the next
/// entry's [`offer_interrupt`] exits for its INTA.
pub(super) fn window_open<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.count(uapi::PACIFICA_STAT_OTHER);
    Flow::Continue
}

/// The INTA exit's answer: the PIC's vector, or nothing (above 255).
pub(super) fn complete_inta<E: Env>(g: &mut GuestState<'_, E>, vector: u32) {
    if let Ok(v) = u8::try_from(vector) {
        g.cpu.extint = Some(v);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The run loop: `PACIFICA_RUN` enters the guest again and again until an
//! exit userspace must see, and one entry is one VMRUN with the ASID, the
//! TLB flushes, the FPU and PKRU, and the re-injection of an interrupted
//! event around it. With an in-kernel APIC, each round first takes what
//! other threads left (the inbox, kicks), expires and arms the APIC
//! timer, and sleeps while the guest halts. `vcpu.rs` keeps the objects;
//! `exit/` handles what the guest did.

use super::{Vcpu, VcpuState, SAVE_AREA, SAVE_AREA_LEN};
use crate::exit::{self, Env, Flow};
use crate::global;
use crate::hw::svm::{event, features, tlb_ctl};
use crate::shim::{self, FpuSection, IrqsOff, Wake};
use crate::hw::gpr::GuestGprs;
use crate::irq::lapic::tsc_ticks_to_ns;
use crate::svm::ops;
use crate::testbed;
use crate::uapi;
use kernel::prelude::*;

impl Vcpu {
    /// `PACIFICA_RUN`: runs until an exit userspace must see, a signal, or
    /// an error.
    pub(crate) fn run(&self) -> Result {
        let mut guard = self.lock()?;
        let st = &mut *guard;
        if !st.regs_set || !st.sregs_set {
            return Err(EINVAL);
        }
        // An instruction that read from userspace's device may owe it a
        // write: that exit comes before any entry.
        match exit::complete_pending(&mut st.guest(self)) {
            Flow::Continue => {}
            flow => {
                if flow == Flow::Stop {
                    st.sregs_set = false;
                }
                st.cpu.count(uapi::PACIFICA_STAT_USER_EXITS);
                return Ok(());
            }
        }
        loop {
            if shim::signal_pending() {
                st.cpu.count(uapi::PACIFICA_STAT_SIGNAL);
                return Err(EINTR);
            }
            if self.immediate_exit() {
                return Err(EINTR);
            }
            shim::cond_resched();
            self.service(st);
            if st.cpu.halted {
                self.halt(st)?;
            }
            if exit::offer_interrupt(&mut st.guest(self)) == Flow::User {
                st.cpu.count(uapi::PACIFICA_STAT_USER_EXITS);
                return Ok(());
            }
            if !self.enter_guest(st)? {
                // A kick came after `service`: look again.
                st.cpu.count(uapi::PACIFICA_STAT_KICK);
                continue;
            }
            st.cpu.count(uapi::PACIFICA_STAT_EXITS);
            match exit::handle(&mut st.guest(self)) {
                Flow::Continue => {}
                Flow::User => {
                    st.cpu.count(uapi::PACIFICA_STAT_USER_EXITS);
                    return Ok(());
                }
                Flow::Stop => {
                    // The guest state can no longer be run as it is.
                    st.sregs_set = false;
                    st.cpu.count(uapi::PACIFICA_STAT_USER_EXITS);
                    return Ok(());
                }
            }
        }
    }

    /// Takes what other threads left for the vCPU's APIC and brings its
    /// timer up to date. Without an in-kernel APIC there is nothing.
    fn service(&self, st: &mut VcpuState) {
        let Some(irq) = &self.irq else { return };
        // The timer's bit needs nothing of its own: the deadline is
        // checked at every entry.
        let kicked = irq.wake.take() & shim::WAKE_INJECT != 0;
        exit::take_inbox(&mut st.guest(self), &irq.inbox, kicked);
        self.service_timer(st, &irq.wake);
    }

    /// Expires the APIC timer if its deadline has passed, and arms the
    /// hrtimer for the next one (or cancels it). One-shot and periodic
    /// deadlines are host time already (the APIC's bus clock is 1 GHz of
    /// `ktime_get`); a TSC deadline is the guest's TSC (the host's plus
    /// TSC_OFFSET) turned into host time at the TSC's rate, rounded up,
    /// and checked against the TSC itself when the hrtimer fires: never
    /// early, whatever the rate's error, and on whichever CPU the thread
    /// now runs (the hrtimer is not pinned; its callback kicks the vCPU
    /// where it is).
    fn service_timer(&self, st: &mut VcpuState, wake: &Wake) {
        let tsc_offset = st.vmcb().control.tsc_offset;
        let khz = u64::from(shim::tsc_khz());
        let Some(a) = st.cpu.lapic.as_mut() else { return };
        let mut deadline = None;
        for _ in 0..2 {
            let now = self.now_ns();
            deadline = match (a.timer_deadline(), a.tsc_deadline()) {
                (Some(ns), _) => Some(ns),
                (None, Some(tsc)) if khz != 0 => {
                    let guest_tsc = ops::rdtsc().wrapping_add(tsc_offset);
                    let ticks = tsc.saturating_sub(guest_tsc);
                    Some(now.saturating_add(tsc_ticks_to_ns(ticks, khz)))
                }
                _ => None,
            };
            match deadline {
                Some(d) if d <= now => {
                    a.timer_expired(now);
                    st.cpu.stats[uapi::PACIFICA_STAT_TIMER as usize] += 1;
                    // A periodic timer has a next deadline.
                }
                _ => break,
            }
        }
        if deadline != st.timer_armed {
            match deadline {
                Some(d) => wake.arm(d),
                None => wake.cancel(),
            }
            st.timer_armed = deadline;
        }
    }

    /// The guest executed HLT: the thread sleeps until an event the vCPU
    /// takes (`exit::wakes_from_halt`) or a signal, which ends the run
    /// with EINTR and leaves the vCPU halted for the next one.
    fn halt(&self, st: &mut VcpuState) -> Result {
        let Some(irq) = &self.irq else {
            st.cpu.halted = false;
            return Ok(());
        };
        loop {
            if exit::wakes_from_halt(&st.guest(self)) {
                st.cpu.halted = false;
                st.cpu.count(uapi::PACIFICA_STAT_WAKEUP);
                return Ok(());
            }
            if shim::signal_pending() || self.immediate_exit() {
                st.cpu.count(uapi::PACIFICA_STAT_SIGNAL);
                return Err(EINTR);
            }
            if irq.wake.wait().is_err() {
                st.cpu.count(uapi::PACIFICA_STAT_SIGNAL);
                return Err(EINTR);
            }
            self.service(st);
        }
    }

    /// One VMRUN, from a host with interrupts on to a host with
    /// interrupts on, with the guest's FPU state swapped in and out.
    /// `false`: a kick came first, and the guest was not entered.
    fn enter_guest(&self, st: &mut VcpuState) -> Result<bool> {
        let g = global::get();
        let _fpu = FpuSection::begin(); // also keeps us on this CPU
        let cpu = shim::smp_processor_id();
        let pc = g.cpus.get(cpu).ok_or(EIO)?;
        // A vCPU needs a fresh ASID on a CPU it has not run on in this
        // ASID generation: the TLB may hold another VM's translations under
        // an ASID it last gave out (APM 15.16). Without flush-by-ASID, a
        // fresh ASID is also how this vCPU's own TLB entries are dropped.
        let by_asid = g.cpus.info.has(features::FLUSH_BY_ASID);
        let mut tlb = tlb_ctl::DO_NOTHING;
        if st.cpu.flush_tlb && by_asid {
            tlb = tlb_ctl::FLUSH_ASID;
        }
        let fresh = st.last_cpu != Some(cpu) || st.asid_generation != pc.generation() || (st.cpu.flush_tlb && !by_asid);
        if fresh {
            let (asid, generation) = pc.new_asid(g.cpus.info.nr_asids);
            st.last_cpu = Some(cpu);
            st.asid_generation = generation;
            st.vmcb().control.asid = asid;
        }
        // Reused ASIDs: every ASID's entries go, by the first VMRUN here
        // that succeeds.
        let flush_all = pc.must_flush_all();
        if flush_all {
            tlb = tlb_ctl::FLUSH_ALL_ASID;
        }
        st.vmcb().control.tlb_ctl = tlb;
        let invlpga = if fresh || flush_all { None } else { st.cpu.invlpga };
        let vmcb_pa = st.vmcb.pa();
        if st.unverified {
            st.entry_snapshot.bytes_mut()[..SAVE_AREA_LEN].copy_from_slice(&st.vmcb.bytes_mut()[SAVE_AREA]);
        }
        let ran = {
            let irqs = IrqsOff::new();
            // Checked with interrupts off: the reboot notifier's IPI cannot
            // turn SVM off between here and VMRUN (an emergency NMI still
            // can; the world switch survives that, see vmenter.S).
            if !pc.enabled() {
                return Err(EIO);
            }
            if let Some(irq) = &self.irq {
                if !irq.wake.enter(&irqs, cpu) {
                    return Ok(false);
                }
            }
            if let Some(la) = invlpga {
                let asid = st.vmcb().control.asid;
                // SAFETY: SVM is on on this CPU (checked above) and
                // preemption is off, so `asid` is this CPU's and stays in
                // use; INVLPGA only drops TLB entries.
                unsafe { ops::invlpga(la, asid) };
            }
            if pc.switch_vmcb(vmcb_pa) {
                // Another vCPU ran here last: what it trained in the branch
                // predictors must not steer this one (or the host).
                shim::ibpb();
            }
            // VMRUN does not switch PKRU: a guest that sets CR4.PKE could
            // otherwise leave its protection keys on the VMM's user pages.
            let host_pkru = if g.cpus.info.host_pku {
                // SAFETY: the host has CR4.PKE (OSPKE).
                let host = unsafe { ops::rdpkru() };
                if host != st.guest_pkru {
                    // SAFETY: as above; no user memory is touched before VMRUN.
                    unsafe { ops::wrpkru(st.guest_pkru) };
                }
                Some(host)
            } else {
                None
            };
            // SAFETY: interrupts and preemption are off, so this stays the
            // CPU whose SVM was found on above; the VMCB and host save page
            // are ours. The FPU section lets the guest own the FPU
            // registers, whose state is loaded before and saved after the
            // switch, with interrupts off in between.
            let ran = unsafe {
                ops::fxrstor(&st.fx);
                let ran = ops::world_switch(vmcb_pa, pc.host_save_pa(), &mut st.cpu.gprs);
                ops::fxsave(&mut st.fx);
                ran
            };
            if let Some(host) = host_pkru {
                // SAFETY: the host has CR4.PKE (OSPKE); nothing between the
                // world switch and here touched user memory.
                unsafe {
                    st.guest_pkru = ops::rdpkru();
                    if st.guest_pkru != host {
                        ops::wrpkru(host);
                    }
                }
            }
            shim::restore_host_debugregs(testbed::rearm_dr7());
            if let Some(irq) = &self.irq {
                irq.wake.exit();
            }
            ran
        };
        if !ran {
            // SVM was turned off under us (the system is going down).
            return Err(EIO);
        }
        let code = st.vmcb().control.exit_code;
        let refused = testbed::is_vmexit_invalid(code);
        if refused {
            // A refused VMRUN may have written anything into the control
            // area (QEMU writes int_ctl back as 0).
            st.assert_control();
            if st.unverified {
                st.vmcb.bytes_mut()[SAVE_AREA].copy_from_slice(&st.entry_snapshot.bytes_mut()[..SAVE_AREA_LEN]);
            } else {
                // The guest itself reached a state the CPU refused (QEMU
                // accepts some that real CPUs fault on) and there is no
                // snapshot: the save area may now hold the host's state,
                // which userspace must never read. The vCPU stops.
                st.vmcb.bytes_mut()[SAVE_AREA].fill(0);
                st.cpu.gprs = GuestGprs::default();
            }
        } else {
            // The flushes asked for took place.
            st.unverified = false;
            st.cpu.flush_tlb = false;
            if invlpga.is_some() || fresh || flush_all {
                st.cpu.invlpga = None;
            }
            if flush_all {
                pc.flushed_all();
            }
        }
        let c = &mut st.vmcb().control;
        c.tlb_ctl = tlb_ctl::DO_NOTHING;
        // EVENTINJ is consumed by VMRUN; an event the exit interrupted is
        // delivered again (APM 15.7.2).
        c.event_inj = 0;
        if !refused && c.exit_int_info & event::VALID != 0 {
            c.exit_int_info = testbed::exit_int_info(c.exit_int_info);
            let ty = c.exit_int_info & (7 << event::TYPE_SHIFT);
            // A software interrupt or INT3/INTO re-executes instead: without
            // NRIPS the return address of a re-injected one would be wrong.
            let soft = ty == event::TYPE_SOFT
                || (ty == event::TYPE_EXEPT && matches!(c.exit_int_info & 0xff, 3 | 4));
            if !soft {
                c.event_inj = c.exit_int_info;
                c.event_inj_err = c.exit_int_info_err;
            }
        }
        Ok(true)
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The guest as the exit handlers see it. [`GuestCpu`] is what the module
//! keeps of the guest's CPU outside the VMCB (the general registers VMRUN
//! does not save, the registers it shadows, the work an exit to userspace
//! leaves, the counters); [`GuestState`] is the view one exit is handled
//! through: the VMCB, that register file, the shadow MMU of a VM without
//! nested paging, and the [`Env`] for everything else. Depends on `core`
//! only.

use super::env::{Env, ShadowPaging};
use super::Pending;
use crate::emulate::insn::{self, CpuMode, Reg};
use crate::emulate::walk::PagingState;
use crate::hw::cr::{cr0, dr};
use crate::hw::gpr::{Gpr, GuestGprs};
use crate::hw::seg;
use crate::hw::svm::{efer, event, vector, Exception};
use crate::hw::vmcb::{Vmcb, VmcbSeg};
use crate::irq::lapic::Lapic;
use crate::mm::shadow::{GuestCrs, OutOfMemory};
use crate::testbed;
use crate::uapi;

/// The guest's CPU beyond the VMCB; owned by the vCPU, changed only by
/// the exit handlers and the register ioctls.
#[derive(Clone, Debug)]
pub(crate) struct GuestCpu {
    /// The general registers the world switch loads and stores.
    pub(crate) gprs: GuestGprs,
    /// Nested paging: the guest's EFER.LME is set but its paging is off,
    /// so the VMCB holds LME = 0 until the guest turns paging on (CR0
    /// writes are intercepted). QEMU's SVM cannot leave a guest with
    /// LME = 1 and PAE = 0 (`testbed`).
    pub(crate) lme_hidden: bool,
    /// The CR4 bits the guest may set (its CPUID's).
    pub(crate) cr4_allowed: u64,
    /// DR7 as the guest wrote it (MOV DR7 is intercepted); the VMCB may
    /// hold less ([`GuestState::set_guest_dr7`]).
    pub(crate) guest_dr7: u64,
    /// Guest RIP when the exit being handled happened.
    pub(crate) exit_rip: u64,
    /// What the next run must finish first (an IN, an MMIO read, ...).
    pub(crate) pending: Pending,
    /// The TLB entries of this vCPU's ASID must go before the next VMRUN.
    pub(crate) flush_tlb: bool,
    /// A linear address whose TLB entry must go before the next VMRUN
    /// (INVLPGA, executed there: only then is the CPU, and so the ASID,
    /// certain).
    pub(crate) invlpga: Option<u64>,
    /// The counters of `PACIFICA_GET_STATS`.
    pub(crate) stats: [u64; uapi::PACIFICA_STAT_MAX as usize],
    /// An unhandled exit was logged for this vCPU (`exit::log_unhandled`).
    pub(crate) logged_unhandled: bool,
    /// The in-kernel local APIC (`PACIFICA_CREATE_IRQCHIP`).
    pub(crate) lapic: Option<Lapic>,
    /// The interrupt offered through V_IRQ at the last entry
    /// (`exit::apic::offer_interrupt`).
    pub(crate) virq: Option<Offered>,
    /// HLT put the vCPU to sleep in the kernel (with an in-kernel APIC);
    /// it stays asleep across runs until an event wakes it.
    pub(crate) halted: bool,
    /// NMI delivery and blocking.
    pub(crate) nmi: NmiState,
    /// A userspace PIC's interrupt: LINT0 is in ExtINT mode (or the APIC
    /// is disabled, which makes LINT0 the INTR pin) and its line is up.
    pub(crate) extint_line: bool,
    /// The vector userspace's PIC gave at the last INTA exit, to be
    /// delivered before any APIC vector.
    pub(crate) extint: Option<u8>,
}

/// What V_IRQ offered at an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offered {
    /// A vector of the local APIC.
    Apic(u8),
    /// The vector a userspace PIC gave ([`GuestCpu::extint`]).
    ExtInt(u8),
    /// No vector: an interrupt window for the PIC's INTA exit (VINTR).
    Window,
}

/// The NMI's state (the CPU keeps NMI blocking out of the VMCB: the
/// module tracks it, as KVM does without vNMI).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NmiState {
    /// An NMI waits for delivery (one at most, as the CPU's latch).
    pub(crate) pending: bool,
    /// The guest is handling an NMI: NMIs are blocked until its IRET.
    pub(crate) masked: bool,
    /// The guest's IRET at this RIP was intercepted; NMIs unblock once
    /// it has executed (the guest is seen anywhere else).
    pub(crate) iret_rip: Option<u64>,
    /// The module single-steps the IRET to deliver a pending NMI right
    /// after it: the guest's DR6 to put back after the #DB.
    pub(crate) stepping: Option<u64>,
}

impl GuestCpu {
    /// A CPU at reset whose CPUID offers the CR4 bits `cr4_allowed`, with
    /// a local APIC if `lapic`.
    pub(crate) fn new(cr4_allowed: u64, lapic: Option<Lapic>) -> Self {
        GuestCpu {
            gprs: GuestGprs::default(),
            lme_hidden: false,
            cr4_allowed,
            guest_dr7: dr::DR7_RESET,
            exit_rip: 0,
            pending: Pending::None,
            flush_tlb: false,
            invlpga: None,
            stats: [0; uapi::PACIFICA_STAT_MAX as usize],
            logged_unhandled: false,
            lapic,
            virq: None,
            halted: false,
            nmi: NmiState::default(),
            extint_line: false,
            extint: None,
        }
    }

    /// Counts one event of `PACIFICA_STAT_*` kind `stat`.
    pub(crate) fn count(&mut self, stat: u32) {
        self.stats[stat as usize] += 1;
    }
}

/// One vCPU's guest, borrowed for one exit (or one register ioctl).
pub(crate) struct GuestState<'a, E: Env> {
    pub(crate) vmcb: &'a mut Vmcb,
    pub(crate) cpu: &'a mut GuestCpu,
    /// The shadow MMU, for a VM without nested paging.
    pub(crate) shadow: Option<&'a mut E::Shadow>,
    pub(crate) env: &'a E,
}

impl<E: Env> GuestState<'_, E> {
    /// Where general register `r` lives: RAX and RSP in the VMCB, the
    /// others in the register file.
    fn gpr_slot(&mut self, r: Gpr) -> &mut u64 {
        let g = &mut self.cpu.gprs;
        match r {
            Gpr::Rax => &mut self.vmcb.save.rax,
            Gpr::Rsp => &mut self.vmcb.save.rsp,
            Gpr::Rcx => &mut g.rcx,
            Gpr::Rdx => &mut g.rdx,
            Gpr::Rbx => &mut g.rbx,
            Gpr::Rbp => &mut g.rbp,
            Gpr::Rsi => &mut g.rsi,
            Gpr::Rdi => &mut g.rdi,
            Gpr::R8 => &mut g.r8,
            Gpr::R9 => &mut g.r9,
            Gpr::R10 => &mut g.r10,
            Gpr::R11 => &mut g.r11,
            Gpr::R12 => &mut g.r12,
            Gpr::R13 => &mut g.r13,
            Gpr::R14 => &mut g.r14,
            Gpr::R15 => &mut g.r15,
        }
    }

    /// Reads general register `r`.
    pub(crate) fn gpr(&mut self, r: Gpr) -> u64 {
        *self.gpr_slot(r)
    }

    /// Writes general register `r`.
    pub(crate) fn set_gpr(&mut self, r: Gpr, v: u64) {
        *self.gpr_slot(r) = v;
    }

    /// Writes `value` into the register operand `dst` with x86's rules for
    /// partial writes.
    pub(crate) fn merge_gpr(&mut self, dst: Reg, value: u64, size: u8) {
        let old = self.gpr(dst.gpr);
        self.set_gpr(dst.gpr, insn::merge_reg(old, value, dst, size));
    }

    /// Counts one event of `PACIFICA_STAT_*` kind `stat`.
    pub(crate) fn count(&mut self, stat: u32) {
        self.cpu.count(stat);
    }

    /// The code size the guest runs in.
    pub(crate) fn cpu_mode(&self) -> CpuMode {
        let s = &self.vmcb.save;
        if s.efer & efer::LMA != 0 && s.cs.attrib & seg::attr::L != 0 {
            CpuMode::Bits64
        } else if s.cr0 & cr0::PE != 0 && s.cs.attrib & seg::attr::DB != 0 {
            CpuMode::Bits32
        } else {
            CpuMode::Bits16
        }
    }

    /// Whether the guest runs at CPL 3.
    pub(crate) fn user_mode(&self) -> bool {
        self.vmcb.save.cpl == 3
    }

    /// The guest's EFER as the guest sees it (without SVME).
    pub(crate) fn guest_efer(&self) -> u64 {
        if let Some(m) = &self.shadow {
            return m.crs().efer;
        }
        let hidden = if self.cpu.lme_hidden { efer::LME } else { 0 };
        (self.vmcb.save.efer & !efer::SVME) | hidden
    }

    /// The guest's CR0, CR3, CR4 and EFER: the shadow MMU's, or (nested
    /// paging) the VMCB's with a hidden EFER.LME put back.
    pub(crate) fn guest_crs(&self) -> GuestCrs {
        if let Some(m) = &self.shadow {
            return m.crs();
        }
        let s = &self.vmcb.save;
        GuestCrs { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: self.guest_efer() }
    }

    /// Sets the guest's EFER (validated already) under nested paging.
    pub(crate) fn set_npt_efer(&mut self, v: u64) {
        self.vmcb.save.efer = v | efer::SVME;
        self.cpu.lme_hidden = false;
        self.hide_lme();
    }

    /// Keeps EFER.LME out of the VMCB while the guest's paging is off
    /// (nested paging; see [`GuestCpu::lme_hidden`]).
    pub(crate) fn hide_lme(&mut self) {
        if self.shadow.is_some() {
            return;
        }
        let s = &mut self.vmcb.save;
        if s.cr0 & cr0::PG == 0 && s.efer & efer::LME != 0 {
            s.efer &= !efer::LME;
            self.cpu.lme_hidden = true;
        }
    }

    /// The guest's paging registers.
    pub(crate) fn paging_state(&self) -> PagingState {
        if let Some(m) = &self.shadow {
            return m.paging_state();
        }
        let c = self.guest_crs();
        PagingState { cr0: c.cr0, cr3: c.cr3, cr4: c.cr4, efer: c.efer, maxphyaddr: self.env.maxphyaddr() }
    }

    /// The shadow MMU got a new root, or dropped entries: the VMCB must use
    /// the current root, and the TLB must forget what the old entries said
    /// (their tables may be freed).
    pub(crate) fn shadow_rebuilt(&mut self) {
        let Some(m) = &self.shadow else { return };
        let [cr0, cr3, cr4, efer] = m.hw_regs();
        let s = &mut self.vmcb.save;
        s.cr0 = cr0;
        s.cr3 = cr3;
        s.cr4 = cr4;
        s.efer = efer;
        self.cpu.flush_tlb = true;
    }

    /// MOV to DR7: the guest reads back what it wrote; the hardware may
    /// get less (`testbed::hw_dr7`).
    pub(crate) fn set_guest_dr7(&mut self, v: u64) {
        self.cpu.guest_dr7 = v;
        self.vmcb.save.dr7 = testbed::hw_dr7(v);
    }

    /// Loads TR (validated already). On the testbed the VMCB gets the
    /// available type (`testbed::hw_tr_attrib`) and, under shadow paging,
    /// the page at TR's base is guarded (`ShadowPaging::guard_tss`);
    /// `PACIFICA_GET_SREGS` reports the busy type, as a CPU would.
    pub(crate) fn set_tr(&mut self, tr: VmcbSeg) -> Result<(), OutOfMemory> {
        if testbed::intercept_ltr() {
            if let Some(m) = self.shadow.as_deref_mut() {
                if m.guard_tss(Some(tr.base))? {
                    self.shadow_rebuilt();
                }
            }
        }
        self.vmcb.save.tr = VmcbSeg { attrib: testbed::hw_tr_attrib(tr.attrib), ..tr };
        Ok(())
    }

    /// Asks for this vCPU's TLB entries to be dropped before the next VMRUN.
    pub(crate) fn request_tlb_flush(&mut self) {
        self.cpu.flush_tlb = true;
    }

    /// Asks for the TLB entry of `la` to be dropped before the next VMRUN.
    pub(crate) fn flush_tlb_entry(&mut self, la: u64) {
        if self.cpu.invlpga.replace(la).is_some() {
            self.cpu.flush_tlb = true;
        }
    }

    /// The module wrote guest memory at `gpa`: the shadow MMU must learn
    /// of it if the page is one of the guest's page tables.
    pub(crate) fn module_wrote(&mut self, gpa: u64) {
        if let Some(m) = self.shadow.as_deref_mut() {
            m.module_wrote(gpa >> 12);
        }
    }

    /// Queues an exception for the next VMRUN (APM 15.20). If the exit
    /// interrupted the delivery of another exception (re-queued from
    /// EXITINTINFO), the two combine as the processor would combine them
    /// (APM Vol. 2, 8.2.9): a contributory exception or #PF during #PF, or
    /// a contributory one during a contributory one, is a double fault; any
    /// exception during a double fault shuts the guest down. Returns false
    /// in that last case: the caller reports a shutdown.
    pub(crate) fn inject(&mut self, e: Exception) -> bool {
        let pending = self.vmcb.control.event_inj;
        let mut e = e;
        if pending & event::VALID != 0 && pending & (7 << event::TYPE_SHIFT) == event::TYPE_EXEPT {
            let first = (pending & event::VECTOR_MASK) as u8;
            let contributory = |v: u8| matches!(v, 0 | 10 | 11 | 12 | 13);
            if first == vector::DF {
                return false;
            }
            if (first == vector::PF && (e.vector == vector::PF || contributory(e.vector)))
                || (contributory(first) && contributory(e.vector))
            {
                e = Exception { vector: vector::DF, error_code: Some(0) };
            }
        }
        let (inj, err) = e.event_inj();
        let c = &mut self.vmcb.control;
        c.event_inj = inj;
        c.event_inj_err = err;
        true
    }
}

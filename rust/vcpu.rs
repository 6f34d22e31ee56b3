// SPDX-License-Identifier: GPL-2.0

//! A vCPU: its VMCB, its registers, the run page it shares with userspace,
//! and the run loop.

use crate::emulate::insn::{self, CpuMode, Gpr};
use crate::emulate::walk::PagingState;
use crate::exit::{self, Flow, Pending};
use crate::global;
use crate::hw::svm::{
    efer, event, features, int_ctl, intercept, tlb_ctl, vector, Exception, INTERCEPT_CR_WORD,
    INTERCEPT_EXCEPTION_WORD, NESTED_CTL_NP_ENABLE,
};
use crate::hw::vmcb::{Vmcb, VmcbSeg};
use crate::mm::pages::HwPages;
use crate::mm::shadow_mmu::{GuestCrs, ShadowMmu};
use crate::vm::Paging;
use crate::shim::{self, FpuSection, IrqsOff};
use crate::svm::ops::{self, FxArea, GuestGprs};
use crate::uapi;
use crate::vm::Vm;
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};

/// Where the state save area lies in the VMCB page.
const SAVE_AREA: core::ops::Range<usize> = 0x400..0x1000;
const SAVE_AREA_LEN: usize = 0xc00;

/// The power-on value of PAT.
const PAT_RESET: u64 = 0x0007_0406_0007_0406;

/// Everything about a vCPU that the run loop changes; behind the vCPU's
/// mutex, so one thread at a time runs or inspects it.
pub(crate) struct VcpuState {
    vmcb: HwPages,
    pub(crate) gprs: GuestGprs,
    fx: KBox<FxArea>,
    regs_set: bool,
    sregs_set: bool,
    /// The CPU and ASID generation the VMCB's ASID belongs to.
    last_cpu: Option<u32>,
    asid_generation: u64,
    /// What the next run must finish first (an IN, an MMIO read, ...).
    pub(crate) pending: Pending,
    /// The shadow MMU, for a VM without nested paging.
    pub(crate) shadow: Option<KBox<ShadowMmu>>,
    /// The TLB entries of this vCPU's ASID must go before the next VMRUN.
    flush_tlb: bool,
    /// The guest's PKRU, when the host uses protection keys.
    guest_pkru: u32,
    /// A linear address whose TLB entry must go before the next VMRUN
    /// (INVLPGA, executed there: only then is the CPU, and so the ASID,
    /// certain).
    invlpga: Option<u64>,
    pub(crate) stats: [u64; 32],
    /// Guest RIP when the exit being handled happened.
    pub(crate) exit_rip: u64,
    /// Userspace changed the guest state since the last successful entry,
    /// so VMRUN may refuse it (VMEXIT_INVALID).
    unverified: bool,
    /// The VMCB's state save area as it was before an unverified entry: a
    /// refused VMRUN may leave other values there (QEMU writes the host's),
    /// and userspace must get back what it set.
    entry_snapshot: HwPages,
}

/// A virtual CPU.
#[pin_data]
pub(crate) struct Vcpu {
    pub(crate) vm: Arc<Vm>,
    pub(crate) id: u32,
    /// The page userspace maps; see [`uapi::Run`].
    run_page: HwPages,
    #[pin]
    pub(crate) state: Mutex<VcpuState>,
}

impl VcpuState {
    /// The VMCB.
    pub(crate) fn vmcb(&mut self) -> &mut Vmcb {
        // SAFETY: the page is 4 KiB, page-aligned, and a `Vmcb` is plain
        // integers, valid for any bit pattern.
        unsafe { self.vmcb.as_mut::<Vmcb>() }
    }

    /// Reads general register `index` (0 = RAX ... 15 = R15).
    pub(crate) fn gpr(&mut self, index: u8) -> u64 {
        let g = &self.gprs;
        match index & 15 {
            0 => self.vmcb().save.rax,
            1 => g.rcx,
            2 => g.rdx,
            3 => g.rbx,
            4 => self.vmcb().save.rsp,
            5 => g.rbp,
            6 => g.rsi,
            7 => g.rdi,
            8 => g.r8,
            9 => g.r9,
            10 => g.r10,
            11 => g.r11,
            12 => g.r12,
            13 => g.r13,
            14 => g.r14,
            _ => g.r15,
        }
    }

    /// Writes general register `index`.
    pub(crate) fn set_gpr(&mut self, index: u8, v: u64) {
        let g = &mut self.gprs;
        match index & 15 {
            0 => self.vmcb().save.rax = v,
            1 => g.rcx = v,
            2 => g.rdx = v,
            3 => g.rbx = v,
            4 => self.vmcb().save.rsp = v,
            5 => g.rbp = v,
            6 => g.rsi = v,
            7 => g.rdi = v,
            8 => g.r8 = v,
            9 => g.r9 = v,
            10 => g.r10 = v,
            11 => g.r11 = v,
            12 => g.r12 = v,
            13 => g.r13 = v,
            14 => g.r14 = v,
            _ => g.r15 = v,
        }
    }

    /// Writes `value`, `size` bytes wide, into register `dst` by x86's
    /// partial-register rules.
    pub(crate) fn merge_gpr(&mut self, dst: Gpr, value: u64, size: u8) {
        let old = self.gpr(dst.index);
        self.set_gpr(dst.index, insn::merge_reg(old, value, dst, size));
    }

    /// The code size the guest runs in.
    pub(crate) fn cpu_mode(&mut self) -> CpuMode {
        let s = &self.vmcb().save;
        if s.efer & efer::LMA != 0 && s.cs.attrib & (1 << 9) != 0 {
            CpuMode::Bits64
        } else if s.cr0 & 1 != 0 && s.cs.attrib & (1 << 10) != 0 {
            CpuMode::Bits32
        } else {
            CpuMode::Bits16
        }
    }

    /// The guest's paging registers.
    pub(crate) fn paging_state(&mut self) -> PagingState {
        if let Some(m) = &self.shadow {
            return m.paging_state();
        }
        let s = &self.vmcb().save;
        let maxphyaddr = global::get().cpus.info.maxphyaddr;
        PagingState { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer, maxphyaddr }
    }

    /// Copies the shadow MMU's hardware registers into the VMCB.
    pub(crate) fn load_shadow_regs(&mut self) {
        let Some(m) = &self.shadow else { return };
        let (cr0, cr3, cr4, efer) = (m.hw_cr0(), m.hw_cr3(), m.hw_cr4(), m.hw_efer());
        let s = &mut self.vmcb().save;
        s.cr0 = cr0;
        s.cr3 = cr3;
        s.cr4 = cr4;
        s.efer = efer;
    }

    /// The shadow MMU got a new root, or dropped entries: the VMCB must use
    /// the current root, and the TLB must forget what the old entries said
    /// (their tables may be freed).
    pub(crate) fn shadow_rebuilt(&mut self) {
        self.flush_tlb = true;
        self.load_shadow_regs();
    }

    /// Asks for the TLB entry of `la` to be dropped before the next VMRUN.
    pub(crate) fn flush_tlb_entry(&mut self, la: u64) {
        if self.invlpga.replace(la).is_some() {
            self.flush_tlb = true;
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
        let pending = self.vmcb().control.event_inj;
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
        let c = &mut self.vmcb().control;
        c.event_inj = inj;
        c.event_inj_err = err;
        true
    }

    /// Counts one event of `PACIFICA_STAT_*` kind `stat`.
    pub(crate) fn count(&mut self, stat: usize) {
        self.stats[stat] += 1;
    }
}

fn seg_to_vmcb(s: &uapi::Segment) -> VmcbSeg {
    VmcbSeg { selector: s.selector, attrib: s.attrib, limit: s.limit, base: s.base }
}

fn seg_from_vmcb(s: &VmcbSeg) -> uapi::Segment {
    uapi::Segment { base: s.base, limit: s.limit, selector: s.selector, attrib: s.attrib }
}

impl Vcpu {
    /// Creates vCPU `id` of `vm` with its VMCB set up for `vm`'s paging mode.
    pub(crate) fn new(vm: Arc<Vm>, id: u32) -> Result<Arc<Self>> {
        let g = global::get();
        let mut vmcb = HwPages::page()?;
        let npt_root = vm.mem.lock().npt_root;
        {
            // SAFETY: as in `VcpuState::vmcb`.
            let v = unsafe { vmcb.as_mut::<Vmcb>() };
            let c = &mut v.control;
            for i in [
                intercept::INTR, intercept::NMI, intercept::SMI, intercept::INIT, intercept::CPUID,
                intercept::INVD, intercept::HLT, intercept::INVLPGA, intercept::IOIO_PROT,
                intercept::MSR_PROT, intercept::SHUTDOWN, intercept::VMRUN, intercept::VMMCALL,
                intercept::VMLOAD, intercept::VMSAVE, intercept::STGI, intercept::CLGI,
                intercept::SKINIT, intercept::RDTSCP, intercept::MONITOR, intercept::MWAIT,
                intercept::MWAIT_COND, intercept::XSETBV, intercept::RDPRU,
            ] {
                c.set_intercept(i);
            }
            c.iopm_base_pa = g.iopm.pa();
            c.msrpm_base_pa = g.msrpm.pa();
            c.int_ctl = int_ctl::V_INTR_MASKING;
            match vm.paging {
                Paging::Npt => {
                    c.nested_ctl = NESTED_CTL_NP_ENABLE;
                    c.nested_cr3 = npt_root;
                }
                Paging::Shadow => {
                    // The guest's CR0, CR3 and CR4 are the shadow MMU's;
                    // its page faults and INVLPG go through it too.
                    for cr in [0, 3, 4] {
                        c.intercepts[INTERCEPT_CR_WORD] |= (1 << cr) | (1 << (16 + cr));
                    }
                    c.intercepts[INTERCEPT_EXCEPTION_WORD] |= 1 << vector::PF;
                    c.set_intercept(intercept::INVLPG);
                }
            }
            let s = &mut v.save;
            s.g_pat = PAT_RESET;
            s.dr6 = 0xffff_0ff0;
            s.dr7 = 0x400;
            s.efer = efer::SVME;
            s.rflags = 2;
            s.cr0 = 0x6000_0010;
        }
        let shadow = match vm.paging {
            Paging::Npt => None,
            Paging::Shadow => Some(KBox::new(ShadowMmu::new()?, GFP_KERNEL)?),
        };
        let state = VcpuState {
            vmcb,
            gprs: GuestGprs::default(),
            fx: KBox::new(FxArea::reset(), GFP_KERNEL)?,
            regs_set: false,
            sregs_set: false,
            last_cpu: None,
            asid_generation: 0,
            pending: Pending::None,
            shadow,
            flush_tlb: false,
            invlpga: None,
            guest_pkru: 0,
            stats: [0; 32],
            exit_rip: 0,
            unverified: true,
            entry_snapshot: HwPages::page()?,
        };
        let run_page = HwPages::page()?;
        Arc::pin_init(
            pin_init!(Vcpu { vm, id, run_page, state <- new_mutex!(state, "Vcpu::state") }),
            GFP_KERNEL,
        )
    }

    /// Kernel address of the run page (for mmap).
    pub(crate) fn run_page_va(&self) -> *mut u8 {
        self.run_page.va()
    }

    /// The run page, shared with userspace: only read and written with
    /// volatile copies of whole values.
    pub(crate) fn run_ptr(&self) -> *mut uapi::Run {
        self.run_page.va() as *mut uapi::Run
    }

    /// Reads the run page as it is now.
    pub(crate) fn read_run(&self) -> uapi::Run {
        // SAFETY: the page is ours, aligned and large enough; userspace may
        // change it concurrently, which can only give us stale values of a
        // type valid for every bit pattern.
        unsafe { self.run_ptr().read_volatile() }
    }

    /// Writes the run page.
    pub(crate) fn write_run(&self, run: &uapi::Run) {
        // SAFETY: as in `read_run`.
        unsafe { self.run_ptr().write_volatile(*run) }
    }

    /// Copies `out.len()` bytes from offset `at` of the run page's I/O
    /// data area (truncated to the area).
    pub(crate) fn io_read(&self, at: usize, out: &mut [u8]) {
        let area = self.io_area(at, out.len());
        for (i, b) in out.iter_mut().take(area.1).enumerate() {
            // SAFETY: `io_area` keeps `area.0 + i` inside our page. Userspace
            // may write the byte concurrently; a volatile read of a `u8` is
            // valid whatever it holds.
            *b = unsafe { area.0.add(i).read_volatile() };
        }
    }

    /// Copies `data` to offset `at` of the run page's I/O data area
    /// (truncated to the area).
    pub(crate) fn io_write(&self, at: usize, data: &[u8]) {
        let area = self.io_area(at, data.len());
        for (i, &b) in data.iter().take(area.1).enumerate() {
            // SAFETY: as in `io_read`, for a write.
            unsafe { area.0.add(i).write_volatile(b) };
        }
    }

    /// The address of offset `at` of the I/O data area and how many of
    /// `len` bytes from there fit in it.
    fn io_area(&self, at: usize, len: usize) -> (*mut u8, usize) {
        let at = at.min(uapi::PACIFICA_RUN_IO_DATA_SIZE);
        let fit = len.min(uapi::PACIFICA_RUN_IO_DATA_SIZE - at);
        // The area lies inside the page (checked in uapi.rs), `at` inside it.
        (self.run_page.va().wrapping_add(uapi::PACIFICA_RUN_IO_DATA_OFFSET + at), fit)
    }

    /// `PACIFICA_GET_REGS`.
    pub(crate) fn get_regs(&self) -> uapi::Regs {
        let mut st = self.state.lock();
        let g = st.gprs;
        let s = &st.vmcb().save;
        uapi::Regs {
            rax: s.rax, rbx: g.rbx, rcx: g.rcx, rdx: g.rdx, rsi: g.rsi, rdi: g.rdi, rsp: s.rsp,
            rbp: g.rbp, r8: g.r8, r9: g.r9, r10: g.r10, r11: g.r11, r12: g.r12, r13: g.r13,
            r14: g.r14, r15: g.r15, rip: s.rip, rflags: s.rflags,
        }
    }

    /// `PACIFICA_SET_REGS`.
    pub(crate) fn set_regs(&self, r: &uapi::Regs) {
        let mut st = self.state.lock();
        st.gprs = GuestGprs {
            rbx: r.rbx, rcx: r.rcx, rdx: r.rdx, rsi: r.rsi, rdi: r.rdi, rbp: r.rbp, r8: r.r8,
            r9: r.r9, r10: r.r10, r11: r.r11, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
        };
        let s = &mut st.vmcb().save;
        s.rax = r.rax;
        s.rsp = r.rsp;
        s.rip = r.rip;
        // Bit 1 is always one; the hardware checks reserved bits at VMRUN.
        s.rflags = r.rflags | 2;
        st.regs_set = true;
        st.unverified = true;
    }

    /// `PACIFICA_GET_SREGS`.
    pub(crate) fn get_sregs(&self) -> uapi::Sregs {
        let mut st = self.state.lock();
        let v = st.vmcb();
        let s = &v.save;
        let dt = |d: &VmcbSeg| uapi::Dtable { base: d.base, limit: d.limit as u16, pad: [0; 3] };
        let mut sregs = uapi::Sregs {
            cs: seg_from_vmcb(&s.cs), ds: seg_from_vmcb(&s.ds), es: seg_from_vmcb(&s.es),
            fs: seg_from_vmcb(&s.fs), gs: seg_from_vmcb(&s.gs), ss: seg_from_vmcb(&s.ss),
            tr: seg_from_vmcb(&s.tr), ldt: seg_from_vmcb(&s.ldtr),
            gdt: dt(&s.gdtr), idt: dt(&s.idtr),
            cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4,
            cr8: u64::from(v.control.int_ctl & int_ctl::V_TPR_MASK) & 0xf,
            efer: s.efer & !efer::SVME,
        };
        if let Some(m) = &st.shadow {
            sregs.cr0 = m.crs.cr0;
            sregs.cr3 = m.crs.cr3;
            sregs.cr4 = m.crs.cr4;
            sregs.efer = m.crs.efer;
        }
        sregs
    }

    /// `PACIFICA_SET_SREGS`. The hardware checks the combination at VMRUN
    /// and refuses an invalid one with VMEXIT_INVALID, which reaches
    /// userspace as `PACIFICA_EXIT_FAIL_ENTRY`; SVME, which the guest must
    /// not see, is reserved here.
    pub(crate) fn set_sregs(&self, r: &uapi::Sregs) -> Result {
        if r.efer & efer::SVME != 0 || r.cr8 > 0xf {
            return Err(EINVAL);
        }
        let mut st = self.state.lock();
        // Until this call succeeds the vCPU cannot run: a failure below must
        // not leave a half-written state behind that RUN would enter.
        st.sregs_set = false;
        if let Some(m) = &mut st.shadow {
            m.crs = GuestCrs { cr0: r.cr0, cr3: r.cr3, cr4: r.cr4, efer: r.efer };
            m.reset()?;
        }
        let v = st.vmcb();
        let s = &mut v.save;
        s.cs = seg_to_vmcb(&r.cs);
        s.ds = seg_to_vmcb(&r.ds);
        s.es = seg_to_vmcb(&r.es);
        s.fs = seg_to_vmcb(&r.fs);
        s.gs = seg_to_vmcb(&r.gs);
        s.ss = seg_to_vmcb(&r.ss);
        s.tr = seg_to_vmcb(&r.tr);
        s.ldtr = seg_to_vmcb(&r.ldt);
        s.gdtr = VmcbSeg { base: r.gdt.base, limit: u32::from(r.gdt.limit), ..Default::default() };
        s.idtr = VmcbSeg { base: r.idt.base, limit: u32::from(r.idt.limit), ..Default::default() };
        s.cr0 = r.cr0;
        s.cr2 = r.cr2;
        s.cr3 = r.cr3;
        s.cr4 = r.cr4;
        s.efer = r.efer | efer::SVME;
        // The CPL is SS.DPL in protected mode and 0 in real mode.
        s.cpl = if r.cr0 & 1 != 0 { ((r.ss.attrib >> 5) & 3) as u8 } else { 0 };
        v.control.int_ctl = (v.control.int_ctl & !int_ctl::V_TPR_MASK) | r.cr8 as u32;
        // Under shadow paging the hardware gets the shadow MMU's registers,
        // never the guest's.
        st.shadow_rebuilt();
        st.sregs_set = true;
        st.unverified = true;
        Ok(())
    }

    /// `PACIFICA_GET_STATS`.
    pub(crate) fn stats(&self) -> uapi::ExitStats {
        uapi::ExitStats { counts: self.state.lock().stats }
    }

    /// `PACIFICA_RUN`: runs until an exit userspace must see, a signal, or
    /// an error.
    pub(crate) fn run(&self) -> Result {
        let mut guard = self.state.lock();
        let st = &mut *guard;
        if !st.regs_set || !st.sregs_set {
            return Err(EINVAL);
        }
        exit::complete_pending(self, st);
        loop {
            if shim::signal_pending() {
                st.count(uapi::PACIFICA_STAT_SIGNAL);
                return Err(EINTR);
            }
            shim::cond_resched();
            self.enter_guest(st)?;
            st.count(uapi::PACIFICA_STAT_EXITS);
            match exit::handle(self, st) {
                Flow::Continue => {}
                Flow::User => {
                    st.count(uapi::PACIFICA_STAT_USER_EXITS);
                    return Ok(());
                }
                Flow::Stop => {
                    // The guest state can no longer be run as it is.
                    st.sregs_set = false;
                    st.count(uapi::PACIFICA_STAT_USER_EXITS);
                    return Ok(());
                }
            }
        }
    }

    /// One VMRUN, from a host with interrupts on to a host with
    /// interrupts on, with the guest's FPU state swapped in and out.
    fn enter_guest(&self, st: &mut VcpuState) -> Result {
        let g = global::get();
        let _fpu = FpuSection::begin(); // also keeps us on this CPU
        let cpu = shim::smp_processor_id();
        let pc = g.cpus.get(cpu).ok_or(EIO)?;
        if !pc.enabled() {
            return Err(EIO);
        }
        // A vCPU needs a fresh ASID on a CPU it has not run on in this
        // ASID generation: the TLB may hold another VM's translations under
        // an ASID it last gave out (APM 15.16).
        // Without flush-by-ASID, a fresh ASID is how this vCPU's TLB entries
        // are dropped.
        let by_asid = g.cpus.info.has(features::FLUSH_BY_ASID);
        if st.flush_tlb && by_asid {
            st.vmcb().control.tlb_ctl = tlb_ctl::FLUSH_ASID;
        }
        let invlpga = st.invlpga.take();
        if st.last_cpu != Some(cpu) || st.asid_generation != pc.generation() || (st.flush_tlb && !by_asid) {
            let (asid, generation, flush) = pc.new_asid(g.cpus.info.nr_asids);
            st.last_cpu = Some(cpu);
            st.asid_generation = generation;
            let c = &mut st.vmcb().control;
            c.asid = asid;
            if flush {
                c.tlb_ctl = tlb_ctl::FLUSH_ALL_ASID;
            }
        } else if let Some(la) = invlpga {
            // The ASID is this CPU's and stays in use: drop the one entry.
            // (A fresh ASID above has no entries to drop.)
            let asid = st.vmcb().control.asid;
            // SAFETY: SVM is on on this CPU (checked above) and preemption
            // is off, so `asid` is this CPU's; INVLPGA only drops entries.
            unsafe { ops::invlpga(la, asid) };
        }
        st.flush_tlb = false;
        let vmcb_pa = st.vmcb.pa();
        if st.unverified {
            st.entry_snapshot.bytes_mut()[..SAVE_AREA_LEN].copy_from_slice(&st.vmcb.bytes_mut()[SAVE_AREA]);
        }
        {
            let _irqs = IrqsOff::new();
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
            // SAFETY: SVM is enabled on this CPU (checked above) and
            // preemption is off, so it stays this CPU; GIF is cleared before
            // and set after the world switch, and the VMCB and host save
            // page are ours. The FPU section lets the guest own the FPU
            // registers, whose state we load and save around the switch.
            unsafe {
                ops::clgi();
                ops::fxrstor(&st.fx);
                ops::world_switch(vmcb_pa, pc.host_save_pa(), &mut st.gprs);
                ops::fxsave(&mut st.fx);
                ops::stgi();
            }
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
            shim::restore_host_debugregs();
        }
        if st.unverified {
            let code = st.vmcb().control.exit_code;
            if code == u64::MAX || code == 0xffff_ffff {
                st.vmcb.bytes_mut()[SAVE_AREA].copy_from_slice(&st.entry_snapshot.bytes_mut()[..SAVE_AREA_LEN]);
            } else {
                st.unverified = false;
            }
        }
        let c = &mut st.vmcb().control;
        c.tlb_ctl = tlb_ctl::DO_NOTHING;
        // EVENTINJ is consumed by VMRUN; an event the exit interrupted is
        // delivered again (APM 15.7.2).
        c.event_inj = 0;
        if c.exit_int_info & event::VALID != 0 {
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
        Ok(())
    }
}

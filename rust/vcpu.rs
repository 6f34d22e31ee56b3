// SPDX-License-Identifier: GPL-2.0

//! A vCPU: its VMCB, its registers, the run page it shares with userspace.
//! The run loop is in `vcpu/run.rs`.

use crate::emulate::insn::{self, CpuMode, Reg};
use crate::hw::gpr::Gpr;
use crate::emulate::walk::PagingState;
use crate::exit::Pending;
use crate::global;
use crate::testbed;
use crate::hw::cr::cr0;
use crate::hw::seg;
use crate::hw::svm::{
    efer, event, int_ctl, intercept, vector, Exception, INTERCEPT_CR_WORD,
    INTERCEPT_DR_WORD, INTERCEPT_EXCEPTION_WORD, NESTED_CTL_NP_ENABLE,
};
use crate::policy::{cpuid, state};
use crate::hw::vmcb::{Vmcb, VmcbSeg};
use crate::mm::pages::HwPages;
use crate::mm::shadow_mmu::{GuestCrs, ShadowMmu};
use crate::vm::Paging;
use crate::svm::ops::{self, FxArea, GuestGprs};
use crate::uapi;
use crate::vm::Vm;
use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::{new_condvar, new_mutex, Arc, CondVar, Mutex};

mod run;

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
    pub(crate) stats: [u64; uapi::PACIFICA_STAT_MAX as usize],
    /// Guest RIP when the exit being handled happened.
    pub(crate) exit_rip: u64,
    /// Userspace changed the guest state since the last successful entry,
    /// so VMRUN may refuse it (VMEXIT_INVALID).
    unverified: bool,
    /// The VMCB's state save area as it was before an unverified entry: a
    /// refused VMRUN may leave other values there (QEMU writes the host's:
    /// `testbed`), and userspace must get back what it set.
    entry_snapshot: HwPages,
    /// The intercepts this vCPU runs with, written into the VMCB at
    /// creation and after every refused VMRUN together with the rest of
    /// the control area the module owns ([`VcpuState::assert_control`]):
    /// nothing a refused VMRUN writes back outlives it.
    intercepts: [u32; 6],
    /// The nested page tables' root (NPT), or 0.
    npt_root: u64,
    /// Nested paging: the guest's EFER.LME is set but its paging is off,
    /// so the VMCB holds LME = 0 until the guest turns paging on (CR0
    /// writes are intercepted). QEMU's SVM cannot leave a guest with
    /// LME = 1 and PAE = 0 (Documentation/security.rst).
    pub(crate) lme_hidden: bool,
    /// The CR4 bits the guest may set (its CPUID's).
    pub(crate) cr4_allowed: u64,
    /// DR7 as the guest wrote it (MOV DR7 is intercepted); the VMCB may
    /// hold less (see [`VcpuState::set_guest_dr7`]).
    pub(crate) guest_dr7: u64,
    /// An unhandled exit was logged for this vCPU (`exit::log_unhandled`).
    pub(crate) logged_unhandled: bool,
}

/// A virtual CPU.
#[pin_data]
pub(crate) struct Vcpu {
    pub(crate) vm: Arc<Vm>,
    pub(crate) id: u32,
    /// The page userspace maps; see [`uapi::Run`].
    run_page: HwPages,
    /// Whether a thread owns [`Self::state`] (see [`Vcpu::lock`]).
    #[pin]
    busy: Mutex<bool>,
    /// Signalled when `busy` goes false.
    #[pin]
    idle: CondVar,
    #[pin]
    state: Mutex<VcpuState>,
}

/// A vCPU's state, owned by one thread; see [`Vcpu::lock`].
pub(crate) struct VcpuLock<'a> {
    vcpu: &'a Vcpu,
    guard: Option<Guard<'a, VcpuState, MutexBackend>>,
}

impl core::ops::Deref for VcpuLock<'_> {
    type Target = VcpuState;
    fn deref(&self) -> &VcpuState {
        // `guard` is only `None` inside `drop`.
        self.guard.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl core::ops::DerefMut for VcpuLock<'_> {
    fn deref_mut(&mut self) -> &mut VcpuState {
        self.guard.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for VcpuLock<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        *self.vcpu.busy.lock() = false;
        self.vcpu.idle.notify_all();
    }
}

impl VcpuState {
    /// The VMCB.
    pub(crate) fn vmcb(&mut self) -> &mut Vmcb {
        // SAFETY: the page is 4 KiB, page-aligned, and a `Vmcb` is plain
        // integers, valid for any bit pattern.
        unsafe { self.vmcb.as_mut::<Vmcb>() }
    }

    /// Where general register `r` lives: RAX and RSP in the VMCB, the
    /// others in `gprs`.
    fn gpr_slot(&mut self, r: Gpr) -> &mut u64 {
        match r {
            Gpr::Rax => &mut self.vmcb().save.rax,
            Gpr::Rsp => &mut self.vmcb().save.rsp,
            Gpr::Rcx => &mut self.gprs.rcx,
            Gpr::Rdx => &mut self.gprs.rdx,
            Gpr::Rbx => &mut self.gprs.rbx,
            Gpr::Rbp => &mut self.gprs.rbp,
            Gpr::Rsi => &mut self.gprs.rsi,
            Gpr::Rdi => &mut self.gprs.rdi,
            Gpr::R8 => &mut self.gprs.r8,
            Gpr::R9 => &mut self.gprs.r9,
            Gpr::R10 => &mut self.gprs.r10,
            Gpr::R11 => &mut self.gprs.r11,
            Gpr::R12 => &mut self.gprs.r12,
            Gpr::R13 => &mut self.gprs.r13,
            Gpr::R14 => &mut self.gprs.r14,
            Gpr::R15 => &mut self.gprs.r15,
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

    /// The code size the guest runs in.
    pub(crate) fn cpu_mode(&mut self) -> CpuMode {
        let s = &self.vmcb().save;
        if s.efer & efer::LMA != 0 && s.cs.attrib & seg::attr::L != 0 {
            CpuMode::Bits64
        } else if s.cr0 & cr0::PE != 0 && s.cs.attrib & seg::attr::DB != 0 {
            CpuMode::Bits32
        } else {
            CpuMode::Bits16
        }
    }

    /// The guest's EFER as the guest sees it (without SVME).
    pub(crate) fn guest_efer(&mut self) -> u64 {
        if let Some(m) = &self.shadow {
            return m.crs.efer;
        }
        let hidden = if self.lme_hidden { efer::LME } else { 0 };
        (self.vmcb().save.efer & !efer::SVME) | hidden
    }

    /// Sets the guest's EFER (validated already) under nested paging.
    pub(crate) fn set_npt_efer(&mut self, v: u64) {
        self.vmcb().save.efer = v | efer::SVME;
        self.lme_hidden = false;
        self.hide_lme();
    }

    /// Keeps EFER.LME out of the VMCB while the guest's paging is off
    /// (nested paging; see `lme_hidden`).
    fn hide_lme(&mut self) {
        if self.shadow.is_some() {
            return;
        }
        let s = &mut self.vmcb().save;
        if s.cr0 & cr0::PG == 0 && s.efer & efer::LME != 0 {
            s.efer &= !efer::LME;
            self.lme_hidden = true;
        }
    }

    /// Writes the control area the module owns: the
    /// intercepts, the permission maps, nested paging, and interrupt
    /// masking (V_INTR_MASKING: without it a guest with IF = 0 would keep
    /// the host's interrupts out, and its CR8 would be the host's TPR).
    fn assert_control(&mut self) {
        let g = global::get();
        let (npt, root) = (self.shadow.is_none(), self.npt_root);
        let intercepts = self.intercepts;
        let c = &mut self.vmcb().control;
        c.intercepts = intercepts;
        c.iopm_base_pa = g.iopm.pa();
        c.msrpm_base_pa = g.msrpm.pa();
        c.int_ctl = (c.int_ctl & int_ctl::V_TPR_MASK) | int_ctl::V_INTR_MASKING;
        c.virt_ext = 0;
        c.clean = 0;
        c.pause_filter_count = 0;
        c.pause_filter_thresh = 0;
        if npt {
            c.nested_ctl = NESTED_CTL_NP_ENABLE;
            c.nested_cr3 = root;
        } else {
            c.nested_ctl = 0;
            c.nested_cr3 = 0;
        }
    }

    /// The guest's paging registers.
    pub(crate) fn paging_state(&mut self) -> PagingState {
        if let Some(m) = &self.shadow {
            return m.paging_state();
        }
        let efer = self.guest_efer();
        let s = &self.vmcb().save;
        let maxphyaddr = global::get().cpus.info.maxphyaddr;
        PagingState { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer, maxphyaddr }
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

    /// MOV to DR7: the guest reads back what it wrote; the hardware may
    /// get less (`testbed::hw_dr7`).
    pub(crate) fn set_guest_dr7(&mut self, v: u64) {
        self.guest_dr7 = v;
        self.vmcb().save.dr7 = testbed::hw_dr7(v);
    }

    /// Loads TR (validated already). On the testbed the VMCB gets the
    /// available type (`testbed::hw_tr_attrib`) and, under shadow paging,
    /// the page at TR's base is guarded (`ShadowMmu::guard_tss`);
    /// `PACIFICA_GET_SREGS` reports the busy type, as a CPU would.
    pub(crate) fn set_tr(&mut self, tr: VmcbSeg) -> Result {
        if testbed::intercept_ltr() {
            if let Some(m) = self.shadow.as_mut() {
                if m.guard_tss(Some(tr.base))? {
                    self.shadow_rebuilt();
                }
            }
        }
        self.vmcb().save.tr = VmcbSeg { attrib: testbed::hw_tr_attrib(tr.attrib), ..tr };
        Ok(())
    }

    /// Asks for this vCPU's TLB entries to be dropped before the next VMRUN.
    pub(crate) fn request_tlb_flush(&mut self) {
        self.flush_tlb = true;
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
    pub(crate) fn count(&mut self, stat: u32) {
        self.stats[stat as usize] += 1;
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
        let mut vmcb = HwPages::page()?;
        let npt_root = vm.mem.lock().npt_root;
        let intercepts = Self::intercepts(vm.paging);
        {
            // SAFETY: as in `VcpuState::vmcb`.
            let v = unsafe { vmcb.as_mut::<Vmcb>() };
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
            Paging::Shadow => Some(KBox::new(ShadowMmu::new()?, GFP_KERNEL_ACCOUNT)?),
        };
        let state = VcpuState {
            vmcb,
            gprs: GuestGprs::default(),
            fx: KBox::new(FxArea::reset(), GFP_KERNEL_ACCOUNT)?,
            regs_set: false,
            sregs_set: false,
            last_cpu: None,
            asid_generation: 0,
            pending: Pending::None,
            shadow,
            flush_tlb: false,
            invlpga: None,
            guest_pkru: 0,
            stats: [0; uapi::PACIFICA_STAT_MAX as usize],
            exit_rip: 0,
            unverified: true,
            entry_snapshot: HwPages::page()?,
            intercepts,
            npt_root: if vm.paging == Paging::Npt { npt_root } else { 0 },
            lme_hidden: false,
            guest_dr7: 0x400,
            logged_unhandled: false,
            cr4_allowed: cpuid::guest_cr4_allowed(
                cpuid::GuestKind { vcpu_id: id, shadow: vm.paging == Paging::Shadow },
                |l, s| {
                    let h = ops::cpuid(l, s);
                    [h.eax, h.ebx, h.ecx, h.edx]
                },
            ),
        };
        let mut state = state;
        state.assert_control();
        let run_page = HwPages::page()?;
        Arc::pin_init(
            pin_init!(Vcpu {
                vm,
                id,
                run_page,
                busy <- new_mutex!(false, "Vcpu::busy"),
                idle <- new_condvar!("Vcpu::idle"),
                state <- new_mutex!(state, "Vcpu::state"),
            }),
            GFP_KERNEL_ACCOUNT,
        )
    }

    /// The intercepts of a vCPU in a VM with `paging` (the audit is in
    /// Documentation/security.rst, "What is intercepted").
    fn intercepts(paging: Paging) -> [u32; 6] {
        let mut c = [0u32; 6];
        let set = |c: &mut [u32; 6], (word, bit): (usize, u32)| c[word] |= 1 << bit;
        for i in [
            intercept::INTR, intercept::NMI, intercept::SMI, intercept::INIT, intercept::RDPMC,
            intercept::CPUID, intercept::RSM, intercept::INVD, intercept::HLT, intercept::INVLPGA,
            intercept::IOIO_PROT, intercept::MSR_PROT, intercept::SHUTDOWN, intercept::VMRUN,
            intercept::VMMCALL, intercept::VMLOAD, intercept::VMSAVE, intercept::STGI,
            intercept::CLGI, intercept::SKINIT, intercept::RDTSCP, intercept::WBINVD,
            intercept::MONITOR, intercept::MWAIT, intercept::MWAIT_COND, intercept::XSETBV,
            intercept::RDPRU,
        ] {
            set(&mut c, i);
        }
        // #DB and #AC: an exception raised while delivering itself loops
        // forever in the CPU (CVE-2015-8104, CVE-2015-5307); intercepted,
        // each round is an exit the host can interrupt.
        c[INTERCEPT_EXCEPTION_WORD] |= (1 << vector::DB) | (1 << vector::AC);
        testbed::add_intercepts(&mut c);
        // DR7: see `VcpuState::set_guest_dr7`.
        c[INTERCEPT_DR_WORD] |= (1 << 7) | (1 << (16 + 7));
        match paging {
            Paging::Npt => {
                // CR4: the guest may set only what its CPUID offers. CR0:
                // turning paging on must put a hidden EFER.LME back
                // (`lme_hidden`), and QEMU's TCG lets 64-bit code clear
                // CR0.PG, which is #GP.
                c[INTERCEPT_CR_WORD] |= (1 << 16) | (1 << (16 + 4));
            }
            Paging::Shadow => {
                // The guest's CR0, CR3 and CR4 are the shadow MMU's; its
                // page faults and INVLPG go through it too, and so do task
                // switches, which load CR3 from the TSS.
                for cr in [0, 3, 4] {
                    c[INTERCEPT_CR_WORD] |= (1 << cr) | (1 << (16 + cr));
                }
                c[INTERCEPT_EXCEPTION_WORD] |= 1 << vector::PF;
                set(&mut c, intercept::INVLPG);
                set(&mut c, intercept::TASK_SWITCH);
            }
        }
        c
    }

    /// Takes the vCPU's state for one ioctl. A thread that finds another
    /// one running the vCPU sleeps until it is done, and gives up with
    /// EINTR when a signal arrives (the state's own mutex is never waited
    /// on: it is taken only by the thread that set `busy`).
    pub(crate) fn lock(&self) -> Result<VcpuLock<'_>> {
        let mut busy = self.busy.lock();
        while *busy {
            if self.idle.wait_interruptible(&mut busy) {
                return Err(EINTR);
            }
        }
        *busy = true;
        drop(busy);
        Ok(VcpuLock { vcpu: self, guard: Some(self.state.lock()) })
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

    /// Writes the run page, all but `immediate_exit`, which is userspace's.
    pub(crate) fn write_run(&self, run: &uapi::Run) {
        let p = self.run_ptr();
        // SAFETY: as in `read_run`; each field is written in place, so the
        // byte userspace owns is never touched.
        unsafe {
            core::ptr::addr_of_mut!((*p).exit_reason).write_volatile(run.exit_reason);
            core::ptr::addr_of_mut!((*p).pad).write_volatile([0; 3]);
            core::ptr::addr_of_mut!((*p).rip).write_volatile(run.rip);
            core::ptr::addr_of_mut!((*p).exit).write_volatile(run.exit);
        }
    }

    /// Whether userspace asked for RUN to return at once.
    fn immediate_exit(&self) -> bool {
        let p = self.run_ptr();
        // SAFETY: as in `read_run`; a byte is valid for every bit pattern.
        unsafe { core::ptr::addr_of!((*p).immediate_exit).read_volatile() != 0 }
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
        // The area lies inside the page (checked in uapi.rs and the header), `at` inside it.
        (self.run_page.va().wrapping_add(uapi::PACIFICA_RUN_IO_DATA_OFFSET + at), fit)
    }

    /// `PACIFICA_GET_REGS`.
    pub(crate) fn get_regs(&self) -> Result<uapi::Regs> {
        let mut st = self.lock()?;
        let g = st.gprs;
        let s = &st.vmcb().save;
        Ok(uapi::Regs {
            rax: s.rax, rbx: g.rbx, rcx: g.rcx, rdx: g.rdx, rsi: g.rsi, rdi: g.rdi, rsp: s.rsp,
            rbp: g.rbp, r8: g.r8, r9: g.r9, r10: g.r10, r11: g.r11, r12: g.r12, r13: g.r13,
            r14: g.r14, r15: g.r15, rip: s.rip, rflags: s.rflags,
        })
    }

    /// `PACIFICA_SET_REGS`.
    pub(crate) fn set_regs(&self, r: &uapi::Regs) -> Result {
        let mut st = self.lock()?;
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
        Ok(())
    }

    /// `PACIFICA_GET_SREGS`.
    pub(crate) fn get_sregs(&self) -> Result<uapi::Sregs> {
        let mut st = self.lock()?;
        let efer = st.guest_efer();
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
            efer,
            reserved: [0; 8],
        };
        if seg::is_tss(sregs.tr.attrib) {
            sregs.tr.attrib |= seg::attr::TSS_BUSY_BIT;
        }
        if let Some(m) = &st.shadow {
            sregs.cr0 = m.crs.cr0;
            sregs.cr3 = m.crs.cr3;
            sregs.cr4 = m.crs.cr4;
        }
        Ok(sregs)
    }

    /// `PACIFICA_SET_SREGS`. A state VMRUN would refuse, or no processor
    /// could be in, or that QEMU's SVM cannot leave, is refused with EINVAL
    /// (`policy/state.rs`); SVME, which the guest must not see, is reserved.
    pub(crate) fn set_sregs(&self, r: &uapi::Sregs) -> Result {
        let mut st = self.lock()?;
        state::check_sregs(r, st.cr4_allowed, global::get().cpus.info.maxphyaddr).map_err(|_| EINVAL)?;
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
        // An event the old state was delivering (re-queued from EXITINTINFO
        // when it stopped) is not the new state's.
        v.control.event_inj = 0;
        v.control.event_inj_err = 0;
        st.lme_hidden = false;
        st.hide_lme();
        st.set_tr(seg_to_vmcb(&r.tr))?;
        // Under shadow paging the hardware gets the shadow MMU's registers,
        // never the guest's.
        st.shadow_rebuilt();
        st.sregs_set = true;
        st.unverified = true;
        Ok(())
    }

    /// `PACIFICA_GET_STATS`.
    pub(crate) fn stats(&self) -> Result<uapi::ExitStats> {
        Ok(uapi::ExitStats { counts: self.lock()?.stats })
    }
}

// SPDX-License-Identifier: GPL-2.0

//! A vCPU: its VMCB, its registers, the run page it shares with userspace.
//! The run loop is in `vcpu/run.rs`.

use crate::emulate::walk::{self, Access, PagingState, WalkError};
use crate::exit::{Env, GuestCpu, GuestState};
use crate::global;
use crate::hw::cr::{cr0, dr, rflags};
use crate::hw::gpr::GuestGprs;
use crate::hw::seg;
use crate::hw::svm::{
    efer, features, int_ctl, intercept, intercept_read, intercept_write, vector, INTERCEPT_CR_WORD, INTERCEPT_DR_WORD,
    INTERCEPT_EXCEPTION_WORD, NESTED_CTL_NP_ENABLE,
};
use crate::hw::vmcb::{Vmcb, VmcbSeg};
use crate::irq::inbox::{Inbox, LINT0, LINT1};
use crate::irq::lapic::Lapic;
use crate::mm::pages::HwPages;
use crate::mm::shadow::{Fault, GuestCrs};
use crate::mm::shadow_mmu::ShadowMmu;
use crate::policy::{cpuid, state};
use crate::shim::{self, Wake};
use crate::svm::ops::{self, FxArea};
use crate::testbed;
use crate::uapi;
use crate::vm::{Paging, Vm};
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
    /// The guest's registers beyond the VMCB, its pending work, its
    /// counters: the exit handlers' (`exit/state.rs`).
    pub(crate) cpu: GuestCpu,
    fx: KBox<FxArea>,
    regs_set: bool,
    sregs_set: bool,
    /// The CPU and ASID generation the VMCB's ASID belongs to.
    last_cpu: Option<u32>,
    asid_generation: u64,
    /// The shadow MMU, for a VM without nested paging.
    shadow: Option<KBox<ShadowMmu>>,
    /// The guest's PKRU, when the host uses protection keys.
    guest_pkru: u32,
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
    /// The host time (`ktime_get`) the APIC timer's hrtimer is armed for.
    timer_armed: Option<u64>,
}

/// What other threads reach of a vCPU without taking its state: the
/// inbox of its local APIC and its wake-up point (Documentation/
/// interrupts.rst, "Kicks"). Shared with the VM, which routes MSIs.
pub(crate) struct VcpuIrq {
    pub(crate) inbox: Inbox,
    pub(crate) wake: Wake,
}

impl VcpuIrq {
    /// Makes the vCPU look at its inbox: wakes it from HLT, or forces it
    /// out of the guest.
    pub(crate) fn kick(&self) {
        self.wake.kick(shim::WAKE_INJECT);
    }
}

/// A virtual CPU.
#[pin_data]
pub(crate) struct Vcpu {
    pub(crate) vm: Arc<Vm>,
    pub(crate) id: u32,
    /// The inbox and wake-up point (`None` without an in-kernel APIC).
    pub(crate) irq: Option<Arc<VcpuIrq>>,
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

    /// The guest as the exit handlers see it, with `vcpu` (this state's
    /// owner) as their [`Env`].
    pub(crate) fn guest<'a>(&'a mut self, vcpu: &'a Vcpu) -> GuestState<'a, Vcpu> {
        // SAFETY: as in `vmcb`.
        let vmcb = unsafe { self.vmcb.as_mut::<Vmcb>() };
        GuestState { vmcb, cpu: &mut self.cpu, shadow: self.shadow.as_deref_mut(), env: vcpu }
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
}

fn seg_to_vmcb(s: &uapi::Segment) -> VmcbSeg {
    VmcbSeg { selector: s.selector, attrib: s.attrib, limit: s.limit, base: s.base }
}

fn seg_from_vmcb(s: &VmcbSeg) -> uapi::Segment {
    uapi::Segment { base: s.base, limit: s.limit, selector: s.selector, attrib: s.attrib }
}

impl Vcpu {
    /// Creates vCPU `id` of `vm` with its VMCB set up for `vm`'s paging
    /// mode, and a local APIC if `lapic`.
    pub(crate) fn new(vm: Arc<Vm>, id: u32, lapic: bool) -> Result<Arc<Self>> {
        let mut vmcb = HwPages::page()?;
        let npt_root = vm.mem.lock().npt_root;
        let intercepts = Self::intercepts(vm.paging);
        {
            // SAFETY: as in `VcpuState::vmcb`.
            let v = unsafe { vmcb.as_mut::<Vmcb>() };
            let s = &mut v.save;
            s.g_pat = PAT_RESET;
            s.dr6 = dr::DR6_RESET;
            s.dr7 = dr::DR7_RESET;
            s.efer = efer::SVME;
            s.rflags = rflags::FIXED;
            s.cr0 = cr0::RESET;
        }
        let shadow = match vm.paging {
            Paging::Npt => None,
            Paging::Shadow => Some(KBox::new(ShadowMmu::new()?, GFP_KERNEL_ACCOUNT)?),
        };
        // TSC-deadline needs the TSC's rate, to turn deadlines into host
        // time.
        let tsc_deadline = lapic && shim::tsc_khz() != 0;
        let cr4_allowed = cpuid::guest_cr4_allowed(
            cpuid::GuestKind { vcpu_id: id, shadow: vm.paging == Paging::Shadow, lapic, tsc_deadline },
            |l, s| host_cpuid(l, s),
        );
        let irq = if lapic {
            Some(Arc::new(VcpuIrq { inbox: Inbox::default(), wake: Wake::new()? }, GFP_KERNEL_ACCOUNT)?)
        } else {
            None
        };
        let state = VcpuState {
            vmcb,
            // x2APIC is offered with the APIC.
            cpu: GuestCpu::new(cr4_allowed, lapic.then(|| Lapic::new(id, true, tsc_deadline))),
            fx: KBox::new(FxArea::reset(), GFP_KERNEL_ACCOUNT)?,
            regs_set: false,
            sregs_set: false,
            last_cpu: None,
            asid_generation: 0,
            shadow,
            guest_pkru: 0,
            unverified: true,
            entry_snapshot: HwPages::page()?,
            intercepts,
            npt_root: if vm.paging == Paging::Npt { npt_root } else { 0 },
            timer_armed: None,
        };
        let mut state = state;
        state.assert_control();
        if let (Some(irq), Some(a)) = (&irq, &state.cpu.lapic) {
            irq.inbox.publish(a.destination());
        }
        let run_page = HwPages::page()?;
        Arc::pin_init(
            pin_init!(Vcpu {
                vm,
                id,
                irq,
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
        // DR7: see `GuestState::set_guest_dr7`.
        c[INTERCEPT_DR_WORD] |= intercept_read(7) | intercept_write(7);
        match paging {
            Paging::Npt => {
                // CR4: the guest may set only what its CPUID offers. CR0:
                // turning paging on must put a hidden EFER.LME back
                // (`lme_hidden`), and QEMU's TCG lets 64-bit code clear
                // CR0.PG, which is #GP.
                c[INTERCEPT_CR_WORD] |= intercept_write(0) | intercept_write(4);
            }
            Paging::Shadow => {
                // The guest's CR0, CR3 and CR4 are the shadow MMU's; its
                // page faults and INVLPG go through it too, and so do task
                // switches, which load CR3 from the TSS.
                for cr in [0, 3, 4] {
                    c[INTERCEPT_CR_WORD] |= intercept_read(cr) | intercept_write(cr);
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
    fn read_run(&self) -> uapi::Run {
        // SAFETY: the page is ours, aligned and large enough; userspace may
        // change it concurrently, which can only give us stale values of a
        // type valid for every bit pattern.
        unsafe { self.run_ptr().read_volatile() }
    }

    /// Whether userspace asked for RUN to return at once.
    fn immediate_exit(&self) -> bool {
        let p = self.run_ptr();
        // SAFETY: as in `read_run`; a byte is valid for every bit pattern.
        unsafe { core::ptr::addr_of!((*p).immediate_exit).read_volatile() != 0 }
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
        let g = st.cpu.gprs;
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
        st.cpu.gprs = GuestGprs {
            rbx: r.rbx, rcx: r.rcx, rdx: r.rdx, rsi: r.rsi, rdi: r.rdi, rbp: r.rbp, r8: r.r8,
            r9: r.r9, r10: r.r10, r11: r.r11, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
        };
        let s = &mut st.vmcb().save;
        s.rax = r.rax;
        s.rsp = r.rsp;
        s.rip = r.rip;
        // Bit 1 is always one; the hardware checks reserved bits at VMRUN.
        s.rflags = r.rflags | rflags::FIXED;
        // A new state runs: a vCPU halted in the old one is not any more.
        st.cpu.halted = false;
        st.regs_set = true;
        st.unverified = true;
        Ok(())
    }

    /// `PACIFICA_GET_SREGS`.
    pub(crate) fn get_sregs(&self) -> Result<uapi::Sregs> {
        let mut st = self.lock()?;
        let crs = st.guest(self).guest_crs();
        let v = st.vmcb();
        let s = &v.save;
        let dt = |d: &VmcbSeg| uapi::Dtable { base: d.base, limit: d.limit as u16, pad: [0; 3] };
        let mut sregs = uapi::Sregs {
            cs: seg_from_vmcb(&s.cs), ds: seg_from_vmcb(&s.ds), es: seg_from_vmcb(&s.es),
            fs: seg_from_vmcb(&s.fs), gs: seg_from_vmcb(&s.gs), ss: seg_from_vmcb(&s.ss),
            tr: seg_from_vmcb(&s.tr), ldt: seg_from_vmcb(&s.ldtr),
            gdt: dt(&s.gdtr), idt: dt(&s.idtr),
            cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4,
            cr8: u64::from(v.control.v_tpr()),
            efer: crs.efer,
            reserved: [0; 8],
        };
        if seg::is_tss(sregs.tr.attrib) {
            sregs.tr.attrib |= seg::attr::TSS_BUSY_BIT;
        }
        if st.shadow.is_some() {
            sregs.cr0 = crs.cr0;
            sregs.cr3 = crs.cr3;
            sregs.cr4 = crs.cr4;
        }
        Ok(sregs)
    }

    /// `PACIFICA_SET_SREGS`. A state VMRUN would refuse, or no processor
    /// could be in, or that QEMU's SVM cannot leave, is refused with EINVAL
    /// (`policy/state.rs`); SVME, which the guest must not see, is reserved.
    pub(crate) fn set_sregs(&self, r: &uapi::Sregs) -> Result {
        let mut st = self.lock()?;
        state::check_sregs(r, st.cpu.cr4_allowed, global::get().cpus.info.maxphyaddr).map_err(|_| EINVAL)?;
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
        v.control.set_v_tpr(r.cr8 as u32);
        // An event the old state was delivering (re-queued from EXITINTINFO
        // when it stopped) is not the new state's.
        v.control.event_inj = 0;
        v.control.event_inj_err = 0;
        let mut g = st.guest(self);
        // The in-kernel APIC's TPR follows the new CR8.
        crate::exit::sync_tpr(&mut g);
        g.cpu.lme_hidden = false;
        g.hide_lme();
        g.set_tr(seg_to_vmcb(&r.tr)).map_err(|_| ENOMEM)?;
        // Under shadow paging the hardware gets the shadow MMU's registers,
        // never the guest's.
        g.shadow_rebuilt();
        st.sregs_set = true;
        st.unverified = true;
        Ok(())
    }

    /// `PACIFICA_GET_LAPIC`, as the bytes of a `uapi::LapicState` (built
    /// on the heap: a KiB is too much for the kernel stack). ENXIO without
    /// an in-kernel APIC.
    pub(crate) fn get_lapic(&self) -> Result<KVVec<u8>> {
        let mut out = KVVec::from_elem(0u8, core::mem::size_of::<uapi::LapicState>(), GFP_KERNEL_ACCOUNT)?;
        let now = self.now_ns();
        let st = self.lock()?;
        let a = st.cpu.lapic.as_ref().ok_or(ENXIO)?;
        out[..8].copy_from_slice(&a.apic_base().to_le_bytes());
        a.save(&mut out[uapi::LAPIC_STATE_REGS..], now);
        Ok(out)
    }

    /// `PACIFICA_SET_LAPIC`, from the bytes of a `uapi::LapicState`. ENXIO
    /// without an in-kernel APIC; EINVAL for non-zero reserved words and
    /// for a state no APIC could be in (`Lapic::restore`).
    pub(crate) fn set_lapic(&self, state: &[u8]) -> Result {
        let reserved = &state[8..uapi::LAPIC_STATE_REGS];
        if reserved.iter().any(|&b| b != 0) {
            return Err(EINVAL);
        }
        let mut base = [0u8; 8];
        base.copy_from_slice(&state[..8]);
        let now = self.now_ns();
        let maxphyaddr = global::get().cpus.info.maxphyaddr;
        let mut st = self.lock()?;
        let a = st.cpu.lapic.as_mut().ok_or(ENXIO)?;
        a.restore(u64::from_le_bytes(base), &state[uapi::LAPIC_STATE_REGS..], maxphyaddr, now).map_err(|_| EINVAL)?;
        // The guest's CR8 is the new TPR's class.
        let class = a.tpr() >> 4;
        let dest = a.destination();
        st.vmcb().control.set_v_tpr(class);
        if let Some(irq) = &self.irq {
            irq.inbox.publish(dest);
        }
        Ok(())
    }

    /// `PACIFICA_NMI`: an NMI for the vCPU. Does not wait for a running
    /// `PACIFICA_RUN`. ENXIO without an in-kernel APIC.
    pub(crate) fn nmi(&self) -> Result {
        let irq = self.irq.as_ref().ok_or(ENXIO)?;
        irq.inbox.post_nmi();
        irq.kick();
        Ok(())
    }

    /// `PACIFICA_SET_LINT`: the level of LINT0 or LINT1. Does not wait
    /// for a running `PACIFICA_RUN`. ENXIO without an in-kernel APIC;
    /// EINVAL for another pin or level.
    pub(crate) fn set_lint(&self, l: &uapi::Lint) -> Result {
        let irq = self.irq.as_ref().ok_or(ENXIO)?;
        let pin = match l.pin {
            0 => LINT0,
            1 => LINT1,
            _ => return Err(EINVAL),
        };
        if l.level > 1 {
            return Err(EINVAL);
        }
        irq.inbox.set_lint(pin, l.level == 1);
        irq.kick();
        Ok(())
    }

    /// `PACIFICA_GET_STATS`.
    pub(crate) fn stats(&self) -> Result<uapi::ExitStats> {
        Ok(uapi::ExitStats { counts: self.lock()?.cpu.stats })
    }
}

/// The host CPU's CPUID answer as EAX..EDX.
fn host_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let h = ops::cpuid(leaf, subleaf);
    [h.eax, h.ebx, h.ecx, h.edx]
}

/// The world as the exit handlers reach it from this vCPU: its VM's
/// memory, its run page, the host.
impl Env for Vcpu {
    type Shadow = ShadowMmu;

    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        self.vm.mem.lock().read(gpa, buf)
    }

    fn write(&self, gpa: u64, data: &[u8]) -> bool {
        self.vm.mem.lock().write(gpa, data)
    }

    fn fetch_or_u32(&self, gpa: u64, bits: u32) -> Option<u32> {
        self.vm.mem.lock().fetch_or_u32(gpa, bits)
    }

    fn is_ram(&self, gpa: u64) -> bool {
        self.vm.mem.lock().is_ram(gpa)
    }

    fn translate(&self, ps: &PagingState, la: u64, access: Access) -> core::result::Result<u64, WalkError> {
        walk::translate(&*self.vm.mem.lock(), ps, la, access)
    }

    fn shadow_fault(&self, mmu: &mut ShadowMmu, la: u64, access: Access) -> Fault {
        mmu.fault(&self.vm.mem.lock(), la, access)
    }

    fn run_hypercall_ret(&self) -> u64 {
        // SAFETY: every field of the union is plain integers, so reading
        // any of them is sound whatever userspace wrote.
        unsafe { self.read_run().exit.hypercall.ret }
    }

    fn run_mmio_data(&self) -> [u8; 8] {
        // SAFETY: as above.
        unsafe { self.read_run().exit.mmio.data }
    }

    fn run_inta_vector(&self) -> u32 {
        // SAFETY: as above.
        unsafe { self.read_run().exit.inta.vector }
    }

    /// Writes the run page, all but `immediate_exit`, which is userspace's.
    fn write_run(&self, run: &uapi::Run) {
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

    /// Copies `out.len()` bytes from offset `at` of the run page's I/O
    /// data area (truncated to the area).
    fn io_read(&self, at: usize, out: &mut [u8]) {
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
    fn io_write(&self, at: usize, data: &[u8]) {
        let area = self.io_area(at, data.len());
        for (i, &b) in data.iter().take(area.1).enumerate() {
            // SAFETY: as in `io_read`, for a write.
            unsafe { area.0.add(i).write_volatile(b) };
        }
    }

    fn vcpu_id(&self) -> u32 {
        self.id
    }

    fn host_cpuid(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        host_cpuid(leaf, subleaf)
    }

    fn host_tsc(&self) -> u64 {
        ops::rdtsc()
    }

    fn now_ns(&self) -> u64 {
        kernel::time::Ktime::ktime_get().to_ns() as u64
    }

    fn has_nrips(&self) -> bool {
        global::get().cpus.info.has(features::NRIPS)
    }

    fn maxphyaddr(&self) -> u8 {
        global::get().cpus.info.maxphyaddr
    }

    fn shadow_caching(&self) -> bool {
        ShadowMmu::caching_allowed(self.vm.nr_vcpus())
    }

    fn report_unhandled(&self, code: u64, info: [u64; 3], intercepts: &[u32; 6], rip: u64) {
        pr_notice!(
            "vCPU {}: unhandled #VMEXIT {:#x}: info1 {:#x} info2 {:#x} intinfo {:#x} intercepts {:08x?} rip {:#x}\n",
            self.id,
            code,
            info[0],
            info[1],
            info[2],
            intercepts,
            rip
        );
    }
}

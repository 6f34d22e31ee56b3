// SPDX-License-Identifier: GPL-2.0

//! Turning SVM on and off on each CPU, what the CPU offers, and the per-CPU
//! ASID allocator.

use super::ops::{self, cpuid};
use crate::hw::msr;
use crate::hw::svm::{self, efer, features};
use crate::mm::pages::HwPages;
use crate::shim;
use crate::uapi;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use kernel::prelude::*;

/// What the CPU's SVM offers (CPUID 8000_000A).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SvmInfo {
    pub(crate) revision: u32,
    pub(crate) nr_asids: u32,
    pub(crate) edx: u32,
    /// The physical-address width guests see (CPUID 8000_0008 EAX[7:0],
    /// passed through by the CPUID policy).
    pub(crate) maxphyaddr: u8,
    /// The host runs with protection keys on (CPUID 7 ECX.OSPKE): PKRU,
    /// which VMRUN does not switch, must be swapped around the guest.
    pub(crate) host_pku: bool,
    /// The CPU is QEMU's TCG (hypervisor signature "TCGTCGTCGTCG"), whose
    /// SVM has bugs a guest can reach; `Documentation/security.rst`,
    /// "Testbed workarounds", lists what the module does about them.
    pub(crate) qemu_tcg: bool,
}

impl SvmInfo {
    /// Whether the CPU has all of `bits` (`hw::svm::features`).
    pub(crate) fn has(&self, bits: u32) -> bool {
        self.edx & bits == bits
    }

    /// The `PACIFICA_FEATURE_*` bits for userspace.
    pub(crate) fn uapi_features(&self) -> u64 {
        let map = [
            (features::NPT, uapi::PACIFICA_FEATURE_NPT),
            (features::NRIPS, uapi::PACIFICA_FEATURE_NRIPS),
            (features::VMCB_CLEAN, uapi::PACIFICA_FEATURE_VMCB_CLEAN),
            (features::FLUSH_BY_ASID, uapi::PACIFICA_FEATURE_FLUSH_BY_ASID),
            (features::DECODE_ASSISTS, uapi::PACIFICA_FEATURE_DECODE_ASSISTS),
            (features::VGIF, uapi::PACIFICA_FEATURE_VGIF),
        ];
        map.iter().filter(|(hw, _)| self.has(*hw)).fold(0, |acc, (_, u)| acc | u)
    }
}

/// Checks that this CPU can do SVM with nested paging and reads its features.
pub(crate) fn detect() -> Result<SvmInfo> {
    let max_ext = cpuid(0x8000_0000, 0).eax;
    if max_ext < 0x8000_000a || cpuid(0x8000_0001, 0).ecx & svm::CPUID_8000_0001_ECX_SVM == 0 {
        pr_err!("this CPU has no AMD-V (SVM)\n");
        return Err(ENODEV);
    }
    // SAFETY: VM_CR exists on every CPU that reports SVM.
    if unsafe { ops::rdmsr(msr::VM_CR) } & svm::VM_CR_SVMDIS != 0 {
        pr_err!("SVM is disabled by the firmware (VM_CR.SVMDIS)\n");
        return Err(ENODEV);
    }
    let l = cpuid(0x8000_000a, 0);
    let host_pku = cpuid(0, 0).eax >= 7 && cpuid(7, 0).ecx & (1 << 4) != 0;
    let maxphyaddr = if max_ext >= 0x8000_0008 { cpuid(0x8000_0008, 0).eax as u8 } else { 36 };
    let hv = cpuid(0x4000_0000, 0);
    let qemu_tcg = cpuid(1, 0).ecx & (1 << 31) != 0
        && [hv.ebx, hv.ecx, hv.edx] == [u32::from_le_bytes(*b"TCGT"), u32::from_le_bytes(*b"CGTC"), u32::from_le_bytes(*b"GTCG")];
    let info = SvmInfo { revision: l.eax & 0xff, nr_asids: l.ebx, edx: l.edx, maxphyaddr, host_pku, qemu_tcg };
    if !info.has(features::NPT) {
        pr_err!("this CPU's SVM has no nested paging\n");
        return Err(ENODEV);
    }
    if info.nr_asids < 2 {
        pr_err!("the CPU reports {} ASIDs; at least 2 are needed\n", info.nr_asids);
        return Err(ENODEV);
    }
    Ok(info)
}

/// One CPU's SVM state.
///
/// The atomics are only written by their own CPU (with preemption off) or
/// by its hotplug callbacks, which run on it; atomics keep that sound
/// without locks.
pub(crate) struct PerCpu {
    /// VM_HSAVE_PA's page: where VMRUN saves the host state.
    hsave: HwPages,
    /// Where the world switch VMSAVEs the host's FS/GS/TR/syscall state.
    host_save: HwPages,
    enabled: AtomicBool,
    /// Next ASID to hand out on this CPU.
    next_asid: AtomicU32,
    /// Bumped each time the ASIDs run out and the TLB is flushed whole.
    generation: AtomicU64,
    /// The ASIDs were reused and the whole TLB must be flushed by the next
    /// VMRUN that succeeds on this CPU (a refused one flushes nothing).
    flush_all: AtomicBool,
    /// The VMCB that last ran here: another vCPU's state gets an IBPB first.
    last_vmcb: AtomicU64,
}

/// The per-CPU states, indexed by CPU id.
pub(crate) struct Cpus {
    cpus: KVec<PerCpu>,
    pub(crate) info: SvmInfo,
}

impl Cpus {
    /// Allocates the state of every possible CPU (SVM not yet enabled).
    pub(crate) fn new(info: SvmInfo) -> Result<Self> {
        let n = shim::nr_cpu_ids() as usize;
        let mut cpus = KVec::with_capacity(n, GFP_KERNEL)?;
        for _ in 0..n {
            cpus.push(
                PerCpu {
                    hsave: HwPages::page()?,
                    host_save: HwPages::page()?,
                    enabled: AtomicBool::new(false),
                    next_asid: AtomicU32::new(1),
                    generation: AtomicU64::new(1),
                    flush_all: AtomicBool::new(false),
                    last_vmcb: AtomicU64::new(0),
                },
                GFP_KERNEL,
            )?;
        }
        Ok(Cpus { cpus, info })
    }

    /// The state of CPU `cpu`.
    pub(crate) fn get(&self, cpu: u32) -> Option<&PerCpu> {
        self.cpus.get(cpu as usize)
    }

    /// Sets EFER.SVME and VM_HSAVE_PA on the calling CPU, which is `cpu`.
    pub(crate) fn enable_this(&self, cpu: u32) -> Result {
        let pc = self.get(cpu).ok_or(EINVAL)?;
        // SAFETY: EFER exists everywhere; SVME is only set on a CPU that
        // reports SVM (checked by `detect`), and the kernel does not rely on
        // it being clear. VM_HSAVE_PA gets a page this module owns for as
        // long as SVME stays set.
        unsafe {
            let e = ops::rdmsr(msr::EFER);
            if e & efer::SVME != 0 {
                pr_err!("SVM already in use on CPU {} (is kvm_amd loaded?)\n", cpu);
                return Err(EBUSY);
            }
            ops::wrmsr(msr::EFER, e | efer::SVME);
            ops::wrmsr(msr::VM_HSAVE_PA, pc.hsave.pa());
        }
        pc.enabled.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Clears EFER.SVME and VM_HSAVE_PA on the calling CPU, which is `cpu`.
    pub(crate) fn disable_this(&self, cpu: u32) {
        let Some(pc) = self.get(cpu) else { return };
        if !pc.enabled.swap(false, Ordering::Relaxed) {
            return;
        }
        // No guest runs on this CPU: vCPUs run with preemption off and hold
        // a reference to the module, so the offline callback and module
        // exit cannot interleave with one; the emergency path runs in an
        // NMI or an IPI, which cannot arrive while a guest runs (GIF is
        // clear around VMRUN), and a world switch it interrupts before CLGI
        // survives the SVM instructions faulting (vmenter.S).
        //
        // SAFETY: reading EFER has no side effects.
        let e = unsafe { ops::rdmsr(msr::EFER) };
        if e & efer::SVME != 0 {
            // A fatal error between CLGI and STGI (vmenter.S) may have
            // brought us here with GIF clear, and a CPU left with GIF clear
            // and SVM off keeps NMIs and INIT blocked for good (the crash
            // kernel could not start it again). KVM does the same.
            // SAFETY: SVME is set, so STGI does not fault; it only lets
            // interrupts, NMIs and INIT in again, and no guest runs here.
            unsafe { ops::stgi() };
        }
        // SAFETY: no guest runs on this CPU (above), so nothing uses the
        // host save area or SVM once they are gone.
        unsafe {
            ops::wrmsr(msr::VM_HSAVE_PA, 0);
            ops::wrmsr(msr::EFER, e & !efer::SVME);
        }
    }
}

impl PerCpu {
    /// Physical address of this CPU's host VMSAVE page.
    pub(crate) fn host_save_pa(&self) -> u64 {
        self.host_save.pa()
    }

    /// Whether SVM is on for this CPU.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The current ASID generation of this CPU.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// Hands out a fresh ASID on this CPU and returns it with its
    /// generation. When the ASIDs run out, numbers are reused from 1 and
    /// [`Self::must_flush_all`] holds until a VMRUN flushed the TLB.
    ///
    /// Must be called on this CPU with preemption off.
    pub(crate) fn new_asid(&self, nr_asids: u32) -> (u32, u64) {
        let mut asid = self.next_asid.load(Ordering::Relaxed);
        if asid >= nr_asids {
            self.generation.fetch_add(1, Ordering::Relaxed);
            self.flush_all.store(true, Ordering::Relaxed);
            asid = 1;
        }
        self.next_asid.store(asid + 1, Ordering::Relaxed);
        (asid, self.generation())
    }

    /// Whether the next VMRUN here must flush every ASID's TLB entries.
    pub(crate) fn must_flush_all(&self) -> bool {
        self.flush_all.load(Ordering::Relaxed)
    }

    /// A VMRUN that flushed every ASID succeeded on this CPU.
    pub(crate) fn flushed_all(&self) {
        self.flush_all.store(false, Ordering::Relaxed);
    }

    /// Records that `vmcb_pa` runs next on this CPU; returns whether another
    /// VMCB ran here before it (then the branch predictors must be cleared
    /// of what that vCPU trained).
    pub(crate) fn switch_vmcb(&self, vmcb_pa: u64) -> bool {
        self.last_vmcb.swap(vmcb_pa, Ordering::Relaxed) != vmcb_pa
    }
}

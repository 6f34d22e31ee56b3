// SPDX-License-Identifier: GPL-2.0

//! Every x86 instruction the module executes itself, each in one small
//! wrapper, and the call of the world switch (`c_shim/vmenter.S`). This
//! is the only Rust file with inline assembly.

use crate::hw::gpr::GuestGprs;
use core::arch::asm;

/// The result of CPUID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CpuidResult {
    pub(crate) eax: u32,
    pub(crate) ebx: u32,
    pub(crate) ecx: u32,
    pub(crate) edx: u32,
}

/// Executes CPUID on this CPU.
pub(crate) fn cpuid(leaf: u32, subleaf: u32) -> CpuidResult {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    CpuidResult { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

/// Reads an MSR.
///
/// # Safety
///
/// `msr` must exist on this CPU (otherwise RDMSR raises #GP in the kernel).
pub(crate) unsafe fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: the caller guarantees the MSR exists.
    unsafe { asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Writes an MSR.
///
/// # Safety
///
/// `msr` must exist and `value` must be valid for it, and changing it must
/// not break the kernel's assumptions (the module only writes EFER.SVME and
/// VM_HSAVE_PA).
pub(crate) unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: guaranteed by the caller.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack))
    };
}

/// Reads the time-stamp counter.
pub(crate) fn rdtsc() -> u64 {
    // SAFETY: RDTSC is always allowed at CPL 0 and has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Drops the TLB entry for linear address `va` in `asid` (INVLPGA).
///
/// # Safety
///
/// EFER.SVME must be set on this CPU.
pub(crate) unsafe fn invlpga(va: u64, asid: u32) {
    // SAFETY: guaranteed by the caller; INVLPGA only invalidates.
    unsafe { asm!("invlpga rax, ecx", in("rax") va, in("ecx") asid, options(nostack)) };
}

/// Sets the global interrupt flag (STGI).
///
/// # Safety
///
/// EFER.SVME must be set on this CPU.
pub(crate) unsafe fn stgi() {
    // SAFETY: guaranteed by the caller; STGI only lets interrupts, NMIs
    // and INIT through again.
    unsafe { asm!("stgi", options(nostack)) };
}

/// Reads PKRU, the protection-key rights of user pages.
///
/// # Safety
///
/// CR4.PKE must be set (the CPU reports OSPKE).
pub(crate) unsafe fn rdpkru() -> u32 {
    let v: u32;
    // SAFETY: guaranteed by the caller; RDPKRU only reads.
    unsafe { asm!("rdpkru", in("ecx") 0, out("eax") v, out("edx") _, options(nomem, nostack)) };
    v
}

/// Writes PKRU.
///
/// # Safety
///
/// CR4.PKE must be set, and the value must be what the current context
/// (host or guest) expects before it next touches user memory.
pub(crate) unsafe fn wrpkru(v: u32) {
    // SAFETY: guaranteed by the caller.
    unsafe { asm!("wrpkru", in("eax") v, in("ecx") 0, in("edx") 0, options(nostack)) };
}

/// Saves the x87/SSE state to `area` (FXSAVE64).
///
/// # Safety
///
/// Must run inside a kernel FPU section.
pub(crate) unsafe fn fxsave(area: &mut FxArea) {
    // SAFETY: `area` is 512 bytes aligned to 16, as FXSAVE requires.
    unsafe { asm!("fxsave64 [{}]", in(reg) area.0.as_mut_ptr(), options(nostack)) };
}

/// Loads the x87/SSE state from `area` (FXRSTOR64).
///
/// # Safety
///
/// Must run inside a kernel FPU section; `area` must hold a valid image
/// (reserved MXCSR bits clear), or FXRSTOR raises #GP.
pub(crate) unsafe fn fxrstor(area: &FxArea) {
    // SAFETY: `area` is 512 bytes aligned to 16 and valid per the caller.
    unsafe { asm!("fxrstor64 [{}]", in(reg) area.0.as_ptr(), options(nostack, readonly)) };
}

/// An FXSAVE image: the guest's x87 and SSE registers while the host runs.
#[repr(C, align(16))]
pub(crate) struct FxArea(pub(crate) [u8; 512]);

impl FxArea {
    /// The state after FNINIT and with MXCSR at its reset value, as a
    /// processor comes out of reset.
    pub(crate) fn reset() -> Self {
        let mut a = FxArea([0; 512]);
        a.0[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
        a.0[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        a.0[28..32].copy_from_slice(&0xffffu32.to_le_bytes()); // MXCSR_MASK
        a
    }
}

/// Runs the guest once: from VMRUN to the next #VMEXIT, through
/// `pac_vmrun` in `c_shim/vmenter.S`. Returns false when an SVM
/// instruction faulted because an emergency path turned SVM off on this
/// CPU: then nothing ran and the host state is intact.
///
/// What the hardware does and what is left to the assembly (APM 15.5):
/// VMRUN saves the host's RIP, RSP, RAX, RFLAGS, CR0/CR3/CR4, EFER, GDTR,
/// IDTR and the ES/CS/SS/DS selectors into the host save area
/// (VM_HSAVE_PA) and loads the guest's from the VMCB; #VMEXIT reverses
/// that. It does not switch FS, GS, TR, LDTR, KernelGSBase, STAR, LSTAR,
/// CSTAR, SFMASK and the SYSENTER MSRs: VMSAVE stores those into a page
/// and VMLOAD loads them, so the host's are saved into `host_save_pa`
/// first, the guest's loaded from its VMCB, and the reverse done after the
/// exit. Nor does it switch the general registers other than RAX and RSP:
/// the guest's are loaded from and stored to `gprs`, and cleared after the
/// exit. GIF is clear from before the first VMSAVE to after the last
/// VMLOAD, so no interrupt or NMI runs on the guest's GS.base.
///
/// # Safety
///
/// Interrupts and preemption must be off (so the CPU cannot change),
/// EFER.SVME must have been set on this CPU with VM_HSAVE_PA pointing at
/// its save page, `vmcb_pa` must be the physical address of a valid VMCB
/// page and `host_save_pa` of a page this CPU owns.
pub(crate) unsafe fn world_switch(vmcb_pa: u64, host_save_pa: u64, gprs: &mut GuestGprs) -> bool {
    // SAFETY: per the function's contract; `gprs` is a live `GuestGprs`
    // whose layout the assembly's offsets match (asserted below).
    unsafe {
        crate::shim::bindings::pac_vmrun(vmcb_pa, host_save_pa, gprs as *mut GuestGprs as *mut core::ffi::c_void) == 0
    }
}

const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(GuestGprs, rbx) == 0x00);
    assert!(offset_of!(GuestGprs, rcx) == 0x08);
    assert!(offset_of!(GuestGprs, rdx) == 0x10);
    assert!(offset_of!(GuestGprs, rsi) == 0x18);
    assert!(offset_of!(GuestGprs, rdi) == 0x20);
    assert!(offset_of!(GuestGprs, rbp) == 0x28);
    assert!(offset_of!(GuestGprs, r8) == 0x30);
    assert!(offset_of!(GuestGprs, r9) == 0x38);
    assert!(offset_of!(GuestGprs, r10) == 0x40);
    assert!(offset_of!(GuestGprs, r11) == 0x48);
    assert!(offset_of!(GuestGprs, r12) == 0x50);
    assert!(offset_of!(GuestGprs, r13) == 0x58);
    assert!(offset_of!(GuestGprs, r14) == 0x60);
    assert!(offset_of!(GuestGprs, r15) == 0x68);
    assert!(core::mem::size_of::<GuestGprs>() == 0x70);
};

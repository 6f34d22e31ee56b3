// SPDX-License-Identifier: GPL-2.0

//! Workarounds for the testbed's CPU: QEMU's TCG with `-cpu EPYC`, whose
//! SVM has bugs a guest or a VMM can reach (Documentation/security.rst,
//! "Testbed workarounds"). Pacifica must keep L1 alive whatever a guest or
//! a user does, so each is Pacifica's to work around, and each is listed
//! here: what QEMU does wrong, how it was seen, and why the workaround is
//! harmless on real hardware. Those that are code of their own live in
//! this file; the others are named where they live. Depends on `core`
//! only.
//!
//! Applied only where [`active`] (the hypervisor signature `TCGTCGTCGTCG`):
//!
//! - **Data breakpoints** ([`hw_dr7`]). A data breakpoint that fires while
//!   an event is being delivered aborts QEMU (an assertion in its I/O
//!   thread lock; a guest's #DB loop reached it). The hardware gets DR7
//!   without data breakpoints; the guest reads back what it wrote. Not
//!   applied elsewhere, where data breakpoints work.
//! - **Breakpoints outliving their guest** ([`rearm_dr7`]). QEMU before
//!   9.1 loads DR7 at VMRUN and #VMEXIT without rebuilding its list of
//!   breakpoints (fixed upstream by "target/i386: disable/enable
//!   breakpoints on vmentry/vmexit"; Debian 12's 7.2 lacks it): a guest's
//!   instruction breakpoint, armed by its MOV to DR0-DR3 (not
//!   intercepted), stayed armed after the exit and fired in a later guest
//!   at the same address (seen: `svm_insn_ud` got #DB at VMRUN in a `make
//!   test` after the guest fuzzer had run). After every exit the host's
//!   DR7 is written again, which rebuilds the list, here only, since real
//!   CPUs load DR7 themselves. Twice: QEMU skips the rebuild for a write
//!   that changes only the enable bits from what it holds, and #VMEXIT
//!   left it holding the reset value, so a single write of that value
//!   rebuilt nothing (seen: `lapic` guests took #DB after the fuzzer, and
//!   on until L1 rebooted); the first write differs above the enable bits
//!   (GE), the second puts the reset value back.
//! - **TR's type** ([`hw_tr_attrib`]). QEMU keeps a TSS's type
//!   "available" in TR and aborts ("invalid tss type", L1 dies) when an
//!   interrupt that changes privilege finds the busy type a VMRUN gave it.
//!   The VMCB gets the available type. Real CPUs keep it busy, so it is
//!   applied only here.
//! - **LTR of a null selector** ([`intercept_ltr`], `exit/seg.rs`). QEMU
//!   accepts it, then aborts ("invalid tss") at the next change of
//!   privilege. LTR is intercepted and done by the module with a CPU's
//!   checks; real CPUs raise the #GP themselves.
//! - **The TASK_SWITCH intercept** (`ShadowMmu::guard_tss`,
//!   `exit::seg::tss_page_write`). QEMU ignores it, and a task switch under
//!   shadow paging would load the new TSS's CR3 into the hardware: the
//!   page at TR's base is kept read-only, so the task switch faults first.
//!   Real CPUs honour the intercept.
//! - **MOV to CR8 while V_IRQ is set** ([`intercept_cr8_with_virq`]).
//!   QEMU's CR8 write with V_INTR_MASKING re-raises its virtual interrupt
//!   through `cpu_interrupt` without holding its I/O thread lock, and
//!   aborts (`tcg_handle_interrupt: assertion failed`; L1 dies): any guest
//!   with an in-kernel APIC reached it by writing CR8 while an interrupt
//!   was offered (seen: the ioctl fuzzer's forked children). CR8 writes are
//!   intercepted whenever V_IRQ is set and done by the module
//!   (`exit::apic::set_cr8`); real CPUs need that only while the TPR holds
//!   a vector back.
//!
//! Applied on every CPU, because they cost nothing:
//!
//! - **EFER.LME with paging off** (`GuestCpu::lme_hidden`). QEMU cannot
//!   leave a guest with LME = 1 and PAE = 0 (it restores the host's CR0
//!   before its EFER and CR4, refuses it, and leaves L1 running on the
//!   guest's CR0, GS and TR). LME stays out of the VMCB while the guest's
//!   paging is off; the guest reads its own value.
//! - **A refused VMRUN's save area** (`VcpuState::entry_snapshot`). QEMU
//!   writes the host's state into the guest's save area when VMRUN
//!   refuses it; the module restores what userspace set (or clears it),
//!   and rewrites the control area (QEMU writes `int_ctl` back as 0).
//!   A real CPU leaves both alone, and restoring them changes nothing.
//! - **An interrupt reported as an exception** ([`exit_int_info`]). When
//!   an exit interrupts the delivery of a virtual interrupt (V_IRQ), QEMU
//!   reports it in EXITINTINFO as an exception of the interrupt's vector
//!   (seen: VMRUN refused the re-injected "exception 0x40" under shadow
//!   paging, the delivery's stack push having faulted). A vector above 31
//!   is re-injected as the interrupt it is; real CPUs report interrupts as
//!   such, so nothing changes there.
//! - **A 32-bit VMEXIT_INVALID** ([`is_vmexit_invalid`]). QEMU writes
//!   EXITCODE -1 as a 32-bit value; both forms are VMEXIT_INVALID, and no
//!   other exit code is 0xffff_ffff.
//! - **Unchecked MSR writes** (`policy::msr::WRITE_CHECKED`). QEMU takes a
//!   non-canonical FS/GS base or LSTAR where a CPU raises #GP; their
//!   writes are intercepted and checked. Rare writes, so cheap anywhere.
//! - **String I/O without the address size** (`exit/io.rs`). QEMU leaves
//!   the address-size bits of the IOIO EXITINFO1 empty; the instruction's
//!   prefixes are decoded instead, which a real CPU's bits would agree
//!   with.
//! - **VMRUN in an STI shadow** (`c_shim/vmenter.S`). QEMU sets its
//!   interrupt inhibition from the VMCB's interrupt shadow only when that
//!   is set, so the shadow of the host's STI just before VMRUN covered the
//!   guest's first instruction: a virtual interrupt pending at VMRUN was
//!   not taken there (seen: a guest woken from HLT by its timer ran `cli`
//!   first, and slept again, for ever). A NOP between STI and VMRUN ends
//!   the shadow in the host; GIF is clear there, so nothing is taken in
//!   between, on any CPU.
//! - **CR0.PG cleared in 64-bit mode** (`exit/cr.rs`). QEMU allows it; CR0
//!   writes are intercepted under nested paging (for `lme_hidden` too) and
//!   the #GP is raised by the module.

use crate::hw::seg::{self, attr};
use crate::hw::svm::{event, exit, intercept};
use core::sync::atomic::{AtomicBool, Ordering};

/// Set once, when the module finds its CPUs ([`detect`]).
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Records whether the CPU is QEMU's TCG, before any vCPU exists.
pub(crate) fn detect(qemu_tcg: bool) {
    ACTIVE.store(qemu_tcg, Ordering::Relaxed);
}

/// Whether the CPU is QEMU's TCG.
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The DR7 the hardware gets for the guest's `v`.
pub(crate) fn hw_dr7(v: u64) -> u64 {
    if !active() {
        return v;
    }
    let mut hw = v;
    for i in 0..4 {
        // R/W 01 (writes) or 11 (reads and writes): a data breakpoint.
        if (v >> (16 + 4 * i)) & 1 != 0 {
            hw &= !(3 << (2 * i));
        }
    }
    hw
}

/// The TR attributes the hardware gets for the guest's `a`.
pub(crate) fn hw_tr_attrib(a: u16) -> u16 {
    if active() && seg::is_tss(a) {
        a & !attr::TSS_BUSY_BIT
    } else {
        a
    }
}

/// Whether DR7 is written after every #VMEXIT (`shim::restore_host_debugregs`).
pub(crate) fn rearm_dr7() -> bool {
    active()
}

/// Whether CR8 writes are intercepted whenever a virtual interrupt is
/// offered (`exit::apic::offer_interrupt`).
pub(crate) fn intercept_cr8_with_virq() -> bool {
    active()
}

/// Whether LTR is intercepted (and done by `exit::seg::ltr`); the shadow
/// MMU's TSS guard follows the same rule.
pub(crate) fn intercept_ltr() -> bool {
    active()
}

/// Adds the testbed's intercepts to a vCPU's.
pub(crate) fn add_intercepts(c: &mut [u32; 6]) {
    if intercept_ltr() {
        let (word, bit) = intercept::TR_WRITE;
        c[word] |= 1 << bit;
    }
}

/// EXITINTINFO as a CPU would report it. QEMU marks a hardware interrupt
/// it was delivering in the guest (a virtual interrupt, V_IRQ) as an
/// *exception* of the interrupt's vector; re-injected as it stands,
/// VMRUN refuses it (an exception vector above 31). No exception has a
/// vector above 31, so such an event is an interrupt.
pub(crate) fn exit_int_info(info: u32) -> u32 {
    let ty = info & (7 << event::TYPE_SHIFT);
    if ty == event::TYPE_EXEPT && info & event::VECTOR_MASK >= 32 {
        return (info & !(7 << event::TYPE_SHIFT) & !event::ERROR_VALID) | event::TYPE_INTR;
    }
    info
}

/// Whether `code` is VMEXIT_INVALID, in either width.
pub(crate) fn is_vmexit_invalid(code: u64) -> bool {
    code == exit::INVALID || code == exit::INVALID as u32 as u64
}

// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers around the C shim (`c_shim/shim.h`), whose declarations
//! bindgen generates into `shim_bindings.rs` at build time.
//!
//! Each wrapper here is the only place its C function is called from.

#[allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    unreachable_pub,
    clippy::all
)]
pub(crate) mod bindings {
    include!("shim_bindings.rs");
}

pub(crate) use bindings::{mm_struct, page};

/// Returns the id of the CPU this code runs on. Only meaningful while
/// preemption is off.
pub(crate) fn smp_processor_id() -> u32 {
    // SAFETY: `smp_processor_id()` has no preconditions; with preemption
    // enabled the answer may be stale, which callers account for.
    unsafe { bindings::pac_smp_processor_id() }
}

/// The number of CPU ids (`nr_cpu_ids`): every CPU id is below it.
pub(crate) fn nr_cpu_ids() -> u32 {
    // SAFETY: reads a variable fixed at boot.
    unsafe { bindings::pac_nr_cpu_ids() }
}

/// Whether the current task has a signal pending.
pub(crate) fn signal_pending() -> bool {
    // SAFETY: `signal_pending(current)` has no preconditions in task context.
    unsafe { bindings::pac_signal_pending() != 0 }
}

/// The host kernel's TSC rate in kHz, 0 if it does not know it.
pub(crate) fn tsc_khz() -> u32 {
    // SAFETY: reads an exported variable, written only during boot.
    unsafe { bindings::pac_tsc_khz() }
}

/// Yields the CPU if the scheduler wants it.
pub(crate) fn cond_resched() {
    // SAFETY: called from process context with no locks that forbid sleeping.
    unsafe { bindings::pac_cond_resched() }
}

/// Physical address of a kernel direct-map address.
pub(crate) fn virt_to_phys(va: *const u8) -> u64 {
    // SAFETY: `virt_to_phys` only computes; callers pass direct-map addresses
    // (pages from `pac_alloc_pages`).
    unsafe { bindings::pac_virt_to_phys(va as *mut _) }
}

/// Kernel direct-map address of a physical address.
pub(crate) fn phys_to_virt(pa: u64) -> *mut u8 {
    // SAFETY: `phys_to_virt` only computes.
    unsafe { bindings::pac_phys_to_virt(pa) as *mut u8 }
}

/// Registers `/dev/pacifica`.
pub(crate) fn misc_register() -> kernel::error::Result {
    // SAFETY: called once from module init.
    kernel::error::to_result(unsafe { bindings::pac_misc_register() })
}

/// Removes `/dev/pacifica`.
pub(crate) fn misc_deregister() {
    // SAFETY: called once from module exit, after a successful register.
    unsafe { bindings::pac_misc_deregister() }
}

/// Registers the CPU hotplug callbacks, which also run on every online CPU.
pub(crate) fn cpuhp_setup() -> kernel::error::Result {
    // SAFETY: called once from module init; the callbacks are our exported
    // `pacifica_cpu_online/offline`.
    kernel::error::to_result(unsafe { bindings::pac_cpuhp_setup() })
}

/// Removes the hotplug callbacks, running the offline one on every CPU.
pub(crate) fn cpuhp_remove() {
    // SAFETY: called once from module exit after a successful setup.
    unsafe { bindings::pac_cpuhp_remove() }
}

/// Charges `nr` pages to the current process's RLIMIT_MEMLOCK. Returns the
/// charged mm, which [`unaccount_locked`] needs back.
pub(crate) fn account_locked(nr: usize) -> kernel::error::Result<*mut mm_struct> {
    let mut mm = core::ptr::null_mut();
    // SAFETY: `mm` is a valid out-pointer; the C side charges all or nothing.
    kernel::error::to_result(unsafe { bindings::pac_account_locked(nr as _, &mut mm) })?;
    Ok(mm)
}

/// Uncharges what [`account_locked`] charged.
///
/// # Safety
///
/// `nr` and `mm` must be those of one successful [`account_locked`] call,
/// not yet undone.
pub(crate) unsafe fn unaccount_locked(nr: usize, mm: *mut mm_struct) {
    // SAFETY: guaranteed by the caller.
    unsafe { bindings::pac_unaccount_locked(nr as _, mm) }
}

/// Pins `pages.len()` pages of the current process's memory at `uaddr`
/// (charged already by [`account_locked`]): all of them, or none.
pub(crate) fn pin_user_pages(uaddr: u64, pages: &mut [*mut page]) -> kernel::error::Result {
    // SAFETY: `pages` has room for `pages.len()` pointers.
    kernel::error::to_result(unsafe { bindings::pac_pin_user_pages(uaddr, pages.len() as _, pages.as_mut_ptr()) })
}

/// Unpins pages pinned by [`pin_user_pages`].
///
/// # Safety
///
/// `pages` must come from one successful [`pin_user_pages`] call, not yet
/// undone.
pub(crate) unsafe fn unpin_user_pages(pages: &mut [*mut page]) {
    // SAFETY: guaranteed by the caller.
    unsafe { bindings::pac_unpin_user_pages(pages.as_mut_ptr(), pages.len() as _) }
}

/// An indirect branch prediction barrier, where the kernel uses them.
pub(crate) fn ibpb() {
    // SAFETY: a barrier (an MSR write the kernel's alternatives choose) with
    // no preconditions.
    unsafe { bindings::pac_ibpb() }
}

/// Registers the reboot, emergency and suspend/resume callbacks.
pub(crate) fn power_setup() -> kernel::error::Result {
    // SAFETY: called once from module init, after SVM is on everywhere;
    // the callbacks are our exported `pacifica_cpu_emergency_disable` and
    // `pacifica_cpu_resume`.
    kernel::error::to_result(unsafe { bindings::pac_power_setup() })
}

/// Removes what [`power_setup`] registered.
pub(crate) fn power_remove() {
    // SAFETY: called once from module exit after a successful setup.
    unsafe { bindings::pac_power_remove() }
}

/// Physical address of a pinned page.
///
/// # Safety
///
/// `p` must be a valid `struct page` pointer (a pinned page).
pub(crate) unsafe fn page_to_phys(p: *mut page) -> u64 {
    // SAFETY: guaranteed by the caller.
    unsafe { bindings::pac_page_to_phys(p) }
}

/// A section in which the guest may own the FPU registers; see
/// `pac_fpu_begin` in the shim. Preemption is off while it lives.
pub(crate) struct FpuSection(());

impl FpuSection {
    /// Saves the task's user FPU state and disables preemption.
    pub(crate) fn begin() -> Self {
        // SAFETY: called in task context with interrupts enabled, paired
        // with `pac_fpu_end` in `drop`.
        unsafe { bindings::pac_fpu_begin() };
        FpuSection(())
    }
}

impl Drop for FpuSection {
    fn drop(&mut self) {
        // SAFETY: paired with the `pac_fpu_begin` in `begin`.
        unsafe { bindings::pac_fpu_end() };
    }
}

/// Restores the host's hardware breakpoints after a guest ran, if the host
/// has any; with `rearm_dr7` (the testbed: `testbed::rearm_dr7`), writes
/// DR7's reset value otherwise. Call with interrupts off, after the host's
/// state is back.
pub(crate) fn restore_host_debugregs(rearm_dr7: bool) {
    // SAFETY: called with interrupts disabled, on the host's GS (after the
    // world switch's VMLOAD), as `hw_breakpoint_restore` requires; writing
    // DR7's reset value disables every breakpoint, which the host had none
    // of.
    unsafe { bindings::pac_restore_host_debugregs(i32::from(rearm_dr7)) }
}

/// Disables local interrupts until dropped.
pub(crate) struct IrqsOff(());

impl IrqsOff {
    /// Disables local interrupts.
    pub(crate) fn new() -> Self {
        // SAFETY: interrupts are enabled again in `drop`.
        unsafe { bindings::pac_local_irq_disable() };
        IrqsOff(())
    }
}

impl Drop for IrqsOff {
    fn drop(&mut self) {
        // SAFETY: paired with `new`, which disabled them.
        unsafe { bindings::pac_local_irq_enable() };
    }
}

/// A vCPU's wake-up point: pending-work bits, the wait queue of an
/// in-kernel HLT, the APIC timer's hrtimer (`pac_wake` in the shim, where
/// the protocol is described).
pub(crate) struct Wake(core::ptr::NonNull<bindings::pac_wake>);

// SAFETY: every `pac_wake_*` function may be called from any thread, and
// concurrently with the others (atomics, a wait queue, an hrtimer); the
// object lives until `drop`.
unsafe impl Send for Wake {}
// SAFETY: as above.
unsafe impl Sync for Wake {}

/// The `Wake` bit of another thread's injection (the hrtimer's own bit,
/// `PAC_WAKE_TIMER`, is set in the shim).
pub(crate) const WAKE_INJECT: u32 = bindings::PAC_WAKE_INJECT;

impl Wake {
    /// A wake-up point with nothing pending and the timer idle.
    pub(crate) fn new() -> kernel::error::Result<Self> {
        // SAFETY: no preconditions; NULL on allocation failure.
        let w = unsafe { bindings::pac_wake_new() };
        core::ptr::NonNull::new(w).map(Wake).ok_or(kernel::error::code::ENOMEM)
    }

    /// Arms the timer to expire at `ktime_get()` time `ns` (re-arming it if
    /// it is armed).
    pub(crate) fn arm(&self, ns: u64) {
        // SAFETY: `self.0` is live (see the type).
        unsafe { bindings::pac_wake_timer_arm(self.0.as_ptr(), ns) }
    }

    /// Stops the timer unless its callback is running (then the expiry is
    /// seen as a spurious `WAKE_TIMER`, which the caller tolerates).
    pub(crate) fn cancel(&self) {
        // SAFETY: as above.
        unsafe { bindings::pac_wake_timer_cancel(self.0.as_ptr()) }
    }

    /// Sets `bits` and makes the vCPU notice: wakes it from HLT, forces it
    /// out of the guest. Any context.
    pub(crate) fn kick(&self, bits: u32) {
        // SAFETY: as above.
        unsafe { bindings::pac_wake_kick(self.0.as_ptr(), bits) }
    }

    /// Takes the pending bits.
    pub(crate) fn take(&self) -> u32 {
        // SAFETY: as above.
        unsafe { bindings::pac_wake_take(self.0.as_ptr()) }
    }

    /// Sleeps until a bit is pending; EINTR for a signal.
    pub(crate) fn wait(&self) -> kernel::error::Result {
        // SAFETY: as above; the caller is a task that may sleep (an ioctl).
        kernel::error::to_result(unsafe { bindings::pac_wake_wait(self.0.as_ptr()) })
    }

    /// Marks the vCPU as in the guest on `cpu`, unless bits arrived since
    /// the last `take`: then `false`, and the vCPU must not enter. Call
    /// with interrupts off, and `exit` after the world switch.
    pub(crate) fn enter(&self, _irqs: &IrqsOff, cpu: u32) -> bool {
        // SAFETY: as above.
        unsafe { bindings::pac_wake_enter(self.0.as_ptr(), cpu) == 0 }
    }

    /// The vCPU left the guest.
    pub(crate) fn exit(&self) {
        // SAFETY: as above.
        unsafe { bindings::pac_wake_exit(self.0.as_ptr()) }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        // SAFETY: the object is ours and no one else uses it any more (we
        // are its owner's last reference); the shim cancels the timer,
        // waiting for a running callback, before freeing it.
        unsafe { bindings::pac_wake_free(self.0.as_ptr()) }
    }
}

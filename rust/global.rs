// SPDX-License-Identifier: GPL-2.0

//! Module-wide state: the per-CPU SVM state, the shared permission maps and
//! the counters `PACIFICA_GET_INFO` reports. Created at load, destroyed at
//! unload; the device, the VM fds and the hotplug callbacks reach it through
//! [`get`].

use crate::mm::pages::{self, HwPages};
use crate::policy::msr;
use crate::svm::cpu::{self, Cpus};
use crate::{shim, uapi};
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use kernel::prelude::*;

/// State shared by every VM.
pub(crate) struct Global {
    pub(crate) cpus: Cpus,
    /// The I/O permission map: every port intercepted (APM 15.10.1).
    pub(crate) iopm: HwPages,
    /// The MSR permission map: everything intercepted except the MSRs the
    /// VMCB switches (APM 15.11).
    pub(crate) msrpm: HwPages,
    pub(crate) nr_vms: AtomicU64,
    pub(crate) pages_pinned: AtomicU64,
}

static GLOBAL: AtomicPtr<Global> = AtomicPtr::new(core::ptr::null_mut());

/// The module's state.
///
/// Callable from anything that runs between load and unload: ioctls and
/// releases (an open fd keeps the module loaded) and hotplug callbacks
/// (registered after the state is set, removed before it is freed).
pub(crate) fn get() -> &'static Global {
    let p = GLOBAL.load(Ordering::Acquire);
    // SAFETY: `init` sets the pointer before registering any entry point
    // and `exit` clears it only after removing them all, so every caller
    // sees a live `Global` (see the function's documentation).
    unsafe { &*p }
}

/// Loads: detects SVM, allocates the state, enables SVM on every CPU and
/// registers `/dev/pacifica`.
pub(crate) fn init() -> Result {
    let info = cpu::detect()?;
    crate::testbed::detect(info.qemu_tcg);
    let mut iopm = HwPages::new(2)?; // 12 KiB needed, 16 KiB allocated
    iopm.bytes_mut().fill(0xff);
    let mut msrpm = HwPages::new(1)?;
    msr::fill_permission_map(msrpm.bytes_mut());
    let g = KBox::new(
        Global {
            cpus: Cpus::new(info)?,
            iopm,
            msrpm,
            nr_vms: AtomicU64::new(0),
            pages_pinned: AtomicU64::new(0),
        },
        GFP_KERNEL,
    )?;
    GLOBAL.store(KBox::into_raw(g), Ordering::Release);

    if let Err(e) = shim::cpuhp_setup() {
        pr_err!("enabling SVM on the CPUs failed: {:?}\n", e);
        free();
        return Err(e);
    }
    // Registered once SVM is on everywhere, so that no other hypervisor
    // holds the emergency callback (there is one for the whole system).
    if let Err(e) = shim::power_setup() {
        pr_err!("registering the reboot and suspend callbacks failed: {:?}\n", e);
        shim::cpuhp_remove();
        free();
        return Err(e);
    }
    if let Err(e) = shim::misc_register() {
        pr_err!("registering /dev/pacifica failed: {:?}\n", e);
        shim::power_remove();
        shim::cpuhp_remove();
        free();
        return Err(e);
    }
    let g = get();
    pr_info!(
        "SVM revision {}, {} ASIDs, NPT {} NRIPS {} decode-assists {} flush-by-ASID {} \
         VMCB-clean {} VGIF {}, enabled on {} CPUs{}\n",
        info.revision,
        info.nr_asids,
        yes(info.has(crate::hw::svm::features::NPT)),
        yes(info.has(crate::hw::svm::features::NRIPS)),
        yes(info.has(crate::hw::svm::features::DECODE_ASSISTS)),
        yes(info.has(crate::hw::svm::features::FLUSH_BY_ASID)),
        yes(info.has(crate::hw::svm::features::VMCB_CLEAN)),
        yes(info.has(crate::hw::svm::features::VGIF)),
        g.cpus_enabled(),
        if info.qemu_tcg { " (QEMU TCG: testbed workarounds on)" } else { "" }
    );
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn free() {
    let p = GLOBAL.swap(core::ptr::null_mut(), Ordering::AcqRel);
    if !p.is_null() {
        // SAFETY: `p` came from `KBox::into_raw` in `init` and no entry
        // point that could use it is registered any more.
        drop(unsafe { KBox::from_raw(p) });
    }
}

/// Unloads: the reverse of [`init`]. No VM exists any more: each VM fd
/// holds a reference to the module.
pub(crate) fn exit() {
    shim::misc_deregister();
    shim::power_remove();
    shim::cpuhp_remove();
    free();
    pr_info!("unloaded\n");
}

impl Global {
    /// How many CPUs have SVM enabled.
    pub(crate) fn cpus_enabled(&self) -> u32 {
        (0..shim::nr_cpu_ids()).filter(|&c| self.cpus.get(c).is_some_and(|p| p.enabled())).count()
            as u32
    }

    /// What `PACIFICA_GET_INFO` reports.
    pub(crate) fn module_info(&self) -> uapi::ModuleInfo {
        let info = &self.cpus.info;
        uapi::ModuleInfo {
            api_version: uapi::PACIFICA_API_VERSION,
            svm_revision: info.revision,
            nr_asids: info.nr_asids,
            nr_cpus: self.cpus_enabled(),
            features: info.uapi_features(),
            cpuid_svm_edx: info.edx,
            pad: 0,
            pages_allocated: pages::pages_allocated(),
            pages_pinned: self.pages_pinned.load(Ordering::Relaxed),
            nr_vms: self.nr_vms.load(Ordering::Relaxed),
            guest_tsc_khz: u64::from(shim::tsc_khz()),
            reserved: [0; 7],
        }
    }
}

/// Hotplug: a CPU came online (also called for each online CPU at load).
#[no_mangle]
extern "C" fn pacifica_cpu_online(cpu: u32) -> i32 {
    match get().cpus.enable_this(cpu) {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// Hotplug: a CPU is going offline (also called for each CPU at unload).
#[no_mangle]
extern "C" fn pacifica_cpu_offline(cpu: u32) -> i32 {
    get().cpus.disable_this(cpu);
    0
}

/// Reboot, kexec, crash, panic or suspend: SVM goes off on this CPU
/// (called on each CPU, in NMI context on the emergency path). A vCPU
/// thread that was about to enter the guest here fails its run with EIO
/// (`c_shim/vmenter.S` survives an SVM instruction that faults).
#[no_mangle]
extern "C" fn pacifica_cpu_emergency_disable() {
    let g = GLOBAL.load(Ordering::Acquire);
    if g.is_null() {
        return;
    }
    get().cpus.disable_this(shim::smp_processor_id());
}

/// Resume from suspend: SVM back on on this CPU, which had it before (the
/// other CPUs come back through the hotplug callbacks).
#[no_mangle]
extern "C" fn pacifica_cpu_resume() {
    let cpu = shim::smp_processor_id();
    if let Err(e) = get().cpus.enable_this(cpu) {
        pr_err!("re-enabling SVM on CPU {} after resume failed: {:?}\n", cpu, e);
    }
}

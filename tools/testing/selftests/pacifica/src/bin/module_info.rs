// SPDX-License-Identifier: GPL-2.0

//! What the device fd reports about the module: the API version, the SVM
//! features it found, its page accounting, and the run page size.
//!
//! The test machine (QEMU with `-cpu EPYC` or `+svm,+npt`) has nested
//! paging, so `PACIFICA_FEATURE_NPT` must be set there; a machine without
//! NPT skips that test.

use pacifica_selftests::guest::{ensure_back_to, module_info};
use pacifica_selftests::sys::{GuestMemory, System};
use pacifica_selftests::uapi::{self, ModuleInfo};
use pacifica_selftests::{diag, ensure, ensure_eq, skip, tap, test, Context, TestResult};

fn open() -> Result<System, pacifica_selftests::Failure> {
    System::open().context("opening /dev/pacifica")
}

/// PACIFICA_GET_API_VERSION returns the version the uapi header defines.
fn api_version_matches_uapi() -> TestResult {
    let version = open()?.api_version().context("PACIFICA_GET_API_VERSION")?;
    ensure_eq!(version, uapi::PACIFICA_API_VERSION, "API version");
    Ok(())
}

/// GET_INFO repeats the API version, and its padding is zero.
fn info_api_version_and_padding() -> TestResult {
    let info = module_info()?;
    diag!("{info:#x?}");
    ensure_eq!(
        info.api_version,
        uapi::PACIFICA_API_VERSION,
        "ModuleInfo.api_version"
    );
    ensure_eq!(info.pad, 0, "ModuleInfo.pad");
    Ok(())
}

/// The feature bits are exactly the CPUID 8000_000A EDX bits they mirror.
fn info_features_match_cpuid_edx() -> TestResult {
    let info = module_info()?;
    let pairs = [
        (uapi::PACIFICA_FEATURE_NPT, 0, "NPT"),
        (uapi::PACIFICA_FEATURE_NRIPS, 3, "NRIPS"),
        (uapi::PACIFICA_FEATURE_VMCB_CLEAN, 5, "VMCB clean"),
        (uapi::PACIFICA_FEATURE_FLUSH_BY_ASID, 6, "flush by ASID"),
        (uapi::PACIFICA_FEATURE_DECODE_ASSISTS, 7, "decode assists"),
        (uapi::PACIFICA_FEATURE_VGIF, 16, "VGIF"),
    ];
    let mut known = 0;
    for (bit, edx_bit, name) in pairs {
        let reported = info.features & bit != 0;
        let cpuid = info.cpuid_svm_edx & (1 << edx_bit) != 0;
        diag!("{name}: features {reported}, CPUID EDX bit {edx_bit} {cpuid}");
        ensure_eq!(
            reported,
            cpuid,
            "feature {name} against CPUID 8000_000A EDX"
        );
        known |= bit;
    }
    ensure_eq!(info.features & !known, 0, "undefined feature bits");
    Ok(())
}

/// The test machine has nested paging, and the module reports it.
fn info_reports_npt() -> TestResult {
    let info = module_info()?;
    if info.cpuid_svm_edx & 1 == 0 {
        skip!(
            "this CPU has no nested paging (CPUID 8000_000A EDX {:#x})",
            info.cpuid_svm_edx
        );
    }
    ensure!(
        info.features & uapi::PACIFICA_FEATURE_NPT != 0,
        "NPT is in CPUID but not in features {:#x}",
        info.features
    );
    Ok(())
}

/// ASIDs and CPUs: at least one of each, no more CPUs than are online.
fn info_asids_and_cpus() -> TestResult {
    let info = module_info()?;
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    diag!(
        "svm_revision {} nr_asids {} nr_cpus {} (online {online})",
        info.svm_revision,
        info.nr_asids,
        info.nr_cpus
    );
    ensure!(info.nr_asids > 0, "nr_asids is 0");
    ensure!(info.nr_cpus > 0, "nr_cpus is 0");
    ensure!(
        i64::from(info.nr_cpus) <= online as i64,
        "nr_cpus {} exceeds the {online} online CPUs",
        info.nr_cpus
    );
    Ok(())
}

/// With no VM alive nothing is pinned, and the module's own pages are few:
/// the per-CPU host save areas and VMCBs, a handful per CPU.
fn info_idle_accounting_sane() -> TestResult {
    let info = module_info()?;
    diag!(
        "pages_allocated {} pages_pinned {} nr_vms {}",
        info.pages_allocated,
        info.pages_pinned,
        info.nr_vms
    );
    if info.nr_vms == 0 {
        ensure_eq!(info.pages_pinned, 0, "pages pinned with no VM alive");
    }
    let bound = 64 * u64::from(info.nr_cpus.max(1)) + 256 * info.nr_vms;
    ensure!(
        info.pages_allocated <= bound,
        "{} pages allocated, more than {bound} for {} CPUs and {} VMs",
        info.pages_allocated,
        info.nr_cpus,
        info.nr_vms
    );
    Ok(())
}

/// A VM with 1 MiB of RAM and a vCPU moves the counters, and destroying it
/// brings them back.
fn info_counts_a_vm() -> TestResult {
    let before = module_info()?;
    let sys = open()?;
    {
        let vm = sys
            .create_vm(uapi::PACIFICA_PAGING_NPT)
            .context("CREATE_VM")?;
        let mid = sys.info().context("GET_INFO")?;
        ensure_eq!(mid.nr_vms, before.nr_vms + 1, "nr_vms with one more VM");
        let mem = GuestMemory::new(1 << 20).context("mmap")?;
        mem.register(&vm, 0, 0).context("SET_MEMORY_REGION")?;
        let _vcpu = vm.create_vcpu(0).context("CREATE_VCPU")?;
        let with: ModuleInfo = sys.info().context("GET_INFO")?;
        diag!(
            "with a 1 MiB VM and a vCPU: pages_allocated {} (+{}), pages_pinned {} (+{})",
            with.pages_allocated,
            with.pages_allocated as i64 - before.pages_allocated as i64,
            with.pages_pinned,
            with.pages_pinned as i64 - before.pages_pinned as i64
        );
        ensure!(
            with.pages_allocated > before.pages_allocated,
            "a VM with a vCPU allocated no pages (VMCB, run page?)"
        );
        ensure!(
            with.pages_pinned - before.pages_pinned <= 256,
            "{} pages pinned for 256 pages of RAM",
            with.pages_pinned - before.pages_pinned
        );
    }
    ensure_back_to(&before, "destroying the VM")
}

/// GET_VCPU_MMAP_SIZE is one page, PACIFICA_RUN_PAGE_SIZE.
fn vcpu_mmap_size_is_one_page() -> TestResult {
    let size = open()?.vcpu_mmap_size().context("GET_VCPU_MMAP_SIZE")?;
    ensure_eq!(size, 4096, "vCPU mmap size");
    ensure_eq!(
        size,
        uapi::PACIFICA_RUN_PAGE_SIZE,
        "vCPU mmap size against uapi"
    );
    Ok(())
}

/// Several opens of the device are independent: each answers on its own.
fn device_opens_are_independent() -> TestResult {
    let a = open()?;
    let b = open()?;
    ensure_eq!(a.api_version()?, b.api_version()?, "two opens");
    drop(a);
    b.info().context("GET_INFO after closing another fd")?;
    Ok(())
}

/// GET_INFO's guest TSC rate is the rate RDTSC runs at here (L1's TSC is
/// the guests' but for TSC_OFFSET), measured against CLOCK_MONOTONIC over
/// 200 ms, within a quarter.
fn info_guest_tsc_rate_is_the_tscs() -> TestResult {
    let khz = module_info()?.guest_tsc_khz;
    ensure!(khz > 0, "guest_tsc_khz is 0: L1's kernel does not know its TSC rate");
    let measured = pacifica_selftests::guest::measured_tsc_khz(std::time::Duration::from_millis(200));
    diag!("guest_tsc_khz {khz}, measured {measured} kHz");
    ensure!(measured * 4 > khz * 3 && measured * 4 < khz * 5, "guest_tsc_khz {khz} against {measured} kHz measured");
    Ok(())
}

fn main() {
    tap::run(&[
        test!(api_version_matches_uapi),
        test!(info_api_version_and_padding),
        test!(info_features_match_cpuid_edx),
        test!(info_reports_npt),
        test!(info_asids_and_cpus),
        test!(info_guest_tsc_rate_is_the_tscs),
        test!(info_idle_accounting_sane),
        test!(info_counts_a_vm),
        test!(vcpu_mmap_size_is_one_page),
        test!(device_opens_are_independent),
    ]);
}

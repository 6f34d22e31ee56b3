// SPDX-License-Identifier: GPL-2.0

//! Creating and destroying VMs leaks nothing.
//!
//! Each test notes the module's counters (`nr_vms`, `pages_allocated`,
//! `pages_pinned` from GET_INFO), creates and destroys VMs in some way, and
//! requires the counters to come back to where they were.

use std::time::Instant;

use pacifica_selftests::guest::{ensure_back_to, module_info, run_vcpu, until_hlt, RUN_TIMEOUT};
use pacifica_selftests::guests::hlt;
use pacifica_selftests::sys::{GuestMemory, System};
use pacifica_selftests::uapi;
use pacifica_selftests::{diag, ensure_eq, tap, test, Context, Mode, TestResult, TestVm};

/// 1000 times: a VM, 64 KiB of RAM registered, a vCPU; then all closed.
fn create_destroy_1000_vms() -> TestResult {
    let before = module_info()?;
    let sys = System::open().context("opening /dev/pacifica")?;
    let start = Instant::now();
    for i in 0..1000 {
        let vm = sys
            .create_vm(uapi::PACIFICA_PAGING_NPT)
            .context(format!("CREATE_VM #{i}"))?;
        let mem = GuestMemory::new(64 << 10).context("mmap")?;
        mem.register(&vm, 0, 0)
            .context(format!("SET_MEMORY_REGION #{i}"))?;
        let vcpu = vm.create_vcpu(0).context(format!("CREATE_VCPU #{i}"))?;
        // The vCPU first, then the VM, then the memory, as a VMM would; the
        // other orders are covered below.
        drop(vcpu);
        drop(vm);
        drop(mem);
    }
    diag!("1000 VMs in {:.2}s", start.elapsed().as_secs_f64());
    ensure_back_to(&before, "1000 VMs")
}

/// 100 times: a VM that runs a guest to its first HLT, so that whatever
/// the first run allocates (nested page tables, ...) is freed too.
fn create_run_destroy_100_vms() -> TestResult {
    let before = module_info()?;
    for i in 0..100 {
        let mut vm = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)
            .map_err(|e| e.prefixed(format!("VM #{i}")))?;
        vm.run_to_hlt()
            .map_err(|e| e.prefixed(format!("VM #{i}")))?;
    }
    ensure_back_to(&before, "100 VMs that ran")
}

/// Three VMs alive at once count three; all gone, none.
fn nr_vms_counts_live_vms() -> TestResult {
    let before = module_info()?;
    let sys = System::open().context("opening /dev/pacifica")?;
    let vms: Vec<_> = (0..3)
        .map(|_| sys.create_vm(uapi::PACIFICA_PAGING_NPT))
        .collect::<Result<_, _>>()
        .context("CREATE_VM")?;
    ensure_eq!(
        sys.info()?.nr_vms,
        before.nr_vms + 3,
        "nr_vms with 3 more VMs"
    );
    drop(vms);
    ensure_back_to(&before, "closing 3 VMs")
}

/// A vCPU fd keeps its VM alive: closing the VM fd first destroys nothing
/// until the vCPU fd is closed too, and the vCPU still runs meanwhile.
fn vcpu_fd_keeps_vm_alive() -> TestResult {
    let before = module_info()?;
    let TestVm {
        mut vcpu,
        vm,
        mem,
        sys,
        mut log,
        ..
    } = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
    drop(vm);
    let mid = sys.info().context("GET_INFO")?;
    diag!(
        "after closing the VM fd: nr_vms {} (baseline {})",
        mid.nr_vms,
        before.nr_vms
    );
    ensure_eq!(
        mid.nr_vms,
        before.nr_vms + 1,
        "nr_vms while a vCPU fd is open"
    );
    run_vcpu(&mut vcpu, &mut log, RUN_TIMEOUT, until_hlt)?;
    drop(vcpu);
    drop(mem);
    ensure_back_to(&before, "closing the last vCPU fd")
}

/// Guest RAM unmapped before the VM is destroyed stays pinned until then,
/// and is released with the VM.
fn memory_unmapped_before_vm() -> TestResult {
    let before = module_info()?;
    let sys = System::open().context("opening /dev/pacifica")?;
    let vm = sys
        .create_vm(uapi::PACIFICA_PAGING_NPT)
        .context("CREATE_VM")?;
    let mem = GuestMemory::new(256 << 10).context("mmap")?;
    mem.register(&vm, 0, 0).context("SET_MEMORY_REGION")?;
    drop(mem);
    let mid = sys.info().context("GET_INFO")?;
    diag!(
        "pinned pages with the RAM unmapped: {} (baseline {})",
        mid.pages_pinned,
        before.pages_pinned
    );
    drop(vm);
    ensure_back_to(&before, "destroying the VM after its RAM")
}

/// The full eight vCPUs and 32 memory regions of one VM are all released.
fn max_vcpus_and_regions_released() -> TestResult {
    let before = module_info()?;
    let sys = System::open().context("opening /dev/pacifica")?;
    let vm = sys
        .create_vm(uapi::PACIFICA_PAGING_NPT)
        .context("CREATE_VM")?;
    let mut mems = Vec::new();
    for slot in 0..uapi::PACIFICA_MAX_MEMORY_REGIONS {
        let mem = GuestMemory::new(16 << 10).context("mmap")?;
        mem.register(&vm, slot, u64::from(slot) << 20)
            .context(format!("SET_MEMORY_REGION slot {slot}"))?;
        mems.push(mem);
    }
    let vcpus: Vec<_> = (0..uapi::PACIFICA_MAX_VCPUS)
        .map(|id| vm.create_vcpu(id).context(format!("CREATE_VCPU {id}")))
        .collect::<Result<_, _>>()?;
    drop(vcpus);
    drop(vm);
    drop(mems);
    ensure_back_to(&before, "a VM with 8 vCPUs and 32 regions")
}

fn main() {
    tap::run(&[
        test!(create_destroy_1000_vms).timeout(300),
        test!(create_run_destroy_100_vms).timeout(300),
        test!(nr_vms_counts_live_vms),
        test!(vcpu_fd_keeps_vm_alive),
        test!(memory_unmapped_before_vm),
        test!(max_vcpus_and_regions_released),
    ]);
}

// SPDX-License-Identifier: GPL-2.0

//! The guest on `/dev/kvm`, through rust-vmm's `kvm-ioctls`: the reference
//! Pacifica is compared against.
//!
//! The machine is the one Pacifica gives: RAM at guest-physical 0 in one
//! memory slot, one vCPU started in the boot protocol's state (converted by
//! [`regs`]), and the CPUID KVM supports. On the tiny machine there is no
//! in-kernel interrupt controller (so HLT comes back to the VMM as on
//! Pacifica); on the PC, KVM's "split irqchip" (`KVM_CAP_SPLIT_IRQCHIP`):
//! the local APIC in KVM, the I/O APIC and the 8259s in the VMM, as on
//! Pacifica, with the TSC-deadline timer offered in CPUID as Pacifica
//! offers it. The exits are translated by [`exit`] and handled by the same
//! run loop and devices.
//!
//! Two `unsafe` blocks remain here, each explained: registering the memory
//! slot, and borrowing the vCPU fd to map its run page a second time so
//! that the fields a `VcpuExit` leaves out can be read beside it; [`stats`]
//! has two more, to open KVM's binary statistics of the vCPU.

pub mod cpuid;
pub mod exit;
pub mod paging;
pub mod regs;
pub mod stats;

pub use paging::KvmPaging;

use std::io;
use std::mem::offset_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;

use kvm_bindings::{
    kvm_enable_cap, kvm_msi, kvm_run, kvm_run__bindgen_ty_1__bindgen_ty_13 as kvm_run_internal,
    kvm_run__bindgen_ty_1__bindgen_ty_4 as kvm_run_io, kvm_userspace_memory_region,
    KVM_CAP_SPLIT_IRQCHIP, KVM_MAX_CPUID_ENTRIES,
};
use kvm_ioctls::{Cap, Kvm, VcpuFd, VmFd};

use super::{BackendVcpu, Machine, RunError};
use crate::pc::ioapic::{Msi, IOAPIC_PINS};
use crate::pc::InterruptSink;
use crate::boot::BootState;
use crate::sys::{Exit, GuestMemory, Mmap};
use crate::policy_cpuid::GuestKind;
use crate::vmm::VmmError;

/// The KVM device.
pub const DEVICE_PATH: &str = "/dev/kvm";

/// Where KVM on Intel keeps the real-mode TSS it needs (three pages
/// outside guest RAM); ignored on AMD. Set only when RAM ends below it.
const TSS_ADDR: u64 = 0xfffb_d000;

/// Byte offsets in `kvm_run` of the fields [`exit::RunHeader`] reads.
const EXIT_REASON: usize = offset_of!(kvm_run, exit_reason);
const UNION: usize = offset_of!(kvm_run, __bindgen_anon_1);
const IO_SIZE: usize = UNION + offset_of!(kvm_run_io, size);
const INTERNAL_SUBERROR: usize = UNION + offset_of!(kvm_run_internal, suberror);

/// A vCPU of a one-vCPU KVM VM, with everything it needs.
///
/// The fields drop in order: the vCPU, the second view of its run page,
/// the VM, the system fd, and last the memory that backs guest RAM.
pub struct KvmVcpu {
    /// KVM's counters for this vCPU, opened on the first `stats` call.
    kvm_stats: Option<stats::KvmStats>,
    vcpu: VcpuFd,
    page: Mmap,
    vm: Arc<VmFd>,
    _kvm: Kvm,
    _mem: GuestMemory,
}

fn kvm_err(what: &'static str) -> impl FnOnce(kvm_ioctls::Error) -> VmmError {
    move |e| VmmError::sys(what)(io::Error::from_raw_os_error(e.errno()))
}

impl KvmVcpu {
    /// Opens `/dev/kvm`, checks the paging asked for against what KVM uses,
    /// creates the VM with `mem` at guest-physical 0, and vCPU 0 in `state`.
    pub fn new(
        expect: Option<KvmPaging>,
        machine: Machine,
        mem: GuestMemory,
        state: &BootState,
    ) -> Result<Self, VmmError> {
        let kvm = Kvm::new().map_err(|e| VmmError::Open {
            path: DEVICE_PATH,
            source: io::Error::from_raw_os_error(e.errno()),
        })?;
        paging::check(expect, paging::current(Path::new("/"))).map_err(VmmError::KvmPaging)?;
        let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
        let size = mem.size() as u64;
        if size <= TSS_ADDR {
            vm.set_tss_address(TSS_ADDR as usize)
                .map_err(kvm_err("KVM_SET_TSS_ADDR"))?;
        }
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: size,
            userspace_addr: mem.as_ptr() as u64,
        };
        // SAFETY: the region is exactly the mapping `mem` owns, and `mem`
        // is moved into the returned value, whose fields drop the vCPU and
        // the VM before it: the memory stays mapped for as long as KVM can
        // use it through this VM.
        unsafe { vm.set_user_memory_region(region) }
            .map_err(kvm_err("KVM_SET_USER_MEMORY_REGION"))?;
        if machine == Machine::Pc {
            let mut cap = kvm_enable_cap {
                cap: KVM_CAP_SPLIT_IRQCHIP,
                ..Default::default()
            };
            cap.args[0] = IOAPIC_PINS as u64;
            vm.enable_cap(&cap)
                .map_err(kvm_err("KVM_ENABLE_CAP(KVM_CAP_SPLIT_IRQCHIP)"))?;
        }
        let vcpu = vm.create_vcpu(0).map_err(kvm_err("KVM_CREATE_VCPU"))?;
        let cpuid = match machine {
            // The PC machine's guest sees Pacifica's CPUID (cpuid.rs),
            // with KVM's TSC-deadline timer offered as Pacifica offers its
            // own.
            Machine::Pc => {
                let kind = GuestKind {
                    vcpu_id: 0,
                    shadow: paging::current(Path::new("/")) == Some(KvmPaging::Shadow),
                    lapic: true,
                    tsc_deadline: kvm.check_extension(Cap::TscDeadlineTimer),
                };
                cpuid::pacifica_cpuid(kind).map_err(|_| {
                    VmmError::sys("building the CPUID table")(io::Error::from_raw_os_error(libc::E2BIG))
                })?
            }
            Machine::Tiny => kvm
                .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
                .map_err(kvm_err("KVM_GET_SUPPORTED_CPUID"))?,
        };
        vcpu.set_cpuid2(&cpuid).map_err(kvm_err("KVM_SET_CPUID2"))?;
        let current = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
        vcpu.set_sregs(&regs::to_kvm_sregs(&state.sregs, &current))
            .map_err(kvm_err("KVM_SET_SREGS (the boot state)"))?;
        vcpu.set_regs(&regs::to_kvm_regs(&state.regs))
            .map_err(kvm_err("KVM_SET_REGS (the boot state)"))?;

        let page_size = kvm
            .get_vcpu_mmap_size()
            .map_err(kvm_err("KVM_GET_VCPU_MMAP_SIZE"))?;
        // SAFETY: the fd belongs to `vcpu`, which is alive for the whole
        // call; the mapping made from it holds its own reference to the file.
        let fd = unsafe { BorrowedFd::borrow_raw(vcpu.as_raw_fd()) };
        let page =
            Mmap::shared(fd, page_size).map_err(VmmError::sys("mapping the KVM run page"))?;
        if page.len() < std::mem::size_of::<kvm_run>() {
            return Err(VmmError::sys("mapping the KVM run page")(
                io::Error::from_raw_os_error(libc::EINVAL),
            ));
        }
        Ok(Self {
            kvm_stats: None,
            vcpu,
            page,
            vm: Arc::new(vm),
            _kvm: kvm,
            _mem: mem,
        })
    }
}

/// Reads what a `VcpuExit` leaves out from the run page. KVM writes the
/// page only inside KVM_RUN, which needs the `&mut VcpuFd` the caller's
/// exit is borrowing, so it is stable while this runs.
fn read_header(page: &Mmap) -> exit::RunHeader {
    let bytes = page.as_slice();
    let u32_at = |off: usize| u32::from_ne_bytes(bytes[off..off + 4].try_into().unwrap_or([0; 4]));
    exit::RunHeader {
        exit_reason: u32_at(EXIT_REASON),
        io_size: bytes[IO_SIZE],
        internal_suberror: u32_at(INTERNAL_SUBERROR),
    }
}

impl BackendVcpu for KvmVcpu {
    fn run(&mut self) -> Result<Exit<'_>, RunError> {
        let Self { vcpu, page, .. } = self;
        match vcpu.run() {
            Ok(kvm_exit) => exit::translate(kvm_exit, read_header(page)),
            Err(e) => Err(io::Error::from_raw_os_error(e.errno()).into()),
        }
    }

    fn rip(&mut self) -> u64 {
        self.vcpu.get_regs().map(|r| r.rip).unwrap_or(0)
    }

    /// KVM's own per-vCPU counters (`KVM_GET_STATS_FD`): `exits`,
    /// `irq_exits`, `io_exits`, `pf_taken`, ... as KVM names them.
    fn stats(&mut self) -> io::Result<Vec<(String, u64)>> {
        if self.kvm_stats.is_none() {
            self.kvm_stats = Some(stats::open(&self.vcpu)?);
        }
        match &self.kvm_stats {
            Some(s) => s.read(),
            None => Ok(Vec::new()),
        }
    }

    fn interrupt_sink(&self) -> Result<Box<dyn InterruptSink>, VmmError> {
        Ok(Box::new(KvmSink { vm: self.vm.clone() }))
    }
}

/// The PC's interrupts into KVM's local APIC: `KVM_SIGNAL_MSI`. With the
/// split irqchip KVM has no LINT0 input for a userspace 8259
/// (`KVM_INTERRUPT` would be the way), so its output is refused.
struct KvmSink {
    vm: Arc<VmFd>,
}

impl InterruptSink for KvmSink {
    fn msi(&self, msi: Msi) -> io::Result<()> {
        let m = kvm_msi {
            address_lo: msi.address as u32,
            address_hi: (msi.address >> 32) as u32,
            data: msi.data,
            ..Default::default()
        };
        self.vm
            .signal_msi(m)
            .map(|_| ())
            .map_err(|e| io::Error::from_raw_os_error(e.errno()))
    }

    fn set_extint(&self, _level: bool) -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::ENOSYS))
    }
}

/// The TSC rate KVM gives its guests (`KVM_GET_TSC_KHZ` of a scratch
/// vCPU), if it knows it.
pub fn tsc_khz() -> Result<Option<u32>, VmmError> {
    let kvm = Kvm::new().map_err(|e| VmmError::Open {
        path: DEVICE_PATH,
        source: io::Error::from_raw_os_error(e.errno()),
    })?;
    let vm = kvm.create_vm().map_err(kvm_err("KVM_CREATE_VM"))?;
    let vcpu = vm.create_vcpu(0).map_err(kvm_err("KVM_CREATE_VCPU"))?;
    Ok(vcpu.get_tsc_khz().ok().filter(|&khz| khz != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_offsets_follow_the_kvm_abi() {
        // include/uapi/linux/kvm.h: exit_reason after two flag bytes and
        // six bytes of padding; the exit union at 32; io.size its second byte.
        assert_eq!(EXIT_REASON, 8);
        assert_eq!(UNION, 32);
        assert_eq!(IO_SIZE, 33);
        assert_eq!(INTERNAL_SUBERROR, 32);
    }
}

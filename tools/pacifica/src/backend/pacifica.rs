// SPDX-License-Identifier: GPL-2.0

//! The guest on `/dev/pacifica`: the module's exits are already
//! Pacifica's [`Exit`], so this backend only sets the VM up.

use std::io;

use super::{BackendVcpu, Machine, RunError};
use crate::boot::BootState;
use crate::pc::ioapic::Msi;
use crate::pc::InterruptSink;
use crate::sys::{Exit, GuestMemory, System, Vcpu, VcpuEvents, Vm, DEVICE_PATH};
use crate::uapi;
use crate::vmm::VmmError;

/// A vCPU of a one-vCPU Pacifica VM, with the VM and its RAM.
///
/// The fields drop in order: the vCPU and the VM (which has pinned the
/// RAM's pages) go before the memory backing them.
pub struct PacificaVcpu {
    vcpu: Vcpu,
    _vm: Vm,
    _mem: GuestMemory,
}

impl PacificaVcpu {
    /// Opens the device, creates the VM in `paging` mode, registers `mem`
    /// at guest-physical 0 and creates vCPU 0 in `state`.
    pub fn new(
        paging: u64,
        machine: Machine,
        mem: GuestMemory,
        state: &BootState,
    ) -> Result<Self, VmmError> {
        let system = open_system()?;
        let vm = system
            .create_vm(paging)
            .map_err(|e| create_vm_error(paging, e))?;
        if machine == Machine::Pc {
            vm.create_irqchip()
                .map_err(VmmError::sys("PACIFICA_CREATE_IRQCHIP"))?;
        }
        mem.register(&vm, 0, 0).map_err(VmmError::sys(format!(
            "registering {:#x} bytes of RAM at 0",
            mem.size()
        )))?;
        let vcpu = vm
            .create_vcpu(0)
            .map_err(VmmError::sys("creating vCPU 0"))?;
        vcpu.set_sregs(&state.sregs)
            .map_err(VmmError::sys("setting the vCPU's system registers"))?;
        vcpu.set_regs(&state.regs)
            .map_err(VmmError::sys("setting the vCPU's registers"))?;
        Ok(Self {
            vcpu,
            _vm: vm,
            _mem: mem,
        })
    }
}

impl BackendVcpu for PacificaVcpu {
    fn run(&mut self) -> Result<Exit<'_>, RunError> {
        self.vcpu.run().map_err(run_error)
    }

    fn rip(&mut self) -> u64 {
        self.vcpu.run_page().rip
    }

    fn stats(&mut self) -> io::Result<Vec<(String, u64)>> {
        let stats = self.vcpu.stats()?;
        Ok(module_counters(&stats))
    }

    fn interrupt_sink(&self) -> Result<Box<dyn InterruptSink>, VmmError> {
        Ok(Box::new(PacificaSink {
            vm: self._vm.try_clone().map_err(VmmError::sys("duplicating the VM fd"))?,
            bsp: self.vcpu.events().map_err(VmmError::sys("duplicating the vCPU fd"))?,
        }))
    }
}

/// The PC's interrupts into `/dev/pacifica`: `PACIFICA_SIGNAL_MSI` on the
/// VM and `PACIFICA_SET_LINT` on the BSP, neither of which waits for a
/// running vCPU.
struct PacificaSink {
    vm: Vm,
    bsp: VcpuEvents,
}

impl InterruptSink for PacificaSink {
    fn msi(&self, msi: Msi) -> io::Result<()> {
        self.vm.signal_msi(msi.address, msi.data).map(|_| ())
    }

    fn set_extint(&self, level: bool) -> io::Result<()> {
        self.bsp.set_lint(0, level)
    }
}

/// The module's non-zero exit counters, named by
/// `uapi::PACIFICA_STAT_NAMES` (a counter past the named ones, from a newer
/// module, is left out).
pub fn module_counters(stats: &uapi::ExitStats) -> Vec<(String, u64)> {
    uapi::PACIFICA_STAT_NAMES
        .iter()
        .zip(stats.counts)
        .filter(|(_, count)| *count != 0)
        .map(|(name, count)| (name.to_string(), count))
        .collect()
}

/// Opens the device and checks that it speaks this tool's interface.
pub fn open_system() -> Result<System, VmmError> {
    let system = System::open().map_err(|source| VmmError::Open {
        path: DEVICE_PATH,
        source,
    })?;
    let module = system
        .api_version()
        .map_err(VmmError::sys("PACIFICA_GET_API_VERSION"))?;
    if module != uapi::PACIFICA_API_VERSION {
        return Err(VmmError::ApiVersion {
            module,
            tool: uapi::PACIFICA_API_VERSION,
        });
    }
    Ok(system)
}

/// The run loop's error for one of `sys::Vcpu::run`, which reports an exit
/// it cannot decode as `InvalidData` without an OS error.
fn run_error(e: io::Error) -> RunError {
    if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::InvalidData {
        RunError::BadExit(e.to_string())
    } else {
        e.into()
    }
}

/// A failed CREATE_VM, named with its paging mode.
fn create_vm_error(paging: u64, e: io::Error) -> VmmError {
    VmmError::sys(format!("PACIFICA_CREATE_VM with paging mode {paging}"))(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_errors_are_sorted_for_the_run_loop() {
        assert!(matches!(run_error(io::Error::from_raw_os_error(libc::EINTR)), RunError::Interrupted));
        assert!(matches!(run_error(io::Error::from_raw_os_error(libc::EIO)), RunError::Os(_)));
        let bad = run_error(io::Error::new(io::ErrorKind::InvalidData, "exit reason 99"));
        assert!(matches!(&bad, RunError::BadExit(why) if why == "exit reason 99"), "{bad}");
    }

    #[test]
    fn create_vm_errors_name_the_paging_mode() {
        let e = create_vm_error(uapi::PACIFICA_PAGING_NPT, io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(
            e.to_string().starts_with("PACIFICA_CREATE_VM with paging mode 0 failed"),
            "{e}"
        );
    }

    #[test]
    fn only_non_zero_module_counters_are_listed() {
        let mut stats = uapi::ExitStats::default();
        stats.counts[uapi::PACIFICA_STAT_EXITS as usize] = 40;
        stats.counts[uapi::PACIFICA_STAT_IO as usize] = 31;
        stats.counts[uapi::PACIFICA_STAT_HLT as usize] = 1;
        // A counter past the named ones (a newer module) is not printed.
        stats.counts[uapi::PACIFICA_STAT_NR as usize] = 9;
        let named: Vec<(String, u64)> = [("exits", 40), ("io", 31), ("hlt", 1)]
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        assert_eq!(module_counters(&stats), named);
    }
}

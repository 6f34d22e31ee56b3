// SPDX-License-Identifier: GPL-2.0

//! `pacifica run --kernel`: a Linux kernel on the PC machine.
//!
//! The kernel (bzImage or PVH vmlinux), the initrd and the command line are
//! loaded by [`loader::linux`], the MP table is written for one CPU, and
//! the VM is created with the hypervisor's local APIC; the rest of the PC
//! ([`crate::pc`]) runs in the VMM, with the terminal's input on COM1
//! ([`console`](super::console)).
//!
//! Two platforms boot Linux ([`Platform`]). On the default,
//! [`Platform::Apic`], the command line is the user's (or
//! [`DEFAULT_CMDLINE`]) with `tsc_early_khz=` added from the hypervisor's
//! figure unless the user set it: Linux on AMD cannot learn the TSC's rate
//! from CPUID, and needs it to skip the PIT. [`Platform::Pic`] leaves the
//! command line alone: Linux calibrates the TSC against the PIT.

use std::io::Write;
use std::path::Path;

use super::{run_pc, Config, Outcome, VmmError};
use crate::backend::{self, Backend};
use crate::loader::{self, linux::LinuxArgs};
use crate::pc::mptable::{mptable, CpuSignature, MPTABLE_ADDR};
use crate::sys::GuestMemory;

/// The command line a kernel gets when the user gives none: the console on
/// COM1, and a panic resets the machine (ending the run) at once.
pub const DEFAULT_CMDLINE: &str = "console=ttyS0 panic=-1";

/// The interrupt controllers and timers a Linux guest is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Platform {
    /// The MP table describes the CPUs, the I/O APIC and the ISA
    /// interrupts; Linux routes them through the I/O APIC and times with
    /// the local APIC in TSC-deadline mode, knowing the TSC's rate from
    /// `tsc_early_khz=`. It needs no PIT interrupt and no calibration.
    #[default]
    Apic,
    /// No MP table: Linux finds no I/O APIC and runs in virtual-wire
    /// mode, the 8259 pair's output on LINT0 (ExtINT), the PIT's IRQ 0 as
    /// its tick and its calibration reference.
    Pic,
}

/// What `--kernel` boots.
#[derive(Debug, Clone, Copy)]
pub struct LinuxConfig<'a> {
    /// The kernel image.
    pub kernel: &'a Path,
    /// The initial RAM disk.
    pub initrd: Option<&'a Path>,
    /// The command line (`None`: [`DEFAULT_CMDLINE`]).
    pub cmdline: Option<&'a str>,
    /// The platform the guest is told about.
    pub platform: Platform,
}

/// The command line the kernel gets: `user`'s or the default, with
/// `tsc_early_khz=` appended when the rate is known and the line has none.
pub fn kernel_cmdline(user: Option<&str>, tsc_khz: Option<u32>) -> String {
    let mut line = user.unwrap_or(DEFAULT_CMDLINE).trim().to_string();
    let has_khz = line.split_whitespace().any(|w| w.starts_with("tsc_early_khz="));
    if let (Some(khz), false) = (tsc_khz, has_khz) {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&format!("tsc_early_khz={khz}"));
    }
    line
}

fn read(path: &Path) -> Result<Vec<u8>, VmmError> {
    std::fs::read(path).map_err(|source| VmmError::ReadImage { path: path.to_owned(), source })
}

/// Boots the kernel on the PC machine until the guest stops.
pub fn run_linux(
    linux: &LinuxConfig<'_>,
    config: &Config,
    console: impl Write + Send + 'static,
) -> Result<Outcome, VmmError> {
    let kernel = read(linux.kernel)?;
    let initrd = linux.initrd.map(read).transpose()?;
    let load_error = |source| VmmError::Load { path: linux.kernel.to_owned(), source };
    let tsc_khz = match linux.platform {
        Platform::Apic => backend::tsc_khz(config.backend)?,
        Platform::Pic if matches!(config.backend, Backend::Kvm { .. }) => {
            // KVM's split irqchip takes the 8259's vectors only through
            // KVM_INTERRUPT from the vCPU's own thread, which this VMM
            // does not do yet.
            return Err(VmmError::NotSupported("--platform pic with --backend kvm"));
        }
        Platform::Pic => None,
    };
    let cmdline = kernel_cmdline(linux.cmdline, tsc_khz);

    loader::check_ram_size(config.mem_size).map_err(load_error)?;
    let mut mem = GuestMemory::new(config.mem_size as usize).map_err(|source| {
        load_error(loader::LoadError::OutOfMemory { size: config.mem_size, source })
    })?;
    let args = LinuxArgs { initrd: initrd.as_deref(), cmdline: &cmdline };
    let boot = loader::linux::load(&kernel, args, &mut mem).map_err(load_error)?;
    if linux.platform == Platform::Apic {
        mem.write(MPTABLE_ADDR, &mptable(1, CpuSignature::default()))
            .map_err(|e| load_error(e.into()))?;
    }

    run_pc(mem, &boot.state, config, console)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_rate_is_added_unless_given() {
        assert_eq!(kernel_cmdline(None, Some(2_000_000)), "console=ttyS0 panic=-1 tsc_early_khz=2000000");
        assert_eq!(kernel_cmdline(Some("quiet"), None), "quiet");
        assert_eq!(kernel_cmdline(Some(" tsc_early_khz=5 x "), Some(7)), "tsc_early_khz=5 x");
        assert_eq!(kernel_cmdline(Some(""), Some(7)), "tsc_early_khz=7");
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The PC platform's devices, driven without Linux.
//!
//! `platform64.elf` (tools/guests/platform64.S) runs on the PC machine
//! (`pacifica run --machine pc`) under nested and under shadow paging and
//! prints what it found and got: the MP table (floating pointer, checksums,
//! entry count, local APIC and I/O APIC addresses), the I/O APIC's version,
//! 100 interrupts of the PIT's channel 0 at 1000 Hz routed through I/O
//! APIC pin 2, and 100 more through the 8259 in ExtINT mode on LINT0. The
//! MP table must be the one the VMM writes (`pacifica::pc::mptable`), and
//! both interrupt rates must be the PIT's, within 20%, against the TSC's
//! rate the module reports.

use std::path::Path;
use std::time::Duration;

use pacifica::pc::ioapic::{IOAPIC_BASE, IOAPIC_PINS, IOAPIC_VERSION};
use pacifica::pc::mptable::{mptable, CpuSignature, MPTABLE_ADDR};
use pacifica_selftests::guest::module_info;
use pacifica_selftests::hypervisors::{run_pacifica, Config, Outcome, Run, GUEST_DIR};
use pacifica_selftests::{diag, fail, tap, test, TestResult};

/// The PIT's programmed rate: 1193182 Hz / 1193.
const PIT_RATE_HZ: f64 = 1_193_182.0 / 1193.0;
/// The interrupts the guest counts on each path.
const TICKS: u64 = 100;

fn run(config: Config) -> Result<Run, pacifica_selftests::Failure> {
    let image = Path::new(GUEST_DIR).join("platform64.elf");
    let args = ["--machine".as_ref(), "pc".as_ref(), image.as_os_str()];
    match run_pacifica(config, &args, Duration::from_secs(60)) {
        Outcome::Ran(run) if run.status == Some(0) => Ok(run),
        Outcome::Ran(run) => {
            diag!("output:\n{}\nstderr: {}", run.output, run.stderr.trim());
            fail!("platform64.elf ended with status {:?}", run.status)
        }
        Outcome::NotRun(why) | Outcome::Broken(why) => fail!("platform64.elf: {why}"),
    }
}

/// The hexadecimal word after `key` on the line starting with `prefix`.
fn field(run: &Run, prefix: &str, key: &str) -> Result<u64, pacifica_selftests::Failure> {
    let Some((_, rest)) = run.time_of(prefix) else {
        diag!("output:\n{}", run.output);
        fail!("no line starting with {prefix:?}");
    };
    let mut words = rest.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            if let Some(v) = words.next().and_then(|v| u64::from_str_radix(v, 16).ok()) {
                return Ok(v);
            }
        }
    }
    fail!("{prefix:?} has no {key:?} value: {rest:?}")
}

fn the_platform_is_what_the_vmm_describes(config: Config) -> TestResult {
    let run = run(config)?;
    let table = mptable(1, CpuSignature::default());
    let config_at = u64::from(u32::from_le_bytes([table[4], table[5], table[6], table[7]]));
    let off = (config_at - MPTABLE_ADDR) as usize;
    let entries = u64::from(u16::from_le_bytes([table[off + 0x22], table[off + 0x23]]));

    let checks = [
        ("mp floating pointer at", "checksum", 0),
        ("mp config table at", "checksum", 0),
        ("mp config table at", "entries", entries),
        ("mp config table at", "lapic", 0xfee0_0000),
        ("mp ioapic id", "address", IOAPIC_BASE),
    ];
    for (prefix, key, want) in checks {
        let got = field(&run, &format!("{prefix} "), key)?;
        if got != want {
            fail!("{prefix} ... {key}: {got:#x}, expected {want:#x}");
        }
    }
    let Some((_, version)) = run.time_of("ioapic version ") else {
        fail!("no I/O APIC version line");
    };
    let want = (u64::from(IOAPIC_PINS as u32 - 1) << 16) | u64::from(IOAPIC_VERSION);
    if u64::from_str_radix(version.trim(), 16).ok() != Some(want) {
        fail!("I/O APIC version {version:?}, expected {want:08x}");
    }

    let khz = module_info()?.guest_tsc_khz;
    if khz == 0 {
        fail!("the module reports no TSC rate to measure the PIT against");
    }
    for prefix in ["ioapic pin 2 ticks ", "pic irq 0 ticks "] {
        let Some((_, rest)) = run.time_of(prefix) else {
            fail!("no {prefix:?} line");
        };
        let ticks = u64::from_str_radix(rest.split_whitespace().next().unwrap_or(""), 16).unwrap_or(0);
        let tsc = field(&run, prefix, "tsc")?;
        let hz = ticks as f64 * khz as f64 * 1000.0 / tsc.max(1) as f64;
        diag!("{}: {prefix}{ticks}: {hz:.0} Hz", config.name());
        if ticks < TICKS || (hz - PIT_RATE_HZ).abs() > 0.2 * PIT_RATE_HZ {
            fail!("{prefix}{ticks} at {hz:.0} Hz, expected {TICKS} at {PIT_RATE_HZ:.0} Hz (within 20%)");
        }
    }
    Ok(())
}

fn on_nested_paging() -> TestResult {
    the_platform_is_what_the_vmm_describes(Config::PacificaNpt)
}

fn on_shadow_paging() -> TestResult {
    the_platform_is_what_the_vmm_describes(Config::PacificaShadow)
}

fn main() {
    tap::run(&[test!(on_nested_paging).timeout(90), test!(on_shadow_paging).timeout(90)]);
}

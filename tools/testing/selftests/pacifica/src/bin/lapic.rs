// SPDX-License-Identifier: GPL-2.0

//! The in-kernel local APIC (PACIFICA_CREATE_IRQCHIP): its registers
//! through the xAPIC page and as x2APIC MSRs, IA32_APIC_BASE, and the
//! delivery of self-IPIs with IF, STI's interrupt shadow, the TPR (by the
//! page and by CR8) and a physical destination, all without an exit to
//! userspace. A VM without the irqchip keeps today's behaviour (the other
//! selftests). Runs in both paging modes.
//!
//! Guest: `guests/lapic.S`.

use pacifica::hw::apic::{base, lvt, reg, spiv, VERSION};
use pacifica_selftests::guests::lapic as guest;
use pacifica_selftests::layout::DATA_BASE;
use pacifica_selftests::uapi::{
    PACIFICA_STAT_APIC_ACCESS, PACIFICA_STAT_IRQ_INJECTED, PACIFICA_STAT_IRQ_WINDOW, PACIFICA_STAT_USER_EXITS,
};
use pacifica_selftests::uapi;
use pacifica_selftests::{ensure, ensure_eq, tap, test, Context, Mode, TestResult, TestVm};

/// Runs `entry` to its HLT in a VM with a local APIC and checks the
/// doublewords it left at DATA_BASE.
fn run(entry: u64, expect: &[(&str, u32)], exceptions: u64) -> Result<TestVm, pacifica_selftests::Failure> {
    let mut vm = TestVm::with_lapic(Mode::Long64, guest::IMAGE, entry)?;
    vm.run_to_hlt()?;
    vm.print_stats()?;
    let log: Vec<u32> = (0..vm.read_u32(DATA_BASE + 0x100)?.min(16))
        .map(|i| vm.read_u32(DATA_BASE + 0x140 + 4 * u64::from(i)))
        .collect::<Result<_, _>>()?;
    pacifica_selftests::diag!("vectors taken: {log:x?}");
    vm.expect_results(expect)?;
    // Everything but the final HLT (and the guest's reports of the
    // exceptions it expected) stayed in the kernel.
    ensure_eq!(vm.stat(PACIFICA_STAT_USER_EXITS)?, 1 + exceptions, "exits to userspace");
    Ok(vm)
}

/// Reset values and write masks, read through the xAPIC page.
fn registers_through_the_page() -> TestResult {
    let vm = run(
        guest::REGS64,
        &[
            ("version", VERSION),
            ("ID of vCPU 0", 0),
            ("SPIV at reset", 0xff),
            ("TPR after writing all ones", 0xff),
            ("LDR after writing all ones", 0xff00_0000),
            ("LINT0 written while software-disabled", 0x700 | lvt::MASKED),
            ("IA32_APIC_BASE", (base::DEFAULT_ADDR | base::ENABLE | base::BSP) as u32),
            ("byte 2 of the version register", VERSION >> 16),
        ],
        0,
    )?;
    ensure!(vm.stat(PACIFICA_STAT_APIC_ACCESS)? >= 9, "APIC access counter");
    Ok(())
}

/// Self-IPIs through the ICR, held back by IF = 0, STI's shadow, TPR and
/// CR8, and let in as each opens.
fn self_ipis_wait_for_if_the_shadow_and_tpr() -> TestResult {
    let vm = run(
        guest::SELF_IPI64,
        &[
            ("taken with IF = 0", 0),
            ("taken in STI's shadow", 0),
            ("taken once IF is set", 1),
            ("taken while TPR = the vector's class", 1),
            ("taken once TPR dropped", 2),
            ("taken while CR8 = the vector's class", 2),
            ("taken once CR8 dropped", 3),
            ("ICR delivery status", 0),
            ("vector of the physical-destination IPI", 0x50),
            ("interrupts taken in all, none twice", 4),
        ],
        0,
    )?;
    ensure_eq!(vm.stat(PACIFICA_STAT_IRQ_INJECTED)?, 4, "interrupts injected");
    ensure!(vm.stat(PACIFICA_STAT_IRQ_WINDOW)? >= 1, "an interrupt offered while IF = 0");
    vm.ensure_no_exceptions()?;
    Ok(())
}

/// x2APIC: the switch through IA32_APIC_BASE, the ID and SELF_IPI MSRs,
/// and the #GPs the architecture gives.
fn x2apic_msrs() -> TestResult {
    run(
        guest::X2APIC64,
        &[
            ("x2APIC ID of vCPU 0", 0),
            ("interrupts taken after SELF_IPI", 1),
            ("WRMSR EOI with a non-zero value", 13),
            ("x2APIC straight back to xAPIC", 13),
        ],
        2,
    )?;
    Ok(())
}

/// PACIFICA_GET_LAPIC shows what the guest wrote; PACIFICA_SET_LAPIC
/// gives a new VM's guest an APIC it reads back through the page.
fn state_ioctls_save_and_restore() -> TestResult {
    let word = |s: &uapi::LapicState, off: u32| u32::from_le_bytes(s.regs[off as usize..][..4].try_into().unwrap());
    let vm = run(guest::SELF_IPI64, &[], 0)?;
    let saved = vm.vcpu.get_lapic().context("GET_LAPIC")?;
    ensure_eq!(saved.apic_base, base::DEFAULT_ADDR | base::ENABLE | base::BSP, "IA32_APIC_BASE");
    ensure_eq!(word(&saved, reg::SPIV), spiv::ENABLED | 0xff, "SPIV the guest wrote");
    ensure_eq!(word(&saved, reg::LVR), VERSION, "version");
    ensure_eq!(word(&saved, reg::ISR), 0, "nothing in service after the EOIs");
    // A fresh VM whose APIC has TPR 0x20 and LDR 0x0100_0000 from the start.
    let mut vm2 = TestVm::with_lapic(Mode::Long64, guest::IMAGE, guest::REGS64)?;
    let mut state = *vm2.vcpu.get_lapic().context("GET_LAPIC")?;
    state.regs[reg::TASKPRI as usize] = 0x20;
    state.regs[reg::LDR as usize + 3] = 0x01;
    vm2.vcpu.set_lapic(&state).context("SET_LAPIC")?;
    ensure_eq!(vm2.vcpu.get_sregs().context("GET_SREGS")?.cr8, 2, "CR8 follows the TPR");
    let back = vm2.vcpu.get_lapic().context("GET_LAPIC")?;
    ensure_eq!((word(&back, reg::TASKPRI), word(&back, reg::LDR)), (0x20, 0x0100_0000), "TPR and LDR read back");
    vm2.run_to_hlt()?;
    // regs64 reads the reset SPIV and then writes TPR and LDR itself.
    ensure_eq!(vm2.read_u32(DATA_BASE + 8)?, 0xff, "SPIV the guest read");
    Ok(())
}

fn main() {
    tap::run(&[
        test!(registers_through_the_page),
        test!(self_ipis_wait_for_if_the_shadow_and_tpr),
        test!(x2apic_msrs),
        test!(state_ioctls_save_and_restore),
    ]);
}

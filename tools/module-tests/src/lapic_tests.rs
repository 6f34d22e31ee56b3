// SPDX-License-Identifier: GPL-2.0

//! The local APIC model (`rust/irq/lapic.rs`) on the host: register
//! masks, mode changes of IA32_APIC_BASE, priorities against a reference
//! written from the SDM's text, EOI, and the timer's arithmetic.

use crate::hw::apic::{base, esr, lvt, reg, spiv, VERSION};
use crate::hw::msr::X2APIC_BASE;
use crate::irq::lapic::{Effect, Lapic, Lvt, Refused, TimerMode, VectorSet, MIN_PERIOD_NS};
use proptest::prelude::*;

const MAXPHYADDR: u8 = 40;

/// A software-enabled xAPIC of vCPU `id`.
fn enabled(id: u32) -> Lapic {
    let mut a = Lapic::new(id, true, true);
    a.write(reg::SPIV, spiv::ENABLED | 0xff, 0).unwrap();
    a
}

fn x2apic(id: u32) -> Lapic {
    let mut a = enabled(id);
    let b = a.apic_base();
    a.set_apic_base(b | base::EXTD, MAXPHYADDR).unwrap();
    a
}

fn msr(off: u32) -> u32 {
    X2APIC_BASE + off / 16
}

#[test]
fn reset_state_is_the_architectures() {
    let a = Lapic::new(0, true, true);
    assert_eq!(a.apic_base(), base::DEFAULT_ADDR | base::ENABLE | base::BSP);
    assert_eq!(Lapic::new(3, true, true).apic_base() & base::BSP, 0);
    assert_eq!(a.read(reg::LVR, 0), Ok(VERSION));
    assert_eq!(a.read(reg::SPIV, 0), Ok(0xff));
    assert_eq!(a.read(reg::DFR, 0), Ok(0xffff_ffff));
    for r in [reg::LVTT, reg::LVTTHMR, reg::LVTPC, reg::LVT0, reg::LVT1, reg::LVTERR] {
        assert_eq!(a.read(r, 0), Ok(lvt::MASKED), "{r:#x}");
    }
    assert_eq!(Lapic::new(5, true, true).read(reg::ID, 0), Ok(5 << 24));
    assert_eq!(a.mmio_base(), Some(base::DEFAULT_ADDR));
}

#[test]
fn registers_keep_only_their_writable_bits() {
    let mut a = enabled(0);
    let cases = [
        (reg::TASKPRI, 0xffff_ffff, 0xff),
        (reg::LDR, 0xffff_ffff, 0xff00_0000),
        (reg::DFR, 0, 0x0fff_ffff),
        (reg::SPIV, 0xffff_ffff, 0x3ff),
        (reg::ICR2, 0xffff_ffff, 0xff00_0000),
        (reg::TDCR, 0xffff_ffff, 0xb),
        (reg::LVTT, 0xffff_ffff, 0x7_00ff),
        (reg::LVT0, 0xffff_ffff, 0x1_a7ff),
        (reg::LVT1, 0xffff_ffff, 0x1_a7ff),
        (reg::LVTERR, 0xffff_ffff, 0x1_00ff),
        (reg::LVTTHMR, 0xffff_ffff, 0x1_07ff),
        (reg::LVTPC, 0xffff_ffff, 0x1_07ff),
    ];
    for (r, write, read) in cases {
        a.write(r, write, 0).unwrap();
        assert_eq!(a.read(r, 0), Ok(read), "register {r:#x}");
    }
    // Read-only registers refuse writes (dropped by MMIO).
    for r in [reg::LVR, reg::PROCPRI, reg::ISR, reg::TMR + 0x70, reg::IRR, reg::TMCCT] {
        assert_eq!(a.write(r, 0xffff_ffff, 0), Err(Refused), "register {r:#x}");
    }
    assert_eq!(a.read(reg::LVR, 0), Ok(VERSION));
    // Offsets that name no register.
    for r in [0x000, 0x010, 0x040, 0x2f0, 0x3a0, 0x3f0, 0x400] {
        assert_eq!(a.read(r, 0), Err(Refused), "offset {r:#x}");
    }
}

#[test]
fn the_timer_mode_bits_need_tsc_deadline_in_cpuid() {
    let mut a = Lapic::new(0, false, false);
    a.write(reg::SPIV, spiv::ENABLED, 0).unwrap();
    a.write(reg::LVTT, lvt::TIMER_TSCDEADLINE | 0x40, 0).unwrap();
    assert_eq!(a.read(reg::LVTT, 0), Ok(0x40));
    assert_eq!(a.timer_mode(), TimerMode::OneShot);
}

#[test]
fn software_disable_masks_every_lvt_entry_and_drops_fixed_interrupts() {
    let mut a = enabled(0);
    a.write(reg::LVT0, 0x30, 0).unwrap();
    a.write(reg::SPIV, 0xff, 0).unwrap();
    assert_eq!(a.read(reg::LVT0, 0), Ok(0x30 | lvt::MASKED));
    a.write(reg::LVT0, 0x30, 0).unwrap();
    assert_eq!(a.read(reg::LVT0, 0), Ok(0x30 | lvt::MASKED), "masked while disabled");
    assert!(!a.request(0x40, false));
    assert_eq!(a.irr, VectorSet::default());
}

#[test]
fn apic_base_modes_change_only_as_the_architecture_allows() {
    let mut a = enabled(7);
    let on = base::DEFAULT_ADDR | base::ENABLE;
    let x2 = on | base::EXTD;
    // Reserved bits, EXTD alone, and an address beyond MAXPHYADDR.
    assert_eq!(a.set_apic_base(on | 1, MAXPHYADDR), Err(Refused));
    assert_eq!(a.set_apic_base(on | (1 << 9), MAXPHYADDR), Err(Refused));
    assert_eq!(a.set_apic_base(base::EXTD | base::DEFAULT_ADDR, MAXPHYADDR), Err(Refused));
    assert_eq!(a.set_apic_base(on | (1 << 40), MAXPHYADDR), Err(Refused));
    // xAPIC to x2APIC: the ID becomes the initial APIC ID, LDR derived.
    a.set_apic_base(x2, MAXPHYADDR).unwrap();
    assert!(a.x2apic());
    assert_eq!(a.mmio_base(), None);
    assert_eq!(a.read_msr(msr(reg::ID), 0), Ok(7));
    assert_eq!(a.read_msr(msr(reg::LDR), 0), Ok(1 << 7));
    // x2APIC straight back to xAPIC is refused; through disabled it works
    // and resets the registers.
    assert_eq!(a.set_apic_base(on, MAXPHYADDR), Err(Refused));
    a.set_apic_base(base::DEFAULT_ADDR, MAXPHYADDR).unwrap();
    assert!(!a.hw_enabled() && !a.sw_enabled());
    assert_eq!(a.mmio_base(), None);
    // Disabled to x2APIC is refused.
    assert_eq!(a.set_apic_base(x2, MAXPHYADDR), Err(Refused));
    // Relocation.
    a.set_apic_base(0xfed0_0000 | base::ENABLE, MAXPHYADDR).unwrap();
    assert_eq!(a.mmio_base(), Some(0xfed0_0000));
    assert_eq!(a.read(reg::ID, 0), Ok(7 << 24));
    // Without x2APIC in CPUID, EXTD is reserved.
    let mut b = Lapic::new(0, false, false);
    assert_eq!(b.set_apic_base(x2, MAXPHYADDR), Err(Refused));
}

#[test]
fn a_hardware_disabled_apic_takes_nothing() {
    let mut a = enabled(0);
    a.request(0x50, false);
    a.set_apic_base(base::DEFAULT_ADDR, MAXPHYADDR).unwrap();
    assert_eq!(a.deliverable(), None);
    assert!(!a.request(0x60, false));
}

#[test]
fn ppr_and_delivery_follow_tpr_and_the_vector_in_service() {
    let mut a = enabled(0);
    assert!(a.request(0x41, false));
    assert_eq!(a.deliverable(), Some(0x41));
    a.acknowledge(0x41);
    assert_eq!(a.read(reg::PROCPRI, 0), Ok(0x40));
    // Same priority class: waits for the EOI.
    a.request(0x45, false);
    assert_eq!(a.deliverable(), None);
    // A higher class preempts.
    a.request(0x51, false);
    assert_eq!(a.deliverable(), Some(0x51));
    a.acknowledge(0x51);
    assert_eq!(a.write(reg::EOI, 0, 0), Ok(Effect::None));
    assert_eq!(a.write(reg::EOI, 0, 0), Ok(Effect::None));
    assert_eq!(a.deliverable(), Some(0x45));
    // TPR blocks a class at or below it.
    a.write(reg::TASKPRI, 0x45, 0).unwrap();
    assert_eq!(a.read(reg::PROCPRI, 0), Ok(0x45));
    assert_eq!(a.deliverable(), None);
    a.write(reg::TASKPRI, 0x3f, 0).unwrap();
    assert_eq!(a.deliverable(), Some(0x45));
}

#[test]
fn eoi_of_a_level_triggered_vector_is_reported() {
    let mut a = enabled(0);
    a.request(0x61, true);
    assert!(a.tmr.contains(0x61));
    a.acknowledge(0x61);
    assert_eq!(a.write(reg::EOI, 0, 0), Ok(Effect::LevelEoi(0x61)));
    assert_eq!(a.isr, VectorSet::default());
}

#[test]
fn illegal_vectors_are_errors_in_esr() {
    let mut a = enabled(0);
    a.write(reg::LVTERR, 0xe0, 0).unwrap();
    assert!(!a.request(7, false));
    // ESR shows the errors once written.
    assert_eq!(a.read(reg::ESR, 0), Ok(0));
    a.write(reg::ESR, 0, 0).unwrap();
    assert_eq!(a.read(reg::ESR, 0), Ok(esr::RECEIVE_ILLEGAL_VECTOR));
    // The error interrupt was raised through LVTERR.
    assert_eq!(a.deliverable(), Some(0xe0));
    // A self-IPI of an illegal vector is a send error.
    a.write(reg::ICR, lvt::SHORTHAND_SELF | 3, 0).unwrap();
    a.write(reg::ESR, 0, 0).unwrap();
    assert_eq!(a.read(reg::ESR, 0), Ok(esr::SEND_ILLEGAL_VECTOR));
}

#[test]
fn the_icr_sends_and_is_never_busy() {
    let mut a = enabled(0);
    // A self-IPI is delivered at once.
    assert_eq!(a.write(reg::ICR, lvt::SHORTHAND_SELF | 0x70, 0), Ok(Effect::None));
    assert!(a.irr.contains(0x70));
    assert_eq!(a.read(reg::ICR, 0).unwrap() & lvt::SEND_PENDING, 0);
    // Anything else is the vCPU's to deliver.
    a.write(reg::ICR2, 3 << 24, 0).unwrap();
    let Ok(Effect::Ipi(icr)) = a.write(reg::ICR, lvt::DM_NMI | lvt::SEND_PENDING | 2, 0) else { panic!() };
    assert_eq!((icr.delivery, icr.dest, icr.shorthand), (lvt::DM_NMI, 3, lvt::SHORTHAND_NONE));
    assert_eq!(a.read(reg::ICR, 0).unwrap() & lvt::SEND_PENDING, 0);
}

#[test]
fn x2apic_msrs_refuse_what_the_architecture_refuses() {
    let mut a = x2apic(2);
    assert_eq!(a.read_msr(msr(reg::EOI), 0), Err(Refused));
    assert_eq!(a.write_msr(msr(reg::EOI), 1, 0), Err(Refused));
    assert_eq!(a.read_msr(msr(reg::DFR), 0), Err(Refused));
    assert_eq!(a.read_msr(msr(reg::ICR2), 0), Err(Refused));
    assert_eq!(a.read_msr(msr(reg::SELF_IPI), 0), Err(Refused));
    assert_eq!(a.write_msr(msr(reg::ID), 9, 0), Err(Refused));
    assert_eq!(a.write_msr(msr(reg::LDR), 9, 0), Err(Refused));
    assert_eq!(a.write_msr(msr(reg::TASKPRI), 1 << 32, 0), Err(Refused));
    assert_eq!(a.write_msr(msr(reg::ESR), 1, 0), Err(Refused));
    // The ICR is one 64-bit register with the destination on top.
    let Ok(Effect::Ipi(icr)) = a.write_msr(msr(reg::ICR), (5 << 32) | 0x30, 0) else { panic!() };
    assert_eq!((icr.vector, icr.dest), (0x30, 5));
    assert_eq!(a.read_msr(msr(reg::ICR), 0), Ok((5 << 32) | 0x30));
    // SELF_IPI.
    a.write_msr(msr(reg::SELF_IPI), 0x99, 0).unwrap();
    assert!(a.irr.contains(0x99));
    // Outside x2APIC mode the MSRs do not exist.
    assert_eq!(enabled(0).read_msr(msr(reg::ID), 0), Err(Refused));
}

#[test]
fn divider_follows_tdcr() {
    let mut a = enabled(0);
    for (tdcr, div) in [(0x0, 2), (0x1, 4), (0x2, 8), (0x3, 16), (0x8, 32), (0x9, 64), (0xa, 128), (0xb, 1)] {
        a.write(reg::TDCR, tdcr, 0).unwrap();
        assert_eq!(a.divider(), div, "TDCR {tdcr:#x}");
    }
}

#[test]
fn one_shot_counts_down_and_fires_once_never_early() {
    let mut a = enabled(0);
    a.write(reg::TDCR, 0xb, 0).unwrap(); // divide by 1
    a.write(reg::LVTT, 0x40, 0).unwrap();
    let start = 1_000_000;
    assert_eq!(a.write(reg::TMICT, 1_000_000, start), Ok(Effect::TimerChanged));
    assert_eq!(a.current_count(start), 1_000_000);
    assert_eq!(a.read(reg::TMCCT, start + 250_000), Ok(750_000));
    assert_eq!(a.timer_deadline(), Some(start + 1_000_000));
    assert!(!a.timer_expired(start + 999_999), "early");
    assert!(a.timer_expired(start + 1_000_000));
    assert!(a.irr.contains(0x40));
    assert_eq!(a.current_count(start + 1_000_001), 0);
    assert_eq!(a.timer_deadline(), None);
    assert!(!a.timer_expired(start + 3_000_000));
}

#[test]
fn periodic_reloads_and_coalesces_late_expiries() {
    let mut a = enabled(0);
    a.write(reg::LVTT, lvt::TIMER_PERIODIC | 0x41, 0).unwrap();
    a.write(reg::TDCR, 0x3, 0).unwrap(); // divide by 16
    a.write(reg::TMICT, 62_500, 0).unwrap(); // 1 ms
    assert_eq!(a.timer_deadline(), Some(1_000_000));
    assert_eq!(a.current_count(1_500_000), 31_250);
    // Seen 2.5 periods late: one interrupt, the next deadline on the grid.
    assert!(a.timer_expired(3_500_000));
    assert_eq!(a.timer_deadline(), Some(4_000_000));
    a.acknowledge(0x41);
    assert!(a.timer_expired(4_000_000));
    assert_eq!(a.timer_deadline(), Some(5_000_000));
}

#[test]
fn short_periods_are_stretched_to_the_minimum() {
    let mut a = enabled(0);
    a.write(reg::LVTT, lvt::TIMER_PERIODIC | 0x41, 0).unwrap();
    a.write(reg::TDCR, 0xb, 0).unwrap();
    a.write(reg::TMICT, 1, 0).unwrap();
    assert_eq!(a.timer_deadline(), Some(MIN_PERIOD_NS));
    assert!(a.current_count(10) <= 1);
}

#[test]
fn a_masked_timer_expires_without_an_interrupt() {
    let mut a = enabled(0);
    a.write(reg::LVTT, lvt::MASKED | 0x40, 0).unwrap();
    a.write(reg::TMICT, 1_000_000, 0).unwrap();
    assert!(!a.timer_expired(2_000_000));
    assert_eq!(a.irr, VectorSet::default());
}

#[test]
fn tsc_deadline_arms_disarms_and_ignores_the_initial_count() {
    let mut a = enabled(0);
    // Outside the mode the MSR write is ignored.
    assert_eq!(a.write_tsc_deadline(5000), Effect::None);
    assert_eq!(a.read_tsc_deadline(), 0);
    a.write(reg::LVTT, lvt::TIMER_TSCDEADLINE | 0x42, 0).unwrap();
    assert_eq!(a.write(reg::TMICT, 100, 0), Ok(Effect::None));
    assert_eq!(a.read(reg::TMICT, 0), Ok(0));
    assert_eq!(a.write_tsc_deadline(5000), Effect::TimerChanged);
    assert_eq!((a.tsc_deadline(), a.read_tsc_deadline()), (Some(5000), 5000));
    assert!(a.timer_expired(0));
    assert!(a.irr.contains(0x42));
    assert_eq!(a.read_tsc_deadline(), 0, "a fired deadline reads 0");
    a.write_tsc_deadline(9000);
    a.write_tsc_deadline(0);
    assert_eq!(a.tsc_deadline(), None);
    // A change of mode stops the timer.
    a.write_tsc_deadline(9000);
    assert_eq!(a.write(reg::LVTT, 0x42, 0), Ok(Effect::TimerChanged));
    assert_eq!((a.tsc_deadline(), a.timer_deadline()), (None, None));
}

/// The SDM's rule, written independently: the highest vector in IRR is
/// delivered when its priority class is above the PPR's, where PPR is
/// TPR if TPR[7:4] >= ISRV[7:4], else ISRV[7:4] << 4.
fn reference_deliverable(irr: &[bool; 256], isr: &[bool; 256], tpr: u32) -> (u32, Option<u8>) {
    let isrv = (0..256).rev().find(|&v| isr[v]).unwrap_or(0) as u32;
    let ppr = if tpr >> 4 >= isrv >> 4 { tpr } else { isrv & 0xf0 };
    let irrv = (0..256).rev().find(|&v| irr[v]);
    (ppr, irrv.filter(|&v| (v as u32) >> 4 > ppr >> 4).map(|v| v as u8))
}

proptest! {
    #[test]
    fn priorities_match_the_reference(
        requested in proptest::collection::vec(16u8..=255, 0..12),
        in_service in proptest::collection::vec(16u8..=255, 0..4),
        tpr in 0u32..256,
    ) {
        let mut a = enabled(0);
        let (mut irr, mut isr) = ([false; 256], [false; 256]);
        for &v in &in_service {
            a.isr.set(v);
            isr[usize::from(v)] = true;
        }
        for &v in &requested {
            prop_assert!(a.request(v, false));
            irr[usize::from(v)] = true;
        }
        a.write(reg::TASKPRI, tpr, 0).unwrap();
        let (ppr, deliverable) = reference_deliverable(&irr, &isr, tpr);
        prop_assert_eq!(a.ppr(), ppr);
        prop_assert_eq!(a.deliverable(), deliverable);
    }

    #[test]
    fn the_current_count_falls_from_the_initial_count_to_zero(
        count in 1u32..=u32::MAX, tdcr in prop_oneof![Just(0u32), Just(1), Just(2), Just(3), Just(8), Just(9), Just(0xa), Just(0xb)],
        t1 in 0u64..1 << 40, dt in 0u64..1 << 40,
    ) {
        let mut a = enabled(0);
        a.write(reg::LVTT, 0x40, 0).unwrap();
        a.write(reg::TDCR, tdcr, 0).unwrap();
        a.write(reg::TMICT, count, 0).unwrap();
        let (c1, c2) = (a.current_count(t1), a.current_count(t1 + dt));
        prop_assert!(c1 <= count && c2 <= c1);
        let deadline = a.timer_deadline().unwrap();
        prop_assert!(deadline >= u64::from(count) * a.divider());
        prop_assert_eq!(a.current_count(deadline), 0);
        prop_assert!(!a.timer_expired(deadline - 1));
    }
}

#[test]
fn vector_sets_find_their_highest_member() {
    let mut s = VectorSet::default();
    assert_eq!(s.highest(), None);
    for v in [16u8, 31, 32, 200, 255] {
        s.set(v);
        assert_eq!(s.highest(), Some(v));
    }
    s.clear(255);
    assert_eq!(s.highest(), Some(200));
    let _ = Lvt::Timer;
}

#[test]
fn saved_state_restores_to_the_same_apic() {
    let mut a = enabled(3);
    a.write(reg::TASKPRI, 0x31, 0).unwrap();
    a.write(reg::LDR, 0x0800_0000, 0).unwrap();
    a.write(reg::LVT0, lvt::DM_EXTINT, 0).unwrap();
    a.write(reg::LVTT, lvt::TIMER_PERIODIC | 0x41, 0).unwrap();
    a.write(reg::TDCR, 0x3, 0).unwrap();
    a.write(reg::TMICT, 1000, 0).unwrap();
    a.request(0x70, true);
    a.request(0x80, false);
    a.acknowledge(0x80);
    let mut regs = [0u8; 1024];
    a.save(&mut regs, 0);
    let word = |off: u32| u32::from_le_bytes(regs[off as usize..][..4].try_into().unwrap());
    assert_eq!((word(reg::ID), word(reg::TASKPRI), word(reg::LVR)), (3 << 24, 0x31, VERSION));
    assert_eq!(word(reg::IRR + 0x30), 1 << 16, "0x70 requested");
    let mut b = Lapic::new(3, true, true);
    b.restore(a.apic_base(), &regs, MAXPHYADDR, 0).unwrap();
    let mut again = [0u8; 1024];
    b.save(&mut again, 0);
    assert_eq!(regs, again);
    assert_eq!(b.deliverable(), None, "0x70 waits for 0x80's EOI");
    assert_eq!(b.write(reg::EOI, 0, 0), Ok(Effect::None));
    assert_eq!(b.deliverable(), Some(0x70));
}

#[test]
fn restore_refuses_what_no_apic_could_be_in() {
    let regs = [0u8; 1024];
    let mut a = Lapic::new(2, false, false);
    let on = base::DEFAULT_ADDR | base::ENABLE;
    assert_eq!(a.restore(on | 1, &regs, MAXPHYADDR, 0), Err(Refused));
    assert_eq!(a.restore(base::EXTD, &regs, MAXPHYADDR, 0), Err(Refused));
    assert_eq!(a.restore(on | base::EXTD, &regs, MAXPHYADDR, 0), Err(Refused), "x2APIC not offered");
    let mut b = Lapic::new(2, true, false);
    assert_eq!(b.restore(on | base::EXTD, &regs, MAXPHYADDR, 0), Err(Refused), "x2APIC ID 0 is not vCPU 2's");
    let mut x2 = regs;
    x2[reg::ID as usize] = 2;
    b.restore(on | base::EXTD, &x2, MAXPHYADDR, 0).unwrap();
    assert!(b.x2apic());
    // Disabled: the registers are at reset.
    let mut dirty = [0xffu8; 1024];
    dirty[0] = 0;
    b.restore(base::DEFAULT_ADDR, &dirty, MAXPHYADDR, 0).unwrap();
    assert_eq!(b.read(reg::SPIV, 0), Ok(0xff));
    // Illegal vectors never arrive in IRR or ISR.
    let mut low = [0u8; 1024];
    low[reg::IRR as usize] = 0xff;
    let mut c = Lapic::new(0, true, false);
    c.restore(on, &low, MAXPHYADDR, 0).unwrap();
    assert_eq!(c.irr, VectorSet::default());
}

#[test]
fn tsc_ticks_become_nanoseconds_rounded_up() {
    use crate::irq::lapic::tsc_ticks_to_ns;
    assert_eq!(tsc_ticks_to_ns(2_500_000, 2_500_000), 1_000_000);
    assert_eq!(tsc_ticks_to_ns(1, 2_500_000), 1, "never early: a tick is at least a nanosecond");
    assert_eq!(tsc_ticks_to_ns(0, 2_500_000), 0);
    assert_eq!(tsc_ticks_to_ns(u64::MAX, 1), u64::MAX, "saturates");
}

proptest! {
    #[test]
    fn tsc_ticks_to_ns_is_the_exact_ceiling(ticks in any::<u64>(), khz in 1u64..10_000_000) {
        let exact = (u128::from(ticks) * 1_000_000).div_ceil(u128::from(khz));
        let want = u64::try_from(exact).unwrap_or(u64::MAX);
        prop_assert_eq!(crate::irq::lapic::tsc_ticks_to_ns(ticks, khz), want);
    }
}

#[test]
fn msis_decode_as_the_sdm_lays_them_out() {
    use crate::irq::inbox::Msi;
    let m = Msi::decode(0xfee0_3004, 0x8000 | 0x4000 | 0x100 | 0x51, 0).unwrap().unwrap();
    assert_eq!(m, Msi { dest: 3, logical: true, vector: 0x51, delivery: lvt::DM_LOWEST, level_triggered: true });
    // The x2APIC extension of the destination, bits 63:40.
    let m = Msi::decode(0x0000_0100_fee0_0000, 0x40, 0).unwrap().unwrap();
    assert_eq!(m.dest, 0x100);
    assert_eq!(Msi::decode(0xfee0_0000, 0x8040, 0), Ok(None), "a level de-assertion delivers nothing");
    assert_eq!(Msi::decode(0xfee0_0000, 0x440, 0).unwrap().unwrap().delivery, lvt::DM_NMI);
    for (address, data, flags) in [(0xfed0_0000u64, 0x40u32, 0u32), (0x1_fee0_0000, 0x40, 0), (0xfee0_0000, 0x40, 1)] {
        assert_eq!(Msi::decode(address, data, flags), Err(Refused), "{address:#x} {data:#x} {flags}");
    }
    for dm in [2u32, 3, 5, 6, 7] {
        assert_eq!(Msi::decode(0xfee0_0000, dm << 8 | 0x40, 0), Err(Refused), "delivery mode {dm}");
    }
}

#[test]
fn destinations_match_physical_flat_cluster_and_x2apic_ids() {
    let mut a = enabled(3);
    let d = a.destination();
    assert!(d.accepts(3, false) && d.accepts(0xff, false) && !d.accepts(2, false));
    // Flat logical: LDR bit 2.
    a.write(reg::LDR, 0x0400_0000, 0).unwrap();
    let d = a.destination();
    assert!(d.accepts(0x04, true) && d.accepts(0x0c, true) && !d.accepts(0x03, true));
    // Cluster: cluster 1, member bit 0.
    a.write(reg::DFR, 0x0fff_ffff, 0).unwrap();
    a.write(reg::LDR, 0x1100_0000, 0).unwrap();
    let d = a.destination();
    assert!(d.cluster && d.accepts(0x11, true) && d.accepts(0x13, true) && !d.accepts(0x21, true));
    // x2APIC: ID 3, LDR cluster 0 bit 3.
    let d = x2apic(3).destination();
    assert!(d.x2apic && d.accepts(3, false) && d.accepts(u32::MAX, false) && !d.accepts(0xff, false));
    assert!(d.accepts(0x8, true) && !d.accepts(0x1_0008, true));
    // A software-disabled APIC accepts nothing.
    assert!(!Lapic::new(0, true, false).destination().accepts(0, false));
}

#[test]
fn the_inbox_hands_over_vectors_nmis_and_lint_edges() {
    use crate::irq::inbox::{Inbox, LINT1};
    let inbox = Inbox::default();
    inbox.post(0x40, false);
    inbox.post(0xe1, true);
    inbox.post_nmi();
    let mut got = Vec::new();
    let taken = inbox.take(|v, level| got.push((v, level)));
    assert_eq!(got, vec![(0x40, false), (0xe1, true)]);
    assert!(taken.nmi);
    let again = inbox.take(|_, _| panic!("taken twice"));
    assert!(!again.nmi);
    // A pulse the vCPU never saw high is still an edge.
    inbox.set_lint(LINT1, true);
    inbox.set_lint(LINT1, false);
    assert_eq!((inbox.lint_levels(), inbox.take_lint_rising()), (0, LINT1));
    assert_eq!((inbox.lint_levels(), inbox.take_lint_rising()), (0, 0));
    // What is published is what senders see.
    let d = enabled(2).destination();
    inbox.publish(d);
    assert_eq!(inbox.destination(), d);
}

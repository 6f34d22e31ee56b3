// SPDX-License-Identifier: GPL-2.0

//! The local APIC as a guest sees it: its registers with their read and
//! write masks, in xAPIC (the MMIO page) and x2APIC (MSRs) mode, the
//! priorities that decide which requested vector the vCPU takes next,
//! EOI, and the arithmetic of the timer. Pure state: the caller supplies
//! the time (nanoseconds of the APIC's bus clock, which runs at 1 GHz,
//! as KVM's) and acts on the [`Effect`]s a write returns; injecting the
//! vector into the guest, arming host timers and exits to userspace are
//! the vCPU's. Depends on `core` only; tested on the host.

use crate::hw::apic::{self, base, esr, lvt, reg, spiv};

/// The LVT entries, in register order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lvt {
    Timer = 0,
    Thermal = 1,
    Perf = 2,
    Lint0 = 3,
    Lint1 = 4,
    Error = 5,
}

const NR_LVT: usize = 6;

impl Lvt {
    /// The entry at register offset `off`.
    fn at(off: u32) -> Option<Self> {
        Some(match off {
            reg::LVTT => Lvt::Timer,
            reg::LVTTHMR => Lvt::Thermal,
            reg::LVTPC => Lvt::Perf,
            reg::LVT0 => Lvt::Lint0,
            reg::LVT1 => Lvt::Lint1,
            reg::LVTERR => Lvt::Error,
            _ => return None,
        })
    }

    /// The bits software may write.
    fn write_mask(self, tsc_deadline: bool) -> u32 {
        let common = lvt::VECTOR | lvt::MASKED;
        match self {
            Lvt::Timer if tsc_deadline => common | lvt::TIMER_MODE_MASK,
            Lvt::Timer => common | lvt::TIMER_PERIODIC,
            Lvt::Thermal | Lvt::Perf => common | lvt::DM_MASK,
            Lvt::Lint0 | Lvt::Lint1 => {
                common | lvt::DM_MASK | lvt::INPUT_POLARITY | lvt::LEVEL_TRIGGER
            }
            Lvt::Error => common,
        }
    }
}

/// The timer's mode (LVTT bits 18:17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerMode {
    OneShot,
    Periodic,
    TscDeadline,
}

/// The shortest period a periodic or one-shot timer is given, in
/// nanoseconds: a guest cannot make the host's timer fire more often (as
/// KVM's `min_timer_period_us`).
pub const MIN_PERIOD_NS: u64 = 200_000;

/// SPIV's writable bits (EOI-broadcast suppression is not offered).
const SPIV_WRITABLE: u32 = spiv::VECTOR | spiv::ENABLED | spiv::FOCUS_DISABLED;

/// What a register write asks of the vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The timer was (re)programmed or stopped: arm the host timer for
    /// [`Lapic::timer_deadline`], or cancel it.
    TimerChanged,
    /// An EOI ended level-triggered vector `v`: the userspace IOAPIC
    /// must hear of it.
    LevelEoi(u8),
    /// A write to the ICR: deliver this interrupt.
    Ipi(Icr),
}

/// An interrupt command: the ICR's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icr {
    pub vector: u8,
    /// `lvt::DM_*`.
    pub delivery: u32,
    pub logical: bool,
    pub level: bool,
    pub assert: bool,
    /// `lvt::SHORTHAND_*`.
    pub shorthand: u32,
    /// xAPIC: bits 31:24 of ICR2; x2APIC: the high word.
    pub dest: u32,
}

/// A guest access the architecture refuses: #GP for an MSR, a dropped
/// access for MMIO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

/// A 256-bit vector set: IRR, ISR, TMR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VectorSet(pub [u32; 8]);

impl VectorSet {
    pub fn set(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] |= 1 << (v & 31);
    }
    pub fn clear(&mut self, v: u8) {
        self.0[usize::from(v >> 5)] &= !(1 << (v & 31));
    }
    pub fn contains(&self, v: u8) -> bool {
        self.0[usize::from(v >> 5)] & (1 << (v & 31)) != 0
    }
    /// The highest vector in the set.
    pub fn highest(&self) -> Option<u8> {
        (0..8).rev().find(|&i| self.0[i] != 0).map(|i| (i as u32 * 32 + 31 - self.0[i].leading_zeros()) as u8)
    }
}

/// `ticks` of a TSC running at `khz` (non-zero) in nanoseconds, rounded
/// up so that a deadline turned into host time is never early;
/// saturating. No 128-bit division (the kernel has none).
pub fn tsc_ticks_to_ns(ticks: u64, khz: u64) -> u64 {
    let whole = (ticks / khz).saturating_mul(1_000_000);
    // The remainder is below `khz`, so its product fits for any rate
    // below 18 THz.
    whole.saturating_add((ticks % khz * 1_000_000).div_ceil(khz))
}

/// What an interrupt message's destination is matched against: the
/// APIC's ID, its logical destination and model (SDM 11.6.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Destination {
    /// xAPIC: the ID register's bits 31:24; x2APIC: the 32-bit ID.
    pub id: u32,
    /// xAPIC: LDR bits 31:24; x2APIC: the derived 32-bit LDR.
    pub ldr: u32,
    /// The DFR's cluster model (xAPIC).
    pub cluster: bool,
    pub x2apic: bool,
    /// Enabled in IA32_APIC_BASE and in SPIV: accepts fixed interrupts.
    pub enabled: bool,
}

impl Destination {
    /// Whether a message for `dest` (physical, or logical if `logical`)
    /// reaches this APIC. The broadcast ID (all ones) reaches every one.
    pub fn accepts(&self, dest: u32, logical: bool) -> bool {
        if !self.enabled {
            return false;
        }
        let broadcast = if self.x2apic { u32::MAX } else { 0xff };
        if dest == broadcast {
            return true;
        }
        match (logical, self.x2apic) {
            (false, _) => dest == self.id,
            // x2APIC: cluster in bits 31:16, a bitmap of 16 in 15:0.
            (true, true) => dest >> 16 == self.ldr >> 16 && dest & self.ldr & 0xffff != 0,
            (true, false) if self.cluster => {
                dest >> 4 == self.ldr >> 4 && dest & self.ldr & 0xf != 0
            }
            (true, false) => dest & self.ldr & 0xff != 0,
        }
    }
}

/// The timer's running state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Timer {
    /// When the current period started (one-shot and periodic), bus ns.
    start: u64,
    /// The length of a period in bus ns (initial count times divider,
    /// at least [`MIN_PERIOD_NS`]); 0 when stopped.
    period: u64,
    /// TSC-deadline mode: the deadline in guest TSC ticks, 0 when
    /// disarmed.
    tsc_deadline: u64,
}

/// One vCPU's local APIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lapic {
    /// The initial APIC ID: the vCPU's number.
    vcpu_id: u32,
    /// Whether the VM's CPUID offers x2APIC and TSC-deadline.
    x2apic_allowed: bool,
    tsc_deadline_allowed: bool,
    /// IA32_APIC_BASE.
    apic_base: u64,
    /// The ID register as written (xAPIC).
    id: u32,
    tpr: u32,
    ldr: u32,
    dfr: u32,
    spiv: u32,
    /// ESR as last latched, and the errors since.
    esr: u32,
    esr_pending: u32,
    icr: u32,
    icr2: u32,
    lvt: [u32; NR_LVT],
    tmict: u32,
    tdcr: u32,
    pub irr: VectorSet,
    pub isr: VectorSet,
    pub tmr: VectorSet,
    timer: Timer,
}

impl Lapic {
    /// The APIC of vCPU `vcpu_id` at power-on: enabled (xAPIC) at the
    /// default address, the BSP for vCPU 0, software-disabled.
    pub fn new(vcpu_id: u32, x2apic_allowed: bool, tsc_deadline_allowed: bool) -> Self {
        let bsp = if vcpu_id == 0 { base::BSP } else { 0 };
        let mut a = Lapic {
            vcpu_id,
            x2apic_allowed,
            tsc_deadline_allowed,
            apic_base: base::DEFAULT_ADDR | base::ENABLE | bsp,
            id: 0,
            tpr: 0,
            ldr: 0,
            dfr: 0,
            spiv: 0,
            esr: 0,
            esr_pending: 0,
            icr: 0,
            icr2: 0,
            lvt: [0; NR_LVT],
            tmict: 0,
            tdcr: 0,
            irr: VectorSet::default(),
            isr: VectorSet::default(),
            tmr: VectorSet::default(),
            timer: Timer::default(),
        };
        a.reset_registers();
        a
    }

    /// The registers' state at reset and after a hardware disable
    /// (SDM 11.4.7.1): everything zero but the LVT masks, DFR all ones
    /// and the spurious vector 0xff.
    fn reset_registers(&mut self) {
        self.id = self.vcpu_id << 24;
        self.tpr = 0;
        self.ldr = 0;
        self.dfr = 0xffff_ffff;
        self.spiv = 0xff;
        self.esr = 0;
        self.esr_pending = 0;
        self.icr = 0;
        self.icr2 = 0;
        self.lvt = [lvt::MASKED; NR_LVT];
        self.tmict = 0;
        self.tdcr = 0;
        self.irr = VectorSet::default();
        self.isr = VectorSet::default();
        self.tmr = VectorSet::default();
        self.timer = Timer::default();
    }

    /// IA32_APIC_BASE.
    pub fn apic_base(&self) -> u64 {
        self.apic_base
    }

    /// Whether the APIC is enabled in IA32_APIC_BASE.
    pub fn hw_enabled(&self) -> bool {
        self.apic_base & base::ENABLE != 0
    }

    /// Whether the APIC is in x2APIC mode.
    pub fn x2apic(&self) -> bool {
        self.hw_enabled() && self.apic_base & base::EXTD != 0
    }

    /// Whether software enabled it (SPIV bit 8).
    pub fn sw_enabled(&self) -> bool {
        self.spiv & spiv::ENABLED != 0
    }

    /// The guest-physical address of the xAPIC page, when the APIC is
    /// enabled in xAPIC mode.
    pub fn mmio_base(&self) -> Option<u64> {
        (self.hw_enabled() && !self.x2apic()).then_some(self.apic_base & base::ADDR_MASK)
    }

    /// WRMSR IA32_APIC_BASE, with the guest's physical address width.
    /// The modes change only as the architecture allows (SDM 11.12.5):
    /// disabled, xAPIC and x2APIC, never from x2APIC straight to xAPIC
    /// nor from disabled to x2APIC; disabling resets the registers.
    pub fn set_apic_base(&mut self, v: u64, maxphyaddr: u8) -> Result<(), Refused> {
        if v & self.base_reserved(maxphyaddr) != 0 {
            return Err(Refused);
        }
        let mode = |b: u64| (b & base::ENABLE != 0, b & base::EXTD != 0);
        let (old, new) = (mode(self.apic_base), mode(v));
        match (old, new) {
            // EXTD without ENABLE is invalid.
            (_, (false, true)) => return Err(Refused),
            // x2APIC to xAPIC, and disabled to x2APIC.
            ((true, true), (true, false)) | ((false, false), (true, true)) => return Err(Refused),
            _ => {}
        }
        self.apic_base = v;
        if !new.0 {
            self.reset_registers();
        } else if new.1 && !old.1 {
            // Into x2APIC: the ID is the initial APIC ID, and LDR is
            // derived from it (SDM 11.12.10.2).
            self.id = self.vcpu_id;
            self.ldr = ((self.vcpu_id >> 4) << 16) | (1 << (self.vcpu_id & 0xf));
        } else if !old.0 {
            self.id = self.vcpu_id << 24;
        }
        Ok(())
    }

    /// The IA32_APIC_BASE bits a write must leave clear: 0-7, 9, the
    /// address bits beyond MAXPHYADDR, and EXTD without x2APIC in CPUID.
    fn base_reserved(&self, maxphyaddr: u8) -> u64 {
        let addr_bits = !0u64 << maxphyaddr.min(63);
        0xff | (1 << 9) | addr_bits | if self.x2apic_allowed { 0 } else { base::EXTD }
    }

    /// The processor priority (SDM 11.8.3.1): the TPR, or the priority
    /// class of the highest vector in service if that is higher.
    pub fn ppr(&self) -> u32 {
        let isrv = self.isr.highest().map_or(0, u32::from);
        if (self.tpr & 0xf0) >= (isrv & 0xf0) {
            self.tpr & 0xff
        } else {
            isrv & 0xf0
        }
    }

    /// What interrupt messages are matched against.
    pub fn destination(&self) -> Destination {
        let x2apic = self.x2apic();
        Destination {
            id: if x2apic { self.id } else { self.id >> 24 },
            ldr: if x2apic { self.ldr } else { self.ldr >> 24 },
            cluster: self.dfr & apic::DFR_MODEL_FLAT == 0,
            x2apic,
            enabled: self.hw_enabled() && self.sw_enabled(),
        }
    }

    /// Whether the VM's CPUID offers TSC-deadline mode.
    pub fn tsc_deadline_allowed(&self) -> bool {
        self.tsc_deadline_allowed
    }

    /// The task priority register (CR8 is its bits 7:4).
    pub fn tpr(&self) -> u32 {
        self.tpr
    }

    /// Sets the TPR (MOV CR8 writes bits 7:4).
    pub fn set_tpr(&mut self, v: u32) {
        self.tpr = v & 0xff;
    }

    /// The highest requested vector the vCPU may take now: its priority
    /// class above the processor priority's.
    pub fn deliverable(&self) -> Option<u8> {
        if !self.hw_enabled() {
            return None;
        }
        let v = self.irr.highest()?;
        (u32::from(v) & 0xf0 > self.ppr() & 0xf0).then_some(v)
    }

    /// The vCPU took vector `v` (it was [`Self::deliverable`]): from the
    /// request register into service.
    pub fn acknowledge(&mut self, v: u8) {
        self.irr.clear(v);
        self.isr.set(v);
    }

    /// Requests fixed vector `v`, edge or level triggered. Vectors 0-15
    /// are illegal (the error goes into ESR); a software-disabled APIC
    /// drops fixed interrupts. Returns whether the vector was accepted.
    pub fn request(&mut self, v: u8, level: bool) -> bool {
        if !self.hw_enabled() || !self.sw_enabled() {
            return false;
        }
        if v < 16 {
            self.error(esr::RECEIVE_ILLEGAL_VECTOR);
            return false;
        }
        self.irr.set(v);
        if level {
            self.tmr.set(v);
        } else {
            self.tmr.clear(v);
        }
        true
    }

    fn error(&mut self, bits: u32) {
        self.esr_pending |= bits;
        // An error interrupt, through LVTERR (APM 16.4.8).
        let e = self.lvt[Lvt::Error as usize];
        if e & lvt::MASKED == 0 {
            let v = (e & lvt::VECTOR) as u8;
            if v >= 16 {
                self.irr.set(v);
                self.tmr.clear(v);
            }
        }
    }

    /// End of interrupt: the highest vector in service leaves it.
    fn eoi(&mut self) -> Effect {
        let Some(v) = self.isr.highest() else { return Effect::None };
        self.isr.clear(v);
        if self.tmr.contains(v) {
            return Effect::LevelEoi(v);
        }
        Effect::None
    }

    /// An LVT entry as the guest wrote it.
    pub fn lvt(&self, which: Lvt) -> u32 {
        self.lvt[which as usize]
    }

    /// The timer's mode.
    pub fn timer_mode(&self) -> TimerMode {
        match self.lvt[Lvt::Timer as usize] & lvt::TIMER_MODE_MASK {
            lvt::TIMER_PERIODIC => TimerMode::Periodic,
            lvt::TIMER_TSCDEADLINE if self.tsc_deadline_allowed => TimerMode::TscDeadline,
            _ => TimerMode::OneShot,
        }
    }

    /// The timer's divider (TDCR, APM 16.4.1): 2, 4, ..., 128, or 1.
    pub fn divider(&self) -> u64 {
        let v = (self.tdcr & 3) | ((self.tdcr & 8) >> 1);
        1 << ((v + 1) & 7)
    }

    /// Starts the timer with the initial count, at `now`.
    fn start_timer(&mut self, now: u64) {
        self.timer.start = now;
        self.timer.period = if self.tmict == 0 {
            0
        } else {
            (u64::from(self.tmict) * self.divider()).max(MIN_PERIOD_NS)
        };
    }

    /// The current count at `now` (TMCCT): counting down from the
    /// initial count by one every divider nanoseconds, reloaded in
    /// periodic mode, 0 once a one-shot count has run out.
    pub fn current_count(&self, now: u64) -> u32 {
        let t = self.timer;
        if t.period == 0 || self.timer_mode() == TimerMode::TscDeadline {
            return 0;
        }
        let elapsed = now.saturating_sub(t.start);
        let left = match self.timer_mode() {
            TimerMode::Periodic => t.period - elapsed % t.period,
            _ if elapsed >= t.period => return 0,
            _ => t.period - elapsed,
        };
        // The period may exceed the count times the divider (the
        // minimum period); the count never exceeds the initial count.
        (left / self.divider()).min(u64::from(self.tmict)) as u32
    }

    /// When the timer next fires: bus ns for one-shot and periodic,
    /// `None` when it is stopped or masked, or in TSC-deadline mode (see
    /// [`Self::tsc_deadline`]).
    pub fn timer_deadline(&self) -> Option<u64> {
        if self.timer_mode() == TimerMode::TscDeadline || self.timer.period == 0 {
            return None;
        }
        Some(self.timer.start.saturating_add(self.timer.period))
    }

    /// The armed TSC deadline (guest TSC), in TSC-deadline mode.
    pub fn tsc_deadline(&self) -> Option<u64> {
        (self.timer_mode() == TimerMode::TscDeadline && self.timer.tsc_deadline != 0)
            .then_some(self.timer.tsc_deadline)
    }

    /// IA32_TSC_DEADLINE as the guest reads it: the armed deadline, or 0.
    pub fn read_tsc_deadline(&self) -> u64 {
        self.tsc_deadline().unwrap_or(0)
    }

    /// WRMSR IA32_TSC_DEADLINE: arms (or, with 0, disarms) the deadline;
    /// ignored outside TSC-deadline mode (SDM 11.5.4.1).
    pub fn write_tsc_deadline(&mut self, v: u64) -> Effect {
        if self.timer_mode() != TimerMode::TscDeadline {
            return Effect::None;
        }
        self.timer.tsc_deadline = v;
        Effect::TimerChanged
    }

    /// The timer reached its deadline at `now` (bus ns for one-shot and
    /// periodic; for TSC-deadline the caller found the guest TSC past the
    /// deadline). Raises the timer's vector unless masked; a periodic
    /// timer starts its next period (one interrupt however late the
    /// expiry is seen), a one-shot or TSC-deadline timer stops. Returns
    /// whether the vector was raised.
    pub fn timer_expired(&mut self, now: u64) -> bool {
        match self.timer_mode() {
            TimerMode::TscDeadline => {
                if self.timer.tsc_deadline == 0 {
                    return false;
                }
                self.timer.tsc_deadline = 0;
            }
            mode => {
                let Some(deadline) = self.timer_deadline() else { return false };
                if now < deadline {
                    // Never early.
                    return false;
                }
                if mode == TimerMode::Periodic {
                    let late = (now - deadline) / self.timer.period;
                    self.timer.start = deadline + late * self.timer.period;
                } else {
                    self.timer.period = 0;
                }
            }
        }
        let e = self.lvt[Lvt::Timer as usize];
        if e & lvt::MASKED != 0 {
            return false;
        }
        self.request((e & lvt::VECTOR) as u8, false)
    }

    /// Reads register `off` of the xAPIC page (a 32-bit access at a
    /// 16-byte boundary), or, for x2APIC, of the MSR that names it.
    /// `now` gives the current count.
    pub fn read(&self, off: u32, now: u64) -> Result<u32, Refused> {
        match off {
            // Arbitration priority and EOI read as 0 in xAPIC mode; neither
            // is readable as an MSR, nor are DFR and ICR2 (the ICR is one
            // 64-bit MSR: `read_msr`).
            reg::ARBPRI | reg::EOI | reg::DFR | reg::ICR2 if self.x2apic() => Err(Refused),
            reg::ARBPRI | reg::EOI => Ok(0),
            _ => self.state_word(off, now).ok_or(Refused),
        }
    }

    /// Writes register `off` (as [`Self::read`]) at `now`.
    pub fn write(&mut self, off: u32, v: u32, now: u64) -> Result<Effect, Refused> {
        let x2 = self.x2apic();
        match off {
            // The ID is read only in x2APIC mode; in xAPIC mode its top
            // byte is writable (as on KVM).
            reg::ID if !x2 => self.id = v & 0xff00_0000,
            reg::TASKPRI => self.tpr = v & 0xff,
            reg::EOI => {
                if x2 && v != 0 {
                    return Err(Refused);
                }
                return Ok(self.eoi());
            }
            reg::LDR if !x2 => self.ldr = v & 0xff00_0000,
            reg::DFR if !x2 => self.dfr = v | 0x0fff_ffff,
            reg::SPIV => {
                self.spiv = v & SPIV_WRITABLE;
                if !self.sw_enabled() {
                    // Software disable masks every LVT entry (SDM 11.4.7.2).
                    for e in self.lvt.iter_mut() {
                        *e |= lvt::MASKED;
                    }
                }
            }
            reg::ESR => {
                if x2 && v != 0 {
                    return Err(Refused);
                }
                // A write latches the errors since the last one.
                self.esr = core::mem::take(&mut self.esr_pending);
            }
            reg::ICR => {
                self.icr = v & !lvt::SEND_PENDING;
                return Ok(self.send());
            }
            reg::ICR2 if !x2 => self.icr2 = v & 0xff00_0000,
            reg::TMICT => {
                if self.timer_mode() == TimerMode::TscDeadline {
                    return Ok(Effect::None);
                }
                self.tmict = v;
                self.start_timer(now);
                return Ok(Effect::TimerChanged);
            }
            reg::TDCR => self.tdcr = v & apic::TDCR_MASK,
            reg::SELF_IPI if x2 => {
                let v = (v & 0xff) as u8;
                if v < 16 {
                    self.error(esr::SEND_ILLEGAL_VECTOR);
                } else {
                    self.request(v, false);
                }
            }
            r => {
                let Some(l) = Lvt::at(r) else { return Err(Refused) };
                let mut e = v & l.write_mask(self.tsc_deadline_allowed);
                if !self.sw_enabled() {
                    e |= lvt::MASKED;
                }
                let old_mode = self.timer_mode();
                self.lvt[l as usize] = e;
                if l == Lvt::Timer && self.timer_mode() != old_mode {
                    // A change of mode stops the timer (SDM 11.5.4.1).
                    self.tmict = 0;
                    self.timer = Timer::default();
                    return Ok(Effect::TimerChanged);
                }
            }
        }
        Ok(Effect::None)
    }

    /// The ICR was written: the command, for the vCPU to deliver (a
    /// self-IPI is delivered here).
    fn send(&mut self) -> Effect {
        let c = self.icr;
        let icr = Icr {
            vector: (c & lvt::VECTOR) as u8,
            delivery: c & lvt::DM_MASK,
            logical: c & lvt::DEST_LOGICAL != 0,
            level: c & lvt::LEVEL_TRIGGER != 0,
            assert: c & lvt::ICR_LEVEL_ASSERT != 0,
            shorthand: c & lvt::SHORTHAND_MASK,
            dest: if self.x2apic() { self.icr2 } else { self.icr2 >> 24 },
        };
        if icr.delivery == lvt::DM_FIXED && icr.vector < 16 {
            self.error(esr::SEND_ILLEGAL_VECTOR);
            return Effect::None;
        }
        if icr.shorthand == lvt::SHORTHAND_SELF && icr.delivery == lvt::DM_FIXED {
            self.request(icr.vector, false);
            return Effect::None;
        }
        Effect::Ipi(icr)
    }

    /// The register at `off` of the xAPIC page whatever the mode (as the
    /// state ioctls see it), or `None` for an offset that names none.
    fn state_word(&self, off: u32, now: u64) -> Option<u32> {
        Some(match off {
            reg::ID => self.id,
            reg::LVR => apic::VERSION,
            reg::TASKPRI => self.tpr,
            reg::PROCPRI => self.ppr(),
            reg::LDR => self.ldr,
            reg::DFR => self.dfr,
            reg::SPIV => self.spiv,
            r @ reg::ISR..=0x170 if r % 16 == 0 => self.isr.0[((r - reg::ISR) / 16) as usize],
            r @ reg::TMR..=0x1f0 if r % 16 == 0 => self.tmr.0[((r - reg::TMR) / 16) as usize],
            r @ reg::IRR..=0x270 if r % 16 == 0 => self.irr.0[((r - reg::IRR) / 16) as usize],
            reg::ESR => self.esr,
            // Delivery is immediate: the send-pending bit is never set
            // (writes drop it), so a guest that polls it never spins.
            reg::ICR => self.icr,
            reg::ICR2 => self.icr2,
            reg::TMICT => self.tmict,
            reg::TMCCT => self.current_count(now),
            reg::TDCR => self.tdcr,
            r => self.lvt[Lvt::at(r)? as usize],
        })
    }

    /// `PACIFICA_GET_LAPIC`: the register page's first KiB (`regs`, 1024
    /// bytes; a register at its offset, little-endian, the rest zero).
    pub fn save(&self, regs: &mut [u8], now: u64) {
        regs.fill(0);
        for off in (0..regs.len().min(1024) as u32).step_by(16) {
            if let Some(v) = self.state_word(off, now) {
                regs[off as usize..][..4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }

    /// `PACIFICA_SET_LAPIC`: IA32_APIC_BASE and the registers (as
    /// [`Self::save`] gives them), each with its writable bits, without
    /// the effects of a guest's write (no IPI is sent, no EOI done; the
    /// timer restarts from its initial count at `now`). Refused: reserved
    /// or impossible IA32_APIC_BASE bits, EXTD without x2APIC in CPUID,
    /// and an x2APIC ID other than the vCPU's.
    pub fn restore(&mut self, apic_base: u64, regs: &[u8], maxphyaddr: u8, now: u64) -> Result<(), Refused> {
        if apic_base & self.base_reserved(maxphyaddr) != 0
            || apic_base & (base::EXTD | base::ENABLE) == base::EXTD
            || regs.len() < 1024
        {
            return Err(Refused);
        }
        let r = |off: u32| u32::from_le_bytes([regs[off as usize], regs[off as usize + 1], regs[off as usize + 2], regs[off as usize + 3]]);
        let x2 = apic_base & base::EXTD != 0;
        if x2 && r(reg::ID) != self.vcpu_id {
            return Err(Refused);
        }
        self.apic_base = apic_base;
        self.reset_registers();
        if apic_base & base::ENABLE == 0 {
            return Ok(());
        }
        if x2 {
            self.id = self.vcpu_id;
            self.ldr = ((self.vcpu_id >> 4) << 16) | (1 << (self.vcpu_id & 0xf));
        } else {
            self.id = r(reg::ID) & 0xff00_0000;
            self.ldr = r(reg::LDR) & 0xff00_0000;
        }
        self.icr2 = if x2 { r(reg::ICR2) } else { r(reg::ICR2) & 0xff00_0000 };
        self.tpr = r(reg::TASKPRI) & 0xff;
        self.dfr = r(reg::DFR) | 0x0fff_ffff;
        self.spiv = r(reg::SPIV) & SPIV_WRITABLE;
        for i in 0..8 {
            // Vectors 0-15 are never requested or in service.
            let legal = if i == 0 { !0xffff } else { !0 };
            self.isr.0[i] = r(reg::ISR + 16 * i as u32) & legal;
            self.tmr.0[i] = r(reg::TMR + 16 * i as u32) & legal;
            self.irr.0[i] = r(reg::IRR + 16 * i as u32) & legal;
        }
        self.esr = r(reg::ESR) & (esr::SEND_ILLEGAL_VECTOR | esr::RECEIVE_ILLEGAL_VECTOR | esr::ILLEGAL_REGISTER);
        self.icr = r(reg::ICR) & !lvt::SEND_PENDING;
        for l in [Lvt::Timer, Lvt::Thermal, Lvt::Perf, Lvt::Lint0, Lvt::Lint1, Lvt::Error] {
            let off = [reg::LVTT, reg::LVTTHMR, reg::LVTPC, reg::LVT0, reg::LVT1, reg::LVTERR][l as usize];
            let mut e = r(off) & l.write_mask(self.tsc_deadline_allowed);
            if !self.sw_enabled() {
                e |= lvt::MASKED;
            }
            self.lvt[l as usize] = e;
        }
        self.tdcr = r(reg::TDCR) & apic::TDCR_MASK;
        if self.timer_mode() != TimerMode::TscDeadline {
            self.tmict = r(reg::TMICT);
            self.start_timer(now);
        }
        Ok(())
    }

    /// RDMSR of x2APIC register MSR `msr` (0x800-0x8ff).
    pub fn read_msr(&self, msr: u32, now: u64) -> Result<u64, Refused> {
        let off = self.x2apic_offset(msr)?;
        if off == reg::ICR {
            return Ok(u64::from(self.read(reg::ICR, now)?) | (u64::from(self.icr2) << 32));
        }
        // SELF_IPI is write-only.
        if off == reg::SELF_IPI {
            return Err(Refused);
        }
        self.read(off, now).map(u64::from)
    }

    /// WRMSR of x2APIC register MSR `msr`.
    pub fn write_msr(&mut self, msr: u32, v: u64, now: u64) -> Result<Effect, Refused> {
        let off = self.x2apic_offset(msr)?;
        if off == reg::ICR {
            self.icr2 = (v >> 32) as u32;
            return self.write(reg::ICR, v as u32, now);
        }
        // The upper half of every other register is reserved.
        if v >> 32 != 0 {
            return Err(Refused);
        }
        // Read-only registers refuse writes as MSRs.
        if matches!(off, reg::ID | reg::LVR | reg::PROCPRI | reg::LDR | reg::TMCCT)
            || (reg::ISR..=0x270).contains(&off)
        {
            return Err(Refused);
        }
        self.write(off, v as u32, now)
    }

    fn x2apic_offset(&self, msr: u32) -> Result<u32, Refused> {
        use crate::hw::msr::{X2APIC_BASE, X2APIC_LAST};
        if !self.x2apic() || !(X2APIC_BASE..=X2APIC_LAST).contains(&msr) {
            return Err(Refused);
        }
        Ok((msr - X2APIC_BASE) << 4)
    }
}

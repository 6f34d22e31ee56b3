// SPDX-License-Identifier: GPL-2.0

//! The 8254 programmable interval timer and port 0x61 (the PC's "port B").
//!
//! Three 16-bit down-counters clocked at [`PIT_HZ`]: channel 0's output is
//! ISA IRQ 0, channel 1 (once the DRAM refresh) drives nothing, channel 2's
//! gate is port 0x61 bit 0 and its output reads back as port 0x61 bit 5,
//! which is how Linux calibrates the TSC against it (`quick_pit_calibrate`,
//! `pit_calibrate_tsc`). The counters are not stepped: a counter's value and
//! output are computed from the host time since it was loaded, so a guest
//! that never looks at the PIT costs nothing.
//!
//! What is emulated: all six modes, the three access modes and the counter
//! latch, the read-back command (count and status), the gate of channel 2.
//! Simplifications, none of which Linux or the test suites notice: BCD
//! counting is accepted but counts in binary; a new count written to a
//! running counter takes effect at once rather than at the end of the
//! current period; channel 0's periodic interrupt is at most
//! [`MAX_IRQ_HZ`] (as KVM's in-kernel PIT limits it), and periods the VMM
//! could not deliver in time are skipped, not queued.

use std::time::{Duration, Instant};

/// The counters' input clock, in Hz.
pub const PIT_HZ: u64 = 1_193_182;
/// The counters' data ports are `PIT_BASE + n`, the mode/command port
/// `PIT_BASE + 3`.
pub const PIT_BASE: u64 = 0x40;
/// The four ports of the 8254.
pub const PIT_LEN: u64 = 4;
/// Port B of the PC's system control: channel 2's gate and output, the
/// speaker, the NMI sources.
pub const PORT_B: u64 = 0x61;
/// The ISA interrupt channel 0 raises.
pub const PIT_IRQ: u8 = 0;
/// The highest rate of channel 0's periodic interrupt.
pub const MAX_IRQ_HZ: u64 = 5000;

/// Port B bit 0: channel 2's gate.
const PORT_B_GATE2: u8 = 1 << 0;
/// Port B bits 0-3 are read-write (gate 2, speaker data, parity and I/O
/// check disables).
const PORT_B_WRITABLE: u8 = 0x0f;
/// Port B bit 4: toggles with the DRAM refresh.
const PORT_B_REFRESH: u8 = 1 << 4;
/// Port B bit 5: channel 2's output.
const PORT_B_OUT2: u8 = 1 << 5;

/// Bits 7:6 of a control word: the channel, or 3 for read-back.
const CW_READ_BACK: u8 = 3;
/// Read-back bit 5, active low: latch the selected counts.
const RB_NO_COUNT: u8 = 1 << 5;
/// Read-back bit 4, active low: latch the selected statuses.
const RB_NO_STATUS: u8 = 1 << 4;
/// Status byte bit 7: the output pin.
const STATUS_OUT: u8 = 1 << 7;
/// Status byte bit 6: a count was written but not yet loaded.
const STATUS_NULL_COUNT: u8 = 1 << 6;

/// How a channel's 16-bit count is transferred (control word bits 5:4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Lo = 1,
    Hi = 2,
    LoHi = 3,
}

#[derive(Debug)]
struct Channel {
    /// Counting mode, 0-5.
    mode: u8,
    access: Access,
    bcd: bool,
    /// The count written; 0 stands for 65536.
    reload: u32,
    /// When counting (re)started; `None` before a count is loaded, or
    /// while a gate-triggered mode waits for its trigger.
    start: Option<Instant>,
    /// Ticks counted before the gate went low, for the modes it pauses.
    paused: Option<u64>,
    gate: bool,
    /// The low byte of a LoHi count, waiting for its high byte.
    write_lo: Option<u8>,
    /// A LoHi read has returned its low byte.
    read_hi_next: bool,
    /// A latched count, and whether its high byte is next.
    latch: Option<(u16, bool)>,
    /// A latched status byte.
    status: Option<u8>,
    null_count: bool,
    /// Channel 0: the output's rising edges already turned into interrupts.
    edges_seen: u64,
}

impl Channel {
    fn new(gate: bool) -> Self {
        Self {
            mode: 0,
            access: Access::LoHi,
            bcd: false,
            reload: 0x10000,
            start: None,
            paused: None,
            gate,
            write_lo: None,
            read_hi_next: false,
            latch: None,
            status: None,
            null_count: true,
            edges_seen: 0,
        }
    }

    /// Modes 2 and 3 repeat; 6 and 7 are aliases of them.
    fn periodic(&self) -> bool {
        matches!(self.mode, 2 | 3)
    }

    /// Modes 1 and 5 count only after a rising edge of the gate.
    fn gate_triggered(&self) -> bool {
        matches!(self.mode, 1 | 5)
    }

    /// Input clock ticks counted so far.
    fn ticks(&self, now: Instant) -> Option<u64> {
        if let Some(t) = self.paused {
            return Some(t);
        }
        let start = self.start?;
        let ns = now.saturating_duration_since(start).as_nanos();
        Some((ns * u128::from(PIT_HZ) / 1_000_000_000) as u64)
    }

    /// The counter's current value.
    fn count(&self, now: Instant) -> u16 {
        let reload = u64::from(self.reload);
        let Some(t) = self.ticks(now) else {
            return self.reload as u16;
        };
        let value = match self.mode {
            // Square wave: the counter steps by two, twice per period.
            3 => {
                let half = reload.div_ceil(2);
                let phase = t % reload;
                let into = if phase < half { phase } else { phase - half };
                (reload - 2 * into) & !1
            }
            2 => reload - t % reload,
            // One-shot modes: after the terminal count the counter wraps
            // and keeps counting down from 0xffff.
            _ => reload.wrapping_sub(t) & 0xffff,
        };
        value as u16
    }

    /// The output pin.
    fn out(&self, now: Instant) -> bool {
        let reload = u64::from(self.reload);
        let Some(t) = self.ticks(now) else {
            // Mode 0 drives the output low from its control word on; the
            // others idle high.
            return self.mode != 0;
        };
        match self.mode {
            0 | 1 => t >= reload,
            2 => t % reload != reload - 1 || reload == 1,
            3 => t % reload < reload.div_ceil(2),
            _ => t != reload,
        }
    }

    /// Rising edges of the output from the start of counting to `now`.
    fn rising_edges(&self, now: Instant) -> u64 {
        let reload = u64::from(self.reload);
        let Some(t) = self.ticks(now) else { return 0 };
        match self.mode {
            // At the end of each period (mode 2's one-tick low pulse ends,
            // mode 3's low half ends).
            2 | 3 => t / reload,
            0 | 1 => u64::from(t >= reload),
            _ => u64::from(t > reload),
        }
    }

    /// When the output next rises, for the interrupt timer.
    fn next_edge(&self, now: Instant) -> Option<Instant> {
        let start = self.start?;
        if self.paused.is_some() {
            return None;
        }
        let reload = u64::from(self.reload);
        let edges = self.rising_edges(now);
        let tick = match self.mode {
            2 | 3 => (edges + 1) * reload,
            0 | 1 if edges == 0 => reload,
            4 | 5 if edges == 0 => reload + 1,
            _ => return None,
        };
        let ns = u128::from(tick) * 1_000_000_000 / u128::from(PIT_HZ);
        Some(start + Duration::from_nanos(ns as u64 + 1))
    }

    fn control(&mut self, mode: u8, access: Access, bcd: bool) {
        self.mode = if mode >= 6 { mode - 4 } else { mode };
        self.access = access;
        self.bcd = bcd;
        self.start = None;
        self.paused = None;
        self.write_lo = None;
        self.read_hi_next = false;
        self.latch = None;
        self.null_count = true;
        self.edges_seen = 0;
    }

    fn load(&mut self, count: u16, now: Instant) {
        self.reload = if count == 0 { 0x10000 } else { u32::from(count) };
        self.null_count = false;
        self.edges_seen = 0;
        self.paused = None;
        self.start = (!self.gate_triggered()).then_some(now);
        if !self.gate && !self.gate_triggered() {
            self.paused = Some(0);
        }
    }

    fn write(&mut self, byte: u8, now: Instant) {
        match self.access {
            Access::Lo => self.load(u16::from(byte), now),
            Access::Hi => self.load(u16::from(byte) << 8, now),
            Access::LoHi => match self.write_lo.take() {
                None => {
                    self.write_lo = Some(byte);
                    // Mode 0 stops counting at the first byte.
                    if self.mode == 0 {
                        self.start = None;
                        self.paused = None;
                    }
                }
                Some(lo) => self.load(u16::from_le_bytes([lo, byte]), now),
            },
        }
    }

    fn read(&mut self, now: Instant) -> u8 {
        if let Some(status) = self.status.take() {
            return status;
        }
        let (value, hi) = match self.latch {
            Some((value, hi)) => {
                if self.access == Access::LoHi && !hi {
                    self.latch = Some((value, true));
                } else {
                    self.latch = None;
                }
                (value, hi)
            }
            None => {
                let hi = self.read_hi_next;
                if self.access == Access::LoHi {
                    self.read_hi_next = !hi;
                }
                (self.count(now), hi)
            }
        };
        let hi = match self.access {
            Access::Lo => false,
            Access::Hi => true,
            Access::LoHi => hi,
        };
        if hi {
            (value >> 8) as u8
        } else {
            value as u8
        }
    }

    fn latch_count(&mut self, now: Instant) {
        if self.latch.is_none() {
            self.latch = Some((self.count(now), false));
        }
    }

    fn latch_status(&mut self, now: Instant) {
        if self.status.is_none() {
            let mut s = (self.access as u8) << 4 | self.mode << 1 | u8::from(self.bcd);
            if self.out(now) {
                s |= STATUS_OUT;
            }
            if self.null_count {
                s |= STATUS_NULL_COUNT;
            }
            self.status = Some(s);
        }
    }

    fn set_gate(&mut self, gate: bool, now: Instant) {
        if gate == self.gate {
            return;
        }
        self.gate = gate;
        if self.null_count {
            return;
        }
        match (self.mode, gate) {
            // A rising edge (re)starts the gate-triggered and the periodic
            // modes from the full count.
            (1 | 2 | 3 | 5, true) => {
                self.start = Some(now);
                self.paused = None;
                self.edges_seen = 0;
            }
            // Modes 0 and 4 resume where they stopped.
            (_, true) => {
                if let Some(t) = self.paused.take() {
                    let ns = u128::from(t) * 1_000_000_000 / u128::from(PIT_HZ);
                    self.start = now.checked_sub(Duration::from_nanos(ns as u64));
                }
            }
            // A low gate stops modes 0, 2, 3 and 4 (periods restart at
            // the next rising edge); 1 and 5 ignore it.
            (0 | 4, false) => self.paused = self.ticks(now),
            (2 | 3, false) => self.paused = Some(0),
            _ => {}
        }
    }
}

/// The 8254 and port B.
#[derive(Debug)]
pub struct Pit {
    channels: [Channel; 3],
    port_b: u8,
    refresh: bool,
    /// Channel 0 interrupts skipped because the VMM was late.
    pub missed: u64,
}

impl Default for Pit {
    fn default() -> Self {
        Self::new()
    }
}

impl Pit {
    /// A PIT as after reset: counts not loaded, channel 2's gate low.
    pub fn new() -> Self {
        Self {
            channels: [Channel::new(true), Channel::new(true), Channel::new(false)],
            port_b: 0,
            refresh: false,
            missed: 0,
        }
    }

    /// A read of `port` (absolute: 0x40-0x43 or [`PORT_B`]).
    pub fn read(&mut self, port: u64, now: Instant) -> u8 {
        match port {
            PORT_B => {
                // Each read sees the refresh bit toggled, so loops that wait
                // for it end.
                self.refresh = !self.refresh;
                let mut v = self.port_b;
                if self.refresh {
                    v |= PORT_B_REFRESH;
                }
                if self.channels[2].out(now) {
                    v |= PORT_B_OUT2;
                }
                v
            }
            p if (PIT_BASE..PIT_BASE + 3).contains(&p) => self.channels[(p - PIT_BASE) as usize].read(now),
            // The control port is write-only.
            _ => 0xff,
        }
    }

    /// A write of `value` to `port`.
    pub fn write(&mut self, port: u64, value: u8, now: Instant) {
        match port {
            PORT_B => {
                self.port_b = value & PORT_B_WRITABLE;
                self.channels[2].set_gate(value & PORT_B_GATE2 != 0, now);
            }
            p if (PIT_BASE..PIT_BASE + 3).contains(&p) => self.channels[(p - PIT_BASE) as usize].write(value, now),
            p if p == PIT_BASE + 3 => self.control(value, now),
            _ => {}
        }
    }

    fn control(&mut self, value: u8, now: Instant) {
        let select = value >> 6;
        if select == CW_READ_BACK {
            for (i, ch) in self.channels.iter_mut().enumerate() {
                if value & (2 << i) != 0 {
                    if value & RB_NO_STATUS == 0 {
                        ch.latch_status(now);
                    }
                    if value & RB_NO_COUNT == 0 {
                        ch.latch_count(now);
                    }
                }
            }
            return;
        }
        let ch = &mut self.channels[usize::from(select)];
        let access = match (value >> 4) & 3 {
            0 => return ch.latch_count(now),
            1 => Access::Lo,
            2 => Access::Hi,
            _ => Access::LoHi,
        };
        ch.control((value >> 1) & 7, access, value & 1 != 0);
    }

    /// Channel 0's interrupts: whether one is due at `now` (at most one,
    /// however many periods passed), and when the next one is.
    pub fn poll_irq(&mut self, now: Instant) -> (bool, Option<Instant>) {
        let ch = &mut self.channels[0];
        let edges = ch.rising_edges(now);
        let fire = edges > ch.edges_seen;
        if fire {
            self.missed += edges - ch.edges_seen - 1;
            ch.edges_seen = edges;
        }
        let mut next = ch.next_edge(now);
        // Bound the periodic rate: never two interrupts closer than this.
        if let (Some(t), true) = (next.as_mut(), ch.periodic()) {
            let floor = now + Duration::from_nanos(1_000_000_000 / MAX_IRQ_HZ);
            if fire && *t < floor {
                *t = floor;
            }
        }
        (fire, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ticks: u64) -> Instant {
        t0 + Duration::from_nanos((u128::from(ticks) * 1_000_000_000 / u128::from(PIT_HZ)) as u64 + 1)
    }

    fn read16(pit: &mut Pit, port: u64, now: Instant) -> u16 {
        u16::from_le_bytes([pit.read(port, now), pit.read(port, now)])
    }

    #[test]
    fn channel_2_counts_down_while_its_gate_is_high() {
        // Linux's quick_pit_calibrate: gate on, mode 0, count 0xffff, and
        // then the MSB read again and again.
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(PORT_B, PORT_B_GATE2, t0);
        pit.write(0x43, 0xb0, t0);
        pit.write(0x42, 0xff, t0);
        pit.write(0x42, 0xff, t0);
        assert_eq!(read16(&mut pit, 0x42, at(t0, 0)), 0xffff);
        assert_eq!(read16(&mut pit, 0x42, at(t0, 0x1000)), 0xefff);
        assert_eq!(pit.read(PORT_B, at(t0, 0x1000)) & PORT_B_OUT2, 0);
        assert_ne!(pit.read(PORT_B, at(t0, 0xffff)) & PORT_B_OUT2, 0);
        // A low gate holds the count.
        pit.write(PORT_B, 0, at(t0, 0x2000));
        assert_eq!(read16(&mut pit, 0x42, at(t0, 0x9000)), 0xdfff);
    }

    #[test]
    fn port_b_reflects_gate_speaker_and_refresh() {
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(PORT_B, 0xf3, t0);
        let a = pit.read(PORT_B, t0);
        let b = pit.read(PORT_B, t0);
        assert_eq!(a & PORT_B_WRITABLE, 0x03);
        assert_ne!(a & PORT_B_REFRESH, b & PORT_B_REFRESH);
    }

    #[test]
    fn latch_freezes_the_count_until_both_bytes_are_read() {
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(0x43, 0x34, t0); // channel 0, LoHi, mode 2
        pit.write(0x40, 0x00, t0);
        pit.write(0x40, 0x10, t0); // 0x1000
        pit.write(0x43, 0x00, at(t0, 0x100)); // latch channel 0
        assert_eq!(read16(&mut pit, 0x40, at(t0, 0x800)), 0x0f00);
        assert_eq!(read16(&mut pit, 0x40, at(t0, 0x800)), 0x0800);
    }

    #[test]
    fn read_back_gives_status_then_count() {
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(0x43, 0xb0, t0); // channel 2, LoHi, mode 0
        // Status before the count is loaded: null count, output low.
        pit.write(0x43, 0xc0 | RB_NO_COUNT | 0x08, t0);
        assert_eq!(pit.read(0x42, t0), STATUS_NULL_COUNT | 0x30);
        pit.write(PORT_B, PORT_B_GATE2, t0);
        pit.write(0x42, 0x10, t0);
        pit.write(0x42, 0x00, t0);
        pit.write(0x43, 0xc0 | 0x08, at(t0, 0x20));
        assert_eq!(pit.read(0x42, at(t0, 0x30)), STATUS_OUT | 0x30);
        assert_eq!(read16(&mut pit, 0x42, at(t0, 0x30)), 0xfff0);
    }

    #[test]
    fn square_wave_counts_by_two_with_a_half_period_output() {
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(0x43, 0x36, t0); // channel 0, LoHi, mode 3
        pit.write(0x40, 100, t0);
        pit.write(0x40, 0, t0);
        assert_eq!(read16(&mut pit, 0x40, at(t0, 10)), 80);
        assert!(pit.channels[0].out(at(t0, 49)));
        assert!(!pit.channels[0].out(at(t0, 50)));
        assert_eq!(read16(&mut pit, 0x40, at(t0, 60)), 80);
    }

    #[test]
    fn channel_0_interrupts_once_per_period_and_skips_missed_ones() {
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(0x43, 0x34, t0);
        // 11932 ticks: 100 Hz, Linux's HZ=100 periodic tick.
        pit.write(0x40, 0x9c, t0);
        pit.write(0x40, 0x2e, t0);
        let (fire, next) = pit.poll_irq(at(t0, 5));
        assert!(!fire);
        let next = next.unwrap();
        assert!(next > at(t0, 11931) && next <= at(t0, 11933));
        assert_eq!(pit.poll_irq(at(t0, 11933)).0, true);
        assert_eq!(pit.poll_irq(at(t0, 11934)).0, false);
        // Three periods late: one interrupt, two missed.
        assert_eq!(pit.poll_irq(at(t0, 4 * 11932 + 1)).0, true);
        assert_eq!(pit.missed, 2);
    }

    #[test]
    fn one_shot_mode_0_interrupts_once() {
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(0x43, 0x30, t0);
        pit.write(0x40, 0x00, t0);
        pit.write(0x40, 0x01, t0);
        assert!(!pit.poll_irq(at(t0, 0xff)).0);
        let (fire, next) = pit.poll_irq(at(t0, 0x100));
        assert!(fire);
        assert_eq!(next, None);
    }

    #[test]
    fn the_periodic_rate_is_bounded() {
        let t0 = Instant::now();
        let mut pit = Pit::new();
        pit.write(0x43, 0x34, t0);
        pit.write(0x40, 2, t0);
        pit.write(0x40, 0, t0);
        let now = at(t0, 3);
        let (fire, next) = pit.poll_irq(now);
        assert!(fire);
        assert!(next.unwrap() >= now + Duration::from_nanos(1_000_000_000 / MAX_IRQ_HZ));
    }
}

// SPDX-License-Identifier: GPL-2.0

//! The CMOS RAM and real-time clock (a Motorola MC146818 as PCs have it):
//! the index port 0x70 (bit 7 is the NMI mask, which is ignored) and the
//! data port 0x71, 128 bytes.
//!
//! The clock registers read the host's time of day in UTC, in BCD or binary
//! and 24- or 12-hour format as register B asks; the update-in-progress
//! flag is never set, so a guest's wait for it ends at once. Writes to the
//! clock registers are accepted and ignored (the clock cannot be set), and
//! the RTC raises no interrupts (periodic, alarm and update interrupts
//! are not modelled; register C reads zero). The other bytes are plain
//! battery-backed RAM, zero at start.

use std::time::{SystemTime, UNIX_EPOCH};

/// The index port.
pub const CMOS_BASE: u64 = 0x70;
/// Ports the CMOS decodes (index and data).
pub const CMOS_LEN: u64 = 2;

const SECONDS: usize = 0x00;
const MINUTES: usize = 0x02;
const HOURS: usize = 0x04;
const WEEKDAY: usize = 0x06;
const DAY: usize = 0x07;
const MONTH: usize = 0x08;
const YEAR: usize = 0x09;
const REG_A: usize = 0x0a;
const REG_B: usize = 0x0b;
const REG_C: usize = 0x0c;
const REG_D: usize = 0x0d;
const CENTURY: usize = 0x32;

/// Register B: binary (not BCD) data.
const B_BINARY: u8 = 1 << 2;
/// Register B: 24-hour clock.
const B_24H: u8 = 1 << 1;
/// Register D: the battery is good (valid RAM and time).
const D_VRT: u8 = 1 << 7;
/// Register A after power-on: the 32.768 kHz time base, 1024 Hz rate.
const A_DEFAULT: u8 = 0x26;

/// A calendar date and time of day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// The year, e.g. 2026.
    pub year: u32,
    /// 1-12.
    pub month: u8,
    /// 1-31.
    pub day: u8,
    /// 0-23.
    pub hour: u8,
    /// 0-59.
    pub minute: u8,
    /// 0-59.
    pub second: u8,
    /// 1 = Sunday, as the RTC counts.
    pub weekday: u8,
}

impl DateTime {
    /// The UTC date and time `secs` seconds after the Unix epoch
    /// (the proleptic Gregorian calendar, by the days-from-civil method).
    pub fn from_unix(secs: u64) -> Self {
        let days = secs / 86_400;
        let rem = secs % 86_400;
        // Shift the epoch to 0000-03-01 so leap days end a year.
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as u32;
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem / 60 % 60) as u8,
            second: (rem % 60) as u8,
            // 1970-01-01 was a Thursday.
            weekday: ((days + 4) % 7 + 1) as u8,
        }
    }
}

/// The CMOS RAM and clock.
pub struct Cmos {
    index: usize,
    ram: [u8; 128],
    /// The time source, replaceable for tests.
    now: fn() -> u64,
}

fn host_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Default for Cmos {
    fn default() -> Self {
        Self::with_clock(host_time)
    }
}

impl Cmos {
    /// A CMOS whose clock reads `now()` seconds since the Unix epoch.
    pub fn with_clock(now: fn() -> u64) -> Self {
        let mut ram = [0u8; 128];
        ram[REG_A] = A_DEFAULT;
        ram[REG_B] = B_24H;
        ram[REG_D] = D_VRT;
        Self { index: 0, ram, now }
    }

    /// A clock value in the format register B asks for.
    fn encode(&self, value: u8) -> u8 {
        if self.ram[REG_B] & B_BINARY != 0 {
            value
        } else {
            ((value / 10) << 4) | (value % 10)
        }
    }

    fn hours(&self, hour: u8) -> u8 {
        if self.ram[REG_B] & B_24H != 0 {
            return self.encode(hour);
        }
        let pm = if hour >= 12 { 0x80 } else { 0 };
        let h12 = match hour % 12 {
            0 => 12,
            h => h,
        };
        self.encode(h12) | pm
    }

    fn read_register(&self, index: usize) -> u8 {
        let clock = || DateTime::from_unix((self.now)());
        match index {
            SECONDS => self.encode(clock().second),
            MINUTES => self.encode(clock().minute),
            HOURS => self.hours(clock().hour),
            WEEKDAY => self.encode(clock().weekday),
            DAY => self.encode(clock().day),
            MONTH => self.encode(clock().month),
            YEAR => self.encode((clock().year % 100) as u8),
            CENTURY => self.encode((clock().year / 100) as u8),
            REG_C => 0,
            _ => self.ram[index],
        }
    }

    /// A read of port `offset` (0 index, 1 data).
    pub fn read(&mut self, offset: u64) -> u8 {
        match offset {
            0 => 0xff,
            _ => self.read_register(self.index),
        }
    }

    /// A write to port `offset`.
    pub fn write(&mut self, offset: u64, value: u8) {
        match offset {
            0 => self.index = usize::from(value & 0x7f),
            _ => match self.index {
                SECONDS | MINUTES | HOURS | WEEKDAY | DAY | MONTH | YEAR | CENTURY => {}
                // Update-in-progress is read-only; so is register D.
                REG_A => self.ram[REG_A] = value & 0x7f,
                REG_C | REG_D => {}
                i => self.ram[i] = value,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(cmos: &mut Cmos, reg: u8) -> u8 {
        cmos.write(0, reg);
        cmos.read(1)
    }

    #[test]
    fn dates_from_unix_time() {
        assert_eq!(
            DateTime::from_unix(0),
            DateTime { year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0, weekday: 5 }
        );
        // 2000-02-29 23:59:59, a Tuesday; 2026-12-03 19:30:00, a Thursday.
        let leap = DateTime::from_unix(951_868_799);
        assert_eq!((leap.year, leap.month, leap.day, leap.hour, leap.weekday), (2000, 2, 29, 23, 3));
        let d = DateTime::from_unix(1_796_326_200);
        assert_eq!((d.year, d.month, d.day, d.hour, d.minute, d.weekday), (2026, 12, 3, 19, 30, 5));
    }

    #[test]
    fn clock_reads_bcd_then_binary_and_12_hour() {
        let mut cmos = Cmos::with_clock(|| 1_796_326_200 + 7);
        assert_eq!(at(&mut cmos, 0x00), 0x07);
        assert_eq!(at(&mut cmos, 0x04), 0x19);
        assert_eq!(at(&mut cmos, 0x09), 0x26);
        assert_eq!(at(&mut cmos, 0x32), 0x20);
        assert_eq!(at(&mut cmos, 0x0a) & 0x80, 0, "never updating");
        assert_eq!(at(&mut cmos, 0x0d), 0x80);
        cmos.write(0, 0x0b);
        cmos.write(1, B_BINARY);
        assert_eq!(at(&mut cmos, 0x04), 0x80 | 7, "7 pm");
        assert_eq!(at(&mut cmos, 0x08), 12);
    }

    #[test]
    fn ram_bytes_keep_what_is_written_and_the_clock_ignores_writes() {
        let mut cmos = Cmos::with_clock(|| 0);
        cmos.write(0, 0x80 | 0x40); // NMI mask bit set
        cmos.write(1, 0x5a);
        assert_eq!(at(&mut cmos, 0x40), 0x5a);
        cmos.write(0, 0x00);
        cmos.write(1, 0x59);
        assert_eq!(at(&mut cmos, 0x00), 0x00);
    }
}

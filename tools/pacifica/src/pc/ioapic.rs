// SPDX-License-Identifier: GPL-2.0

//! An I/O APIC (Intel 82093AA datasheet; the register layout every PC
//! chipset and KVM's `ioapic.c` share): 24 input pins, each with a 64-bit
//! redirection entry that turns the pin into a message to the local APICs.
//!
//! The guest reaches it through two MMIO registers, IOREGSEL (offset 0) and
//! IOWIN (offset 0x10). An edge-triggered pin sends its message on each
//! rising edge; a level-triggered pin sends it while the line is high and
//! Remote IRR is clear, sets Remote IRR, and sends again after the local
//! APIC's EOI of the vector ([`Ioapic::eoi`]) if the line is still high.
//! The messages come out as MSIs (address, data), so the same model serves
//! Pacifica's in-kernel APIC and KVM's.

/// Guest-physical base of the I/O APIC's registers.
pub const IOAPIC_BASE: u64 = 0xfec0_0000;
/// Bytes of MMIO the I/O APIC decodes.
pub const IOAPIC_LEN: u64 = 0x1000;
/// Number of input pins.
pub const IOAPIC_PINS: usize = 24;
/// The version register's version field (82093AA).
pub const IOAPIC_VERSION: u32 = 0x11;

/// MMIO offset of the register selector.
const IOREGSEL: u64 = 0x00;
/// MMIO offset of the data window.
const IOWIN: u64 = 0x10;

/// Indirect registers.
const REG_ID: u32 = 0x00;
const REG_VER: u32 = 0x01;
const REG_ARB: u32 = 0x02;
const REG_REDTBL: u32 = 0x10;

/// Redirection entry fields (82093AA 3.2.4).
#[allow(missing_docs)]
pub mod redir {
    pub const VECTOR: u64 = 0xff;
    pub const DELIVERY_MODE_SHIFT: u32 = 8;
    pub const DELIVERY_MODE: u64 = 7 << DELIVERY_MODE_SHIFT;
    pub const DEST_LOGICAL: u64 = 1 << 11;
    pub const DELIVERY_STATUS: u64 = 1 << 12;
    pub const POLARITY_LOW: u64 = 1 << 13;
    pub const REMOTE_IRR: u64 = 1 << 14;
    pub const TRIGGER_LEVEL: u64 = 1 << 15;
    pub const MASKED: u64 = 1 << 16;
    pub const DEST_SHIFT: u32 = 56;
    /// Bits the guest cannot write: delivery status and Remote IRR.
    pub const READ_ONLY: u64 = DELIVERY_STATUS | REMOTE_IRR;
    /// Bits that exist (the rest read as zero).
    pub const WRITABLE: u64 = VECTOR
        | DELIVERY_MODE
        | DEST_LOGICAL
        | POLARITY_LOW
        | TRIGGER_LEVEL
        | MASKED
        | (0xff << DEST_SHIFT);
}

/// The MSI window every local APIC listens to (Intel SDM 10.11).
pub const MSI_ADDRESS_BASE: u64 = 0xfee0_0000;

/// One interrupt message: what `PACIFICA_SIGNAL_MSI` and `KVM_SIGNAL_MSI`
/// take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msi {
    /// 0xfee0_0000 with the destination in bits 19:12 and the
    /// destination mode in bit 2.
    pub address: u64,
    /// Vector, delivery mode, level (bit 14) and trigger mode (bit 15).
    pub data: u32,
}

impl Msi {
    /// The message a redirection entry stands for.
    pub fn from_entry(entry: u64) -> Self {
        let dest = (entry >> redir::DEST_SHIFT) & 0xff;
        let logical = entry & redir::DEST_LOGICAL != 0;
        let level = entry & redir::TRIGGER_LEVEL != 0;
        let address = MSI_ADDRESS_BASE | dest << 12 | u64::from(logical) << 2;
        let data = (entry & (redir::VECTOR | redir::DELIVERY_MODE)) as u32
            | u32::from(level) << 15
            | 1 << 14;
        Msi { address, data }
    }
}

/// The I/O APIC's state.
#[derive(Debug, Clone)]
pub struct Ioapic {
    id: u32,
    select: u32,
    redirection: [u64; IOAPIC_PINS],
    /// The level of each input line as the device drives it (before the
    /// entry's polarity is applied).
    lines: u32,
}

impl Default for Ioapic {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Ioapic {
    /// An I/O APIC after reset, with APIC ID `id`: every pin masked.
    pub fn new(id: u8) -> Self {
        Self {
            id: u32::from(id) << 24,
            select: 0,
            redirection: [redir::MASKED; IOAPIC_PINS],
            lines: 0,
        }
    }

    /// The redirection entry of `pin`.
    pub fn entry(&self, pin: usize) -> u64 {
        self.redirection[pin]
    }

    /// Whether `pin`'s input is asserted, after its polarity.
    fn asserted(&self, pin: usize) -> bool {
        let high = self.lines & (1 << pin) != 0;
        high != (self.redirection[pin] & redir::POLARITY_LOW != 0)
    }

    /// Sets input `pin` to `level`; returns the message to send, if the
    /// change sends one.
    pub fn set_line(&mut self, pin: usize, level: bool) -> Option<Msi> {
        if pin >= IOAPIC_PINS {
            return None;
        }
        let was = self.asserted(pin);
        if level {
            self.lines |= 1 << pin;
        } else {
            self.lines &= !(1 << pin);
        }
        let entry = self.redirection[pin];
        if entry & redir::TRIGGER_LEVEL != 0 {
            self.service_level(pin)
        } else if !was && self.asserted(pin) && entry & redir::MASKED == 0 {
            Some(Msi::from_entry(entry))
        } else {
            None
        }
    }

    /// A level pin that is asserted, unmasked and not waiting for an EOI
    /// sends its message and waits for the EOI.
    fn service_level(&mut self, pin: usize) -> Option<Msi> {
        let entry = self.redirection[pin];
        if entry & (redir::MASKED | redir::REMOTE_IRR) != 0 || !self.asserted(pin) {
            return None;
        }
        self.redirection[pin] |= redir::REMOTE_IRR;
        Some(Msi::from_entry(entry))
    }

    /// A local APIC's EOI of `vector` for a level-triggered interrupt:
    /// clears Remote IRR of the level pins with that vector; those still
    /// asserted send again.
    pub fn eoi(&mut self, vector: u8) -> Vec<Msi> {
        let mut out = Vec::new();
        for pin in 0..IOAPIC_PINS {
            let entry = self.redirection[pin];
            if entry & redir::TRIGGER_LEVEL != 0
                && entry & redir::REMOTE_IRR != 0
                && (entry & redir::VECTOR) as u8 == vector
            {
                self.redirection[pin] &= !redir::REMOTE_IRR;
                out.extend(self.service_level(pin));
            }
        }
        out
    }

    /// Reads the indirect register the selector names.
    fn read_register(&self) -> u32 {
        match self.select {
            REG_ID => self.id,
            REG_VER => IOAPIC_VERSION | ((IOAPIC_PINS as u32 - 1) << 16),
            REG_ARB => self.id,
            r if (REG_REDTBL..REG_REDTBL + 2 * IOAPIC_PINS as u32).contains(&r) => {
                let entry = self.redirection[((r - REG_REDTBL) / 2) as usize];
                if r % 2 == 0 {
                    entry as u32
                } else {
                    (entry >> 32) as u32
                }
            }
            _ => 0,
        }
    }

    /// Writes the indirect register the selector names; returns a message
    /// if unmasking (or re-arming) a level pin sends one.
    fn write_register(&mut self, value: u32) -> Option<Msi> {
        match self.select {
            REG_ID => {
                self.id = value & 0x0f00_0000;
                None
            }
            r if (REG_REDTBL..REG_REDTBL + 2 * IOAPIC_PINS as u32).contains(&r) => {
                let pin = ((r - REG_REDTBL) / 2) as usize;
                let old = self.redirection[pin];
                let (mask, shifted) = if r % 2 == 0 {
                    (0xffff_ffffu64, u64::from(value))
                } else {
                    (0xffff_ffff << 32, u64::from(value) << 32)
                };
                let writable = redir::WRITABLE & mask;
                let mut new = (old & !writable) | (shifted & writable);
                // An edge entry has no Remote IRR.
                if new & redir::TRIGGER_LEVEL == 0 {
                    new &= !redir::REMOTE_IRR;
                }
                self.redirection[pin] = new;
                if new & redir::TRIGGER_LEVEL != 0 {
                    self.service_level(pin)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// An MMIO read at `offset` (any width; only aligned 32-bit accesses of
    /// IOREGSEL and IOWIN mean anything, the rest read as zero).
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        let value = match offset {
            IOREGSEL => self.select,
            IOWIN => self.read_register(),
            _ => 0,
        };
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = value.checked_shr(8 * i as u32).unwrap_or(0) as u8;
        }
    }

    /// An MMIO write at `offset`; returns a message to send, if any.
    pub fn mmio_write(&mut self, offset: u64, data: &[u8]) -> Option<Msi> {
        let mut bytes = [0u8; 4];
        let n = data.len().min(4);
        bytes[..n].copy_from_slice(&data[..n]);
        let value = u32::from_le_bytes(bytes);
        match offset {
            IOREGSEL => {
                self.select = value & 0xff;
                None
            }
            IOWIN => self.write_register(value),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_reg(io: &mut Ioapic, reg: u32, value: u32) -> Option<Msi> {
        io.mmio_write(IOREGSEL, &reg.to_le_bytes());
        io.mmio_write(IOWIN, &value.to_le_bytes())
    }

    fn read_reg(io: &mut Ioapic, reg: u32) -> u32 {
        io.mmio_write(IOREGSEL, &reg.to_le_bytes());
        let mut b = [0u8; 4];
        io.mmio_read(IOWIN, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn version_reports_24_pins_and_entries_start_masked() {
        let mut io = Ioapic::new(2);
        assert_eq!(read_reg(&mut io, REG_VER), 0x0017_0011);
        assert_eq!(read_reg(&mut io, REG_ID), 2 << 24);
        for pin in 0..IOAPIC_PINS as u32 {
            assert_eq!(read_reg(&mut io, REG_REDTBL + 2 * pin), 1 << 16);
        }
        assert_eq!(io.set_line(4, true), None, "masked");
    }

    #[test]
    fn edge_pins_send_on_rising_edges_only() {
        let mut io = Ioapic::new(0);
        write_reg(&mut io, REG_REDTBL + 8, 0x31);
        write_reg(&mut io, REG_REDTBL + 9, 0x0100_0000);
        let msi = io.set_line(4, true).unwrap();
        assert_eq!(msi, Msi { address: 0xfee0_1000, data: 0x4031 });
        assert_eq!(io.set_line(4, true), None, "no edge");
        assert_eq!(io.set_line(4, false), None);
        assert!(io.set_line(4, true).is_some());
    }

    #[test]
    fn level_pins_wait_for_the_eoi() {
        let mut io = Ioapic::new(0);
        // Vector 0x40, lowest priority, logical destination 3, level,
        // active low; the line idles high.
        assert_eq!(io.set_line(10, true), None);
        write_reg(&mut io, REG_REDTBL + 21, 0x0300_0000);
        write_reg(&mut io, REG_REDTBL + 20, 0x40 | 1 << 8 | 1 << 11 | 1 << 13 | 1 << 15);
        assert_eq!(io.set_line(10, true), None, "active low: high is idle");
        let msi = io.set_line(10, false).unwrap();
        assert_eq!(msi, Msi { address: 0xfee0_3004, data: 0xc140 });
        assert_ne!(io.entry(10) & redir::REMOTE_IRR, 0);
        assert!(io.eoi(0x41).is_empty());
        assert_eq!(io.eoi(0x40), vec![msi], "still asserted: sent again");
        io.set_line(10, true);
        assert!(io.eoi(0x40).is_empty());
        assert_eq!(io.entry(10) & redir::REMOTE_IRR, 0);
    }

    #[test]
    fn read_only_bits_and_unknown_registers() {
        let mut io = Ioapic::new(0);
        write_reg(&mut io, REG_REDTBL, 0xffff_ffff);
        assert_eq!(read_reg(&mut io, REG_REDTBL), 0x0001_afff);
        assert_eq!(read_reg(&mut io, 0x80), 0);
        assert_eq!(write_reg(&mut io, 0x80, 1), None);
        assert_eq!(io.set_line(99, true), None);
    }
}

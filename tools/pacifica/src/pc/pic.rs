// SPDX-License-Identifier: GPL-2.0

//! The PC's pair of 8259A programmable interrupt controllers (Intel 8259A
//! datasheet): the master at ports 0x20-0x21 with the slave cascaded on
//! its IRQ 2, the slave at 0xa0-0xa1, and the edge/level control
//! registers (ELCR) at 0x4d0-0x4d1.
//!
//! What is modelled is what PC operating systems use: the ICW1-ICW4
//! initialisation sequence (vector base, automatic EOI), the mask register,
//! OCW2's EOI, specific-EOI and rotation commands, OCW3's reads of IRR and
//! ISR and poll mode, fully nested priority with rotation, edge and level
//! triggering per line. The master's INT output drives the local APIC's
//! LINT0 pin (an ExtINT line, [`Pic::output`]); the CPU's interrupt
//! acknowledge is [`Pic::acknowledge`], which returns the vector.
//! Special mask mode and buffered mode are not modelled.

/// The master's command port.
pub const MASTER_CMD: u64 = 0x20;
/// The slave's command port.
pub const SLAVE_CMD: u64 = 0xa0;
/// The ELCR pair's first port.
pub const ELCR_BASE: u64 = 0x4d0;
/// The master's input the slave's output is wired to.
const CASCADE_IRQ: u8 = 2;

/// One 8259A.
#[derive(Debug, Clone, Default)]
struct Chip {
    irr: u8,
    imr: u8,
    isr: u8,
    /// The line levels last seen, for edge detection.
    lines: u8,
    /// Level-triggered lines (ELCR).
    elcr: u8,
    /// Which ELCR bits exist (IRQ 0-2 and 8, 13 are always edge on PCs).
    elcr_mask: u8,
    vector_base: u8,
    /// The IRQ with the lowest priority is `priority_add - 1` (rotation).
    priority_add: u8,
    auto_eoi: bool,
    rotate_on_auto_eoi: bool,
    read_isr: bool,
    poll: bool,
    /// 0 outside initialisation, else the next ICW expected (2, 3 or 4).
    init_step: u8,
    single: bool,
    needs_icw4: bool,
}

impl Chip {
    fn new(elcr_mask: u8) -> Self {
        Self { elcr_mask, ..Self::default() }
    }

    /// The bit of `mask` with the highest priority, as an IRQ number.
    fn highest(&self, mask: u8) -> Option<u8> {
        (0..8)
            .map(|i| (i + self.priority_add) & 7)
            .find(|&irq| mask & (1 << irq) != 0)
    }

    /// The IRQ this chip would present, if its priority beats the one in
    /// service (fully nested mode; the special fully nested mode, where
    /// the cascade in service lets the slave's higher requests through,
    /// is not modelled).
    fn pending(&self) -> Option<u8> {
        let irq = self.highest(self.irr & !self.imr)?;
        match self.highest(self.isr) {
            Some(busy) if self.priority(busy) <= self.priority(irq) => None,
            _ => Some(irq),
        }
    }

    /// 0 is the highest priority.
    fn priority(&self, irq: u8) -> u8 {
        irq.wrapping_sub(self.priority_add) & 7
    }

    fn set_line(&mut self, irq: u8, level: bool) {
        let bit = 1 << irq;
        if self.elcr & bit != 0 {
            if level {
                self.irr |= bit;
            } else {
                self.irr &= !bit;
            }
        } else if level && self.lines & bit == 0 {
            self.irr |= bit;
        }
        if level {
            self.lines |= bit;
        } else {
            self.lines &= !bit;
        }
    }

    /// The INTA cycle for `irq`: in service (unless automatic EOI), and
    /// an edge request is consumed.
    fn ack(&mut self, irq: u8) {
        let bit = 1 << irq;
        if self.auto_eoi {
            if self.rotate_on_auto_eoi {
                self.priority_add = (irq + 1) & 7;
            }
        } else {
            self.isr |= bit;
        }
        if self.elcr & bit == 0 {
            self.irr &= !bit;
        }
    }

    fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            // ICW1.
            *self = Self {
                elcr: self.elcr,
                elcr_mask: self.elcr_mask,
                lines: self.lines,
                init_step: 2,
                single: value & 0x02 != 0,
                needs_icw4: value & 0x01 != 0,
                ..Self::default()
            };
        } else if value & 0x08 != 0 {
            // OCW3.
            self.poll = value & 0x04 != 0;
            if value & 0x02 != 0 {
                self.read_isr = value & 0x01 != 0;
            }
        } else {
            // OCW2.
            let level = value & 7;
            match value >> 5 {
                0 => self.rotate_on_auto_eoi = false,
                4 => self.rotate_on_auto_eoi = true,
                1 | 5 => {
                    if let Some(irq) = self.highest(self.isr) {
                        self.isr &= !(1 << irq);
                        if value >> 5 == 5 {
                            self.priority_add = (irq + 1) & 7;
                        }
                    }
                }
                3 => self.isr &= !(1 << level),
                7 => {
                    self.isr &= !(1 << level);
                    self.priority_add = (level + 1) & 7;
                }
                6 => self.priority_add = (level + 1) & 7,
                _ => {}
            }
        }
    }

    fn write_data(&mut self, value: u8) {
        match self.init_step {
            0 => self.imr = value,
            2 => {
                self.vector_base = value & 0xf8;
                self.init_step = if !self.single {
                    3
                } else if self.needs_icw4 {
                    4
                } else {
                    0
                };
            }
            3 => self.init_step = if self.needs_icw4 { 4 } else { 0 },
            _ => {
                self.auto_eoi = value & 0x02 != 0;
                self.init_step = 0;
            }
        }
    }
}

/// The master and slave 8259As.
#[derive(Debug, Clone)]
pub struct Pic {
    chips: [Chip; 2],
}

impl Default for Pic {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic {
    /// Both chips after power-on: not initialised, nothing masked.
    pub fn new() -> Self {
        Self {
            chips: [Chip::new(0xf8), Chip::new(0xde)],
        }
    }

    /// Sets ISA interrupt line `irq` (0-15) to `level`.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        if irq < 16 {
            self.chips[usize::from(irq / 8)].set_line(irq % 8, level);
            self.cascade();
        }
    }

    /// The slave's output is the master's IRQ 2 input.
    fn cascade(&mut self) {
        let slave = self.chips[1].pending().is_some();
        self.chips[0].set_line(CASCADE_IRQ, slave);
    }

    /// The master's INT output.
    pub fn output(&self) -> bool {
        self.chips[0].pending().is_some()
    }

    /// The CPU's interrupt acknowledge: the vector of the highest-priority
    /// request, which goes in service. With nothing to deliver (the
    /// request went away) the chip answers with IRQ 7's vector, the
    /// spurious interrupt real 8259As give.
    pub fn acknowledge(&mut self) -> u8 {
        let vector = match self.chips[0].pending() {
            Some(CASCADE_IRQ) => {
                self.chips[0].ack(CASCADE_IRQ);
                match self.chips[1].pending() {
                    Some(irq) => {
                        self.chips[1].ack(irq);
                        self.chips[1].vector_base + irq
                    }
                    None => self.chips[1].vector_base + 7,
                }
            }
            Some(irq) => {
                self.chips[0].ack(irq);
                self.chips[0].vector_base + irq
            }
            None => self.chips[0].vector_base + 7,
        };
        self.cascade();
        vector
    }

    /// A port read: `port` is the absolute port number.
    pub fn read(&mut self, port: u64) -> u8 {
        if let Some(i) = elcr_index(port) {
            return self.chips[i].elcr;
        }
        let (i, data) = chip_port(port);
        if data {
            return self.chips[i].imr;
        }
        if self.chips[i].poll {
            self.chips[i].poll = false;
            return match self.chips[i].pending() {
                Some(irq) => {
                    self.chips[i].ack(irq);
                    self.cascade();
                    0x80 | irq
                }
                None => 0,
            };
        }
        if self.chips[i].read_isr {
            self.chips[i].isr
        } else {
            self.chips[i].irr
        }
    }

    /// A port write.
    pub fn write(&mut self, port: u64, value: u8) {
        if let Some(i) = elcr_index(port) {
            let chip = &mut self.chips[i];
            chip.elcr = value & chip.elcr_mask;
            return;
        }
        let (i, data) = chip_port(port);
        if data {
            self.chips[i].write_data(value);
        } else {
            self.chips[i].write_command(value);
        }
        self.cascade();
    }
}

/// Which chip a command or data port belongs to, and whether it is the
/// data (odd) port.
fn chip_port(port: u64) -> (usize, bool) {
    (usize::from(port >= SLAVE_CMD), port & 1 != 0)
}

fn elcr_index(port: u64) -> Option<usize> {
    (ELCR_BASE..ELCR_BASE + 2)
        .contains(&port)
        .then(|| (port - ELCR_BASE) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's `init_8259A`: ICW1-4 with vector bases 0x30 and 0x38.
    fn init(pic: &mut Pic, auto_eoi: bool) {
        let icw4 = if auto_eoi { 0x03 } else { 0x01 };
        for (cmd, base, icw3) in [(0x20, 0x30, 0x04), (0xa0, 0x38, 0x02)] {
            pic.write(cmd, 0x11);
            pic.write(cmd + 1, base);
            pic.write(cmd + 1, icw3);
            pic.write(cmd + 1, icw4);
        }
    }

    #[test]
    fn mask_register_reads_back() {
        let mut pic = Pic::new();
        pic.write(0x21, 0xff);
        assert_eq!(pic.read(0x21), 0xff, "Linux probes the PIC so");
        pic.write(0x21, 0xfb);
        assert_eq!(pic.read(0x21), 0xfb);
    }

    #[test]
    fn master_and_slave_deliver_in_priority_order() {
        let mut pic = Pic::new();
        init(&mut pic, false);
        pic.set_irq(4, true);
        pic.set_irq(9, true);
        assert!(pic.output());
        // IRQ 9 arrives through IRQ 2, which outranks IRQ 4.
        assert_eq!(pic.acknowledge(), 0x39);
        assert!(!pic.output(), "IRQ 4 waits for the EOI of the cascade");
        pic.write(0xa0, 0x20);
        pic.write(0x20, 0x20);
        assert!(pic.output());
        assert_eq!(pic.acknowledge(), 0x34);
        pic.write(0x20, 0x0b);
        assert_eq!(pic.read(0x20), 0x10, "ISR");
        pic.write(0x20, 0x64); // specific EOI of IRQ 4
        assert_eq!(pic.read(0x20), 0);
        assert!(!pic.output());
    }

    #[test]
    fn edges_are_consumed_and_levels_are_not() {
        let mut pic = Pic::new();
        init(&mut pic, true);
        pic.set_irq(3, true);
        assert_eq!(pic.acknowledge(), 0x33);
        assert!(!pic.output(), "edge consumed, automatic EOI");
        pic.write(0x4d0, 0x08 | 0x01);
        assert_eq!(pic.read(0x4d0), 0x08, "IRQ 0 cannot be level");
        pic.set_irq(3, false);
        pic.set_irq(3, true);
        assert_eq!(pic.acknowledge(), 0x33);
        assert!(pic.output(), "still asserted");
        pic.set_irq(3, false);
        assert!(!pic.output());
        assert_eq!(pic.acknowledge(), 0x37, "spurious");
    }

    #[test]
    fn masked_lines_wait_and_rotation_changes_priority() {
        let mut pic = Pic::new();
        init(&mut pic, false);
        pic.write(0x21, 0x01);
        pic.set_irq(0, true);
        assert!(!pic.output());
        pic.write(0x21, 0x00);
        assert!(pic.output());
        pic.write(0x20, 0xc0 | 0x03); // IRQ 3 lowest: IRQ 4 highest
        pic.set_irq(5, true);
        assert_eq!(pic.acknowledge(), 0x35);
    }
}

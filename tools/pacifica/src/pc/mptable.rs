// SPDX-License-Identifier: GPL-2.0

//! The Intel MultiProcessor Specification 1.4 table that tells an
//! operating system without ACPI where the CPUs, the I/O APIC and the ISA
//! interrupts are. Without it (or an ACPI MADT) Linux assumes a
//! uniprocessor with its local APIC in virtual-wire mode, no I/O APIC, and
//! needs the PIT.
//!
//! The floating pointer structure and the configuration table lie together
//! at [`MPTABLE_ADDR`], in the last KiB of conventional memory, one of the
//! places the specification says to search. The table lists:
//!
//! - one processor entry per CPU, local APIC IDs 0..n, CPU 0 the BSP;
//! - bus 0, ISA;
//! - the I/O APIC, APIC ID n, at [`IOAPIC_BASE`];
//! - the ISA interrupts: the 8259's output on I/O APIC pin 0 as ExtINT,
//!   IRQ 0 (the PIT) on pin 2, as on PCs, and IRQs 1 and 3-15 on the pins
//!   of the same number ([`isa_irq_pin`]), each edge-triggered and active
//!   high as ISA interrupts are;
//! - the local interrupts of every CPU: ExtINT on LINT0, NMI on LINT1.

use super::ioapic::{IOAPIC_BASE, IOAPIC_VERSION};
use crate::hw::apic::base::DEFAULT_ADDR as APIC_DEFAULT_BASE;

/// Guest-physical address of the floating pointer (and the table after it).
pub const MPTABLE_ADDR: u64 = 0x9_fc00;
/// Bytes reserved for the structures (the last KiB below 640 KiB).
pub const MPTABLE_MAX: usize = 0x400;
/// The local APIC version the processor entries report (integrated APIC).
const LAPIC_VERSION: u8 = 0x14;

const FLOATING_LEN: usize = 16;
const HEADER_LEN: usize = 44;
const PROCESSOR_LEN: usize = 20;

/// Entry types.
const PROCESSOR: u8 = 0;
const BUS: u8 = 1;
const IOAPIC: u8 = 2;
const IO_INTERRUPT: u8 = 3;
const LOCAL_INTERRUPT: u8 = 4;

/// Interrupt types.
const INT: u8 = 0;
const NMI: u8 = 1;
const EXTINT: u8 = 3;

/// The I/O APIC pin ISA interrupt `irq` (0-15) arrives on.
pub fn isa_irq_pin(irq: u8) -> u8 {
    if irq == 0 {
        2
    } else {
        irq
    }
}

/// The I/O APIC's APIC ID for a machine of `cpus` CPUs: the first after
/// theirs.
pub fn ioapic_id(cpus: u8) -> u8 {
    cpus
}

fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_sub(*b))
}

/// The processor signature and feature flags a processor entry carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSignature {
    /// CPUID 1 EAX (family, model, stepping).
    pub signature: u32,
    /// CPUID 1 EDX.
    pub features: u32,
}

/// The floating pointer and configuration table for `cpus` CPUs (1-255
/// minus the I/O APIC's ID), to be written at [`MPTABLE_ADDR`].
pub fn mptable(cpus: u8, cpu: CpuSignature) -> Vec<u8> {
    let cpus = cpus.clamp(1, 254);
    let mut t = vec![0u8; FLOATING_LEN + HEADER_LEN];
    // Floating pointer: "_MP_", the table's address, length 1 (in 16-byte
    // units), revision 1.4, the checksum, and default configuration 0 (a
    // table is present).
    t[0..4].copy_from_slice(b"_MP_");
    let table = (MPTABLE_ADDR + FLOATING_LEN as u64) as u32;
    t[4..8].copy_from_slice(&table.to_le_bytes());
    t[8] = 1;
    t[9] = 4;
    t[10] = checksum(&t[..FLOATING_LEN]);

    let mut entries = 0u16;
    for id in 0..cpus {
        let mut e = [0u8; PROCESSOR_LEN];
        e[0] = PROCESSOR;
        e[1] = id;
        e[2] = LAPIC_VERSION;
        e[3] = 1 | u8::from(id == 0) << 1; // enabled, BSP
        e[4..8].copy_from_slice(&cpu.signature.to_le_bytes());
        e[8..12].copy_from_slice(&cpu.features.to_le_bytes());
        t.extend_from_slice(&e);
        entries += 1;
    }
    t.extend_from_slice(&[BUS, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
    let ioapic = ioapic_id(cpus);
    let mut e = [IOAPIC, ioapic, IOAPIC_VERSION as u8, 1, 0, 0, 0, 0];
    e[4..8].copy_from_slice(&(IOAPIC_BASE as u32).to_le_bytes());
    t.extend_from_slice(&e);
    entries += 2;
    // Flags 0: polarity and trigger conform to the bus (ISA: edge, high).
    t.extend_from_slice(&[IO_INTERRUPT, EXTINT, 0, 0, 0, 0, ioapic, 0]);
    entries += 1;
    for irq in (0..16u8).filter(|&irq| irq != 2) {
        t.extend_from_slice(&[IO_INTERRUPT, INT, 0, 0, 0, irq, ioapic, isa_irq_pin(irq)]);
        entries += 1;
    }
    t.extend_from_slice(&[LOCAL_INTERRUPT, EXTINT, 0, 0, 0, 0, 0xff, 0]);
    t.extend_from_slice(&[LOCAL_INTERRUPT, NMI, 0, 0, 0, 0, 0xff, 1]);
    entries += 2;

    // The configuration table header.
    let h = FLOATING_LEN;
    let length = (t.len() - h) as u16;
    t[h..h + 4].copy_from_slice(b"PCMP");
    t[h + 4..h + 6].copy_from_slice(&length.to_le_bytes());
    t[h + 6] = 4;
    t[h + 8..h + 16].copy_from_slice(b"PACIFICA");
    t[h + 16..h + 28].copy_from_slice(b"PC          ");
    t[h + 34..h + 36].copy_from_slice(&entries.to_le_bytes());
    t[h + 36..h + 40].copy_from_slice(&(APIC_DEFAULT_BASE as u32).to_le_bytes());
    t[h + 7] = checksum(&t[h..]);
    debug_assert!(t.len() <= MPTABLE_MAX);
    t
}

const _: () = assert!(FLOATING_LEN + HEADER_LEN + 254 * PROCESSOR_LEN > MPTABLE_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(bytes: &[u8]) -> u8 {
        bytes.iter().fold(0u8, |s, b| s.wrapping_add(*b))
    }

    #[test]
    fn both_structures_check_out() {
        let t = mptable(2, CpuSignature { signature: 0x800f12, features: 0x0781_abff });
        assert_eq!(&t[0..4], b"_MP_");
        assert_eq!(sum(&t[..16]), 0);
        assert_eq!(u32::from_le_bytes(t[4..8].try_into().unwrap()), 0x9fc10);
        let table = &t[16..];
        assert_eq!(&table[0..4], b"PCMP");
        assert_eq!(usize::from(u16::from_le_bytes([table[4], table[5]])), table.len());
        assert_eq!(sum(table), 0);
        // 2 CPUs, bus, I/O APIC, ExtINT, 15 ISA IRQs, 2 local interrupts.
        assert_eq!(u16::from_le_bytes([table[34], table[35]]), 22);
        assert_eq!(u32::from_le_bytes(table[36..40].try_into().unwrap()), 0xfee0_0000);
    }

    #[test]
    fn entries_describe_cpus_ioapic_and_isa_irqs() {
        let t = mptable(2, CpuSignature::default());
        let e = &t[16 + 44..];
        assert_eq!((e[0], e[1], e[3]), (PROCESSOR, 0, 3), "CPU 0 is the BSP");
        assert_eq!((e[20], e[21], e[23]), (PROCESSOR, 1, 1));
        let rest = &e[40..];
        assert_eq!(&rest[0..8], &[BUS, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
        assert_eq!(&rest[8..12], &[IOAPIC, 2, 0x11, 1]);
        assert_eq!(u32::from_le_bytes(rest[12..16].try_into().unwrap()), 0xfec0_0000);
        let irqs: Vec<(u8, u8, u8)> =
            rest[16..].chunks(8).filter(|c| c[0] == IO_INTERRUPT).map(|c| (c[1], c[5], c[7])).collect();
        assert_eq!(irqs[0], (EXTINT, 0, 0));
        assert_eq!(irqs[1], (INT, 0, 2), "the PIT on pin 2");
        assert_eq!(irqs[4], (INT, 4, 4), "COM1");
        assert!(!irqs.iter().any(|&(_, irq, _)| irq == 2 && irqs.len() > 16));
        assert_eq!(irqs.len(), 16);
    }

    #[test]
    fn the_largest_machine_still_fits() {
        assert!(mptable(8, CpuSignature::default()).len() <= MPTABLE_MAX);
        assert_eq!(mptable(0, CpuSignature::default())[16 + 44 + 3], 3, "at least the BSP");
    }
}

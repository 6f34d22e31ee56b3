// SPDX-License-Identifier: GPL-2.0

//! A bus: non-overlapping address ranges, each owned by one device.

use super::{Action, Device, UNCLAIMED_BYTE};

/// A device could not be added to a bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The range is empty or wraps around.
    #[error("device {name} has an invalid range {base:#x}+{len:#x}")]
    BadRange {
        /// The device.
        name: &'static str,
        /// Start of its range.
        base: u64,
        /// Length of its range.
        len: u64,
    },
    /// The range overlaps a device already on the bus.
    #[error("device {name} at {base:#x}+{len:#x} overlaps device {other}")]
    Overlap {
        /// The device being added.
        name: &'static str,
        /// Start of its range.
        base: u64,
        /// Length of its range.
        len: u64,
        /// The device already there.
        other: &'static str,
    },
}

struct Entry {
    name: &'static str,
    base: u64,
    len: u64,
    device: Box<dyn Device>,
}

impl Entry {
    fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.len
    }
}

/// Routes accesses to the device whose range holds the first byte
/// accessed; the device sees the access's offset from its base. A bus holds
/// a handful of devices, so a linear search is the simplest right choice.
#[derive(Default)]
pub struct Bus {
    entries: Vec<Entry>,
}

impl Bus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `device` at `base..base + len`.
    pub fn insert(
        &mut self,
        name: &'static str,
        base: u64,
        len: u64,
        device: Box<dyn Device>,
    ) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::BadRange { name, base, len })?;
        if let Some(other) = self
            .entries
            .iter()
            .find(|e| base < e.base + e.len && e.base < end)
        {
            return Err(BusError::Overlap {
                name,
                base,
                len,
                other: other.name,
            });
        }
        self.entries.push(Entry {
            name,
            base,
            len,
            device,
        });
        Ok(())
    }

    /// The name of the device at `addr`, if any.
    pub fn device_at(&self, addr: u64) -> Option<&'static str> {
        self.entries
            .iter()
            .find(|e| e.contains(addr))
            .map(|e| e.name)
    }

    /// Reads at `addr` into `data`. Returns false, with `data` all ones, if
    /// no device claims `addr`.
    pub fn read(&mut self, addr: u64, data: &mut [u8]) -> bool {
        match self.entries.iter_mut().find(|e| e.contains(addr)) {
            Some(entry) => {
                entry.device.read(addr - entry.base, data);
                true
            }
            None => {
                data.fill(UNCLAIMED_BYTE);
                false
            }
        }
    }

    /// Writes `data` at `addr`. Returns `None` if no device claims `addr`
    /// (the write is dropped).
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Option<Action> {
        let entry = self.entries.iter_mut().find(|e| e.contains(addr))?;
        Some(entry.device.write(addr - entry.base, data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// The accesses a probe saw: offset and bytes.
    type Log = Rc<RefCell<Vec<(u64, Vec<u8>)>>>;

    /// Records accesses and reads back the offset.
    struct Probe(Log);

    impl Device for Probe {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) -> Action {
            self.0.borrow_mut().push((offset, data.to_vec()));
            Action::Continue
        }
    }

    fn bus_with_probe(base: u64, len: u64) -> (Bus, Log) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let mut bus = Bus::new();
        bus.insert("probe", base, len, Box::new(Probe(log.clone())))
            .unwrap();
        (bus, log)
    }

    #[test]
    fn accesses_reach_the_device_at_their_offset() {
        let (mut bus, log) = bus_with_probe(0x100, 8);
        let mut data = [0u8; 2];
        assert!(bus.read(0x103, &mut data));
        assert_eq!(data, [3, 3]);
        assert_eq!(bus.write(0x107, &[9]), Some(Action::Continue));
        assert_eq!(*log.borrow(), vec![(7, vec![9])]);
        assert_eq!(bus.device_at(0x100), Some("probe"));
    }

    #[test]
    fn unclaimed_reads_float_high_and_writes_vanish() {
        let (mut bus, log) = bus_with_probe(0x100, 8);
        let mut data = [0u8; 4];
        assert!(!bus.read(0x108, &mut data));
        assert_eq!(data, [0xff; 4]);
        assert!(!bus.read(0xff, &mut data));
        assert_eq!(bus.write(0x108, &[1]), None);
        assert!(log.borrow().is_empty());
    }

    #[test]
    fn overlapping_or_empty_ranges_are_refused() {
        let (mut bus, log) = bus_with_probe(0x100, 8);
        let probe = || Box::new(Probe(log.clone()));
        assert!(matches!(
            bus.insert("b", 0x107, 2, probe()),
            Err(BusError::Overlap { other: "probe", .. })
        ));
        assert!(matches!(
            bus.insert("c", 0xf0, 0x20, probe()),
            Err(BusError::Overlap { .. })
        ));
        assert!(matches!(
            bus.insert("d", 0x200, 0, probe()),
            Err(BusError::BadRange { .. })
        ));
        assert!(matches!(
            bus.insert("e", u64::MAX, 2, probe()),
            Err(BusError::BadRange { .. })
        ));
        assert!(bus.insert("f", 0x108, 1, probe()).is_ok());
    }
}

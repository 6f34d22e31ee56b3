// SPDX-License-Identifier: GPL-2.0

//! What other threads hand a vCPU's local APIC while the vCPU's own thread
//! runs it: interrupt requests (MSIs from userspace), NMIs, and the levels
//! of the LINT pins. The APIC model (`lapic.rs`) belongs to the vCPU's
//! thread and is never touched from outside; an [`Inbox`] is lock-free, so
//! a sender never waits for a vCPU that is in the guest or asleep in HLT.
//! The vCPU's thread drains the inbox into the model before every entry
//! and while it halts; the sender then kicks the vCPU (`shim::Wake`). The
//! inbox also mirrors the APIC's destination registers, which the vCPU's
//! thread publishes after every exit, so that a sender can tell which
//! APICs a message is for. Depends on `core` only.

use crate::irq::lapic::{Destination, Refused};
use crate::hw::apic::{lvt, msi};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// A message-signalled interrupt, decoded (SDM 11.11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Msi {
    pub dest: u32,
    pub logical: bool,
    pub vector: u8,
    /// `lvt::DM_FIXED`, `lvt::DM_LOWEST` or `lvt::DM_NMI`.
    pub delivery: u32,
    pub level_triggered: bool,
}

impl Msi {
    /// Decodes `PACIFICA_SIGNAL_MSI`'s arguments. Refused: an address
    /// outside the interrupt window, non-zero flags, and the delivery
    /// modes not supported (SMI, INIT, STARTUP, ExtINT and the reserved
    /// ones). `Ok(None)`: the de-assertion of a level-triggered message,
    /// which delivers nothing.
    pub fn decode(address: u64, data: u32, flags: u32) -> Result<Option<Msi>, Refused> {
        if flags != 0 || address & msi::ADDR_WINDOW_MASK != msi::ADDR_WINDOW || address >> 32 & 0xff != 0 {
            return Err(Refused);
        }
        let delivery = data & lvt::DM_MASK;
        if !matches!(delivery, lvt::DM_FIXED | lvt::DM_LOWEST | lvt::DM_NMI) {
            return Err(Refused);
        }
        let level_triggered = data & lvt::LEVEL_TRIGGER != 0;
        if level_triggered && data & msi::DATA_LEVEL_ASSERT == 0 {
            return Ok(None);
        }
        let dest = ((address >> msi::ADDR_DEST_SHIFT) & 0xff) as u32 | ((address & msi::ADDR_DEST_HI_MASK) >> 32) as u32;
        Ok(Some(Msi {
            dest,
            logical: address & msi::ADDR_DM_LOGICAL != 0,
            vector: (data & lvt::VECTOR) as u8,
            delivery,
            level_triggered,
        }))
    }
}

/// The LINT pins' levels, as [`Inbox::lint`] returns them.
pub const LINT0: u32 = 1 << 0;
pub const LINT1: u32 = 1 << 1;

/// What the other threads left for one vCPU.
#[derive(Debug, Default)]
pub struct Inbox {
    /// Requested vectors, and which of them are level-triggered.
    irr: [AtomicU32; 8],
    tmr: [AtomicU32; 8],
    nmi: AtomicBool,
    /// `LINT0 | LINT1` levels, as userspace last set them, and the pins
    /// that went up since the vCPU last looked (a pulse is an edge even
    /// if the vCPU never saw the level high).
    lint: AtomicU32,
    lint_rising: AtomicU32,
    /// The APIC's [`Destination`], published by the vCPU's thread.
    dest_ids: AtomicU64,
    dest_flags: AtomicU32,
}

/// What [`Inbox::take`] found besides vectors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taken {
    pub nmi: bool,
}

const FLAG_CLUSTER: u32 = 1 << 0;
const FLAG_X2APIC: u32 = 1 << 1;
const FLAG_ENABLED: u32 = 1 << 2;

impl Inbox {
    /// Requests vector `v` (the trigger mode travels with it).
    pub fn post(&self, v: u8, level_triggered: bool) {
        let (word, bit) = (usize::from(v / 32), 1u32 << (v % 32));
        if level_triggered {
            self.tmr[word].fetch_or(bit, Ordering::Relaxed);
        } else {
            self.tmr[word].fetch_and(!bit, Ordering::Relaxed);
        }
        // Release: the trigger mode is seen with the request.
        self.irr[word].fetch_or(bit, Ordering::Release);
    }

    /// Requests an NMI (one pending at most, as the CPU's NMI latch).
    pub fn post_nmi(&self) {
        self.nmi.store(true, Ordering::Release);
    }

    /// Sets the level of `pin` (`LINT0` or `LINT1`).
    pub fn set_lint(&self, pin: u32, level: bool) {
        if level {
            if self.lint.fetch_or(pin, Ordering::AcqRel) & pin == 0 {
                self.lint_rising.fetch_or(pin, Ordering::AcqRel);
            }
        } else {
            self.lint.fetch_and(!pin, Ordering::AcqRel);
        }
    }

    /// The LINT pins' levels.
    pub fn lint_levels(&self) -> u32 {
        self.lint.load(Ordering::Acquire)
    }

    /// The pins that went up since the last call.
    pub fn take_lint_rising(&self) -> u32 {
        self.lint_rising.swap(0, Ordering::AcqRel)
    }

    /// Takes every posted vector, calling `each(vector, level_triggered)`,
    /// and the NMI.
    pub fn take(&self, mut each: impl FnMut(u8, bool)) -> Taken {
        for word in 0..8 {
            let mut bits = self.irr[word].swap(0, Ordering::Acquire);
            let tmr = self.tmr[word].load(Ordering::Relaxed);
            while bits != 0 {
                let bit = bits.trailing_zeros();
                bits &= bits - 1;
                each((word as u32 * 32 + bit) as u8, tmr & (1 << bit) != 0);
            }
        }
        Taken { nmi: self.nmi.swap(false, Ordering::AcqRel) }
    }

    /// Records the APIC's destination registers for senders.
    pub fn publish(&self, d: Destination) {
        self.dest_ids.store(u64::from(d.id) | u64::from(d.ldr) << 32, Ordering::Relaxed);
        let flags = if d.cluster { FLAG_CLUSTER } else { 0 }
            | if d.x2apic { FLAG_X2APIC } else { 0 }
            | if d.enabled { FLAG_ENABLED } else { 0 };
        self.dest_flags.store(flags, Ordering::Release);
    }

    /// The destination registers last published.
    pub fn destination(&self) -> Destination {
        let flags = self.dest_flags.load(Ordering::Acquire);
        let ids = self.dest_ids.load(Ordering::Relaxed);
        Destination {
            id: ids as u32,
            ldr: (ids >> 32) as u32,
            cluster: flags & FLAG_CLUSTER != 0,
            x2apic: flags & FLAG_X2APIC != 0,
            enabled: flags & FLAG_ENABLED != 0,
        }
    }
}

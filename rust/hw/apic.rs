// SPDX-License-Identifier: GPL-2.0

//! The local APIC (APM Vol. 2, 16; Intel SDM Vol. 3, 11 for x2APIC): the
//! IA32_APIC_BASE bits, the register offsets of the xAPIC page (an
//! x2APIC MSR is `msr::X2APIC_BASE + offset / 16`) and the fields of
//! the registers. Names follow Linux's `asm/apicdef.h`. Depends on
//! `core` only.

/// IA32_APIC_BASE (MSR 0x1b).
pub mod base {
    /// The bootstrap processor.
    pub const BSP: u64 = 1 << 8;
    /// x2APIC mode (with `ENABLE`).
    pub const EXTD: u64 = 1 << 10;
    /// The APIC is enabled (globally).
    pub const ENABLE: u64 = 1 << 11;
    /// The physical address of the xAPIC page, bits 12 up.
    pub const ADDR_MASK: u64 = !0xfff;
    /// Where the page is at reset.
    pub const DEFAULT_ADDR: u64 = 0xfee0_0000;
}

/// The size of the xAPIC register page.
pub const PAGE_SIZE: u64 = 4096;

/// Register offsets in the xAPIC page.
pub mod reg {
    pub const ID: u32 = 0x020;
    pub const LVR: u32 = 0x030;
    pub const TASKPRI: u32 = 0x080;
    pub const ARBPRI: u32 = 0x090;
    pub const PROCPRI: u32 = 0x0a0;
    pub const EOI: u32 = 0x0b0;
    pub const RRR: u32 = 0x0c0;
    pub const LDR: u32 = 0x0d0;
    pub const DFR: u32 = 0x0e0;
    pub const SPIV: u32 = 0x0f0;
    /// Eight 32-bit words, 16 bytes apart.
    pub const ISR: u32 = 0x100;
    pub const TMR: u32 = 0x180;
    pub const IRR: u32 = 0x200;
    pub const ESR: u32 = 0x280;
    pub const LVTCMCI: u32 = 0x2f0;
    pub const ICR: u32 = 0x300;
    pub const ICR2: u32 = 0x310;
    pub const LVTT: u32 = 0x320;
    pub const LVTTHMR: u32 = 0x330;
    pub const LVTPC: u32 = 0x340;
    pub const LVT0: u32 = 0x350;
    pub const LVT1: u32 = 0x360;
    pub const LVTERR: u32 = 0x370;
    pub const TMICT: u32 = 0x380;
    pub const TMCCT: u32 = 0x390;
    pub const TDCR: u32 = 0x3e0;
    /// x2APIC only.
    pub const SELF_IPI: u32 = 0x3f0;
}

/// The version register: version 0x14, six LVT entries (timer, thermal,
/// performance, LINT0, LINT1, error), no EOI-broadcast suppression.
pub const VERSION: u32 = 0x14 | (5 << 16);

/// The spurious-interrupt vector register.
pub mod spiv {
    pub const VECTOR: u32 = 0xff;
    /// APIC software enable.
    pub const ENABLED: u32 = 1 << 8;
    /// Focus processor checking disabled.
    pub const FOCUS_DISABLED: u32 = 1 << 9;
}

/// Fields of the LVT entries and the ICR.
pub mod lvt {
    pub const VECTOR: u32 = 0xff;
    pub const DM_SHIFT: u32 = 8;
    pub const DM_MASK: u32 = 7 << DM_SHIFT;
    /// Delivery modes.
    pub const DM_FIXED: u32 = 0 << DM_SHIFT;
    pub const DM_LOWEST: u32 = 1 << DM_SHIFT;
    pub const DM_SMI: u32 = 2 << DM_SHIFT;
    pub const DM_NMI: u32 = 4 << DM_SHIFT;
    pub const DM_INIT: u32 = 5 << DM_SHIFT;
    pub const DM_STARTUP: u32 = 6 << DM_SHIFT;
    pub const DM_EXTINT: u32 = 7 << DM_SHIFT;
    /// Logical (else physical) destination (ICR).
    pub const DEST_LOGICAL: u32 = 1 << 11;
    /// Delivery status: send pending (read only).
    pub const SEND_PENDING: u32 = 1 << 12;
    /// Input pin polarity, active low (LINT0/1).
    pub const INPUT_POLARITY: u32 = 1 << 13;
    /// Remote IRR (LINT0/1, read only); level assert (ICR).
    pub const REMOTE_IRR: u32 = 1 << 14;
    pub const ICR_LEVEL_ASSERT: u32 = 1 << 14;
    /// Level triggered (else edge).
    pub const LEVEL_TRIGGER: u32 = 1 << 15;
    pub const MASKED: u32 = 1 << 16;
    /// Timer mode, LVTT bits 18:17.
    pub const TIMER_MODE_MASK: u32 = 3 << 17;
    pub const TIMER_ONESHOT: u32 = 0 << 17;
    pub const TIMER_PERIODIC: u32 = 1 << 17;
    pub const TIMER_TSCDEADLINE: u32 = 2 << 17;
    /// The ICR's destination shorthand, bits 19:18.
    pub const SHORTHAND_MASK: u32 = 3 << 18;
    pub const SHORTHAND_NONE: u32 = 0 << 18;
    pub const SHORTHAND_SELF: u32 = 1 << 18;
    pub const SHORTHAND_ALL: u32 = 2 << 18;
    pub const SHORTHAND_OTHERS: u32 = 3 << 18;
}

/// The error status register's bits.
pub mod esr {
    pub const SEND_ILLEGAL_VECTOR: u32 = 1 << 5;
    pub const RECEIVE_ILLEGAL_VECTOR: u32 = 1 << 6;
    pub const ILLEGAL_REGISTER: u32 = 1 << 7;
}

/// The divide configuration register: bits 0, 1 and 3.
pub const TDCR_MASK: u32 = 0xb;

/// A message-signalled interrupt's address and data (SDM 11.11).
pub mod msi {
    /// The address window: bits 31:20 are 0xfee.
    pub const ADDR_WINDOW_MASK: u64 = 0xfff0_0000;
    pub const ADDR_WINDOW: u64 = 0xfee0_0000;
    /// The destination ID, bits 19:12 (x2APIC: and bits 63:40).
    pub const ADDR_DEST_SHIFT: u32 = 12;
    pub const ADDR_DEST_HI_MASK: u64 = 0xffff_ff00_0000_0000;
    /// Destination mode: logical.
    pub const ADDR_DM_LOGICAL: u64 = 1 << 2;
    /// Data: vector, delivery mode and trigger as in an LVT entry
    /// (`lvt::VECTOR`, `lvt::DM_MASK`, `lvt::LEVEL_TRIGGER`), and the level.
    pub const DATA_LEVEL_ASSERT: u32 = 1 << 14;
}

/// The DFR's model, bits 31:28: flat (all ones) or cluster (zero).
pub const DFR_MODEL_FLAT: u32 = 0xf000_0000;

/// CPUID bits that describe the APIC (leaf 1 ECX, leaf 6 EAX).
pub mod cpuid {
    pub const X2APIC: u32 = 1 << 21;
    pub const TSC_DEADLINE: u32 = 1 << 24;
    /// CPUID 6 EAX bit 2, ARAT: the APIC timer keeps running in deep
    /// C-states (Linux needs it, early, to go without the PIT).
    pub const LEAF6_ARAT: u32 = 1 << 2;
}

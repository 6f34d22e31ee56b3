// SPDX-License-Identifier: GPL-2.0

//! Control-register and RFLAGS bits (APM Vol. 2, 3.1). EFER's are in
//! `hw::svm::efer`.
//! Depends on `core` only.

/// CR0 (APM Vol. 2, 3.1.1).
pub mod cr0 {
    pub const PE: u64 = 1 << 0;
    /// Monitor coprocessor: WAIT/FWAIT honour TS.
    pub const MP: u64 = 1 << 1;
    pub const TS: u64 = 1 << 3;
    /// Extension type; hard-wired to 1 on every CPU with SVM.
    pub const ET: u64 = 1 << 4;
    /// Numeric error: x87 errors raise #MF, not an external interrupt.
    pub const NE: u64 = 1 << 5;
    pub const WP: u64 = 1 << 16;
    pub const NW: u64 = 1 << 29;
    pub const CD: u64 = 1 << 30;
    pub const PG: u64 = 1 << 31;
    /// At reset (APM Vol. 2, 14.1.3): caches disabled, ET.
    pub const RESET: u64 = CD | NW | ET;
}

/// CR4 (APM Vol. 2, 3.1.3).
pub mod cr4 {
    pub const PSE: u64 = 1 << 4;
    pub const PAE: u64 = 1 << 5;
    pub const PGE: u64 = 1 << 7;
    /// The OS supports FXSAVE/FXRSTOR: enables SSE.
    pub const OSFXSR: u64 = 1 << 9;
    /// The OS handles SIMD floating-point exceptions (#XF).
    pub const OSXMMEXCPT: u64 = 1 << 10;
    /// VME, PVI, TSD, DE, PSE, PAE, MCE, PGE, PCE, OSFXSR, OSXMMEXCPT: the
    /// bits of every x86-64 processor (bits 0-10).
    pub const BASELINE: u64 = 0x7ff;
    pub const FSGSBASE: u64 = 1 << 16;
    pub const OSXSAVE: u64 = 1 << 18;
    pub const SMEP: u64 = 1 << 20;
    pub const SMAP: u64 = 1 << 21;
}

/// RFLAGS (APM Vol. 2, 3.1.6).
pub mod rflags {
    /// The status flags: carry, parity, auxiliary carry, zero, sign,
    /// overflow.
    pub const CF: u64 = 1 << 0;
    pub const PF: u64 = 1 << 2;
    pub const AF: u64 = 1 << 4;
    pub const ZF: u64 = 1 << 6;
    pub const SF: u64 = 1 << 7;
    pub const OF: u64 = 1 << 11;
    /// All six, which the arithmetic instructions write.
    pub const STATUS: u64 = CF | PF | AF | ZF | SF | OF;
    /// Bit 1 reads as one on every CPU; VMRUN refuses it clear.
    pub const FIXED: u64 = 1 << 1;
    pub const TF: u64 = 1 << 8;
    pub const IF: u64 = 1 << 9;
    /// Direction: string instructions move down.
    pub const DF: u64 = 1 << 10;
    /// Nested task: IRET switches back to the linked task.
    pub const NT: u64 = 1 << 14;
    /// Resume: instruction breakpoints do not fire for one instruction.
    pub const RF: u64 = 1 << 16;
    /// Virtual-8086 mode.
    pub const VM: u64 = 1 << 17;
}

/// The debug registers' fixed bits (APM Vol. 2, 13.1.1).
pub mod dr {
    /// DR6 at reset: its reserved bits read as one.
    pub const DR6_RESET: u64 = 0xffff_0ff0;
    /// DR7 bit 10 reads as one.
    pub const DR7_FIXED: u64 = 1 << 10;
    /// DR7 at reset: every breakpoint off.
    pub const DR7_RESET: u64 = DR7_FIXED;
}

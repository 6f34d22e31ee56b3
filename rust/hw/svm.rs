// SPDX-License-Identifier: GPL-2.0

//! SVM architectural constants: CPUID bits, MSRs, intercepts, exit codes
//! and event injection, named as in AMD's APM Vol. 2 chapter 15 and Linux's
//! `arch/x86/include/asm/svm.h`. Depends on `core` only.

/// CPUID 8000_0001 ECX bit 2: SVM (APM Vol. 3, E.4.2).
pub const CPUID_8000_0001_ECX_SVM: u32 = 1 << 2;

/// CPUID 8000_000A EDX feature bits (APM Vol. 3, E.4.9).
pub mod features {
    pub const NPT: u32 = 1 << 0;
    pub const LBRV: u32 = 1 << 1;
    pub const SVML: u32 = 1 << 2;
    pub const NRIPS: u32 = 1 << 3;
    pub const TSC_RATE: u32 = 1 << 4;
    pub const VMCB_CLEAN: u32 = 1 << 5;
    pub const FLUSH_BY_ASID: u32 = 1 << 6;
    pub const DECODE_ASSISTS: u32 = 1 << 7;
    pub const PAUSE_FILTER: u32 = 1 << 10;
    pub const VGIF: u32 = 1 << 16;
}

/// VM_CR (APM 15.30.1, `hw::msr::VM_CR`): bit 4, SVMDIS, means the BIOS
/// disabled SVM.
pub const VM_CR_SVMDIS: u64 = 1 << 4;

/// EFER bits (APM Vol. 2, 3.1.7).
pub mod efer {
    pub const SCE: u64 = 1 << 0;
    pub const LME: u64 = 1 << 8;
    pub const LMA: u64 = 1 << 10;
    pub const NXE: u64 = 1 << 11;
    pub const SVME: u64 = 1 << 12;
    pub const LMSLE: u64 = 1 << 13;
    pub const FFXSR: u64 = 1 << 14;
}

/// Intercepts as (vector index, bit) pairs for `VmcbControl::set_intercept`
/// (APM Table B-1). Vector 3 and 4 hold the instruction intercepts.
pub mod intercept {
    const fn w3(bit: u32) -> (usize, u32) {
        (3, bit)
    }
    const fn w4(bit: u32) -> (usize, u32) {
        (4, bit)
    }
    pub const INTR: (usize, u32) = w3(0);
    pub const NMI: (usize, u32) = w3(1);
    pub const SMI: (usize, u32) = w3(2);
    pub const INIT: (usize, u32) = w3(3);
    /// A virtual interrupt (V_IRQ) is about to be taken: the interrupt window.
    pub const VINTR: (usize, u32) = w3(4);
    /// LTR ("TR write" in APM Table B-1).
    pub const TR_WRITE: (usize, u32) = w3(13);
    pub const RDPMC: (usize, u32) = w3(15);
    pub const CPUID: (usize, u32) = w3(18);
    pub const RSM: (usize, u32) = w3(19);
    pub const IRET: (usize, u32) = w3(20);
    pub const INVD: (usize, u32) = w3(22);
    pub const HLT: (usize, u32) = w3(24);
    pub const INVLPG: (usize, u32) = w3(25);
    pub const INVLPGA: (usize, u32) = w3(26);
    pub const IOIO_PROT: (usize, u32) = w3(27);
    pub const MSR_PROT: (usize, u32) = w3(28);
    pub const TASK_SWITCH: (usize, u32) = w3(29);
    pub const SHUTDOWN: (usize, u32) = w3(31);
    pub const VMRUN: (usize, u32) = w4(0);
    pub const VMMCALL: (usize, u32) = w4(1);
    pub const VMLOAD: (usize, u32) = w4(2);
    pub const VMSAVE: (usize, u32) = w4(3);
    pub const STGI: (usize, u32) = w4(4);
    pub const CLGI: (usize, u32) = w4(5);
    pub const SKINIT: (usize, u32) = w4(6);
    pub const RDTSCP: (usize, u32) = w4(7);
    pub const ICEBP: (usize, u32) = w4(8);
    pub const WBINVD: (usize, u32) = w4(9);
    pub const MONITOR: (usize, u32) = w4(10);
    pub const MWAIT: (usize, u32) = w4(11);
    pub const MWAIT_COND: (usize, u32) = w4(12);
    pub const XSETBV: (usize, u32) = w4(13);
    pub const RDPRU: (usize, u32) = w4(14);
}

/// Intercept vector 0: bit n intercepts reads of CRn, bit 16+n writes.
pub const INTERCEPT_CR_WORD: usize = 0;
/// Intercept vector 1: bit n intercepts reads of DRn, bit 16+n writes.
pub const INTERCEPT_DR_WORD: usize = 1;
/// Intercept vector 2: bit n intercepts exception vector n.
pub const INTERCEPT_EXCEPTION_WORD: usize = 2;

/// The bit of vector 0 or 1 that intercepts reads of CRn or DRn.
pub const fn intercept_read(n: u32) -> u32 {
    1 << n
}

/// The bit of vector 0 or 1 that intercepts writes of CRn or DRn.
pub const fn intercept_write(n: u32) -> u32 {
    1 << (16 + n)
}

/// The intercept (vector, bit) of writes to CRn.
pub const fn cr_write_intercept(n: u32) -> (usize, u32) {
    (INTERCEPT_CR_WORD, intercept_write(n).trailing_zeros())
}

/// #VMEXIT codes (APM Appendix C).
pub mod exit {
    pub const CR0_READ: u64 = 0x000;
    pub const CR0_WRITE: u64 = 0x010;
    pub const DR0_READ: u64 = 0x020;
    pub const DR0_WRITE: u64 = 0x030;
    pub const EXCP_BASE: u64 = 0x040;
    pub const INTR: u64 = 0x060;
    pub const NMI: u64 = 0x061;
    pub const SMI: u64 = 0x062;
    pub const INIT: u64 = 0x063;
    pub const VINTR: u64 = 0x064;
    pub const TR_WRITE: u64 = 0x06d;
    pub const IRET: u64 = 0x074;
    pub const RDPMC: u64 = 0x06f;
    pub const CPUID: u64 = 0x072;
    pub const RSM: u64 = 0x073;
    pub const INVD: u64 = 0x076;
    pub const PAUSE: u64 = 0x077;
    pub const HLT: u64 = 0x078;
    pub const INVLPG: u64 = 0x079;
    pub const INVLPGA: u64 = 0x07a;
    pub const IOIO: u64 = 0x07b;
    pub const MSR: u64 = 0x07c;
    pub const TASK_SWITCH: u64 = 0x07d;
    pub const FERR_FREEZE: u64 = 0x07e;
    pub const SHUTDOWN: u64 = 0x07f;
    pub const VMRUN: u64 = 0x080;
    pub const VMMCALL: u64 = 0x081;
    pub const VMLOAD: u64 = 0x082;
    pub const VMSAVE: u64 = 0x083;
    pub const STGI: u64 = 0x084;
    pub const CLGI: u64 = 0x085;
    pub const SKINIT: u64 = 0x086;
    pub const RDTSCP: u64 = 0x087;
    pub const ICEBP: u64 = 0x088;
    pub const WBINVD: u64 = 0x089;
    pub const MONITOR: u64 = 0x08a;
    pub const MWAIT: u64 = 0x08b;
    pub const MWAIT_COND: u64 = 0x08c;
    pub const XSETBV: u64 = 0x08d;
    pub const RDPRU: u64 = 0x08e;
    pub const NPF: u64 = 0x400;
    /// VMRUN found the guest state invalid (-1).
    pub const INVALID: u64 = u64::MAX;
}

/// EXITINFO1 of an IOIO intercept (APM 15.10.2, Figure 15-2).
pub mod ioio {
    /// 1 = IN, 0 = OUT.
    pub const TYPE_IN: u64 = 1 << 0;
    pub const STR: u64 = 1 << 2;
    pub const REP: u64 = 1 << 3;
    pub const SZ8: u64 = 1 << 4;
    pub const SZ16: u64 = 1 << 5;
    pub const SZ32: u64 = 1 << 6;
    pub const A16: u64 = 1 << 7;
    pub const A32: u64 = 1 << 8;
    pub const A64: u64 = 1 << 9;
    /// The effective segment of INS/OUTS (0 = ES .. 5 = GS), with decode
    /// assists.
    pub const SEG_SHIFT: u32 = 10;
    pub const SEG_MASK: u64 = 7;
    pub const PORT_SHIFT: u32 = 16;
}

/// EXITINFO1 of a CR access with decode assists (APM 15.33.3).
pub mod cr_access {
    /// A MOV to or from the register (not CLTS, LMSW or SMSW): the GPR
    /// field is valid.
    pub const MOV: u64 = 1 << 63;
    /// The general register of the MOV.
    pub const GPR_MASK: u64 = 0xf;
}

/// EXITINFO1 of a nested page fault (APM 15.25.6): the #PF error-code bits
/// plus where in the walk it happened.
pub mod npf {
    pub const PRESENT: u64 = 1 << 0;
    pub const WRITE: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const RSVD: u64 = 1 << 3;
    pub const FETCH: u64 = 1 << 4;
    pub const GUEST_FINAL: u64 = 1 << 32;
    pub const GUEST_PAGE_TABLE: u64 = 1 << 33;
}

/// VMCB `int_ctl` bits (APM Table B-1, offset 0x60).
pub mod int_ctl {
    pub const V_TPR_MASK: u32 = 0xff;
    pub const V_IRQ: u32 = 1 << 8;
    pub const V_GIF: u32 = 1 << 9;
    pub const V_INTR_PRIO_SHIFT: u32 = 16;
    pub const V_IGN_TPR: u32 = 1 << 20;
    pub const V_INTR_MASKING: u32 = 1 << 24;
    pub const V_GIF_ENABLE: u32 = 1 << 25;
}

/// VMCB `int_state` bit 0: the guest is in an interrupt shadow (after STI
/// or MOV SS).
pub const INT_STATE_SHADOW: u32 = 1 << 0;

/// VMCB `nested_ctl` bit 0: enable nested paging.
pub const NESTED_CTL_NP_ENABLE: u64 = 1 << 0;

/// VMCB `tlb_ctl` values (APM 15.16.1).
pub mod tlb_ctl {
    pub const DO_NOTHING: u8 = 0;
    pub const FLUSH_ALL_ASID: u8 = 1;
    pub const FLUSH_ASID: u8 = 3;
}

/// EVENTINJ and EXITINTINFO format (APM 15.20, Figure 15-7).
pub mod event {
    pub const VECTOR_MASK: u32 = 0xff;
    pub const TYPE_SHIFT: u32 = 8;
    pub const TYPE_INTR: u32 = 0 << TYPE_SHIFT;
    pub const TYPE_NMI: u32 = 2 << TYPE_SHIFT;
    pub const TYPE_EXEPT: u32 = 3 << TYPE_SHIFT;
    pub const TYPE_SOFT: u32 = 4 << TYPE_SHIFT;
    pub const ERROR_VALID: u32 = 1 << 11;
    pub const VALID: u32 = 1 << 31;
}

/// Exception vectors.
pub mod vector {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const NP: u8 = 11;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    pub const AC: u8 = 17;
    pub const MC: u8 = 18;
}

/// An exception to inject through EVENTINJ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exception {
    pub vector: u8,
    pub error_code: Option<u32>,
}

impl Exception {
    /// #UD, invalid opcode.
    pub const UD: Self = Self { vector: vector::UD, error_code: None };
    /// #GP(0), general protection with error code 0.
    pub const GP0: Self = Self { vector: vector::GP, error_code: Some(0) };

    /// A page fault with the given error code (CR2 is set separately).
    pub const fn page_fault(error_code: u32) -> Self {
        Self { vector: vector::PF, error_code: Some(error_code) }
    }

    /// The EVENTINJ value (low 32 bits) and error code (high 32 bits).
    pub const fn event_inj(self) -> (u32, u32) {
        let mut inj = event::VALID | event::TYPE_EXEPT | self.vector as u32;
        let mut err = 0;
        if let Some(code) = self.error_code {
            inj |= event::ERROR_VALID;
            err = code;
        }
        (inj, err)
    }
}

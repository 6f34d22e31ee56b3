// SPDX-License-Identifier: GPL-2.0

//! A #VMEXIT, decoded once from the VMCB's EXITCODE, EXITINFO1 and
//! EXITINFO2 into an [`Exit`] with every field the handlers use (APM
//! Vol. 2, Appendix C and 15.10-15.13). Depends on `core` only; the host
//! tests feed it every exit family.

use crate::emulate::insn::Opcode;
use crate::hw::gpr::Gpr;
use crate::hw::svm::{cr_access, exit as code, ioio, vector};

/// An IOIO intercept's EXITINFO1 and EXITINFO2 (APM 15.10.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoInfo {
    pub port: u16,
    /// 1, 2 or 4 bytes.
    pub size: u8,
    /// IN or INS (else OUT or OUTS).
    pub input: bool,
    /// INS or OUTS.
    pub string: bool,
    pub rep: bool,
    /// The address size of a string instruction, 2, 4 or 8 bytes, when
    /// the CPU reports it (QEMU's TCG does not: `testbed`; the handler
    /// takes it from the instruction).
    pub addr_size: Option<u8>,
    /// The segment of a string instruction's memory operand, 0 = ES to
    /// 5 = GS, when the CPU has decode assists (0 otherwise; the handler
    /// takes it from the instruction).
    pub segment: u8,
    /// RIP of the next instruction.
    pub next_rip: u64,
}

impl IoInfo {
    /// Decodes EXITINFO1 (`info`) and EXITINFO2 (`next_rip`).
    pub fn decode(info: u64, next_rip: u64) -> Self {
        let size = if info & ioio::SZ32 != 0 {
            4
        } else if info & ioio::SZ16 != 0 {
            2
        } else {
            1
        };
        let addr_size = if info & ioio::A64 != 0 {
            Some(8)
        } else if info & ioio::A32 != 0 {
            Some(4)
        } else if info & ioio::A16 != 0 {
            Some(2)
        } else {
            None
        };
        IoInfo {
            port: (info >> ioio::PORT_SHIFT) as u16,
            size,
            input: info & ioio::TYPE_IN != 0,
            string: info & ioio::STR != 0,
            rep: info & ioio::REP != 0,
            addr_size,
            segment: ((info >> ioio::SEG_SHIFT) & ioio::SEG_MASK) as u8,
            next_rip,
        }
    }
}

/// A decoded #VMEXIT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Intr,
    Nmi,
    /// The interrupt window opened (VINTR: intercepted only while a
    /// userspace PIC's interrupt waits for the guest to take it).
    Vintr,
    /// IRET (intercepted while the guest handles an NMI).
    Iret,
    /// An SMI or INIT for the host (both intercepted so that the host
    /// takes them, as an interrupt): the guest resumes.
    HostEvent,
    Cpuid,
    Hlt,
    Io(IoInfo),
    /// RDMSR or WRMSR of MSR `index` (the guest's ECX).
    Msr { index: u32, write: bool },
    Vmmcall,
    Shutdown,
    Npf { gpa: u64, error: u64 },
    /// An instruction the guest may not use: #UD.
    Undefined,
    /// INVD and WBINVD: skipped. INVD must never drop dirty cache lines
    /// (they may be the host's), and the guest's memory is coherent, so
    /// neither needs to reach the host's caches.
    Invd(Opcode),
    /// RDPMC: the guest has no performance counters (#GP), and must not
    /// read the host's.
    Rdpmc,
    /// A hardware task switch (shadow paging only: it would load CR3
    /// from the TSS behind the shadow MMU's back).
    TaskSwitch,
    /// An intercepted exception the guest gets back (#DB, #AC).
    Exception { vector: u8, error: u32 },
    /// A read or write of debug register `dr` (DR7 is the one
    /// intercepted).
    Dr { dr: u8, write: bool },
    /// A read or write of control register `cr` (CR0 and CR4, and CR3
    /// under shadow paging), by a MOV with register `gpr` when the CPU
    /// has decode assists. Without them (`gpr` is `None`) the handler
    /// decodes the instruction itself, which also covers CLTS, LMSW and
    /// SMSW.
    Cr { cr: u8, write: bool, gpr: Option<Gpr> },
    /// A page fault (shadow paging): error code and address.
    PageFault { error: u64, la: u64 },
    /// INVLPG (shadow paging).
    Invlpg,
    /// LTR (QEMU's TCG only: `testbed`).
    Ltr,
    /// VMRUN refused the guest state (VMEXIT_INVALID). The 32-bit form
    /// QEMU writes is `testbed::is_vmexit_invalid`'s to recognise.
    Invalid,
    /// An exit code no handler knows.
    Unknown(u64),
}

impl Exit {
    /// Decodes the exit from the VMCB's EXITCODE, EXITINFO1 and EXITINFO2
    /// and the guest's RCX (an MSR exit's number).
    pub fn decode(exit_code: u64, info1: u64, info2: u64, rcx: u64) -> Self {
        match exit_code {
            code::INTR => Exit::Intr,
            code::NMI => Exit::Nmi,
            code::VINTR => Exit::Vintr,
            code::IRET => Exit::Iret,
            code::SMI | code::INIT => Exit::HostEvent,
            code::CPUID => Exit::Cpuid,
            code::HLT => Exit::Hlt,
            code::IOIO => Exit::Io(IoInfo::decode(info1, info2)),
            code::MSR => Exit::Msr { index: rcx as u32, write: info1 & 1 != 0 },
            code::VMMCALL => Exit::Vmmcall,
            code::SHUTDOWN => Exit::Shutdown,
            code::NPF => Exit::Npf { gpa: info2, error: info1 },
            code::VMRUN | code::VMLOAD | code::VMSAVE | code::STGI | code::CLGI | code::SKINIT
            | code::INVLPGA | code::RDTSCP | code::MONITOR | code::MWAIT | code::MWAIT_COND
            | code::XSETBV | code::RDPRU | code::RSM => Exit::Undefined,
            code::INVD => Exit::Invd(Opcode::Invd),
            code::WBINVD => Exit::Invd(Opcode::Wbinvd),
            code::RDPMC => Exit::Rdpmc,
            code::TASK_SWITCH => Exit::TaskSwitch,
            c if c == code::EXCP_BASE + u64::from(vector::DB) => Exit::Exception { vector: vector::DB, error: 0 },
            c if c == code::EXCP_BASE + u64::from(vector::AC) => {
                Exit::Exception { vector: vector::AC, error: info1 as u32 }
            }
            c if c == code::EXCP_BASE + u64::from(vector::PF) => Exit::PageFault { error: info1, la: info2 },
            // CR0_READ + n reads CRn, CR0_WRITE + n writes it; DR likewise.
            c @ code::CR0_READ..=0x1f => {
                let gpr = (info1 & cr_access::MOV != 0).then(|| Gpr::from_encoding((info1 & cr_access::GPR_MASK) as u8));
                Exit::Cr { cr: (c & 0xf) as u8, write: c >= code::CR0_WRITE, gpr }
            }
            c @ code::DR0_READ..=0x3f => Exit::Dr { dr: (c & 0xf) as u8, write: c >= code::DR0_WRITE },
            code::INVLPG => Exit::Invlpg,
            code::TR_WRITE => Exit::Ltr,
            code::INVALID => Exit::Invalid,
            other => Exit::Unknown(other),
        }
    }
}

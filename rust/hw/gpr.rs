// SPDX-License-Identifier: GPL-2.0

//! The general registers, by the number an instruction encodes them with
//! (ModRM.reg and r/m, SIB base and index, each with its REX bit; APM
//! Vol. 3, 1.4). Depends on `core` only.

/// A general register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Gpr {
    Rax = 0,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Gpr {
    /// Every register, in encoding order.
    pub const ALL: [Gpr; 16] = [
        Gpr::Rax,
        Gpr::Rcx,
        Gpr::Rdx,
        Gpr::Rbx,
        Gpr::Rsp,
        Gpr::Rbp,
        Gpr::Rsi,
        Gpr::Rdi,
        Gpr::R8,
        Gpr::R9,
        Gpr::R10,
        Gpr::R11,
        Gpr::R12,
        Gpr::R13,
        Gpr::R14,
        Gpr::R15,
    ];

    /// The register encoded as `n` (the low four bits count).
    pub const fn from_encoding(n: u8) -> Gpr {
        Self::ALL[(n & 15) as usize]
    }
}

/// The guest's general registers that VMRUN does not keep in the VMCB
/// (RAX, RSP and RIP are in the save area). The field order is fixed: the
/// world switch (`G_*` in `c_shim/vmenter.S`) addresses them by offset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestGprs {
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
}

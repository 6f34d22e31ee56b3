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

// SPDX-License-Identifier: GPL-2.0

//! A small x86 instruction decoder: just enough to emulate what SVM without
//! decode assists leaves to software. It finds the length of every
//! instruction the module intercepts and decodes the instructions that
//! guests and their drivers use on device memory: MOV in every form
//! (MOVZX, MOVSX, moffs), the string instructions MOVS, STOS and LODS, the
//! arithmetic and logic instructions with a memory operand (ADD, OR, ADC,
//! SBB, AND, SUB, XOR, CMP, TEST), XCHG, and BT, BTS, BTR, BTC. Anything
//! else is reported as unsupported, never guessed. Depends on `core` only;
//! the host tests exercise it.
//!
//! References: AMD APM Vol. 3, chapter 1 (instruction encoding) and
//! appendix A (opcode maps).

pub use crate::hw::gpr::Gpr;
use crate::hw::cr::rflags;

/// The code size of the running guest, from CR0.PE, EFER.LMA and CS.L/CS.D.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuMode {
    /// 16-bit code: real mode, or protected mode with CS.D = 0.
    Bits16,
    /// 32-bit protected or compatibility mode with CS.D = 1.
    Bits32,
    /// 64-bit mode (EFER.LMA and CS.L).
    Bits64,
}

/// A general register operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    pub gpr: Gpr,
    /// The legacy high-byte register (AH, CH, DH, BH): bits 8-15 of RAX to
    /// RBX.
    pub high_byte: bool,
}

/// How a value loaded from memory reaches a wider register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extend {
    /// Same width as the access.
    None,
    /// MOVZX.
    Zero,
    /// MOVSX.
    Sign,
}

/// The source of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Reg(Reg),
    Imm(u64),
}

/// The arithmetic and logic instructions with a memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AluOp {
    Add,
    Or,
    Adc,
    Sbb,
    And,
    Sub,
    Xor,
    Cmp,
    Test,
}

impl AluOp {
    /// The operation of opcode row `n` (bits 3-5 of 0x00-0x3f, or the
    /// ModRM reg field of 0x80-0x83).
    const fn from_row(n: u8) -> Self {
        match n & 7 {
            0 => AluOp::Add,
            1 => AluOp::Or,
            2 => AluOp::Adc,
            3 => AluOp::Sbb,
            4 => AluOp::And,
            5 => AluOp::Sub,
            6 => AluOp::Xor,
            _ => AluOp::Cmp,
        }
    }

    /// Whether the result is written back (CMP and TEST only set flags).
    pub const fn writes(self) -> bool {
        !matches!(self, AluOp::Cmp | AluOp::Test)
    }
}

/// BT, BTS, BTR and BTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BitOp {
    Test,
    Set,
    Reset,
    Complement,
}

/// The string instructions that move data through memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrOp {
    /// ES:RDI = DS:RSI.
    Movs,
    /// ES:RDI = RAX.
    Stos,
    /// RAX = DS:RSI.
    Lods,
}

/// What a decoded instruction does, for the instructions the module handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// MOV to memory of `size` bytes.
    Store { size: u8, src: Source },
    /// MOV/MOVZX/MOVSX from memory: `size` bytes read into `dst`, which is
    /// `dst_size` bytes wide.
    Load { size: u8, dst: Reg, dst_size: u8, extend: Extend },
    /// An arithmetic or logic instruction of `size` bytes with a memory
    /// operand: `mem op= src` when `to_mem`, otherwise `reg op= mem` with
    /// `src` the register (CMP and TEST write neither).
    Alu { op: AluOp, size: u8, src: Source, to_mem: bool },
    /// XCHG of `size` bytes between memory and `reg`.
    Xchg { size: u8, reg: Reg },
    /// BT/BTS/BTR/BTC on a `size`-byte memory operand; `offset` is the bit
    /// number (a register's, or an immediate's).
    Bit { op: BitOp, size: u8, offset: Source },
    /// MOVS, STOS or LODS of `size`-byte elements (REP in `Insn::rep`).
    Str { op: StrOp, size: u8 },
    /// MOV to (`write`) or from a control register: CR`cr` and general
    /// register `gpr` (the ModRM r/m field, always a register).
    MovCr { write: bool, cr: u8, gpr: Gpr },
    /// MOV to or from a debug register.
    MovDr { write: bool, dr: u8, gpr: Gpr },
    /// LMSW from a register: the low four bits of CR0.
    Lmsw { gpr: Gpr },
    /// SMSW to a register.
    Smsw { gpr: Gpr },
    /// LTR: the selector in register `gpr`, or (`None`) in the memory
    /// operand.
    Ltr { gpr: Option<Gpr> },
    /// An instruction whose only emulation is to be skipped or answered by
    /// an exit handler; decoded for its length.
    Other(Opcode),
}

/// Instructions recognised only for their length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opcode {
    Hlt,
    Cpuid,
    Rdmsr,
    Wrmsr,
    Vmmcall,
    Invd,
    Wbinvd,
    Xsetbv,
    /// INS/OUTS, byte or word/dword form.
    StringIo,
    Clts,
    /// INVLPG with its memory operand (the address is not decoded).
    Invlpg,
}

/// Segment override prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegOverride {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    /// Length in bytes, prefixes included.
    pub len: u8,
    pub op: Op,
    /// Effective address size in bytes (2, 4 or 8).
    pub addr_size: u8,
    /// Effective operand size in bytes for non-byte forms (2, 4 or 8).
    pub op_size: u8,
    pub seg: Option<SegOverride>,
    /// An F3 (REP) prefix was present, or for the string instructions an
    /// F2 (which repeats them as F3 does).
    pub rep: bool,
    /// The memory operand, for instructions that have one.
    pub mem: Option<MemOperand>,
}

/// Why decoding stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes ended before the instruction did.
    Truncated,
    /// More than 15 bytes.
    TooLong,
    /// A valid instruction this decoder does not emulate; carries the first
    /// opcode byte after the prefixes.
    Unsupported(u8),
}

/// Longest legal x86 instruction.
pub const MAX_INSN_LEN: usize = 15;

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn next(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= MAX_INSN_LEN {
            return Err(DecodeError::TooLong);
        }
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    fn imm(&mut self, n: usize) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..n {
            v |= u64::from(self.next()?) << (8 * i);
        }
        Ok(v)
    }
}

/// The fields of a ModRM byte, and the memory operand it describes.
struct ModRm {
    md: u8,
    reg: u8,
    /// The r/m field with REX.B: the register when `md` is 3.
    rm: u8,
    mem: Option<MemOperand>,
}

/// A memory operand: `base + index * scale + disp`, or `next RIP + disp`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemOperand {
    /// Base register, if any.
    pub base: Option<Gpr>,
    /// Index register and scale, if any.
    pub index: Option<(Gpr, u8)>,
    /// Sign-extended displacement.
    pub disp: i64,
    /// RIP-relative (64-bit mode, ModRM mod 0, r/m 5).
    pub rip_relative: bool,
}

fn disp(c: &mut Cursor<'_>, len: usize) -> Result<i64, DecodeError> {
    let v = c.imm(len)?;
    Ok(match len {
        1 => v as u8 as i8 as i64,
        2 => v as u16 as i16 as i64,
        4 => v as u32 as i32 as i64,
        _ => v as i64,
    })
}

/// Reads a ModRM byte with its SIB and displacement. `rex` supplies the
/// high bits of the register numbers; `long` says RIP-relative addressing
/// exists.
fn modrm(c: &mut Cursor<'_>, addr_size: u8, rex: u8, long: bool) -> Result<ModRm, DecodeError> {
    let b = c.next()?;
    let (md, reg, rm) = (b >> 6, (b >> 3) & 7, b & 7);
    let (rex_x, rex_b) = (((rex >> 1) & 1) << 3, (rex & 1) << 3);
    if md == 3 {
        return Ok(ModRm { md, reg, rm: rm | rex_b, mem: None });
    }
    let mut mem = MemOperand::default();
    if addr_size == 2 {
        let (base, index) = match rm {
            0 => (Some(Gpr::Rbx), Some(Gpr::Rsi)),
            1 => (Some(Gpr::Rbx), Some(Gpr::Rdi)),
            2 => (Some(Gpr::Rbp), Some(Gpr::Rsi)),
            3 => (Some(Gpr::Rbp), Some(Gpr::Rdi)),
            4 => (Some(Gpr::Rsi), None),
            5 => (Some(Gpr::Rdi), None),
            6 if md == 0 => (None, None),
            6 => (Some(Gpr::Rbp), None),
            _ => (Some(Gpr::Rbx), None),
        };
        mem.base = base;
        mem.index = index.map(|i| (i, 1));
        mem.disp = match md {
            0 if rm == 6 => disp(c, 2)?,
            0 => 0,
            1 => disp(c, 1)?,
            _ => disp(c, 2)?,
        };
        return Ok(ModRm { md, reg, rm, mem: Some(mem) });
    }
    let mut disp32 = false;
    if rm == 4 {
        let sib = c.next()?;
        let (scale, index, base) = (1u8 << (sib >> 6), ((sib >> 3) & 7) | rex_x, (sib & 7) | rex_b);
        // Index 100b without REX.X means no index.
        if index != Gpr::Rsp as u8 {
            mem.index = Some((Gpr::from_encoding(index), scale));
        }
        if md == 0 && sib & 7 == 5 {
            disp32 = true;
        } else {
            mem.base = Some(Gpr::from_encoding(base));
        }
    } else if md == 0 && rm == 5 {
        disp32 = true;
        mem.rip_relative = long;
    } else {
        mem.base = Some(Gpr::from_encoding(rm | rex_b));
    }
    mem.disp = match md {
        0 if disp32 => disp(c, 4)?,
        0 => 0,
        1 => disp(c, 1)?,
        _ => disp(c, 4)?,
    };
    Ok(ModRm { md, reg, rm, mem: Some(mem) })
}

/// A ModRM byte whose r/m field must name memory: the register forms of
/// the instructions decoded with it are nothing device memory needs.
fn memory_modrm(c: &mut Cursor<'_>, addr_size: u8, rex: u8, long: bool, opcode: u8) -> Result<ModRm, DecodeError> {
    let m = modrm(c, addr_size, rex, long)?;
    if m.md == 3 {
        return Err(DecodeError::Unsupported(opcode));
    }
    Ok(m)
}

impl MemOperand {
    /// The offset the operand names, within its segment, wrapped to the
    /// address size. `next_rip` is the address of the next instruction.
    pub fn effective_address(&self, addr_size: u8, next_rip: u64, mut gpr: impl FnMut(Gpr) -> u64) -> u64 {
        let mut ea = self.disp as u64;
        if self.rip_relative {
            ea = ea.wrapping_add(next_rip);
        }
        if let Some(b) = self.base {
            ea = ea.wrapping_add(gpr(b));
        }
        if let Some((i, scale)) = self.index {
            ea = ea.wrapping_add(gpr(i).wrapping_mul(u64::from(scale)));
        }
        match addr_size {
            2 => ea & 0xffff,
            4 => ea & 0xffff_ffff,
            _ => ea,
        }
    }

    /// Whether the default segment is SS (a base of RBP or RSP) instead of DS.
    pub fn stack_segment(&self) -> bool {
        matches!(self.base, Some(Gpr::Rbp | Gpr::Rsp))
    }
}

/// Decodes the instruction at the start of `bytes` in `mode`.
pub fn decode(bytes: &[u8], mode: CpuMode) -> Result<Insn, DecodeError> {
    let mut c = Cursor { bytes, pos: 0 };
    let (mut opsize_prefix, mut addrsize_prefix, mut rep, mut repne) = (false, false, false, false);
    let mut seg = None;
    let mut rex = 0u8;

    let mut b = c.next()?;
    loop {
        match b {
            0x66 => opsize_prefix = true,
            0x67 => addrsize_prefix = true,
            0xf3 => rep = true,
            0xf2 => repne = true,
            0xf0 => {}
            0x26 => seg = Some(SegOverride::Es),
            0x2e => seg = Some(SegOverride::Cs),
            0x36 => seg = Some(SegOverride::Ss),
            0x3e => seg = Some(SegOverride::Ds),
            0x64 => seg = Some(SegOverride::Fs),
            0x65 => seg = Some(SegOverride::Gs),
            _ => break,
        }
        rex = 0;
        b = c.next()?;
    }
    // REX must come last, right before the opcode; only in 64-bit mode.
    if mode == CpuMode::Bits64 && (0x40..=0x4f).contains(&b) {
        rex = b;
        b = c.next()?;
    }
    let rex_w = rex & 8 != 0;
    let rex_r = (rex >> 2) & 1;
    let rex_b = rex & 1;

    let (addr_size, op_size) = match mode {
        CpuMode::Bits16 => (if addrsize_prefix { 4 } else { 2 }, if opsize_prefix { 4 } else { 2 }),
        CpuMode::Bits32 => (if addrsize_prefix { 2 } else { 4 }, if opsize_prefix { 2 } else { 4 }),
        CpuMode::Bits64 => (
            if addrsize_prefix { 4 } else { 8 },
            if rex_w {
                8
            } else if opsize_prefix {
                2
            } else {
                4
            },
        ),
    };
    let gpr = |n: u8, byte: bool| -> Reg {
        // Without REX, byte registers 4-7 are AH, CH, DH, BH.
        if byte && rex == 0 && (4..8).contains(&n) {
            Reg { gpr: Gpr::from_encoding(n - 4), high_byte: true }
        } else {
            Reg { gpr: Gpr::from_encoding(n | (rex_r << 3)), high_byte: false }
        }
    };
    let acc = Reg { gpr: Gpr::Rax, high_byte: false };
    let mut mem = None;

    let long = mode == CpuMode::Bits64;
    // The size of a form with a byte variant (even opcode) and an operand
    // size one (odd).
    let sized = |opcode: u8| if opcode & 1 == 0 { 1 } else { op_size };
    // An immediate of `size` bytes, 8-byte ones from a sign-extended imm32.
    let imm_of = |c: &mut Cursor<'_>, size: u8| -> Result<u64, DecodeError> {
        let mut imm = c.imm(usize::from(size.min(4)))?;
        if size == 8 && imm & (1 << 31) != 0 {
            imm |= 0xffff_ffff_0000_0000;
        }
        Ok(imm)
    };
    let op = match b {
        // ADD/OR/ADC/SBB/AND/SUB/XOR/CMP r/m, r and r, r/m.
        _ if b < 0x40 && b & 7 < 4 => {
            let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
            mem = m.mem;
            let size = sized(b);
            let reg = gpr(m.reg, size == 1);
            Op::Alu { op: AluOp::from_row(b >> 3), size, src: Source::Reg(reg), to_mem: b & 2 == 0 }
        }
        // The same with an immediate: 0x80 ib, 0x81 iz, 0x83 ib sign-extended.
        0x80 | 0x81 | 0x83 => {
            let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
            mem = m.mem;
            let size = if b == 0x80 { 1 } else { op_size };
            let imm = if b == 0x83 { c.imm(1)? as u8 as i8 as i64 as u64 } else { imm_of(&mut c, size)? };
            Op::Alu { op: AluOp::from_row(m.reg), size, src: Source::Imm(extend(imm, size, size, Extend::None)), to_mem: true }
        }
        // TEST r/m, r.
        0x84 | 0x85 => {
            let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
            mem = m.mem;
            let size = sized(b);
            Op::Alu { op: AluOp::Test, size, src: Source::Reg(gpr(m.reg, size == 1)), to_mem: true }
        }
        // TEST r/m, imm (group 3 /0 and its alias /1).
        0xf6 | 0xf7 => {
            let m = modrm(&mut c, addr_size, rex, long)?;
            mem = m.mem;
            if m.md == 3 || m.reg > 1 {
                return Err(DecodeError::Unsupported(b));
            }
            let size = sized(b);
            Op::Alu { op: AluOp::Test, size, src: Source::Imm(imm_of(&mut c, size)?), to_mem: true }
        }
        // XCHG r/m, r.
        0x86 | 0x87 => {
            let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
            mem = m.mem;
            let size = sized(b);
            Op::Xchg { size, reg: gpr(m.reg, size == 1) }
        }
        0xa4 | 0xa5 | 0xaa | 0xab | 0xac | 0xad => {
            rep |= repne;
            let op = match b {
                0xa4 | 0xa5 => StrOp::Movs,
                0xaa | 0xab => StrOp::Stos,
                _ => StrOp::Lods,
            };
            Op::Str { op, size: sized(b) }
        }
        0x88 | 0x89 => {
            let byte = b == 0x88;
            let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
            mem = m.mem;
            Op::Store { size: if byte { 1 } else { op_size }, src: Source::Reg(gpr(m.reg, byte)) }
        }
        0x8a | 0x8b => {
            let byte = b == 0x8a;
            let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
            mem = m.mem;
            let size = if byte { 1 } else { op_size };
            Op::Load { size, dst: gpr(m.reg, byte), dst_size: size, extend: Extend::None }
        }
        0xc6 | 0xc7 => {
            let m = modrm(&mut c, addr_size, rex, mode == CpuMode::Bits64)?;
            mem = m.mem;
            if m.md == 3 || m.reg != 0 {
                return Err(DecodeError::Unsupported(b));
            }
            let size = if b == 0xc6 { 1 } else { op_size };
            let imm_len = usize::from(size.min(4));
            let mut imm = c.imm(imm_len)?;
            if size == 8 && imm & (1 << 31) != 0 {
                imm |= 0xffff_ffff_0000_0000;
            }
            Op::Store { size, src: Source::Imm(imm) }
        }
        0xa0..=0xa3 => {
            // MOV with a memory offset ("moffs"): the address is the
            // displacement.
            let disp = c.imm(usize::from(addr_size))?;
            mem = Some(MemOperand { disp: disp as i64, ..MemOperand::default() });
            let size = if b & 1 == 0 { 1 } else { op_size };
            if b < 0xa2 {
                Op::Load { size, dst: acc, dst_size: size, extend: Extend::None }
            } else {
                Op::Store { size, src: Source::Reg(acc) }
            }
        }
        0xf4 => Op::Other(Opcode::Hlt),
        0x6c..=0x6f => Op::Other(Opcode::StringIo),
        0x0f => {
            let b2 = c.next()?;
            match b2 {
                0xa2 => Op::Other(Opcode::Cpuid),
                0x30 => Op::Other(Opcode::Wrmsr),
                0x32 => Op::Other(Opcode::Rdmsr),
                0x08 => Op::Other(Opcode::Invd),
                0x09 => Op::Other(Opcode::Wbinvd),
                0x06 => Op::Other(Opcode::Clts),
                0x00 => {
                    let m = modrm(&mut c, addr_size, rex, mode == CpuMode::Bits64)?;
                    if m.reg != 3 {
                        return Err(DecodeError::Unsupported(b));
                    }
                    mem = m.mem;
                    Op::Ltr { gpr: (m.md == 3).then_some(Gpr::from_encoding(m.rm)) }
                }
                0x20 | 0x22 => {
                    // The r/m field names a register whatever the mod bits say.
                    let m = c.next()?;
                    let cr = ((m >> 3) & 7) | (rex_r << 3);
                    Op::MovCr { write: b2 == 0x22, cr, gpr: Gpr::from_encoding((m & 7) | (rex_b << 3)) }
                }
                0x21 | 0x23 => {
                    let m = c.next()?;
                    Op::MovDr { write: b2 == 0x23, dr: (m >> 3) & 7, gpr: Gpr::from_encoding((m & 7) | (rex_b << 3)) }
                }
                0x01 => match c.next()? {
                    0xd9 => Op::Other(Opcode::Vmmcall),
                    0xd1 => Op::Other(Opcode::Xsetbv),
                    m if m >> 6 == 3 && (m >> 3) & 7 == 6 => Op::Lmsw { gpr: Gpr::from_encoding((m & 7) | (rex_b << 3)) },
                    m if m >> 6 == 3 && (m >> 3) & 7 == 4 => Op::Smsw { gpr: Gpr::from_encoding((m & 7) | (rex_b << 3)) },
                    m if m >> 6 != 3 && (m >> 3) & 7 == 7 => {
                        // INVLPG m: re-read the ModRM byte with its operand.
                        c.pos -= 1;
                        mem = modrm(&mut c, addr_size, rex, mode == CpuMode::Bits64)?.mem;
                        Op::Other(Opcode::Invlpg)
                    }
                    _ => return Err(DecodeError::Unsupported(b)),
                },
                // BT/BTS/BTR/BTC r/m, r.
                0xa3 | 0xab | 0xb3 | 0xbb => {
                    let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
                    mem = m.mem;
                    let op = match b2 {
                        0xa3 => BitOp::Test,
                        0xab => BitOp::Set,
                        0xb3 => BitOp::Reset,
                        _ => BitOp::Complement,
                    };
                    Op::Bit { op, size: op_size, offset: Source::Reg(gpr(m.reg, false)) }
                }
                // BT/BTS/BTR/BTC r/m, imm8 (group 8, /4-/7).
                0xba => {
                    let m = modrm(&mut c, addr_size, rex, long)?;
                    mem = m.mem;
                    if m.md == 3 || m.reg < 4 {
                        return Err(DecodeError::Unsupported(b));
                    }
                    let op = match m.reg {
                        4 => BitOp::Test,
                        5 => BitOp::Set,
                        6 => BitOp::Reset,
                        _ => BitOp::Complement,
                    };
                    Op::Bit { op, size: op_size, offset: Source::Imm(c.imm(1)?) }
                }
                0xb6 | 0xb7 | 0xbe | 0xbf => {
                    let m = memory_modrm(&mut c, addr_size, rex, long, b)?;
                    mem = m.mem;
                    let size = if b2 & 1 == 0 { 1 } else { 2 };
                    let extend = if b2 < 0xb8 { Extend::Zero } else { Extend::Sign };
                    Op::Load { size, dst: gpr(m.reg, false), dst_size: op_size, extend }
                }
                _ => return Err(DecodeError::Unsupported(b)),
            }
        }
        _ => return Err(DecodeError::Unsupported(b)),
    };
    Ok(Insn { len: c.pos as u8, op, addr_size, op_size, seg, rep, mem })
}

/// Writes `value` (already `size` bytes, extended as the instruction says)
/// into a register whose current contents are `old`, with x86's rules: a
/// 32-bit write clears bits 32-63, 8- and 16-bit writes keep the rest.
pub fn merge_reg(old: u64, value: u64, dst: Reg, dst_size: u8) -> u64 {
    match (dst_size, dst.high_byte) {
        (1, true) => (old & !0xff00) | ((value & 0xff) << 8),
        (1, false) => (old & !0xff) | (value & 0xff),
        (2, _) => (old & !0xffff) | (value & 0xffff),
        (4, _) => value & 0xffff_ffff,
        _ => value,
    }
}

/// Extends a `size`-byte value loaded from memory to `dst_size` bytes.
pub fn extend(value: u64, size: u8, dst_size: u8, how: Extend) -> u64 {
    let bits = u32::from(size) * 8;
    let v = if bits >= 64 { value } else { value & ((1u64 << bits) - 1) };
    let v = match how {
        Extend::Sign if bits < 64 => (((v << (64 - bits)) as i64) >> (64 - bits)) as u64,
        _ => v,
    };
    let dbits = u32::from(dst_size) * 8;
    if dbits >= 64 {
        v
    } else {
        v & ((1u64 << dbits) - 1)
    }
}

/// The value a store writes, `size` bytes of a register or an immediate.
pub fn store_value(src: Source, size: u8, mut read_gpr: impl FnMut(Gpr) -> u64) -> u64 {
    let v = match src {
        Source::Imm(i) => i,
        Source::Reg(r) if r.high_byte => read_gpr(r.gpr) >> 8,
        Source::Reg(r) => read_gpr(r.gpr),
    };
    extend(v, size, size, Extend::None)
}

/// The mask of a `size`-byte value.
const fn width_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size as u32)) - 1
    }
}

/// SF, ZF and PF of a `size`-byte result.
fn result_flags(res: u64, size: u8) -> u64 {
    let sign = 1u64 << (8 * u32::from(size) - 1);
    let mut f = 0;
    if res & sign != 0 {
        f |= rflags::SF;
    }
    if res == 0 {
        f |= rflags::ZF;
    }
    // PF: an even number of ones in the low byte.
    if (res as u8).count_ones() % 2 == 0 {
        f |= rflags::PF;
    }
    f
}

/// `a op b` on `size`-byte operands, with the carry flag `cf` going in
/// (ADC, SBB): the result and the status flags (`rflags::STATUS` bits) it
/// leaves. AF is cleared by the logic instructions, whose AF is undefined.
pub fn alu(op: AluOp, size: u8, a: u64, b: u64, cf: bool) -> (u64, u64) {
    let m = width_mask(size);
    let (a, b, c) = (a & m, b & m, u64::from(cf));
    let sign = 1u64 << (8 * u32::from(size) - 1);
    let (res, carry, overflow) = match op {
        AluOp::Add | AluOp::Adc => {
            let c = if op == AluOp::Adc { c } else { 0 };
            let wide = u128::from(a) + u128::from(b) + u128::from(c);
            let res = wide as u64 & m;
            (res, wide > u128::from(m), (a ^ res) & (b ^ res) & sign != 0)
        }
        AluOp::Sub | AluOp::Sbb | AluOp::Cmp => {
            let c = if op == AluOp::Sbb { c } else { 0 };
            let res = a.wrapping_sub(b).wrapping_sub(c) & m;
            (res, u128::from(a) < u128::from(b) + u128::from(c), (a ^ b) & (a ^ res) & sign != 0)
        }
        AluOp::Or => (a | b, false, false),
        AluOp::And | AluOp::Test => (a & b, false, false),
        AluOp::Xor => (a ^ b, false, false),
    };
    let mut f = result_flags(res, size);
    if carry {
        f |= rflags::CF;
    }
    if overflow {
        f |= rflags::OF;
    }
    let arith = !matches!(op, AluOp::Or | AluOp::And | AluOp::Test | AluOp::Xor);
    if arith && (a ^ b ^ res) & 0x10 != 0 {
        f |= rflags::AF;
    }
    (res, f)
}

/// BT/BTS/BTR/BTC of bit `offset` (modulo the operand's width) in the
/// `size`-byte `value`: the value to write back and the bit's old state
/// (CF).
pub fn bit(op: BitOp, size: u8, value: u64, offset: u64) -> (u64, bool) {
    let n = offset % (8 * u64::from(size));
    let mask = 1u64 << n;
    let old = value & mask != 0;
    let new = match op {
        BitOp::Test => value,
        BitOp::Set => value | mask,
        BitOp::Reset => value & !mask,
        BitOp::Complement => value ^ mask,
    };
    (new & width_mask(size), old)
}

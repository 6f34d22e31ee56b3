// SPDX-License-Identifier: GPL-2.0

//! A tiny x86 encoder for the guest fuzzer: just the instruction forms
//! its snippets use, in 32-bit protected mode and 64-bit long mode.
//!
//! Memory operands are absolute (`[disp32]`, encoded with a SIB byte so
//! that the same bytes mean an absolute address in both modes, never
//! RIP-relative).

/// General registers by their encoding.
pub const EAX: u8 = 0;
pub const ECX: u8 = 1;
pub const EDX: u8 = 2;
pub const EBX: u8 = 3;
pub const ESP: u8 = 4;
pub const ESI: u8 = 6;
pub const EDI: u8 = 7;

/// Segment registers by their encoding in MOV Sreg.
pub const ES: u8 = 0;
pub const CS: u8 = 1;
pub const SS: u8 = 2;
pub const DS: u8 = 3;
pub const FS: u8 = 4;
pub const GS: u8 = 5;

/// Machine code being assembled at a known guest address.
pub struct Asm {
    /// The bytes so far.
    pub code: Vec<u8>,
    /// The guest address of `code[0]`.
    pub base: u64,
    /// 64-bit mode encodings (REX.W where a 64-bit operand is meant).
    pub long: bool,
}

#[allow(dead_code)]
impl Asm {
    pub fn new(base: u64, long: bool) -> Self {
        Self { code: Vec::new(), base, long }
    }

    /// The guest address of the next byte.
    pub fn here(&self) -> u64 {
        self.base + self.code.len() as u64
    }

    pub fn b(&mut self, bytes: &[u8]) {
        self.code.extend_from_slice(bytes);
    }

    pub fn u16(&mut self, v: u16) {
        self.b(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.b(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.b(&v.to_le_bytes());
    }

    /// Overwrites the doubleword at guest address `at`.
    pub fn patch32(&mut self, at: u64, v: u32) {
        let i = (at - self.base) as usize;
        self.code[i..i + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// REX.W in 64-bit mode, nothing otherwise.
    pub fn w(&mut self) {
        if self.long {
            self.b(&[0x48]);
        }
    }

    /// ModRM + SIB for the absolute address `addr` with `reg` in ModRM.reg.
    pub fn abs(&mut self, reg: u8, addr: u32) {
        self.b(&[(reg & 7) << 3 | 4, 0x25]);
        self.u32(addr);
    }

    /// MOV r32, imm32 (zero-extends in 64-bit mode).
    pub fn mov_r32(&mut self, r: u8, v: u32) {
        self.b(&[0xb8 + r]);
        self.u32(v);
    }

    /// MOV r64, imm64 in 64-bit mode; MOV r32, low half otherwise.
    pub fn mov_r64(&mut self, r: u8, v: u64) {
        if self.long {
            if v >> 32 == 0 {
                self.mov_r32(r, v as u32);
            } else {
                self.b(&[0x48, 0xb8 + r]);
                self.u64(v);
            }
        } else {
            self.mov_r32(r, v as u32);
        }
    }

    /// MOV dword [addr], imm32.
    pub fn store32(&mut self, addr: u32, v: u32) {
        self.b(&[0xc7]);
        self.abs(0, addr);
        self.u32(v);
    }

    /// MOV word [addr], imm16.
    pub fn store16(&mut self, addr: u32, v: u16) {
        self.b(&[0x66, 0xc7]);
        self.abs(0, addr);
        self.u16(v);
    }

    /// Stores the 8 bytes `v` at `addr` with two doubleword stores.
    pub fn store64(&mut self, addr: u32, v: u64) {
        self.store32(addr, v as u32);
        self.store32(addr + 4, (v >> 32) as u32);
    }

    /// MOV r32, [addr].
    pub fn load32(&mut self, r: u8, addr: u32) {
        self.b(&[0x8b]);
        self.abs(r, addr);
    }

    /// MOV [addr], r32.
    pub fn save32(&mut self, addr: u32, r: u8) {
        self.b(&[0x89]);
        self.abs(r, addr);
    }

    /// JMP rel32 to `target`.
    pub fn jmp(&mut self, target: u64) {
        self.b(&[0xe9]);
        let rel = target.wrapping_sub(self.here() + 4) as u32;
        self.u32(rel);
    }

    /// Jcc rel32 (`cc` is the low nibble of the 0F 8x opcode).
    pub fn jcc(&mut self, cc: u8, target: u64) {
        self.b(&[0x0f, 0x80 | cc]);
        let rel = target.wrapping_sub(self.here() + 4) as u32;
        self.u32(rel);
    }

    /// MOV Sreg, AX after MOV EAX, sel.
    pub fn load_sreg(&mut self, sreg: u8, sel: u16) {
        self.mov_r32(EAX, u32::from(sel));
        self.b(&[0x8e, 0xc0 | sreg << 3]);
    }

    /// MOV CRn, rAX (CR8 with REX.R in 64-bit mode, LOCK MOV CR0 otherwise).
    pub fn mov_to_cr(&mut self, n: u8) {
        self.cr_op(0x22, n);
    }

    /// MOV rAX, CRn.
    pub fn mov_from_cr(&mut self, n: u8) {
        self.cr_op(0x20, n);
    }

    fn cr_op(&mut self, op: u8, n: u8) {
        if n >= 8 {
            if self.long {
                self.b(&[0x44]);
            } else {
                self.b(&[0xf0]);
            }
        }
        self.b(&[0x0f, op, 0xc0 | (n & 7) << 3]);
    }

    /// MOV DRn, rAX.
    pub fn mov_to_dr(&mut self, n: u8) {
        self.b(&[0x0f, 0x23, 0xc0 | (n & 7) << 3]);
    }

    /// MOV rAX, DRn.
    pub fn mov_from_dr(&mut self, n: u8) {
        self.b(&[0x0f, 0x21, 0xc0 | (n & 7) << 3]);
    }

    /// ECX = msr, EDX:EAX = v, WRMSR.
    pub fn wrmsr(&mut self, msr: u32, v: u64) {
        self.mov_r32(ECX, msr);
        self.mov_r32(EAX, v as u32);
        self.mov_r32(EDX, (v >> 32) as u32);
        self.b(&[0x0f, 0x30]);
    }

    /// ECX = msr, RDMSR.
    pub fn rdmsr(&mut self, msr: u32) {
        self.mov_r32(ECX, msr);
        self.b(&[0x0f, 0x32]);
    }

    /// A far pointer m16:32 at `ptr` to sel:off, then JMP FAR [ptr]
    /// (`call`: CALL FAR [ptr]). Returns where the offset is encoded.
    pub fn far_indirect(&mut self, ptr: u32, sel: u16, off: u32, call: bool) -> u64 {
        self.store32(ptr, off);
        let at = self.here() - 4;
        self.store16(ptr + 4, sel);
        self.b(&[0xff]);
        self.abs(if call { 3 } else { 5 }, ptr);
        at
    }

    /// JMP/CALL FAR sel:off: the direct form in 32-bit mode, the indirect
    /// one (there is no direct form) in 64-bit mode. Returns where the
    /// offset is encoded.
    pub fn far(&mut self, ptr: u32, sel: u16, off: u32, call: bool) -> u64 {
        if self.long {
            self.far_indirect(ptr, sel, off, call)
        } else {
            self.b(&[if call { 0x9a } else { 0xea }]);
            let at = self.here();
            self.u32(off);
            self.u16(sel);
            at
        }
    }

    /// A far JMP/CALL to sel:(the instruction after it).
    pub fn far_next(&mut self, ptr: u32, sel: u16, call: bool, indirect: bool) {
        let at = if indirect {
            self.far_indirect(ptr, sel, 0, call)
        } else {
            self.far(ptr, sel, 0, call)
        };
        let next = self.here() as u32;
        self.patch32(at, next);
    }

    /// PUSH imm32 (sign-extended to 64 bits in 64-bit mode).
    pub fn push_imm(&mut self, v: u32) {
        self.b(&[0x68]);
        self.u32(v);
    }

    /// IRET of the operand size of the mode.
    pub fn iret(&mut self) {
        self.w();
        self.b(&[0xcf]);
    }

    /// RETF of the operand size of the mode.
    pub fn retf(&mut self) {
        self.w();
        self.b(&[0xcb]);
    }

    /// LGDT/LIDT/SGDT/SIDT [addr]: `reg` 2, 3, 0, 1.
    pub fn dt_op(&mut self, reg: u8, addr: u32) {
        self.b(&[0x0f, 0x01]);
        self.abs(reg, addr);
    }

    /// Writes a pseudo-descriptor (limit, base) at `addr`.
    pub fn store_dtr(&mut self, addr: u32, limit: u16, base: u64) {
        self.store16(addr, limit);
        self.store32(addr + 2, base as u32);
        if self.long {
            self.store32(addr + 6, (base >> 32) as u32);
        }
    }

    /// MOV EDX, port (as DX).
    pub fn mov_dx(&mut self, port: u16) {
        self.mov_r32(EDX, u32::from(port));
    }
}

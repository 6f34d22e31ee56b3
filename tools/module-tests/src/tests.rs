// SPDX-License-Identifier: GPL-2.0

//! Tests of the module's pure logic against hand-checked values and, for
//! the page walker and the NPT builder, against simple reference models.

use crate::emulate::insn::{self, CpuMode, DecodeError, Extend, Gpr, Op, Opcode, Reg, Source};
use crate::emulate::walk::{self, Access, GuestPhys, PagingState, WalkError};
use crate::hw::vmcb::{Vmcb, VmcbControl, VmcbSave};
use crate::mm::npt::{self, Tables};
use crate::mm::shadow::{self, Fault, Format};
use crate::policy::{cpuid, msr};
use crate::uapi;
use proptest::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::mem::{offset_of, size_of};

#[test]
fn vmcb_layout_matches_apm_appendix_b() {
    assert_eq!(size_of::<Vmcb>(), 4096);
    assert_eq!(offset_of!(Vmcb, save), 0x400);
    assert_eq!(offset_of!(VmcbControl, exit_code), 0x70);
    assert_eq!(offset_of!(VmcbControl, nested_cr3), 0xb0);
    assert_eq!(offset_of!(VmcbControl, next_rip), 0xc8);
    assert_eq!(offset_of!(VmcbSave, efer), 0xd0);
    assert_eq!(offset_of!(VmcbSave, rip), 0x178);
    assert_eq!(offset_of!(VmcbSave, rax), 0x1f8);
    assert_eq!(offset_of!(VmcbSave, g_pat), 0x268);
}

fn gpr(i: u8) -> Reg {
    Reg { gpr: Gpr::from_encoding(i), high_byte: false }
}

#[test]
fn decodes_mmio_stores() {
    // mov [rdi], eax
    let i = insn::decode(&[0x89, 0x07], CpuMode::Bits64).unwrap();
    assert_eq!((i.len, i.op), (2, Op::Store { size: 4, src: Source::Reg(gpr(0)) }));
    // mov [rdi], rax
    let i = insn::decode(&[0x48, 0x89, 0x07], CpuMode::Bits64).unwrap();
    assert_eq!((i.len, i.op), (3, Op::Store { size: 8, src: Source::Reg(gpr(0)) }));
    // mov [r8+0x10], r9w
    let i = insn::decode(&[0x66, 0x45, 0x89, 0x48, 0x10], CpuMode::Bits64).unwrap();
    assert_eq!((i.len, i.op), (5, Op::Store { size: 2, src: Source::Reg(gpr(9)) }));
    // mov byte [ebx], ah (no REX: register 4 is AH)
    let i = insn::decode(&[0x88, 0x23], CpuMode::Bits32).unwrap();
    assert_eq!(i.op, Op::Store { size: 1, src: Source::Reg(Reg { gpr: Gpr::Rax, high_byte: true }) });
    // mov byte [rbx], spl (with REX: register 4 is SPL)
    let i = insn::decode(&[0x40, 0x88, 0x23], CpuMode::Bits64).unwrap();
    assert_eq!(i.op, Op::Store { size: 1, src: Source::Reg(gpr(4)) });
    // mov dword [0xd0000000], 0x12345678 (SIB, disp32, imm32)
    let i = insn::decode(&[0xc7, 0x04, 0x25, 0, 0, 0, 0xd0, 0x78, 0x56, 0x34, 0x12], CpuMode::Bits64).unwrap();
    assert_eq!((i.len, i.op), (11, Op::Store { size: 4, src: Source::Imm(0x1234_5678) }));
    // mov qword [rax], -1 (imm32 sign-extended)
    let i = insn::decode(&[0x48, 0xc7, 0x00, 0xff, 0xff, 0xff, 0xff], CpuMode::Bits64).unwrap();
    assert_eq!(i.op, Op::Store { size: 8, src: Source::Imm(u64::MAX) });
    // mov word [bx+si+0x1234], 0x55aa in 16-bit code
    let i = insn::decode(&[0xc7, 0x80, 0x34, 0x12, 0xaa, 0x55], CpuMode::Bits16).unwrap();
    assert_eq!((i.len, i.op), (6, Op::Store { size: 2, src: Source::Imm(0x55aa) }));
}

#[test]
fn decodes_mmio_loads() {
    // mov ecx, [rip+0x100]
    let i = insn::decode(&[0x8b, 0x0d, 0, 1, 0, 0], CpuMode::Bits64).unwrap();
    assert_eq!((i.len, i.op), (6, Op::Load { size: 4, dst: gpr(1), dst_size: 4, extend: Extend::None }));
    // movzx eax, byte [rsi]
    let i = insn::decode(&[0x0f, 0xb6, 0x06], CpuMode::Bits64).unwrap();
    assert_eq!(i.op, Op::Load { size: 1, dst: gpr(0), dst_size: 4, extend: Extend::Zero });
    // movsx r10, word [rsp+8] (REX.W, SIB, disp8)
    let i = insn::decode(&[0x4c, 0x0f, 0xbf, 0x54, 0x24, 0x08], CpuMode::Bits64).unwrap();
    assert_eq!((i.len, i.op), (6, Op::Load { size: 2, dst: gpr(10), dst_size: 8, extend: Extend::Sign }));
    // mov al, [moffs64]
    let i = insn::decode(&[0xa0, 1, 2, 3, 4, 5, 6, 7, 8], CpuMode::Bits64).unwrap();
    assert_eq!(i.len, 9);
    // mov eax, [moffs32] in 32-bit code
    let i = insn::decode(&[0xa1, 0, 0, 0, 0xd0], CpuMode::Bits32).unwrap();
    assert_eq!((i.len, i.op), (5, Op::Load { size: 4, dst: gpr(0), dst_size: 4, extend: Extend::None }));
}

#[test]
fn decodes_lengths_of_intercepted_instructions() {
    let cases: [(&[u8], Opcode, u8); 9] = [
        (&[0xf4], Opcode::Hlt, 1),
        (&[0x0f, 0xa2], Opcode::Cpuid, 2),
        (&[0x0f, 0x32], Opcode::Rdmsr, 2),
        (&[0x0f, 0x30], Opcode::Wrmsr, 2),
        (&[0x0f, 0x01, 0xd9], Opcode::Vmmcall, 3),
        (&[0x0f, 0x08], Opcode::Invd, 2),
        (&[0x0f, 0x09], Opcode::Wbinvd, 2),
        (&[0xf3, 0x6e], Opcode::StringIo, 2),
        (&[0x66, 0x67, 0xf3, 0x6d], Opcode::StringIo, 4),
    ];
    for (bytes, op, len) in cases {
        let i = insn::decode(bytes, CpuMode::Bits32).unwrap();
        assert_eq!((i.op, i.len), (Op::Other(op), len), "{bytes:x?}");
    }
    let i = insn::decode(&[0x67, 0xf3, 0x6e], CpuMode::Bits64).unwrap();
    assert_eq!((i.addr_size, i.rep), (4, true));
    let i = insn::decode(&[0x67, 0x6e], CpuMode::Bits16).unwrap();
    assert_eq!(i.addr_size, 4);
}

#[test]
fn decodes_ltr_from_a_register_or_memory() {
    let i = insn::decode(&[0x0f, 0x00, 0xd8], CpuMode::Bits32).unwrap();
    assert_eq!((i.op, i.len), (Op::Ltr { gpr: Some(Gpr::Rax) }, 3));
    let i = insn::decode(&[0x41, 0x0f, 0x00, 0xdb], CpuMode::Bits64).unwrap();
    assert_eq!(i.op, Op::Ltr { gpr: Some(Gpr::R11) });
    let i = insn::decode(&[0x0f, 0x00, 0x5b, 0x10], CpuMode::Bits32).unwrap();
    assert_eq!((i.op, i.len), (Op::Ltr { gpr: None }, 4));
    assert_eq!(i.mem.unwrap().effective_address(4, 0, |r| if r == Gpr::Rbx { 0x1000 } else { 0 }), 0x1010);
    // SLDT, STR, LLDT, VERR: not LTR.
    for reg in [0u8, 1, 2, 4] {
        assert!(insn::decode(&[0x0f, 0x00, 0xc0 | (reg << 3)], CpuMode::Bits32).is_err());
    }
}

#[test]
fn descriptors_decode_to_vmcb_attributes() {
    use crate::hw::seg::{self, attr, Descriptor};
    // An available 32-bit TSS at 0x12345678, limit 0x67, DPL 0.
    let d = Descriptor::from_bytes(0x1200_8934_5678_0067u64.to_le_bytes());
    assert_eq!((d.base(), d.limit(), d.attrib()), (0x1234_5678, 0x67, 0x89));
    assert!(d.is_system(attr::TSS_AVAILABLE) && d.present());
    assert_eq!(d.with_busy().attrib(), 0x8b);
    assert!(seg::is_tss(0x8b) && seg::is_tss(0x89) && !seg::is_tss(0x82) && !seg::is_tss(0x9b));
    // Flat 4 GiB code: G scales the limit; D/B and G land in bits 10-11.
    let code = Descriptor::from_bytes(0x00cf_9b00_0000_ffffu64.to_le_bytes());
    assert_eq!((code.base(), code.limit(), code.attrib()), (0, 0xffff_ffff, 0xc9b));
}

#[test]
fn decodes_invlpg_operands_to_effective_addresses() {
    let regs = |r: Gpr| [0x1000u64, 0, 0, 0x2000, 0x100, 0x3000, 0x10, 0x20][r as usize];
    let ea = |bytes: &[u8], mode| {
        let i = insn::decode(bytes, mode).unwrap();
        assert_eq!(i.op, Op::Other(Opcode::Invlpg), "{bytes:x?}");
        let m = i.mem.unwrap();
        (i.len, m.effective_address(i.addr_size, 0x50_0000, regs), m.stack_segment())
    };
    assert_eq!(ea(&[0x0f, 0x01, 0x38], CpuMode::Bits64), (3, 0x1000, false)); // [rax]
    assert_eq!(ea(&[0x0f, 0x01, 0x3d, 0x10, 0, 0, 0], CpuMode::Bits64), (7, 0x50_0010, false)); // [rip+0x10]
    assert_eq!(ea(&[0x0f, 0x01, 0x3c, 0x25, 0, 0xa0, 0, 0], CpuMode::Bits64), (8, 0xa000, false)); // [0xa000]
    assert_eq!(ea(&[0x0f, 0x01, 0x7c, 0xb3, 0x08], CpuMode::Bits32), (5, 0x2000 + 0x10 * 4 + 8, false)); // [ebx+esi*4+8]
    assert_eq!(ea(&[0x0f, 0x01, 0x7d, 0xf8], CpuMode::Bits32), (4, 0x3000 - 8, true)); // [ebp-8]
    assert_eq!(ea(&[0x0f, 0x01, 0x7b, 0x02], CpuMode::Bits16), (4, 0x3000 + 0x20 + 2, true)); // [bp+di+2]
    assert_eq!(ea(&[0x0f, 0x01, 0x3e, 0x34, 0x12], CpuMode::Bits16), (5, 0x1234, false)); // [0x1234]
}

#[test]
fn decodes_control_register_moves() {
    let i = insn::decode(&[0x0f, 0x22, 0xd8], CpuMode::Bits64).unwrap(); // mov cr3, rax
    assert_eq!((i.len, i.op), (3, Op::MovCr { write: true, cr: 3, gpr: Gpr::Rax }));
    let i = insn::decode(&[0x41, 0x0f, 0x20, 0xe1], CpuMode::Bits64).unwrap(); // mov r9, cr4
    assert_eq!(i.op, Op::MovCr { write: false, cr: 4, gpr: Gpr::R9 });
    let i = insn::decode(&[0x0f, 0x01, 0xf0], CpuMode::Bits16).unwrap(); // lmsw ax
    assert_eq!(i.op, Op::Lmsw { gpr: Gpr::Rax });
    assert_eq!(insn::decode(&[0x0f, 0x06], CpuMode::Bits32).unwrap().op, Op::Other(Opcode::Clts));
}

#[test]
fn refuses_what_it_does_not_emulate() {
    assert_eq!(insn::decode(&[0x89], CpuMode::Bits64), Err(DecodeError::Truncated));
    assert_eq!(insn::decode(&[0x89, 0xc0], CpuMode::Bits64), Err(DecodeError::Unsupported(0x89)));
    // NEG and register-only ALU forms are nothing device memory needs.
    assert_eq!(insn::decode(&[0xf7, 0x1f], CpuMode::Bits64), Err(DecodeError::Unsupported(0xf7)));
    assert_eq!(insn::decode(&[0x01, 0xc0], CpuMode::Bits64), Err(DecodeError::Unsupported(0x01)));
    assert_eq!(insn::decode(&[0x0f, 0xba, 0x1f, 1], CpuMode::Bits64), Err(DecodeError::Unsupported(0x0f)));
    assert_eq!(insn::decode(&[0x66; 16], CpuMode::Bits64), Err(DecodeError::TooLong));
}

#[test]
fn decodes_read_modify_write_and_compare_forms() {
    use insn::{AluOp, BitOp};
    let d = |b: &[u8]| insn::decode(b, CpuMode::Bits64).unwrap();
    // add [rdi], eax / or r8b, [rsi] / cmp [rbx+4], rcx
    assert_eq!(d(&[0x01, 0x07]).op, Op::Alu { op: AluOp::Add, size: 4, src: Source::Reg(gpr(0)), to_mem: true });
    assert_eq!(d(&[0x44, 0x0a, 0x06]).op, Op::Alu { op: AluOp::Or, size: 1, src: Source::Reg(gpr(8)), to_mem: false });
    let i = d(&[0x48, 0x39, 0x4b, 0x04]);
    assert_eq!((i.len, i.op), (4, Op::Alu { op: AluOp::Cmp, size: 8, src: Source::Reg(gpr(1)), to_mem: true }));
    // and dword [rdi], 0xfffffff0 (83 /4 ib, sign-extended); or qword [rdi], imm32
    assert_eq!(d(&[0x83, 0x27, 0xf0]).op, Op::Alu { op: AluOp::And, size: 4, src: Source::Imm(0xffff_fff0), to_mem: true });
    let i = d(&[0x48, 0x81, 0x0f, 0x00, 0x00, 0x00, 0x80]);
    assert_eq!((i.len, i.op), (7, Op::Alu { op: AluOp::Or, size: 8, src: Source::Imm(0xffff_ffff_8000_0000), to_mem: true }));
    // sub byte [rdi], 1 / xor word [rdi], ax
    assert_eq!(d(&[0x80, 0x2f, 0x01]).op, Op::Alu { op: AluOp::Sub, size: 1, src: Source::Imm(1), to_mem: true });
    assert_eq!(d(&[0x66, 0x31, 0x07]).op, Op::Alu { op: AluOp::Xor, size: 2, src: Source::Reg(gpr(0)), to_mem: true });
    // test [rdi], ah / test dword [rdi], 0x100
    assert_eq!(d(&[0x84, 0x27]).op, Op::Alu { op: AluOp::Test, size: 1, src: Source::Reg(Reg { gpr: Gpr::Rax, high_byte: true }), to_mem: true });
    assert_eq!(d(&[0xf7, 0x07, 0, 1, 0, 0]).op, Op::Alu { op: AluOp::Test, size: 4, src: Source::Imm(0x100), to_mem: true });
    // xchg [rdi], edx / bt [rdi], eax / bts dword [rdi], 5 / btr [rdi], rcx
    assert_eq!(d(&[0x87, 0x17]).op, Op::Xchg { size: 4, reg: gpr(2) });
    assert_eq!(d(&[0x0f, 0xa3, 0x07]).op, Op::Bit { op: BitOp::Test, size: 4, offset: Source::Reg(gpr(0)) });
    assert_eq!(d(&[0x0f, 0xba, 0x2f, 5]).op, Op::Bit { op: BitOp::Set, size: 4, offset: Source::Imm(5) });
    assert_eq!(d(&[0x48, 0x0f, 0xb3, 0x0f]).op, Op::Bit { op: BitOp::Reset, size: 8, offset: Source::Reg(gpr(1)) });
}

#[test]
fn decodes_string_moves_with_and_without_rep() {
    use insn::StrOp;
    let d = |b: &[u8]| insn::decode(b, CpuMode::Bits64).unwrap();
    let i = d(&[0xf3, 0xa4]);
    assert_eq!((i.len, i.op, i.rep), (2, Op::Str { op: StrOp::Movs, size: 1 }, true));
    let i = d(&[0xf3, 0x48, 0xab]);
    assert_eq!((i.op, i.rep), (Op::Str { op: StrOp::Stos, size: 8 }, true));
    let i = d(&[0xad]);
    assert_eq!((i.op, i.rep), (Op::Str { op: StrOp::Lods, size: 4 }, false));
    // F2 repeats MOVS as F3 does; a segment override applies to the source.
    let i = d(&[0xf2, 0x65, 0x66, 0xa5]);
    assert_eq!((i.op, i.rep, i.seg), (Op::Str { op: StrOp::Movs, size: 2 }, true, Some(insn::SegOverride::Gs)));
}

#[test]
fn alu_results_and_flags_follow_the_architecture() {
    use insn::AluOp::*;
    use crate::hw::cr::rflags::{AF, CF, OF, PF, SF, ZF};
    // 0x7f + 1 in a byte: signed overflow, AF, SF.
    assert_eq!(insn::alu(Add, 1, 0x7f, 1, false), (0x80, OF | AF | SF));
    // 0xff + 1: carry, zero, AF, PF.
    assert_eq!(insn::alu(Add, 1, 0xff, 1, false), (0, CF | ZF | AF | PF));
    // ADC counts the carry in.
    assert_eq!(insn::alu(Adc, 4, 0xffff_fffe, 1, true), (0, CF | ZF | AF | PF));
    // 0 - 1: borrow, sign, AF, PF; CMP computes the same without writing.
    assert_eq!(insn::alu(Sub, 2, 0, 1, false), (0xffff, CF | SF | AF | PF));
    assert_eq!(insn::alu(Cmp, 2, 0, 1, false).1, CF | SF | AF | PF);
    // 0x80000000 - 1: signed overflow.
    assert_eq!(insn::alu(Sub, 4, 0x8000_0000, 1, false), (0x7fff_ffff, OF | AF | PF));
    assert_eq!(insn::alu(Sbb, 8, 5, 5, true), (u64::MAX, CF | SF | AF | PF));
    // Logic clears CF and OF; TEST is AND without the result.
    assert_eq!(insn::alu(Or, 4, 0x10, 0x01, false), (0x11, PF));
    assert_eq!(insn::alu(Test, 4, 0xf0, 0x0f, false), (0, ZF | PF));
    assert_eq!(insn::alu(Xor, 8, u64::MAX, 1, false), (u64::MAX - 1, SF));
    // Operands are cut to their size.
    assert_eq!(insn::alu(And, 1, 0x1ff, 0xff, false), (0xff, SF | PF));
    assert_eq!(insn::bit(insn::BitOp::Set, 4, 0, 33), (2, false));
    assert_eq!(insn::bit(insn::BitOp::Complement, 2, 0x8000, 15), (0, true));
    assert_eq!(insn::bit(insn::BitOp::Test, 8, 1 << 63, 63), (1 << 63, true));
}

#[test]
fn merges_partial_registers_like_x86() {
    let old = 0x1122_3344_5566_7788;
    assert_eq!(insn::merge_reg(old, 0xaa, gpr(0), 1), 0x1122_3344_5566_77aa);
    assert_eq!(insn::merge_reg(old, 0xaa, Reg { gpr: Gpr::Rax, high_byte: true }, 1), 0x1122_3344_5566_aa88);
    assert_eq!(insn::merge_reg(old, 0xbbbb, gpr(0), 2), 0x1122_3344_5566_bbbb);
    assert_eq!(insn::merge_reg(old, 0xcccc_cccc, gpr(0), 4), 0xcccc_cccc);
    assert_eq!(insn::extend(0x80, 1, 8, Extend::Sign), 0xffff_ffff_ffff_ff80);
    assert_eq!(insn::extend(0x80, 1, 4, Extend::Sign), 0xffff_ff80);
    assert_eq!(insn::extend(0xff80, 2, 4, Extend::Zero), 0xff80);
}

/// Guest memory for the walker: a sparse map of 4 KiB pages.
#[derive(Default)]
struct FakeMem {
    pages: RefCell<HashMap<u64, [u8; 4096]>>,
    limit: u64,
}

impl FakeMem {
    fn new(limit: u64) -> Self {
        FakeMem { pages: RefCell::default(), limit }
    }
    fn write64(&self, gpa: u64, v: u64) {
        let mut p = self.pages.borrow_mut();
        let page = p.entry(gpa & !4095).or_insert([0; 4096]);
        page[(gpa & 4095) as usize..][..8].copy_from_slice(&v.to_le_bytes());
    }
    fn write32(&self, gpa: u64, v: u32) {
        let mut p = self.pages.borrow_mut();
        let page = p.entry(gpa & !4095).or_insert([0; 4096]);
        page[(gpa & 4095) as usize..][..4].copy_from_slice(&v.to_le_bytes());
    }
    fn read64(&self, gpa: u64) -> u64 {
        let p = self.pages.borrow();
        p.get(&(gpa & !4095)).map_or(0, |page| {
            u64::from_le_bytes(page[(gpa & 4095) as usize..][..8].try_into().unwrap())
        })
    }
}

impl GuestPhys for FakeMem {
    fn read_pte(&self, gpa: u64, wide: bool) -> Option<u64> {
        if gpa >= self.limit {
            return None;
        }
        let v = self.read64(gpa);
        Some(if wide { v } else { v & 0xffff_ffff })
    }
    fn set_pte_bits(&self, gpa: u64, wide: bool, bits: u64) -> bool {
        if gpa >= self.limit {
            return false;
        }
        let v = self.read64(gpa);
        if wide {
            self.write64(gpa, v | bits);
        } else {
            self.write32(gpa, (v as u32) | bits as u32);
        }
        true
    }
}

// Short names for the bits the walker tests combine, from `hw/`.
use crate::hw::cr::cr0::{PG, WP};
use crate::hw::cr::cr4::{PAE, PSE};
use crate::hw::paging::{PTE_A as A, PTE_D as D, PTE_P as P, PTE_PS as PS, PTE_RW as RW, PTE_US as US};
use crate::hw::svm::efer::NXE;
/// Long mode active, as EFER holds it: LME and LMA.
const LMA: u64 = crate::hw::svm::efer::LME | crate::hw::svm::efer::LMA;

fn long_mode() -> PagingState {
    PagingState { cr0: PG | WP | 1, cr3: 0x1000, cr4: PAE, efer: LMA | NXE, maxphyaddr: 40 }
}

#[test]
fn walks_long_mode_tables_and_sets_accessed_and_dirty() {
    let m = FakeMem::new(1 << 30);
    m.write64(0x1000, 0x2000 | P | RW | US);
    m.write64(0x2000, 0x3000 | P | RW | US);
    m.write64(0x3000 + 8, 0x4000 | P | RW | US); // 2 MiB slot 1
    m.write64(0x4000 + 5 * 8, 0x9000 | P | RW | US);
    let la = (1 << 21) | (5 << 12) | 0x123;
    let r = walk::translate(&m, &long_mode(), la, Access { write: true, ..Default::default() });
    assert_eq!(r, Ok(0x9123));
    assert_eq!(m.read64(0x1000) & A, A);
    assert_eq!(m.read64(0x4000 + 5 * 8) & (A | D), A | D);
    assert_eq!(m.read64(0x3000 + 8) & D, 0, "D is set only in the leaf");
}

#[test]
fn faults_like_the_processor() {
    let m = FakeMem::new(1 << 30);
    m.write64(0x1000, 0x2000 | P | RW | US);
    m.write64(0x2000, 0x3000 | P | RW | US);
    m.write64(0x3000, 0x20_0000 | P | PS | US); // read-only 2 MiB page
    m.write64(0x3000 + 8, 0x40_0000 | P | RW | PS | (1 << 63)); // supervisor, NX
    let st = long_mode();
    let w = Access { write: true, ..Default::default() };
    assert_eq!(walk::translate(&m, &st, 0x1000, w), Err(WalkError::PageFault(0b11)));
    let no_wp = PagingState { cr0: PG | 1, ..st };
    assert_eq!(walk::translate(&m, &no_wp, 0x1000, w), Ok(0x20_1000));
    let user = Access { user: true, ..Default::default() };
    assert_eq!(walk::translate(&m, &st, 0x20_0000, user), Err(WalkError::PageFault(0b101)));
    let fetch = Access { fetch: true, ..Default::default() };
    assert_eq!(walk::translate(&m, &st, 0x20_0000, fetch), Err(WalkError::PageFault(0b10001)));
    assert_eq!(walk::translate(&m, &st, 0x60_0000, Access::default()), Err(WalkError::PageFault(0)));
    let st_no_nxe = PagingState { efer: LMA, ..st };
    assert_eq!(
        walk::translate(&m, &st_no_nxe, 0x20_0000, Access::default()),
        Err(WalkError::PageFault(0b1001)),
        "NX with EFER.NXE clear is a reserved bit"
    );
}

#[test]
fn reserved_bits_in_large_pages_fault() {
    let m = FakeMem::new(1 << 30);
    m.write64(0x1000, 0x2000 | P | RW | US);
    m.write64(0x2000, 0x3000 | P | RW | US);
    m.write64(0x3000, 0x20_0000 | P | RW | PS | (1 << 13)); // 2 MiB page, bit 13 set
    m.write64(0x3000 + 8, 0x40_0000 | P | RW | PS | (1 << 12)); // PAT bit: fine
    let st = long_mode();
    assert_eq!(walk::translate(&m, &st, 0x1000, Access::default()), Err(WalkError::PageFault(0b1001)));
    assert_eq!(walk::translate(&m, &st, 0x20_1000, Access::default()), Ok(0x40_1000));
    // An address bit above the guest's MAXPHYADDR (40 here) is reserved.
    m.write64(0x3000 + 16, (1 << 45) | 0x60_0000 | P | RW | PS);
    assert_eq!(walk::translate(&m, &st, 0x40_0000, Access::default()), Err(WalkError::PageFault(0b1001)));
}

#[test]
fn walks_two_level_tables_with_pse_and_pae() {
    let m = FakeMem::new(1 << 30);
    // 32-bit: PDE 1 is a 4 MiB page at 0x800000, PDE 0 points to a table.
    m.write32(0x1000 + 4, (0x80_0000 | P | RW | PS) as u32);
    m.write32(0x1000, (0x5000 | P | RW) as u32);
    m.write32(0x5000 + 3 * 4, (0x7000 | P | RW) as u32);
    let st = PagingState { cr0: PG | 1, cr3: 0x1000, cr4: PSE, efer: 0, maxphyaddr: 0 };
    assert_eq!(walk::translate(&m, &st, 0x40_1234, Access::default()), Ok(0x80_1234));
    assert_eq!(walk::translate(&m, &st, 0x3abc, Access::default()), Ok(0x7abc));
    // PAE: four PDPTEs at CR3.
    m.write64(0x6000 + 8, 0x8000 | P);
    m.write64(0x8000 + 2 * 8, 0xa000 | P | RW);
    m.write64(0xa000 + 7 * 8, 0xb000 | P | RW);
    let pae = PagingState { cr0: PG | 1, cr3: 0x6000, cr4: PAE, efer: 0, maxphyaddr: 0 };
    let la = (1 << 30) | (2 << 21) | (7 << 12) | 0x42;
    assert_eq!(walk::translate(&m, &pae, la, Access::default()), Ok(0xb042));
    let off = PagingState { cr0: 1, ..pae };
    assert_eq!(walk::translate(&m, &off, 0x1234_5678, Access::default()), Ok(0x1234_5678));
}

#[test]
fn reports_tables_outside_ram() {
    let m = FakeMem::new(0x10000);
    m.write64(0x1000, 0x100_0000 | P | RW);
    assert_eq!(
        walk::translate(&m, &long_mode(), 0, Access::default()),
        Err(WalkError::TableNotInRam(0x100_0000))
    );
}

/// Page tables for the NPT builder: a map from address to table.
#[derive(Default)]
struct FakeTables {
    tables: HashMap<u64, [u64; 512]>,
    next: u64,
    budget: usize,
}

impl Tables for FakeTables {
    fn alloc(&mut self) -> Option<u64> {
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        self.next += 4096;
        self.tables.insert(self.next, [0; 512]);
        Some(self.next)
    }
    fn read(&self, table: u64, index: usize) -> u64 {
        self.tables[&table][index]
    }
    fn write(&mut self, table: u64, index: usize, entry: u64) {
        self.tables.get_mut(&table).unwrap()[index] = entry;
    }
}

fn fake_tables(budget: usize) -> (FakeTables, u64) {
    let mut t = FakeTables { next: 0x100_0000, budget, ..Default::default() };
    let root = t.alloc().unwrap();
    (t, root)
}

#[test]
fn npt_uses_large_pages_only_where_contiguous_and_aligned() {
    let (mut t, root) = fake_tables(100);
    // 4 MiB of guest memory: the first 2 MiB contiguous and aligned in the
    // host, the second scattered.
    let hpa = |i: usize| if i < 512 { 0x4000_0000 + i as u64 * 4096 } else { 0x8000_0000 + (i as u64 * 7919 % 4096) * 4096 };
    let large = npt::map_range(&mut t, root, 0, 1024, hpa).unwrap();
    assert_eq!(large, 1);
    for i in [0usize, 1, 511, 512, 700, 1023] {
        assert_eq!(npt::translate(&t, root, i as u64 * 4096 + 5), Some(hpa(i) + 5), "page {i}");
    }
    assert_eq!(npt::translate(&t, root, 1024 * 4096), None);
    assert_eq!(npt::map_page(&mut t, root, 4096, 0, 4096), Err(npt::MapError::Overlap));
    assert_eq!(npt::map_page(&mut t, root, 0x1000, 0, 2 << 20), Err(npt::MapError::Misaligned));
}

#[test]
fn npt_reports_running_out_of_tables() {
    let (mut t, root) = fake_tables(2);
    assert_eq!(npt::map_page(&mut t, root, 0, 0, 4096), Err(npt::MapError::NoMemory));
}

proptest! {
    /// Whatever pages are mapped, translation finds exactly them.
    #[test]
    fn npt_translation_matches_a_reference_map(pages in proptest::collection::btree_map(0u64..4096, 0u64..1 << 20, 1..64)) {
        let (mut t, root) = fake_tables(10_000);
        for (&g, &h) in &pages {
            npt::map_page(&mut t, root, g << 12, h << 12, 4096).unwrap();
        }
        for g in 0..4096u64 {
            let want = pages.get(&g).map(|h| (h << 12) | 0x7);
            prop_assert_eq!(npt::translate(&t, root, (g << 12) | 0x7), want);
        }
    }

    /// The walker agrees with a reference walker on random 4-level tables.
    #[test]
    fn walker_matches_reference(entries in proptest::collection::vec((0u64..8, any::<bool>(), any::<bool>(), any::<bool>()), 4),
                                write in any::<bool>(), user in any::<bool>(), wp in any::<bool>()) {
        let m = FakeMem::new(1 << 30);
        // A chain of four tables at 0x1000.. mapping linear 0 to 0x9000,
        // with random permission bits at each level.
        let mut ok_user = true;
        let mut ok_write = true;
        let mut present = true;
        for (lvl, &(_, p, rw, us)) in entries.iter().enumerate() {
            let next = if lvl == 3 { 0x9000 } else { 0x2000 + lvl as u64 * 0x1000 };
            let e = next | if p { P } else { 0 } | if rw { RW } else { 0 } | if us { US } else { 0 };
            m.write64(0x1000 + lvl as u64 * 0x1000, e);
            if present {
                present = p;
                ok_user &= us;
                ok_write &= rw;
            }
        }
        let st = PagingState { cr0: PG | 1 | if wp { WP } else { 0 }, ..long_mode() };
        let r = walk::translate(&m, &st, 0x10, Access { write, user, fetch: false });
        let expect = if !present {
            Err(WalkError::PageFault((write as u32) << 1 | (user as u32) << 2))
        } else if (user && !ok_user) || (write && !ok_write && (user || wp)) {
            Err(WalkError::PageFault(1 | (write as u32) << 1 | (user as u32) << 2))
        } else {
            Ok(0x9010)
        };
        prop_assert_eq!(r, expect);
    }
}

fn fake_host(leaf: u32, _sub: u32) -> cpuid::Regs {
    match leaf {
        0 => [0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65],
        1 => [0x0080_0f12, 0x0102_0800, 0xffff_ffff, 0xffff_ffff],
        7 => [0, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff],
        0x8000_0000 => [0x8000_0020, 0, 0, 0],
        0x8000_0001 => [0, 0, 0xffff_ffff, 0xffff_ffff],
        0x8000_0008 => [0x3030, 0xffff, 0xffff, 0],
        _ => [0xdead_beef; 4],
    }
}

#[test]
fn arat_comes_with_the_in_kernel_apic() {
    let plain = cpuid::GuestKind::default();
    assert_eq!(cpuid::guest_cpuid(6, 0, plain, fake_host), [0; 4]);
    let lapic = cpuid::GuestKind { lapic: true, ..plain };
    assert_eq!(cpuid::guest_cpuid(6, 0, lapic, fake_host), [1 << 2, 0, 0, 0]);
}

#[test]
fn cpuid_shows_the_hypervisor_and_hides_svm() {
    let npt = cpuid::GuestKind::default();
    let l1 = cpuid::guest_cpuid(1, 0, cpuid::GuestKind { vcpu_id: 3, shadow: false, lapic: false, tsc_deadline: false }, fake_host);
    assert_ne!(l1[2] & (1 << 31), 0, "hypervisor bit");
    assert_eq!(l1[2] & ((1 << 5) | (1 << 26) | (1 << 27) | (1 << 28) | (1 << 17) | (1 << 21)), 0, "VMX, XSAVE, OSXSAVE, AVX, PCID, x2APIC hidden");
    assert_eq!(l1[3] & (1 << 9), 0, "no APIC");
    assert_eq!(l1[1] >> 24, 3, "APIC id is the vCPU id");
    let e1 = cpuid::guest_cpuid(0x8000_0001, 0, npt, fake_host);
    assert_eq!(e1[2] & (1 << 2), 0, "SVM hidden");
    assert_eq!(e1[3] & (1 << 27), 0, "RDTSCP hidden");
    assert_ne!(e1[3] & (1 << 29), 0, "long mode shown");
    assert_eq!(cpuid::guest_cpuid(0x8000_000a, 0, npt, fake_host), [0; 4]);
    let sig = cpuid::guest_cpuid(0x4000_0000, 0, npt, fake_host);
    let mut s = Vec::new();
    for r in &sig[1..] {
        s.extend_from_slice(&r.to_le_bytes());
    }
    assert_eq!(&s, b"PacificaSVM\0");
    assert_eq!(cpuid::guest_cpuid(0, 0, npt, fake_host)[0], 0xd);
    assert_eq!(cpuid::guest_cpuid(7, 0, npt, fake_host)[2] & (1 << 16), 0, "LA57 hidden");
    assert_eq!(cpuid::guest_cpuid(0x8000_0000, 0, npt, fake_host)[0], 0x8000_0008);
    assert_ne!(cpuid::guest_cpuid(7, 0, npt, fake_host)[1] & (1 << 7), 0, "SMEP under NPT");
    let shadow = cpuid::GuestKind { shadow: true, ..npt };
    assert_eq!(cpuid::guest_cpuid(7, 0, shadow, fake_host)[1] & ((1 << 7) | (1 << 20)), 0, "no SMEP/SMAP under shadow");
}

#[test]
fn msr_permission_map_passes_through_only_vmcb_msrs() {
    let mut map = vec![0u8; msr::MSRPM_SIZE];
    msr::fill_permission_map(&mut map);
    let intercepted = |m: u32| {
        let bit = msr::msrpm_bit(m).unwrap();
        (map[bit / 8] >> (bit % 8)) & 3
    };
    assert_eq!(intercepted(msr::nr::LSTAR), 2, "LSTAR writes are checked, reads are free");
    assert_eq!(intercepted(msr::nr::SYSENTER_EIP), 0);
    assert_eq!(intercepted(msr::nr::STAR), 0);
    assert_eq!(intercepted(msr::nr::EFER), 3);
    assert_eq!(intercepted(msr::nr::VM_HSAVE_PA), 3);
    assert_eq!(intercepted(msr::nr::TSC), 3);
    assert_eq!(msr::msrpm_bit(0x4000_0000), None);
    assert_eq!(msr::msrpm_bit(0xc000_0080), Some(0x800 * 8 + 0x80 * 2));
}

#[test]
fn msr_policy_emulates_efer_pat_tsc_and_refuses_the_rest() {
    let (mut efer, mut pat, mut off) = (0x1000u64 /* SVME */, 0x0007_0406_0007_0406u64, 0u64);
    let mut b = [0u64; 5];
    let [b0, b1, b2, b3, b4] = &mut b;
    let mut st = msr::MsrState {
        efer: &mut efer,
        cr0: 0x11,
        g_pat: &mut pat,
        tsc_offset: &mut off,
        host_tsc: 1000,
        bases: [b0, b1, b2, b3, b4],
    };
    assert_eq!(msr::read(msr::nr::EFER, &st), Some(0), "SVME is invisible");
    assert!(msr::write(msr::nr::EFER, 0x901, &mut st), "SCE|LME|NXE");
    assert_eq!(msr::read(msr::nr::EFER, &st), Some(0x901));
    assert!(!msr::write(msr::nr::EFER, 0x1000, &mut st), "SVME is reserved for the guest");
    assert!(!msr::write(msr::nr::EFER, 1 << 20, &mut st));
    assert!(!msr::write(msr::nr::PAT, 0x02, &mut st), "PAT type 2 is reserved");
    assert!(msr::write(msr::nr::PAT, 0x0606_0606_0606_0606, &mut st));
    assert!(msr::write(msr::nr::TSC, 5000, &mut st));
    assert_eq!(msr::read(msr::nr::TSC, &st), Some(5000));
    assert_eq!(msr::read(msr::nr::VM_CR, &st), None);
    assert!(!msr::write(msr::nr::VM_HSAVE_PA, 0, &mut st));
    assert_eq!(*st.efer & 0x1000, 0x1000, "SVME kept in the VMCB");
    assert!(!msr::write(msr::nr::LSTAR, 0x0000_8000_0000_0000, &mut st), "non-canonical LSTAR");
    assert!(msr::write(msr::nr::LSTAR, 0xffff_8000_0000_1000, &mut st));
    assert_eq!(msr::read(msr::nr::LSTAR, &st), Some(0xffff_8000_0000_1000));
    st.cr0 = 1 << 31 | 1;
    assert!(!msr::write(msr::nr::EFER, 0x801, &mut st), "LME cannot change while paging");
}

#[test]
fn uapi_ioctl_numbers_are_stable() {
    assert_eq!(uapi::PACIFICA_GET_API_VERSION, 0xaf00);
    assert_eq!(uapi::PACIFICA_CREATE_VM, 0xaf02);
    assert_eq!(uapi::PACIFICA_RUN, 0xaf20);
    assert_eq!(uapi::PACIFICA_GET_REGS, 0x8000_0000 | (144 << 16) | 0xaf21);
    assert_eq!(uapi::PACIFICA_SET_MEMORY_REGION, 0x4000_0000 | (32 << 16) | 0xaf10);
}

/// One root's tracking sets, for the shadow tests.
#[derive(Default)]
struct Track {
    protected: std::collections::BTreeSet<u64>,
    writable: std::collections::BTreeSet<u64>,
    exempt: std::collections::BTreeSet<u64>,
}

impl shadow::Tracker for Track {
    fn writable(&self, gfn: u64) -> bool {
        self.writable.contains(&gfn)
    }
    fn protected(&self, gfn: u64) -> bool {
        self.protected.contains(&gfn)
    }
    fn exempt(&self, gfn: u64) -> bool {
        self.exempt.contains(&gfn)
    }
    fn protect(&mut self, gfn: u64) -> bool {
        self.protected.insert(gfn);
        true
    }
    fn add_writable(&mut self, gfn: u64, _la: u64) -> bool {
        self.writable.insert(gfn);
        true
    }
}

/// Host-physical address of a guest page in the shadow tests: guest RAM is
/// the first 16 MiB, placed at a different host address so a mix-up shows.
fn test_hpa(gpa: u64) -> Option<u64> {
    (gpa < 16 << 20).then_some(gpa + 0x4000_0000)
}

/// Runs `access` at `la` the way the CPU and the module together would:
/// through the shadow tables, resolving shadow faults, until the access
/// succeeds (the host-physical address) or the guest gets a fault.
fn shadow_access(
    t: &mut FakeTables,
    root: u64,
    format: Format,
    m: &FakeMem,
    st: &PagingState,
    la: u64,
    access: Access,
) -> Result<u64, Fault> {
    let mut track = Track::default();
    for _ in 0..3 {
        if let Some(hpa) = shadow::translate(t, root, format, la, access) {
            return Ok(hpa);
        }
        match shadow::fault(t, root, format, m, st, la, access, test_hpa, &mut track, None) {
            Fault::Mapped { .. } => continue,
            other => return Err(other),
        }
    }
    panic!("the shadow fault at {la:#x} did not converge");
}

#[test]
fn shadow_sets_dirty_on_first_write_only() {
    let m = FakeMem::new(16 << 20);
    m.write64(0x1000, 0x2000 | P | RW | US);
    m.write64(0x2000, 0x3000 | P | RW | US);
    m.write64(0x3000, 0x4000 | P | RW | US);
    m.write64(0x4000 + 8, 0x9000 | P | RW | US);
    let st = long_mode();
    let (mut t, root) = fake_tables(100);
    let read = Access::default();
    let write = Access { write: true, ..Default::default() };
    assert_eq!(shadow_access(&mut t, root, Format::Long4, &m, &st, 0x1008, read), Ok(0x4000_9008));
    assert_eq!(m.read64(0x4008) & (A | D), A, "a read sets A only");
    assert_eq!(shadow::translate(&t, root, Format::Long4, 0x1008, write), None, "clean page mapped read-only");
    assert_eq!(shadow_access(&mut t, root, Format::Long4, &m, &st, 0x1008, write), Ok(0x4000_9008));
    assert_eq!(m.read64(0x4008) & (A | D), A | D, "the first write sets D");
}

#[test]
fn shadow_honours_wp_clear_for_the_supervisor_only() {
    let m = FakeMem::new(16 << 20);
    m.write64(0x1000, 0x2000 | P | RW | US);
    m.write64(0x2000, 0x3000 | P | RW | US);
    m.write64(0x3000, 0x4000 | P | RW | US);
    m.write64(0x4000, 0x9000 | P | US); // read-only user page
    let st = PagingState { cr0: PG | 1, ..long_mode() };
    let (mut t, root) = fake_tables(100);
    let sup_write = Access { write: true, ..Default::default() };
    let user_write = Access { write: true, user: true, ..Default::default() };
    let user_read = Access { user: true, ..Default::default() };
    assert_eq!(shadow_access(&mut t, root, Format::Long4, &m, &st, 0x10, sup_write), Ok(0x4000_9010));
    assert_eq!(
        shadow_access(&mut t, root, Format::Long4, &m, &st, 0x10, user_write),
        Err(Fault::Guest(0b111)),
        "the user still may not write"
    );
    assert_eq!(shadow_access(&mut t, root, Format::Long4, &m, &st, 0x10, user_read), Ok(0x4000_9010));
}

#[test]
fn shadow_maps_32bit_pse_guests_with_pae_tables_and_reports_mmio() {
    let m = FakeMem::new(16 << 20);
    // 32-bit paging: PDE 0 points to a table, PDE 2 is a 4 MiB page at 4 MiB.
    m.write32(0x1000, (0x5000 | P | RW | US) as u32);
    m.write32(0x5000 + 4, (0x7000 | P | RW | US | D) as u32);
    m.write32(0x1000 + 2 * 4, (0x40_0000 | P | RW | PS | D) as u32);
    m.write32(0x1000 + 3 * 4, (0x4000_0000 | P | RW | PS | D) as u32); // not RAM
    let st = PagingState { cr0: PG | 1, cr3: 0x1000, cr4: PSE, efer: 0, maxphyaddr: 0 };
    assert_eq!(Format::for_guest(&st), Format::Pae3);
    let (mut t, root) = fake_tables(100);
    let w = Access { write: true, ..Default::default() };
    assert_eq!(shadow_access(&mut t, root, Format::Pae3, &m, &st, 0x1234, w), Ok(0x4000_7234));
    assert_eq!(shadow_access(&mut t, root, Format::Pae3, &m, &st, 0x80_5678, w), Ok(0x4040_5678));
    assert_eq!(shadow_access(&mut t, root, Format::Pae3, &m, &st, 0xc0_0010, w), Err(Fault::Mmio(0x4000_0010)));
    // PAE PDPTEs carry only P: R/W and U/S are reserved there.
    assert_eq!(t.read(root, 0) & !PTE_ADDR, P);
    // Paging off: guest-physical space one to one.
    let off = PagingState { cr0: 1, ..st };
    assert_eq!(shadow_access(&mut t, root, Format::Pae3, &m, &off, 0x3_0000, w), Ok(0x4003_0000));
}

const PTE_ADDR: u64 = 0x000f_ffff_ffff_f000;

#[test]
fn shadow_invlpg_of_a_large_page_drops_all_of_it() {
    let m = FakeMem::new(16 << 20);
    m.write64(0x1000, 0x2000 | P | RW | US);
    m.write64(0x2000, 0x3000 | P | RW | US);
    m.write64(0x3000 + 8, 0x40_0000 | P | RW | US | PS | D); // 2 MiB at 2 MiB
    let st = long_mode();
    let (mut t, root) = fake_tables(100);
    let r = Access::default();
    assert_eq!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0x20_0000, r, test_hpa, &mut Track::default(), None), Fault::Mapped { guest_page: 2 << 20 });
    assert!(matches!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0x3f_f000, r, test_hpa, &mut Track::default(), None), Fault::Mapped { .. }));
    // The guest moves the large page and invalidates one address in it.
    m.write64(0x3000 + 8, 0x60_0000 | P | RW | US | PS | D);
    shadow::invalidate(&mut t, root, Format::Long4, 0x20_0000, 2 << 20);
    assert_eq!(shadow::translate(&t, root, Format::Long4, 0x3f_f000, r), None, "the whole 2 MiB page is gone");
    assert_eq!(shadow_access(&mut t, root, Format::Long4, &m, &st, 0x3f_f000, r), Ok(0x4000_0000 + 0x7f_f000));
}

#[test]
fn shadow_write_protects_guest_page_tables() {
    let m = FakeMem::new(16 << 20);
    m.write64(0x1000, 0x2000 | P | RW | US);
    m.write64(0x2000, 0x3000 | P | RW | US);
    m.write64(0x3000, 0x4000 | P | RW | US);
    m.write64(0x4000, 0x4000 | P | RW | D); // linear 0 maps the page table itself
    m.write64(0x4000 + 8, 0x9000 | P | RW | D);
    let st = long_mode();
    let (mut t, root) = fake_tables(100);
    let mut track = Track::default();
    let w = Access { write: true, ..Default::default() };
    // Data is writable; the walk protected the four tables.
    assert!(matches!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0x1000, w, test_hpa, &mut track, None), Fault::Mapped { .. }));
    assert_eq!(track.protected.iter().copied().collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert!(track.writable.contains(&9));
    // The page table, mapped at linear 0, is read-only, and a write to it
    // is reported as a page-table write.
    let r = Access::default();
    assert!(matches!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0, r, test_hpa, &mut track, None), Fault::Mapped { .. }));
    assert_eq!(shadow::translate(&t, root, Format::Long4, 0, w), None);
    assert_eq!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0, w, test_hpa, &mut track, None), Fault::PageTableWrite(4));
    // Once the stale root exempts it, the write goes through.
    track.exempt.insert(4);
    assert!(matches!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0, w, test_hpa, &mut track, None), Fault::Mapped { .. }));
    // A page mapped writable cannot silently become a page table: the walk
    // through it asks for its writable entries to be made read-only first.
    let mut fresh = Track::default();
    fresh.writable.insert(3);
    assert_eq!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0x1000, r, test_hpa, &mut fresh, None), Fault::MustProtect(3));
    // Which write_protect does, for the entry that maps it.
    assert!(matches!(shadow::fault(&mut t, root, Format::Long4, &m, &st, 0x2000, w, test_hpa, &mut Track::default(), None), Fault::Guest(_) | Fault::Mapped { .. }));
    assert!(shadow::write_protect(&mut t, root, Format::Long4, 0x1000, test_hpa(0x9000).unwrap()));
    assert_eq!(shadow::translate(&t, root, Format::Long4, 0x1000, w), None);
    assert!(!shadow::write_protect(&mut t, root, Format::Long4, 0x1000, test_hpa(0x8000).unwrap()), "another page");
}

#[test]
fn shadow_invlpg_at_the_top_of_the_address_space() {
    let (mut t, root) = fake_tables(10);
    // Found by review: the end of the range overflowed at 2^64.
    shadow::invalidate(&mut t, root, Format::Long4, u64::MAX - 4095, 4096);
    shadow::invalidate(&mut t, root, Format::Long4, 0xffff_ffff_ffe0_1000, 2 << 20);
    shadow::invalidate(&mut t, root, Format::Long4, 0xffff_ffff_ffff_f000, 4 << 20);
}

#[test]
fn shadow_runs_out_of_tables_without_mapping_anything() {
    let m = FakeMem::new(16 << 20);
    let st = PagingState { cr0: 1, ..Default::default() };
    let (mut t, root) = fake_tables(1);
    assert_eq!(shadow::fault(&mut t, root, Format::Pae3, &m, &st, 0x1000, Access::default(), test_hpa, &mut Track::default(), None), Fault::NoMemory);
}

#[test]
fn shadow_guard_keeps_the_tss_page_read_only_in_legacy_protected_mode() {
    let m = FakeMem::new(16 << 20);
    let st = PagingState { cr0: 1, ..Default::default() };
    let (mut t, root) = fake_tables(64);
    let (r, w) = (Access::default(), Access { write: true, ..Default::default() });
    let guard = Some(0x5000);
    // Reads map the page, read-only; a write is the caller's to emulate.
    assert!(matches!(shadow::fault(&mut t, root, Format::Pae3, &m, &st, 0x5123, r, test_hpa, &mut Track::default(), guard), Fault::Mapped { .. }));
    assert_eq!(shadow::translate(&t, root, Format::Pae3, 0x5123, r), Some(test_hpa(0x5123).unwrap()));
    assert_eq!(shadow::translate(&t, root, Format::Pae3, 0x5123, w), None);
    assert_eq!(shadow::fault(&mut t, root, Format::Pae3, &m, &st, 0x5fff, w, test_hpa, &mut Track::default(), guard), Fault::Guarded);
    // The pages around it are the guest's to write.
    assert!(matches!(shadow::fault(&mut t, root, Format::Pae3, &m, &st, 0x6000, w, test_hpa, &mut Track::default(), guard), Fault::Mapped { .. }));
    assert!(shadow::translate(&t, root, Format::Pae3, 0x6000, w).is_some());
    // In real mode and in long mode there are no task switches, and no guard.
    let real = PagingState { cr0: 0, ..Default::default() };
    let (mut t, root) = fake_tables(64);
    assert!(matches!(shadow::fault(&mut t, root, Format::Pae3, &m, &real, 0x5000, w, test_hpa, &mut Track::default(), guard), Fault::Mapped { .. }));
    m.write64(0x1000, 0x2000 | P | RW);
    m.write64(0x2000, 0x3000 | P | RW);
    m.write64(0x3000, 0x4000 | P | RW);
    m.write64(0x4000 + 5 * 8, 0x5000 | P | RW | D | A);
    let long = PagingState { cr0: PG | 1, cr3: 0x1000, cr4: PAE, efer: LMA, maxphyaddr: 48 };
    let (mut t, root) = fake_tables(64);
    assert!(matches!(shadow::fault(&mut t, root, Format::Long4, &m, &long, 0x5000, w, test_hpa, &mut Track::default(), guard), Fault::Mapped { .. }));
}

proptest! {
    /// Through the shadow tables, every access reaches exactly what the
    /// guest's own tables say, or the guest gets exactly the fault they
    /// give, across random tables, random accesses and random updates
    /// followed by invalidation.
    #[test]
    fn shadow_matches_the_guest_walk(
        ptes in proptest::collection::vec((0u64..64, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()), 8),
        ops in proptest::collection::vec((0usize..8, any::<bool>(), any::<bool>(), any::<bool>(), proptest::option::of((0u64..64, any::<bool>(), any::<bool>()))), 1..40),
        wp in any::<bool>(),
    ) {
        let m = FakeMem::new(16 << 20);
        // Eight linear pages 0x10_0000 + i * 4 KiB, under one table chain.
        m.write64(0x1000, 0x2000 | P | RW | US);
        m.write64(0x2000, 0x3000 | P | RW | US);
        m.write64(0x3000, 0x4000 | P | RW | US);
        let pte = |(page, p, rw, us, nx): (u64, bool, bool, bool, bool)| {
            (0x10_0000 + page * 0x1000) | if p { P } else { 0 } | if rw { RW } else { 0 }
                | if us { US } else { 0 } | if nx { 1 << 63 } else { 0 }
        };
        for (i, &e) in ptes.iter().enumerate() {
            m.write64(0x4000 + (0x100 + i as u64) * 8, pte(e));
        }
        let st = PagingState { cr0: PG | 1 | if wp { WP } else { 0 }, ..long_mode() };
        let (mut t, root) = fake_tables(1000);
        for (i, write, user, fetch, update) in ops {
            let la = 0x10_0000 + i as u64 * 0x1000 + 0x18;
            let access = Access { write, user, fetch: fetch && !write };
            let want = walk::translate(&m, &st, la, access);
            let got = shadow_access(&mut t, root, Format::Long4, &m, &st, la, access);
            match want {
                Ok(gpa) => prop_assert_eq!(got, Ok(test_hpa(gpa).unwrap())),
                Err(WalkError::PageFault(code)) => prop_assert_eq!(got, Err(Fault::Guest(code))),
                Err(e) => prop_assert!(false, "unexpected {:?}", e),
            }
            if let Some((page, rw, us)) = update {
                // The guest rewrites the entry and invalidates it.
                m.write64(0x4000 + (0x100 + i as u64) * 8, pte((page, true, rw, us, false)));
                shadow::invalidate(&mut t, root, Format::Long4, la, 4096);
            }
        }
    }
}

/// The harness's 64-bit state, as the selftests and the VMM build it.
fn long_mode_sregs() -> uapi::Sregs {
    let seg = |selector: u16, attrib: u16| uapi::Segment { base: 0, limit: 0xffff_ffff, selector, attrib };
    uapi::Sregs {
        cs: seg(0x18, 0xa9b),
        ds: seg(0x10, 0xc93),
        es: seg(0x10, 0xc93),
        fs: seg(0x10, 0xc93),
        gs: seg(0x10, 0xc93),
        ss: seg(0x10, 0xc93),
        tr: uapi::Segment { base: 0, limit: 0x67, selector: 0, attrib: 0x8b },
        ldt: uapi::Segment { base: 0, limit: 0, selector: 0, attrib: 0x82 },
        gdt: uapi::Dtable { base: 0x1000, limit: 31, pad: [0; 3] },
        idt: uapi::Dtable::default(),
        cr0: 0x8000_0011,
        cr2: 0,
        cr3: 0x2000,
        cr4: 0x20,
        cr8: 0,
        efer: 0x500,
        reserved: [0; 8],
    }
}

#[test]
fn set_sregs_accepts_the_states_the_tools_use() {
    use crate::policy::state::check_sregs;
    let allowed = crate::hw::cr::cr4::BASELINE;
    let long = long_mode_sregs();
    assert_eq!(check_sregs(&long, allowed, 40), Ok(()));
    // 32-bit protected mode, paging off; real mode at reset; LME set with
    // paging off (legal: the guest is about to turn paging on).
    let prot = uapi::Sregs { cs: uapi::Segment { selector: 8, attrib: 0xc9b, ..long.cs }, cr0: 0x11, cr4: 0, efer: 0, ..long };
    assert_eq!(check_sregs(&prot, allowed, 40), Ok(()));
    let real = uapi::Sregs { cr0: 0x6000_0010, cr3: 0, cr4: 0, efer: 0, ..prot };
    assert_eq!(check_sregs(&real, allowed, 40), Ok(()));
    assert_eq!(check_sregs(&uapi::Sregs { efer: 0x100, ..prot }, allowed, 40), Ok(()));
}

#[test]
fn set_sregs_refuses_what_vmrun_or_the_testbed_would_not_survive() {
    use crate::policy::state::{check_sregs, Invalid};
    let allowed = crate::hw::cr::cr4::BASELINE;
    let good = long_mode_sregs();
    let prot = uapi::Sregs { cs: uapi::Segment { selector: 8, attrib: 0xc9b, ..good.cs }, cr0: 0x11, cr4: 0, efer: 0, ..good };
    let seg = |attrib: u16| uapi::Segment { attrib, ..good.tr };
    let cases: Vec<(&str, uapi::Sregs, Invalid)> = vec![
        ("CR0.NW without CD", uapi::Sregs { cr0: 0xa000_0011, ..good }, Invalid::Cr0),
        ("CR0 upper bits", uapi::Sregs { cr0: 1 << 32 | 0x11, ..prot }, Invalid::Cr0),
        ("PG without PE", uapi::Sregs { cr0: 0x8000_0010, ..good }, Invalid::Cr0),
        ("SVME", uapi::Sregs { efer: 0x1500, ..good }, Invalid::Efer),
        ("a reserved EFER bit", uapi::Sregs { efer: 0x500 | 1 << 20, ..good }, Invalid::Efer),
        ("CR4.OSXSAVE, not offered", uapi::Sregs { cr4: 0x20 | 1 << 18, ..good }, Invalid::Cr4),
        ("CR4.LA57", uapi::Sregs { cr4: 0x20 | 1 << 12, ..good }, Invalid::Cr4),
        ("CR8 above 15", uapi::Sregs { cr8: 16, ..good }, Invalid::Cr8),
        ("a reserved word", uapi::Sregs { reserved: [0, 0, 0, 0, 0, 0, 0, 1], ..good }, Invalid::Reserved),
        ("long mode without PAE", uapi::Sregs { cr4: 0, ..good }, Invalid::LongMode),
        ("LMA in real mode", uapi::Sregs { cr0: 0x10, efer: 0x500, ..prot }, Invalid::LongMode),
        ("LME and PG without LMA", uapi::Sregs { efer: 0x100, ..good }, Invalid::LongMode),
        ("LMA without LME", uapi::Sregs { efer: 0x400, ..good }, Invalid::LongMode),
        ("CS.L and CS.D", uapi::Sregs { cs: uapi::Segment { attrib: 0xe9b, ..good.cs }, ..good }, Invalid::LongMode),
        ("CR3 above bit 51", uapi::Sregs { cr3: 1 << 52, ..good }, Invalid::Cr3),
        ("CR3 above a 40-bit address width", uapi::Sregs { cr3: 1 << 45, ..good }, Invalid::Cr3),
        ("a 64-bit CR3 in 32-bit mode", uapi::Sregs { cr3: 1 << 32, ..prot }, Invalid::Cr3),
        ("TR not present", uapi::Sregs { tr: seg(0x0b), ..good }, Invalid::Segment("TR")),
        ("TR an available TSS", uapi::Sregs { tr: seg(0x89), ..good }, Invalid::Segment("TR")),
        ("TR a code segment", uapi::Sregs { tr: seg(0x9b), ..good }, Invalid::Segment("TR")),
        ("TR in the LDT", uapi::Sregs { tr: uapi::Segment { selector: 4, ..good.tr }, ..good }, Invalid::Segment("TR")),
        ("a non-canonical TR base", uapi::Sregs { tr: uapi::Segment { base: 1 << 60, ..good.tr }, ..good }, Invalid::Segment("TR")),
        ("LDTR a TSS", uapi::Sregs { ldt: seg(0x8b), ..good }, Invalid::Segment("LDTR")),
        ("CS a data segment", uapi::Sregs { cs: uapi::Segment { attrib: 0xc93, ..good.cs }, ..good }, Invalid::Segment("CS")),
        ("CS not present", uapi::Sregs { cs: uapi::Segment { attrib: 0xa1b, ..good.cs }, ..good }, Invalid::Segment("CS")),
        ("SS a code segment", uapi::Sregs { ss: uapi::Segment { attrib: 0xc9b, ..good.ss }, ..good }, Invalid::Segment("SS")),
        ("SS read-only", uapi::Sregs { ss: uapi::Segment { attrib: 0xc91, ..good.ss }, ..good }, Invalid::Segment("SS")),
        ("CS.DPL 3 with CPL 0", uapi::Sregs { cs: uapi::Segment { attrib: 0xafb, ..good.cs }, ..good }, Invalid::Segment("CS")),
        ("a null SS at CPL 0 outside long mode", uapi::Sregs { ss: uapi::Segment { attrib: 0, ..prot.ss }, ..prot }, Invalid::Segment("SS")),
        ("DS a system segment", uapi::Sregs { ds: seg(0x8b), ..good }, Invalid::Segment("DS")),
        ("a 64-bit DS base", uapi::Sregs { ds: uapi::Segment { base: 1 << 32, ..good.ds }, ..good }, Invalid::Segment("DS")),
        ("a TR base above 4 GiB outside long mode", uapi::Sregs { tr: uapi::Segment { base: 1 << 32, ..prot.tr }, ..prot }, Invalid::Segment("TR")),
        ("a GDTR base above 4 GiB outside long mode", uapi::Sregs { gdt: uapi::Dtable { base: 1 << 32, ..prot.gdt }, ..prot }, Invalid::Segment("GDTR")),
    ];
    for (what, sregs, why) in cases {
        assert_eq!(check_sregs(&sregs, allowed, 40), Err(why), "{what}");
    }
    // A null SS at CPL 0 in long mode is what SYSRET and interrupts leave.
    let null_ss = uapi::Sregs { ss: uapi::Segment { attrib: 0, selector: 0, ..good.ss }, ..good };
    assert_eq!(check_sregs(&null_ss, allowed, 40), Ok(()));
    // Virtual-8086 mode, as GET_SREGS reports it: CS and SS are DPL-3 data.
    let v86 = |sel: u16| uapi::Segment { base: u64::from(sel) << 4, limit: 0xffff, selector: sel, attrib: 0xf3 };
    let vm86 = uapi::Sregs { cs: v86(0x1000), ss: v86(0x2000), ds: v86(0x3000), es: v86(0), fs: v86(0), gs: v86(0), ..prot };
    assert_eq!(check_sregs(&vm86, allowed, 40), Ok(()));
    assert!(check_sregs(&uapi::Sregs { cs: uapi::Segment { base: 0, ..vm86.cs }, ..vm86 }, allowed, 40).is_err());
    // A 16-bit TSS loaded before entering long mode stays in TR there, and
    // GET_SREGS reports it: SET_SREGS takes it back.
    assert_eq!(check_sregs(&uapi::Sregs { tr: seg(0x83), ..good }, allowed, 40), Ok(()));
}

#[test]
fn cr4_allowed_follows_the_guest_cpuid() {
    use crate::hw::cr::cr4;
    // A host with FSGSBASE, SMEP and SMAP in leaf 7.
    let host = |leaf: u32, _sub: u32| -> [u32; 4] {
        match leaf {
            0 => [0xd, 0, 0, 0],
            7 => [0, 1 | 1 << 7 | 1 << 20, 0, 0],
            _ => [0; 4],
        }
    };
    let npt = cpuid::guest_cr4_allowed(cpuid::GuestKind { vcpu_id: 0, shadow: false, lapic: false, tsc_deadline: false }, host);
    assert_eq!(npt, cr4::BASELINE | cr4::FSGSBASE | cr4::SMEP | cr4::SMAP);
    let shadow = cpuid::guest_cr4_allowed(cpuid::GuestKind { vcpu_id: 0, shadow: true, lapic: false, tsc_deadline: false }, host);
    assert_eq!(shadow, cr4::BASELINE | cr4::FSGSBASE);
    let bare = cpuid::guest_cr4_allowed(cpuid::GuestKind::default(), |_, _| [0; 4]);
    assert_eq!(bare, cr4::BASELINE);
}

#[test]
fn decodes_debug_register_moves() {
    // mov dr7, rax; mov rcx, dr7; mov dr7, r9 (REX.B).
    let d = |b: &[u8]| insn::decode(b, CpuMode::Bits64).unwrap();
    assert_eq!(d(&[0x0f, 0x23, 0xf8]).op, Op::MovDr { write: true, dr: 7, gpr: Gpr::Rax });
    assert_eq!(d(&[0x0f, 0x21, 0xf9]).op, Op::MovDr { write: false, dr: 7, gpr: Gpr::Rcx });
    assert_eq!(d(&[0x41, 0x0f, 0x23, 0xf9]).op, Op::MovDr { write: true, dr: 7, gpr: Gpr::R9 });
    assert_eq!(d(&[0x41, 0x0f, 0x23, 0xf9]).len, 4);
}

/// Every exit family decodes from the APM's numbers (Vol. 2, Appendix C)
/// into what its handler needs; an exit code nobody handles is Unknown.
#[test]
fn exits_decode_from_the_apm_numbers() {
    use crate::exit::decode::{Exit, IoInfo};
    let d = |code: u64| Exit::decode(code, 0, 0, 0);
    assert_eq!(d(0x60), Exit::Intr);
    assert_eq!(d(0x61), Exit::Nmi);
    assert_eq!(d(0x62), Exit::HostEvent);
    assert_eq!(d(0x63), Exit::HostEvent);
    assert_eq!(d(0x72), Exit::Cpuid);
    assert_eq!(d(0x78), Exit::Hlt);
    assert_eq!(d(0x81), Exit::Vmmcall);
    assert_eq!(d(0x7f), Exit::Shutdown);
    assert_eq!(d(0x6f), Exit::Rdpmc);
    assert_eq!(d(0x7d), Exit::TaskSwitch);
    assert_eq!(d(0x79), Exit::Invlpg);
    assert_eq!(d(0x6d), Exit::Ltr);
    assert_eq!(d(0x76), Exit::Invd(Opcode::Invd));
    assert_eq!(d(0x89), Exit::Invd(Opcode::Wbinvd));
    for ud in [0x80, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x73, 0x8d] {
        assert_eq!(d(ud), Exit::Undefined, "exit code {ud:#x}");
    }
    assert_eq!(Exit::decode(0x7c, 0, 0, 0xffff_ffff_c000_0080), Exit::Msr { index: 0xc000_0080, write: false });
    assert_eq!(Exit::decode(0x7c, 1, 0, 0x10), Exit::Msr { index: 0x10, write: true });
    assert_eq!(Exit::decode(0x400, 0x1_0000_0007, 0xd000_0000, 0), Exit::Npf { gpa: 0xd000_0000, error: 0x1_0000_0007 });
    assert_eq!(Exit::decode(0x4e, 0x2, 0x1234, 0), Exit::PageFault { error: 0x2, la: 0x1234 });
    assert_eq!(d(0x41), Exit::Exception { vector: 1, error: 0 });
    assert_eq!(Exit::decode(0x51, 0, 0, 0), Exit::Exception { vector: 17, error: 0 });
    assert_eq!(d(0x64), Exit::Vintr);
    assert_eq!(d(0x00), Exit::Cr { cr: 0, write: false, gpr: None });
    assert_eq!(d(0x14), Exit::Cr { cr: 4, write: true, gpr: None });
    // With decode assists: MOV CR3, R9.
    assert_eq!(Exit::decode(0x13, (1 << 63) | 9, 0, 0), Exit::Cr { cr: 3, write: true, gpr: Some(Gpr::R9) });
    assert_eq!(d(0x13), Exit::Cr { cr: 3, write: true, gpr: None });
    assert_eq!(d(0x27), Exit::Dr { dr: 7, write: false });
    assert_eq!(d(0x37), Exit::Dr { dr: 7, write: true });
    assert_eq!(d(u64::MAX), Exit::Invalid);
    // The descriptor-table accesses are never intercepted.
    for unknown in [0x65, 0x66, 0x401, 0xffff_ffff] {
        assert_eq!(d(unknown), Exit::Unknown(unknown), "exit code {unknown:#x}");
    }

    // IOIO: OUT DX, AL to COM1; IN EAX from 0x60; REP OUTSB with a 32-bit
    // address; EXITINFO2 is the next RIP.
    assert_eq!(
        Exit::decode(0x7b, 0x03f8_0010, 0x1006, 0),
        Exit::Io(IoInfo { port: 0x3f8, size: 1, input: false, string: false, rep: false, addr_size: None, segment: 0, next_rip: 0x1006 })
    );
    assert_eq!(
        IoInfo::decode(0x0060_0041, 0),
        IoInfo { port: 0x60, size: 4, input: true, string: false, rep: false, addr_size: None, segment: 0, next_rip: 0 }
    );
    assert_eq!(
        IoInfo::decode(0x03f8_011c, 0x2000),
        IoInfo { port: 0x3f8, size: 1, input: false, string: true, rep: true, addr_size: Some(4), segment: 0, next_rip: 0x2000 }
    );
    assert_eq!(IoInfo::decode(0x0000_02a5, 0).addr_size, Some(8));
    // OUTS with a GS override, as decode assists report it.
    assert_eq!(IoInfo::decode(0x0000_1414, 0).segment, 5);
    assert_eq!(IoInfo::decode(0x0000_00a5, 0).size, 2);
}

// SPDX-License-Identifier: GPL-2.0

//! The ELF64 long-mode machine state, Pacifica's own protocol.
//!
//! 64-bit mode with paging on over the identity map (CR3 =
//! [`PML4_ADDR`]); CS a 64-bit code segment (L=1) and the data segments
//! flat; interrupts off; an empty IDT. CR0 has WP and NE set and CR4 enables
//! SSE (OSFXSR, OSXMMEXCPT), because compiled 64-bit code uses SSE
//! registers freely. EFER has LME and LMA (the module adds SVME itself).
//!
//! The arguments mirror Multiboot's so one guest source can serve both
//! protocols: EAX holds [`MULTIBOOT_BOOTLOADER_MAGIC`] and RBX the address
//! of the Multiboot information, which is also in RDI so that a C function
//! `void entry(struct multiboot_info *)` can be the entry point. RSP is
//! [`STACK_TOP`] - 8, where the return address [`HALT_STUB_ADDR`] waits: an
//! entry function that returns halts the vCPU, and the stack is aligned as
//! the SysV ABI expects at a function's first instruction.

use super::layout::{HALT_STUB_ADDR, PML4_ADDR, STACK_TOP};
use super::segments::{self, CodeMode};
use super::{cr0, cr4, efer, BootState, MULTIBOOT_BOOTLOADER_MAGIC, RFLAGS_RESERVED};
use crate::uapi::{Regs, Sregs};

/// CR0 for long mode.
pub const CR0: u64 = cr0::PE | cr0::MP | cr0::ET | cr0::NE | cr0::WP | cr0::PG;
/// CR4 for long mode.
pub const CR4: u64 = cr4::PAE | cr4::OSFXSR | cr4::OSXMMEXCPT;
/// EFER for long mode.
pub const EFER: u64 = efer::LME | efer::LMA;
/// The initial RSP; the return address sits at this address.
pub const INITIAL_RSP: u64 = STACK_TOP - 8;

/// The halt stub the initial return address points to: `hlt; jmp .-1`.
pub const HALT_STUB: [u8; 3] = [0xf4, 0xeb, 0xfd];

/// The long-mode state that enters the image at `entry` with the Multiboot
/// information at `info`.
pub fn long_mode_state(entry: u64, info: u64) -> BootState {
    let regs = Regs {
        rax: MULTIBOOT_BOOTLOADER_MAGIC,
        rbx: info,
        rdi: info,
        rsp: INITIAL_RSP,
        rip: entry,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    };
    let sregs = Sregs {
        cr0: CR0,
        cr3: PML4_ADDR,
        cr4: CR4,
        efer: EFER,
        ..segments::flat_sregs(CodeMode::Long64)
    };
    BootState { regs, sregs }
}

/// The stack contents at [`INITIAL_RSP`]: the return address.
pub fn initial_stack() -> [u8; 8] {
    HALT_STUB_ADDR.to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_registers_enable_long_mode() {
        let s = long_mode_state(0x20_0000, 0x1000).sregs;
        assert_eq!(s.cr0, 0x8001_0033);
        assert_eq!(s.cr4, 0x620);
        assert_eq!(s.efer, 0x500);
        assert_eq!(s.cr3, PML4_ADDR);
    }

    #[test]
    fn code_segment_is_64_bit() {
        let s = long_mode_state(0x20_0000, 0x1000).sregs;
        assert_eq!((s.cs.selector, s.cs.attrib), (0x18, 0xa9b));
        assert_eq!(s.cs.attrib & crate::hw::seg::attr::DB, 0, "L=1 requires D=0");
        assert_eq!((s.ss.selector, s.ss.attrib), (0x10, 0xc93));
        assert_eq!((s.tr.attrib, s.tr.limit), (0x8b, 0x67));
        assert_eq!(s.ldt.attrib, 0x82);
    }

    #[test]
    fn registers_carry_entry_stack_and_info() {
        let r = long_mode_state(0x20_0000, 0x1000).regs;
        assert_eq!(r.rip, 0x20_0000);
        assert_eq!(r.rsp, 0x7fff8);
        assert_eq!(r.rsp % 16, 8, "SysV: RSP + 8 is 16-byte aligned at entry");
        assert_eq!((r.rax, r.rbx, r.rdi), (0x2bad_b002, 0x1000, 0x1000));
        assert_eq!(r.rflags, 0x2);
        assert_eq!(u64::from_le_bytes(initial_stack()), HALT_STUB_ADDR);
    }
}

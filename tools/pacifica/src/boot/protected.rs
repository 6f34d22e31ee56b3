// SPDX-License-Identifier: GPL-2.0

//! The Multiboot v1 machine state (Multiboot Specification 0.6.96, 3.2).
//!
//! 32-bit protected mode with paging off; CS a flat 32-bit code segment and
//! DS, ES, FS, GS and SS a flat data segment; interrupts off; EAX holds
//! [`MULTIBOOT_BOOTLOADER_MAGIC`] and EBX the address of the Multiboot
//! information. The specification leaves ESP, GDTR and IDTR undefined and
//! requires the kernel to set up its own; Pacifica nonetheless provides a
//! GDT that matches the segments, an empty IDT and a stack at
//! [`STACK_TOP`], so that tiny guests need not.

use super::layout::STACK_TOP;
use super::segments::{self, CodeMode};
use super::{cr0, BootState, MULTIBOOT_BOOTLOADER_MAGIC, RFLAGS_RESERVED};
use crate::uapi::{Regs, Sregs};

/// CR0 for the Multiboot state: protection on, paging off.
pub const CR0: u64 = cr0::PE | cr0::ET;

/// The Multiboot v1 state that enters the kernel at `entry` with the
/// Multiboot information at `info`.
pub fn multiboot_state(entry: u32, info: u32) -> BootState {
    let regs = Regs {
        rax: MULTIBOOT_BOOTLOADER_MAGIC,
        rbx: u64::from(info),
        rsp: STACK_TOP,
        rip: u64::from(entry),
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    };
    let sregs = Sregs { cr0: CR0, ..segments::flat_sregs(CodeMode::Protected32) };
    BootState { regs, sregs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_follow_the_multiboot_specification() {
        let state = multiboot_state(0x10_0000, 0x1000);
        let r = state.regs;
        assert_eq!(r.rax, 0x2bad_b002);
        assert_eq!(r.rbx, 0x1000);
        assert_eq!(r.rip, 0x10_0000);
        assert_eq!(r.rflags, 0x2, "IF must be clear");
        assert_eq!(r.rsp, STACK_TOP);
    }

    #[test]
    fn protected_mode_with_paging_off() {
        let s = multiboot_state(0x10_0000, 0x1000).sregs;
        assert_eq!(s.cr0, 0x11);
        assert_eq!((s.cr3, s.cr4, s.efer), (0, 0, 0));
    }

    #[test]
    fn segments_are_flat_32_bit() {
        let s = multiboot_state(0x10_0000, 0x1000).sregs;
        assert_eq!(
            (s.cs.selector, s.cs.attrib, s.cs.base, s.cs.limit),
            (0x08, 0xc9b, 0, 0xffff_ffff)
        );
        for seg in [s.ds, s.es, s.fs, s.gs, s.ss] {
            assert_eq!(
                (seg.selector, seg.attrib, seg.base, seg.limit),
                (0x10, 0xc93, 0, 0xffff_ffff)
            );
        }
        assert_eq!((s.tr.attrib, s.tr.limit), (0x8b, 0x67));
        assert_eq!(s.ldt.attrib, 0x82);
        assert_eq!(s.idt.limit, 0);
    }
}

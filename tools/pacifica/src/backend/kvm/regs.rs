// SPDX-License-Identifier: GPL-2.0

//! Pacifica's register structures in KVM's shape.
//!
//! The boot states (`crate::boot`) are computed once, in the uapi's VMCB
//! format; KVM wants the same values in `kvm_regs` and `kvm_sregs`, whose
//! segments spell out the attribute bits one byte each. Converting (rather
//! than computing a second state) keeps both backends starting from the
//! very same machine state.

#![forbid(unsafe_code)]

use kvm_bindings::{kvm_dtable, kvm_regs, kvm_segment, kvm_sregs};

use crate::uapi::{Dtable, Regs, Segment, Sregs};

/// The general registers, RIP and RFLAGS.
pub fn to_kvm_regs(r: &Regs) -> kvm_regs {
    kvm_regs {
        rax: r.rax,
        rbx: r.rbx,
        rcx: r.rcx,
        rdx: r.rdx,
        rsi: r.rsi,
        rdi: r.rdi,
        rsp: r.rsp,
        rbp: r.rbp,
        r8: r.r8,
        r9: r.r9,
        r10: r.r10,
        r11: r.r11,
        r12: r.r12,
        r13: r.r13,
        r14: r.r14,
        r15: r.r15,
        rip: r.rip,
        rflags: r.rflags,
    }
}

/// One segment register. The VMCB attribute word (APM Vol. 2, 15.5.1) has
/// the type in bits 0-3, S in 4, DPL in 5-6, P in 7, AVL in 8, L in 9, D/B
/// in 10 and G in 11. A segment that is not present is marked unusable, as
/// KVM reports such segments itself.
pub fn to_kvm_segment(s: &Segment) -> kvm_segment {
    let bit = |n: u16| ((s.attrib >> n) & 1) as u8;
    kvm_segment {
        base: s.base,
        limit: s.limit,
        selector: s.selector,
        type_: (s.attrib & 0xf) as u8,
        s: bit(4),
        dpl: ((s.attrib >> 5) & 3) as u8,
        present: bit(7),
        avl: bit(8),
        l: bit(9),
        db: bit(10),
        g: bit(11),
        unusable: 1 - bit(7),
        padding: 0,
    }
}

/// A descriptor-table register.
pub fn to_kvm_dtable(d: &Dtable) -> kvm_dtable {
    kvm_dtable {
        base: d.base,
        limit: d.limit,
        padding: [0; 3],
    }
}

/// The system registers, written over `current` (what KVM_GET_SREGS
/// returned), whose APIC base and pending-interrupt bitmap are kept.
pub fn to_kvm_sregs(s: &Sregs, current: &kvm_sregs) -> kvm_sregs {
    kvm_sregs {
        cs: to_kvm_segment(&s.cs),
        ds: to_kvm_segment(&s.ds),
        es: to_kvm_segment(&s.es),
        fs: to_kvm_segment(&s.fs),
        gs: to_kvm_segment(&s.gs),
        ss: to_kvm_segment(&s.ss),
        tr: to_kvm_segment(&s.tr),
        ldt: to_kvm_segment(&s.ldt),
        gdt: to_kvm_dtable(&s.gdt),
        idt: to_kvm_dtable(&s.idt),
        cr0: s.cr0,
        cr2: s.cr2,
        cr3: s.cr3,
        cr4: s.cr4,
        cr8: s.cr8,
        efer: s.efer,
        ..*current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::long::long_mode_state;
    use crate::boot::protected::multiboot_state;

    #[test]
    fn flat_code_segments_keep_every_attribute() {
        let long = long_mode_state(0x10_0000, 0x1000);
        let cs = to_kvm_segment(&long.sregs.cs);
        assert_eq!(
            (cs.type_, cs.s, cs.dpl, cs.present, cs.l, cs.db, cs.g, cs.avl),
            (0xb, 1, 0, 1, 1, 0, 1, 0)
        );
        assert_eq!((cs.selector, cs.base, cs.limit), (0x18, 0, 0xffff_ffff));
        assert_eq!(cs.unusable, 0);
        let prot = multiboot_state(0x10_0000, 0x1000);
        let cs = to_kvm_segment(&prot.sregs.cs);
        assert_eq!((cs.l, cs.db), (0, 1));
        let ds = to_kvm_segment(&prot.sregs.ds);
        assert_eq!((ds.type_, ds.s, ds.db, ds.g), (3, 1, 1, 1));
    }

    #[test]
    fn system_segments_and_absent_segments() {
        let s = long_mode_state(0x10_0000, 0x1000).sregs;
        let tr = to_kvm_segment(&s.tr);
        assert_eq!((tr.type_, tr.s, tr.present, tr.limit), (0xb, 0, 1, 0x67));
        let ldt = to_kvm_segment(&s.ldt);
        assert_eq!((ldt.type_, ldt.present, ldt.unusable), (2, 1, 0));
        let absent = to_kvm_segment(&Segment::default());
        assert_eq!((absent.present, absent.unusable), (0, 1));
    }

    #[test]
    fn sregs_carry_the_control_registers_and_keep_the_apic_base() {
        let state = long_mode_state(0x10_0000, 0x1000);
        let current = kvm_sregs {
            apic_base: 0xfee0_0900,
            ..Default::default()
        };
        let k = to_kvm_sregs(&state.sregs, &current);
        assert_eq!(
            (k.cr0, k.cr3, k.cr4, k.efer),
            (state.sregs.cr0, 0x2000, state.sregs.cr4, 0x500)
        );
        assert_eq!(k.apic_base, 0xfee0_0900);
        assert_eq!(k.gdt.base, state.sregs.gdt.base);
        assert_eq!(k.gdt.limit, state.sregs.gdt.limit);
        let r = to_kvm_regs(&state.regs);
        assert_eq!(
            (r.rip, r.rsp, r.rax, r.rbx, r.rdi, r.rflags),
            (0x10_0000, 0x7fff8, 0x2bad_b002, 0x1000, 0x1000, 2)
        );
    }
}

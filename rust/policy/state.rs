// SPDX-License-Identifier: GPL-2.0

//! Which guest states the module lets reach VMRUN.
//!
//! Two sets of rules, both checked at `PACIFICA_SET_SREGS` (an invalid
//! state gets EINVAL there instead of reaching the CPU):
//!
//! - the consistency checks VMRUN makes (APM Vol. 2, 15.5.1, "Canonicalization
//!   and Consistency Checks") and what no processor could be in (LMA without
//!   LME and paging, paging without protection, ...), which KVM's
//!   `set_sregs` and its nested VMRUN checks refuse as well;
//! - segment state a processor could only reach through a descriptor load
//!   that checks it (TR a busy TSS, LDTR an LDT, CS code and SS writable
//!   data in protected mode): a task register that is not a TSS, for
//!   example, ends QEMU's emulated CPU at the next interrupt through an IST
//!   gate (Documentation/security.rst).
//!
//! Depends on `core` only; host-tested.

use crate::hw::cr::cr0;
use crate::hw::cr::cr4;
use crate::hw::seg::attr;
use crate::hw::svm::efer;
use crate::policy::msr::is_canonical;
use crate::uapi::{Segment, Sregs};

/// EFER bits a guest may have: SCE, LME, LMA, NXE, FFXSR. SVME is the
/// module's; the others are reserved or features the guest is not offered.
pub const EFER_GUEST_BITS: u64 = efer::SCE | efer::LME | efer::LMA | efer::NXE | efer::FFXSR;

/// Why a state is refused; only for the tests and the log, userspace sees
/// EINVAL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    Efer,
    Cr0,
    Cr3,
    Cr4,
    Cr8,
    LongMode,
    Segment(&'static str),
    /// A reserved word of the structure is not zero: it may mean something
    /// in a later version of the ABI.
    Reserved,
}

fn dpl(s: &Segment) -> u16 {
    (s.attrib >> attr::DPL_SHIFT) & 3
}

/// What a CPU loads into a segment register in virtual-8086 mode:
/// read/write data, accessed, DPL 3, present, 16-bit, limit 0xffff, base
/// the selector times 16.
fn vm86_segment(s: &Segment) -> bool {
    s.attrib == attr::WRITABLE | attr::ACCESSED | attr::S | (3 << attr::DPL_SHIFT) | attr::P
        && s.limit == 0xffff
        && s.base == u64::from(s.selector) << 4
}

fn present(s: &Segment) -> bool {
    s.attrib & attr::P != 0
}

/// Whether CR0 value `v` is one MOV CR0 accepts (APM Vol. 2, 3.1.1): no
/// reserved upper bits, no NW without CD, no paging without protection.
pub fn cr0_valid(v: u64) -> bool {
    v >> 32 == 0 && !(v & cr0::NW != 0 && v & cr0::CD == 0) && !(v & cr0::PG != 0 && v & cr0::PE == 0)
}

/// Checks a `PACIFICA_SET_SREGS` argument. `cr4_allowed` is the guest's
/// [`crate::policy::cpuid::guest_cr4_allowed`], `maxphyaddr` the
/// processor's physical address width.
pub fn check_sregs(r: &Sregs, cr4_allowed: u64, maxphyaddr: u8) -> Result<(), Invalid> {
    if r.reserved.iter().any(|&w| w != 0) {
        return Err(Invalid::Reserved);
    }
    if r.efer & !EFER_GUEST_BITS != 0 {
        return Err(Invalid::Efer);
    }
    if !cr0_valid(r.cr0) {
        return Err(Invalid::Cr0);
    }
    if r.cr4 & !cr4_allowed != 0 {
        return Err(Invalid::Cr4);
    }
    if r.cr8 > 0xf {
        return Err(Invalid::Cr8);
    }
    let lme = r.efer & efer::LME != 0;
    let lma = r.efer & efer::LMA != 0;
    let pg = r.cr0 & cr0::PG != 0;
    let pae = r.cr4 & cr4::PAE != 0;
    // LMA is LME and paging; long mode needs PAE; and a 64-bit code
    // segment cannot also be 32-bit (APM 15.5.1).
    if lma != (lme && pg) || (lma && !pae) {
        return Err(Invalid::LongMode);
    }
    if lma && r.cs.attrib & attr::L != 0 && r.cs.attrib & attr::DB != 0 {
        return Err(Invalid::LongMode);
    }
    // CR3 holds a physical address: the bits above the address width are
    // reserved in long mode (VMRUN checks them), and outside it CR3 is a
    // 32-bit register.
    if (lma && r.cr3 >> maxphyaddr.min(52) != 0) || (!lma && r.cr3 >> 32 != 0) {
        return Err(Invalid::Cr3);
    }
    check_segments(r, lma)
}

fn check_segments(r: &Sregs, lma: bool) -> Result<(), Invalid> {
    // Bases: the 32-bit segments' bases are 32 bits, the others canonical
    // in long mode and 32 bits outside it, where linear addresses are.
    for (name, s) in [("CS", &r.cs), ("SS", &r.ss), ("DS", &r.ds), ("ES", &r.es)] {
        if s.base >> 32 != 0 {
            return Err(Invalid::Segment(name));
        }
    }
    for (name, base) in [
        ("FS", r.fs.base),
        ("GS", r.gs.base),
        ("TR", r.tr.base),
        ("LDTR", r.ldt.base),
        ("GDTR", r.gdt.base),
        ("IDTR", r.idt.base),
    ] {
        if (!lma && base >> 32 != 0) || !is_canonical(base) {
            return Err(Invalid::Segment(name));
        }
    }
    // TR: a present, busy TSS in the GDT, in every mode (interrupts through
    // IST gates and I/O permission checks read it). A 16-bit one in long
    // mode is what a guest that loaded it before entering long mode has,
    // so GET_SREGS can report it and SET_SREGS takes it back.
    let tr = &r.tr;
    let tr_type = tr.attrib & attr::TYPE;
    if !present(tr)
        || tr.attrib & attr::S != 0
        || tr.selector & 4 != 0
        || !(tr_type == attr::TSS_BUSY || tr_type == attr::TSS16_BUSY)
    {
        return Err(Invalid::Segment("TR"));
    }
    // LDTR: unusable (not present), or an LDT in the GDT.
    let ldt = &r.ldt;
    if present(ldt) && (ldt.attrib & attr::S != 0 || ldt.attrib & attr::TYPE != attr::LDT || ldt.selector & 4 != 0) {
        return Err(Invalid::Segment("LDTR"));
    }
    if r.cr0 & cr0::PE == 0 {
        // Real mode: the segments are bases and limits, nothing to check.
        return Ok(());
    }
    if !lma && vm86_segment(&r.cs) && vm86_segment(&r.ss) {
        // Virtual-8086 mode (EFLAGS.VM, in the general registers): every
        // segment is as a real-mode one, data with DPL 3, and CS too.
        return Ok(());
    }
    // Protected mode: CS present code; SS present writable data with the
    // CPL as its DPL, or (long mode, CPL 0-2) unusable; CS's DPL equal to
    // the CPL, or at most it for a conforming segment.
    let cs = &r.cs;
    if !present(cs) || cs.attrib & attr::S == 0 || cs.attrib & attr::CODE == 0 {
        return Err(Invalid::Segment("CS"));
    }
    let ss = &r.ss;
    let cpl = dpl(ss);
    if present(ss) {
        if ss.attrib & attr::S == 0 || ss.attrib & attr::CODE != 0 || ss.attrib & attr::WRITABLE == 0 {
            return Err(Invalid::Segment("SS"));
        }
    } else if !lma || cpl == 3 {
        return Err(Invalid::Segment("SS"));
    }
    let conforming = cs.attrib & attr::CONFORMING != 0;
    if (conforming && dpl(cs) > cpl) || (!conforming && dpl(cs) != cpl) {
        return Err(Invalid::Segment("CS"));
    }
    // Data segments: unusable, or data, or readable code.
    for (name, s) in [("DS", &r.ds), ("ES", &r.es), ("FS", &r.fs), ("GS", &r.gs)] {
        if present(s) && (s.attrib & attr::S == 0 || (s.attrib & attr::CODE != 0 && s.attrib & attr::READABLE == 0)) {
            return Err(Invalid::Segment(name));
        }
    }
    Ok(())
}

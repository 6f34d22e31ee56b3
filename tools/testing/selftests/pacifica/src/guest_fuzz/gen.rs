// SPDX-License-Identifier: GPL-2.0

//! The guest fuzzer's generator: a random guest built at runtime from
//! templated snippets, each of one named class.
//!
//! A guest is the harness's memory layout (`guests/layout.h`) with a
//! larger GDT (ring-3 segments, TSSs, an LDT, a call gate, a task gate,
//! odd and random descriptors), page tables with the user bit (so that
//! ring 3 can run), an IDT of 256 gates whose stubs report the vector on
//! `PORT_EXC`, and then the snippets, one after the other. Every snippet
//! starts by storing the address of the next one in `EXC_RESUME`: the
//! exception handler reloads flat ring-0 segments, a fresh stack and
//! RFLAGS = 2, and IRETs there, so that a fault ends a snippet, not the
//! run. After `EXC_LIMIT` exceptions, or with nowhere to resume, the
//! handler halts at `halt`; the stream ends at `end`.

use super::asm::*;
use pacifica::hw::seg::attr;
use pacifica_selftests::layout::*;

/// `mov dx, PORT_DONE; out dx, al; hlt`: how the stream and the handler
/// stop, also in a VM with an in-kernel APIC, where HLT sleeps in the
/// kernel. The OUT is at offset [`DONE_OUT`], the HLT at [`DONE_HLT_AT`].
const DONE_HLT: [u8; 6] = [0x66, 0xba, PORT_DONE as u8, (PORT_DONE >> 8) as u8, 0xee, 0xf4];
pub const DONE_OUT: u64 = 4;
pub const DONE_HLT_AT: u64 = 5;

/// One snippet class: a name for `--avoid`, a weight, and whether the
/// class reached a QEMU bug that killed L1 in the past (the "hazards").
pub struct Class {
    pub name: &'static str,
    pub weight: u32,
    pub what: &'static str,
}

/// Every class, in the order of the per-class counts.
pub const CLASSES: &[Class] = &[
    Class { name: "svm", weight: 6, what: "VMRUN VMLOAD VMSAVE VMMCALL STGI CLGI SKINIT INVLPGA" },
    Class { name: "cache", weight: 2, what: "INVD WBINVD WBNOINVD CLFLUSH PREFETCHW" },
    Class { name: "rdpmc-rsm", weight: 2, what: "RDPMC with random counters, RSM" },
    Class { name: "task-switch", weight: 4, what: "far JMP/CALL to TSSs and task gates, IRET with NT, INT n and exceptions through task gates; TSS CR3 anywhere" },
    Class { name: "qemu-tss", weight: 2, what: "null LTR; 32-bit ring transitions with the busy TR VMRUN loaded (no LTR in the prologue)" },
    Class { name: "far", weight: 5, what: "far JMP/CALL/RETF to code segments, call gates, 16-bit, conforming, not-present and random selectors" },
    Class { name: "seg", weight: 5, what: "segment loads with random selectors, MOV SS shadows, FS/GS bases, SWAPGS" },
    Class { name: "dt", weight: 4, what: "LGDT/LIDT random then back, LLDT, LTR of other TSSs, SGDT/SIDT/SLDT/STR/SMSW/LMSW, LAR/LSL/VERR/VERW" },
    Class { name: "cr", weight: 6, what: "MOV to/from CR0 CR2 CR3 CR8 with legal values, CLTS, paging on/off in 32-bit mode" },
    Class { name: "cr4", weight: 3, what: "MOV CR4 toggling random bits" },
    Class { name: "cr-gp", weight: 3, what: "CR writes that must #GP or #UD: reserved bits, NW without CD, PG without PE, CR8 > 15, CR1/5/6/7/9-15" },
    Class { name: "dr", weight: 4, what: "MOV DR0-7 with random values, instruction breakpoints, DR7.GD" },
    Class { name: "db-ac", weight: 3, what: "data breakpoints on the stack and on MOV SS operands, #AC with CR0.AM and EFLAGS.AC at CPL3" },
    Class { name: "msr", weight: 8, what: "RDMSR/WRMSR on interesting and random indices (EFER without LME, SYSENTER, STAR/LSTAR, PAT, APIC base, TSC, ...)" },
    Class { name: "efer-lme", weight: 2, what: "EFER.LME with paging off, into long mode and out of it through compatibility mode" },
    Class { name: "cpuid", weight: 4, what: "CPUID, XSETBV, XGETBV, RDTSC(P), RDPID, MONITOR/MWAIT, RDPRU, RDRAND" },
    Class { name: "io", weight: 8, what: "IN/OUT and REP INS/OUTS with random ports, counts, DF, segments, address sizes and targets" },
    Class { name: "mmio", weight: 8, what: "MOV and non-MOV accesses to MMIO and unbacked memory, page-crossing, fetches from MMIO" },
    Class { name: "paging", weight: 6, what: "random PTEs, PDPTEs and PML4Es, CR3 at random and huge addresses, INVLPG" },
    Class { name: "random", weight: 6, what: "random bytes" },
    Class { name: "hlt", weight: 2, what: "HLT, STI;HLT" },
    Class { name: "triple", weight: 1, what: "a triple fault (no usable IDT)" },
    Class { name: "int", weight: 5, what: "INT3, INT1, INTO, INT n, UD2, #DE, BOUND, #NM with CR0.TS/EM" },
    Class { name: "flags", weight: 4, what: "POPF with random flags (TF, IOPL, AC, ID), IRET to the same level, TF over intercepted instructions" },
    Class { name: "ring3", weight: 5, what: "IRET/RETF to ring 3 (the following snippets run at CPL3 until a fault)" },
    Class { name: "syscall", weight: 3, what: "SYSCALL/SYSRET/SYSENTER/SYSEXIT with their MSRs pointing at the next snippet" },
    Class { name: "cs-l-d", weight: 1, what: "far transfers to a code segment with L=1 and D=1" },
];

/// The classes left out unless `--avoid` says otherwise: none. `qemu-tss`
/// ended L1 ("qemu: fatal: invalid tss [type]": a null LTR, or a 32-bit
/// guest on the busy TR type VMRUN loaded, then a change of privilege),
/// and `task-switch` under shadow paging ran the guest on its own CR3,
/// until the module's workarounds (Documentation/security.rst, "Testbed
/// workarounds"); both run by default now, to keep it so.
pub const DEFAULT_AVOID: &[&str] = &[];

/// The index of class `name`.
pub fn class_index(name: &str) -> Option<usize> {
    CLASSES.iter().position(|c| c.name == name)
}

// The GDT the fuzzer writes at FUZZ_GDT_BASE.
pub const SEL_CODE32: u16 = 0x08;
pub const SEL_DATA: u16 = 0x10;
pub const SEL_CODE64: u16 = 0x18;
pub const SEL_CODE32_R3: u16 = 0x20;
pub const SEL_DATA_R3: u16 = 0x28;
pub const SEL_CODE64_R3: u16 = 0x30;
pub const SEL_TSS: u16 = 0x38;
pub const SEL_TSS2: u16 = 0x48;
pub const SEL_TSS3: u16 = 0x58;
pub const SEL_LDT: u16 = 0x68;
pub const SEL_CALLGATE: u16 = 0x78;
pub const SEL_TASKGATE: u16 = 0x88;
pub const SEL_CODE16: u16 = 0x90;
pub const SEL_DATA16: u16 = 0x98;
pub const SEL_CODE_LD: u16 = 0xa0;
pub const SEL_CONFORMING: u16 = 0xa8;
pub const SEL_DATA_SMALL: u16 = 0xb0;
pub const SEL_NOT_PRESENT: u16 = 0xb8;
/// 0xc0..0xf8: eight random descriptors.
pub const SEL_RANDOM: u16 = 0xc0;
pub const GDT_LIMIT: u16 = 0xff;

pub const TSS_MAIN: u64 = 0xa000;
pub const TSS2: u64 = 0xa100;
pub const TSS3: u64 = 0xa200;
/// Far pointers, pseudo-descriptors, breakpoint targets.
pub const SCRATCH: u64 = 0xa300;
pub const LDT: u64 = 0xa400;
pub const PD32: u64 = 0xb000;
pub const PDPT_PAE: u64 = 0xc000;
pub const SPARE_PT: u64 = 0xd000;
/// TSS limit: the 104-byte TSS, a 32-byte I/O bitmap for ports 0-255, and
/// the 0xff byte after it.
pub const TSS_LIMIT: u32 = 0x68 + 32;

pub const STACK0: u64 = 0x80000;
pub const STREAM_STACK: u64 = 0x7c000;
pub const STACK3: u64 = 0x78000;
pub const IST_STACK: u64 = 0x74000;
/// Exceptions after which the handler gives up and halts.
pub const EXC_LIMIT: u32 = 200;

/// Paging in 32-bit guests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paging32 {
    Off,
    /// 4 MiB pages (CR4.PSE).
    Pse,
    /// PAE with 2 MiB pages.
    Pae,
}

/// One snippet of a generated guest.
pub struct Snippet {
    pub class: usize,
    pub name: &'static str,
    pub start: u64,
    pub end: u64,
}

/// A generated guest: its code, the memory the host writes, the state the
/// vCPU starts in, and what it is made of.
pub struct Guest {
    pub long: bool,
    pub paging32: Paging32,
    /// Code at CODE_BASE.
    pub image: Vec<u8>,
    /// Memory the host writes before the run: (guest-physical, bytes).
    pub writes: Vec<(u64, Vec<u8>)>,
    pub cr0: u64,
    pub cr3: u64,
    pub cr4: u64,
    pub entry: u64,
    /// HLT here means the stream ran to its end.
    pub end: u64,
    /// HLT here means the handler gave up (no resume address, too many
    /// exceptions).
    pub halt: u64,
    pub snippets: Vec<Snippet>,
    /// Whether the prologue loads TR itself.
    pub ltr: bool,
}

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn u32(&mut self) -> u32 {
        self.next() as u32
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    /// True with probability `num`/`den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// Mixes a seed with a stream number (for per-run seeds).
pub fn mix(a: u64, b: u64) -> u64 {
    Rng(a ^ b.wrapping_mul(0xd1b5_4a32_d192_ed03)).next()
}

/// A code or data segment descriptor.
fn seg_desc(base: u32, limit: u32, access: u8, flags: u8) -> u64 {
    (u64::from(limit) & 0xffff)
        | (u64::from(base) & 0xff_ffff) << 16
        | u64::from(access) << 40
        | (u64::from(limit >> 16) & 0xf) << 48
        | u64::from(flags & 0xf) << 52
        | u64::from(base >> 24) << 56
}

/// An interrupt/trap/task/call gate's low 8 bytes.
fn gate(offset: u32, sel: u16, access: u8, ist: u8) -> u64 {
    u64::from(offset & 0xffff)
        | u64::from(sel) << 16
        | u64::from(ist & 7) << 32
        | u64::from(access) << 40
        | u64::from(offset >> 16) << 48
}

struct Gen<'a> {
    a: Asm,
    r: Rng,
    long: bool,
    paging32: Paging32,
    on: &'a [bool],
    snippets: Vec<Snippet>,
    /// The normal IDT gate of each vector (low 8 bytes), to restore.
    gates: Vec<u64>,
}

/// Values that make good operands.
const VALUES: &[u32] = &[
    0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0xffff, 0x10000, 0x7fff_ffff, 0x8000_0000,
    0xffff_fffe, 0xffff_ffff, 0x10_0000, 0xd000_0000,
];

impl Gen<'_> {
    fn on(&self, name: &str) -> bool {
        class_index(name).is_some_and(|i| self.on[i])
    }

    fn val32(&mut self) -> u32 {
        match self.r.below(4) {
            0 => self.r.pick(VALUES),
            1 => 1 << self.r.below(32),
            _ => self.r.u32(),
        }
    }

    /// An upper half for a 64-bit value. Never in the ranges the host's
    /// kernel uses (0xffff8880.. to 0xfffffe7f..), so that a value there
    /// after a run can only be the host's.
    fn hi32(&mut self) -> u32 {
        let v = [0, 0, 0xffff_ffff, self.r.u32() & 0xffff, 0x8000, 0x7fff_ffff, 0xffff_8000, 1 << self.r.below(20)];
        self.r.pick(&v)
    }

    fn val64(&mut self) -> u64 {
        if self.long {
            u64::from(self.hi32()) << 32 | u64::from(self.val32())
        } else {
            u64::from(self.val32())
        }
    }

    /// Interesting guest addresses: RAM areas, its end, unbacked memory,
    /// MMIO, the top of the address space.
    fn addr32(&mut self) -> u32 {
        let r = self.r.u32();
        let v = [
            0,
            BUF_BASE as u32 + (r & 0xfff),
            RAM_SIZE as u32 - 4,
            RAM_SIZE as u32 - 2,
            RAM_SIZE as u32 - 1,
            RAM_SIZE as u32,
            RAM_SIZE as u32 + (r & 0xffff),
            MMIO_BASE as u32,
            MMIO_BASE as u32 + (r & 0xffff),
            r,
            r & 0xffff_f000,
            0xffff_f000,
            0xffff_fffc,
            0xfee0_0000,
            PD_BASE as u32,
            FUZZ_GDT_BASE as u32,
            IDT_BASE as u32,
            DATA_BASE as u32 + (r & 0x3ff),
        ];
        self.r.pick(&v)
    }

    /// Starts a snippet: its prologue stores the next snippet's address
    /// (patched by `end`) as the resume address.
    fn begin(&mut self) -> (u64, u64) {
        let start = self.a.here();
        self.a.store32(EXC_RESUME as u32, 0);
        (start, self.a.here() - 4)
    }

    fn end(&mut self, class: usize, name: &'static str, (start, patch): (u64, u64)) {
        let next = self.a.here();
        self.a.patch32(patch, next as u32);
        self.snippets.push(Snippet { class, name, start, end: next });
    }

    /// A code selector of this mode at ring 0.
    fn code0(&self) -> u16 {
        if self.long {
            SEL_CODE64
        } else {
            SEL_CODE32
        }
    }

    fn code3(&self) -> u16 {
        if self.long {
            SEL_CODE64_R3 | 3
        } else {
            SEL_CODE32_R3 | 3
        }
    }

    /// A selector: mostly ones that mean something. Without the
    /// task-switch class, never a TSS or a task gate: a far transfer to
    /// one is a task switch.
    fn selector(&mut self) -> u16 {
        let sel = self.any_selector();
        let tss = [SEL_TSS, SEL_TSS2, SEL_TSS3, SEL_TASKGATE];
        if !self.on("task-switch") && sel & 4 == 0 && tss.contains(&(sel & !7)) {
            SEL_DATA | sel & 3
        } else {
            sel
        }
    }

    fn any_selector(&mut self) -> u16 {
        let rpl = self.r.below(4) as u16;
        match self.r.below(6) {
            0 => self.r.u32() as u16,
            1 => (self.r.below(32) as u16) << 3 | rpl,
            2 => 4 | (self.r.below(8) as u16) << 3 | rpl,
            3 => 0,
            _ => {
                let s = [
                    SEL_CODE32, SEL_DATA, SEL_CODE64, SEL_CODE32_R3, SEL_DATA_R3, SEL_CODE64_R3, SEL_TSS,
                    SEL_TSS2, SEL_LDT, SEL_CALLGATE, SEL_TASKGATE, SEL_CODE16, SEL_DATA16, SEL_CONFORMING,
                    SEL_DATA_SMALL, SEL_NOT_PRESENT, SEL_RANDOM, SEL_RANDOM + 8, SEL_RANDOM + 0x38,
                ];
                self.r.pick(&s) | rpl
            }
        }
    }

    fn gen(&mut self, class: usize) {
        let name = CLASSES[class].name;
        let s = self.begin();
        let what = match name {
            "svm" => self.svm(),
            "cache" => self.cache(),
            "rdpmc-rsm" => self.rdpmc_rsm(),
            "task-switch" => self.task_switch(),
            "qemu-tss" => {
                self.a.b(&[0x31, 0xc0, 0x0f, 0x00, 0xd8]); // xor eax,eax; ltr ax
                "null LTR"
            }
            "far" => self.far(),
            "seg" => self.seg(),
            "dt" => self.dt(),
            "cr" => self.cr(),
            "cr4" => self.cr4(),
            "cr-gp" => self.cr_gp(),
            "dr" => self.dr(),
            "db-ac" => self.db_ac(),
            "msr" => self.msr(),
            "efer-lme" => self.efer_lme(),
            "cpuid" => self.cpuid(),
            "io" => self.io(),
            "mmio" => self.mmio(),
            "paging" => self.paging(),
            "random" => self.random(),
            "hlt" => {
                if self.r.chance(1, 2) {
                    self.a.b(&[0xf4]);
                    "HLT"
                } else {
                    self.a.b(&[0xfb, 0xf4, 0xfa]);
                    "STI; HLT; CLI"
                }
            }
            "triple" => {
                self.a.store_dtr(SCRATCH as u32 + 0x10, 0, 0);
                self.a.dt_op(3, SCRATCH as u32 + 0x10);
                self.a.b(&[0x0f, 0x0b]);
                "LIDT limit 0; UD2"
            }
            "int" => self.int(),
            "flags" => self.flags(),
            "ring3" => self.ring3(),
            "syscall" => self.syscall(),
            "cs-l-d" => {
                self.a.far_next(SCRATCH as u32, SEL_CODE_LD, self.r.chance(1, 2), false);
                "far JMP to a code segment with L=1 and D=1"
            }
            _ => unreachable!(),
        };
        self.end(class, what, s);
    }

    fn svm(&mut self) -> &'static str {
        let insns: [(&str, u8); 8] = [
            ("VMRUN", 0xd8),
            ("VMMCALL", 0xd9),
            ("VMLOAD", 0xda),
            ("VMSAVE", 0xdb),
            ("STGI", 0xdc),
            ("CLGI", 0xdd),
            ("SKINIT", 0xde),
            ("INVLPGA", 0xdf),
        ];
        let (name, op) = self.r.pick(&insns);
        let rax = if op == 0xd9 {
            if self.r.chance(1, 3) {
                0
            } else {
                u64::from(self.val32())
            }
        } else if self.r.chance(1, 2) {
            u64::from(self.addr32() & !0xfff)
        } else {
            self.val64()
        };
        self.a.mov_r64(EAX, rax);
        let v = self.val32();
        self.a.mov_r32(ECX, v);
        for r in [EBX, EDX, ESI] {
            let v = self.val32();
            self.a.mov_r32(r, v);
        }
        self.a.b(&[0x0f, 0x01, op]);
        name
    }

    fn cache(&mut self) -> &'static str {
        let addr = self.addr32();
        match self.r.below(5) {
            0 => {
                self.a.b(&[0x0f, 0x08]);
                "INVD"
            }
            1 => {
                self.a.b(&[0x0f, 0x09]);
                "WBINVD"
            }
            2 => {
                self.a.b(&[0xf3, 0x0f, 0x09]);
                "WBNOINVD"
            }
            3 => {
                self.a.b(&[0x0f, 0xae]);
                self.a.abs(7, addr);
                "CLFLUSH"
            }
            _ => {
                self.a.b(&[0x0f, 0x0d]);
                self.a.abs(1, addr);
                "PREFETCHW"
            }
        }
    }

    fn rdpmc_rsm(&mut self) -> &'static str {
        if self.r.chance(1, 2) {
            let c = self.r.pick(&[0, 1, 3, 4, 5, 0x4000_0000, 0x4000_0001, 0x8000_0000]);
            self.a.mov_r32(ECX, c);
            self.a.b(&[0x0f, 0x33]);
            "RDPMC"
        } else {
            self.a.b(&[0x0f, 0xaa]);
            "RSM"
        }
    }

    /// Fills TSS2 (32-bit layout) for a switch to `eip`, with a CR3 that
    /// may point anywhere, and marks its descriptor available or busy.
    fn craft_tss2(&mut self, eip: u32, busy: bool) -> u64 {
        let cr3 = match self.r.below(5) {
            0 => PML4_BASE as u32,
            1 => PD32 as u32,
            2 => 0x7f00_0000,
            3 => self.addr32() & !0xfff,
            _ => self.r.u32(),
        };
        let t = TSS2 as u32;
        self.a.store32(t + 0x1c, cr3);
        self.a.store32(t + 0x20, eip);
        let eip_at = self.a.here() - 4;
        let fl = if self.r.chance(1, 4) { self.r.u32() & 0x3f7fd5 | 2 } else { 2 };
        self.a.store32(t + 0x24, fl);
        self.a.store32(t + 0x38, STREAM_STACK as u32);
        let (cs, ds) = if self.r.chance(1, 5) {
            (u32::from(self.selector()), u32::from(self.selector()))
        } else {
            (u32::from(SEL_CODE32), u32::from(SEL_DATA))
        };
        for off in [0x48, 0x50, 0x54, 0x58, 0x5c] {
            self.a.store32(t + off, ds);
        }
        self.a.store32(t + 0x4c, cs);
        let ldt = if self.r.chance(1, 4) { u32::from(self.selector()) } else { 0 };
        self.a.store32(t + 0x60, ldt);
        // The descriptor's type: available (9) or busy (11).
        let hi = seg_desc(TSS2 as u32, TSS_LIMIT, (attr::P | if busy { attr::TSS_BUSY } else { attr::TSS_AVAILABLE }) as u8, 0) >> 32;
        self.a.store32(FUZZ_GDT_BASE as u32 + u32::from(SEL_TSS2) + 4, hi as u32);
        eip_at
    }

    fn task_switch(&mut self) -> &'static str {
        // Where the new task starts: a stub that puts back what the
        // snippet changed and goes on with the next snippet. The snippet
        // jumps over it. Its address is known only once the variant is
        // emitted, so emit the variant with a placeholder.
        let variant = self.r.below(6);
        let vector = self.r.pick(&[6u8, 13, 3, 0x80, 0x41]);
        let eip_patch = self.craft_tss2(0, variant == 5);
        let name = match variant {
            0 => {
                self.a.far(SCRATCH as u32, SEL_TSS2, 0, false);
                "far JMP to a TSS"
            }
            1 => {
                self.a.far(SCRATCH as u32, SEL_TSS2, 0, true);
                "far CALL to a TSS"
            }
            2 => {
                let sel = if self.r.chance(1, 2) { SEL_TASKGATE } else { SEL_TASKGATE | 3 };
                let call = self.r.chance(1, 2);
                self.a.far(SCRATCH as u32, sel, 0, call);
                "far JMP/CALL to a task gate"
            }
            3 | 4 => {
                // A task gate in the IDT, then INT n or an exception.
                let g = gate(0, SEL_TSS2, 0xe5, 0);
                let at = IDT_BASE as u32 + u32::from(vector) * if self.long { 16 } else { 8 };
                self.a.store64(at, g);
                if variant == 3 {
                    self.a.b(&[0xcd, vector]);
                    "INT n through a task gate"
                } else {
                    match vector {
                        6 => self.a.b(&[0x0f, 0x0b]),
                        3 => self.a.b(&[0xcc]),
                        // An MSR the module refuses: an injected #GP.
                        13 => self.a.wrmsr(0xdead_beef, 0),
                        _ => self.a.b(&[0x31, 0xc9, 0xf7, 0xf1]),
                    }
                    "an exception through a task gate"
                }
            }
            _ => {
                // IRET with NT: back to the task in the TSS's link field.
                self.a.store32(TSS_MAIN as u32, u32::from(SEL_TSS2));
                self.a.b(&[0x9c]);
                self.a.b(&[0x81, 0x0c, 0x24]);
                self.a.u32(0x4000);
                self.a.b(&[0x9d]);
                self.a.iret();
                "IRET with EFLAGS.NT"
            }
        };
        // Skip the stub when nothing switched.
        let skip = self.a.here();
        self.a.jmp(0);
        let stub = self.a.here();
        self.a.patch32(eip_patch, stub as u32);
        if variant == 3 || variant == 4 {
            let at = IDT_BASE as u32 + u32::from(vector) * if self.long { 16 } else { 8 };
            let g = self.gates[usize::from(vector)];
            self.a.store64(at, g);
        }
        let after = self.a.here();
        let rel = (after - (skip + 5)) as u32;
        self.a.patch32(skip + 1, rel);
        name
    }

    fn far(&mut self) -> &'static str {
        // The target is the next snippet; its address is known after the
        // instruction, so the instruction's length is computed up front.
        let variant = self.r.below(6);
        let sel = match self.r.below(8) {
            0 => self.selector(),
            1 => SEL_CODE16,
            2 => SEL_CONFORMING,
            3 => SEL_NOT_PRESENT,
            4 => SEL_CALLGATE | self.r.below(4) as u16,
            5 => if self.long { SEL_CODE32 } else { SEL_CODE64 },
            _ => self.code0(),
        };
        if sel & !3 == SEL_CALLGATE {
            // Point the gate at the next snippet (patched below).
            let g_at = FUZZ_GDT_BASE as u32 + u32::from(SEL_CALLGATE);
            let code = self.code0();
            let before = self.a.here();
            self.a.store64(g_at, gate(0, code, 0xec, 0));
            let patch_lo = before + 7;
            let patch_hi = before + 11 + 7;
            let call = self.r.chance(1, 2);
            self.a.far(SCRATCH as u32, sel, 0, call);
            let next = self.a.here() as u32;
            // Low dword: offset 15:0 | selector << 16; high: access | offset 31:16.
            self.a.patch32(patch_lo, (next & 0xffff) | u32::from(code) << 16);
            self.a.patch32(patch_hi, 0xec00 | (next & 0xffff_0000));
            return if call { "far CALL through a call gate" } else { "far JMP through a call gate" };
        }
        match variant {
            0..=2 => {
                let call = variant == 1;
                self.a.far_next(SCRATCH as u32, sel, call, false);
                if call { "far CALL" } else { "far JMP" }
            }
            3 => {
                // JMP FAR [m16:32] also in 32-bit mode.
                self.a.far_next(SCRATCH as u32, sel, false, true);
                "far JMP through memory"
            }
            _ => {
                // PUSH sel; PUSH next; RETF.
                let len = if self.long { 5 + 5 + 2 } else { 5 + 5 + 1 };
                let next = self.a.here() + len;
                self.a.push_imm(u32::from(sel));
                self.a.push_imm(next as u32);
                self.a.retf();
                "RETF"
            }
        }
    }

    fn seg(&mut self) -> &'static str {
        let sel = self.selector();
        match self.r.below(7) {
            0 | 1 => {
                let sreg = self.r.pick(&[ES, DS, FS, GS, SS]);
                self.a.load_sreg(sreg, sel);
                // Use it: a load through the segment.
                let pfx = [0x26, 0x26, 0x36, 0x3e, 0x64, 0x65][usize::from(sreg)];
                let addr = self.addr32() & 0xffff;
                self.a.b(&[pfx, 0x8b]);
                self.a.abs(ECX, addr);
                if self.r.chance(1, 2) {
                    self.a.load_sreg(sreg, SEL_DATA);
                }
                "MOV Sreg, random selector"
            }
            2 => {
                // MOV SS, then an instruction in its shadow that exits.
                self.a.load_sreg(SS, SEL_DATA);
                let follow: &[u8] = self.r.pick(&[
                    &[0x0f, 0xa2][..],
                    &[0xf4],
                    &[0xcc],
                    &[0x0f, 0x01, 0xd9],
                    &[0xec],
                    &[0x0f, 0x32],
                    &[0xfb],
                ]);
                self.a.b(follow);
                "MOV SS shadow over an exiting instruction"
            }
            3 => {
                // POP SS (32-bit) / LSS.
                self.a.store32(SCRATCH as u32, STREAM_STACK as u32 - 0x100);
                self.a.store16(SCRATCH as u32 + 4, sel);
                self.a.b(&[0x0f, 0xb2]);
                self.a.abs(ESP, SCRATCH as u32);
                "LSS with a random selector"
            }
            4 if self.long => {
                let msr = self.r.pick(&[0xc000_0100u32, 0xc000_0101, 0xc000_0102]);
                let v = self.val64();
                self.a.wrmsr(msr, v);
                self.a.b(&[0x0f, 0x01, 0xf8]); // SWAPGS
                self.a.b(&[0x65, 0x8b]);
                self.a.abs(ECX, 0);
                self.a.b(&[0x0f, 0x01, 0xf8]);
                "FS/GS base, SWAPGS, GS access"
            }
            5 => {
                // WRFSBASE/RDGSBASE (#UD without CR4.FSGSBASE).
                let v = self.r.u32();
                self.a.mov_r32(EAX, v);
                self.a.b(&[0xf3, 0x0f, 0xae, self.r.pick(&[0xd0, 0xd8, 0xc0, 0xc8])]);
                "WR/RD FS/GS BASE"
            }
            _ => {
                // Load a segment from the LDT.
                self.a.load_sreg(DS, 4 | (self.r.below(8) as u16) << 3 | 3);
                self.a.load32(ECX, BUF_BASE as u32);
                self.a.load_sreg(DS, SEL_DATA);
                "MOV DS, LDT selector"
            }
        }
    }

    fn dt(&mut self) -> &'static str {
        let ptr = SCRATCH as u32 + 0x10;
        match self.r.below(7) {
            0 | 1 => {
                let lgdt = self.r.chance(1, 2);
                let base = if self.r.chance(1, 2) { u64::from(self.addr32()) } else { self.val64() };
                let any = self.r.u32() as u16;
                let limit = self.r.pick(&[0, 7, 0xff, 0xffff, any]);
                self.a.store_dtr(ptr, limit, base);
                self.a.dt_op(if lgdt { 2 } else { 3 }, ptr);
                // Something that exits, then the good table again.
                self.a.b(&[0x0f, 0xa2]);
                if lgdt {
                    self.a.store_dtr(ptr, GDT_LIMIT, FUZZ_GDT_BASE);
                    self.a.dt_op(2, ptr);
                    "LGDT random, CPUID, LGDT back"
                } else {
                    self.a.store_dtr(ptr, if self.long { 0xfff } else { 0x7ff }, IDT_BASE);
                    self.a.dt_op(3, ptr);
                    "LIDT random, CPUID, LIDT back"
                }
            }
            2 => {
                let sel = if self.r.chance(1, 2) { SEL_LDT } else { self.selector() };
                self.a.mov_r32(EAX, u32::from(sel));
                self.a.b(&[0x0f, 0x00, 0xd0]);
                "LLDT"
            }
            3 => {
                let sel = self.r.pick(&[SEL_TSS2, SEL_TSS3, SEL_TSS, SEL_DATA, SEL_LDT, SEL_RANDOM, SEL_TSS2 | 3]);
                self.a.mov_r32(EAX, u32::from(sel));
                self.a.b(&[0x0f, 0x00, 0xd8]);
                "LTR of another descriptor"
            }
            4 => {
                let op = self.r.below(4) as u8;
                self.a.dt_op(op, if op < 2 { SCRATCH as u32 + 0x20 } else { ptr });
                // Undo an LGDT/LIDT of garbage right away.
                self.a.store_dtr(ptr, GDT_LIMIT, FUZZ_GDT_BASE);
                self.a.dt_op(2, ptr);
                self.a.store_dtr(ptr, if self.long { 0xfff } else { 0x7ff }, IDT_BASE);
                self.a.dt_op(3, ptr);
                "SGDT/SIDT/LGDT/LIDT of scratch"
            }
            5 => {
                self.a.b(&[self.r.pick(&[0x0f]), 0x00, self.r.pick(&[0xc0, 0xc8])]); // SLDT/STR eax
                self.a.b(&[0x0f, 0x01, 0xe0]); // SMSW eax
                if self.r.chance(1, 2) {
                    let v = self.r.u32() | 1;
                    self.a.mov_r32(EAX, v & 0xf);
                    self.a.b(&[0x0f, 0x01, 0xf0]); // LMSW ax
                    "SLDT/STR, SMSW, LMSW"
                } else {
                    "SLDT/STR, SMSW"
                }
            }
            _ => {
                let sel = self.selector();
                self.a.mov_r32(ECX, u32::from(sel));
                let op = self.r.pick(&[[0x0f, 0x02, 0xc1], [0x0f, 0x03, 0xc1], [0x0f, 0x00, 0xe1], [0x0f, 0x00, 0xe9]]);
                self.a.b(&op);
                "LAR/LSL/VERR/VERW"
            }
        }
    }

    /// CR3 for this run's paging.
    fn good_cr3(&self) -> u32 {
        if self.long {
            PML4_BASE as u32
        } else {
            match self.paging32 {
                Paging32::Pae => PDPT_PAE as u32,
                _ => PD32 as u32,
            }
        }
    }

    fn cr(&mut self) -> &'static str {
        match self.r.below(7) {
            0 | 1 => {
                // Toggle legal CR0 bits.
                let bits = [0x2u32, 0x4, 0x8, 0x20, 0x1_0000, 0x4_0000, 0x6000_0000, 0x4000_0000, 0x2];
                let mut mask = 0;
                for _ in 0..1 + self.r.below(3) {
                    mask |= self.r.pick(&bits);
                }
                if mask & 0x2000_0000 != 0 {
                    mask |= 0x4000_0000;
                }
                self.a.mov_from_cr(0);
                self.a.b(&[0x35]);
                self.a.u32(mask); // xor eax, mask
                self.a.mov_to_cr(0);
                "CR0 toggle"
            }
            2 if !self.long => {
                // Paging off and on again (32-bit).
                self.a.mov_from_cr(0);
                self.a.b(&[0x25]);
                self.a.u32(0x7fff_ffff);
                self.a.mov_to_cr(0);
                self.a.b(&[0x0f, 0xa2]);
                if self.paging32 != Paging32::Off || self.r.chance(1, 2) {
                    let cr3 = self.good_cr3();
                    self.a.mov_r32(EAX, cr3);
                    self.a.mov_to_cr(3);
                    self.a.mov_from_cr(0);
                    self.a.b(&[0x0d]);
                    self.a.u32(0x8000_0000);
                    self.a.mov_to_cr(0);
                    "paging off, CPUID, paging on"
                } else {
                    "paging off"
                }
            }
            3 => {
                let v = self.val64();
                self.a.mov_r64(EAX, v);
                self.a.mov_to_cr(2);
                self.a.mov_from_cr(2);
                "CR2 write/read"
            }
            4 => {
                // Reload CR3, perhaps with PCD/PWT.
                let cr3 = self.good_cr3() | self.r.pick(&[0, 0x8, 0x10, 0x18]);
                self.a.mov_r32(EAX, cr3);
                self.a.mov_to_cr(3);
                "CR3 reload"
            }
            5 => {
                let v = self.r.below(16) as u32;
                self.a.mov_r32(EAX, v);
                self.a.mov_to_cr(8);
                self.a.mov_from_cr(8);
                "CR8 write/read"
            }
            _ => {
                for n in [0, 2, 3, 4, 8] {
                    if self.r.chance(1, 2) {
                        self.a.mov_from_cr(n);
                    }
                }
                self.a.b(&[0x0f, 0x06]); // CLTS
                "CR reads, CLTS"
            }
        }
    }

    fn cr4(&mut self) -> &'static str {
        let bits = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 17, 18, 20, 21, 22, 23];
        let mut mask = 0u32;
        for _ in 0..1 + self.r.below(3) {
            mask |= 1 << self.r.pick(&bits);
        }
        self.a.mov_from_cr(4);
        self.a.b(&[0x35]);
        self.a.u32(mask);
        self.a.mov_to_cr(4);
        self.a.b(&[0x0f, 0xa2]);
        // And back, should it have worked.
        self.a.mov_from_cr(4);
        self.a.b(&[0x35]);
        self.a.u32(mask);
        self.a.mov_to_cr(4);
        "CR4 toggle"
    }

    fn cr_gp(&mut self) -> &'static str {
        match self.r.below(6) {
            0 => {
                // NW without CD, or PG without PE.
                self.a.mov_from_cr(0);
                let (and, or) = if self.r.chance(1, 2) { (!0x4000_0000u32, 0x2000_0000) } else { (!1, 0x8000_0000) };
                self.a.b(&[0x25]);
                self.a.u32(and);
                self.a.b(&[0x0d]);
                self.a.u32(or);
                self.a.mov_to_cr(0);
                "CR0 NW without CD / PG without PE"
            }
            1 if self.long => {
                self.a.mov_from_cr(0);
                self.a.b(&[0x48, 0x0f, 0xba, 0xe8, 32 + self.r.below(32) as u8]); // bts rax, n
                self.a.mov_to_cr(0);
                "CR0 upper bit"
            }
            2 if self.long => {
                let v = u64::from(self.good_cr3()) | 1 << (52 + self.r.below(12));
                self.a.mov_r64(EAX, v);
                self.a.mov_to_cr(3);
                "CR3 reserved bit"
            }
            3 if self.long => {
                let any = u64::from(self.r.u32()) | 16;
                let v = self.r.pick(&[16u64, 0xff, 1 << 32, any]);
                self.a.mov_r64(EAX, v);
                self.a.mov_to_cr(8);
                "CR8 > 15"
            }
            4 if self.long => {
                self.a.mov_from_cr(0);
                self.a.b(&[0x25]);
                self.a.u32(0x7fff_ffff);
                self.a.mov_to_cr(0);
                "CR0.PG off in 64-bit mode"
            }
            _ => {
                let n = self.r.pick(&[1u8, 5, 6, 7, 9, 10, 15]);
                if n > 7 && !self.long {
                    self.a.b(&[0x0f, 0x22, 0xc8]);
                } else if n > 7 {
                    self.a.b(&[0x44, 0x0f, if self.r.chance(1, 2) { 0x22 } else { 0x20 }, 0xc0 | (n & 7) << 3]);
                } else {
                    self.a.b(&[0x0f, if self.r.chance(1, 2) { 0x22 } else { 0x20 }, 0xc0 | n << 3]);
                }
                "MOV to/from a CR that does not exist"
            }
        }
    }

    fn dr(&mut self) -> &'static str {
        match self.r.below(4) {
            0 => {
                let n = self.r.pick(&[0u8, 1, 2, 3, 6]);
                let v = self.val64();
                self.a.mov_r64(EAX, v);
                self.a.mov_to_dr(n);
                self.a.mov_from_dr(n);
                "DRn random"
            }
            1 => {
                // An instruction breakpoint on a nearby instruction.
                let n = self.r.below(4) as u8;
                let target = self.a.here() + 5 + 3 + 5 + 3 + self.r.below(8);
                self.a.mov_r32(EAX, target as u32);
                self.a.mov_to_dr(n);
                let dr7 = 3u32 << (2 * n) | if self.r.chance(1, 4) { 0x300 } else { 0 };
                self.a.mov_r32(EAX, dr7);
                self.a.mov_to_dr(7);
                self.a.b(&[0x90; 8]);
                self.a.b(&[0x31, 0xc0]);
                self.a.mov_to_dr(7);
                "instruction breakpoint"
            }
            2 => {
                // DR7.GD: the next MOV DR is a #DB.
                self.a.mov_r32(EAX, 0x2000);
                self.a.mov_to_dr(7);
                self.a.mov_from_dr(self.r.pick(&[0, 6, 7]));
                "DR7.GD"
            }
            _ => {
                let v = if self.r.chance(1, 2) { self.val64() } else { u64::from(self.r.u32() & !0xffff_0000) | 0x400 };
                self.a.mov_r64(EAX, v);
                self.a.mov_to_dr(7);
                self.a.mov_from_dr(7);
                for n in [4u8, 5] {
                    if self.r.chance(1, 2) {
                        self.a.mov_from_dr(n);
                    }
                }
                self.a.b(&[0x31, 0xc0]);
                self.a.mov_to_dr(7);
                "DR7 random, DR4/DR5"
            }
        }
    }

    fn db_ac(&mut self) -> &'static str {
        match self.r.below(4) {
            0 => {
                // A data breakpoint on the stack, then a push or an exception.
                self.a.w();
                self.a.b(&[0x89, 0xe0]); // mov eax, esp
                self.a.w();
                self.a.b(&[0x83, 0xe8, self.r.pick(&[4u8, 8, 16, 24, 40])]); // sub eax, n
                self.a.mov_to_dr(0);
                let rw = self.r.pick(&[1u32, 3]);
                let len = self.r.pick(&[0u32, 1, 2, 3]);
                self.a.mov_r32(EAX, 3 | rw << 16 | len << 18);
                self.a.mov_to_dr(7);
                let follow: &[u8] = self.r.pick(&[&[0x50, 0x58][..], &[0xcc], &[0x0f, 0x0b], &[0xcd, 0x80], &[0x0f, 0xa2]]);
                self.a.b(follow);
                self.a.b(&[0x31, 0xc0]);
                self.a.mov_to_dr(7);
                "data breakpoint on the stack"
            }
            1 => {
                // MOV SS from a watched location, then INT3 (POP SS/MOV SS #DB).
                self.a.store32(SCRATCH as u32 + 0x30, u32::from(SEL_DATA));
                self.a.mov_r32(EAX, SCRATCH as u32 + 0x30);
                self.a.mov_to_dr(1);
                self.a.mov_r32(EAX, 0xc | 3 << 20 | 1 << 22);
                self.a.mov_to_dr(7);
                self.a.b(&[0x8e]);
                self.a.abs(SS, SCRATCH as u32 + 0x30);
                let follow: &[u8] = self.r.pick(&[&[0xcc][..], &[0xcd, 0x03], &[0x0f, 0x05], &[0x0f, 0x34], &[0xf1]]);
                self.a.b(follow);
                self.a.b(&[0x31, 0xc0]);
                self.a.mov_to_dr(7);
                "MOV SS from a watched location, then INT3/SYSCALL"
            }
            2 => {
                // TF with a data breakpoint: single-step and a data hit at once.
                self.a.mov_r32(EAX, BUF_BASE as u32);
                self.a.mov_to_dr(2);
                self.a.mov_r32(EAX, 0x30 | 1 << 24 | 3 << 26);
                self.a.mov_to_dr(7);
                self.a.b(&[0x9c, 0x81, 0x0c, 0x24]);
                self.a.u32(0x100);
                self.a.b(&[0x9d]);
                self.a.save32(BUF_BASE as u32, EAX);
                self.a.b(&[0x0f, 0xa2, 0x90]);
                "TF and a data breakpoint"
            }
            _ => {
                // #AC: CR0.AM, then ring 3 with EFLAGS.AC and a misaligned access.
                self.a.mov_from_cr(0);
                self.a.b(&[0x0d]);
                self.a.u32(0x4_0000);
                self.a.mov_to_cr(0);
                let misalign = self.r.pick(&[1u32, 2, 3, 7]);
                self.iret_to_ring3(0x4_0202, STACK3 as u32 - misalign);
                self.a.load32(EAX, BUF_BASE as u32 + misalign);
                self.a.b(&[0x50]); // push eax on the misaligned stack
                self.a.b(&[0x0f, 0x0b]);
                "#AC at CPL3"
            }
        }
    }

    /// IRET to ring 3 at the instruction after it, with `rflags` and `rsp`.
    fn iret_to_ring3(&mut self, rflags: u32, rsp: u32) {
        if !self.long {
            self.a.load_sreg(DS, SEL_DATA_R3 | 3);
            self.a.load_sreg(ES, SEL_DATA_R3 | 3);
        }
        self.a.push_imm(u32::from(SEL_DATA_R3 | 3));
        self.a.push_imm(rsp);
        self.a.push_imm(rflags);
        self.a.push_imm(u32::from(self.code3()));
        let next = self.a.here() + 5 + if self.long { 2 } else { 1 };
        self.a.push_imm(next as u32);
        self.a.iret();
    }

    fn msr(&mut self) -> &'static str {
        const MSRS: &[u32] = &[
            0x10, 0x1b, 0x3a, 0x48, 0x49, 0x8b, 0xc1, 0xe7, 0xe8, 0x10a, 0x174, 0x175, 0x176, 0x179, 0x17a,
            0x1a0, 0x1d9, 0x200, 0x201, 0x250, 0x277, 0x2ff, 0x400, 0x6e0, 0x802, 0x808, 0x80b, 0x80f, 0x830, 0x838, 0x83f, 0x8ff,
            0xc000_0080, 0xc000_0081, 0xc000_0082, 0xc000_0083, 0xc000_0084, 0xc000_0100, 0xc000_0101,
            0xc000_0102, 0xc000_0103, 0xc000_0104, 0xc001_0000, 0xc001_0004, 0xc001_0010, 0xc001_0015,
            0xc001_001f, 0xc001_0058, 0xc001_0114, 0xc001_0115, 0xc001_0117, 0xc001_0131, 0xc001_0140,
            0xc001_1020, 0xc001_1029, 0x4000_0000, 0x4000_0070, 0x4b56_4d00,
        ];
        let msr = match self.r.below(4) {
            0 => self.r.u32(),
            1 => 0xc000_0000 | self.r.u32() & 0x1_ffff,
            _ => self.r.pick(MSRS),
        };
        if msr == 0xc000_0080 {
            // EFER: flip bits other than LME (that is efer-lme's).
            let bits = [0u32, 10, 11, 12, 13, 14, 15, 16, 20, 31];
            let mask = 1 << self.r.pick(&bits);
            self.a.rdmsr(msr);
            self.a.b(&[0x35]);
            self.a.u32(mask);
            self.a.b(&[0x0f, 0x30]);
            return "EFER bit flip";
        }
        if self.r.chance(1, 3) {
            self.a.rdmsr(msr);
            return "RDMSR";
        }
        let v = self.val64();
        let v = if self.r.chance(1, 3) { v } else { v & 0xffff_ffff };
        if self.r.chance(1, 2) {
            self.a.rdmsr(msr);
            self.a.b(&[0x35]);
            self.a.u32(v as u32);
            self.a.b(&[0x0f, 0x30]);
            "RDMSR, flip, WRMSR"
        } else {
            self.a.wrmsr(msr, v);
            "WRMSR"
        }
    }

    fn efer_lme(&mut self) -> &'static str {
        if !self.long {
            // LME with paging off (it #GPs with paging on), a few exits,
            // then perhaps long mode: PAE, CR3, PG, and a far jump to a
            // 64-bit copy of... the next snippet (32-bit code in 64-bit
            // mode: it goes where it goes).
            self.a.mov_from_cr(0);
            self.a.b(&[0x25]);
            self.a.u32(0x7fff_ffff);
            self.a.mov_to_cr(0);
            self.a.rdmsr(0xc000_0080);
            self.a.b(&[0x0d]);
            self.a.u32(0x100);
            self.a.b(&[0x0f, 0x30, 0x0f, 0xa2]);
            self.a.rdmsr(0xc000_0080);
            if self.r.chance(1, 2) {
                self.a.b(&[0x25]);
                self.a.u32(!0x100);
                self.a.b(&[0x0f, 0x30]);
                "EFER.LME with paging off, and off again"
            } else {
                self.a.mov_from_cr(4);
                self.a.b(&[0x0d]);
                self.a.u32(0x20);
                self.a.mov_to_cr(4);
                self.a.mov_r32(EAX, PML4_BASE as u32);
                self.a.mov_to_cr(3);
                self.a.mov_from_cr(0);
                self.a.b(&[0x0d]);
                self.a.u32(0x8000_0000);
                self.a.mov_to_cr(0);
                self.a.b(&[0x0f, 0xa2]);
                // Long mode is on: the IDT's 8-byte gates no longer fit.
                "EFER.LME with paging off, then into long mode"
            }
        } else {
            // Out of long mode: compatibility mode, paging off, LME left on.
            self.a.far_next(SCRATCH as u32, SEL_CODE32, false, true);
            self.a.mov_from_cr(0);
            self.a.b(&[0x25]);
            self.a.u32(0x7fff_ffff);
            self.a.mov_to_cr(0);
            self.a.b(&[0x0f, 0xa2]);
            self.a.rdmsr(0xc000_0080);
            self.a.b(&[0xf4]);
            "compatibility mode, paging off (LME stays)"
        }
    }

    fn cpuid(&mut self) -> &'static str {
        match self.r.below(4) {
            0 | 1 => {
                let any = self.r.u32();
                let leaf = self.r.pick(&[
                    0, 1, 2, 4, 6, 7, 0xb, 0xd, 0xf, 0x10, 0x14, 0x1f, 0x4000_0000, 0x4000_0001, 0x4000_0100,
                    0x8000_0000, 0x8000_0001, 0x8000_0008, 0x8000_000a, 0x8000_001f, 0x8000_0026, 0x8fff_ffff,
                    0xffff_ffff, any,
                ]);
                self.a.mov_r32(EAX, leaf);
                let any = self.r.u32();
                let sub = self.r.pick(&[0, 1, 2, any]);
                self.a.mov_r32(ECX, sub);
                self.a.b(&[0x0f, 0xa2]);
                "CPUID"
            }
            2 => {
                let any = self.r.u32();
                let xcr = self.r.pick(&[0u32, 1, any]);
                self.a.mov_r32(ECX, xcr);
                let any = self.r.u32();
                let v = self.r.pick(&[1u32, 3, 7, 0xe7, any]);
                self.a.mov_r32(EAX, v);
                self.a.b(&[0x31, 0xd2]);
                if self.r.chance(1, 2) {
                    self.a.b(&[0x0f, 0x01, 0xd1]);
                    "XSETBV"
                } else {
                    self.a.b(&[0x0f, 0x01, 0xd0]);
                    "XGETBV"
                }
            }
            _ => {
                let op: &[u8] = self.r.pick(&[
                    &[0x0f, 0x31][..],
                    &[0x0f, 0x01, 0xf9],
                    &[0xf3, 0x0f, 0xc7, 0xf8],
                    &[0x0f, 0x01, 0xc8],
                    &[0x0f, 0x01, 0xc9],
                    &[0x0f, 0x01, 0xfd],
                    &[0x0f, 0xc7, 0xf0],
                    &[0xf3, 0x90],
                ]);
                self.a.mov_r32(EAX, BUF_BASE as u32);
                self.a.b(&[0x31, 0xc9, 0x31, 0xd2]);
                self.a.b(op);
                "RDTSC/RDTSCP/RDPID/MONITOR/MWAIT/RDPRU/RDRAND/PAUSE"
            }
        }
    }

    fn port(&mut self) -> u16 {
        let v = [
            PORT_TEST as u16,
            PORT_TEST as u16 + 1,
            PORT_UART as u16 + 5,
            PORT_EXC as u16,
            0x80,
            0xcf8,
            0xcfc,
            0x20,
            0xffff,
            0xfffe,
            self.r.u32() as u16,
        ];
        self.r.pick(&v)
    }

    fn io(&mut self) -> &'static str {
        let port = self.port();
        self.a.mov_dx(port);
        if self.r.chance(1, 3) {
            let ops: [&[u8]; 8] = [&[0xec], &[0x66, 0xed], &[0xed], &[0xee], &[0x66, 0xef], &[0xef], &[0xe4, 0x80], &[0xe6, 0x61]];
            let op = self.r.pick(&ops);
            self.a.b(op);
            return "IN/OUT";
        }
        // REP INS/OUTS.
        let any = self.r.u32() & 0xfff;
        let count = self.r.pick(&[0u32, 1, 2, 3, 0x100, 0x7ff, 0x800, 0x801, 0x1000, 0x1_0000, any, 0xffff_ffff]);
        self.a.mov_r32(ECX, count);
        let target = match self.r.below(16) {
            0 => PD_BASE as u32,
            1 => CODE_BASE as u32,
            2 => IDT_BASE as u32,
            3 => RAM_SIZE as u32 - self.r.below(0x1000) as u32,
            4 => MMIO_BASE as u32,
            5 | 6 => FUZZ_GDT_BASE as u32,
            _ => BUF_BASE as u32 + (self.r.u32() & 0x1ffff),
        };
        let out = self.r.chance(1, 2);
        self.a.mov_r32(if out { ESI } else { EDI }, target);
        let std = self.r.chance(1, 5);
        if std {
            self.a.b(&[0xfd]);
        }
        if self.r.chance(1, 5) {
            let pfx = self.r.pick(&[0x26u8, 0x2e, 0x36, 0x3e, 0x64, 0x65]);
            self.a.b(&[pfx]);
        }
        if self.r.chance(1, 6) {
            self.a.b(&[0x67]);
        }
        let width = self.r.below(3);
        if width == 1 {
            self.a.b(&[0x66]);
        }
        if self.r.chance(5, 6) {
            self.a.b(&[0xf3]);
        }
        let op = if out { 0x6e } else { 0x6c } + u8::from(width != 0);
        self.a.b(&[op]);
        if std {
            self.a.b(&[0xfc]);
        }
        if out { "REP OUTS" } else { "REP INS" }
    }

    fn mmio(&mut self) -> &'static str {
        let addr = match self.r.below(4) {
            0 => MMIO_BASE as u32 + (self.r.u32() & 0xfff),
            1 => RAM_SIZE as u32 - self.r.below(8) as u32,
            _ => self.addr32() | 0x10_0000,
        };
        // Most accesses are MOVs the module decodes: anything else ends
        // the run with an emulation error, which says little after the
        // first time.
        match self.r.below(16) {
            0..=9 => {
                // The MOVs the module decodes.
                let forms: [&[u8]; 13] = [
                    &[0x8b], &[0x89], &[0x8a], &[0x88], &[0x66, 0x8b], &[0x66, 0x89], &[0x0f, 0xb6], &[0x0f, 0xb7],
                    &[0x0f, 0xbe], &[0x0f, 0xbf], &[0x48, 0x8b], &[0x48, 0x89], &[0xc7],
                ];
                let mut f = self.r.pick(&forms);
                if !self.long && f[0] == 0x48 {
                    f = &f[1..];
                }
                let reg = self.r.pick(&[EAX, ECX, EDX, EBX, ESI]);
                self.a.b(f);
                self.a.abs(if f == [0xc7] { 0 } else { reg }, addr);
                if f == [0xc7] {
                    self.a.u32(self.r.u32());
                }
                "MOV to/from MMIO"
            }
            10 => {
                // Not a MOV. Emulated: ADD, XCHG, LOCK OR imm8, TEST, SBB,
                // AND imm32, CMP byte, BTS imm8, BTR reg. Not (an emulation
                // error): INC/PUSH (0xff), CMPXCHG, MOVNTI.
                let forms: [(&[u8], u8, &[u8]); 12] = [
                    (&[0x01], EAX, &[]),
                    (&[0x87], EAX, &[]),
                    (&[0xf0, 0x83], 1, &[1]),
                    (&[0x85], EAX, &[]),
                    (&[0x19], ECX, &[]),
                    (&[0x81], 4, &[0xf0, 0xff, 0xff, 0xff]),
                    (&[0x38], EDX, &[]),
                    (&[0x0f, 0xba], 5, &[7]),
                    (&[0x0f, 0xb3], EBX, &[]),
                    (&[0xff], 0, &[]),
                    (&[0x0f, 0xb1], ECX, &[]),
                    (&[0x0f, 0xc3], EAX, &[]),
                ];
                let (op, reg, imm) = forms[self.r.below(forms.len() as u64) as usize];
                self.a.b(op);
                self.a.abs(reg, addr);
                self.a.b(imm);
                "a non-MOV instruction on MMIO"
            }
            11 => {
                // MOVS/STOS/LODS with MMIO on one side.
                self.a.mov_r32(ESI, addr);
                self.a.mov_r32(EDI, if self.r.chance(1, 2) { BUF_BASE as u32 } else { addr });
                self.a.mov_r32(ECX, self.r.pick(&[1, 2, 16, 0x1000]));
                let op = self.r.pick(&[0xa4u8, 0xa5, 0xab, 0xad, 0xa7]);
                if self.r.chance(1, 2) {
                    self.a.b(&[0xf3]);
                }
                self.a.b(&[op]);
                "string instruction on MMIO"
            }
            12 | 13 => {
                // A base+index*scale+disp form, perhaps through FS.
                self.a.mov_r32(EAX, addr.wrapping_sub(0x40));
                self.a.mov_r32(ECX, 0x10);
                if self.r.chance(1, 3) {
                    self.a.b(&[0x64]);
                }
                self.a.b(&[0x8b, 0x54, 0x88, 0x00]); // mov edx, [eax + ecx*4 + 0]
                "MOV from MMIO through base+index"
            }
            14 if self.long => {
                // Above 4 GiB (not mapped: #PF), and a 64-bit address.
                let v = u64::from(self.hi32() & 0xffff) << 32 | u64::from(addr);
                self.a.mov_r64(EAX, v);
                self.a.b(&[0x8b, 0x00]);
                "MOV from above 4 GiB"
            }
            _ => {
                // Execute from MMIO or unbacked memory.
                self.a.mov_r32(EAX, addr);
                self.a.b(&[0xff, 0xd0]);
                "CALL into MMIO"
            }
        }
    }

    fn pte(&mut self, leaf: bool) -> u64 {
        let phys = match self.r.below(6) {
            0 => u64::from(self.addr32()),
            1 => RAM_SIZE,
            2 => MMIO_BASE,
            3 => 1 << (32 + self.r.below(20)),
            4 => self.r.next() & 0x000f_ffff_ffff_f000,
            _ => u64::from(self.r.u32() & 0x000f_f000),
        };
        let mut flags = 0x7 | if leaf { 0x80 } else { 0 };
        if self.r.chance(1, 4) {
            flags |= self.r.next() & 0x8000_0000_0000_0f7f;
        }
        if self.r.chance(1, 8) {
            flags &= !1;
        }
        (phys & !0xfff) | flags
    }

    fn paging(&mut self) -> &'static str {
        let access = |g: &mut Self, va: u64| {
            g.a.mov_r64(EAX, va);
            match g.r.below(4) {
                0 => g.a.b(&[0x8b, 0x08]),
                1 => g.a.b(&[0x89, 0x08]),
                2 => g.a.b(&[0xff, 0xd0]),
                _ => g.a.b(&[0x0f, 0x01, 0x38]),
            }
            g.a.b(&[0x0f, 0x01, 0x38]); // INVLPG [rax]
        };
        match self.r.below(5) {
            0 | 1 => {
                // A random PDE somewhere other than the first 4 MiB (where
                // everything lives), then touch its range.
                let (table, idx, size, wide) = if self.long || self.paging32 == Paging32::Pae {
                    (PD_BASE, 2 + self.r.below(2046), 1u64 << 21, true)
                } else {
                    (PD32, 1 + self.r.below(1023), 1u64 << 22, false)
                };
                let leaf = self.r.chance(1, 2);
                let e = self.pte(leaf);
                let at = (table + idx * if wide { 8 } else { 4 }) as u32;
                if wide {
                    self.a.store64(at, e);
                } else {
                    self.a.store32(at, e as u32);
                }
                let va = idx * size + (self.r.below(size) & !7);
                access(self, va);
                "random PDE, then an access"
            }
            2 if self.long => {
                // A PML4E or PDPTE above 4 GiB, or a self-map.
                let (at, va) = if self.r.chance(1, 2) {
                    let i = 1 + self.r.below(255);
                    (PML4_BASE + 8 * i, i << 39)
                } else {
                    let i = 4 + self.r.below(508);
                    (PDPT_BASE + 8 * i, i << 30)
                };
                let leaf = self.r.chance(1, 3);
                let e = if self.r.chance(1, 3) { PML4_BASE | 7 } else { self.pte(leaf) };
                self.a.store64(at as u32, e);
                let va = va + (self.r.below(1 << 30) & !7);
                access(self, va);
                "random PML4E/PDPTE, then an access"
            }
            2 if self.paging32 == Paging32::Pae => {
                let i = self.r.below(4);
                let e = self.pte(false) & !0x80;
                self.a.store64((PDPT_PAE + 8 * i) as u32, e);
                self.a.mov_r32(EAX, PDPT_PAE as u32);
                self.a.mov_to_cr(3);
                "random PDPTE, CR3 reload"
            }
            3 => {
                // Point the spare table somewhere and map it in at 3 GiB.
                for i in 0..4u32 {
                    let e = self.pte(false) & !0x80;
                    let _ = i;
                    self.a.store64(SPARE_PT as u32 + 8 * (self.r.below(512) as u32), e);
                }
                let (at, wide) = if self.long || self.paging32 == Paging32::Pae {
                    (PD_BASE + 8 * 1536, true)
                } else {
                    (PD32 + 4 * 768, false)
                };
                let e = SPARE_PT | 7;
                if wide {
                    self.a.store64(at as u32, e);
                } else {
                    self.a.store32(at as u32, e as u32);
                }
                let va = 0xc000_0000 + (self.r.below(1 << 21) & !7);
                access(self, va);
                "a page table of random PTEs"
            }
            _ => {
                // CR3 anywhere: in RAM (garbage tables), beyond, huge.
                let v = match self.r.below(5) {
                    0 => u64::from(self.addr32() & !0xfff),
                    1 => RAM_SIZE,
                    2 => MMIO_BASE,
                    3 if self.long => 0x000f_ffff_ffff_f000 >> self.r.below(12) & !0xfff,
                    _ => u64::from(self.r.u32() & !0xfff),
                };
                self.a.mov_r64(EAX, v);
                self.a.mov_to_cr(3);
                self.a.b(&[0x90, 0x0f, 0xa2]);
                "CR3 anywhere"
            }
        }
    }

    fn random(&mut self) -> &'static str {
        // Registers that point into RAM, so that random memory operands
        // mostly hit memory rather than end the run as MMIO the module
        // cannot decode.
        for reg in [EAX, ECX, EDX, EBX, 5, ESI, EDI] {
            let v = BUF_BASE as u32 + (self.r.u32() & 0x7ff8);
            self.a.mov_r32(reg, v);
        }
        let n = 1 + self.r.below(15) as usize;
        let mut bytes: Vec<u8> = (0..n).map(|_| self.r.next() as u8).collect();
        match self.r.below(4) {
            0 => bytes.insert(0, 0x0f),
            1 => {
                bytes.insert(0, 0x01);
                bytes.insert(0, 0x0f);
            }
            2 => bytes.insert(0, self.r.pick(&[0x66, 0x67, 0xf2, 0xf3, 0xf0, 0x2e, 0x26, 0x64, 0x65, 0x48, 0x41])),
            _ => {}
        }
        self.a.b(&bytes);
        // Let a truncated instruction take NOPs as its operands.
        self.a.b(&[0x90; 16]);
        "random bytes"
    }

    fn int(&mut self) -> &'static str {
        match self.r.below(8) {
            0 => {
                self.a.b(&[0xcc]);
                "INT3"
            }
            1 => {
                self.a.b(&[0xf1]);
                "INT1"
            }
            2 => {
                self.a.b(&[0xb0, 0x7f, 0x04, 0x01, 0xce]);
                "INTO with OF"
            }
            3 => {
                let v = self.r.u32() as u8;
                self.a.b(&[0xcd, v]);
                "INT n"
            }
            4 => {
                self.a.b(&[0x0f, 0x0b]);
                "UD2"
            }
            5 => {
                self.a.b(&[0x31, 0xc9, 0xf7, 0xf1]);
                "#DE"
            }
            6 if !self.long => {
                self.a.store32(SCRATCH as u32 + 0x40, 10);
                self.a.store32(SCRATCH as u32 + 0x44, 20);
                self.a.mov_r32(EAX, 5);
                self.a.b(&[0x62]);
                self.a.abs(EAX, SCRATCH as u32 + 0x40);
                "BOUND out of range"
            }
            _ => {
                self.a.mov_from_cr(0);
                self.a.b(&[0x0d]);
                self.a.u32(self.r.pick(&[0x8, 0x4, 0xc]));
                self.a.mov_to_cr(0);
                let op: &[u8] = self.r.pick(&[&[0xd9, 0xd0][..], &[0x0f, 0x57, 0xc0], &[0x9b], &[0x0f, 0xae, 0x04, 0x25, 0, 0, 4, 0]]);
                self.a.b(op);
                self.a.b(&[0x0f, 0x06]);
                "x87/SSE with CR0.TS/EM"
            }
        }
    }

    fn flags(&mut self) -> &'static str {
        let nt = if !self.long && !self.on("task-switch") { !0x4000u32 } else { !0 };
        let ac = if self.on("db-ac") { !0 } else { !0x4_0000u32 };
        match self.r.below(4) {
            0 | 1 => {
                let any = self.r.u32();
                let v = (self.r.pick(&[0x100u32, 0x3000, 0x4_0000, 0x20_0000, 0x8_0000, 0x10_0000, 0x200, 0x400, any]) | 2) & nt & ac & 0x3f_7fd7;
                self.a.push_imm(v);
                self.a.b(&[0x9d]); // popf
                let follow: &[u8] = self.r.pick(&[&[0x0f, 0xa2][..], &[0x90, 0x90], &[0xec], &[0xf4], &[0x0f, 0x32], &[0x0f, 0x01, 0xd9], &[0xcc], &[0x0f, 0x09]]);
                if follow == [0x0f, 0x32] {
                    self.a.mov_r32(ECX, 0x10);
                }
                self.a.b(follow);
                self.a.push_imm(2);
                self.a.b(&[0x9d]);
                "POPF random flags over an exiting instruction"
            }
            2 => {
                // IRET to the same level with random flags (and SS/RSP in 64-bit).
                let v = (self.r.u32() | 2) & nt & ac & 0x3f_7fd7;
                let len = if self.long { 5 * 5 + 2 } else { 3 * 5 + 1 };
                let next = self.a.here() + len;
                if self.long {
                    let any = u32::from(self.selector());
                    let ss = self.r.pick(&[u32::from(SEL_DATA), 0, any]);
                    self.a.push_imm(ss);
                    self.a.push_imm(STREAM_STACK as u32);
                }
                self.a.push_imm(v);
                self.a.push_imm(u32::from(self.code0()));
                self.a.push_imm(next as u32);
                self.a.iret();
                "IRET with random flags"
            }
            _ => {
                self.a.b(&[0xfd, 0xfb, 0x90, 0xfa, 0xfc, 0x9c, 0x58]);
                "STD, STI, CLI, CLD, PUSHF"
            }
        }
    }

    fn ring3(&mut self) -> &'static str {
        let fl = self.r.pick(&[0x202u32, 0x3202, 0x2, 0x1202]);
        if self.r.chance(1, 3) {
            // RETF to ring 3.
            if !self.long {
                self.a.load_sreg(DS, SEL_DATA_R3 | 3);
                self.a.load_sreg(ES, SEL_DATA_R3 | 3);
            }
            self.a.push_imm(u32::from(SEL_DATA_R3 | 3));
            self.a.push_imm(STACK3 as u32);
            self.a.push_imm(u32::from(self.code3()));
            let next = self.a.here() + 5 + if self.long { 2 } else { 1 };
            self.a.push_imm(next as u32);
            self.a.retf();
            "RETF to ring 3"
        } else {
            self.iret_to_ring3(fl, STACK3 as u32);
            "IRET to ring 3"
        }
    }

    fn syscall(&mut self) -> &'static str {
        if self.long && self.r.chance(2, 3) {
            self.a.rdmsr(0xc000_0080);
            self.a.b(&[0x0d, 1, 0, 0, 0, 0x0f, 0x30]); // EFER.SCE
            let star = if self.r.chance(4, 5) {
                u64::from(SEL_CODE32_R3 | 3) << 48 | u64::from(SEL_CODE64) << 32
            } else {
                self.val64()
            };
            self.a.wrmsr(0xc000_0081, star);
            let any = self.r.u32();
            let mask = self.r.pick(&[0u32, 0x4_0700, any]);
            self.a.wrmsr(0xc000_0084, u64::from(mask));
            // LSTAR: the instruction after SYSCALL (patched).
            let lstar_at = self.a.here() + 6;
            self.a.wrmsr(0xc000_0082, 0);
            if self.r.chance(1, 2) {
                let here = self.a.here();
                self.a.b(&[0x0f, 0x05]);
                self.a.patch32(lstar_at, (here + 2) as u32);
                "SYSCALL"
            } else {
                // SYSRET to ring 3 at the next instruction.
                self.a.b(&[0x41, 0xbb]);
                self.a.u32(self.r.pick(&[0x202u32, 0x2, 0x3202, 0x102]));
                let rcx_at = self.a.here() + 1;
                self.a.mov_r32(ECX, 0);
                let here = self.a.here();
                self.a.b(&[0x48, 0x0f, 0x07]);
                self.a.patch32(rcx_at, (here + 3) as u32);
                self.a.patch32(lstar_at, (here + 3) as u32);
                "SYSRET to ring 3"
            }
        } else {
            let cs = if self.r.chance(4, 5) { u64::from(self.code0()) } else { u64::from(self.selector()) };
            self.a.wrmsr(0x174, cs);
            self.a.wrmsr(0x175, STREAM_STACK);
            let eip_at = self.a.here() + 6;
            self.a.wrmsr(0x176, 0);
            if self.r.chance(1, 2) {
                let here = self.a.here();
                self.a.b(&[0x0f, 0x34]);
                self.a.patch32(eip_at, (here + 2) as u32);
                "SYSENTER"
            } else {
                self.a.mov_r32(ECX, STACK3 as u32);
                let edx_at = self.a.here() + 1;
                self.a.mov_r32(EDX, 0);
                self.a.w();
                self.a.b(&[0x0f, 0x35]);
                let next = self.a.here() as u32;
                self.a.patch32(edx_at, next);
                self.a.patch32(eip_at, next);
                "SYSEXIT"
            }
        }
    }
}

/// Builds the guest of `seed`: `long` for 64-bit mode, `on[i]` for the
/// classes it may use.
pub fn generate(seed: u64, long: bool, on: &[bool]) -> Guest {
    let mut r = Rng(seed);
    let paging32 = if long {
        Paging32::Off
    } else {
        r.pick(&[Paging32::Off, Paging32::Pse, Paging32::Pae])
    };
    let qemu_tss = class_index("qemu-tss").is_some_and(|i| on[i]);
    let ltr = !(qemu_tss && !long && r.chance(1, 2));
    let mut g = Gen { a: Asm::new(CODE_BASE, long), r, long, paging32, on, snippets: Vec::new(), gates: Vec::new() };

    // Prologue: LTR (QEMU caches the type LTR loads, "available", while
    // VMRUN gives it the busy type the VMCB must hold), a stack, and off
    // over the handler to the first snippet.
    if ltr {
        g.a.mov_r32(EAX, u32::from(SEL_TSS));
        g.a.b(&[0x0f, 0x00, 0xd8]);
    }
    g.a.b(&[0xbc]);
    g.a.u32(STREAM_STACK as u32);
    let jmp_first = g.a.here();
    g.a.jmp(0);

    // 256 stubs: MOV AL, vector; JMP common.
    let stubs = g.a.here();
    let common = stubs + 256 * 7;
    for v in 0..=255u8 {
        g.a.b(&[0xb0, v]);
        g.a.jmp(common);
    }
    assert_eq!(g.a.here(), common);
    let code0 = g.code0();
    g.a.b(&[0x66, 0xb9]);
    g.a.u16(SEL_DATA);
    g.a.b(&[0x8e, 0xd9, 0x8e, 0xc1, 0x8e, 0xd1]); // ds, es, ss
    g.a.b(&[0xbc]);
    g.a.u32(STACK0 as u32);
    g.a.b(&[0x8e, 0xe1, 0x8e, 0xe9]); // fs, gs
    g.a.mov_dx(PORT_EXC as u16);
    g.a.b(&[0xee]);
    g.a.b(&[0xff]);
    g.a.abs(0, EXC_COUNT as u32); // inc dword [EXC_COUNT]
    g.a.b(&[0x81]);
    g.a.abs(7, EXC_COUNT as u32);
    g.a.u32(EXC_LIMIT);
    let ja = g.a.here();
    g.a.jcc(7, 0);
    g.a.load32(EAX, EXC_RESUME as u32);
    g.a.b(&[0x85, 0xc0]);
    let jz = g.a.here();
    g.a.jcc(4, 0);
    if long {
        g.a.b(&[0x6a, SEL_DATA as u8]);
        g.a.push_imm(STACK0 as u32);
    }
    g.a.b(&[0x6a, 0x02, 0x6a, code0 as u8, 0x50]);
    g.a.iret();
    let halt = g.a.here();
    g.a.b(&DONE_HLT);
    g.a.jmp(halt);
    for at in [ja, jz] {
        let rel = (halt - (at + 6)) as u32;
        g.a.patch32(at + 2, rel);
    }
    let first = g.a.here();
    g.a.patch32(jmp_first + 1, (first - (jmp_first + 5)) as u32);

    // The IDT's gates (written by the host below), kept for restoring.
    let mut idt = Vec::new();
    for v in 0..256u64 {
        let dpl3 = matches!(v, 3 | 4 | 0x80) || g.r.chance(1, 4);
        let ist = if long && g.r.chance(1, 4) { 1 + g.r.below(2) as u8 } else { 0 };
        let kind = if g.r.chance(1, 5) { 0x0f } else { 0x0e };
        let access = 0x80 | if dpl3 { 0x60 } else { 0 } | kind;
        let gt = gate((stubs + v * 7) as u32, code0, access, ist);
        g.gates.push(gt);
        idt.extend_from_slice(&gt.to_le_bytes());
        if long {
            idt.extend_from_slice(&0u64.to_le_bytes());
        }
    }

    // The snippets: a random mix, sometimes a few classes only.
    let enabled: Vec<usize> = (0..CLASSES.len()).filter(|&i| on[i]).collect();
    let pool: Vec<usize> = if g.r.chance(1, 2) && enabled.len() > 3 {
        (0..1 + g.r.below(3)).map(|_| g.r.pick(&enabled)).collect()
    } else {
        enabled.clone()
    };
    let total: u64 = pool.iter().map(|&i| u64::from(CLASSES[i].weight)).sum();
    let n = 10 + g.r.below(60);
    for _ in 0..n {
        if total == 0 {
            break;
        }
        let mut pick = g.r.below(total);
        let mut class = pool[0];
        for &i in &pool {
            let w = u64::from(CLASSES[i].weight);
            if pick < w {
                class = i;
                break;
            }
            pick -= w;
        }
        g.gen(class);
    }
    let end = g.a.here();
    g.a.b(&DONE_HLT);
    g.a.jmp(end);

    // Memory the host writes.
    let mut writes = Vec::new();
    let mut gdt = vec![0u64; 32];
    let sys16 = |base: u64, limit: u32, access: u8| -> (u64, u64) { (seg_desc(base as u32, limit, access, 0), base >> 32) };
    gdt[1] = seg_desc(0, 0xfffff, 0x9b, 0xc);
    gdt[2] = seg_desc(0, 0xfffff, 0x93, 0xc);
    gdt[3] = seg_desc(0, 0xfffff, 0x9b, 0xa);
    gdt[4] = seg_desc(0, 0xfffff, 0xfb, 0xc);
    gdt[5] = seg_desc(0, 0xfffff, 0xf3, 0xc);
    gdt[6] = seg_desc(0, 0xfffff, 0xfb, 0xa);
    for (sel, base) in [(SEL_TSS, TSS_MAIN), (SEL_TSS2, TSS2), (SEL_TSS3, TSS3)] {
        let (lo, hi) = sys16(base, TSS_LIMIT, 0x89);
        gdt[usize::from(sel / 8)] = lo;
        gdt[usize::from(sel / 8) + 1] = hi;
    }
    let (lo, hi) = sys16(LDT, 8 * 8 - 1, 0x82);
    gdt[usize::from(SEL_LDT / 8)] = lo;
    gdt[usize::from(SEL_LDT / 8) + 1] = hi;
    gdt[usize::from(SEL_CALLGATE / 8)] = gate(first as u32, code0, 0xec, 0);
    gdt[usize::from(SEL_CALLGATE / 8) + 1] = 0;
    gdt[usize::from(SEL_TASKGATE / 8)] = gate(0, SEL_TSS2, 0xe5, 0);
    gdt[usize::from(SEL_CODE16 / 8)] = seg_desc(0, 0xffff, 0x9b, 0);
    gdt[usize::from(SEL_DATA16 / 8)] = seg_desc(0, 0xffff, 0x93, 0);
    gdt[usize::from(SEL_CODE_LD / 8)] = seg_desc(0, 0xfffff, 0x9b, 0xe);
    gdt[usize::from(SEL_CONFORMING / 8)] = seg_desc(0, 0xfffff, 0x9f, if long { 0xa } else { 0xc });
    gdt[usize::from(SEL_DATA_SMALL / 8)] = seg_desc(0x4_0000, 0xfff, 0x97, 0x4);
    gdt[usize::from(SEL_NOT_PRESENT / 8)] = seg_desc(0, 0xfffff, 0x1b, 0xc);
    let task_switch = class_index("task-switch").is_some_and(|i| on[i]);
    for d in &mut gdt[usize::from(SEL_RANDOM / 8)..] {
        *d = match g.r.below(3) {
            0 => g.r.next(),
            // Plausible: random type, S, DPL, P, flags, base below 1 MiB.
            _ => seg_desc(g.r.u32() & 0xf_ffff, g.r.u32(), g.r.u32() as u8, g.r.u32() as u8) & 0xff0f_ffff_ffff_ffff,
        };
        // No TSS or task gate unless task switches are wanted.
        let system = *d >> 44 & 1 == 0;
        if !task_switch && system && matches!(*d >> 40 & 0xf, 1 | 3 | 5 | 9 | 11) {
            *d |= 1 << 44;
        }
    }
    writes.push((FUZZ_GDT_BASE, gdt.iter().flat_map(|d| d.to_le_bytes()).collect()));
    let mut ldt = [0u64; 8];
    ldt[1] = seg_desc(0, 0xfffff, 0x9b, if long { 0xa } else { 0xc });
    ldt[2] = seg_desc(0, 0xfffff, 0x93, 0xc);
    ldt[3] = seg_desc(0, 0xfffff, 0xf3, 0xc);
    for d in &mut ldt[4..] {
        *d = g.r.next();
    }
    writes.push((LDT, ldt.iter().flat_map(|d| d.to_le_bytes()).collect()));
    writes.push((IDT_BASE, idt));

    // TSSs: ring-0 stacks, IST stacks, an I/O bitmap for ports 0-255.
    let cr3 = if long {
        PML4_BASE
    } else {
        match paging32 {
            Paging32::Pae => PDPT_PAE,
            _ => PD32,
        }
    };
    for base in [TSS_MAIN, TSS2, TSS3] {
        let mut t = vec![0u8; TSS_LIMIT as usize + 1];
        let put32 = |t: &mut Vec<u8>, off: usize, v: u32| t[off..off + 4].copy_from_slice(&v.to_le_bytes());
        put32(&mut t, 4, STACK0 as u32);
        if long {
            for i in 0..7 {
                put32(&mut t, 0x24 + 8 * i, IST_STACK as u32 - 0x400 * i as u32);
            }
        } else {
            put32(&mut t, 8, u32::from(SEL_DATA));
            put32(&mut t, 0x1c, cr3 as u32);
        }
        t[0x66..0x68].copy_from_slice(&0x68u16.to_le_bytes());
        for b in &mut t[0x68..0x68 + 32] {
            *b = if g.r.chance(1, 4) { g.r.next() as u8 } else { 0 };
        }
        t[TSS_LIMIT as usize] = 0xff;
        writes.push((base, t));
    }

    // Page tables with the user bit: 64-bit (and PAE) 2 MiB pages over
    // the low 4 GiB, 32-bit 4 MiB pages, the PAE PDPT.
    let mut pml4 = vec![0u64; 512];
    pml4[0] = PDPT_BASE | 7;
    let mut pdpt = vec![0u64; 512];
    for (i, e) in pdpt.iter_mut().take(4).enumerate() {
        *e = (PD_BASE + 0x1000 * i as u64) | 7;
    }
    let pds: Vec<u64> = (0..2048u64).map(|j| j << 21 | 0x87).collect();
    let pd32: Vec<u32> = (0..1024u32).map(|i| i << 22 | 0x87).collect();
    let pae: Vec<u64> = (0..4u64).map(|i| (PD_BASE + 0x1000 * i) | 1).collect();
    let bytes64 = |v: &[u64]| -> Vec<u8> { v.iter().flat_map(|e| e.to_le_bytes()).collect() };
    writes.push((PML4_BASE, bytes64(&pml4)));
    writes.push((PDPT_BASE, bytes64(&pdpt)));
    writes.push((PD_BASE, bytes64(&pds)));
    writes.push((PD32, pd32.iter().flat_map(|e| e.to_le_bytes()).collect()));
    writes.push((PDPT_PAE, bytes64(&pae)));
    writes.push((SPARE_PT, vec![0; 0x1000]));
    writes.push((EXC_PAGE, vec![0; 0x1000]));

    let (cr0, cr4) = if long {
        (0x8000_0011, 0x20)
    } else {
        match paging32 {
            Paging32::Off => (0x11, 0),
            Paging32::Pse => (0x8000_0011, 0x10),
            Paging32::Pae => (0x8000_0011, 0x20),
        }
    };
    Guest {
        long,
        paging32,
        image: g.a.code,
        writes,
        cr0,
        cr3,
        cr4,
        entry: CODE_BASE,
        end,
        halt,
        snippets: g.snippets,
        ltr,
    }
}

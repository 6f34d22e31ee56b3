// SPDX-License-Identifier: GPL-2.0

//! The module's exit dispatch, run on the host: a synthetic VMCB and
//! register file, guest memory in a vector, a run page in a struct and a
//! fake shadow MMU stand in for the vCPU (`exit/env.rs`), and each test
//! checks what one #VMEXIT does to them. One test (at least) per exit
//! family, the unknown exit included.

use crate::emulate::insn::Gpr;
use crate::emulate::walk::{self, Access, GuestPhys, PagingState, WalkError};
use crate::exit::{self, Env, Flow, GuestCpu, GuestState, ShadowPaging};
use crate::hw::cr::{cr0, cr4};
use crate::hw::paging::{PTE_P, PTE_PS, PTE_RW};
use crate::hw::seg::attr;
use crate::hw::svm::{efer, event, exit as code, ioio, npf, vector};
use crate::hw::vmcb::{Vmcb, VmcbSeg};
use crate::mm::shadow::{Fault, GuestCrs, OutOfMemory, Refused};
use crate::uapi;
use std::cell::{Cell, RefCell};

/// Guest RAM: 4 MiB from address 0; everything above is MMIO.
const RAM: usize = 4 << 20;
/// Where each test's code starts.
const CODE: u64 = 0x1000;
/// An address outside RAM.
const MMIO: u64 = 0xd000_0000;
/// The fake shadow MMU's root.
const SHADOW_ROOT: u64 = 0x7000;

/// The world the exit handlers reach: memory, run page, host.
struct World {
    ram: RefCell<Vec<u8>>,
    run: RefCell<uapi::Run>,
    io: RefCell<Vec<u8>>,
    nrips: bool,
    tsc: Cell<u64>,
    unhandled: RefCell<Vec<u64>>,
}

impl World {
    fn new() -> Self {
        World {
            ram: RefCell::new(vec![0; RAM]),
            run: RefCell::new(uapi::Run {
                exit_reason: 0,
                immediate_exit: 0,
                pad: [0; 3],
                rip: 0,
                exit: uapi::ExitData { pad: [0; 256] },
            }),
            io: RefCell::new(vec![0; uapi::PACIFICA_RUN_IO_DATA_SIZE]),
            nrips: false,
            tsc: Cell::new(1_000_000),
            unhandled: RefCell::default(),
        }
    }

    fn range(&self, gpa: u64, len: usize) -> Option<std::ops::Range<usize>> {
        let end = gpa.checked_add(len as u64)?;
        (end <= RAM as u64).then(|| gpa as usize..end as usize)
    }

    fn put(&self, gpa: u64, bytes: &[u8]) {
        assert!(self.write(gpa, bytes));
    }

    fn get(&self, gpa: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        assert!(self.read(gpa, &mut v));
        v
    }
}

impl GuestPhys for World {
    fn read_pte(&self, gpa: u64, wide: bool) -> Option<u64> {
        let r = self.range(gpa, 8)?;
        let v = u64::from_le_bytes(self.ram.borrow()[r].try_into().unwrap());
        Some(if wide { v } else { v & 0xffff_ffff })
    }

    fn set_pte_bits(&self, gpa: u64, wide: bool, bits: u64) -> bool {
        let Some(old) = self.read_pte(gpa, wide) else { return false };
        let n = if wide { 8 } else { 4 };
        self.write(gpa, &(old | bits).to_le_bytes()[..n])
    }
}

/// What the fake shadow MMU was asked to do.
#[derive(Default)]
struct FakeShadow {
    crs: GuestCrs,
    cr3_writes: Vec<u64>,
    invalidated: Vec<u64>,
    written: Vec<u64>,
    /// What the next fault resolves to.
    fault: Option<Fault>,
    faults: Vec<(u64, Access)>,
}

impl ShadowPaging for FakeShadow {
    fn crs(&self) -> GuestCrs {
        self.crs
    }
    fn restore_crs(&mut self, crs: GuestCrs) {
        self.crs = crs;
    }
    fn paging_state(&self) -> PagingState {
        let c = self.crs;
        PagingState { cr0: c.cr0, cr3: c.cr3, cr4: c.cr4, efer: c.efer, maxphyaddr: 40 }
    }
    fn hw_regs(&self) -> [u64; 4] {
        [cr0::PE | cr0::PG, SHADOW_ROOT, cr4::PAE, efer::SVME]
    }
    fn rebuild(&mut self) -> Result<(), OutOfMemory> {
        Ok(())
    }
    fn set_cr0(&mut self, v: u64) -> Result<bool, Refused> {
        self.crs.cr0 = v;
        Ok(false)
    }
    fn set_cr3(&mut self, v: u64, _cache: bool) -> Result<(), Refused> {
        self.crs.cr3 = v;
        self.cr3_writes.push(v);
        Ok(())
    }
    fn set_cr4(&mut self, v: u64, allowed: u64) -> Result<bool, Refused> {
        if v & !allowed != 0 {
            return Err(Refused);
        }
        self.crs.cr4 = v;
        Ok(false)
    }
    fn set_efer(&mut self, v: u64) -> bool {
        self.crs.efer = v & !efer::SVME;
        false
    }
    fn invalidate(&mut self, la: u64) -> Result<bool, OutOfMemory> {
        self.invalidated.push(la);
        Ok(false)
    }
    fn largest_page(&self) -> u64 {
        4096
    }
    fn module_wrote(&mut self, gfn: u64) {
        self.written.push(gfn);
    }
    fn guard_tss(&mut self, _tss: Option<u64>) -> Result<bool, OutOfMemory> {
        Ok(false)
    }
    fn take_flush(&mut self) -> bool {
        false
    }
}

impl Env for World {
    type Shadow = FakeShadow;

    fn read(&self, gpa: u64, buf: &mut [u8]) -> bool {
        let Some(r) = self.range(gpa, buf.len()) else { return false };
        buf.copy_from_slice(&self.ram.borrow()[r]);
        true
    }
    fn write(&self, gpa: u64, data: &[u8]) -> bool {
        let Some(r) = self.range(gpa, data.len()) else { return false };
        self.ram.borrow_mut()[r].copy_from_slice(data);
        true
    }
    fn fetch_or_u32(&self, gpa: u64, bits: u32) -> Option<u32> {
        if gpa % 4 != 0 {
            return None;
        }
        let mut b = [0; 4];
        if !self.read(gpa, &mut b) {
            return None;
        }
        let old = u32::from_le_bytes(b);
        self.write(gpa, &(old | bits).to_le_bytes());
        Some(old)
    }
    fn is_ram(&self, gpa: u64) -> bool {
        gpa < RAM as u64
    }
    fn translate(&self, ps: &PagingState, la: u64, access: Access) -> Result<u64, WalkError> {
        walk::translate(self, ps, la, access)
    }
    fn shadow_fault(&self, mmu: &mut FakeShadow, la: u64, access: Access) -> Fault {
        mmu.faults.push((la, access));
        mmu.fault.take().unwrap_or(Fault::Mapped { guest_page: 4096 })
    }
    fn run_hypercall_ret(&self) -> u64 {
        // SAFETY: every field of the union is plain integers.
        unsafe { self.run.borrow().exit.hypercall.ret }
    }
    fn run_mmio_data(&self) -> [u8; 8] {
        // SAFETY: as above.
        unsafe { self.run.borrow().exit.mmio.data }
    }
    fn run_inta_vector(&self) -> u32 {
        // SAFETY: as above.
        unsafe { self.run.borrow().exit.inta.vector }
    }
    fn write_run(&self, run: &uapi::Run) {
        let immediate_exit = self.run.borrow().immediate_exit;
        *self.run.borrow_mut() = uapi::Run { immediate_exit, ..*run };
    }
    fn io_read(&self, at: usize, out: &mut [u8]) {
        let io = self.io.borrow();
        let n = out.len().min(io.len().saturating_sub(at));
        out[..n].copy_from_slice(&io[at..at + n]);
    }
    fn io_write(&self, at: usize, data: &[u8]) {
        let mut io = self.io.borrow_mut();
        let n = data.len().min(io.len().saturating_sub(at));
        io[at..at + n].copy_from_slice(&data[..n]);
    }
    fn vcpu_id(&self) -> u32 {
        0
    }
    fn host_cpuid(&self, leaf: u32, _subleaf: u32) -> [u32; 4] {
        match leaf {
            0 => [0x10, 0x6874_7541, 0x444d_4163, 0x6974_6e65],
            1 => [0x00a0_0f11, 0x0800, 0x7ed8_320b, 0x178b_fbff],
            0x8000_0000 => [0x8000_0020, 0, 0, 0],
            // SVM (ECX bit 2) among the host's extended features.
            0x8000_0001 => [0, 0, 0x75c2_37ff, 0x2fd3_fbff],
            _ => [0; 4],
        }
    }
    fn host_tsc(&self) -> u64 {
        self.tsc.get()
    }
    fn now_ns(&self) -> u64 {
        self.tsc.get()
    }
    fn has_nrips(&self) -> bool {
        self.nrips
    }
    fn maxphyaddr(&self) -> u8 {
        40
    }
    fn shadow_caching(&self) -> bool {
        true
    }
    fn report_unhandled(&self, code: u64, _info: [u64; 3], _intercepts: &[u32; 6], _rip: u64) {
        self.unhandled.borrow_mut().push(code);
    }
}

/// A vCPU without hardware: its VMCB, register file and shadow MMU.
struct Machine {
    vmcb: Box<Vmcb>,
    cpu: GuestCpu,
    shadow: Option<FakeShadow>,
    world: World,
}

fn flat(attrib: u16) -> VmcbSeg {
    VmcbSeg { selector: 0x10, attrib, limit: 0xffff_ffff, base: 0 }
}

const CODE32: u16 = attr::P | attr::S | attr::DB | attr::G | 0xb;
const CODE64: u16 = attr::P | attr::S | attr::L | attr::G | 0xb;
const DATA: u16 = attr::P | attr::S | attr::DB | attr::G | 0x3;

impl Machine {
    /// 32-bit protected mode, flat segments, paging off, at CPL 0.
    fn flat32() -> Self {
        // SAFETY: a `Vmcb` is plain integers, for which all zeroes is a
        // valid value.
        let mut vmcb: Box<Vmcb> = Box::new(unsafe { std::mem::zeroed() });
        let s = &mut vmcb.save;
        s.cr0 = cr0::PE | cr0::ET;
        s.efer = efer::SVME;
        s.cs = flat(CODE32);
        for seg in [&mut s.ds, &mut s.es, &mut s.ss, &mut s.fs, &mut s.gs] {
            *seg = flat(DATA);
        }
        s.gdtr = VmcbSeg { base: 0x800, limit: 0x3f, ..Default::default() };
        s.rip = CODE;
        s.rflags = 2;
        s.dr7 = crate::hw::cr::dr::DR7_RESET;
        let cr4_allowed = cr4::PSE | cr4::PAE | cr4::PGE | cr4::OSFXSR;
        Machine { vmcb, cpu: GuestCpu::new(cr4_allowed, None), shadow: None, world: World::new() }
    }

    /// 64-bit mode on an identity map of RAM in 2 MiB pages.
    fn long64() -> Self {
        let mut m = Self::flat32();
        let (pml4, pdpt, pd) = (0x10_0000u64, 0x10_1000u64, 0x10_2000u64);
        m.world.put(pml4, &(pdpt | PTE_P | PTE_RW).to_le_bytes());
        m.world.put(pdpt, &(pd | PTE_P | PTE_RW).to_le_bytes());
        for i in 0..(RAM as u64 >> 21) {
            m.world.put(pd + 8 * i, &((i << 21) | PTE_P | PTE_RW | PTE_PS).to_le_bytes());
        }
        let s = &mut m.vmcb.save;
        s.cr0 = cr0::PE | cr0::PG | cr0::ET | cr0::WP;
        s.cr3 = pml4;
        s.cr4 = cr4::PAE;
        s.efer = efer::SVME | efer::LME | efer::LMA;
        s.cs = flat(CODE64);
        m
    }

    /// Under the fake shadow MMU, with the guest's registers in it.
    fn shadowed(mut self) -> Self {
        let s = &self.vmcb.save;
        let crs = GuestCrs { cr0: s.cr0, cr3: s.cr3, cr4: s.cr4, efer: s.efer & !efer::SVME };
        self.vmcb.save.cr3 = SHADOW_ROOT;
        self.shadow = Some(FakeShadow { crs, ..Default::default() });
        self
    }

    fn code(mut self, bytes: &[u8]) -> Self {
        self.world.put(CODE, bytes);
        self.vmcb.save.rip = CODE;
        self
    }

    fn guest(&mut self) -> GuestState<'_, World> {
        GuestState { vmcb: &mut self.vmcb, cpu: &mut self.cpu, shadow: self.shadow.as_mut(), env: &self.world }
    }

    fn set(&mut self, r: Gpr, v: u64) {
        self.guest().set_gpr(r, v);
    }

    fn gpr(&mut self, r: Gpr) -> u64 {
        self.guest().gpr(r)
    }

    fn rip(&self) -> u64 {
        self.vmcb.save.rip
    }

    /// One #VMEXIT with these EXITCODE, EXITINFO1 and EXITINFO2.
    fn exit(&mut self, exit_code: u64, info1: u64, info2: u64) -> Flow {
        let c = &mut self.vmcb.control;
        c.exit_code = exit_code;
        c.exit_info_1 = info1;
        c.exit_info_2 = info2;
        exit::handle(&mut self.guest())
    }

    /// The next `PACIFICA_RUN`, up to the guest entry.
    fn resume(&mut self) -> Flow {
        exit::complete_pending(&mut self.guest())
    }

    /// The MMIO exit in the run page: (address, length, is_write, data).
    fn mmio(&self) -> (u64, u32, u8, u64) {
        let run = self.run();
        assert_eq!(run.exit_reason, uapi::PACIFICA_EXIT_MMIO);
        // SAFETY: every field of the union is plain integers.
        let m = unsafe { run.exit.mmio };
        (m.phys_addr, m.len, m.is_write, u64::from_le_bytes(m.data))
    }

    /// Userspace answers the MMIO read with `v` and runs the vCPU again.
    fn answer(&mut self, v: u64) -> Flow {
        self.world.run.borrow_mut().exit.mmio.data = v.to_le_bytes();
        self.resume()
    }

    fn stat(&self, i: u32) -> u64 {
        self.cpu.stats[i as usize]
    }

    fn run(&self) -> uapi::Run {
        *self.world.run.borrow()
    }

    /// The exception queued for the next entry, as (vector, error code).
    fn injected(&self) -> Option<(u8, Option<u32>)> {
        let c = &self.vmcb.control;
        (c.event_inj & event::VALID != 0).then(|| {
            let err = (c.event_inj & event::ERROR_VALID != 0).then_some(c.event_inj_err);
            ((c.event_inj & event::VECTOR_MASK) as u8, err)
        })
    }

    fn internal(&self) -> uapi::InternalExit {
        let run = self.run();
        assert_eq!(run.exit_reason, uapi::PACIFICA_EXIT_INTERNAL_ERROR);
        // SAFETY: every field of the union is plain integers.
        unsafe { run.exit.internal }
    }
}

fn io_info(port: u16, size: u64, input: bool) -> u64 {
    (u64::from(port) << ioio::PORT_SHIFT) | size | if input { ioio::TYPE_IN } else { 0 }
}

#[test]
fn host_interrupts_resume_the_guest_and_are_counted() {
    let mut m = Machine::flat32().code(&[0x90]);
    assert_eq!(m.exit(code::INTR, 0, 0), Flow::Continue);
    assert_eq!(m.exit(code::NMI, 0, 0), Flow::Continue);
    assert_eq!(m.exit(code::SMI, 0, 0), Flow::Continue);
    assert_eq!(m.exit(code::INIT, 0, 0), Flow::Continue);
    assert_eq!((m.stat(uapi::PACIFICA_STAT_INTR), m.stat(uapi::PACIFICA_STAT_NMI)), (1, 1));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_OTHER), 2);
    assert_eq!((m.rip(), m.injected()), (CODE, None));
}

#[test]
fn cpuid_answers_with_the_policy_and_skips_the_instruction() {
    let mut m = Machine::flat32().code(&[0x0f, 0xa2]);
    m.set(Gpr::Rax, 0xdead_beef_0000_0001);
    assert_eq!(m.exit(code::CPUID, 0, 0), Flow::Continue);
    assert_eq!(m.rip(), CODE + 2);
    // The hypervisor bit is set; the high halves are cleared.
    assert_ne!(m.gpr(Gpr::Rcx) & (1 << 31), 0);
    assert_eq!(m.gpr(Gpr::Rax), 0x00a0_0f11);
    // SVM is not offered to the guest.
    let mut m = Machine::flat32().code(&[0x0f, 0xa2]);
    m.set(Gpr::Rax, 0x8000_0001);
    m.exit(code::CPUID, 0, 0);
    assert_eq!(m.gpr(Gpr::Rcx) & 4, 0);
    assert_eq!(m.stat(uapi::PACIFICA_STAT_CPUID), 1);
}

#[test]
fn skips_by_next_rip_with_nrips_and_refuses_a_mismatched_instruction_without() {
    let mut m = Machine::flat32().code(&[0x0f, 0xa2]);
    m.world.nrips = true;
    m.vmcb.control.next_rip = CODE + 7;
    m.exit(code::CPUID, 0, 0);
    assert_eq!(m.rip(), CODE + 7);
    // Without NRIPS the intercepted instruction must be what RIP points
    // at; here it is a NOP, which is an emulation failure.
    let mut m = Machine::flat32().code(&[0x90]);
    assert_eq!(m.exit(code::CPUID, 0, 0), Flow::Stop);
    assert_eq!(m.internal().suberror, uapi::PACIFICA_INTERNAL_EMULATION);
    assert_eq!(m.rip(), CODE);
}

#[test]
fn msrs_go_through_the_policy() {
    // WRMSR LSTAR with a canonical value reaches the VMCB.
    let mut m = Machine::long64().code(&[0x0f, 0x30]);
    m.set(Gpr::Rcx, 0xc000_0082);
    m.set(Gpr::Rdx, 0xffff_ffff);
    m.set(Gpr::Rax, 0x8100_0000);
    assert_eq!(m.exit(code::MSR, 1, 0), Flow::Continue);
    assert_eq!((m.vmcb.save.lstar, m.rip()), (0xffff_ffff_8100_0000, CODE + 2));
    // A non-canonical one is #GP, and RIP stays.
    let mut m = Machine::long64().code(&[0x0f, 0x30]);
    m.set(Gpr::Rcx, 0xc000_0082);
    m.set(Gpr::Rdx, 0x8000);
    assert_eq!(m.exit(code::MSR, 1, 0), Flow::Continue);
    assert_eq!((m.injected(), m.rip()), (Some((vector::GP, Some(0))), CODE));
    assert_eq!(m.vmcb.save.lstar, 0);
    // RDMSR EFER: the guest's value, without SVME.
    let mut m = Machine::long64().code(&[0x0f, 0x32]);
    m.set(Gpr::Rcx, 0xc000_0080);
    m.exit(code::MSR, 0, 0);
    assert_eq!((m.gpr(Gpr::Rax), m.gpr(Gpr::Rdx)), (efer::LME | efer::LMA, 0));
    // An MSR the policy does not know is #GP.
    let mut m = Machine::flat32().code(&[0x0f, 0x32]);
    m.set(Gpr::Rcx, 0x1234_5678);
    m.exit(code::MSR, 0, 0);
    assert_eq!(m.injected(), Some((vector::GP, Some(0))));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_GP), 1);
}

#[test]
fn hlt_returns_to_userspace_past_the_instruction() {
    let mut m = Machine::flat32().code(&[0xf4]);
    assert_eq!(m.exit(code::HLT, 0, 0), Flow::User);
    assert_eq!(m.rip(), CODE + 1);
    assert_eq!((m.run().exit_reason, m.run().rip), (uapi::PACIFICA_EXIT_HLT, CODE));
}

#[test]
fn out_and_in_move_rax_through_the_run_page() {
    let mut m = Machine::flat32().code(&[0xee]);
    m.set(Gpr::Rax, 0x1234_5678);
    assert_eq!(m.exit(code::IOIO, io_info(0x3f8, ioio::SZ8, false), CODE + 1), Flow::User);
    let run = m.run();
    // SAFETY: every field of the union is plain integers.
    let io = unsafe { run.exit.io };
    assert_eq!((run.exit_reason, io.direction, io.size, io.port, io.count), (uapi::PACIFICA_EXIT_IO, uapi::PACIFICA_EXIT_IO_OUT, 1, 0x3f8, 1));
    assert_eq!(io.data_offset, uapi::PACIFICA_RUN_IO_DATA_OFFSET as u64);
    assert_eq!((m.world.io.borrow()[0], m.rip()), (0x78, CODE + 1));

    let mut m = Machine::flat32().code(&[0x66, 0xed]);
    m.set(Gpr::Rax, 0xaaaa_bbbb_cccc_dddd);
    assert_eq!(m.exit(code::IOIO, io_info(0x60, ioio::SZ16, true), CODE + 2), Flow::User);
    m.world.io.borrow_mut()[..2].copy_from_slice(&[0x34, 0x12]);
    m.resume();
    // A 16-bit IN writes AX and keeps the rest of RAX.
    assert_eq!((m.gpr(Gpr::Rax), m.rip()), (0xaaaa_bbbb_cccc_1234, CODE + 2));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_IO), 1);
}

#[test]
fn rep_outs_and_ins_move_guest_memory_in_one_exit() {
    let mut m = Machine::flat32().code(&[0xf3, 0x6e]);
    m.world.put(0x2000, b"abc");
    m.set(Gpr::Rsi, 0x2000);
    m.set(Gpr::Rcx, 3);
    let info = io_info(0x3f8, ioio::SZ8, false) | ioio::STR | ioio::REP;
    assert_eq!(m.exit(code::IOIO, info, CODE + 2), Flow::User);
    // SAFETY: every field of the union is plain integers.
    assert_eq!(unsafe { m.run().exit.io.count }, 3);
    assert_eq!(&m.world.io.borrow()[..3], b"abc");
    assert_eq!((m.gpr(Gpr::Rsi), m.gpr(Gpr::Rcx), m.rip()), (0x2003, 0, CODE + 2));

    let mut m = Machine::flat32().code(&[0xf3, 0x6c]);
    m.set(Gpr::Rdi, 0x3000);
    m.set(Gpr::Rcx, 2);
    let info = io_info(0x3f8, ioio::SZ8, true) | ioio::STR | ioio::REP;
    assert_eq!(m.exit(code::IOIO, info, CODE + 2), Flow::User);
    m.world.io.borrow_mut()[..2].copy_from_slice(b"xy");
    m.resume();
    assert_eq!(m.world.get(0x3000, 2), b"xy");
    assert_eq!((m.gpr(Gpr::Rdi), m.gpr(Gpr::Rcx), m.rip()), (0x3002, 0, CODE + 2));
}

#[test]
fn outs_from_unmapped_memory_is_the_guests_page_fault() {
    // Paging on, nothing mapped at 0x4000_0000: OUTSB faults before any
    // port is touched.
    let mut m = Machine::long64().code(&[0x6e]);
    m.set(Gpr::Rsi, 0x4000_0000);
    let info = io_info(0x3f8, ioio::SZ8, false) | ioio::STR;
    assert_eq!(m.exit(code::IOIO, info, CODE + 1), Flow::Continue);
    assert_eq!(m.injected().map(|i| i.0), Some(vector::PF));
    assert_eq!((m.vmcb.save.cr2, m.rip(), m.run().exit_reason), (0x4000_0000, CODE, 0));
}

#[test]
fn vmmcall_ping_is_answered_in_the_kernel_and_others_go_to_userspace() {
    let mut m = Machine::flat32().code(&[0x0f, 0x01, 0xd9]);
    m.set(Gpr::Rax, uapi::PACIFICA_HC_PING);
    assert_eq!(m.exit(code::VMMCALL, 0, 0), Flow::Continue);
    assert_eq!((m.gpr(Gpr::Rax), m.rip()), (0, CODE + 3));

    let mut m = Machine::flat32().code(&[0x0f, 0x01, 0xd9]);
    m.set(Gpr::Rax, 7);
    m.set(Gpr::Rbx, 11);
    m.set(Gpr::Rsi, 44);
    assert_eq!(m.exit(code::VMMCALL, 0, 0), Flow::User);
    // SAFETY: every field of the union is plain integers.
    let hc = unsafe { m.run().exit.hypercall };
    assert_eq!((hc.nr, hc.args[0], hc.args[3]), (7, 11, 44));
    m.world.run.borrow_mut().exit.hypercall.ret = 99;
    m.resume();
    assert_eq!((m.gpr(Gpr::Rax), m.rip()), (99, CODE + 3));
}

#[test]
fn shutdown_stops_the_vcpu() {
    let mut m = Machine::flat32();
    assert_eq!(m.exit(code::SHUTDOWN, 0, 0), Flow::Stop);
    assert_eq!(m.run().exit_reason, uapi::PACIFICA_EXIT_SHUTDOWN);
}

#[test]
fn nested_page_faults_outside_ram_are_mmio() {
    // mov [ebx], eax
    let mut m = Machine::flat32().code(&[0x89, 0x03]);
    m.set(Gpr::Rbx, MMIO);
    m.set(Gpr::Rax, 0xcafe_f00d);
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO), Flow::User);
    // SAFETY: every field of the union is plain integers.
    let mmio = unsafe { m.run().exit.mmio };
    assert_eq!((mmio.phys_addr, mmio.len, mmio.is_write), (MMIO, 4, 1));
    assert_eq!((u32::from_le_bytes(mmio.data[..4].try_into().unwrap()), m.rip()), (0xcafe_f00d, CODE + 2));

    // movzx eax, word [ebx]
    let mut m = Machine::flat32().code(&[0x0f, 0xb7, 0x03]);
    m.set(Gpr::Rbx, MMIO);
    m.set(Gpr::Rax, u64::MAX);
    assert_eq!(m.exit(code::NPF, 0, MMIO), Flow::User);
    // SAFETY: as above.
    assert_eq!(unsafe { (m.run().exit.mmio.len, m.run().exit.mmio.is_write) }, (2, 0));
    assert_eq!(m.rip(), CODE, "the load completes at the next run");
    m.world.run.borrow_mut().exit.mmio.data = [0x34, 0x92, 0xff, 0xff, 0, 0, 0, 0];
    m.resume();
    // A 32-bit destination clears the upper half of RAX.
    assert_eq!((m.gpr(Gpr::Rax), m.rip()), (0x9234, CODE + 3));
}

#[test]
fn read_modify_write_instructions_read_then_write_the_device() {
    use crate::hw::cr::rflags::{CF, PF, STATUS, ZF};
    // or dword [ebx], 0x10: a read, then the write of the result.
    let mut m = Machine::flat32().code(&[0x83, 0x0b, 0x10]);
    m.set(Gpr::Rbx, MMIO + 8);
    m.vmcb.save.rflags |= CF | ZF;
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO + 8), Flow::User);
    assert_eq!(m.mmio(), (MMIO + 8, 4, 0, 0));
    assert_eq!(m.rip(), CODE);
    assert_eq!(m.answer(0x01), Flow::User);
    assert_eq!(m.mmio(), (MMIO + 8, 4, 1, 0x11));
    assert_eq!((m.rip(), m.vmcb.save.rflags & STATUS), (CODE + 3, PF));

    // cmp [ebx], eax: a read, flags, no write.
    let mut m = Machine::flat32().code(&[0x39, 0x03]);
    m.set(Gpr::Rbx, MMIO);
    m.set(Gpr::Rax, 0x1234);
    assert_eq!(m.exit(code::NPF, 0, MMIO), Flow::User);
    assert_eq!(m.answer(0x1234), Flow::Continue);
    assert_eq!((m.rip(), m.vmcb.save.rflags & STATUS), (CODE + 2, ZF | PF));

    // sub ecx, [ebx]: the register is the destination.
    let mut m = Machine::flat32().code(&[0x2b, 0x0b]);
    m.set(Gpr::Rbx, MMIO);
    m.set(Gpr::Rcx, 0xffff_ffff_0000_0010);
    assert_eq!(m.exit(code::NPF, 0, MMIO), Flow::User);
    assert_eq!(m.answer(0x11), Flow::Continue);
    assert_eq!(m.gpr(Gpr::Rcx), 0xffff_ffff, "a 32-bit result clears the upper half");
    assert_ne!(m.vmcb.save.rflags & CF, 0);

    // xchg [ebx], cl: the old byte to CL, CL's to the device.
    let mut m = Machine::flat32().code(&[0x86, 0x0b]);
    m.set(Gpr::Rbx, MMIO);
    m.set(Gpr::Rcx, 0xaa55);
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO), Flow::User);
    assert_eq!(m.answer(0x77), Flow::User);
    assert_eq!(m.mmio(), (MMIO, 1, 1, 0x55));
    assert_eq!(m.gpr(Gpr::Rcx), 0xaa77);

    // bts dword [ebx], 3 sets the bit and CF says it was clear; bt only reads.
    let mut m = Machine::flat32().code(&[0x0f, 0xba, 0x2b, 0x03]);
    m.set(Gpr::Rbx, MMIO);
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO), Flow::User);
    assert_eq!(m.answer(0x1), Flow::User);
    assert_eq!((m.mmio(), m.vmcb.save.rflags & CF), ((MMIO, 4, 1, 0x9), 0));
    let mut m = Machine::flat32().code(&[0x0f, 0xa3, 0x03]);
    m.set(Gpr::Rbx, MMIO);
    m.set(Gpr::Rax, 36);
    assert_eq!(m.exit(code::NPF, 0, MMIO), Flow::User);
    assert_eq!(m.answer(0x10), Flow::Continue);
    assert_ne!(m.vmcb.save.rflags & CF, 0, "bit 36 mod 32 is bit 4");
}

#[test]
fn string_instructions_move_one_device_element_per_fault() {
    use crate::hw::cr::rflags::DF;
    // rep stosd: each element is a write exit; RIP stays until RCX is 0.
    let mut m = Machine::flat32().code(&[0xf3, 0xab]);
    m.set(Gpr::Rdi, MMIO);
    m.set(Gpr::Rcx, 2);
    m.set(Gpr::Rax, 7);
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO), Flow::User);
    assert_eq!(m.mmio(), (MMIO, 4, 1, 7));
    assert_eq!((m.gpr(Gpr::Rdi), m.gpr(Gpr::Rcx), m.rip()), (MMIO + 4, 1, CODE));
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO + 4), Flow::User);
    assert_eq!((m.gpr(Gpr::Rdi), m.gpr(Gpr::Rcx), m.rip()), (MMIO + 8, 0, CODE + 2));

    // movsb from RAM to the device.
    let mut m = Machine::flat32().code(&[0xa4]);
    m.world.put(0x3000, &[0x5a]);
    m.set(Gpr::Rsi, 0x3000);
    m.set(Gpr::Rdi, MMIO);
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO), Flow::User);
    assert_eq!(m.mmio(), (MMIO, 1, 1, 0x5a));
    assert_eq!((m.gpr(Gpr::Rsi), m.gpr(Gpr::Rdi), m.rip()), (0x3001, MMIO + 1, CODE + 1));

    // movsd from the device to RAM.
    let mut m = Machine::flat32().code(&[0xa5]);
    m.set(Gpr::Rsi, MMIO);
    m.set(Gpr::Rdi, 0x3000);
    assert_eq!(m.exit(code::NPF, 0, MMIO), Flow::User);
    assert_eq!(m.mmio(), (MMIO, 4, 0, 0));
    assert_eq!(m.answer(0xdead_beef), Flow::Continue);
    assert_eq!(m.world.get(0x3000, 4), 0xdead_beefu32.to_le_bytes());
    assert_eq!((m.gpr(Gpr::Rsi), m.gpr(Gpr::Rdi), m.rip()), (MMIO + 4, 0x3004, CODE + 1));

    // lodsw with DF set moves down.
    let mut m = Machine::flat32().code(&[0x66, 0xad]);
    m.vmcb.save.rflags |= DF;
    m.set(Gpr::Rsi, MMIO + 0x10);
    m.set(Gpr::Rax, 0xffff_0000);
    assert_eq!(m.exit(code::NPF, 0, MMIO + 0x10), Flow::User);
    assert_eq!(m.answer(0x4242), Flow::Continue);
    assert_eq!((m.gpr(Gpr::Rax), m.gpr(Gpr::Rsi)), (0xffff_4242, MMIO + 0xe));
}

#[test]
fn nested_page_faults_the_emulator_cannot_serve_stop_the_vcpu() {
    // Inside RAM.
    let mut m = Machine::flat32().code(&[0x89, 0x03]);
    assert_eq!(m.exit(code::NPF, npf::WRITE, 0x2000), Flow::Stop);
    assert_eq!(m.internal().suberror, uapi::PACIFICA_INTERNAL_NPF_IN_RAM);
    // An instruction fetch from MMIO.
    let mut m = Machine::flat32();
    assert_eq!(m.exit(code::NPF, npf::FETCH, MMIO), Flow::Stop);
    assert_eq!(m.internal().suberror, uapi::PACIFICA_INTERNAL_EMULATION);
    // An instruction the emulator does not know: neg dword [ebx].
    let mut m = Machine::flat32().code(&[0xf7, 0x1b]);
    assert_eq!(m.exit(code::NPF, npf::WRITE, MMIO), Flow::Stop);
    let internal = m.internal();
    assert_eq!((internal.suberror, internal.exit_code, internal.exit_info_2), (uapi::PACIFICA_INTERNAL_EMULATION, code::NPF, MMIO));
    // Userspace learns the bytes: the whole window the decoder looked at.
    assert_eq!((internal.insn_len, &internal.insn_bytes[..2]), (15, &[0xf7, 0x1b][..]));
}

#[test]
fn forbidden_instructions_raise_ud_and_rdpmc_gp() {
    for c in [code::VMRUN, code::VMLOAD, code::STGI, code::SKINIT, code::MWAIT, code::XSETBV, code::RDPRU] {
        let mut m = Machine::flat32();
        assert_eq!(m.exit(c, 0, 0), Flow::Continue);
        assert_eq!((m.injected(), m.rip()), (Some((vector::UD, None)), CODE), "exit {c:#x}");
    }
    let mut m = Machine::flat32().code(&[0x0f, 0x33]);
    m.exit(code::RDPMC, 0, 0);
    assert_eq!(m.injected(), Some((vector::GP, Some(0))));
}

#[test]
fn invd_and_wbinvd_are_skipped() {
    for (c, op) in [(code::INVD, 0x08), (code::WBINVD, 0x09)] {
        let mut m = Machine::flat32().code(&[0x0f, op]);
        assert_eq!(m.exit(c, 0, 0), Flow::Continue);
        assert_eq!((m.rip(), m.injected()), (CODE + 2, None));
    }
}

#[test]
fn a_task_switch_is_reported_as_unsupported() {
    let mut m = Machine::flat32().shadowed();
    assert_eq!(m.exit(code::TASK_SWITCH, 0x28, 0), Flow::Stop);
    assert_eq!(m.internal().suberror, uapi::PACIFICA_INTERNAL_UNSUPPORTED);
}

#[test]
fn debug_and_alignment_exceptions_are_given_back() {
    // An instruction breakpoint (DR7 R/W0 = 00, DR6.B0): RF goes into the
    // pushed RFLAGS so that the handler's IRET runs the instruction once.
    let mut m = Machine::flat32();
    m.vmcb.save.dr6 = 0xffff_0ff1;
    m.vmcb.save.dr7 = 0x401;
    assert_eq!(m.exit(code::EXCP_BASE + u64::from(vector::DB), 0, 0), Flow::Continue);
    assert_eq!(m.injected(), Some((vector::DB, None)));
    assert_ne!(m.vmcb.save.rflags & (1 << 16), 0);
    // A single step is a trap: no RF.
    let mut m = Machine::flat32();
    m.vmcb.save.dr6 = 0xffff_4ff0;
    m.exit(code::EXCP_BASE + u64::from(vector::DB), 0, 0);
    assert_eq!(m.vmcb.save.rflags & (1 << 16), 0);
    let mut m = Machine::flat32();
    m.exit(code::EXCP_BASE + u64::from(vector::AC), 0, 0);
    assert_eq!(m.injected(), Some((vector::AC, Some(0))));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_EXCEPTION), 1);
}

#[test]
fn exceptions_combine_into_double_faults_and_shutdown() {
    // A #GP while a #PF was being delivered is a #DF.
    let mut m = Machine::flat32().code(&[0x0f, 0x33]);
    m.vmcb.control.event_inj = event::VALID | event::TYPE_EXEPT | event::ERROR_VALID | u32::from(vector::PF);
    m.exit(code::RDPMC, 0, 0);
    assert_eq!(m.injected(), Some((vector::DF, Some(0))));
    // Anything while a #DF was being delivered shuts the guest down.
    let mut m = Machine::flat32().code(&[0x0f, 0x33]);
    m.vmcb.control.event_inj = event::VALID | event::TYPE_EXEPT | event::ERROR_VALID | u32::from(vector::DF);
    assert_eq!(m.exit(code::RDPMC, 0, 0), Flow::Stop);
    assert_eq!(m.run().exit_reason, uapi::PACIFICA_EXIT_SHUTDOWN);
}

#[test]
fn cr_writes_under_nested_paging_check_cpuid_and_long_mode() {
    // mov cr4, eax with a bit the guest's CPUID does not offer: #GP.
    let mut m = Machine::flat32().code(&[0x0f, 0x22, 0xe0]);
    m.set(Gpr::Rax, cr4::PAE | cr4::SMEP);
    assert_eq!(m.exit(code::CR0_WRITE + 4, 0, 0), Flow::Continue);
    assert_eq!((m.injected(), m.vmcb.save.cr4, m.rip()), (Some((vector::GP, Some(0))), 0, CODE));
    // An allowed one is written, with a TLB flush for a paging bit.
    let mut m = Machine::flat32().code(&[0x0f, 0x22, 0xe0]);
    m.set(Gpr::Rax, cr4::PAE);
    m.exit(code::CR0_WRITE + 4, 0, 0);
    assert_eq!((m.vmcb.save.cr4, m.cpu.flush_tlb, m.rip()), (cr4::PAE, true, CODE + 3));
    // Clearing CR0.PG from 64-bit code is #GP.
    let mut m = Machine::long64().code(&[0x0f, 0x22, 0xc0]);
    m.set(Gpr::Rax, cr0::PE | cr0::ET);
    m.exit(code::CR0_WRITE, 0, 0);
    assert_eq!(m.injected(), Some((vector::GP, Some(0))));
    assert_ne!(m.vmcb.save.cr0 & cr0::PG, 0);
}

#[test]
fn efer_lme_stays_hidden_until_paging_turns_on() {
    // WRMSR EFER.LME with paging off: the VMCB holds LME = 0, the guest
    // reads LME = 1.
    let mut m = Machine::flat32().code(&[0x0f, 0x30]);
    m.set(Gpr::Rcx, 0xc000_0080);
    m.set(Gpr::Rax, efer::LME);
    m.exit(code::MSR, 1, 0);
    assert_eq!((m.vmcb.save.efer, m.cpu.lme_hidden), (efer::SVME, true));
    assert_eq!(m.guest().guest_efer(), efer::LME);
    // mov cr0, eax turning paging on with PAE activates long mode.
    m.vmcb.save.cr4 = cr4::PAE;
    m.world.put(CODE + 2, &[0x0f, 0x22, 0xc0]);
    m.set(Gpr::Rax, cr0::PE | cr0::PG);
    m.exit(code::CR0_WRITE, 0, 0);
    assert_eq!(m.vmcb.save.efer, efer::SVME | efer::LME | efer::LMA);
    assert!(!m.cpu.lme_hidden);
}

#[test]
fn cr3_writes_under_shadow_paging_reach_the_shadow_mmu() {
    let mut m = Machine::flat32().shadowed().code(&[0x0f, 0x22, 0xd8]);
    m.set(Gpr::Rax, 0x3000);
    m.vmcb.save.cr3 = 0;
    // The hardware CR3 is the shadow root: anything else means the guest
    // loaded its own past the intercepts.
    assert_eq!(m.exit(code::CR0_WRITE + 3, 0, 0), Flow::Stop);
    assert_eq!(m.internal().suberror, uapi::PACIFICA_INTERNAL_UNSUPPORTED);

    let mut m = Machine::flat32().shadowed().code(&[0x0f, 0x22, 0xd8, 0x0f, 0x20, 0xd9]);
    m.set(Gpr::Rax, 0x3000);
    assert_eq!(m.exit(code::CR0_WRITE + 3, 0, 0), Flow::Continue);
    let shadow = m.shadow.as_ref().unwrap();
    assert_eq!(shadow.cr3_writes, [0x3000]);
    assert_eq!((m.vmcb.save.cr3, m.cpu.flush_tlb, m.rip()), (SHADOW_ROOT, true, CODE + 3));
    // mov ecx, cr3 reads the guest's CR3, not the hardware's.
    m.exit(code::CR0_READ + 3, 0, 0);
    assert_eq!((m.gpr(Gpr::Rcx), m.rip()), (0x3000, CODE + 6));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_CR), 2);
}

#[test]
fn dr7_reads_back_what_the_guest_wrote() {
    let mut m = Machine::flat32().code(&[0x0f, 0x23, 0xf8, 0x0f, 0x21, 0xfb]);
    m.set(Gpr::Rax, 0x0003_0002);
    assert_eq!(m.exit(code::DR0_WRITE + 7, 0, 0), Flow::Continue);
    assert_eq!((m.cpu.guest_dr7, m.rip()), (0x0003_0402, CODE + 3));
    m.exit(code::DR0_READ + 7, 0, 0);
    assert_eq!(m.gpr(Gpr::Rbx), 0x0003_0402);
    // The upper half of DR7 is reserved.
    let mut m = Machine::long64().code(&[0x0f, 0x23, 0xf8]);
    m.set(Gpr::Rax, 1 << 32);
    m.exit(code::DR0_WRITE + 7, 0, 0);
    assert_eq!(m.injected(), Some((vector::GP, Some(0))));
}

#[test]
fn shadow_page_faults_map_reflect_or_become_mmio() {
    let mut m = Machine::flat32().shadowed();
    assert_eq!(m.exit(code::EXCP_BASE + u64::from(vector::PF), 2, 0x5000), Flow::Continue);
    let shadow = m.shadow.as_ref().unwrap();
    assert_eq!(shadow.faults[0].0, 0x5000);
    assert!(shadow.faults[0].1.write);
    assert_eq!((m.injected(), m.cpu.invlpga), (None, Some(0x5000)));

    let mut m = Machine::flat32().shadowed();
    m.shadow.as_mut().unwrap().fault = Some(Fault::Guest(0x3));
    m.exit(code::EXCP_BASE + u64::from(vector::PF), 3, 0x6000);
    assert_eq!((m.injected(), m.vmcb.save.cr2), (Some((vector::PF, Some(3))), 0x6000));

    let mut m = Machine::flat32().shadowed().code(&[0x89, 0x03]);
    m.shadow.as_mut().unwrap().fault = Some(Fault::Mmio(MMIO));
    m.set(Gpr::Rbx, 0x6000);
    assert_eq!(m.exit(code::EXCP_BASE + u64::from(vector::PF), 3, 0x6000), Flow::User);
    // SAFETY: every field of the union is plain integers.
    assert_eq!(unsafe { m.run().exit.mmio.phys_addr }, MMIO);
    assert_eq!(m.stat(uapi::PACIFICA_STAT_PF), 1);
}

#[test]
fn invlpg_drops_the_shadow_entry_and_the_tlb_entry() {
    // invlpg [eax+0x10]
    let mut m = Machine::flat32().shadowed().code(&[0x0f, 0x01, 0x78, 0x10]);
    m.set(Gpr::Rax, 0x8000);
    assert_eq!(m.exit(code::INVLPG, 0, 0), Flow::Continue);
    assert_eq!(m.shadow.as_ref().unwrap().invalidated, [0x8010]);
    assert_eq!((m.cpu.invlpga, m.rip()), (Some(0x8010), CODE + 4));
}

#[test]
fn ltr_loads_a_tss_and_marks_it_busy() {
    // A 32-bit available TSS at GDT index 5 (selector 0x28).
    let tss = 0x9000u64;
    let desc = 0x67 | (tss << 16) | (u64::from(attr::TSS_AVAILABLE | attr::P) << 40);
    let mut m = Machine::flat32().code(&[0x0f, 0x00, 0xd8]);
    m.world.put(0x800 + 0x28, &desc.to_le_bytes());
    m.set(Gpr::Rax, 0x28);
    assert_eq!(m.exit(code::TR_WRITE, 0, 0), Flow::Continue);
    let tr = m.vmcb.save.tr;
    assert_eq!((tr.selector, tr.base, tr.limit, m.rip()), (0x28, tss, 0x67, CODE + 3));
    let busy = u64::from_le_bytes(m.world.get(0x800 + 0x28, 8).try_into().unwrap());
    assert_ne!(busy & (u64::from(attr::TSS_BUSY_BIT) << 40), 0);
    // Loading it again finds it busy: #GP with the selector.
    let mut m2 = Machine::flat32().code(&[0x0f, 0x00, 0xd8]);
    m2.world.put(0x800 + 0x28, &busy.to_le_bytes());
    m2.set(Gpr::Rax, 0x28);
    m2.exit(code::TR_WRITE, 0, 0);
    assert_eq!(m2.injected(), Some((vector::GP, Some(0x28))));
    // A null selector is #GP(0).
    let mut m = Machine::flat32().code(&[0x0f, 0x00, 0xd8]);
    m.exit(code::TR_WRITE, 0, 0);
    assert_eq!((m.injected(), m.rip()), (Some((vector::GP, Some(0))), CODE));
}

#[test]
fn a_refused_vmrun_is_a_failed_entry_in_either_width() {
    for c in [code::INVALID, 0xffff_ffff] {
        let mut m = Machine::flat32();
        assert_eq!(m.exit(c, 0, 0), Flow::Stop);
        assert_eq!(m.run().exit_reason, uapi::PACIFICA_EXIT_FAIL_ENTRY);
    }
}

#[test]
fn an_unknown_exit_is_an_internal_error_logged_once() {
    let mut m = Machine::flat32();
    for _ in 0..3 {
        assert_eq!(m.exit(code::PAUSE, 0x11, 0x22), Flow::Stop);
        let internal = m.internal();
        assert_eq!(internal.suberror, uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT);
        assert_eq!((internal.exit_code, internal.exit_info_1, internal.exit_info_2), (code::PAUSE, 0x11, 0x22));
    }
    assert_eq!(*m.world.unhandled.borrow(), [code::PAUSE]);
    assert_eq!(m.stat(uapi::PACIFICA_STAT_INTERNAL), 3);
}

/// A vCPU with an in-kernel APIC, software-enabled, IF set.
fn with_apic(m: Machine) -> Machine {
    let mut m = m;
    m.cpu.lapic = Some(crate::irq::lapic::Lapic::new(0, true, false));
    m.vmcb.save.rflags |= crate::hw::cr::rflags::IF;
    m
}

/// One MOV to the xAPIC page: `mov dword ptr [rbx + off], imm32`.
fn apic_store(m: &mut Machine, off: u32, v: u32) -> Flow {
    let mut code = vec![0xc7, 0x83];
    code.extend_from_slice(&off.to_le_bytes());
    code.extend_from_slice(&v.to_le_bytes());
    m.world.put(CODE, &code);
    m.vmcb.save.rip = CODE;
    m.set(Gpr::Rbx, APIC_PAGE);
    m.exit(code::NPF, npf::WRITE | npf::GUEST_FINAL, APIC_PAGE + u64::from(off))
}

const APIC_PAGE: u64 = crate::hw::apic::base::DEFAULT_ADDR;

#[test]
fn apic_msrs_and_partial_page_reads() {
    use crate::hw::apic::{base, reg, VERSION};
    let mut m = with_apic(Machine::long64()).code(&[0x0f, 0x32]);
    m.set(Gpr::Rcx, u64::from(crate::hw::msr::APIC_BASE));
    assert_eq!(m.exit(code::MSR, 0, 0), Flow::Continue);
    assert_eq!(m.gpr(Gpr::Rax), base::DEFAULT_ADDR | base::ENABLE | base::BSP);
    // x2APIC MSRs exist only in x2APIC mode.
    let mut m = with_apic(Machine::long64()).code(&[0x0f, 0x32]);
    m.set(Gpr::Rcx, 0x802);
    m.exit(code::MSR, 0, 0);
    assert_eq!(m.injected(), Some((vector::GP, Some(0))));
    // Without an in-kernel APIC, IA32_APIC_BASE is #GP as before.
    let mut m = Machine::long64().code(&[0x0f, 0x32]);
    m.set(Gpr::Rcx, u64::from(crate::hw::msr::APIC_BASE));
    m.exit(code::MSR, 0, 0);
    assert_eq!(m.injected(), Some((vector::GP, Some(0))));
    // movzx eax, byte [rbx + 0x32]: byte 2 of the version register.
    let mut m = with_apic(Machine::long64()).code(&[0x0f, 0xb6, 0x43, 0x32]);
    m.set(Gpr::Rbx, APIC_PAGE);
    assert_eq!(m.exit(code::NPF, 0, APIC_PAGE + u64::from(reg::LVR) + 2), Flow::Continue);
    assert_eq!((m.gpr(Gpr::Rax), m.rip()), (u64::from(VERSION >> 16) & 0xff, CODE + 4));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_APIC_ACCESS), 1);
    assert_eq!(m.stat(uapi::PACIFICA_STAT_USER_EXITS), 0);
}

/// The vector [`exit::offer_interrupt`] offered through V_IRQ, if any.
fn offered(m: &Machine) -> Option<u8> {
    use crate::hw::svm::int_ctl;
    let c = &m.vmcb.control;
    (c.int_ctl & int_ctl::V_IRQ != 0).then_some(c.int_vector as u8)
}

/// The CPU took the offered virtual interrupt: it clears V_IRQ.
fn take_virq(m: &mut Machine) {
    m.vmcb.control.int_ctl &= !crate::hw::svm::int_ctl::V_IRQ;
}

#[test]
fn apic_page_writes_deliver_fixed_ipis_at_the_next_entry() {
    use crate::hw::apic::{lvt, reg, spiv};
    let mut m = with_apic(Machine::long64());
    assert_eq!(apic_store(&mut m, reg::SPIV, spiv::ENABLED | 0xff), Flow::Continue);
    assert_eq!(m.rip(), CODE + 10);
    // A self-IPI: offered as a virtual interrupt with its vector and
    // priority, and in service once the CPU took it.
    apic_store(&mut m, reg::ICR, lvt::SHORTHAND_SELF | 0x40);
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), Some(0x40));
    assert_eq!((m.vmcb.control.int_ctl >> 16) & 0xf, 4, "V_INTR_PRIO");
    take_virq(&mut m);
    apic_store(&mut m, reg::EOI, 0);
    assert_eq!(m.stat(uapi::PACIFICA_STAT_IRQ_INJECTED), 1);
    assert_eq!(m.cpu.lapic.as_ref().unwrap().isr, crate::irq::lapic::VectorSet::default());
    // A fixed IPI to physical destination 0, this vCPU.
    apic_store(&mut m, reg::ICR2, 0);
    apic_store(&mut m, reg::ICR, 0x50);
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), Some(0x50));
    assert_eq!(m.vmcb.control.event_inj, 0, "never through EVENTINJ");
    // Not taken by the next exit (IF = 0, say): still requested, offered again.
    apic_store(&mut m, reg::TASKPRI, 0);
    let a = m.cpu.lapic.as_ref().unwrap();
    assert!(a.irr.contains(0x50) && !a.isr.contains(0x50));
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), Some(0x50));
    take_virq(&mut m);
    apic_store(&mut m, reg::TASKPRI, 0);
    let a = m.cpu.lapic.as_ref().unwrap();
    assert!(!a.irr.contains(0x50) && a.isr.contains(0x50));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_IRQ_INJECTED), 2);
}

#[test]
fn an_offered_interrupt_waits_for_if_and_the_shadow() {
    use crate::hw::apic::{lvt, reg, spiv};
    let mut m = with_apic(Machine::long64());
    apic_store(&mut m, reg::SPIV, spiv::ENABLED | 0xff);
    apic_store(&mut m, reg::ICR, lvt::SHORTHAND_SELF | 0x40);
    m.vmcb.save.rflags &= !crate::hw::cr::rflags::IF;
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), Some(0x40));
    m.vmcb.save.rflags |= crate::hw::cr::rflags::IF;
    m.vmcb.control.int_state = 1;
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(m.stat(uapi::PACIFICA_STAT_IRQ_WINDOW), 2);
    // A refused VMRUN took nothing, whatever V_IRQ says.
    take_virq(&mut m);
    assert_eq!(m.exit(code::INVALID, 0, 0), Flow::Stop);
    assert!(m.cpu.lapic.as_ref().unwrap().irr.contains(0x40));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_IRQ_INJECTED), 0);
}

#[test]
fn cr8_writes_exit_only_while_the_tpr_holds_a_vector_back() {
    use crate::hw::apic::{lvt, reg, spiv};
    use crate::hw::svm::{intercept_write, INTERCEPT_CR_WORD};
    let cr8_intercepted = |m: &Machine| m.vmcb.control.intercepts[INTERCEPT_CR_WORD] & intercept_write(8) != 0;
    let mut m = with_apic(Machine::long64());
    apic_store(&mut m, reg::SPIV, spiv::ENABLED | 0xff);
    exit::offer_interrupt(&mut m.guest());
    assert!(!cr8_intercepted(&m));
    // The guest set CR8 = 4 without an exit (V_TPR), then sent 0x40.
    m.vmcb.control.int_ctl |= 4;
    apic_store(&mut m, reg::ICR, lvt::SHORTHAND_SELF | 0x40);
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), None);
    assert!(cr8_intercepted(&m));
    // mov cr8, rax with RAX = 0: the TPR drops and the vector is offered.
    m.world.put(CODE, &[0x44, 0x0f, 0x22, 0xc0]);
    m.vmcb.save.rip = CODE;
    m.set(Gpr::Rax, 0);
    assert_eq!(m.exit(code::CR0_WRITE + 8, 0, 0), Flow::Continue);
    assert_eq!((m.rip(), m.vmcb.control.int_ctl & 0xf), (CODE + 4, 0));
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), Some(0x40));
    assert!(!cr8_intercepted(&m));
    // CR8 above 15 is #GP.
    m.vmcb.save.rip = CODE;
    m.set(Gpr::Rax, 16);
    m.exit(code::CR0_WRITE + 8, 0, 0);
    assert_eq!(m.injected(), Some((vector::GP, Some(0))));
}

#[test]
fn an_interrupt_whose_delivery_an_exit_interrupted_is_offered_again() {
    use crate::hw::apic::{lvt, reg, spiv};
    let mut m = with_apic(Machine::long64());
    apic_store(&mut m, reg::SPIV, spiv::ENABLED | 0xff);
    apic_store(&mut m, reg::ICR, lvt::SHORTHAND_SELF | 0x40);
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), Some(0x40));
    // The delivery's stack push faulted (V_IRQ still set, as QEMU leaves
    // it), and the run loop put EXITINTINFO into EVENTINJ: the interrupt
    // stays requested, leaves EVENTINJ, and is offered again.
    let intr = event::VALID | event::TYPE_INTR | 0x40;
    m.vmcb.control.exit_int_info = intr;
    m.vmcb.control.event_inj = intr;
    m.exit(code::INTR, 0, 0);
    let a = m.cpu.lapic.as_ref().unwrap();
    assert!(a.irr.contains(0x40) && !a.isr.contains(0x40));
    assert_eq!(m.vmcb.control.event_inj, 0);
    m.vmcb.control.exit_int_info = 0;
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(offered(&m), Some(0x40));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_IRQ_INJECTED), 0);
}

#[test]
fn an_interrupt_qemu_reports_as_an_exception_is_an_interrupt() {
    let exept = event::VALID | event::TYPE_EXEPT;
    assert_eq!(crate::testbed::exit_int_info(exept | 0x40), event::VALID | event::TYPE_INTR | 0x40);
    // Real exceptions stay as they are, error code included.
    let gp = exept | event::ERROR_VALID | u32::from(vector::GP);
    assert_eq!(crate::testbed::exit_int_info(gp), gp);
    assert_eq!(crate::testbed::exit_int_info(event::VALID | event::TYPE_SOFT | 0x80), event::VALID | event::TYPE_SOFT | 0x80);
}

#[test]
fn hlt_with_an_apic_halts_in_the_kernel_until_an_interrupt_it_can_take() {
    use crate::hw::apic::{lvt, reg, spiv};
    use crate::hw::cr::rflags;
    let mut m = with_apic(Machine::long64());
    apic_store(&mut m, reg::SPIV, spiv::ENABLED | 0xff);
    m.world.put(CODE, &[0xf4]);
    m.vmcb.save.rip = CODE;
    assert_eq!(m.exit(code::HLT, 0, 0), Flow::Continue);
    assert!(m.cpu.halted && m.rip() == CODE + 1);
    assert_eq!((m.stat(uapi::PACIFICA_STAT_HALT), m.stat(uapi::PACIFICA_STAT_USER_EXITS)), (1, 0));
    assert!(!exit::wakes_from_halt(&m.guest()));
    apic_store(&mut m, reg::ICR, lvt::SHORTHAND_SELF | 0x40);
    assert!(exit::wakes_from_halt(&m.guest()));
    // With IF = 0 only an NMI wakes it.
    m.vmcb.save.rflags &= !rflags::IF;
    assert!(!exit::wakes_from_halt(&m.guest()));
    m.cpu.nmi.pending = true;
    assert!(exit::wakes_from_halt(&m.guest()));
    // Without an APIC, HLT is userspace's.
    let mut plain = Machine::long64().code(&[0xf4]);
    assert_eq!(plain.exit(code::HLT, 0, 0), Flow::User);
    assert!(!plain.cpu.halted);
}

#[test]
fn an_nmi_blocks_nmis_until_its_iret_has_executed() {
    use crate::hw::cr::rflags;
    use crate::hw::svm::intercept;
    let mut m = with_apic(Machine::long64());
    m.vmcb.save.rflags &= !rflags::IF;
    m.cpu.nmi.pending = true;
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(m.injected(), Some((vector::NMI, None)), "an NMI goes in whatever IF says");
    assert_eq!(m.vmcb.control.event_inj & (7 << event::TYPE_SHIFT), event::TYPE_NMI);
    assert!(m.vmcb.control.has_intercept(intercept::IRET));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_NMI_INJECTED), 1);
    // Delivered; a second NMI arrives while the handler runs: it waits.
    m.vmcb.control.event_inj = 0;
    m.vmcb.save.rip = CODE + 0x100;
    m.cpu.nmi.pending = true;
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(m.injected(), None);
    // The handler's IRET: intercepted; the next entry single-steps it.
    m.vmcb.save.rip = CODE + 0x120;
    assert_eq!(m.exit(code::IRET, 0, 0), Flow::Continue);
    assert!(!m.vmcb.control.has_intercept(intercept::IRET));
    m.vmcb.save.dr6 = 0xffff_0ff0;
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(m.injected(), None);
    assert!(m.vmcb.save.rflags & rflags::TF != 0);
    // The step's #DB, after the IRET: the guest never sees it, DR6 and TF
    // are put back, and the NMI goes in at the next entry.
    m.vmcb.save.rip = CODE;
    m.vmcb.save.dr6 = 0xffff_4ff0;
    assert_eq!(m.exit(code::EXCP_BASE + u64::from(vector::DB), 0, 0), Flow::Continue);
    assert_eq!(m.injected(), None);
    assert_eq!((m.vmcb.save.dr6, m.vmcb.save.rflags & rflags::TF), (0xffff_0ff0, 0));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_EXCEPTION), 0);
    exit::offer_interrupt(&mut m.guest());
    assert_eq!(m.injected(), Some((vector::NMI, None)));
    assert_eq!(m.stat(uapi::PACIFICA_STAT_NMI_INJECTED), 2);
}

#[test]
fn a_userspace_pic_interrupt_waits_for_if_then_exits_for_inta() {
    use crate::hw::apic::{reg, spiv};
    use crate::hw::cr::rflags;
    use crate::hw::svm::intercept;
    use crate::irq::inbox::{Inbox, LINT0};
    let mut m = with_apic(Machine::long64());
    apic_store(&mut m, reg::SPIV, spiv::ENABLED | 0xff);
    apic_store(&mut m, reg::LVT0, 0x700);
    let inbox = Inbox::default();
    inbox.set_lint(LINT0, true);
    exit::take_inbox(&mut m.guest(), &inbox, true);
    assert!(m.cpu.extint_line);
    // IF = 0: an interrupt window (VINTR), no exit yet.
    m.vmcb.save.rflags &= !rflags::IF;
    assert_eq!(exit::offer_interrupt(&mut m.guest()), Flow::Continue);
    assert!(m.vmcb.control.has_intercept(intercept::VINTR));
    // The window opens: the next entry exits for the INTA.
    m.vmcb.save.rflags |= rflags::IF;
    assert_eq!(m.exit(code::VINTR, 0, 0), Flow::Continue);
    assert!(!m.vmcb.control.has_intercept(intercept::VINTR));
    assert_eq!(exit::offer_interrupt(&mut m.guest()), Flow::User);
    assert_eq!(m.run().exit_reason, uapi::PACIFICA_EXIT_INTA);
    // Userspace's PIC gives 0x68 and lowers its line: offered with the
    // highest priority, taken once, and not in the APIC's ISR.
    m.world.run.borrow_mut().exit.inta = uapi::IntaExit { vector: 0x68, pad: 0 };
    inbox.set_lint(LINT0, false);
    exit::complete_pending(&mut m.guest());
    exit::take_inbox(&mut m.guest(), &inbox, true);
    assert_eq!(exit::offer_interrupt(&mut m.guest()), Flow::Continue);
    assert_eq!(offered(&m), Some(0x68));
    take_virq(&mut m);
    m.exit(code::INTR, 0, 0);
    assert_eq!(m.cpu.extint, None);
    assert_eq!(m.cpu.lapic.as_ref().unwrap().isr, crate::irq::lapic::VectorSet::default());
    assert_eq!(exit::offer_interrupt(&mut m.guest()), Flow::Continue);
    assert_eq!(offered(&m), None);
}

#[test]
fn the_eoi_of_a_level_triggered_vector_exits_with_it() {
    use crate::hw::apic::{reg, spiv};
    use crate::irq::inbox::Inbox;
    let mut m = with_apic(Machine::long64());
    apic_store(&mut m, reg::SPIV, spiv::ENABLED | 0xff);
    let inbox = Inbox::default();
    inbox.post(0x50, true);
    inbox.post(0x40, false);
    exit::take_inbox(&mut m.guest(), &inbox, true);
    for v in [0x50u32, 0x40] {
        exit::offer_interrupt(&mut m.guest());
        assert_eq!(offered(&m), Some(v as u8));
        take_virq(&mut m);
        let f = apic_store(&mut m, reg::EOI, 0);
        if v == 0x50 {
            assert_eq!(f, Flow::User);
            assert_eq!(m.run().exit_reason, uapi::PACIFICA_EXIT_EOI);
            // SAFETY: the run page's union is integers.
            assert_eq!(unsafe { m.run().exit.eoi.vector }, 0x50);
            assert_eq!(m.rip(), CODE + 10, "the EOI's MOV completed");
        } else {
            assert_eq!(f, Flow::Continue, "an edge-triggered EOI stays in the kernel");
        }
    }
    assert_eq!(m.stat(uapi::PACIFICA_STAT_LEVEL_EOI), 1);
}

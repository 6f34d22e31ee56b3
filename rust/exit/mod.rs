// SPDX-License-Identifier: GPL-2.0

//! Exit handling: the #VMEXIT is decoded once into an [`Exit`], dispatched
//! by one `match`, and each family is handled in its own file. Every
//! handler returns a [`Flow`]; nothing here panics on what the guest does:
//! an exit without a handler becomes an internal-error exit to userspace.

mod cr;
#[allow(dead_code, unreachable_pub)]
mod decode;
mod io;
mod mmio;
mod seg;
mod sysreg;

use decode::Exit;
use crate::emulate::insn::{self, Insn, Opcode, Op};
use crate::emulate::walk::{self, Access, WalkError};
use crate::hw::gpr::Gpr;
use crate::hw::svm::{features, vector, Exception};
use crate::uapi;
use crate::vcpu::{Vcpu, VcpuState};
use crate::global;
use kernel::prelude::*;

/// What the run loop does after an exit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Enter the guest again.
    Continue,
    /// Return to userspace; the run page describes the exit.
    User,
    /// Return to userspace; the guest cannot continue without new state.
    Stop,
}

/// Work an exit to userspace leaves for the next `PACIFICA_RUN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pending {
    None,
    /// IN: copy the data from the run page into RAX.
    In { size: u8 },
    /// INS: copy the data into guest memory and advance the registers.
    StringIn(io::StringOp),
    /// MMIO read: load the data into a register and skip the instruction.
    MmioRead(mmio::Load),
    /// VMMCALL: the result goes into RAX.
    Hypercall,
}

/// Handles the exit that just happened.
pub(crate) fn handle(vcpu: &Vcpu, st: &mut VcpuState) -> Flow {
    st.exit_rip = st.vmcb().save.rip;
    // Under shadow paging the hardware CR3 is the shadow MMU's root, always.
    // A CPU that does not honour the TASK_SWITCH intercept (QEMU's TCG,
    // Documentation/security.rst) lets a task switch load the guest's own
    // CR3: the vCPU stops at the first exit after it.
    if let Some(root) = st.shadow.as_ref().map(|m| m.hw_cr3()) {
        if st.vmcb().save.cr3 != root && !crate::testbed::is_vmexit_invalid(st.vmcb().control.exit_code) {
            return internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_UNSUPPORTED);
        }
    }
    let c = st.vmcb().control;
    let exit = if crate::testbed::is_vmexit_invalid(c.exit_code) {
        Exit::Invalid
    } else {
        Exit::decode(c.exit_code, c.exit_info_1, c.exit_info_2)
    };
    match exit {
        Exit::Intr => {
            // The host took the interrupt when the run loop enabled them.
            st.count(uapi::PACIFICA_STAT_INTR);
            Flow::Continue
        }
        Exit::Nmi => {
            st.count(uapi::PACIFICA_STAT_NMI);
            Flow::Continue
        }
        Exit::HostEvent => {
            st.count(uapi::PACIFICA_STAT_OTHER);
            Flow::Continue
        }
        Exit::Cpuid => sysreg::cpuid(vcpu, st),
        Exit::Msr { write } => sysreg::msr(vcpu, st, write),
        Exit::Hlt => {
            st.count(uapi::PACIFICA_STAT_HLT);
            if let Err(f) = skip(vcpu, st, Opcode::Hlt) {
                return f;
            }
            user_exit(vcpu, st, uapi::PACIFICA_EXIT_HLT, uapi::ExitData { pad: [0; 256] })
        }
        Exit::Io(info) => io::handle(vcpu, st, info),
        Exit::Vmmcall => sysreg::vmmcall(vcpu, st),
        Exit::Shutdown => {
            st.count(uapi::PACIFICA_STAT_SHUTDOWN);
            user_exit(vcpu, st, uapi::PACIFICA_EXIT_SHUTDOWN, uapi::ExitData { pad: [0; 256] });
            Flow::Stop
        }
        Exit::Npf { gpa, error } => {
            st.count(uapi::PACIFICA_STAT_NPF);
            mmio::handle(vcpu, st, gpa, error)
        }
        Exit::Undefined => {
            st.count(uapi::PACIFICA_STAT_UD);
            exception(vcpu, st, Exception::UD)
        }
        Exit::Invd(opcode) => {
            st.count(uapi::PACIFICA_STAT_OTHER);
            match skip(vcpu, st, opcode) {
                Ok(()) => Flow::Continue,
                Err(f) => f,
            }
        }
        Exit::Rdpmc => {
            st.count(uapi::PACIFICA_STAT_GP);
            exception(vcpu, st, Exception::GP0)
        }
        Exit::TaskSwitch => {
            // Not emulated yet: report it rather than let the CPU load a
            // guest-physical CR3 into the hardware (Documentation/security.rst).
            internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_UNSUPPORTED)
        }
        Exit::Exception { vector: v, error } => {
            st.count(uapi::PACIFICA_STAT_EXCEPTION);
            reflect(vcpu, st, v, error)
        }
        Exit::Cr { .. } => cr::access(vcpu, st),
        Exit::Dr { .. } => cr::debug_register(vcpu, st),
        Exit::PageFault { error, la } => cr::page_fault(vcpu, st, error, la),
        Exit::Invlpg => cr::invlpg(vcpu, st),
        Exit::Ltr => seg::ltr(vcpu, st),
        Exit::Invalid => {
            st.count(uapi::PACIFICA_STAT_INTERNAL);
            let data = internal_data(st, 0);
            user_exit(vcpu, st, uapi::PACIFICA_EXIT_FAIL_ENTRY, data);
            Flow::Stop
        }
        Exit::Unknown(code) => {
            log_unhandled(vcpu, st, code);
            internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT)
        }
    }
}

/// Finishes what the last exit to userspace left open, with the data
/// userspace put in the run page.
pub(crate) fn complete_pending(vcpu: &Vcpu, st: &mut VcpuState) {
    let pending = core::mem::replace(&mut st.pending, Pending::None);
    match pending {
        Pending::None => {}
        Pending::In { size } => {
            let mut b = [0u8; 8];
            vcpu.io_read(0, &mut b[..usize::from(size)]);
            st.merge_gpr(insn::Reg { gpr: Gpr::Rax, high_byte: false }, u64::from_le_bytes(b), size);
        }
        Pending::StringIn(op) => io::complete_string_in(vcpu, st, op),
        Pending::MmioRead(load) => mmio::complete_load(vcpu, st, load),
        Pending::Hypercall => {
            let run = vcpu.read_run();
            // SAFETY: every field of the union is plain integers, so reading
            // any of them is sound whatever userspace wrote.
            let ret = unsafe { run.exit.hypercall.ret };
            st.vmcb().save.rax = ret;
        }
    }
}

/// Gives the guest an exception; a fault while a double fault was being
/// delivered shuts it down instead, as on real hardware.
fn exception(vcpu: &Vcpu, st: &mut VcpuState, e: Exception) -> Flow {
    if st.inject(e) {
        return Flow::Continue;
    }
    st.count(uapi::PACIFICA_STAT_SHUTDOWN);
    user_exit(vcpu, st, uapi::PACIFICA_EXIT_SHUTDOWN, uapi::ExitData { pad: [0; 256] });
    Flow::Stop
}

/// Gives the guest back an exception the module intercepted only to keep
/// it from looping inside the CPU (#DB, #AC). A #DB from an instruction
/// breakpoint is a fault: the guest's handler returns to the instruction,
/// so RF goes into the pushed RFLAGS to let it run once, as the CPU's own
/// delivery does (APM Vol. 2, 13.1.5).
fn reflect(vcpu: &Vcpu, st: &mut VcpuState, v: u8, error: u32) -> Flow {
    if v == vector::DB {
        let s = &mut st.vmcb().save;
        // DR6.B0-B3 name the breakpoints that hit; DR7's R/W field 00
        // makes one an instruction breakpoint.
        let code_bp = (0..4).any(|i| s.dr6 & (1 << i) != 0 && (s.dr7 >> (16 + 4 * i)) & 3 == 0);
        if code_bp {
            s.rflags |= 1 << 16;
        }
        return exception(vcpu, st, Exception { vector: v, error_code: None });
    }
    exception(vcpu, st, Exception { vector: v, error_code: Some(error) })
}

/// Logs an exit no handler knows, with the VMCB's control fields, as
/// KVM's `dump_vmcb` does, so that a user has something to report: once
/// per vCPU, so that no guest can flood the log with it.
fn log_unhandled(vcpu: &Vcpu, st: &mut VcpuState, code: u64) {
    if core::mem::replace(&mut st.logged_unhandled, true) {
        return;
    }
    let c = st.vmcb().control;
    let rip = st.vmcb().save.rip;
    pr_notice!(
        "vCPU {}: unhandled #VMEXIT {:#x}: info1 {:#x} info2 {:#x} intinfo {:#x} intercepts {:08x?} rip {:#x}\n",
        vcpu.id,
        code,
        c.exit_info_1,
        c.exit_info_2,
        c.exit_int_info,
        c.intercepts,
        rip
    );
}

/// Fills the run page for an exit to userspace.
fn user_exit(vcpu: &Vcpu, st: &mut VcpuState, reason: u32, exit: uapi::ExitData) -> Flow {
    vcpu.write_run(&uapi::Run { exit_reason: reason, immediate_exit: 0, pad: [0; 3], rip: st.exit_rip, exit });
    Flow::User
}

fn internal_data(st: &mut VcpuState, suberror: u32) -> uapi::ExitData {
    let v = st.vmcb();
    uapi::ExitData {
        internal: uapi::InternalExit {
            suberror,
            pad: 0,
            exit_code: v.control.exit_code,
            exit_info_1: v.control.exit_info_1,
            exit_info_2: v.control.exit_info_2,
            exit_int_info: u64::from(v.control.exit_int_info)
                | (u64::from(v.control.exit_int_info_err) << 32),
            rip: v.save.rip,
        },
    }
}

/// Reports an exit the module cannot handle to userspace.
fn internal_error(vcpu: &Vcpu, st: &mut VcpuState, suberror: u32) -> Flow {
    st.count(uapi::PACIFICA_STAT_INTERNAL);
    let data = internal_data(st, suberror);
    user_exit(vcpu, st, uapi::PACIFICA_EXIT_INTERNAL_ERROR, data);
    Flow::Stop
}

/// Translates a guest linear address for `access` through the guest's
/// page tables, setting accessed and dirty bits as the CPU would.
fn walk(vcpu: &Vcpu, st: &mut VcpuState, la: u64, access: Access) -> Result<u64, WalkError> {
    let ps = st.paging_state();
    walk::translate(&*vcpu.vm.mem.lock(), &ps, la, access)
}

/// Gives the guest the fault a failed translation of `la` means.
fn fault(vcpu: &Vcpu, st: &mut VcpuState, la: u64, e: WalkError) -> Flow {
    match e {
        WalkError::PageFault(code) => {
            st.vmcb().save.cr2 = la;
            exception(vcpu, st, Exception::page_fault(code))
        }
        WalkError::TableNotInRam(_) => internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION),
    }
}

/// Calls `each(gpa, range)` for the pieces, one per page, of `len` bytes
/// (at most a page) of guest linear memory at `la`, translated for
/// `access`. Every page is translated before `each` sees any, so a fault
/// on the second leaves the first untouched, as on a CPU. Linear addresses
/// wrap at 4 GiB outside long mode. A failed translation becomes the
/// guest's page fault, memory outside RAM an internal error; either way
/// `Err` holds the flow to return.
fn for_each_linear(
    vcpu: &Vcpu,
    st: &mut VcpuState,
    la: u64,
    len: usize,
    access: Access,
    mut each: impl FnMut(&mut VcpuState, u64, core::ops::Range<usize>) -> bool,
) -> Result<(), Flow> {
    let long = st.guest_efer() & crate::hw::svm::efer::LMA != 0;
    let mut pieces = [(0u64, 0usize, 0usize); 2];
    let mut n = 0;
    let mut done = 0;
    while done < len {
        if n == pieces.len() {
            return Err(internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION));
        }
        let mut at = la.wrapping_add(done as u64);
        if !long {
            at &= 0xffff_ffff;
        }
        let k = (4096 - (at & 4095) as usize).min(len - done);
        let gpa = walk(vcpu, st, at, access).map_err(|e| fault(vcpu, st, at, e))?;
        pieces[n] = (gpa, done, done + k);
        n += 1;
        done += k;
    }
    for &(gpa, from, to) in &pieces[..n] {
        if !each(st, gpa, from..to) {
            return Err(internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION));
        }
    }
    Ok(())
}

/// Reads guest linear memory, as the CPU would for `access`.
fn read_linear(vcpu: &Vcpu, st: &mut VcpuState, la: u64, buf: &mut [u8], access: Access) -> Result<(), Flow> {
    for_each_linear(vcpu, st, la, buf.len(), access, |_, gpa, r| vcpu.vm.mem.lock().read(gpa, &mut buf[r]))
}

/// Writes guest linear memory, as the CPU would for `access`; the shadow
/// MMU learns of writes to the guest's page tables.
fn write_linear(vcpu: &Vcpu, st: &mut VcpuState, la: u64, data: &[u8], access: Access) -> Result<(), Flow> {
    for_each_linear(vcpu, st, la, data.len(), access, |st, gpa, r| {
        if !vcpu.vm.mem.lock().write(gpa, &data[r]) {
            return false;
        }
        if let Some(m) = st.shadow.as_mut() {
            m.module_wrote(gpa >> 12);
        }
        true
    })
}

/// Whether the guest runs at CPL 3.
fn user_mode(st: &mut VcpuState) -> bool {
    st.vmcb().save.cpl == 3
}

/// Fetches the bytes at the guest's RIP: up to [`insn::MAX_INSN_LEN`],
/// fewer if the second page does not translate. Fails with the guest's
/// page fault if the first page does not.
fn fetch_insn_bytes(vcpu: &Vcpu, st: &mut VcpuState) -> Result<([u8; insn::MAX_INSN_LEN], usize), Flow> {
    let (cs_base, rip) = {
        let s = &st.vmcb().save;
        (s.cs.base, s.rip)
    };
    let mode = st.cpu_mode();
    let la = if mode == insn::CpuMode::Bits64 { rip } else { cs_base.wrapping_add(rip) & 0xffff_ffff };
    let access = Access { write: false, user: user_mode(st), fetch: true };
    let mut bytes = [0u8; insn::MAX_INSN_LEN];
    // The instruction may straddle a page boundary: translate each part.
    let first = (4096 - (la & 4095) as usize).min(bytes.len());
    let mut have = 0;
    for (start, len) in [(0, first), (first, bytes.len() - first)] {
        if len == 0 {
            continue;
        }
        let ok = match walk(vcpu, st, la.wrapping_add(start as u64), access) {
            Ok(gpa) => vcpu.vm.mem.lock().read(gpa, &mut bytes[start..start + len]),
            // The first page holds the instruction the CPU just fetched;
            // failing to translate it again means the guest changed its
            // tables meanwhile, and it gets the fault it would now get.
            Err(e) if start == 0 => return Err(fault(vcpu, st, la, e)),
            // The second page matters only if the decoder needs its bytes,
            // which it reports as truncation.
            Err(_) => false,
        };
        if !ok {
            break;
        }
        have = start + len;
    }
    Ok((bytes, have))
}

/// Fetches and decodes the instruction at the guest's RIP; one the decoder
/// does not know is an emulation failure.
fn fetch_insn(vcpu: &Vcpu, st: &mut VcpuState) -> Result<Insn, Flow> {
    let (bytes, have) = fetch_insn_bytes(vcpu, st)?;
    insn::decode(&bytes[..have], st.cpu_mode())
        .map_err(|_| internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION))
}

/// The base of segment `seg`, or of `default` without an override. In
/// 64-bit mode only FS and GS have a base (APM Vol. 2, 4.12.2).
fn segment_base(st: &mut VcpuState, seg: Option<insn::SegOverride>, default: insn::SegOverride) -> u64 {
    use insn::SegOverride as S;
    let long = st.cpu_mode() == insn::CpuMode::Bits64;
    let s = &st.vmcb().save;
    match seg.unwrap_or(default) {
        S::Fs => s.fs.base,
        S::Gs => s.gs.base,
        _ if long => 0,
        S::Es => s.es.base,
        S::Cs => s.cs.base,
        S::Ss => s.ss.base,
        S::Ds => s.ds.base,
    }
}

/// The linear address of a decoded instruction's memory operand: its
/// effective address plus the base of its segment (default DS, or SS for a
/// base of RBP or RSP, unless overridden).
fn operand_linear_address(st: &mut VcpuState, i: &Insn, mem: &insn::MemOperand) -> u64 {
    use insn::SegOverride as S;
    let next_rip = st.vmcb().save.rip.wrapping_add(u64::from(i.len));
    let ea = mem.effective_address(i.addr_size, next_rip, |r| st.gpr(r));
    let default = if mem.stack_segment() { S::Ss } else { S::Ds };
    let la = segment_base(st, i.seg, default).wrapping_add(ea);
    if st.cpu_mode() == insn::CpuMode::Bits64 {
        la
    } else {
        la & 0xffff_ffff
    }
}

/// Advances RIP past the intercepted instruction, which must be `expect`:
/// with NRIPS from the VMCB, otherwise by decoding it.
fn skip(vcpu: &Vcpu, st: &mut VcpuState, expect: Opcode) -> Result<(), Flow> {
    if global::get().cpus.info.has(features::NRIPS) {
        let next = st.vmcb().control.next_rip;
        if next != 0 {
            st.vmcb().save.rip = next;
            return Ok(());
        }
    }
    let i = fetch_insn(vcpu, st)?;
    if i.op != Op::Other(expect) {
        return Err(internal_error(vcpu, st, uapi::PACIFICA_INTERNAL_EMULATION));
    }
    advance(st, i.len);
    Ok(())
}

/// Adds `len` to RIP, wrapping as the code size does.
fn advance(st: &mut VcpuState, len: u8) {
    let mode = st.cpu_mode();
    let s = &mut st.vmcb().save;
    let rip = s.rip.wrapping_add(u64::from(len));
    s.rip = match mode {
        insn::CpuMode::Bits64 => rip,
        insn::CpuMode::Bits32 => rip & 0xffff_ffff,
        insn::CpuMode::Bits16 => rip & 0xffff,
    };
}

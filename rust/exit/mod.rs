// SPDX-License-Identifier: GPL-2.0

//! Exit handling: the #VMEXIT is decoded once into an [`Exit`], dispatched
//! by one `match`, and each family is handled in its own file. Every
//! handler returns a [`Flow`]; nothing here panics on what the guest does:
//! an exit without a handler becomes an internal-error exit to userspace.

mod apic;
mod cr;
#[allow(dead_code, unreachable_pub)]
pub(crate) mod decode;
pub(crate) mod env;
mod io;
mod mmio;
mod seg;
pub(crate) mod state;
mod sysreg;

use crate::emulate::insn::{self, Insn, Op, Opcode};
use crate::emulate::walk::{Access, WalkError};
use crate::hw::cr::rflags;
use crate::hw::gpr::Gpr;
use crate::hw::svm::{vector, Exception};
use crate::testbed;
use crate::uapi;
use decode::Exit;
pub(crate) use env::{Env, ShadowPaging};
pub(crate) use apic::{offer_interrupt, sync_tpr, take_inbox, wakes_from_halt};
pub(crate) use state::{GuestCpu, GuestState};

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
    /// MMIO read: the data finishes the instruction (`mmio.rs`).
    MmioRead(mmio::Read),
    /// VMMCALL: the result goes into RAX.
    Hypercall,
    /// INTA: userspace's PIC gives the vector to deliver.
    Inta,
}

/// Handles the exit that just happened.
pub(crate) fn handle<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    g.cpu.exit_rip = g.vmcb.save.rip;
    apic::after_exit(g);
    // Under shadow paging the hardware CR3 is the shadow MMU's root, always.
    // A CPU that does not honour the TASK_SWITCH intercept (QEMU's TCG,
    // Documentation/security.rst) lets a task switch load the guest's own
    // CR3: the vCPU stops at the first exit after it.
    if let Some(root) = g.shadow.as_ref().map(|m| m.hw_regs()[1]) {
        if g.vmcb.save.cr3 != root && !testbed::is_vmexit_invalid(g.vmcb.control.exit_code) {
            return internal_error(g, uapi::PACIFICA_INTERNAL_UNSUPPORTED);
        }
    }
    let c = g.vmcb.control;
    let exit = if testbed::is_vmexit_invalid(c.exit_code) {
        Exit::Invalid
    } else {
        Exit::decode(c.exit_code, c.exit_info_1, c.exit_info_2, g.gpr(Gpr::Rcx))
    };
    match exit {
        Exit::Intr => {
            // The host took the interrupt when the run loop enabled them.
            g.count(uapi::PACIFICA_STAT_INTR);
            Flow::Continue
        }
        Exit::Nmi => {
            g.count(uapi::PACIFICA_STAT_NMI);
            Flow::Continue
        }
        Exit::HostEvent => {
            g.count(uapi::PACIFICA_STAT_OTHER);
            Flow::Continue
        }
        Exit::Cpuid => sysreg::cpuid(g),
        Exit::Msr { index, write } => sysreg::msr(g, index, write),
        Exit::Hlt => {
            g.count(uapi::PACIFICA_STAT_HLT);
            if let Err(f) = skip(g, Opcode::Hlt) {
                return f;
            }
            if g.cpu.lapic.is_some() {
                // The run loop sleeps until an event wakes the vCPU.
                g.count(uapi::PACIFICA_STAT_HALT);
                g.cpu.halted = true;
                return Flow::Continue;
            }
            user_exit(g, uapi::PACIFICA_EXIT_HLT, uapi::ExitData { pad: [0; 256] })
        }
        Exit::Io(info) => io::handle(g, info),
        Exit::Vmmcall => sysreg::vmmcall(g),
        Exit::Shutdown => {
            g.count(uapi::PACIFICA_STAT_SHUTDOWN);
            user_exit(g, uapi::PACIFICA_EXIT_SHUTDOWN, uapi::ExitData { pad: [0; 256] });
            Flow::Stop
        }
        Exit::Npf { gpa, error } => {
            g.count(uapi::PACIFICA_STAT_NPF);
            mmio::handle(g, gpa, error)
        }
        Exit::Undefined => {
            g.count(uapi::PACIFICA_STAT_UD);
            exception(g, Exception::UD)
        }
        Exit::Invd(opcode) => {
            g.count(uapi::PACIFICA_STAT_OTHER);
            match skip(g, opcode) {
                Ok(()) => Flow::Continue,
                Err(f) => f,
            }
        }
        Exit::Rdpmc => {
            g.count(uapi::PACIFICA_STAT_GP);
            exception(g, Exception::GP0)
        }
        Exit::TaskSwitch => {
            // Not emulated yet: report it rather than let the CPU load a
            // guest-physical CR3 into the hardware (Documentation/security.rst).
            internal_error(g, uapi::PACIFICA_INTERNAL_UNSUPPORTED)
        }
        Exit::Exception { vector: v, .. } if v == vector::DB && apic::nmi_step_done(g) => Flow::Continue,
        Exit::Exception { vector: v, error } => {
            g.count(uapi::PACIFICA_STAT_EXCEPTION);
            reflect(g, v, error)
        }
        Exit::Cr { .. } => cr::access(g),
        Exit::Dr { .. } => cr::debug_register(g),
        Exit::PageFault { error, la } => cr::page_fault(g, error, la),
        Exit::Invlpg => cr::invlpg(g),
        Exit::Ltr => seg::ltr(g),
        Exit::Invalid => {
            g.count(uapi::PACIFICA_STAT_INTERNAL);
            let data = internal_data(g, 0);
            user_exit(g, uapi::PACIFICA_EXIT_FAIL_ENTRY, data);
            Flow::Stop
        }
        // Intercepted only with an in-kernel APIC (`apic::offer_interrupt`).
        Exit::Vintr if g.cpu.lapic.is_some() => apic::window_open(g),
        Exit::Iret if g.cpu.lapic.is_some() => apic::iret(g),
        Exit::Vintr | Exit::Iret | Exit::Unknown(_) => {
            let code = g.vmcb.control.exit_code;
            log_unhandled(g, code);
            internal_error(g, uapi::PACIFICA_INTERNAL_UNHANDLED_EXIT)
        }
    }
}

/// Finishes what the last exit to userspace left open, with the data
/// userspace put in the run page. [`Flow::User`]: the instruction owes
/// userspace another exit (an MMIO write after its read), already in the
/// run page.
pub(crate) fn complete_pending<E: Env>(g: &mut GuestState<'_, E>) -> Flow {
    let pending = core::mem::replace(&mut g.cpu.pending, Pending::None);
    match pending {
        Pending::None => {}
        Pending::In { size } => {
            let mut b = [0u8; 8];
            g.env.io_read(0, &mut b[..usize::from(size)]);
            g.merge_gpr(insn::Reg { gpr: Gpr::Rax, high_byte: false }, u64::from_le_bytes(b), size);
        }
        Pending::StringIn(op) => io::complete_string_in(g, op),
        Pending::MmioRead(read) => return mmio::complete_read(g, read),
        Pending::Hypercall => g.vmcb.save.rax = g.env.run_hypercall_ret(),
        Pending::Inta => {
            let v = g.env.run_inta_vector();
            apic::complete_inta(g, v);
        }
    }
    Flow::Continue
}

/// Gives the guest an exception; a fault while a double fault was being
/// delivered shuts it down instead, as on real hardware.
fn exception<E: Env>(g: &mut GuestState<'_, E>, e: Exception) -> Flow {
    if g.inject(e) {
        return Flow::Continue;
    }
    g.count(uapi::PACIFICA_STAT_SHUTDOWN);
    user_exit(g, uapi::PACIFICA_EXIT_SHUTDOWN, uapi::ExitData { pad: [0; 256] });
    Flow::Stop
}

/// Gives the guest back an exception the module intercepted only to keep
/// it from looping inside the CPU (#DB, #AC). A #DB from an instruction
/// breakpoint is a fault: the guest's handler returns to the instruction,
/// so RF goes into the pushed RFLAGS to let it run once, as the CPU's own
/// delivery does (APM Vol. 2, 13.1.5).
fn reflect<E: Env>(g: &mut GuestState<'_, E>, v: u8, error: u32) -> Flow {
    if v == vector::DB {
        let s = &mut g.vmcb.save;
        // DR6.B0-B3 name the breakpoints that hit; DR7's R/W field 00
        // makes one an instruction breakpoint.
        let code_bp = (0..4).any(|i| s.dr6 & (1 << i) != 0 && (s.dr7 >> (16 + 4 * i)) & 3 == 0);
        if code_bp {
            s.rflags |= rflags::RF;
        }
        return exception(g, Exception { vector: v, error_code: None });
    }
    exception(g, Exception { vector: v, error_code: Some(error) })
}

/// Logs an exit no handler knows, with the VMCB's control fields, as
/// KVM's `dump_vmcb` does, so that a user has something to report: once
/// per vCPU, so that no guest can flood the log with it.
fn log_unhandled<E: Env>(g: &mut GuestState<'_, E>, code: u64) {
    if core::mem::replace(&mut g.cpu.logged_unhandled, true) {
        return;
    }
    let c = &g.vmcb.control;
    let info = [c.exit_info_1, c.exit_info_2, u64::from(c.exit_int_info)];
    g.env.report_unhandled(code, info, &c.intercepts, g.vmcb.save.rip);
}

/// Fills the run page for an exit to userspace.
fn user_exit<E: Env>(g: &mut GuestState<'_, E>, reason: u32, exit: uapi::ExitData) -> Flow {
    g.env.write_run(&uapi::Run { exit_reason: reason, immediate_exit: 0, pad: [0; 3], rip: g.cpu.exit_rip, exit });
    Flow::User
}

fn internal_data<E: Env>(g: &mut GuestState<'_, E>, suberror: u32) -> uapi::ExitData {
    uapi::ExitData { internal: internal_exit(g, suberror) }
}

/// The report of an exit the module cannot handle, from the VMCB.
fn internal_exit<E: Env>(g: &mut GuestState<'_, E>, suberror: u32) -> uapi::InternalExit {
    let v = &g.vmcb;
    uapi::InternalExit {
        suberror,
        pad: 0,
        exit_code: v.control.exit_code,
        exit_info_1: v.control.exit_info_1,
        exit_info_2: v.control.exit_info_2,
        exit_int_info: u64::from(v.control.exit_int_info) | (u64::from(v.control.exit_int_info_err) << 32),
        rip: v.save.rip,
        insn_len: 0,
        insn_bytes: [0; 15],
    }
}

/// Reports an exit the module cannot handle to userspace.
fn internal_error<E: Env>(g: &mut GuestState<'_, E>, suberror: u32) -> Flow {
    g.count(uapi::PACIFICA_STAT_INTERNAL);
    let data = internal_data(g, suberror);
    user_exit(g, uapi::PACIFICA_EXIT_INTERNAL_ERROR, data);
    Flow::Stop
}

/// Translates a guest linear address for `access` through the guest's
/// page tables, setting accessed and dirty bits as the CPU would.
fn walk<E: Env>(g: &mut GuestState<'_, E>, la: u64, access: Access) -> Result<u64, WalkError> {
    let ps = g.paging_state();
    g.env.translate(&ps, la, access)
}

/// Gives the guest the fault a failed translation of `la` means.
fn fault<E: Env>(g: &mut GuestState<'_, E>, la: u64, e: WalkError) -> Flow {
    match e {
        WalkError::PageFault(code) => {
            g.vmcb.save.cr2 = la;
            exception(g, Exception::page_fault(code))
        }
        WalkError::TableNotInRam(_) => internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION),
    }
}

/// Calls `each(gpa, range)` for the pieces, one per page, of `len` bytes
/// (at most a page) of guest linear memory at `la`, translated for
/// `access`. Every page is translated before `each` sees any, so a fault
/// on the second leaves the first untouched, as on a CPU. Linear addresses
/// wrap at 4 GiB outside long mode. A failed translation becomes the
/// guest's page fault, memory outside RAM an internal error; either way
/// `Err` holds the flow to return.
fn for_each_linear<'a, E: Env>(
    g: &mut GuestState<'a, E>,
    la: u64,
    len: usize,
    access: Access,
    mut each: impl FnMut(&mut GuestState<'a, E>, u64, core::ops::Range<usize>) -> bool,
) -> Result<(), Flow> {
    let long = g.guest_efer() & crate::hw::svm::efer::LMA != 0;
    let mut pieces = [(0u64, 0usize, 0usize); 2];
    let mut n = 0;
    let mut done = 0;
    while done < len {
        if n == pieces.len() {
            return Err(internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION));
        }
        let mut at = la.wrapping_add(done as u64);
        if !long {
            at &= 0xffff_ffff;
        }
        let k = (4096 - (at & 4095) as usize).min(len - done);
        let gpa = walk(g, at, access).map_err(|e| fault(g, at, e))?;
        pieces[n] = (gpa, done, done + k);
        n += 1;
        done += k;
    }
    for &(gpa, from, to) in &pieces[..n] {
        if !each(g, gpa, from..to) {
            return Err(internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION));
        }
    }
    Ok(())
}

/// Reads guest linear memory, as the CPU would for `access`.
fn read_linear<E: Env>(g: &mut GuestState<'_, E>, la: u64, buf: &mut [u8], access: Access) -> Result<(), Flow> {
    for_each_linear(g, la, buf.len(), access, |g, gpa, r| g.env.read(gpa, &mut buf[r]))
}

/// Writes guest linear memory, as the CPU would for `access`; the shadow
/// MMU learns of writes to the guest's page tables.
fn write_linear<E: Env>(g: &mut GuestState<'_, E>, la: u64, data: &[u8], access: Access) -> Result<(), Flow> {
    for_each_linear(g, la, data.len(), access, |g, gpa, r| {
        if !g.env.write(gpa, &data[r]) {
            return false;
        }
        g.module_wrote(gpa);
        true
    })
}

/// Fetches the bytes at the guest's RIP: up to [`insn::MAX_INSN_LEN`],
/// fewer if the second page does not translate. Fails with the guest's
/// page fault if the first page does not.
fn fetch_insn_bytes<E: Env>(g: &mut GuestState<'_, E>) -> Result<([u8; insn::MAX_INSN_LEN], usize), Flow> {
    let (cs_base, rip) = {
        let s = &g.vmcb.save;
        (s.cs.base, s.rip)
    };
    let mode = g.cpu_mode();
    let la = if mode == insn::CpuMode::Bits64 { rip } else { cs_base.wrapping_add(rip) & 0xffff_ffff };
    let access = Access { write: false, user: g.user_mode(), fetch: true };
    let mut bytes = [0u8; insn::MAX_INSN_LEN];
    // The instruction may straddle a page boundary: translate each part.
    let first = (4096 - (la & 4095) as usize).min(bytes.len());
    let mut have = 0;
    for (start, len) in [(0, first), (first, bytes.len() - first)] {
        if len == 0 {
            continue;
        }
        let ok = match walk(g, la.wrapping_add(start as u64), access) {
            Ok(gpa) => g.env.read(gpa, &mut bytes[start..start + len]),
            // The first page holds the instruction the CPU just fetched;
            // failing to translate it again means the guest changed its
            // tables meanwhile, and it gets the fault it would now get.
            Err(e) if start == 0 => return Err(fault(g, la, e)),
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
/// does not know is an emulation failure, which tells userspace its bytes.
fn fetch_insn<E: Env>(g: &mut GuestState<'_, E>) -> Result<Insn, Flow> {
    let (bytes, have) = fetch_insn_bytes(g)?;
    insn::decode(&bytes[..have], g.cpu_mode()).map_err(|_| {
        g.count(uapi::PACIFICA_STAT_INTERNAL);
        let internal = uapi::InternalExit {
            insn_len: have as u8,
            insn_bytes: bytes,
            ..internal_exit(g, uapi::PACIFICA_INTERNAL_EMULATION)
        };
        user_exit(g, uapi::PACIFICA_EXIT_INTERNAL_ERROR, uapi::ExitData { internal });
        Flow::Stop
    })
}

/// The base of segment `seg`, or of `default` without an override. In
/// 64-bit mode only FS and GS have a base (APM Vol. 2, 4.12.2).
fn segment_base<E: Env>(g: &mut GuestState<'_, E>, seg: Option<insn::SegOverride>, default: insn::SegOverride) -> u64 {
    use insn::SegOverride as S;
    let long = g.cpu_mode() == insn::CpuMode::Bits64;
    let s = &g.vmcb.save;
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
fn operand_linear_address<E: Env>(g: &mut GuestState<'_, E>, i: &Insn, mem: &insn::MemOperand) -> u64 {
    use insn::SegOverride as S;
    let next_rip = g.vmcb.save.rip.wrapping_add(u64::from(i.len));
    let ea = mem.effective_address(i.addr_size, next_rip, |r| g.gpr(r));
    let default = if mem.stack_segment() { S::Ss } else { S::Ds };
    let la = segment_base(g, i.seg, default).wrapping_add(ea);
    if g.cpu_mode() == insn::CpuMode::Bits64 {
        la
    } else {
        la & 0xffff_ffff
    }
}

/// Advances RIP past the intercepted instruction, which must be `expect`:
/// with NRIPS from the VMCB, otherwise by decoding it.
fn skip<E: Env>(g: &mut GuestState<'_, E>, expect: Opcode) -> Result<(), Flow> {
    if g.env.has_nrips() {
        let next = g.vmcb.control.next_rip;
        if next != 0 {
            g.vmcb.save.rip = next;
            g.vmcb.control.int_state &= !crate::hw::svm::INT_STATE_SHADOW;
            return Ok(());
        }
    }
    let i = fetch_insn(g)?;
    if i.op != Op::Other(expect) {
        return Err(internal_error(g, uapi::PACIFICA_INTERNAL_EMULATION));
    }
    advance(g, i.len);
    Ok(())
}

/// Adds `len` to RIP, wrapping as the code size does. The instruction is
/// done: an interrupt shadow it was in (after STI or MOV SS) ends.
fn advance<E: Env>(g: &mut GuestState<'_, E>, len: u8) {
    g.vmcb.control.int_state &= !crate::hw::svm::INT_STATE_SHADOW;
    let mode = g.cpu_mode();
    let s = &mut g.vmcb.save;
    let rip = s.rip.wrapping_add(u64::from(len));
    s.rip = match mode {
        insn::CpuMode::Bits64 => rip,
        insn::CpuMode::Bits32 => rip & 0xffff_ffff,
        insn::CpuMode::Bits16 => rip & 0xffff,
    };
}

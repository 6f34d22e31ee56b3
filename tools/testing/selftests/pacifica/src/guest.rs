// SPDX-License-Identifier: GPL-2.0

//! A VM ready to run one of the flat guests, and the loop that runs it.
//!
//! [`TestVm::new`] gives a VM with [`RAM_SIZE`] bytes of RAM at
//! guest-physical 0, the guest image at [`CODE_BASE`], a GDT, identity page
//! tables and one vCPU whose registers put it at a label of the image, in
//! 32-bit protected mode or 64-bit long mode. The IDT limit starts at 0: a
//! guest that wants to survive exceptions installs its own (see
//! `guests/exc64.inc`); any other exception shuts the guest down, which
//! the test sees as a clear [`Exit::Shutdown`] rather than anything worse.
//!
//! [`run_vcpu`] runs a vCPU under a [`Watchdog`], serves the exits every
//! guest may cause (the UART, the exception port) and hands every other
//! exit to the test's closure.

use std::time::Duration;

use pacifica::boot::{self, segments::{self, CodeMode}};
use pacifica::sys::{Exit, GuestMemory, System, Vcpu, Vm};
use pacifica::uapi::{self, Regs, Sregs};

use crate::errno;
use crate::layout::*;
use crate::tap::{Context, Failure, TestResult};
use crate::watchdog::Watchdog;

/// How long one run loop may take before the watchdog ends it. TCG makes
/// every exit slow; the slowest guest here needs well under a second.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(20);

/// The CPU mode a vCPU starts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 32-bit protected mode, flat segments, paging off.
    Protected32,
    /// 64-bit long mode with the harness's identity map of the low 4 GiB.
    Long64,
}

impl Mode {
    /// "32-bit" or "64-bit", for messages.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Protected32 => "32-bit",
            Mode::Long64 => "64-bit",
        }
    }
}

/// The boot state is the VMM's own (`pacifica::boot`): its GDT, TSS and
/// identity map, at the addresses `guests/layout.h` gives the guests.
const _: () = {
    assert!(GDT_BASE == boot::layout::GDT_ADDR);
    assert!(TSS_BASE == boot::layout::TSS_ADDR);
    assert!(PML4_BASE == boot::layout::PML4_ADDR);
    assert!(PDPT_BASE == boot::layout::PDPT_ADDR);
    assert!(PD_BASE == boot::layout::PD_ADDR);
    assert!(SEL_CODE32 == segments::CODE32_SELECTOR as u64);
    assert!(SEL_DATA == segments::DATA_SELECTOR as u64);
    assert!(SEL_CODE64 == segments::CODE64_SELECTOR as u64);
};

/// The boot structures the harness writes, as (guest-physical address,
/// bytes): the VMM's GDT and its identity map of the low 4 GiB in 2 MiB
/// pages, so that a 64-bit guest reaches [`MMIO_BASE`] at the same
/// address (32-bit guests ignore the tables).
pub fn boot_structures() -> Vec<(u64, Vec<u8>)> {
    let mut out = vec![(GDT_BASE, segments::gdt().to_vec())];
    out.extend(boot::paging::identity_map(RAM_SIZE).into_iter().map(|t| (t.gpa, t.to_bytes())));
    out
}

/// Writes the boot structures ([`boot_structures`]) and `image` into `mem`.
pub fn prepare_memory(mem: &mut GuestMemory, image: &[u8]) -> TestResult {
    for (gpa, bytes) in boot_structures() {
        mem.write(gpa, &bytes).context("writing the boot structures")?;
    }
    mem.write(CODE_BASE, image)
        .context("loading the guest image")?;
    Ok(())
}

/// The system registers of a vCPU in `mode`: the VMM's flat segments,
/// GDT and TSS, and an IDT of limit 0 (every exception becomes a triple
/// fault until the guest loads its own IDT).
pub fn initial_sregs(mode: Mode) -> Sregs {
    use pacifica::hw::cr::{cr0, cr4};
    use pacifica::hw::svm::efer;
    let (code, cr0, cr4, efer) = match mode {
        Mode::Protected32 => (CodeMode::Protected32, cr0::PE | cr0::ET, 0, 0),
        Mode::Long64 => (CodeMode::Long64, cr0::PG | cr0::ET | cr0::PE, cr4::PAE, efer::LME | efer::LMA),
    };
    Sregs { cr0, cr3: PML4_BASE, cr4, efer, ..segments::flat_sregs(code) }
}

/// General registers that start a guest at `entry` with the stack at
/// `stack_top` and nothing else set (RFLAGS bit 1 is reserved as 1).
pub fn initial_regs(entry: u64, stack_top: u64) -> Regs {
    Regs {
        rip: entry,
        rsp: stack_top,
        rflags: boot::RFLAGS_RESERVED,
        ..Regs::default()
    }
}

/// Puts `vcpu` in `mode` at `entry`, with the stack at `stack_top`.
pub fn setup_vcpu(vcpu: &Vcpu, mode: Mode, entry: u64, stack_top: u64) -> TestResult {
    vcpu.set_sregs(&initial_sregs(mode))
        .context(format!("SET_SREGS ({} mode)", mode.name()))?;
    vcpu.set_regs(&initial_regs(entry, stack_top))
        .context("SET_REGS")?;
    Ok(())
}

/// What the closure given to [`run_vcpu`] wants next.
#[derive(Debug)]
pub enum Flow<T> {
    /// Run the guest again.
    Continue,
    /// Stop and return this value.
    Stop(T),
    /// Stop: the test failed, for this reason.
    Fail(String),
}

/// What a guest said through the exits the harness serves itself.
#[derive(Debug, Default)]
pub struct GuestLog {
    /// The current, unfinished line of UART output.
    line: String,
    /// Vectors the guest's exception handler reported, in order.
    pub exceptions: Vec<u8>,
}

impl GuestLog {
    /// Serves `exit` if it is UART output or input, or an exception report,
    /// and says whether it did.
    ///
    /// The UART is the smallest useful 16550: bytes written to the data
    /// register are printed as `# guest: ` lines, and the line status
    /// register always reads "transmitter empty", so a guest may poll it.
    pub fn serve(&mut self, exit: &mut Exit<'_>) -> bool {
        const UART_END: u64 = PORT_UART + 8;
        match exit {
            Exit::IoOut { port, data, .. } if u64::from(*port) == PORT_UART => {
                for &byte in data.iter() {
                    match byte {
                        b'\n' => crate::diag!("guest: {}", std::mem::take(&mut self.line)),
                        b'\r' => {}
                        _ => self.line.push(byte as char),
                    }
                }
                true
            }
            Exit::IoOut { port, .. } if (PORT_UART..UART_END).contains(&u64::from(*port)) => true,
            Exit::IoIn { port, data, .. } if (PORT_UART..UART_END).contains(&u64::from(*port)) => {
                // LSR (base + 5): THR empty and transmitter empty.
                let value = if u64::from(*port) == PORT_UART + 5 {
                    0x60
                } else {
                    0
                };
                data.fill(value);
                true
            }
            Exit::IoOut { port, data, .. } if u64::from(*port) == PORT_EXC => {
                for &vector in data.iter() {
                    crate::diag!("guest took exception {}", vector_name(vector));
                    self.exceptions.push(vector);
                }
                true
            }
            _ => false,
        }
    }
}

/// The mnemonic of an exception vector, e.g. "#GP (13)".
pub fn vector_name(vector: u8) -> String {
    const NAMES: [&str; 22] = [
        "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
        "#GP", "#PF", "-", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
    ];
    match NAMES.get(usize::from(vector)) {
        Some(name) => format!("{name} ({vector})"),
        None => format!("vector {vector}"),
    }
}

/// An exit, in words and hex, for failure messages.
pub fn describe_exit(exit: &Exit<'_>) -> String {
    match exit {
        Exit::IoOut { port, size, data } => {
            format!("I/O OUT port {port:#x} size {size} data {data:02x?}")
        }
        Exit::IoIn { port, size, data } => {
            format!("I/O IN port {port:#x} size {size} ({} bytes)", data.len())
        }
        Exit::MmioRead { addr, data } => format!("MMIO read {addr:#x} len {}", data.len()),
        Exit::MmioWrite { addr, data } => format!("MMIO write {addr:#x} data {data:02x?}"),
        Exit::Hypercall { nr, args, .. } => format!("hypercall {nr:#x} args {args:#x?}"),
        Exit::Hlt => "HLT".into(),
        Exit::Inta { .. } => "INTA (a userspace PIC's interrupt)".into(),
        Exit::Eoi { vector } => format!("EOI of level-triggered vector {vector:#x}"),
        Exit::Shutdown => "shutdown (triple fault)".into(),
        Exit::FailEntry(i) => format!("failed entry (VMRUN refused the state): {}", internal(i)),
        Exit::InternalError(i) => format!("internal error: {}", internal(i)),
        Exit::Unknown(reason) => format!("unknown exit reason {reason}"),
    }
}

fn internal(i: &uapi::InternalExit) -> String {
    format!(
        "suberror {} exit_code {:#x} info1 {:#x} info2 {:#x} int_info {:#x} rip {:#x}",
        i.suberror, i.exit_code, i.exit_info_1, i.exit_info_2, i.exit_int_info, i.rip
    )
}

/// A handler for [`run_vcpu`] that stops at HLT, or at the guests' STOP
/// (an OUT to PORT_DONE: with an in-kernel APIC, HLT sleeps in the
/// kernel), and fails on any other exit the harness does not serve.
pub fn until_hlt(exit: &mut Exit<'_>) -> Flow<()> {
    match exit {
        Exit::Hlt => Flow::Stop(()),
        Exit::IoOut { port, .. } if u64::from(*port) == PORT_DONE => Flow::Stop(()),
        other => Flow::Fail(format!("expected HLT, got {}", describe_exit(other))),
    }
}

/// Runs `vcpu` until `handle` stops, the guest misbehaves, or `timeout`
/// passes.
///
/// Exits that [`GuestLog::serve`] handles never reach `handle`. `EINTR`
/// from a signal the test did not ask for is retried; once the watchdog
/// fires, the run fails with the guest's RIP in the message.
pub fn run_vcpu<T>(
    vcpu: &mut Vcpu,
    log: &mut GuestLog,
    timeout: Duration,
    mut handle: impl FnMut(&mut Exit<'_>) -> Flow<T>,
) -> Result<T, Failure> {
    let watchdog = Watchdog::arm(timeout);
    let mut exits = 0u64;
    loop {
        let error = match vcpu.run() {
            Ok(mut exit) => {
                exits += 1;
                if log.serve(&mut exit) {
                    continue;
                }
                match handle(&mut exit) {
                    Flow::Continue => continue,
                    Flow::Stop(value) => return Ok(value),
                    Flow::Fail(msg) => return Err(Failure::Fail(msg)),
                }
            }
            Err(e) => e,
        };
        if error.raw_os_error() != Some(libc::EINTR) {
            return Err(Failure::Fail(format!(
                "PACIFICA_RUN failed: {}",
                errno::describe(&error)
            )));
        }
        if watchdog.fired() {
            drop(watchdog);
            let rip = match vcpu.get_regs() {
                Ok(regs) => format!("{:#x}", regs.rip),
                Err(e) => format!("unknown ({})", errno::describe(&e)),
            };
            return Err(Failure::Fail(format!(
                "the guest did not finish within {timeout:?} ({exits} exits seen); \
                 it was at RIP {rip}"
            )));
        }
    }
}

/// A VM with RAM, a guest image and one vCPU, ready to run.
///
/// The fields are public so that a test can reach past the helpers; they
/// are declared so that the vCPU is dropped before the VM, and the RAM
/// after both (the module pins it until the VM is gone).
pub struct TestVm {
    /// vCPU 0.
    pub vcpu: Vcpu,
    /// The VM.
    pub vm: Vm,
    /// Guest RAM, registered in slot 0 at guest-physical 0.
    pub mem: GuestMemory,
    /// The device, kept open for [`System::info`].
    pub sys: System,
    /// UART output and exceptions the guest reported.
    pub log: GuestLog,
    /// The mode the vCPU started in.
    pub mode: Mode,
}

/// The paging mode test VMs use: nested paging, or shadow paging when the
/// environment variable `PACIFICA_SELFTEST_PAGING` is `shadow` (the runner
/// runs every guest-running program in both modes).
pub fn paging_mode() -> (u64, &'static str) {
    match std::env::var("PACIFICA_SELFTEST_PAGING").as_deref() {
        Ok("shadow") => (uapi::PACIFICA_PAGING_SHADOW, "shadow"),
        _ => (uapi::PACIFICA_PAGING_NPT, "NPT"),
    }
}

impl TestVm {
    /// A VM with [`RAM_SIZE`] bytes of RAM running `image` from `entry`.
    pub fn new(mode: Mode, image: &[u8], entry: u64) -> Result<Self, Failure> {
        Self::with_ram(mode, image, entry, RAM_SIZE as usize)
    }

    /// Like [`new`](Self::new) with `ram` bytes of RAM (a multiple of 4 KiB,
    /// at least [`STACK2_TOP`]).
    pub fn with_ram(mode: Mode, image: &[u8], entry: u64, ram: usize) -> Result<Self, Failure> {
        Self::with_paging(mode, image, entry, ram, paging_mode().0)
    }

    /// Like [`with_ram`](Self::with_ram) in paging mode `paging` (a
    /// `PACIFICA_PAGING_*` value) whatever the environment says.
    pub fn with_paging(
        mode: Mode,
        image: &[u8],
        entry: u64,
        ram: usize,
        paging: u64,
    ) -> Result<Self, Failure> {
        Self::build(mode, image, entry, ram, paging, false)
    }

    /// Like [`new`](Self::new), in a VM with an in-kernel local APIC
    /// (`PACIFICA_CREATE_IRQCHIP`).
    pub fn with_lapic(mode: Mode, image: &[u8], entry: u64) -> Result<Self, Failure> {
        Self::build(mode, image, entry, RAM_SIZE as usize, paging_mode().0, true)
    }

    /// Like [`with_paging`](Self::with_paging), with an in-kernel local
    /// APIC (`PACIFICA_CREATE_IRQCHIP`) if `lapic`.
    pub fn build(
        mode: Mode,
        image: &[u8],
        entry: u64,
        ram: usize,
        paging: u64,
        lapic: bool,
    ) -> Result<Self, Failure> {
        let sys = System::open().context("opening /dev/pacifica")?;
        let name = if paging == uapi::PACIFICA_PAGING_SHADOW {
            "shadow"
        } else {
            "NPT"
        };
        let vm = sys
            .create_vm(paging)
            .context(format_args!("PACIFICA_CREATE_VM ({name})"))?;
        let mut mem = GuestMemory::new(ram).context("mapping guest RAM")?;
        prepare_memory(&mut mem, image)?;
        mem.register(&vm, 0, 0)
            .context("PACIFICA_SET_MEMORY_REGION (slot 0 at 0)")?;
        if lapic {
            vm.create_irqchip().context("PACIFICA_CREATE_IRQCHIP")?;
        }
        let vcpu = vm.create_vcpu(0).context("PACIFICA_CREATE_VCPU 0")?;
        setup_vcpu(&vcpu, mode, entry, STACK_TOP)?;
        Ok(Self {
            vcpu,
            vm,
            mem,
            sys,
            log: GuestLog::default(),
            mode,
        })
    }

    /// Runs the guest, giving every exit the harness does not serve to
    /// `handle`; see [`run_vcpu`].
    pub fn run_until<T>(
        &mut self,
        handle: impl FnMut(&mut Exit<'_>) -> Flow<T>,
    ) -> Result<T, Failure> {
        run_vcpu(&mut self.vcpu, &mut self.log, RUN_TIMEOUT, handle)
    }

    /// Runs the guest until it halts; any other exit fails the test.
    pub fn run_to_hlt(&mut self) -> TestResult {
        self.run_until(until_hlt)
    }

    /// Runs the guest and returns a description of the first exit the
    /// harness does not serve; for tests that expect one specific exit.
    pub fn run_once(&mut self) -> Result<String, Failure> {
        self.run_until(|exit| Flow::Stop(describe_exit(exit)))
    }

    /// Fails unless the guest reported no exception.
    pub fn ensure_no_exceptions(&self) -> TestResult {
        if self.log.exceptions.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self
            .log
            .exceptions
            .iter()
            .map(|&v| vector_name(v))
            .collect();
        Err(Failure::Fail(format!(
            "the guest took unexpected exceptions: {}",
            names.join(", ")
        )))
    }

    /// `len` bytes of guest RAM at `gpa`.
    pub fn read_bytes(&self, gpa: u64, len: usize) -> Result<Vec<u8>, Failure> {
        Ok(self.mem.slice(gpa, len)?.to_vec())
    }

    /// Checks that the doublewords from DATA_BASE on are the `expect`ed
    /// values (a vector a TRY recorded, or another result), reporting
    /// every mismatch.
    pub fn expect_results(&self, expect: &[(&str, u32)]) -> TestResult {
        let mut wrong = Vec::new();
        for (i, (what, want)) in expect.iter().enumerate() {
            let got = self.read_u32(DATA_BASE + 4 * i as u64)?;
            if got != *want {
                wrong.push(format!("{what}: {got:#x}, expected {want:#x}"));
            }
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(Failure::Fail(wrong.join("; ")))
        }
    }

    /// The little-endian doubleword at `gpa`.
    pub fn read_u32(&self, gpa: u64) -> Result<u32, Failure> {
        let mut buf = [0; 4];
        self.mem.read(gpa, &mut buf)?;
        Ok(u32::from_le_bytes(buf))
    }

    /// The little-endian quadword at `gpa`.
    pub fn read_u64(&self, gpa: u64) -> Result<u64, Failure> {
        let mut buf = [0; 8];
        self.mem.read(gpa, &mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    /// The vCPU's general registers.
    pub fn regs(&self) -> Result<Regs, Failure> {
        self.vcpu.get_regs().context("PACIFICA_GET_REGS")
    }

    /// Moves the vCPU to `rip`, keeping its other registers.
    pub fn set_rip(&self, rip: u64) -> TestResult {
        let mut regs = self.regs()?;
        regs.rip = rip;
        self.vcpu.set_regs(&regs).context("PACIFICA_SET_REGS")
    }

    /// The vCPU's exit counters.
    pub fn stats(&self) -> Result<uapi::ExitStats, Failure> {
        self.vcpu.stats().context("PACIFICA_GET_STATS")
    }

    /// One exit counter, `uapi::PACIFICA_STAT_*`.
    pub fn stat(&self, index: u32) -> Result<u64, Failure> {
        Ok(self.stats()?.get(index))
    }

    /// The exit counters as a diagnostic line, for tests that check some.
    pub fn print_stats(&self) -> TestResult {
        let stats = self.stats()?;
        let line: Vec<String> = uapi::PACIFICA_STAT_NAMES
            .iter()
            .zip(stats.counts.iter())
            .filter(|(_, &n)| n != 0)
            .map(|(name, n)| format!("{name}={n}"))
            .collect();
        crate::diag!("exit counters: {}", line.join(" "));
        Ok(())
    }
}

/// The module's [`uapi::ModuleInfo`], through a fresh device fd.
pub fn module_info() -> Result<uapi::ModuleInfo, Failure> {
    System::open()
        .context("opening /dev/pacifica")?
        .info()
        .context("PACIFICA_GET_INFO")
}

/// Waits (up to two seconds, in case the module frees in deferred work)
/// until the module's VM count and page counts are back at `baseline`, and
/// fails with the difference if they do not get there.
pub fn ensure_back_to(baseline: &uapi::ModuleInfo, after: &str) -> TestResult {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let now = module_info()?;
        let same = now.nr_vms == baseline.nr_vms
            && now.pages_allocated == baseline.pages_allocated
            && now.pages_pinned == baseline.pages_pinned;
        if same {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Failure::Fail(format!(
                "after {after}: nr_vms {} -> {}, pages_allocated {} -> {}, pages_pinned {} -> {}",
                baseline.nr_vms,
                now.nr_vms,
                baseline.pages_allocated,
                now.pages_allocated,
                baseline.pages_pinned,
                now.pages_pinned
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    //! Host tests of the harness's own logic: no /dev/pacifica needed.

    use super::*;

    #[test]
    fn the_gdt_holds_the_segments_the_sregs_name() {
        let gdt = segments::gdt();
        let entry = |sel: u16| u64::from_le_bytes(gdt[usize::from(sel)..][..8].try_into().unwrap());
        for mode in [Mode::Protected32, Mode::Long64] {
            let s = initial_sregs(mode);
            for seg in [s.cs, s.ds, s.ss, s.tr] {
                assert_eq!(entry(seg.selector), segments::descriptor(&seg), "{} {seg:?}", mode.name());
            }
        }
    }

    #[test]
    fn layout_areas_do_not_overlap() {
        let areas = [
            ("GDT", GDT_BASE, GDT_BASE + segments::GDT_SIZE as u64),
            ("TSS", TSS_BASE, TSS_BASE + u64::from(segments::TSS_LIMIT) + 1),
            ("PML4", PML4_BASE, PML4_BASE + 0x1000),
            ("PDPT", PDPT_BASE, PDPT_BASE + 0x1000),
            ("PDs", PD_BASE, PD_BASE + 0x4000),
            ("IDT", IDT_BASE, IDT_BASE + 0x1000),
            ("EXC", EXC_PAGE, EXC_PAGE + 0x1000),
            ("DATA", DATA_BASE, CODE_BASE),
            ("CODE", CODE_BASE, BUF_BASE),
            ("BUF", BUF_BASE, STACK_TOP - 0x8000),
        ];
        for (i, a) in areas.iter().enumerate() {
            assert!(a.1 < a.2 && a.2 <= RAM_SIZE, "{} out of RAM", a.0);
            for b in &areas[i + 1..] {
                assert!(a.2 <= b.1 || b.2 <= a.1, "{} overlaps {}", a.0, b.0);
            }
        }
        const { assert!(STACK2_TOP <= RAM_SIZE && MMIO_BASE >= RAM_SIZE) };
        for slot in [EXC_RESUME, EXC_VECTOR, EXC_ERROR, EXC_SLOT, EXC_COUNT] {
            assert!((EXC_PAGE..EXC_PAGE + 0x1000).contains(&slot));
        }
    }

    #[test]
    fn every_guest_fits_below_the_buffers() {
        for image in [
            crate::guests::io::IMAGE,
            crate::guests::msr::IMAGE,
            crate::guests::svm_insn::IMAGE,
            crate::guests::mmio::IMAGE,
        ] {
            assert!(CODE_BASE + image.len() as u64 <= BUF_BASE);
        }
    }

    /// Walks the harness's 4-level tables in `mem` like the CPU would.
    fn translate(mem: &GuestMemory, va: u64) -> Option<u64> {
        let read = |gpa: u64| {
            let mut b = [0; 8];
            mem.read(gpa, &mut b).unwrap();
            u64::from_le_bytes(b)
        };
        use pacifica::hw::paging::{PTE_ADDR_MASK, PTE_P, PTE_PS};
        let addr = |e: u64| e & PTE_ADDR_MASK;
        let pml4e = read(PML4_BASE + 8 * ((va >> 39) & 0x1ff));
        let pdpte = read(addr(pml4e) + 8 * ((va >> 30) & 0x1ff));
        let pde = read(addr(pdpte) + 8 * ((va >> 21) & 0x1ff));
        for e in [pml4e, pdpte, pde] {
            if e & PTE_P == 0 {
                return None;
            }
        }
        assert_ne!(pde & PTE_PS, 0, "the harness maps 2 MiB pages");
        let large = boot::paging::LARGE_PAGE - 1;
        Some((addr(pde) & !large) | (va & large))
    }

    #[test]
    fn page_tables_identity_map_the_low_4_gib() {
        let mut mem = GuestMemory::new(RAM_SIZE as usize).unwrap();
        prepare_memory(&mut mem, &[0xf4]).unwrap();
        for va in [0, CODE_BASE, STACK_TOP - 8, MMIO_BASE + 0x90, 0xffff_f000] {
            assert_eq!(translate(&mem, va), Some(va), "{va:#x}");
        }
        assert_eq!(translate(&mem, 1 << 32), None);
        assert_eq!(mem.slice(CODE_BASE, 1).unwrap(), &[0xf4]);
    }

    #[test]
    fn uart_output_is_served_and_lines_are_collected() {
        let mut log = GuestLog::default();
        for &b in b"hi\n" {
            let data = [b];
            let mut exit = Exit::IoOut {
                port: PORT_UART as u16,
                size: 1,
                data: &data,
            };
            assert!(log.serve(&mut exit));
        }
        assert!(log.line.is_empty());
        let mut lsr = [0u8; 1];
        let mut exit = Exit::IoIn {
            port: PORT_UART as u16 + 5,
            size: 1,
            data: &mut lsr,
        };
        assert!(log.serve(&mut exit));
        assert_eq!(lsr, [0x60]);
    }

    #[test]
    fn exception_reports_are_recorded_and_other_exits_passed_on() {
        let mut log = GuestLog::default();
        let vector = [13u8];
        let mut exit = Exit::IoOut {
            port: PORT_EXC as u16,
            size: 1,
            data: &vector,
        };
        assert!(log.serve(&mut exit));
        assert_eq!(log.exceptions, vec![13]);
        let data = [1u8];
        let mut other = Exit::IoOut {
            port: PORT_TEST as u16,
            size: 1,
            data: &data,
        };
        assert!(!log.serve(&mut other));
        assert!(!log.serve(&mut Exit::Hlt));
    }

    #[test]
    fn initial_state_is_the_documented_one() {
        let long = initial_sregs(Mode::Long64);
        assert_eq!((long.cr0, long.cr4, long.efer), (0x8000_0011, 0x20, 0x500));
        assert_eq!(
            (long.tr.attrib, long.tr.limit, long.ldt.attrib),
            (0x8b, 0x67, 0x82)
        );
        assert_eq!(long.idt.limit, 0);
        let prot = initial_sregs(Mode::Protected32);
        assert_eq!((prot.cr0, prot.efer, prot.cs.attrib), (0x11, 0, 0xc9b));
        assert_eq!(initial_regs(CODE_BASE, STACK_TOP).rflags, 2);
    }
}

/// The rate RDTSC runs at here, measured against CLOCK_MONOTONIC over
/// `over`, in kHz (L1's TSC is the guests' but for TSC_OFFSET).
pub fn measured_tsc_khz(over: Duration) -> u64 {
    let rdtsc = || {
        // SAFETY: RDTSC has no preconditions in user mode (CR4.TSD is clear on Linux).
        unsafe { core::arch::x86_64::_rdtsc() }
    };
    let (t0, c0) = (std::time::Instant::now(), rdtsc());
    std::thread::sleep(over);
    let (ns, ticks) = (t0.elapsed().as_nanos() as u64, rdtsc() - c0);
    ticks * 1_000_000 / ns.max(1)
}

// SPDX-License-Identifier: GPL-2.0

//! `pacifica`, the userspace VMM of the Pacifica hypervisor.
//!
//! `pacifica run IMAGE` boots a Multiboot v1 kernel or a static ELF64
//! executable on one vCPU with COM1 on stdout; `pacifica info` shows what
//! the loaded `pacifica.ko` reports. The exit statuses are listed in
//! [`pacifica::vmm`]'s `stop` module and in `pacifica run --help`.

#![forbid(unsafe_code)]

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use pacifica::backend::kvm::KvmPaging;
use pacifica::backend::Backend;
use pacifica::vmm::{self, Config, STATUS_VMM_ERROR};
use pacifica::{bench, loader, size, uapi};

const RUN_AFTER_HELP: &str = "\
IMAGE is a Multiboot v1 kernel (started in 32-bit protected mode) or a static
ELF64 x86-64 executable (started in 64-bit long mode over identity-mapped
page tables). RAM starts at guest-physical address 0. COM1 (ports
0x3f8-0x3ff) writes to stdout; a byte written to port 0xf4 ends the run.
--cmdline gives the image a Multiboot command line; --machine pc runs it
on the PC platform below instead (MP table, APICs, PIC, PIT; HLT waits).

--kernel boots Linux (a bzImage, or a vmlinux with a PVH entry) on the PC
machine: the local APIC in the hypervisor; the I/O APIC, the 8259 pair, the
PIT, CMOS and COM1 on IRQ 4 in the VMM; the terminal's input goes to COM1
(in raw mode; Ctrl-A X quits, Ctrl-A Ctrl-A sends Ctrl-A). HLT waits for
an interrupt; the guest ends the run through port 0xf4, a reset (port 0xcf9,
the 8042's 0xfe, a triple fault) or a panic with panic=-1.
Documentation/linux-guest.rst has the details.

--backend kvm runs the same image, devices and boot state on /dev/kvm.
KVM chooses its paging when kvm_amd is loaded (npt=1 nested, npt=0
shadow); there --paging only checks that the loaded KVM matches and
refuses to run otherwise. Without --paging, KVM runs as loaded.

Exit status:
  0     the guest halted (HLT)
  v     the guest wrote byte v to port 0xf4
  1     the VMM failed (unreadable or unloadable image or initrd, a
        command line too long, too little RAM for the kernel, no
        /dev/pacifica or /dev/kvm, a failed ioctl, an unsupported paging
        mode or platform)
  2     invalid command line
  122   the guest reset the machine (port 0xcf9, the 8042's 0xfe)
  123   VMRUN refused the guest state (failed entry)
  124   the guest shut down (triple fault; Linux's reboot=t)
  125   internal error: an exit the module could not handle, an unknown
        exit reason, or a malformed run page
Statuses 123-125 come with a one-line diagnostic on stderr.";

/// The Pacifica VMM.
#[derive(Parser, Debug)]
#[command(
    name = "pacifica",
    version,
    about = "The userspace VMM of the Pacifica AMD-V hypervisor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a guest image until it stops.
    #[command(after_help = RUN_AFTER_HELP)]
    Run(RunArgs),
    /// Show what pacifica.ko reports: SVM features, ASIDs, page accounting.
    Info,
    /// Run the nanobenchmark guest on one configuration and write JSON.
    #[command(after_help = BENCH_AFTER_HELP)]
    Bench(BenchArgs),
    /// Merge `bench` results into JSON, a Markdown table and a PNG chart.
    BenchReport(BenchReportArgs),
}

const BENCH_AFTER_HELP: &str = "\
pacifica.ko and kvm_amd cannot both use SVM, and kvm_amd chooses its paging
when it is loaded (npt=1 or npt=0), so each invocation runs one
configuration: pacifica-npt and pacifica-shadow need pacifica.ko loaded,
kvm-npt and kvm-shadow kvm_amd with npt=1 and npt=0. tools/qemu/bench-l1
swaps the modules and runs all four. Progress goes to stderr; the results
(every repetition's raw figures and their median and spread) to --out.
Exit status: 0 done, 1 a run failed, 2 invalid command line.";

#[derive(Parser, Debug)]
struct BenchArgs {
    /// The configuration to measure.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(bench::CONFIGS))]
    config: String,
    /// Where to write the JSON results.
    #[arg(long, value_name = "FILE.json")]
    out: PathBuf,
    /// Repetitions, each a fresh VM (median and spread are over these).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=100))]
    reps: u32,
    /// Multiplies every benchmark's operation count (1: the full run).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// Run only these benchmarks (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    only: Option<Vec<String>>,
    /// A benchmark guest image to run instead of the built-in bench64.elf.
    #[arg(long)]
    image: Option<PathBuf>,
}

#[derive(Parser, Debug)]
struct BenchReportArgs {
    /// Results written by `pacifica bench --out` (or a merged results.json).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Write the merged results here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the Markdown table (and the targets) here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Draw the PNG chart here.
    #[arg(long)]
    chart: Option<PathBuf>,
}

#[derive(Parser, Debug)]
struct RunArgs {
    /// Guest RAM size: a number of bytes with an optional K, M, G suffix
    /// (powers of 1024), between 2M and 64G (3G for --kernel), a multiple
    /// of 4K [default: 64M, or 256M with --kernel].
    #[arg(long = "mem", value_name = "SIZE", value_parser = parse_mem)]
    mem: Option<u64>,
    /// How guest-physical memory is virtualised (default for pacifica:
    /// npt; for kvm: whatever kvm_amd was loaded with, checked if given).
    #[arg(long, value_enum)]
    paging: Option<Paging>,
    /// Which hypervisor runs the guest.
    #[arg(long, value_enum, default_value_t = BackendArg::Pacifica)]
    backend: BackendArg,
    /// Print the hypervisor's exit counters, the exits the VMM saw, VMM
    /// counters and the run's duration to stderr at the end, one
    /// `name value` per line.
    #[arg(long)]
    stats: bool,
    /// A Linux kernel to boot on the PC machine: a bzImage (64-bit boot
    /// protocol) or a vmlinux with a PVH entry.
    #[arg(long, value_name = "IMAGE", conflicts_with = "image", required_unless_present = "image")]
    kernel: Option<PathBuf>,
    /// The initial RAM disk for --kernel.
    #[arg(long, value_name = "FILE", requires = "kernel")]
    initrd: Option<PathBuf>,
    /// The kernel command line: for --kernel [default: "console=ttyS0
    /// panic=-1"], with tsc_early_khz= added unless given; for an IMAGE,
    /// the Multiboot command line in its information structure.
    #[arg(long, value_name = "STR")]
    cmdline: Option<String>,
    /// The platform --kernel's Linux is told about: apic (an MP table with
    /// the I/O APIC; timers from the local APIC's TSC deadline and the
    /// known TSC rate) or pic (no MP table: the 8259 pair in virtual-wire
    /// mode and the PIT's tick).
    /// [default: apic]
    #[arg(long, value_enum, requires = "kernel")]
    platform: Option<PlatformArg>,
    /// The machine IMAGE runs on: tiny (no interrupt controller; HLT ends
    /// the run) or pc (the PC platform a Linux guest gets, with the MP
    /// table; HLT waits for an interrupt). --kernel is always pc.
    /// [default: tiny]
    #[arg(long, value_enum, conflicts_with = "kernel")]
    machine: Option<MachineArg>,
    /// The guest image (Multiboot v1 or static ELF64) for the tiny machine.
    image: Option<PathBuf>,
}

/// Guest RAM when `--mem` is not given.
const DEFAULT_MEM: u64 = 64 << 20;
/// Guest RAM for `--kernel` when `--mem` is not given.
const DEFAULT_LINUX_MEM: u64 = 256 << 20;

/// The paging modes of `PACIFICA_CREATE_VM`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Paging {
    /// Hardware nested paging.
    Npt,
    /// Software shadow paging.
    Shadow,
}

impl Paging {
    fn uapi(self) -> u64 {
        match self {
            Paging::Npt => uapi::PACIFICA_PAGING_NPT,
            Paging::Shadow => uapi::PACIFICA_PAGING_SHADOW,
        }
    }

    fn kvm(self) -> KvmPaging {
        match self {
            Paging::Npt => KvmPaging::Nested,
            Paging::Shadow => KvmPaging::Shadow,
        }
    }
}

/// The machines of IMAGE.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum MachineArg {
    /// No interrupt controller; HLT ends the run.
    Tiny,
    /// The PC platform (Documentation/linux-guest.rst).
    Pc,
}

/// The platforms of `--kernel`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum PlatformArg {
    /// The I/O APIC and the local APIC's TSC-deadline timer.
    Apic,
    /// The 8259 pair and the PIT.
    Pic,
}

/// The hypervisors `run` can use.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BackendArg {
    /// /dev/pacifica (pacifica.ko).
    Pacifica,
    /// /dev/kvm, through rust-vmm's kvm-ioctls: the reference.
    Kvm,
}

impl RunArgs {
    /// What clap cannot check: options that go with --kernel only.
    fn check(&self) -> Result<(), Error> {
        if self.kernel.is_none() && (self.platform.is_some() || self.initrd.is_some()) {
            return Err(Error::Usage("--platform and --initrd go with --kernel"));
        }
        Ok(())
    }

    fn backend(&self) -> Backend {
        match self.backend {
            BackendArg::Pacifica => Backend::Pacifica {
                paging: self.paging.unwrap_or(Paging::Npt).uapi(),
            },
            BackendArg::Kvm => Backend::Kvm {
                expect: self.paging.map(Paging::kvm),
            },
        }
    }
}

/// Parses `--mem` and checks it against what the loaders accept.
fn parse_mem(text: &str) -> Result<u64, String> {
    let bytes = size::parse_size(text).map_err(|e| e.to_string())?;
    loader::check_ram_size(bytes).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Why a command failed; `main` prints it and exits with its status.
#[derive(Debug, thiserror::Error)]
enum Error {
    /// The VMM could not run the guest (or reach the hypervisor).
    #[error(transparent)]
    Vmm(#[from] vmm::VmmError),
    /// A benchmark could not run.
    #[error(transparent)]
    Bench(#[from] bench::BenchError),
    /// A file could not be read or written.
    #[error("cannot {what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A file that should hold benchmark results does not.
    #[error("{} is not benchmark results: {source}", path.display())]
    NotResults { path: PathBuf, source: serde_json::Error },
    /// The results could not be encoded.
    #[error("cannot encode the results: {0}")]
    Encode(serde_json::Error),
    /// The chart could not be drawn.
    #[error("{0}")]
    Chart(String),
    /// The arguments make no sense together (clap checks the rest).
    #[error("{0}")]
    Usage(&'static str),
}

impl Error {
    fn status(&self) -> ExitCode {
        ExitCode::from(match self {
            Error::Usage(_) => vmm::STATUS_USAGE,
            _ => STATUS_VMM_ERROR,
        })
    }

    fn file(what: &'static str, path: &std::path::Path) -> impl FnOnce(io::Error) -> Error {
        let path = path.to_path_buf();
        move |source| Error::File { what, path, source }
    }
}

fn main() -> ExitCode {
    try_main().unwrap_or_else(|e| {
        eprintln!("pacifica: {e}");
        e.status()
    })
}

fn try_main() -> Result<ExitCode, Error> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(&args),
        Command::Info => info(),
        Command::Bench(args) => bench_cmd(&args),
        Command::BenchReport(args) => bench_report(&args),
    }
}

fn bench_cmd(args: &BenchArgs) -> Result<ExitCode, Error> {
    let image = match &args.image {
        Some(path) => std::fs::read(path).map_err(Error::file("read", path))?,
        None => pacifica::guests::BENCH64_ELF.to_vec(),
    };
    if !(args.scale > 0.0 && args.scale.is_finite()) {
        return Err(Error::Usage("--scale must be a positive number"));
    }
    let mut log = io::stderr();
    let result = bench::run_config(&image, &args.config, args.scale, args.reps, args.only.as_deref(), &mut log)?;
    for b in &result.benchmarks {
        let cycles = b.cycles_per_op.map_or(0.0, |s| s.median);
        let exits = b.exits_per_op.map_or(0.0, |s| s.median);
        eprintln!(
            "bench: {} {:<11} {:>12.0} cycles/op {:>9.3} exits/op",
            result.config, b.name, cycles, exits
        );
    }
    write_json(&args.out, &result)?;
    Ok(ExitCode::SUCCESS)
}

fn write_json(path: &std::path::Path, value: &impl serde::Serialize) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value).map_err(Error::Encode)?;
    std::fs::write(path, text + "\n").map_err(Error::file("write", path))
}

fn bench_report(args: &BenchReportArgs) -> Result<ExitCode, Error> {
    let mut configs = Vec::new();
    for path in &args.inputs {
        let text = std::fs::read_to_string(path).map_err(Error::file("read", path))?;
        // A file is one configuration, or merged results.
        if let Ok(one) = serde_json::from_str::<bench::ConfigResult>(&text) {
            configs.push(one);
        } else {
            let all = serde_json::from_str::<bench::report::Results>(&text)
                .map_err(|source| Error::NotResults { path: path.clone(), source })?;
            configs.extend(all.configs);
        }
    }
    let results = bench::report::merge(configs);
    let table = bench::report::markdown(&results);
    if let Some(path) = &args.json {
        write_json(path, &results)?;
    }
    match &args.markdown {
        Some(path) => std::fs::write(path, &table).map_err(Error::file("write", path))?,
        None => print!("{table}"),
    }
    if let Some(path) = &args.chart {
        bench::chart::draw(&results, path).map_err(Error::Chart)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn run(args: &RunArgs) -> Result<ExitCode, Error> {
    args.check()?;
    let default_mem = if args.kernel.is_some() { DEFAULT_LINUX_MEM } else { DEFAULT_MEM };
    let config = Config {
        mem_size: args.mem.unwrap_or(default_mem),
        backend: args.backend(),
        stats: args.stats,
    };
    let outcome = match (&args.kernel, &args.image) {
        (Some(kernel), _) => {
            let linux = vmm::linux::LinuxConfig {
                kernel,
                initrd: args.initrd.as_deref(),
                cmdline: args.cmdline.as_deref(),
                platform: match args.platform {
                    None | Some(PlatformArg::Apic) => vmm::linux::Platform::Apic,
                    Some(PlatformArg::Pic) => vmm::linux::Platform::Pic,
                },
            };
            vmm::linux::run_linux(&linux, &config, io::stdout())?
        }
        (None, Some(image)) => {
            let machine = match args.machine {
                None | Some(MachineArg::Tiny) => pacifica::backend::Machine::Tiny,
                Some(MachineArg::Pc) => pacifica::backend::Machine::Pc,
            };
            vmm::run_image(image, args.cmdline.as_deref(), machine, &config, io::stdout())?
        }
        (None, None) => return Err(Error::Usage("give a guest IMAGE or --kernel")),
    };
    // The guest's output comes before anything the VMM says about it.
    let _ = io::stdout().flush();
    if let Some(line) = outcome.stop.diagnostic(outcome.rip) {
        eprintln!("{line}");
    }
    if let Some(backend_stats) = &outcome.backend_stats {
        let backend = backend_stats.as_ref().cloned().unwrap_or_else(|e| {
            eprintln!("pacifica: cannot read the hypervisor's exit counters: {e}");
            Vec::new()
        });
        for line in vmm::stats::report(&backend, &outcome.counters, outcome.wall) {
            eprintln!("{line}");
        }
    }
    Ok(ExitCode::from(outcome.stop.status()))
}

fn info() -> Result<ExitCode, Error> {
    let system = vmm::open_system()?;
    let info = system.info().map_err(vmm::VmmError::sys("PACIFICA_GET_INFO"))?;
    for line in vmm::info::report(&info) {
        println!("{line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn run_defaults_to_64_mib_and_npt() {
        let cli = Cli::try_parse_from(["pacifica", "run", "guest.elf"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.mem, None);
        assert_eq!(args.paging, None);
        assert_eq!(
            args.backend(),
            Backend::Pacifica {
                paging: uapi::PACIFICA_PAGING_NPT
            }
        );
        assert!(!args.stats);
        assert_eq!(args.image, Some(PathBuf::from("guest.elf")));
    }

    #[test]
    fn run_options_are_parsed() {
        let cli = Cli::try_parse_from([
            "pacifica", "run", "--mem", "1G", "--paging", "shadow", "--stats", "g",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.mem, Some(1 << 30));
        assert_eq!(
            args.backend(),
            Backend::Pacifica {
                paging: uapi::PACIFICA_PAGING_SHADOW
            }
        );
        assert!(args.stats);
    }

    #[test]
    fn kvm_backend_takes_paging_as_an_expectation() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["pacifica", "run", "--backend", "kvm"];
            argv.extend_from_slice(extra);
            argv.push("g");
            let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not run")
            };
            args.backend()
        };
        assert_eq!(parse(&[]), Backend::Kvm { expect: None });
        assert_eq!(
            parse(&["--paging", "shadow"]),
            Backend::Kvm {
                expect: Some(KvmPaging::Shadow)
            }
        );
        assert_eq!(
            parse(&["--paging", "npt"]),
            Backend::Kvm {
                expect: Some(KvmPaging::Nested)
            }
        );
        assert!(Cli::try_parse_from(["pacifica", "run", "--backend", "xen", "g"]).is_err());
    }

    #[test]
    fn machines_and_platforms_go_with_their_kind_of_guest() {
        let run = |args: &[&str]| {
            let mut all = vec!["pacifica", "run"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all)
        };
        let checked = |args: &[&str]| match run(args) {
            Ok(Cli { command: Command::Run(r) }) => r.check().map_err(|e| e.to_string()),
            Ok(_) => Err("not run".into()),
            Err(e) => Err(format!("{} {e}", e.exit_code())),
        };
        assert!(checked(&["--machine", "pc", "g"]).is_ok());
        assert!(checked(&["--platform", "pic", "--kernel", "k"]).is_ok());
        // IMAGE's machine with --kernel, --kernel's platform or initrd with
        // IMAGE, and unknown machines are usage errors (status 2).
        for bad in [
            &["--machine", "pc", "--kernel", "k"][..],
            &["--platform", "pic", "g"],
            &["--initrd", "i", "g"],
            &["--machine", "isa", "g"],
        ] {
            assert!(checked(bad).is_err(), "{bad:?}");
        }
        assert_eq!(Error::Usage("x").status(), ExitCode::from(vmm::STATUS_USAGE));
    }

    #[test]
    fn bad_memory_sizes_are_usage_errors() {
        for bad in ["1M", "12X", "100G", "4097"] {
            let err = Cli::try_parse_from(["pacifica", "run", "--mem", bad, "g"]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(Cli::try_parse_from(["pacifica", "run", "--paging", "ept", "g"]).is_err());
        assert!(Cli::try_parse_from(["pacifica", "run"]).is_err());
    }

    #[test]
    fn bench_takes_one_configuration() {
        let cli = Cli::try_parse_from([
            "pacifica",
            "bench",
            "--config",
            "kvm-shadow",
            "--out",
            "r.json",
            "--scale",
            "0.1",
            "--only",
            "in,cpuid",
        ])
        .unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(args.config, "kvm-shadow");
        assert_eq!(args.reps, 5);
        assert_eq!(args.only.unwrap(), ["in", "cpuid"]);
        assert!(
            Cli::try_parse_from(["pacifica", "bench", "--config", "xen", "--out", "r"]).is_err()
        );
        assert!(Cli::try_parse_from(["pacifica", "bench-report"]).is_err());
    }
}

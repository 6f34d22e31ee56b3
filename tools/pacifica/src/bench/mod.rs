// SPDX-License-Identifier: GPL-2.0

//! `pacifica bench`: the nanobenchmarks of `tools/guests/bench64.S` on
//! one configuration, several repetitions, with every raw figure kept.
//!
//! The guest times each benchmark with RDTSC and brackets the timed loop
//! with port writes ([`PORT_START`], [`PORT_STOP`]), after a warm-up
//! pass of [`WARMUP_OPS`] operations that is not recorded; the run loop here
//! answers them by snapshotting the hypervisor's exit counters
//! ([`BackendVcpu::stats`]: `PACIFICA_GET_STATS` for Pacifica,
//! `KVM_GET_STATS_FD` for KVM) and the exits the VMM itself saw, so each
//! benchmark gets the counter deltas of its loop alone. The STOP write is
//! an exit of its own, counted in the second snapshot, and is taken off.
//!
//! [`report`] merges the per-configuration files and writes the Markdown
//! table; [`chart`] draws the PNG.

pub mod chart;
pub mod report;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{self, Backend, BackendVcpu, RunError};
use crate::devices::Devices;
use crate::sys::Exit;
use crate::vmm::{handler, prepare, Counters, Stop, VmmError};

/// OUT: the benchmark the guest runs next; IN: its operation count.
pub const PORT_SELECT: u16 = 0xe0;
/// OUT: the timed loop starts.
pub const PORT_START: u16 = 0xe4;
/// OUT: the loop ended; the low 32 bits of its cycles.
pub const PORT_STOP: u16 = 0xe8;
/// OUT: the high 32 bits of the cycles.
pub const PORT_HIGH: u16 = 0xec;
/// The port the `in` benchmark reads, served here (reads as 0).
pub const PORT_IN: u16 = 0x80;
/// Operations of each benchmark in the guest's warm-up pass (enough for
/// every address space of the context-switch and churn tests).
pub const WARMUP_OPS: u64 = 64;

/// One benchmark of the guest, in the guest's order (its id is the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Benchmark {
    /// The name in the results.
    pub name: &'static str,
    /// Operations in a full run (`--scale 1`).
    pub ops: u64,
    /// The guest clamps the count to this.
    pub max_ops: u64,
    /// Whether NPT should run it with zero exits per operation (the
    /// issue's target; checked by the quick selftest).
    pub npt_zero_exits: bool,
}

const fn b(name: &'static str, ops: u64, max_ops: u64, npt_zero_exits: bool) -> Benchmark {
    Benchmark {
        name,
        ops,
        max_ops,
        npt_zero_exits,
    }
}

/// The guest's benchmarks (see the table at the top of bench64.S).
pub const BENCHMARKS: [Benchmark; 13] = [
    b("syscall", 10000, u32::MAX as u64, true),
    b("in", 2000, u32::MAX as u64, false),
    b("cr8wr", 10000, u32::MAX as u64, false),
    b("callret", 100000, u32::MAX as u64, true),
    b("pgfault", 5000, 16 * 512, true),
    b("divzero", 10000, u32::MAX as u64, true),
    b("ptemod", 3000, u32::MAX as u64, true),
    b("vmmcall", 2000, u32::MAX as u64, false),
    b("cpuid", 2000, u32::MAX as u64, false),
    b("ctxsw_2x1", 3000, u32::MAX as u64, true),
    b("ctxsw_4x8", 1500, u32::MAX as u64, true),
    b("ctxsw_16x8", 600, u32::MAX as u64, true),
    b("churn", 400, u32::MAX as u64, false),
];

/// The four configurations `pacifica bench` knows.
pub const CONFIGS: [&str; 4] = ["pacifica-npt", "pacifica-shadow", "kvm-npt", "kvm-shadow"];

/// What a configuration name means.
pub fn backend_of(config: &str) -> Option<Backend> {
    use crate::backend::kvm::KvmPaging;
    use crate::uapi;
    Some(match config {
        "pacifica-npt" => Backend::Pacifica {
            paging: uapi::PACIFICA_PAGING_NPT,
        },
        "pacifica-shadow" => Backend::Pacifica {
            paging: uapi::PACIFICA_PAGING_SHADOW,
        },
        "kvm-npt" => Backend::Kvm {
            expect: Some(KvmPaging::Nested),
        },
        "kvm-shadow" => Backend::Kvm {
            expect: Some(KvmPaging::Shadow),
        },
        _ => return None,
    })
}

/// The operation counts of a run at `scale` (at least 1 each).
pub fn ops_at(scale: f64) -> Vec<u64> {
    BENCHMARKS
        .iter()
        .map(|b| ((b.ops as f64 * scale).round() as u64).clamp(1, b.max_ops))
        .collect()
}

/// One timed loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// RDTSC cycles of the whole loop, as the guest measured them.
    pub cycles: u64,
    /// The hypervisor's counters over the loop (non-zero deltas), the
    /// STOP exit included.
    pub hv_counters: BTreeMap<String, u64>,
    /// Exits that reached the VMM over the loop, the STOP exit included.
    pub vmm_exits: u64,
    /// Wall-clock microseconds between the START and STOP exits.
    pub wall_us: u64,
}

/// Median, minimum and maximum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`; `None` if there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
        })
    }
}

/// One benchmark on one configuration: every repetition and the summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResult {
    /// The benchmark's name.
    pub name: String,
    /// Operations per repetition.
    pub ops: u64,
    /// Every repetition's raw figures.
    pub runs: Vec<Sample>,
    /// Guest cycles per operation.
    pub cycles_per_op: Option<Spread>,
    /// Exits per operation: the hypervisor's exit counter, less exits for
    /// host interrupts (which depend on the host's timer, not the guest)
    /// and the STOP exit.
    pub exits_per_op: Option<Spread>,
    /// Exits per operation that reached the VMM (userspace), less STOP.
    pub user_exits_per_op: Option<Spread>,
    /// Host-interrupt exits per operation (left out of `exits_per_op`).
    pub host_intr_exits_per_op: Option<Spread>,
}

/// One configuration's results: what `pacifica bench --out` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigResult {
    /// `pacifica-npt`, `pacifica-shadow`, `kvm-npt` or `kvm-shadow`.
    pub config: String,
    /// Where `hv_counters` come from.
    pub counter_source: String,
    /// The `--scale` of the operation counts.
    pub scale: f64,
    /// Repetitions (each a fresh VM).
    pub repetitions: u32,
    /// The benchmarks in the guest's order.
    pub benchmarks: Vec<BenchResult>,
}

/// The hypervisor counters that count every exit, and the host-interrupt
/// exits among them, by backend.
fn exit_counter_names(config: &str) -> (&'static str, &'static [&'static str]) {
    if config.starts_with("kvm") {
        ("exits", &["irq_exits", "nmi_window_exits"])
    } else {
        ("exits", &["intr", "nmi"])
    }
}

/// Computes the summaries of `result` from its runs.
pub fn summarize(config: &str, result: &mut BenchResult) {
    let (exits, intr) = exit_counter_names(config);
    let ops = result.ops.max(1) as f64;
    let get = |s: &Sample, k: &str| s.hv_counters.get(k).copied().unwrap_or(0) as f64;
    let per = |f: &dyn Fn(&Sample) -> f64| -> Option<Spread> {
        Spread::of(&result.runs.iter().map(|s| f(s) / ops).collect::<Vec<_>>())
    };
    let host = |s: &Sample| intr.iter().map(|k| get(s, k)).sum::<f64>();
    result.cycles_per_op = per(&|s| s.cycles as f64);
    result.exits_per_op = per(&|s| (get(s, exits) - host(s) - 1.0).max(0.0));
    result.user_exits_per_op = per(&|s| (s.vmm_exits as f64 - 1.0).max(0.0));
    result.host_intr_exits_per_op = per(&host);
}

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The VMM could not set the guest up or run it.
    #[error(transparent)]
    Vmm(#[from] VmmError),
    /// The guest did not end by writing 0 to the exit port.
    #[error("the benchmark guest stopped badly: {0}")]
    Guest(String),
    /// The guest broke the port protocol.
    #[error("the benchmark guest broke the port protocol: {0}")]
    Protocol(String),
}

/// What one exit means to the benchmark loop.
enum Event {
    Continue,
    Select(u32),
    Start,
    Stop(u32),
    High(u32),
    Stopped(Stop),
}

fn dword(data: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    let n = data.len().min(4);
    b[..n].copy_from_slice(&data[..n]);
    u32::from_le_bytes(b)
}

/// A snapshot of every counter.
struct Snapshot {
    hv: BTreeMap<String, u64>,
    vmm: u64,
    at: Instant,
}

fn snapshot(vcpu: &mut dyn BackendVcpu, counters: &Counters) -> Result<Snapshot, BenchError> {
    let hv = vcpu
        .stats()
        .map_err(VmmError::sys("reading the hypervisor's exit counters"))?;
    Ok(Snapshot {
        hv: hv.into_iter().collect(),
        vmm: counters.exits.named().iter().map(|(_, n)| n).sum(),
        at: Instant::now(),
    })
}

/// Runs the benchmark guest `image` once on `backend` with `ops[i]`
/// operations for benchmark `i` (0: skipped). Returns one sample per
/// benchmark (`None` for the skipped ones).
pub fn run_once(
    image: &[u8],
    backend_kind: Backend,
    ops: &[u64],
    mut progress: impl FnMut(&str),
) -> Result<Vec<Option<Sample>>, BenchError> {
    let (mem, boot) = prepare(image, None, 64 << 20).map_err(|source| VmmError::Load {
        path: "bench64.elf".into(),
        source,
    })?;
    let mut vcpu = backend::start(backend_kind, backend::Machine::Tiny, mem, &boot.state)?;
    let mut devices = Devices::new(io::stderr());
    let mut counters = Counters::default();
    let mut samples: Vec<Option<Sample>> = vec![None; BENCHMARKS.len()];
    let mut selected: Option<(usize, u32)> = None;
    let mut start: Option<Snapshot> = None;
    let mut stopped: Option<(u32, Snapshot)> = None;
    loop {
        let event = match vcpu.run() {
            Ok(exit) => {
                counters.exits.count(&exit);
                match exit {
                    Exit::IoOut {
                        port: PORT_SELECT,
                        data,
                        ..
                    } => Event::Select(dword(data)),
                    Exit::IoIn {
                        port: PORT_SELECT,
                        data,
                        ..
                    } => {
                        let n = selected
                            .and_then(|(i, pass)| Some((*ops.get(i)?, pass)))
                            .map_or(0, |(n, pass)| if pass == 0 { n.min(WARMUP_OPS) } else { n });
                        let n = u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
                        let len = data.len().min(4);
                        data[..len].copy_from_slice(&n[..len]);
                        Event::Continue
                    }
                    Exit::IoOut {
                        port: PORT_START, ..
                    } => Event::Start,
                    Exit::IoOut {
                        port: PORT_STOP,
                        data,
                        ..
                    } => Event::Stop(dword(data)),
                    Exit::IoOut {
                        port: PORT_HIGH,
                        data,
                        ..
                    } => Event::High(dword(data)),
                    Exit::IoIn {
                        port: PORT_IN,
                        data,
                        ..
                    } => {
                        data.fill(0);
                        Event::Continue
                    }
                    other => match handler::handle_exit(other, &mut devices, &mut counters) {
                        ControlFlow::Continue(()) => Event::Continue,
                        ControlFlow::Break(stop) => Event::Stopped(stop),
                    },
                }
            }
            Err(RunError::Interrupted) => continue,
            Err(RunError::BadExit(why)) => {
                return Err(BenchError::Protocol(format!("an exit that cannot be decoded: {why}")))
            }
            Err(RunError::Os(e)) => return Err(VmmError::sys("running the vCPU")(e).into()),
        };
        match event {
            Event::Continue => {}
            Event::Select(value) => {
                let (id, pass) = ((value & 0xff) as usize, value >> 8);
                if id >= BENCHMARKS.len() || pass > 1 {
                    return Err(BenchError::Protocol(format!(
                        "benchmark {id} pass {pass} does not exist"
                    )));
                }
                selected = Some((id, pass));
                if pass == 1 && ops.get(id).copied().unwrap_or(0) != 0 {
                    progress(BENCHMARKS[id].name);
                }
            }
            Event::Start => start = Some(snapshot(vcpu.as_mut(), &counters)?),
            Event::Stop(lo) => stopped = Some((lo, snapshot(vcpu.as_mut(), &counters)?)),
            Event::High(hi) => {
                let (Some((id, pass)), Some(first), Some((lo, last))) =
                    (selected, start.take(), stopped.take())
                else {
                    return Err(BenchError::Protocol(
                        "a result without START and STOP".into(),
                    ));
                };
                if pass == 0 {
                    continue;
                }
                let hv_counters = last
                    .hv
                    .iter()
                    .map(|(k, v)| (k.clone(), v - first.hv.get(k).copied().unwrap_or(0)))
                    .filter(|(_, v)| *v != 0)
                    .collect();
                samples[id] = Some(Sample {
                    cycles: u64::from(hi) << 32 | u64::from(lo),
                    hv_counters,
                    vmm_exits: last.vmm - first.vmm,
                    wall_us: last.at.duration_since(first.at).as_micros() as u64,
                });
            }
            Event::Stopped(Stop::ExitPort(0)) => break,
            Event::Stopped(stop) => {
                let rip = vcpu.rip();
                return Err(BenchError::Guest(stop.diagnostic(rip).unwrap_or_else(
                    || format!("exit status {} at rip {rip:#x}", stop.status()),
                )));
            }
        }
    }
    for (i, s) in samples.iter().enumerate() {
        if s.is_none() && ops.get(i).copied().unwrap_or(0) != 0 {
            return Err(BenchError::Protocol(format!(
                "{} reported no result",
                BENCHMARKS[i].name
            )));
        }
    }
    Ok(samples)
}

/// Runs `repetitions` runs of the guest on `config` and summarizes them,
/// with progress lines on `log`.
pub fn run_config(
    image: &[u8],
    config: &str,
    scale: f64,
    repetitions: u32,
    only: Option<&[String]>,
    log: &mut dyn Write,
) -> Result<ConfigResult, BenchError> {
    let backend_kind = backend_of(config)
        .ok_or_else(|| BenchError::Protocol(format!("unknown configuration {config}")))?;
    let mut ops = ops_at(scale);
    if let Some(only) = only {
        for (i, b) in BENCHMARKS.iter().enumerate() {
            if !only.iter().any(|o| o == b.name) {
                ops[i] = 0;
            }
        }
    }
    let mut benchmarks: Vec<BenchResult> = BENCHMARKS
        .iter()
        .zip(&ops)
        .filter(|(_, n)| **n != 0)
        .map(|(b, n)| BenchResult {
            name: b.name.to_string(),
            ops: *n,
            runs: Vec::new(),
            cycles_per_op: None,
            exits_per_op: None,
            user_exits_per_op: None,
            host_intr_exits_per_op: None,
        })
        .collect();
    for rep in 1..=repetitions {
        let t = Instant::now();
        let _ = write!(log, "bench: {config} run {rep}/{repetitions}:");
        let _ = log.flush();
        let samples = run_once(image, backend_kind, &ops, |name| {
            let _ = write!(log, " {name}");
            let _ = log.flush();
        });
        let _ = writeln!(log, " ({:.1}s)", t.elapsed().as_secs_f64());
        for (sample, r) in samples?.into_iter().flatten().zip(benchmarks.iter_mut()) {
            r.runs.push(sample);
        }
    }
    for r in &mut benchmarks {
        summarize(config, r);
    }
    Ok(ConfigResult {
        config: config.to_string(),
        counter_source: if config.starts_with("kvm") {
            "KVM_GET_STATS_FD (KVM's per-vCPU counters)".into()
        } else {
            "PACIFICA_GET_STATS (pacifica.ko's per-vCPU counters)".into()
        },
        scale,
        repetitions,
        benchmarks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_is_median_min_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 4.0]).unwrap().median, 2.5);
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn exits_leave_out_host_interrupts_and_the_stop_exit() {
        let sample = Sample {
            cycles: 1000,
            hv_counters: [("exits", 13), ("intr", 2), ("io", 11)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            vmm_exits: 11,
            wall_us: 5,
        };
        let mut r = BenchResult {
            name: "in".into(),
            ops: 10,
            runs: vec![sample],
            cycles_per_op: None,
            exits_per_op: None,
            user_exits_per_op: None,
            host_intr_exits_per_op: None,
        };
        summarize("pacifica-npt", &mut r);
        assert_eq!(r.cycles_per_op.unwrap().median, 100.0);
        assert_eq!(r.exits_per_op.unwrap().median, 1.0);
        assert_eq!(r.user_exits_per_op.unwrap().median, 1.0);
        assert_eq!(r.host_intr_exits_per_op.unwrap().median, 0.2);
    }

    #[test]
    fn ops_scale_and_clamp() {
        let quick = ops_at(0.0);
        assert!(quick.iter().all(|n| *n == 1));
        let huge = ops_at(1e6);
        assert_eq!(
            huge[4],
            16 * 512,
            "pgfault is clamped to the guest's window"
        );
    }

    #[test]
    fn configurations_map_to_backends() {
        for c in CONFIGS {
            assert!(backend_of(c).is_some(), "{c}");
        }
        assert!(backend_of("xen").is_none());
    }
}

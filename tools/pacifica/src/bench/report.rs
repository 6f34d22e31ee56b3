// SPDX-License-Identifier: GPL-2.0

//! `pacifica bench-report`: merge per-configuration results, lay them out
//! like Adams & Agesen's tables (rows: benchmarks; columns:
//! configurations, cycles and exits per operation), and check the
//! issue's targets against the numbers.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{ConfigResult, Spread, BENCHMARKS, CONFIGS};

/// Every configuration's results: `bench/results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// What the figures are, for a reader of the JSON alone.
    pub note: String,
    /// One entry per configuration that ran, in [`CONFIGS`] order.
    pub configs: Vec<ConfigResult>,
}

/// Merges configuration results (a later file replaces an earlier one of
/// the same configuration), ordered as [`CONFIGS`].
pub fn merge(inputs: Vec<ConfigResult>) -> Results {
    let mut configs: Vec<ConfigResult> = Vec::new();
    for c in inputs {
        configs.retain(|x| x.config != c.config);
        configs.push(c);
    }
    configs.sort_by_key(|c| {
        CONFIGS
            .iter()
            .position(|n| *n == c.config)
            .unwrap_or(CONFIGS.len())
    });
    Results {
        note: "cycles: RDTSC in the guest, per operation (median, min, max over the \
               repetitions); exits: the hypervisor's own exit counter per operation, \
               less host-interrupt exits and the benchmark's STOP exit; user_exits: \
               exits that reached the VMM. Under TCG, cycles measure the emulator."
            .into(),
        configs,
    }
}

/// The benchmarks present in any configuration, in the guest's order.
pub fn benchmark_names(results: &Results) -> Vec<String> {
    let mut names: Vec<String> = BENCHMARKS
        .iter()
        .map(|b| b.name.to_string())
        .filter(|n| {
            results
                .configs
                .iter()
                .any(|c| c.benchmarks.iter().any(|b| &b.name == n))
        })
        .collect();
    for c in &results.configs {
        for b in &c.benchmarks {
            if !names.contains(&b.name) {
                names.push(b.name.clone());
            }
        }
    }
    names
}

/// A configuration's summary of a benchmark.
pub fn find<'a>(results: &'a Results, config: &str, bench: &str) -> Option<&'a super::BenchResult> {
    results
        .configs
        .iter()
        .find(|c| c.config == config)?
        .benchmarks
        .iter()
        .find(|b| b.name == bench)
}

fn median(s: &Option<Spread>) -> Option<f64> {
    s.map(|s| s.median)
}

fn cycles_cell(s: &Option<Spread>) -> String {
    match s {
        Some(s) => {
            let rel = if s.median > 0.0 {
                (s.max - s.min) / s.median * 50.0
            } else {
                0.0
            };
            format!("{:.0} ±{:.0}%", s.median, rel)
        }
        None => "–".into(),
    }
}

fn exits_cell(v: Option<f64>) -> String {
    let Some(v) = v else { return "–".into() };
    if v == 0.0 {
        "0".into()
    } else if v < 0.01 {
        format!("{v:.4}")
    } else if v < 10.0 {
        // Three decimals, so that 1.003 and 1.000 do not both read 1.00.
        format!("{v:.3}")
    } else {
        format!("{v:.1}")
    }
}

/// The Markdown table, then the targets.
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let configs: Vec<&str> = results.configs.iter().map(|c| c.config.as_str()).collect();
    let _ = writeln!(
        out,
        "Cycles per operation (median over {} repetitions, ± half the min-max range) \
         and exits per operation (median; host-interrupt exits left out).\n",
        results.configs.first().map_or(0, |c| c.repetitions)
    );
    let mut header = String::from("| benchmark |");
    let mut rule = String::from("|---|");
    for c in &configs {
        let _ = write!(header, " {c} cycles | {c} exits |");
        rule.push_str("---:|---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for name in benchmark_names(results) {
        let _ = write!(out, "| {name} |");
        for c in &configs {
            let r = find(results, c, &name);
            let _ = write!(
                out,
                " {} | {} |",
                r.map_or("–".into(), |r| cycles_cell(&r.cycles_per_op)),
                exits_cell(r.and_then(|r| median(&r.exits_per_op)))
            );
        }
        out.push('\n');
    }
    out.push('\n');
    for line in targets(results) {
        let _ = writeln!(out, "- {line}");
    }
    out
}

fn exits(results: &Results, config: &str, bench: &str) -> Option<f64> {
    find(results, config, bench).and_then(|r| median(&r.exits_per_op))
}

fn cycles(results: &Results, config: &str, bench: &str) -> Option<f64> {
    find(results, config, bench).and_then(|r| median(&r.cycles_per_op))
}

/// The three targets, each "MET" or "MISSED" with the numbers,
/// or "not measured" when a configuration did not run.
pub fn targets(results: &Results) -> Vec<String> {
    let mut lines = Vec::new();
    // 1. NPT zero exits.
    let zero: Vec<&str> = BENCHMARKS
        .iter()
        .filter(|b| b.npt_zero_exits)
        .map(|b| b.name)
        .collect();
    for config in ["pacifica-npt", "kvm-npt"] {
        if !results.configs.iter().any(|c| c.config == config) {
            lines.push(format!("NPT zero exits on {config}: not measured"));
            continue;
        }
        let bad: Vec<String> = zero
            .iter()
            .filter_map(|b| {
                exits(results, config, b)
                    .filter(|e| *e != 0.0)
                    .map(|e| format!("{b} {}", exits_cell(Some(e))))
            })
            .collect();
        lines.push(if bad.is_empty() {
            format!("NPT zero exits on {config} ({}): MET", zero.join(", "))
        } else {
            format!("NPT zero exits on {config}: MISSED ({})", bad.join(", "))
        });
    }
    // 2. Pacifica shadow <= KVM shadow everywhere, < on ctxsw and churn.
    let names: Vec<String> = BENCHMARKS.iter().map(|b| b.name.to_string()).collect();
    let both = |b: &str| {
        Some((
            exits(results, "pacifica-shadow", b)?,
            exits(results, "kvm-shadow", b)?,
        ))
    };
    if names.iter().any(|b| both(b).is_some()) {
        let mut worse = Vec::new();
        let mut not_fewer = Vec::new();
        for b in &names {
            let Some((p, k)) = both(b) else { continue };
            if p > k {
                worse.push(format!(
                    "{b} {} > {}",
                    exits_cell(Some(p)),
                    exits_cell(Some(k))
                ));
            }
            if (b.starts_with("ctxsw") || b == "churn") && p >= k {
                not_fewer.push(format!(
                    "{b} {} vs {}",
                    exits_cell(Some(p)),
                    exits_cell(Some(k))
                ));
            }
        }
        lines.push(if worse.is_empty() {
            "shadow exits, pacifica <= kvm on every benchmark: MET".into()
        } else {
            format!(
                "shadow exits, pacifica <= kvm on every benchmark: MISSED ({})",
                worse.join(", ")
            )
        });
        lines.push(if not_fewer.is_empty() {
            "shadow exits, pacifica < kvm on ctxsw and churn: MET".into()
        } else {
            format!(
                "shadow exits, pacifica < kvm on ctxsw and churn: MISSED ({})",
                not_fewer.join(", ")
            )
        });
    } else {
        lines.push("shadow exits, pacifica against kvm: not measured".into());
    }
    // 3. Exit round trips no slower than KVM's (same paging, same run).
    for paging in ["npt", "shadow"] {
        let p = format!("pacifica-{paging}");
        let k = format!("kvm-{paging}");
        for b in ["vmmcall", "in"] {
            match (cycles(results, &p, b), cycles(results, &k, b)) {
                (Some(pc), Some(kc)) => lines.push(format!(
                    "{b} round trip, {p} {pc:.0} vs {k} {kc:.0} cycles (ratio {:.2}): {}",
                    pc / kc,
                    if pc <= kc { "MET" } else { "MISSED" }
                )),
                _ => lines.push(format!("{b} round trip, {p} against {k}: not measured")),
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::super::{BenchResult, ConfigResult};
    use super::*;

    fn result(config: &str, bench: &str, cycles: f64, exits: f64) -> ConfigResult {
        let s = |v| {
            Some(Spread {
                median: v,
                min: v,
                max: v,
            })
        };
        ConfigResult {
            config: config.into(),
            counter_source: String::new(),
            scale: 1.0,
            repetitions: 1,
            benchmarks: vec![BenchResult {
                name: bench.into(),
                ops: 1,
                runs: Vec::new(),
                cycles_per_op: s(cycles),
                exits_per_op: s(exits),
                user_exits_per_op: s(0.0),
                host_intr_exits_per_op: s(0.0),
            }],
        }
    }

    #[test]
    fn merge_orders_configurations_and_keeps_the_last() {
        let r = merge(vec![
            result("kvm-npt", "in", 10.0, 1.0),
            result("pacifica-npt", "in", 5.0, 1.0),
            result("kvm-npt", "in", 20.0, 1.0),
        ]);
        let names: Vec<&str> = r.configs.iter().map(|c| c.config.as_str()).collect();
        assert_eq!(names, ["pacifica-npt", "kvm-npt"]);
        assert_eq!(cycles(&r, "kvm-npt", "in"), Some(20.0));
    }

    #[test]
    fn table_has_a_row_per_benchmark_and_targets() {
        let r = merge(vec![
            result("pacifica-npt", "vmmcall", 100.0, 1.0),
            result("kvm-npt", "vmmcall", 200.0, 1.0),
        ]);
        let md = markdown(&r);
        assert!(md.contains("| benchmark | pacifica-npt cycles | pacifica-npt exits | kvm-npt cycles | kvm-npt exits |"), "{md}");
        assert!(
            md.contains("| vmmcall | 100 ±0% | 1.000 | 200 ±0% | 1.000 |"),
            "{md}"
        );
        assert!(
            md.contains(
                "vmmcall round trip, pacifica-npt 100 vs kvm-npt 200 cycles (ratio 0.50): MET"
            ),
            "{md}"
        );
    }

    #[test]
    fn npt_exits_on_a_zero_benchmark_are_a_miss() {
        let r = merge(vec![result("pacifica-npt", "pgfault", 100.0, 0.5)]);
        let t = targets(&r);
        assert!(t[0].contains("MISSED (pgfault 0.500)"), "{t:?}");
    }
}

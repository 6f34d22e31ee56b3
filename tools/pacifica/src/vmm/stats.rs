// SPDX-License-Identifier: GPL-2.0

//! The `--stats` report: one `name value` line per counter, on stderr.

use std::time::Duration;

use super::Counters;
use crate::uapi;

/// The lines of the report: the module's non-zero exit counters (named by
/// `uapi::PACIFICA_STAT_NAMES`), then the VMM's own counters and the run's
/// wall-clock duration in microseconds.
pub fn report(kernel: &uapi::ExitStats, counters: &Counters, wall: Duration) -> Vec<String> {
    let mut lines: Vec<String> = uapi::PACIFICA_STAT_NAMES
        .iter()
        .zip(kernel.counts)
        .filter(|(_, count)| *count != 0)
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    lines.push(format!("unclaimed_pio {}", counters.unclaimed_pio));
    lines.push(format!("unclaimed_mmio {}", counters.unclaimed_mmio));
    lines.push(format!(
        "unknown_hypercalls {}",
        counters.unknown_hypercalls
    ));
    lines.push(format!("wall_time_us {}", wall.as_micros()));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_non_zero_module_counters_are_listed() {
        let mut kernel = uapi::ExitStats::default();
        kernel.counts[uapi::PACIFICA_STAT_EXITS] = 40;
        kernel.counts[uapi::PACIFICA_STAT_IO] = 31;
        kernel.counts[uapi::PACIFICA_STAT_HLT] = 1;
        // A counter past the named ones (a newer module) is not printed.
        kernel.counts[25] = 9;
        let counters = Counters {
            unclaimed_pio: 2,
            unclaimed_mmio: 0,
            unknown_hypercalls: 1,
        };
        let lines = report(&kernel, &counters, Duration::from_micros(1500));
        assert_eq!(
            lines,
            [
                "exits 40",
                "io 31",
                "hlt 1",
                "unclaimed_pio 2",
                "unclaimed_mmio 0",
                "unknown_hypercalls 1",
                "wall_time_us 1500"
            ]
        );
    }
}

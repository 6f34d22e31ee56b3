// SPDX-License-Identifier: GPL-2.0

//! The `--stats` report: one `name value` line per counter, on stderr.

use std::time::Duration;

use super::Counters;

/// The lines of the report: the hypervisor's own non-zero counters (for
/// Pacifica the module's, named by `uapi::PACIFICA_STAT_NAMES`; for KVM
/// its binary statistics, named by KVM), then the exits the VMM saw by kind (`vmm_exits_<kind>`,
/// non-zero ones, the same for every backend), the VMM's own counters and
/// the run's wall-clock duration in microseconds.
pub fn report(backend: &[(String, u64)], counters: &Counters, wall: Duration) -> Vec<String> {
    let mut lines: Vec<String> = backend
        .iter()
        .map(|(name, count)| format!("{name} {count}"))
        .collect();
    lines.extend(
        counters
            .exits
            .named()
            .iter()
            .filter(|(_, count)| *count != 0)
            .map(|(name, count)| format!("vmm_exits_{name} {count}")),
    );
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
    use crate::vmm::ExitCounts;

    #[test]
    fn backend_counters_then_vmm_counters() {
        let backend = vec![("exits".to_string(), 40), ("io".to_string(), 31)];
        let counters = Counters {
            unclaimed_pio: 2,
            unclaimed_mmio: 0,
            unknown_hypercalls: 1,
            exits: ExitCounts {
                io_out: 30,
                io_in: 1,
                hlt: 1,
                ..Default::default()
            },
        };
        let lines = report(&backend, &counters, Duration::from_micros(1500));
        assert_eq!(
            lines,
            [
                "exits 40",
                "io 31",
                "vmm_exits_io_out 30",
                "vmm_exits_io_in 1",
                "vmm_exits_hlt 1",
                "unclaimed_pio 2",
                "unclaimed_mmio 0",
                "unknown_hypercalls 1",
                "wall_time_us 1500"
            ]
        );
    }
}

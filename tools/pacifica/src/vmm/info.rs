// SPDX-License-Identifier: GPL-2.0

//! The `pacifica info` report: what the module says about itself.

use crate::uapi;

/// The names of the `uapi::PACIFICA_FEATURE_*` bits.
pub const FEATURE_NAMES: [(u64, &str); 6] = [
    (uapi::PACIFICA_FEATURE_NPT, "npt"),
    (uapi::PACIFICA_FEATURE_NRIPS, "nrips"),
    (uapi::PACIFICA_FEATURE_VMCB_CLEAN, "vmcb_clean"),
    (uapi::PACIFICA_FEATURE_FLUSH_BY_ASID, "flush_by_asid"),
    (uapi::PACIFICA_FEATURE_DECODE_ASSISTS, "decode_assists"),
    (uapi::PACIFICA_FEATURE_VGIF, "vgif"),
];

/// The feature bits as names, with unknown bits in hex, or `none`.
pub fn feature_names(features: u64) -> String {
    let mut names: Vec<String> = FEATURE_NAMES
        .iter()
        .filter(|(bit, _)| features & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let known = FEATURE_NAMES.iter().fold(0, |all, (bit, _)| all | bit);
    if features & !known != 0 {
        names.push(format!("{:#x}", features & !known));
    }
    if names.is_empty() {
        names.push("none".to_owned());
    }
    names.join(" ")
}

/// One `name value` line per field of `info`.
pub fn report(info: &uapi::ModuleInfo) -> Vec<String> {
    vec![
        format!("api_version {}", info.api_version),
        format!("svm_revision {}", info.svm_revision),
        format!("nr_asids {}", info.nr_asids),
        format!("nr_cpus {}", info.nr_cpus),
        format!("features {}", feature_names(info.features)),
        format!("cpuid_svm_edx {:#010x}", info.cpuid_svm_edx),
        format!("pages_allocated {}", info.pages_allocated),
        format!("pages_pinned {}", info.pages_pinned),
        format!("nr_vms {}", info.nr_vms),
        format!("guest_tsc_khz {}", info.guest_tsc_khz),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_named() {
        let bits = uapi::PACIFICA_FEATURE_NPT | uapi::PACIFICA_FEATURE_VGIF;
        assert_eq!(feature_names(bits), "npt vgif");
        assert_eq!(feature_names(0), "none");
        assert_eq!(
            feature_names(uapi::PACIFICA_FEATURE_NRIPS | 1 << 40),
            "nrips 0x10000000000"
        );
    }

    #[test]
    fn report_lists_every_field() {
        let info = uapi::ModuleInfo {
            api_version: 1,
            svm_revision: 1,
            nr_asids: 16,
            nr_cpus: 2,
            features: uapi::PACIFICA_FEATURE_NPT,
            cpuid_svm_edx: 0x10001,
            pad: 0,
            pages_allocated: 12,
            pages_pinned: 0,
            nr_vms: 0,
            guest_tsc_khz: 2_500_000,
            reserved: [0; 7],
        };
        let lines = report(&info);
        assert_eq!(lines[4], "features npt");
        assert_eq!(lines[5], "cpuid_svm_edx 0x00010001");
        assert_eq!(lines[6], "pages_allocated 12");
        assert_eq!(lines[9], "guest_tsc_khz 2500000");
        assert_eq!(lines.len(), 10);
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Which paging KVM uses, and whether that is what the user asked for.
//!
//! KVM has no per-VM choice: `kvm_amd` uses nested paging unless loaded
//! with `npt=0` (`kvm_intel`: `ept=0`), and then its shadow MMU. So
//! `pacifica run --backend kvm --paging MODE` does not choose anything; it
//! checks that the loaded module matches MODE and refuses to run otherwise,
//! so that a comparison labelled "KVM shadow" cannot silently be KVM NPT.
//! Without `--paging`, the KVM backend runs with whatever KVM uses.

#![forbid(unsafe_code)]

use std::path::Path;

/// The module parameters that say whether KVM uses hardware-assisted
/// paging, in the order they are looked for.
pub const PARAMETERS: [&str; 2] = [
    "/sys/module/kvm_amd/parameters/npt",
    "/sys/module/kvm_intel/parameters/ept",
];

/// How KVM maps guest-physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvmPaging {
    /// Hardware nested paging (AMD NPT, Intel EPT).
    Nested,
    /// KVM's shadow MMU.
    Shadow,
}

impl KvmPaging {
    /// Words for messages.
    pub fn name(self) -> &'static str {
        match self {
            KvmPaging::Nested => "nested paging (npt=1)",
            KvmPaging::Shadow => "shadow paging (npt=0)",
        }
    }
}

/// Why the KVM backend will not run with the paging asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagingMismatch {
    /// KVM uses the other kind of paging.
    #[error(
        "--paging asks for KVM with {}, but the loaded KVM uses {}: reload kvm_amd with npt={} (kvm_intel: ept={}), or leave out --paging",
        .wanted.name(), .actual.name(), .wanted_flag, .wanted_flag
    )]
    Other {
        /// What the user asked for.
        wanted: KvmPaging,
        /// What KVM uses.
        actual: KvmPaging,
        /// The module parameter that gives `wanted`.
        wanted_flag: u8,
    },
    /// No parameter says what KVM uses.
    #[error(
        "--paging asks for KVM with {}, but neither {} nor {} is readable (is kvm_amd or kvm_intel loaded?)",
        .wanted.name(), PARAMETERS[0], PARAMETERS[1]
    )]
    Unknown {
        /// What the user asked for.
        wanted: KvmPaging,
    },
}

/// Parses a boolean module parameter as sysfs shows it (`Y`/`N`, or `1`/`0`
/// for an integer parameter such as `kvm_amd`'s `npt` on some kernels).
pub fn parse_parameter(text: &str) -> Option<KvmPaging> {
    match text.trim() {
        "Y" | "y" | "1" => Some(KvmPaging::Nested),
        "N" | "n" | "0" => Some(KvmPaging::Shadow),
        _ => None,
    }
}

/// What the first readable parameter of [`PARAMETERS`] under `root` says
/// (`root` is `/` except in tests).
pub fn current(root: &Path) -> Option<KvmPaging> {
    PARAMETERS.iter().find_map(|p| {
        let path = root.join(p.trim_start_matches('/'));
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| parse_parameter(&t))
    })
}

/// Checks `wanted` (if any) against what KVM uses (`actual`, if known).
pub fn check(wanted: Option<KvmPaging>, actual: Option<KvmPaging>) -> Result<(), PagingMismatch> {
    let Some(wanted) = wanted else {
        return Ok(());
    };
    match actual {
        Some(actual) if actual == wanted => Ok(()),
        Some(actual) => Err(PagingMismatch::Other {
            wanted,
            actual,
            wanted_flag: u8::from(wanted == KvmPaging::Nested),
        }),
        None => Err(PagingMismatch::Unknown { wanted }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_parse_as_sysfs_prints_them() {
        assert_eq!(parse_parameter("Y\n"), Some(KvmPaging::Nested));
        assert_eq!(parse_parameter("N\n"), Some(KvmPaging::Shadow));
        assert_eq!(parse_parameter("1"), Some(KvmPaging::Nested));
        assert_eq!(parse_parameter("0\n"), Some(KvmPaging::Shadow));
        assert_eq!(parse_parameter("maybe"), None);
    }

    #[test]
    fn no_request_always_passes() {
        assert_eq!(check(None, None), Ok(()));
        assert_eq!(check(None, Some(KvmPaging::Shadow)), Ok(()));
    }

    #[test]
    fn a_request_must_match_the_module() {
        assert_eq!(
            check(Some(KvmPaging::Shadow), Some(KvmPaging::Shadow)),
            Ok(())
        );
        let err = check(Some(KvmPaging::Shadow), Some(KvmPaging::Nested)).unwrap_err();
        assert!(err.to_string().contains("npt=0"), "{err}");
        assert!(err.to_string().contains("uses nested paging"), "{err}");
        let err = check(Some(KvmPaging::Nested), None).unwrap_err();
        assert!(err.to_string().contains("is kvm_amd"), "{err}");
    }

    #[test]
    fn the_first_readable_parameter_counts() {
        let root = std::env::temp_dir().join(format!("pacifica-kvm-paging-{}", std::process::id()));
        let amd = root.join("sys/module/kvm_amd/parameters");
        std::fs::create_dir_all(&amd).unwrap();
        assert_eq!(current(&root), None);
        std::fs::write(amd.join("npt"), "N\n").unwrap();
        assert_eq!(current(&root), Some(KvmPaging::Shadow));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

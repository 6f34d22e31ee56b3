// SPDX-License-Identifier: GPL-2.0

//! Writes `hw.h`: the module's hardware constants (`rust/hw/`) as C
//! `#define`s, for the guests' assembly. The Rust files stay the one
//! definition of every CR0, CR4, RFLAGS, EFER, page-table and MSR bit;
//! the build scripts of the VMM and of the selftests call [`write`] and
//! give the guests `-I OUT_DIR`.
//!
//! Only plain numeric constants are taken (`pub const NAME: T = 1 << 3;`),
//! named after their module: `cr0::PG` is `CR0_PG`, `msr::EFER` is
//! `MSR_EFER`, `paging::PTE_P` stays `PTE_P`.

use std::fmt::Write as _;
use std::path::Path;

/// A file of `rust/hw/`: the prefix of its top-level constants (none:
/// not taken), and the modules taken with their prefixes.
struct Source {
    file: &'static str,
    top: Option<&'static str>,
    modules: &'static [(&'static str, &'static str)],
}

const SOURCES: &[Source] = &[
    Source { file: "cr.rs", top: None, modules: &[("cr0", "CR0_"), ("cr4", "CR4_"), ("rflags", "RFLAGS_")] },
    Source { file: "paging.rs", top: Some(""), modules: &[("pf", "PF_")] },
    Source { file: "msr.rs", top: Some("MSR_"), modules: &[] },
    Source { file: "svm.rs", top: None, modules: &[("efer", "EFER_")] },
];

/// The `(name, value)` of a line `pub const NAME: TYPE = VALUE;` whose
/// value is a number or a shift of numbers, C's syntax as well as Rust's.
fn constant(line: &str) -> Option<(&str, String)> {
    let rest = line.trim().strip_prefix("pub const ")?;
    let (name, rest) = rest.split_once(':')?;
    let (_, value) = rest.split_once('=')?;
    let value = value.trim().strip_suffix(';')?.replace('_', "");
    let numeric = value.chars().all(|c| c.is_ascii_hexdigit() || " x<>|()".contains(c));
    (numeric && !name.contains(' ')).then_some((name.trim(), value))
}

/// Writes `out/hw.h` from the files in `hw` (the repository's `rust/hw/`).
pub fn write(hw: &Path, out: &Path) {
    let mut h = String::from(
        "/* Generated from rust/hw/ by tools/build-support/hw_header.rs: do not edit. */\n\
         #ifndef PACIFICA_HW_H\n#define PACIFICA_HW_H\n",
    );
    for source in SOURCES {
        let path = hw.join(source.file);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let mut prefix = source.top;
        for line in text.lines() {
            if let Some(module) = line.strip_prefix("pub mod ").and_then(|m| m.strip_suffix(" {")) {
                prefix = source.modules.iter().find(|(name, _)| *name == module).map(|(_, p)| *p);
                continue;
            }
            if line == "}" {
                prefix = source.top;
                continue;
            }
            if let (Some(prefix), Some((name, value))) = (prefix, constant(line)) {
                writeln!(h, "#define {prefix}{name} ({value})").unwrap();
            }
        }
    }
    h.push_str("#endif\n");
    let path = out.join("hw.h");
    std::fs::write(&path, h).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

// SPDX-License-Identifier: GPL-2.0

//! Generates the ABI's Rust definitions from the C header, with the same
//! script and options the module's Kbuild uses, and checks that the header
//! is C a C compiler accepts on its own (strict C99, every warning an
//! error), as a C VMM would include it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned bindgen-cli that `make deps` installs (tools/qemu/env.sh),
/// unless `BINDGEN` names another.
fn bindgen(root: &Path) -> String {
    if let Ok(b) = std::env::var("BINDGEN") {
        return b;
    }
    let env = root.join("tools/qemu/env.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". '{}' && echo \"$BINDGEN\"", env.display()))
        .output()
        .expect("running bash to read tools/qemu/env.sh");
    String::from_utf8(out.stdout).expect("env.sh prints a path").trim().to_string()
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..").canonicalize().unwrap();
    let header = root.join("include/uapi/linux/pacifica.h");
    let script = root.join("scripts/uapi-bindgen");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("uapi_bindings.rs");
    for f in [&header, &script, &root.join("tools/qemu/env.sh")] {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-env-changed=BINDGEN");

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only", "-x", "c"])
        .arg(&header)
        .status()
        .unwrap_or_else(|e| panic!("running {cc}: {e}"));
    assert!(status.success(), "{} does not compile as C", header.display());

    let bindgen = bindgen(&root);
    let status = Command::new("bash")
        .arg(&script)
        .arg(&bindgen)
        .arg(&out)
        .arg("core::ffi")
        .status()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(status.success(), "scripts/uapi-bindgen failed (bindgen: {bindgen}; `make deps` installs it)");
}

// SPDX-License-Identifier: GPL-2.0

//! Builds the guest images in `tools/guests/` with the C compiler `cc`
//! finds: each `.S` is assembled by `cc::Build`, then linked by the same
//! compiler driver with the guest's linker script.
//!
//! The images land in `OUT_DIR` (the crate's tests load them) and in
//! `<target dir>/guests/` (the Makefile installs them from there into the
//! test machine's `/usr/share/pacifica/guests/`).
//!
//! Only GCC (or clang) and binutils are needed: `-m32` on an assembly file
//! and a `-nostdlib` link need none of gcc-multilib's 32-bit libraries.

#[path = "../build-support/hw_header.rs"]
mod hw_header;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One guest image.
struct Guest {
    /// Output file name.
    name: &'static str,
    /// Assembly source in `tools/guests/`.
    source: &'static str,
    /// Linker script in `tools/guests/`.
    script: &'static str,
    /// `-m32` or `-m64`.
    mode: &'static str,
}

const GUESTS: [Guest; 7] = [
    Guest {
        name: "hello.elf",
        source: "hello.S",
        script: "multiboot.ld",
        mode: "-m32",
    },
    Guest {
        name: "hello64.elf",
        source: "hello64.S",
        script: "elf64.ld",
        mode: "-m64",
    },
    // The paging differential guests (Documentation/kvm-backend.rst).
    Guest {
        name: "modes.elf",
        source: "modes.S",
        script: "multiboot.ld",
        mode: "-m32",
    },
    Guest {
        name: "paging32.elf",
        source: "paging32.S",
        script: "multiboot.ld",
        mode: "-m32",
    },
    Guest {
        name: "paging64.elf",
        source: "paging64.S",
        script: "elf64.ld",
        mode: "-m64",
    },
    // The PC platform without Linux (`--machine pc`, the pc_platform selftest).
    Guest {
        name: "platform64.elf",
        source: "platform64.S",
        script: "elf64.ld",
        mode: "-m64",
    },
    // The nanobenchmark guest of `pacifica bench` (Documentation/benchmarks.rst).
    Guest {
        name: "bench64.elf",
        source: "bench64.S",
        script: "elf64.ld",
        mode: "-m64",
    },
];

/// Files the guests include.
const INCLUDES: [&str; 2] = ["lib32.inc", "lib64.inc"];

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let guests = manifest.join("../guests");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let installed = target_dir(&out).join("guests");
    std::fs::create_dir_all(&installed)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", installed.display()));

    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_DIR");
    hw_header::write(&manifest.join("../../rust/hw"), &out);
    for include in INCLUDES {
        println!("cargo:rerun-if-changed={}", guests.join(include).display());
    }
    for guest in &GUESTS {
        println!(
            "cargo:rerun-if-changed={}",
            guests.join(guest.source).display()
        );
        println!(
            "cargo:rerun-if-changed={}",
            guests.join(guest.script).display()
        );
        let image = build(guest, &guests, &out);
        let copy = installed.join(guest.name);
        std::fs::copy(&image, &copy).unwrap_or_else(|e| {
            panic!("cannot copy {} to {}: {e}", image.display(), copy.display())
        });
    }
}

/// Assembles and links one guest; returns the image's path.
fn build(guest: &Guest, dir: &Path, out: &Path) -> PathBuf {
    let objects = cc::Build::new()
        .file(dir.join(guest.source))
        .include(out)
        .flag(guest.mode)
        .cargo_metadata(false)
        .compile_intermediates();
    let image = out.join(guest.name);
    let compiler = cc::Build::new().cargo_metadata(false).get_compiler();
    let status = Command::new(compiler.path())
        .arg(guest.mode)
        .args(["-nostdlib", "-static", "-no-pie"])
        .arg(format!("-Wl,-T,{}", dir.join(guest.script).display()))
        // No build-id note before the code, 4 KiB alignment so the
        // Multiboot header stays in the first 8 KiB, and no warning about
        // the single RWX segment a tiny guest is made of.
        .args([
            "-Wl,--build-id=none",
            "-Wl,-z,max-page-size=0x1000",
            "-Wl,--no-warn-rwx-segments",
        ])
        .args(&objects)
        .arg("-o")
        .arg(&image)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", compiler.path().display()));
    assert!(
        status.success(),
        "linking {} failed with {status}",
        guest.name
    );
    image
}

/// The cargo target directory: `CARGO_TARGET_DIR` if set, otherwise the
/// directory above `<profile>/build/<crate>-<hash>/out` (and above the
/// target triple for `--target` builds).
fn target_dir(out: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let profile = out
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is <target>/<profile>/build/<crate>/out");
    let parent = profile
        .parent()
        .expect("the profile directory has a parent");
    let target = env::var("TARGET").unwrap_or_default();
    if parent
        .file_name()
        .is_some_and(|name| name == target.as_str())
    {
        parent
            .parent()
            .expect("the triple directory has a parent")
            .to_owned()
    } else {
        parent.to_owned()
    }
}

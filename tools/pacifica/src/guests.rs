// SPDX-License-Identifier: GPL-2.0

//! The guest images from `tools/guests/`, built by `build.rs`.
//!
//! The same files are copied to `<target dir>/guests/`, from where the
//! Makefile installs them as `/usr/share/pacifica/guests/hello.elf`,
//! `hello64.elf` and the paging differential guests `modes.elf`,
//! `paging32.elf` and `paging64.elf` (see `Documentation/kvm-backend.rst`)
//! and the benchmark guest `bench64.elf` (`Documentation/benchmarks.rst`).

/// `hello.S`: a Multiboot v1 kernel that prints "Hello from a Pacifica
/// guest" and `mem_upper: N` on COM1, then writes 0 to port 0xf4.
pub const HELLO_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello.elf"));

/// `hello64.S`: the same program as an ELF64 image for the long-mode
/// protocol.
pub const HELLO64_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hello64.elf"));

/// `modes.S`: a Multiboot v1 kernel that walks through real mode,
/// protected mode, two-level, PAE and long-mode paging and back, printing
/// what each mode's translations give (a differential guest).
pub const MODES_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/modes.elf"));

/// `paging32.S`: two-level paging behaviour (a Multiboot v1 kernel).
pub const PAGING32_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/paging32.elf"));

/// `paging64.S`: 4-level paging behaviour (an ELF64 image).
pub const PAGING64_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/paging64.elf"));

/// `bench64.S`: the nanobenchmark guest of `pacifica bench` (an ELF64
/// image driven through ports 0xe0-0xef; see [`crate::bench`]).
pub const BENCH64_ELF: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/bench64.elf"));

/// The first line both hello guests print.
pub const HELLO_GREETING: &str = "Hello from a Pacifica guest\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::{self, Protocol};
    use crate::sys::GuestMemory;

    const MIB: u64 = 1 << 20;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn hello_is_a_multiboot_kernel_at_1_mib() {
        let header = loader::find_header(HELLO_ELF)
            .expect("has a Multiboot header")
            .unwrap();
        assert!(header.offset < 8192);
        assert_eq!(
            header.addresses, None,
            "loaded as ELF, not by the a.out kludge"
        );
        let mut mem = GuestMemory::new(64 << 20).unwrap();
        let boot = loader::load(HELLO_ELF, &mut mem).unwrap();
        assert_eq!(boot.protocol, Protocol::Multiboot);
        assert!(
            boot.entry >= MIB && boot.entry < boot.image_end,
            "entry {:#x}",
            boot.entry
        );
        assert_eq!(boot.state.regs.rip, boot.entry);
        let image = mem.slice(MIB, (boot.image_end - MIB) as usize).unwrap();
        assert!(contains(image, HELLO_GREETING.as_bytes()));
    }

    #[test]
    fn differential_guests_load_with_their_protocols() {
        for (image, protocol) in [
            (MODES_ELF, Protocol::Multiboot),
            (PAGING32_ELF, Protocol::Multiboot),
            (PAGING64_ELF, Protocol::Elf64),
            (BENCH64_ELF, Protocol::Elf64),
        ] {
            let mut mem = GuestMemory::new(64 << 20).unwrap();
            let boot = loader::load(image, &mut mem).unwrap();
            assert_eq!(boot.protocol, protocol);
            // Their tables, frames and markers stay below 4 MiB, where
            // the guests write markers of their own.
            assert!(boot.image_end <= 4 * MIB, "{:#x}", boot.image_end);
        }
    }

    #[test]
    fn hello64_is_a_long_mode_image_at_1_mib() {
        assert!(loader::find_header(HELLO64_ELF).is_none());
        let mut mem = GuestMemory::new(64 << 20).unwrap();
        let boot = loader::load(HELLO64_ELF, &mut mem).unwrap();
        assert_eq!(boot.protocol, Protocol::Elf64);
        assert_eq!(boot.entry, MIB);
        assert_eq!(boot.state.sregs.cs.attrib, 0xa9b);
        let image = mem.slice(MIB, (boot.image_end - MIB) as usize).unwrap();
        assert!(contains(image, HELLO_GREETING.as_bytes()));
    }
}

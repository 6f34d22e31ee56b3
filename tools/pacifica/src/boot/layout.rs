// SPDX-License-Identifier: GPL-2.0

//! Where the VMM puts its boot data in guest-physical memory.
//!
//! Everything the VMM writes lies in the boot area, the first 512 KiB of
//! RAM, which the image must not overlap (the loaders check). The area sits
//! below the 640 KiB of conventional memory the Multiboot information
//! reports, so a kernel that honours the memory map may reuse it once it
//! no longer needs the boot data.
//!
//! | address             | what                                              |
//! |---------------------|---------------------------------------------------|
//! | `0x0500..0x0530`    | GDT: null, code32 `0x08`, data `0x10`, code64 `0x18`, TSS `0x20` |
//! | `0x0580..0x05e8`    | TSS (zeroed; TR needs a valid one for VMRUN)      |
//! | `0x05f0..0x05f3`    | halt stub `hlt; jmp .-1` (ELF64 return address)   |
//! | `0x1000..0x2000`    | Multiboot information, memory map, loader name    |
//! | `0x2000..0x3000`    | PML4 (ELF64 only)                                 |
//! | `0x3000..0x4000`    | PDPT (ELF64 only)                                 |
//! | `0x4000..`          | page directories, one per GiB mapped (ELF64 only) |
//! | `0x70000..0x80000`  | stack; the initial stack pointer is `0x80000`     |

/// Guest-physical address of the GDT.
pub const GDT_ADDR: u64 = 0x500;
/// Guest-physical address of the TSS that TR describes.
pub const TSS_ADDR: u64 = 0x580;
/// Guest-physical address of `hlt; jmp .-1`, the return address an ELF64
/// entry point finds on its stack: an entry that returns halts the vCPU.
pub const HALT_STUB_ADDR: u64 = 0x5f0;
/// Guest-physical address of the Multiboot information structure.
pub const BOOT_INFO_ADDR: u64 = 0x1000;
/// Bytes reserved for the Multiboot information and what it points to.
pub const BOOT_INFO_SIZE: u64 = 0x1000;
/// Guest-physical address of the PML4 (ELF64 only).
pub const PML4_ADDR: u64 = 0x2000;
/// Guest-physical address of the PDPT (ELF64 only).
pub const PDPT_ADDR: u64 = 0x3000;
/// Guest-physical address of the first page directory (ELF64 only).
pub const PD_ADDR: u64 = 0x4000;
/// Lowest address of the stack.
pub const STACK_BOTTOM: u64 = 0x70000;
/// The initial stack pointer (the stack grows down from here).
pub const STACK_TOP: u64 = 0x80000;
/// End of the boot area: images must load at or above this address.
pub const BOOT_AREA_END: u64 = STACK_TOP;

/// The most page directories that fit between [`PD_ADDR`] and the stack,
/// each mapping 1 GiB.
pub const MAX_PAGE_DIRECTORIES: u64 = (STACK_BOTTOM - PD_ADDR) / 0x1000;

/// The smallest RAM the VMM accepts: the boot area, the legacy hole and
/// 1 MiB for the image.
pub const MIN_RAM: u64 = 2 << 20;
/// The largest RAM the VMM accepts. It keeps the identity map's page
/// directories well inside the boot area.
pub const MAX_RAM: u64 = 64 << 30;

const _: () = assert!(MAX_RAM >> 30 <= MAX_PAGE_DIRECTORIES);
const _: () = assert!(BOOT_INFO_ADDR + BOOT_INFO_SIZE <= PML4_ADDR);

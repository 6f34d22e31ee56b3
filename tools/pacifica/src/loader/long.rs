// SPDX-License-Identifier: GPL-2.0

//! Static ELF64 executables, started in 64-bit long mode.

use super::info::boot_info;
use super::{elf, Boot, LoadError, Protocol};
use crate::boot::layout::{BOOT_INFO_ADDR, GDT_ADDR, HALT_STUB_ADDR};
use crate::boot::long::{initial_stack, long_mode_state, HALT_STUB, INITIAL_RSP};
use crate::boot::paging::identity_map;
use crate::boot::segments::gdt;
use crate::sys::GuestMemory;

/// Loads an x86-64 `ET_EXEC` image and writes the GDT, the identity page
/// tables, the Multiboot information, the halt stub and the initial stack.
pub(super) fn load(image: &[u8], mem: &mut GuestMemory) -> Result<Boot, LoadError> {
    let loaded = elf::load(image, mem, &[elf::EM_X86_64], "62 (x86-64)")?;
    let ram_size = mem.size() as u64;
    mem.write(GDT_ADDR, &gdt())?;
    mem.write(HALT_STUB_ADDR, &HALT_STUB)?;
    for table in identity_map(ram_size) {
        mem.write(table.gpa, &table.to_bytes())?;
    }
    mem.write(BOOT_INFO_ADDR, &boot_info(ram_size, BOOT_INFO_ADDR as u32))?;
    mem.write(INITIAL_RSP, &initial_stack())?;
    let state = long_mode_state(loaded.entry, BOOT_INFO_ADDR);
    Ok(Boot {
        protocol: Protocol::Elf64,
        entry: loaded.entry,
        image_end: loaded.end,
        state,
    })
}

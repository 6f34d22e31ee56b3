// SPDX-License-Identifier: GPL-2.0

//! Linux kernels, loaded by rust-vmm's `linux-loader`:
//!
//! - a bzImage (the setup header's "HdrS" at 0x202) through the 64-bit
//!   boot protocol (Documentation/arch/x86/boot.rst): the protected-mode
//!   kernel at its `code32_start` (1 MiB), the zero page at
//!   [`ZERO_PAGE_ADDR`], entered at the load address + 0x200 in long mode
//!   over the identity map with RSI pointing to the zero page;
//! - an uncompressed vmlinux with a PVH entry (the ELF note
//!   XEN_ELFNOTE_PHYS32_ENTRY) through the PVH boot ABI: its segments at
//!   their physical addresses, the `hvm_start_info` at [`ZERO_PAGE_ADDR`],
//!   entered in 32-bit protected mode with paging off and EBX pointing to
//!   it.
//!
//! Both get the command line at [`CMDLINE_ADDR`], the initrd (if any) at
//! the top of RAM below what the kernel can address, and the PC's memory
//! map ([`linux_memory_map`]): RAM below the MP table, the MP table and
//! the BIOS area reserved, RAM from 1 MiB.

use std::io::Cursor;

use linux_loader::cmdline::Cmdline;
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::{load_cmdline, BzImage, KernelLoader, KernelLoaderResult};
use vm_memory::{Bytes, GuestAddress};

use super::{Boot, LoadError, Protocol};
use crate::boot::layout::{BOOT_AREA_END, GDT_ADDR};
use crate::boot::long::long_mode_state;
use crate::boot::paging::identity_map;
use crate::boot::protected::multiboot_state;
use crate::boot::segments::gdt;
use crate::pc::mptable::MPTABLE_ADDR;
use crate::sys::GuestMemory;

/// The zero page (bzImage) or `hvm_start_info` (PVH).
pub const ZERO_PAGE_ADDR: u64 = 0x5_0000;
/// The PVH memory map, after the start info.
const PVH_MEMMAP_ADDR: u64 = ZERO_PAGE_ADDR + 0x100;
/// The PVH module list (the initrd), after the memory map.
const PVH_MODLIST_ADDR: u64 = ZERO_PAGE_ADDR + 0x800;
/// The command line, NUL-terminated.
pub const CMDLINE_ADDR: u64 = 0x5_1000;
/// The most bytes of command line (without its NUL) the layout has room
/// for; a kernel may accept fewer (its header's `cmdline_size`).
pub const CMDLINE_MAX: usize = (0x6_0000 - CMDLINE_ADDR) as usize - 1;
/// Where the kernel is loaded: 1 MiB.
const HIGH_MEMORY: u64 = 0x10_0000;
/// The largest RAM a Linux guest gets: below it, RAM; from 3 GiB up, the
/// I/O APIC, the local APIC and the rest of the PC's device window.
pub const LINUX_MAX_RAM: u64 = 3 << 30;
/// The BIOS area a PC reserves below 1 MiB.
const BIOS_START: u64 = 0xf_0000;

/// "HdrS", the setup header's magic.
const HDRS_MAGIC: u32 = 0x5372_6448;
/// The boot sector signature, in the header's `boot_flag`.
const BOOT_FLAG: u16 = 0xaa55;
/// `type_of_loader`: a loader without an assigned ID.
const LOADER_UNDEFINED: u8 = 0xff;
/// `xloadflags`: the kernel has the 64-bit entry at load address + 0x200.
const XLF_KERNEL_64: u16 = 1 << 0;
/// Offset of the 64-bit entry from the load address.
const ENTRY_64_OFFSET: u64 = 0x200;
/// The `hvm_start_info` magic.
const PVH_MAGIC: u32 = 0x336e_c578;
/// e820 types.
pub const E820_RAM: u32 = 1;
/// e820: reserved.
pub const E820_RESERVED: u32 = 2;

/// What to boot, besides the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxArgs<'a> {
    /// The initial RAM disk.
    pub initrd: Option<&'a [u8]>,
    /// The kernel command line.
    pub cmdline: &'a str,
}

/// Whether `image` is a bzImage (it has a setup header).
pub fn is_bzimage(image: &[u8]) -> bool {
    image.get(0x202..0x206) == Some(&HDRS_MAGIC.to_le_bytes()[..])
}

/// The PC memory map for `ram` bytes of RAM: `(base, length, type)`.
pub fn linux_memory_map(ram: u64) -> Vec<(u64, u64, u32)> {
    vec![
        (0, MPTABLE_ADDR, E820_RAM),
        (MPTABLE_ADDR, 0xa_0000 - MPTABLE_ADDR, E820_RESERVED),
        (BIOS_START, HIGH_MEMORY - BIOS_START, E820_RESERVED),
        (HIGH_MEMORY, ram - HIGH_MEMORY, E820_RAM),
    ]
}

fn loader_error(e: linux_loader::loader::Error) -> LoadError {
    LoadError::Linux(e.to_string())
}

/// The command line as the kernel will see it, checked against `max`.
fn cmdline(text: &str, max: usize) -> Result<Cmdline, LoadError> {
    let max = max.min(CMDLINE_MAX);
    if text.len() > max {
        return Err(LoadError::CmdlineTooLong { len: text.len(), max });
    }
    // Capacity counts the terminating NUL.
    let mut c = Cmdline::new(max + 1).map_err(|e| LoadError::Linux(e.to_string()))?;
    if !text.is_empty() {
        c.insert_str(text).map_err(|e| LoadError::BadCmdline(e.to_string()))?;
    }
    Ok(c)
}

/// Where the initrd goes: the highest page-aligned place below `limit`
/// (RAM's end, or the highest address the kernel can read it from) and
/// above `floor` (the kernel's end).
fn place_initrd(len: u64, floor: u64, limit: u64) -> Result<u64, LoadError> {
    let start = limit.checked_sub(len).map(|s| s & !0xfff);
    match start {
        Some(start) if start >= floor => Ok(start),
        _ => Err(LoadError::InitrdTooLarge { size: len, room: limit.saturating_sub(floor) }),
    }
}

/// Loads a Linux kernel (bzImage or PVH vmlinux) into `mem` with `args`.
pub fn load(image: &[u8], args: LinuxArgs<'_>, mem: &mut GuestMemory) -> Result<Boot, LoadError> {
    let ram = mem.size() as u64;
    if ram > LINUX_MAX_RAM {
        return Err(LoadError::LinuxRam { size: ram, max: LINUX_MAX_RAM });
    }
    mem.write(GDT_ADDR, &gdt())?;
    if is_bzimage(image) {
        load_bzimage(image, args, mem)
    } else if super::elf::is_elf64(image) {
        load_pvh(image, args, mem)
    } else {
        Err(LoadError::NotLinux)
    }
}

fn load_bzimage(image: &[u8], args: LinuxArgs<'_>, mem: &mut GuestMemory) -> Result<Boot, LoadError> {
    let ram = mem.size() as u64;
    let loaded = BzImage::load(
        mem.vm_memory(),
        None,
        &mut Cursor::new(image),
        Some(GuestAddress(HIGH_MEMORY)),
    )
    .map_err(loader_error)?;
    let mut hdr = loaded.setup_header.ok_or(LoadError::NotLinux)?;
    if hdr.xloadflags & XLF_KERNEL_64 == 0 {
        return Err(LoadError::No64BitEntry);
    }
    let load = loaded.kernel_load.0;
    // The kernel decompresses and runs within init_size of its load
    // address: RAM must hold that much, and the initrd must stay clear.
    let kernel_end = load + u64::from(hdr.init_size).max(loaded.kernel_end - load);
    if kernel_end > ram {
        return Err(LoadError::KernelTooLarge { needs: kernel_end, ram });
    }
    let cmd = cmdline(args.cmdline, hdr.cmdline_size as usize)?;
    load_cmdline(mem.vm_memory(), GuestAddress(CMDLINE_ADDR), &cmd).map_err(loader_error)?;

    hdr.type_of_loader = LOADER_UNDEFINED;
    hdr.boot_flag = BOOT_FLAG;
    hdr.header = HDRS_MAGIC;
    hdr.cmd_line_ptr = CMDLINE_ADDR as u32;
    if let Some(initrd) = args.initrd {
        let limit = ram.min(u64::from(hdr.initrd_addr_max) + 1);
        let at = place_initrd(initrd.len() as u64, kernel_end, limit)?;
        mem.write(at, initrd)?;
        hdr.ramdisk_image = at as u32;
        hdr.ramdisk_size = initrd.len() as u32;
    }
    let mut params = boot_params { hdr, ..Default::default() };
    let map = linux_memory_map(ram);
    for (slot, &(addr, size, type_)) in params.e820_table.iter_mut().zip(&map) {
        *slot = boot_e820_entry { addr, size, r#type: type_ };
    }
    params.e820_entries = map.len() as u8;
    mem.vm_memory()
        .write_obj(params, GuestAddress(ZERO_PAGE_ADDR))
        .map_err(|e| LoadError::Linux(e.to_string()))?;

    for table in identity_map(ram) {
        mem.write(table.gpa, &table.to_bytes())?;
    }
    let entry = load + ENTRY_64_OFFSET;
    let mut state = long_mode_state(entry, 0);
    state.regs.rax = 0;
    state.regs.rbx = 0;
    state.regs.rdi = 0;
    state.regs.rsi = ZERO_PAGE_ADDR;
    Ok(Boot {
        protocol: Protocol::LinuxBzImage,
        entry,
        image_end: kernel_end,
        state,
    })
}

fn load_pvh(image: &[u8], args: LinuxArgs<'_>, mem: &mut GuestMemory) -> Result<Boot, LoadError> {
    let ram = mem.size() as u64;
    let loaded: KernelLoaderResult = Elf::load(
        mem.vm_memory(),
        None,
        &mut Cursor::new(image),
        Some(GuestAddress(HIGH_MEMORY)),
    )
    .map_err(loader_error)?;
    let PvhBootCapability::PvhEntryPresent(entry) = loaded.pvh_boot_cap else {
        return Err(LoadError::NoPvhEntry);
    };
    let kernel_end = loaded.kernel_end;
    if kernel_end < BOOT_AREA_END {
        return Err(LoadError::NotLinux);
    }
    let cmd = cmdline(args.cmdline, CMDLINE_MAX)?;
    load_cmdline(mem.vm_memory(), GuestAddress(CMDLINE_ADDR), &cmd).map_err(loader_error)?;

    let map: Vec<hvm_memmap_table_entry> = linux_memory_map(ram)
        .into_iter()
        .map(|(addr, size, type_)| hvm_memmap_table_entry { addr, size, type_, reserved: 0 })
        .collect();
    let mut info = hvm_start_info {
        magic: PVH_MAGIC,
        version: 1,
        cmdline_paddr: CMDLINE_ADDR,
        memmap_paddr: PVH_MEMMAP_ADDR,
        memmap_entries: map.len() as u32,
        ..Default::default()
    };
    let mut modules = Vec::new();
    if let Some(initrd) = args.initrd {
        // PVH kernels are 64-bit: the initrd may go anywhere in RAM.
        let at = place_initrd(initrd.len() as u64, kernel_end, ram)?;
        mem.write(at, initrd)?;
        modules.push(hvm_modlist_entry { paddr: at, size: initrd.len() as u64, ..Default::default() });
        info.nr_modules = 1;
        info.modlist_paddr = PVH_MODLIST_ADDR;
    }
    let mut params = BootParams::new(&info, GuestAddress(ZERO_PAGE_ADDR));
    params.set_sections(&map, GuestAddress(PVH_MEMMAP_ADDR));
    if !modules.is_empty() {
        params.set_modules(&modules, GuestAddress(PVH_MODLIST_ADDR));
    }
    PvhBootConfigurator::write_bootparams(&params, mem.vm_memory())
        .map_err(|e| LoadError::Linux(e.to_string()))?;

    let entry = entry.0;
    let entry32 = u32::try_from(entry).map_err(|_| LoadError::Above4G(entry))?;
    let mut state = multiboot_state(entry32, ZERO_PAGE_ADDR as u32);
    state.regs.rax = 0;
    Ok(Boot {
        protocol: Protocol::LinuxPvh,
        entry,
        image_end: kernel_end,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_map_reserves_the_mp_table_and_the_bios() {
        let map = linux_memory_map(128 << 20);
        assert_eq!(map[0], (0, 0x9fc00, E820_RAM));
        assert_eq!(map[1], (0x9fc00, 0x400, E820_RESERVED));
        assert_eq!(map[2], (0xf0000, 0x10000, E820_RESERVED));
        assert_eq!(map[3], (0x100000, (128 << 20) - 0x100000, E820_RAM));
    }

    #[test]
    fn initrd_goes_to_the_top_page_aligned() {
        assert_eq!(place_initrd(0x1800, 0x20_0000, 0x100_0000).unwrap(), 0xff_e000);
        assert!(matches!(
            place_initrd(0x100_0000, 0x20_0000, 0x100_0000),
            Err(LoadError::InitrdTooLarge { .. })
        ));
    }

    #[test]
    fn command_lines_are_bounded() {
        assert!(cmdline("console=ttyS0", 2047).is_ok());
        assert!(matches!(cmdline(&"x".repeat(2048), 2047), Err(LoadError::CmdlineTooLong { len: 2048, max: 2047 })));
        assert!(matches!(cmdline("a\nb", 2047), Err(LoadError::BadCmdline(_))));
    }

    #[test]
    fn bzimages_are_recognised_by_their_header() {
        let mut image = vec![0u8; 0x400];
        assert!(!is_bzimage(&image));
        image[0x202..0x206].copy_from_slice(b"HdrS");
        assert!(is_bzimage(&image));
        assert!(!is_bzimage(&image[..0x204]));
    }
}

// SPDX-License-Identifier: GPL-2.0

//! Copies image bytes into guest memory, checking where they go.

use super::LoadError;
use crate::boot::layout::BOOT_AREA_END;
use crate::sys::GuestMemory;

/// Copies `bytes` to guest-physical `start` and zeroes the `zero_len` bytes
/// after them (an ELF segment's `.bss`, or Multiboot's bss range).
///
/// The whole range must lie in RAM and above the boot area. Returns the
/// end of the range.
pub(super) fn place(
    mem: &mut GuestMemory,
    start: u64,
    bytes: &[u8],
    zero_len: u64,
) -> Result<u64, LoadError> {
    let ram = mem.size() as u64;
    let outside = |end| LoadError::OutsideRam { start, end, ram };
    let len = (bytes.len() as u64)
        .checked_add(zero_len)
        .ok_or(outside(u64::MAX))?;
    let end = start.checked_add(len).ok_or(outside(u64::MAX))?;
    if end > ram {
        return Err(outside(end));
    }
    if start < BOOT_AREA_END {
        return Err(LoadError::OverlapsBootArea {
            start,
            end,
            boot_end: BOOT_AREA_END,
        });
    }
    // `len` fits in usize: it is at most the size of RAM.
    let target = mem.slice_mut(start, len as usize)?;
    let (file_part, zero_part) = target.split_at_mut(bytes.len());
    file_part.copy_from_slice(bytes);
    zero_part.fill(0);
    Ok(end)
}

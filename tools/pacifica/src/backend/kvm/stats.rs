// SPDX-License-Identifier: GPL-2.0

//! KVM's own per-vCPU counters, through its binary statistics interface
//! (`KVM_GET_STATS_FD`, Linux 5.14+, Documentation/virt/kvm/api.rst 4.133).
//!
//! `kvm-ioctls` does not wrap that ioctl, so [`open`] issues it itself.
//! The file it returns starts with a `kvm_stats_header`; the descriptors
//! (each `kvm_stats_desc` followed by a `name_size`-byte name) say where
//! each counter's `u64` values lie in the data block, which is read again
//! at every snapshot. Counters KVM keeps in the kernel (`exits`,
//! `irq_exits`, `pf_taken`, `io_exits`, ...) cover the exits userspace
//! never sees, which is what the benchmarks need.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

/// `KVM_GET_STATS_FD`: `_IO(KVMIO, 0xce)`.
const KVM_GET_STATS_FD: libc::c_ulong = 0xae_ce;
/// `sizeof(struct kvm_stats_header)`.
const HEADER_SIZE: usize = 24;
/// `sizeof(struct kvm_stats_desc)` without its name.
const DESC_SIZE: usize = 16;

/// One counter: its name and where its first value lies in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Counter {
    name: String,
    offset: u64,
}

/// An open statistics file and its parsed descriptors.
#[derive(Debug)]
pub struct KvmStats {
    file: File,
    counters: Vec<Counter>,
}

/// Opens the statistics file of the vCPU `fd`.
pub fn open(fd: &impl AsRawFd) -> io::Result<KvmStats> {
    let raw: RawFd = fd.as_raw_fd();
    // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new file
    // descriptor or -1; `raw` is a vCPU fd the caller keeps open.
    let stats_fd = unsafe { libc::ioctl(raw, KVM_GET_STATS_FD as _, 0) };
    if stats_fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the ioctl returned a fresh descriptor that nothing else owns.
    let file = unsafe { File::from_raw_fd(stats_fd) };
    let mut header = [0u8; HEADER_SIZE];
    file.read_exact_at(&mut header, 0)?;
    let u32_at =
        |b: &[u8], off: usize| u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]);
    let name_size = u32_at(&header, 4) as usize;
    let num_desc = u32_at(&header, 8) as usize;
    let desc_offset = u64::from(u32_at(&header, 16));
    let data_offset = u64::from(u32_at(&header, 20));
    let mut descs = vec![0u8; num_desc * (DESC_SIZE + name_size)];
    file.read_exact_at(&mut descs, desc_offset)?;
    let counters = parse_descriptors(&descs, num_desc, name_size, data_offset);
    Ok(KvmStats { file, counters })
}

/// The descriptors' names and data offsets; each descriptor is
/// `flags: u32, exponent: i16, size: u16, offset: u32, bucket_size: u32,
/// name: [u8; name_size]`. Only the first value of each counter is read.
fn parse_descriptors(descs: &[u8], num: usize, name_size: usize, data: u64) -> Vec<Counter> {
    descs
        .chunks_exact(DESC_SIZE + name_size)
        .take(num)
        .map(|d| {
            let offset = u32::from_ne_bytes([d[8], d[9], d[10], d[11]]);
            let name = &d[DESC_SIZE..];
            let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            Counter {
                name: String::from_utf8_lossy(&name[..len]).into_owned(),
                offset: data + u64::from(offset),
            }
        })
        .collect()
}

impl KvmStats {
    /// Every counter's current value, non-zero ones only.
    pub fn read(&self) -> io::Result<Vec<(String, u64)>> {
        let mut out = Vec::new();
        for c in &self.counters {
            let mut value = [0u8; 8];
            self.file.read_exact_at(&mut value, c.offset)?;
            let value = u64::from_ne_bytes(value);
            if value != 0 {
                out.push((c.name.clone(), value));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_give_names_and_offsets() {
        let name_size = 8;
        let mut descs = Vec::new();
        for (name, offset) in [("exits", 0u32), ("irq_exi", 8)] {
            descs.extend_from_slice(&0u32.to_ne_bytes()); // flags
            descs.extend_from_slice(&0i16.to_ne_bytes()); // exponent
            descs.extend_from_slice(&1u16.to_ne_bytes()); // size
            descs.extend_from_slice(&offset.to_ne_bytes());
            descs.extend_from_slice(&0u32.to_ne_bytes()); // bucket_size
            let mut n = name.as_bytes().to_vec();
            n.resize(name_size, 0);
            descs.extend_from_slice(&n);
        }
        let counters = parse_descriptors(&descs, 2, name_size, 1000);
        assert_eq!(
            counters,
            [
                Counter {
                    name: "exits".into(),
                    offset: 1000
                },
                Counter {
                    name: "irq_exi".into(),
                    offset: 1008
                }
            ]
        );
    }
}

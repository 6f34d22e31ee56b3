// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers around the `/dev/pacifica` ioctls.
//!
//! The files mirror the object hierarchy of the interface, as rust-vmm's
//! `kvm-ioctls` does: [`System`] is the device fd, it creates a [`Vm`], which
//! creates a [`Vcpu`]; a [`Vcpu`] runs the guest and returns each exit as an
//! [`Exit`] that borrows the shared run page. [`GuestMemory`] is the anonymous
//! mapping that backs guest RAM.
//!
//! All `unsafe` code of the crate lives in this module: the ioctl calls
//! (`ioctl.rs`), the mappings (`mmap.rs`) and the reads of the run page's
//! union (`run_page.rs`). Each block says why it is sound.
//!
//! A minimal program that runs a guest until it halts:
//!
//! ```no_run
//! use pacifica::sys::{Exit, GuestMemory, System};
//! use pacifica::uapi;
//!
//! fn main() -> std::io::Result<()> {
//!     let sys = System::open()?;
//!     let vm = sys.create_vm(uapi::PACIFICA_PAGING_NPT)?;
//!     let mem = GuestMemory::new(2 << 20)?;
//!     mem.register(&vm, 0, 0)?;
//!     let mut vcpu = vm.create_vcpu(0)?;
//!     // ... load code into `mem`, then set_regs / set_sregs ...
//!     loop {
//!         match vcpu.run()? {
//!             Exit::IoOut { port, data, .. } => println!("out {port:#x} {data:?}"),
//!             Exit::Hlt => return Ok(()),
//!             other => panic!("unexpected exit {other:?}"),
//!         }
//!     }
//! }
//! ```

mod ioctl;
mod memory;
mod mmap;
mod run_page;
mod system;
mod vcpu;
mod vm;

pub use memory::{GuestMemory, MemoryError};
pub(crate) use mmap::Mmap;
pub use run_page::{DecodeError, Exit, RunPage};
pub use system::System;
pub use vcpu::{Vcpu, VcpuEvents};
pub use vm::Vm;

/// The path of the Pacifica device.
pub const DEVICE_PATH: &str = "/dev/pacifica";

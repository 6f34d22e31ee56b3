// SPDX-License-Identifier: GPL-2.0

//! What can go wrong while setting up or running a VM.

use std::io;
use std::path::PathBuf;

use crate::loader::LoadError;

/// A failure of the VMM (as opposed to a guest that stops).
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    /// The image file could not be read.
    #[error("cannot read guest image {path}: {source}")]
    ReadImage {
        /// The image path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The image could not be loaded.
    #[error("cannot load guest image {path}: {source}")]
    Load {
        /// The image path.
        path: PathBuf,
        /// Why.
        source: LoadError,
    },
    /// The device could not be opened.
    #[error("cannot open {path}: {source} (is pacifica.ko loaded?)")]
    Open {
        /// The device path.
        path: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The module implements another version of the interface.
    #[error("pacifica.ko speaks API version {module}, this tool speaks version {tool}")]
    ApiVersion {
        /// The module's version.
        module: u32,
        /// This tool's version.
        tool: u32,
    },
    /// `--paging` with `--backend kvm` does not match how KVM was loaded.
    #[error("{0}")]
    KvmPaging(crate::backend::kvm::paging::PagingMismatch),
    /// The combination asked for is not implemented.
    #[error("not supported: {0}")]
    NotSupported(&'static str),
    /// An ioctl or another system call failed.
    #[error("{what} failed: {source}")]
    Sys {
        /// What was attempted, with its arguments.
        what: String,
        /// The error.
        source: io::Error,
    },
}

impl VmmError {
    /// Wraps a system-call error with what was attempted.
    pub fn sys(what: impl Into<String>) -> impl FnOnce(io::Error) -> VmmError {
        let what = what.into();
        move |source| VmmError::Sys { what, source }
    }
}

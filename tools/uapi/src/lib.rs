// SPDX-License-Identifier: GPL-2.0

//! The ABI of `/dev/pacifica` for Rust userspace: the definitions bindgen
//! generates from `include/uapi/linux/pacifica.h` (see `build.rs`), and the
//! module's own `rust/uapi.rs` on top of them, shared by path, so that the
//! VMM, the selftests and the module see one ABI.

#![no_std]

// The shared file, as the module compiles it.
#[rustfmt::skip]
#[allow(missing_docs, clippy::derivable_impls)]
#[path = "../../../rust/uapi.rs"]
pub mod uapi;

/// The generated definitions; [`uapi`] re-exports them.
#[allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    unsafe_code,
    clippy::all
)]
mod uapi_bindings {
    include!(concat!(env!("OUT_DIR"), "/uapi_bindings.rs"));
}

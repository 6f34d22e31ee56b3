// SPDX-License-Identifier: GPL-2.0

//! The module cannot be unloaded while anything of it is in use.
//!
//! Every fd of the module (the device, a VM, a vCPU) holds a reference on
//! it, so `delete_module("pacifica", O_NONBLOCK)` must fail with EBUSY
//! (EAGAIN/EWOULDBLOCK tolerated) while one is open. A module that let
//! itself be unloaded would leave those fds pointing at freed code, and the
//! next ioctl or close would crash the kernel.
//!
//! The test never unloads the module, not even at the end to check that
//! unloading works once all is closed: it cannot load it again (that needs
//! the .ko file and its path, which belong to the runner), and every test
//! program after this one would then skip. A runner that wants the
//! positive check does `rmmod pacifica` itself after the last selftest.

use std::ffi::CString;

use pacifica_selftests::errno::{describe, expect_errno};
use pacifica_selftests::guests::hlt;
use pacifica_selftests::{diag, fail, skip, tap, test, Failure, Mode, TestResult, TestVm};

/// The module's name, as `/proc/modules` lists it.
const MODULE: &str = "pacifica";

/// Tries to unload the module without waiting.
fn delete_module() -> std::io::Result<()> {
    let name = CString::new(MODULE).expect("no NUL in the name");
    // SAFETY: delete_module(2) reads the NUL-terminated name and takes
    // flags; it touches no other memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
    if ret == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The module's reference count from /proc/modules, if it is listed there
/// (it is not when built in).
fn refcount() -> Option<u64> {
    let modules = std::fs::read_to_string("/proc/modules").ok()?;
    let line = modules
        .lines()
        .find(|l| l.split_whitespace().next() == Some(MODULE))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Skips unless the module is loadable (listed in /proc/modules), so that
/// a built-in Pacifica or a missing delete_module does not fail the tests.
fn require_loadable_module() -> TestResult {
    if refcount().is_none() {
        skip!("{MODULE} is not in /proc/modules (built in, or no /proc)");
    }
    Ok(())
}

/// Checks that unloading fails while `what` is open.
fn refused_while(what: &str) -> TestResult {
    diag!("refcount with {what} open: {:?}", refcount());
    match delete_module() {
        Ok(()) => {
            fail!("delete_module succeeded with {what} open: the module is gone and its fds dangle")
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            skip!("not allowed to unload modules ({})", describe(&e))
        }
        Err(e) => expect_errno(
            &format!("delete_module with {what} open"),
            Err::<(), _>(e),
            &[libc::EBUSY, libc::EAGAIN, libc::EWOULDBLOCK],
        ),
    }
}

/// With only the device fd open.
fn unload_refused_with_device_open() -> TestResult {
    require_loadable_module()?;
    let _sys = pacifica_selftests::sys::System::open()
        .map_err(|e| Failure::Fail(format!("open: {}", describe(&e))))?;
    refused_while("the device fd")
}

/// With a VM and a vCPU open, their device fd closed.
fn unload_refused_with_vm_open() -> TestResult {
    require_loadable_module()?;
    let TestVm {
        vcpu, vm, mem, sys, ..
    } = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
    drop(sys);
    refused_while("a VM fd and a vCPU fd")?;
    drop(vm);
    refused_while("only a vCPU fd")?;
    drop(vcpu);
    drop(mem);
    Ok(())
}

/// With a vCPU that has run (the module may hold more then, such as
/// per-CPU state touched by the run).
fn unload_refused_after_a_run() -> TestResult {
    require_loadable_module()?;
    let mut vm = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
    vm.run_to_hlt()?;
    refused_while("a VM that ran")
}

fn main() {
    tap::run(&[
        test!(unload_refused_with_device_open),
        test!(unload_refused_with_vm_open),
        test!(unload_refused_after_a_run),
    ]);
}

// SPDX-License-Identifier: GPL-2.0

//! The ioctl boundary: what the C shim's file operations call. Arguments
//! are copied in and out of userspace here, objects are handed to new fds,
//! and errors become errnos. See `Documentation/uapi.rst`.

use crate::shim::bindings::{self, pac_fd_kind, pac_fd_kind_PAC_FD_DEVICE as FD_DEVICE,
    pac_fd_kind_PAC_FD_VCPU as FD_VCPU, pac_fd_kind_PAC_FD_VM as FD_VM};
use crate::uapi;
use crate::vcpu::Vcpu;
use crate::vm::{Paging, Vm};
use crate::global;
use core::ffi::c_void;
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::{AsBytes, FromBytes};
use kernel::uaccess::UserSlice;

// SAFETY: these uapi types are `#[repr(C)]` integers and arrays of them with
// explicit padding fields, so every bit pattern is valid and none has
// uninitialised bytes.
unsafe impl FromBytes for uapi::MemoryRegion {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::Regs {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::Regs {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::Sregs {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::Sregs {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::ModuleInfo {}
// SAFETY: as above.
unsafe impl AsBytes for uapi::ExitStats {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::Msi {}
// SAFETY: as above.
unsafe impl FromBytes for uapi::Lint {}

fn read_user<T: FromBytes>(arg: usize) -> Result<T> {
    UserSlice::new(arg, core::mem::size_of::<T>()).reader().read::<T>()
}

fn write_user<T: AsBytes>(arg: usize, v: &T) -> Result<isize> {
    UserSlice::new(arg, core::mem::size_of::<T>()).writer().write(v)?;
    Ok(0)
}

/// Gives `obj` to a new fd of `kind`; on failure the reference is dropped.
fn new_fd<T>(kind: pac_fd_kind, obj: Arc<T>) -> Result<isize> {
    let raw = obj.into_raw() as *mut c_void;
    // SAFETY: `raw` is a live `Arc` reference that the fd takes over; its
    // release callback turns it back into an `Arc` of the same `T` (the
    // kind says which).
    let fd = unsafe { bindings::pac_anon_fd(kind, raw) };
    if fd < 0 {
        // SAFETY: the fd was not created, so the reference is still ours.
        drop(unsafe { Arc::from_raw(raw as *const T) });
        return Err(Error::from_errno(fd));
    }
    Ok(fd as isize)
}

fn device_ioctl(cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        uapi::PACIFICA_GET_API_VERSION => Ok(uapi::PACIFICA_API_VERSION as isize),
        uapi::PACIFICA_GET_INFO => write_user(arg, &global::get().module_info()),
        uapi::PACIFICA_GET_VCPU_MMAP_SIZE => Ok(uapi::PACIFICA_RUN_PAGE_SIZE as isize),
        uapi::PACIFICA_CREATE_VM => {
            let vm = Vm::new(Paging::from_uapi(arg as u64)?)?;
            new_fd(FD_VM, vm)
        }
        _ => Err(ENOTTY),
    }
}

fn vm_ioctl(vm: &Arc<Vm>, cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        uapi::PACIFICA_SET_MEMORY_REGION => {
            vm.set_memory_region(&read_user::<uapi::MemoryRegion>(arg)?)?;
            Ok(0)
        }
        uapi::PACIFICA_CREATE_VCPU => new_fd(FD_VCPU, vm.create_vcpu(arg as u64)?),
        uapi::PACIFICA_CREATE_IRQCHIP => {
            if arg != 0 {
                return Err(EINVAL);
            }
            vm.create_irqchip()?;
            Ok(0)
        }
        uapi::PACIFICA_SIGNAL_MSI => Ok(vm.signal_msi(&read_user::<uapi::Msi>(arg)?)? as isize),
        _ => Err(ENOTTY),
    }
}

fn vcpu_ioctl(vcpu: &Vcpu, cmd: u32, arg: usize) -> Result<isize> {
    match cmd {
        uapi::PACIFICA_RUN => vcpu.run().map(|()| 0),
        uapi::PACIFICA_GET_REGS => write_user(arg, &vcpu.get_regs()?),
        uapi::PACIFICA_SET_REGS => {
            vcpu.set_regs(&read_user::<uapi::Regs>(arg)?)?;
            Ok(0)
        }
        uapi::PACIFICA_GET_SREGS => write_user(arg, &vcpu.get_sregs()?),
        uapi::PACIFICA_SET_SREGS => {
            vcpu.set_sregs(&read_user::<uapi::Sregs>(arg)?)?;
            Ok(0)
        }
        uapi::PACIFICA_GET_STATS => write_user(arg, &vcpu.stats()?),
        uapi::PACIFICA_GET_LAPIC => {
            let state = vcpu.get_lapic()?;
            UserSlice::new(arg, state.len()).writer().write_slice(&state)?;
            Ok(0)
        }
        uapi::PACIFICA_SET_LAPIC => {
            let len = core::mem::size_of::<uapi::LapicState>();
            let mut state = KVVec::from_elem(0u8, len, GFP_KERNEL_ACCOUNT)?;
            UserSlice::new(arg, len).reader().read_slice(&mut state)?;
            vcpu.set_lapic(&state)?;
            Ok(0)
        }
        uapi::PACIFICA_NMI => {
            if arg != 0 {
                return Err(EINVAL);
            }
            vcpu.nmi()?;
            Ok(0)
        }
        uapi::PACIFICA_SET_LINT => {
            vcpu.set_lint(&read_user::<uapi::Lint>(arg)?)?;
            Ok(0)
        }
        _ => Err(ENOTTY),
    }
}

/// Borrows the object an fd of type `T` owns, for the length of a call.
///
/// # Safety
///
/// `private` must be the pointer `new_fd` gave an fd holding an `Arc<T>`,
/// and the fd must stay open for the call (the VFS guarantees it during a
/// file operation).
unsafe fn borrow<'a, T>(private: *mut c_void) -> kernel::sync::ArcBorrow<'a, T> {
    // SAFETY: guaranteed by the caller.
    unsafe { kernel::sync::ArcBorrow::from_raw(private as *const T) }
}

/// Entry point of every ioctl on the module's fds.
#[no_mangle]
extern "C" fn pacifica_ioctl(kind: pac_fd_kind, private: *mut c_void, cmd: u32, arg: usize) -> isize {
    let r = match kind {
        FD_DEVICE => device_ioctl(cmd, arg),
        FD_VM => {
            // SAFETY: a VM fd's private data is its `Arc<Vm>` (see `new_fd`).
            let vm = unsafe { borrow::<Vm>(private) };
            vm_ioctl(&vm.into(), cmd, arg)
        }
        FD_VCPU => {
            // SAFETY: a vCPU fd's private data is its `Arc<Vcpu>`.
            let vcpu = unsafe { borrow::<Vcpu>(private) };
            vcpu_ioctl(&vcpu, cmd, arg)
        }
        _ => Err(EINVAL),
    };
    match r {
        Ok(v) => v,
        Err(e) => e.to_errno() as isize,
    }
}

/// The last close of a VM or vCPU fd.
#[no_mangle]
extern "C" fn pacifica_release(kind: pac_fd_kind, private: *mut c_void) {
    match kind {
        // SAFETY: the fd held this reference since `new_fd`; it is closing.
        FD_VM => drop(unsafe { Arc::from_raw(private as *const Vm) }),
        // SAFETY: as above, for a vCPU fd.
        FD_VCPU => drop(unsafe { Arc::from_raw(private as *const Vcpu) }),
        _ => {}
    }
}

/// The run page a vCPU fd maps.
#[no_mangle]
extern "C" fn pacifica_vcpu_run_page(private: *mut c_void) -> *mut c_void {
    // SAFETY: only called for vCPU fds, during mmap, while the fd is open.
    let vcpu = unsafe { borrow::<Vcpu>(private) };
    vcpu.run_page_va() as *mut c_void
}

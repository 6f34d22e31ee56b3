// SPDX-License-Identifier: GPL-2.0

//! Every ioctl refuses bad input with an error, never with a crash, a leak
//! or a half-done change, and the objects stay usable afterwards.
//!
//! The errno each case expects is the one `Documentation/uapi.rst` and KVM
//! lead one to expect; where the module may reasonably choose between two,
//! both are accepted. Every case prints the errno it actually got, so a
//! run shows the module's choices even when they pass.
//!
//! The typed wrappers of `pacifica::sys` cannot express most of this (a bad
//! pointer, an unknown request number), so these tests call `ioctl(2)`
//! through [`raw_ioctl`] with arguments they own or that point nowhere.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use pacifica::hw::apic::base;
use pacifica::hw::cr::cr0;
use pacifica::hw::seg::attr;
use pacifica_selftests::errno::{describe, expect_errno, raw_ioctl};
use pacifica_selftests::guest::{
    describe_exit, ensure_back_to, initial_regs, initial_sregs, module_info, prepare_memory,
    run_vcpu, until_hlt, GuestLog, RUN_TIMEOUT,
};
use pacifica_selftests::guests::{hlt, spin};
use pacifica_selftests::layout::STACK_TOP;
use pacifica_selftests::sys::{Exit, GuestMemory, System, Vcpu, Vm};
use pacifica_selftests::uapi::{self, MemoryRegion};
use pacifica_selftests::watchdog::Watchdog;
use pacifica_selftests::{
    diag, ensure, ensure_eq, tap, test, Context, Failure, Flow, Mode, TestResult, TestVm,
};

use libc::{EBUSY, EEXIST, EFAULT, EINVAL, ENOTTY};

/// An ioctl request number of Pacifica's type byte, built as the header's _IO does,
/// for numbers the header does not define.
const fn ioc(dir: u32, nr: u32, size: u32) -> u32 {
    (dir << 30) | (size << 16) | (uapi::PACIFICA_IO << 8) | nr
}

/// An anonymous mapping the test owns, unmapped on drop.
struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    fn new(len: usize, prot: libc::c_int) -> Result<Self, Failure> {
        // SAFETY: a fresh anonymous mapping at an address the kernel picks
        // affects no existing object.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error()).context("mmap");
        }
        Ok(Self { ptr, len })
    }

    fn addr(&self) -> u64 {
        self.ptr as u64
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping `new` created, which nothing else
        // refers to once the owner is dropped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Addresses no ioctl may use: each (name, address). The inaccessible
/// page is a PROT_NONE mapping kept for the test's duration, so nothing
/// else can be mapped there meanwhile.
fn bad_pointers(inaccessible: &Mapping) -> Vec<(&'static str, u64)> {
    vec![
        ("NULL", 0),
        ("0x1", 1),
        ("a PROT_NONE page", inaccessible.addr()),
        ("a kernel address", 0xffff_8880_0000_0000),
        ("a non-canonical address", 0x8000_0000_0000_0000),
    ]
}

/// Closes `fd` if an ioctl that should have failed returned one.
fn close_if_fd(result: &std::io::Result<i32>) {
    if let Ok(fd) = *result {
        if fd > 2 {
            // SAFETY: the fd was just returned to us by the ioctl and is
            // owned by nothing else.
            unsafe { libc::close(fd) };
        }
    }
}

/// A fd-returning ioctl that must fail: checks the errno, and closes the
/// fd should it have succeeded after all.
fn expect_no_fd(what: &str, fd: RawFd, request: u32, arg: u64, accepted: &[i32]) -> TestResult {
    let result = raw_ioctl(fd, request, arg);
    close_if_fd(&result);
    expect_errno(what, result, accepted)
}

fn open() -> Result<System, Failure> {
    System::open().context("opening /dev/pacifica")
}

fn npt_vm(sys: &System) -> Result<Vm, Failure> {
    sys.create_vm(uapi::PACIFICA_PAGING_NPT)
        .context("CREATE_VM")
}

/// Collects the failures of many cases, so that one run reports them all.
#[derive(Default)]
struct Cases(Vec<String>);

impl Cases {
    fn check(&mut self, result: TestResult) {
        if let Err(Failure::Fail(msg) | Failure::Skip(msg)) = result {
            self.0.push(msg);
        }
    }

    /// Fails with every failure collected so far, and starts afresh.
    fn finish(&mut self) -> TestResult {
        let failures = std::mem::take(&mut self.0);
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Failure::Fail(failures.join("\n")))
        }
    }
}

/// GET_INFO with a pointer it cannot write: EFAULT.
fn get_info_bad_pointers() -> TestResult {
    let sys = open()?;
    let none = Mapping::new(4096, libc::PROT_NONE)?;
    let read_only = Mapping::new(4096, libc::PROT_READ)?;
    let mut cases = Cases::default();
    for (name, addr) in bad_pointers(&none)
        .into_iter()
        .chain([("a read-only page", read_only.addr())])
    {
        let r = raw_ioctl(sys.as_raw_fd(), uapi::PACIFICA_GET_INFO, addr);
        cases.check(expect_errno(&format!("GET_INFO to {name}"), r, &[EFAULT]));
    }
    cases.check(sys.info().map(|_| ()).context("GET_INFO afterwards"));
    cases.finish()
}

/// The vCPU's register and statistics ioctls with bad pointers: EFAULT,
/// and the vCPU still runs afterwards.
fn vcpu_ioctls_bad_pointers() -> TestResult {
    let mut vm = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
    let none = Mapping::new(4096, libc::PROT_NONE)?;
    let read_only = Mapping::new(4096, libc::PROT_READ)?;
    let fd = vm.vcpu.as_raw_fd();
    let requests = [
        ("GET_REGS", uapi::PACIFICA_GET_REGS, true),
        ("SET_REGS", uapi::PACIFICA_SET_REGS, false),
        ("GET_SREGS", uapi::PACIFICA_GET_SREGS, true),
        ("SET_SREGS", uapi::PACIFICA_SET_SREGS, false),
        ("GET_STATS", uapi::PACIFICA_GET_STATS, true),
    ];
    let mut cases = Cases::default();
    for (req_name, request, writes) in requests {
        let mut pointers = bad_pointers(&none);
        if writes {
            pointers.push(("a read-only page", read_only.addr()));
        }
        for (name, addr) in pointers {
            let r = raw_ioctl(fd, request, addr);
            cases.check(expect_errno(
                &format!("{req_name} with {name}"),
                r,
                &[EFAULT],
            ));
        }
    }
    cases.finish()?;
    // A failed SET_* must not have changed anything: the guest still runs
    // from where the harness put it.
    vm.run_to_hlt()?;
    ensure_eq!(
        vm.vcpu.run_page().rip,
        hlt::HLT64_FIRST,
        "first HLT after the bad ioctls"
    );
    Ok(())
}

/// SET_MEMORY_REGION with a bad pointer to its struct: EFAULT.
fn set_memory_region_bad_pointers() -> TestResult {
    let sys = open()?;
    let vm = npt_vm(&sys)?;
    let none = Mapping::new(4096, libc::PROT_NONE)?;
    let mut cases = Cases::default();
    for (name, addr) in bad_pointers(&none) {
        let r = raw_ioctl(vm.as_raw_fd(), uapi::PACIFICA_SET_MEMORY_REGION, addr);
        cases.check(expect_errno(
            &format!("SET_MEMORY_REGION from {name}"),
            r,
            &[EFAULT],
        ));
    }
    cases.finish()
}

/// Request numbers nobody defined: ENOTTY on every kind of fd. Variants of
/// defined numbers with another size or direction are unknown numbers too
/// (ENOTTY; EINVAL tolerated).
fn unknown_ioctls() -> TestResult {
    let sys = open()?;
    let vm = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
    // Owned scratch memory for the argument, so that even a module that
    // wrongly acts on a request only scribbles here.
    let scratch = Mapping::new(4096, libc::PROT_READ | libc::PROT_WRITE)?;
    let fds = [
        ("device", sys.as_raw_fd()),
        ("VM", vm.vm.as_raw_fd()),
        ("vCPU", vm.vcpu.as_raw_fd()),
    ];
    let unknown = [
        ("_IO(0xAF, 0x7f)", ioc(0, 0x7f, 0)),
        ("_IO(0xAF, 0xff)", ioc(0, 0xff, 0)),
        ("KVM_GET_API_VERSION (0xAE00)", 0xae00),
        ("_IOWR(0xAF, 0x30, 64 bytes)", ioc(3, 0x30, 64)),
    ];
    let variants = [
        ("GET_INFO with a 4-byte size", ioc(2, 0x01, 4)),
        ("RUN as _IOW of 8 bytes", ioc(1, 0x20, 8)),
        (
            "GET_REGS as _IOW",
            ioc(1, 0x21, std::mem::size_of::<uapi::Regs>() as u32),
        ),
        (
            "SET_MEMORY_REGION as _IOR",
            ioc(2, 0x10, std::mem::size_of::<MemoryRegion>() as u32),
        ),
    ];
    let mut cases = Cases::default();
    for (fd_name, fd) in fds {
        for (name, request) in unknown {
            let what = format!("{name} on the {fd_name} fd");
            cases.check(expect_no_fd(&what, fd, request, scratch.addr(), &[ENOTTY]));
        }
        for (name, request) in variants {
            let what = format!("{name} on the {fd_name} fd");
            cases.check(expect_no_fd(
                &what,
                fd,
                request,
                scratch.addr(),
                &[ENOTTY, EINVAL],
            ));
        }
    }
    cases.finish()
}

/// Each fd kind refuses the other kinds' ioctls: ENOTTY (EINVAL
/// tolerated), and nothing is created.
fn ioctls_on_wrong_fd_kind() -> TestResult {
    let before = module_info()?;
    {
        let sys = open()?;
        let vm = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
        let scratch = Mapping::new(4096, libc::PROT_READ | libc::PROT_WRITE)?;
        let region = MemoryRegion {
            slot: 5,
            flags: 0,
            guest_phys_addr: 0x1000_0000,
            memory_size: 4096,
            userspace_addr: scratch.addr(),
        };
        let region_ptr = &region as *const MemoryRegion as u64;
        let s = scratch.addr();
        let accepted = &[ENOTTY, EINVAL];
        let dev = ("device", sys.as_raw_fd());
        let vm_fd = ("VM", vm.vm.as_raw_fd());
        let vcpu = ("vCPU", vm.vcpu.as_raw_fd());
        let cases_list = [
            (
                dev,
                "SET_MEMORY_REGION",
                uapi::PACIFICA_SET_MEMORY_REGION,
                region_ptr,
            ),
            (dev, "CREATE_VCPU", uapi::PACIFICA_CREATE_VCPU, 1),
            (dev, "CREATE_IRQCHIP", uapi::PACIFICA_CREATE_IRQCHIP, 0),
            (dev, "RUN", uapi::PACIFICA_RUN, 0),
            (dev, "GET_REGS", uapi::PACIFICA_GET_REGS, s),
            (dev, "SET_SREGS", uapi::PACIFICA_SET_SREGS, s),
            (dev, "GET_STATS", uapi::PACIFICA_GET_STATS, s),
            (vm_fd, "GET_INFO", uapi::PACIFICA_GET_INFO, s),
            (vm_fd, "CREATE_VM", uapi::PACIFICA_CREATE_VM, 0),
            (
                vm_fd,
                "GET_VCPU_MMAP_SIZE",
                uapi::PACIFICA_GET_VCPU_MMAP_SIZE,
                0,
            ),
            (vm_fd, "RUN", uapi::PACIFICA_RUN, 0),
            (vm_fd, "GET_REGS", uapi::PACIFICA_GET_REGS, s),
            (vm_fd, "SET_REGS", uapi::PACIFICA_SET_REGS, s),
            (vcpu, "GET_INFO", uapi::PACIFICA_GET_INFO, s),
            (vcpu, "CREATE_VM", uapi::PACIFICA_CREATE_VM, 0),
            (vcpu, "CREATE_VCPU", uapi::PACIFICA_CREATE_VCPU, 1),
            (vcpu, "CREATE_IRQCHIP", uapi::PACIFICA_CREATE_IRQCHIP, 0),
            (
                vcpu,
                "SET_MEMORY_REGION",
                uapi::PACIFICA_SET_MEMORY_REGION,
                region_ptr,
            ),
        ];
        let mut cases = Cases::default();
        for ((fd_name, fd), name, request, arg) in cases_list {
            let what = format!("{name} on the {fd_name} fd");
            cases.check(expect_no_fd(&what, fd, request, arg, accepted));
        }
        // API_VERSION is harmless anywhere; KVM answers it on every fd.
        // Whatever the module does, print it.
        for (fd_name, fd) in [vm_fd, vcpu] {
            let r = raw_ioctl(fd, uapi::PACIFICA_GET_API_VERSION, 0);
            diag!(
                "GET_API_VERSION on the {fd_name} fd: {:?}",
                r.map_err(|e| describe(&e))
            );
        }
        cases.finish()?;
        let now = sys.info().context("GET_INFO")?;
        ensure_eq!(
            now.nr_vms,
            before.nr_vms + 1,
            "nr_vms (no VM created by a wrong ioctl)"
        );
    }
    ensure_back_to(&before, "the wrong-fd ioctls")
}

/// CREATE_VM: nested (0) and shadow paging (1) give a VM fd; anything
/// else is EINVAL, including values whose low 32 bits are valid.
fn create_vm_paging_modes() -> TestResult {
    let before = module_info()?;
    let sys = open()?;
    let fd = sys.as_raw_fd();
    let mut cases = Cases::default();
    for mode in [uapi::PACIFICA_PAGING_NPT, uapi::PACIFICA_PAGING_SHADOW] {
        let vm = raw_ioctl(fd, uapi::PACIFICA_CREATE_VM, mode);
        close_if_fd(&vm);
        ensure!(vm.is_ok(), "CREATE_VM({mode}) failed: {}", pacifica_selftests::errno::describe(vm.as_ref().unwrap_err()));
    }
    for mode in [2u64, 7, 0xff, 1 << 32, (1 << 32) | 1, u64::MAX] {
        cases.check(expect_no_fd(
            &format!("CREATE_VM({mode:#x})"),
            fd,
            uapi::PACIFICA_CREATE_VM,
            mode,
            &[EINVAL],
        ));
    }
    cases.finish()?;
    ensure_back_to(&before, "the refused CREATE_VMs")
}

/// One SET_MEMORY_REGION with `region`, which must fail with `accepted`.
fn bad_region(cases: &mut Cases, vm: &Vm, what: &str, region: MemoryRegion, accepted: &[i32]) {
    let r = vm.set_memory_region(&region);
    cases.check(expect_errno(
        &format!("SET_MEMORY_REGION {what}"),
        r,
        accepted,
    ));
}

/// Invalid region fields: EINVAL each, nothing pinned, and the slot is
/// still free for a valid region afterwards.
fn memory_region_invalid_fields() -> TestResult {
    let before = module_info()?;
    {
        let sys = open()?;
        let vm = npt_vm(&sys)?;
        let mut mem = GuestMemory::new(1 << 20).context("mmap")?;
        let good = MemoryRegion {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: 1 << 20,
            userspace_addr: mem.as_ptr() as u64,
        };
        let mut cases = Cases::default();
        let list: Vec<(&str, MemoryRegion)> = vec![
            (
                "with a misaligned guest_phys_addr",
                MemoryRegion {
                    guest_phys_addr: 0x1001,
                    ..good
                },
            ),
            (
                "with a misaligned memory_size",
                MemoryRegion {
                    memory_size: 0x1800,
                    ..good
                },
            ),
            (
                "with a misaligned userspace_addr",
                MemoryRegion {
                    userspace_addr: good.userspace_addr + 1,
                    ..good
                },
            ),
            (
                "with memory_size 0",
                MemoryRegion {
                    memory_size: 0,
                    ..good
                },
            ),
            ("with flags 1", MemoryRegion { flags: 1, ..good }),
            (
                "with flags 0x80000000",
                MemoryRegion {
                    flags: 0x8000_0000,
                    ..good
                },
            ),
            (
                "in slot 32 (one past the last)",
                MemoryRegion {
                    slot: uapi::PACIFICA_MAX_MEMORY_REGIONS,
                    ..good
                },
            ),
            (
                "in slot 0xffffffff",
                MemoryRegion {
                    slot: u32::MAX,
                    ..good
                },
            ),
            (
                "whose guest range wraps around",
                MemoryRegion {
                    guest_phys_addr: 0xffff_ffff_ffff_f000,
                    memory_size: 0x2000,
                    ..good
                },
            ),
            (
                "beyond what 4-level nested paging maps (1 << 52)",
                MemoryRegion {
                    guest_phys_addr: 1 << 52,
                    memory_size: 0x1000,
                    ..good
                },
            ),
        ];
        for (what, region) in list {
            bad_region(&mut cases, &vm, what, region, &[EINVAL]);
        }
        bad_region(
            &mut cases,
            &vm,
            "whose host range wraps around",
            MemoryRegion {
                userspace_addr: 0xffff_ffff_ffff_f000,
                memory_size: 0x2000,
                ..good
            },
            &[EINVAL, EFAULT],
        );
        let mid = sys.info().context("GET_INFO")?;
        cases.check(if mid.pages_pinned == before.pages_pinned {
            Ok(())
        } else {
            Err(Failure::Fail(format!(
                "refused regions left {} pages pinned",
                mid.pages_pinned - before.pages_pinned
            )))
        });
        cases.finish()?;
        // Nothing half-registered: slot 0 at 0 still works, and a guest runs.
        prepare_memory(&mut mem, hlt::IMAGE)?;
        vm.set_memory_region(&good)
            .context("the valid region after the refused ones")?;
        let mut vcpu = vm.create_vcpu(0).context("CREATE_VCPU")?;
        pacifica_selftests::guest::setup_vcpu(&vcpu, Mode::Long64, hlt::HLT64, STACK_TOP)?;
        run_vcpu(&mut vcpu, &mut GuestLog::default(), RUN_TIMEOUT, until_hlt)?;
    }
    ensure_back_to(&before, "the region tests")
}

/// Host memory the module cannot pin: EFAULT, and nothing stays pinned.
fn memory_region_bad_userspace_addr() -> TestResult {
    let before = module_info()?;
    {
        let sys = open()?;
        let vm = npt_vm(&sys)?;
        let none = Mapping::new(0x4000, libc::PROT_NONE)?;
        let read_only = Mapping::new(0x4000, libc::PROT_READ)?;
        // Two pages of which the second is PROT_NONE: a region that runs
        // off the end of usable memory after pinning one page.
        let half = Mapping::new(0x2000, libc::PROT_READ | libc::PROT_WRITE)?;
        // SAFETY: changes the protection of the second page of our own
        // mapping, which nothing references.
        unsafe {
            libc::mprotect(
                half.ptr.cast::<u8>().add(0x1000).cast(),
                0x1000,
                libc::PROT_NONE,
            )
        };
        let unmapped = {
            let m = Mapping::new(0x4000, libc::PROT_READ | libc::PROT_WRITE)?;
            m.addr()
        };
        let region = |addr: u64, size: u64| MemoryRegion {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: size,
            userspace_addr: addr,
        };
        let mut cases = Cases::default();
        bad_region(
            &mut cases,
            &vm,
            "on unmapped memory",
            region(unmapped, 0x4000),
            &[EFAULT],
        );
        bad_region(
            &mut cases,
            &vm,
            "on a PROT_NONE mapping",
            region(none.addr(), 0x4000),
            &[EFAULT],
        );
        bad_region(
            &mut cases,
            &vm,
            "on a read-only mapping",
            region(read_only.addr(), 0x4000),
            &[EFAULT, EINVAL, libc::EPERM, libc::EACCES],
        );
        bad_region(
            &mut cases,
            &vm,
            "running past the end of its mapping",
            region(half.addr(), 0x2000),
            &[EFAULT],
        );
        bad_region(
            &mut cases,
            &vm,
            "at user address 0",
            region(0, 0x4000),
            &[EFAULT, EINVAL],
        );
        bad_region(
            &mut cases,
            &vm,
            "at a kernel address",
            region(0xffff_8880_0000_0000, 0x4000),
            &[EFAULT, EINVAL],
        );
        let mid = sys.info().context("GET_INFO")?;
        cases.check(if mid.pages_pinned == before.pages_pinned {
            Ok(())
        } else {
            Err(Failure::Fail(format!(
                "refused regions left {} pages pinned (a partial pin not undone?)",
                mid.pages_pinned - before.pages_pinned
            )))
        });
        cases.finish()?;
    }
    ensure_back_to(&before, "the refused regions")
}

/// A slot is used once, and regions do not overlap: EEXIST (EINVAL
/// tolerated). Regions that only touch are fine.
fn memory_region_reuse_and_overlap() -> TestResult {
    let before = module_info()?;
    {
        let sys = open()?;
        let vm = npt_vm(&sys)?;
        let a = GuestMemory::new(0x10000).context("mmap")?;
        let b = GuestMemory::new(0x20000).context("mmap")?;
        a.register(&vm, 0, 0).context("slot 0 at 0, 64 KiB")?;
        let mut cases = Cases::default();
        let accepted = &[EEXIST, EINVAL];
        let region = |slot, gpa, size| MemoryRegion {
            slot,
            flags: 0,
            guest_phys_addr: gpa,
            memory_size: size,
            userspace_addr: b.as_ptr() as u64,
        };
        bad_region(
            &mut cases,
            &vm,
            "reusing slot 0 elsewhere",
            region(0, 0x10_0000, 0x10000),
            accepted,
        );
        bad_region(
            &mut cases,
            &vm,
            "on exactly slot 0's range",
            region(1, 0, 0x10000),
            accepted,
        );
        bad_region(
            &mut cases,
            &vm,
            "overlapping slot 0's second half",
            region(1, 0x8000, 0x10000),
            accepted,
        );
        bad_region(
            &mut cases,
            &vm,
            "overlapping slot 0's last page",
            region(1, 0xf000, 0x1000),
            accepted,
        );
        bad_region(
            &mut cases,
            &vm,
            "containing slot 0",
            region(1, 0, 0x20000),
            accepted,
        );
        cases.finish()?;
        vm.set_memory_region(&region(1, 0x10000, 0x10000))
            .context("slot 1 right after slot 0 (touching, not overlapping)")?;
        bad_region(
            &mut cases,
            &vm,
            "reusing slot 1",
            region(1, 0x40_0000, 0x1000),
            accepted,
        );
        cases.finish()?;
    }
    ensure_back_to(&before, "the overlap tests")
}

/// CREATE_VCPU: ids from 0 to MAX_VCPUS - 1, each once. Out of range is
/// EINVAL (also when the low 32 bits would be valid), a duplicate EEXIST.
fn create_vcpu_bad_ids() -> TestResult {
    let before = module_info()?;
    {
        let sys = open()?;
        let vm = npt_vm(&sys)?;
        let fd = vm.as_raw_fd();
        let mut cases = Cases::default();
        for id in [
            uapi::PACIFICA_MAX_VCPUS as u64,
            0xffff_ffff,
            1 << 32,
            u64::MAX,
        ] {
            cases.check(expect_no_fd(
                &format!("CREATE_VCPU({id:#x})"),
                fd,
                uapi::PACIFICA_CREATE_VCPU,
                id,
                &[EINVAL],
            ));
        }
        let first = vm.create_vcpu(0).context("CREATE_VCPU(0)")?;
        cases.check(expect_no_fd(
            "CREATE_VCPU(0) again",
            fd,
            uapi::PACIFICA_CREATE_VCPU,
            0,
            &[EEXIST],
        ));
        let rest: Vec<Vcpu> = (1..uapi::PACIFICA_MAX_VCPUS)
            .map(|id| vm.create_vcpu(id).context(format!("CREATE_VCPU({id})")))
            .collect::<Result<_, _>>()?;
        cases.check(expect_no_fd(
            "CREATE_VCPU(7) again, all 8 in use",
            fd,
            uapi::PACIFICA_CREATE_VCPU,
            7,
            &[EEXIST],
        ));
        drop((first, rest));
        cases.finish()?;
    }
    ensure_back_to(&before, "the vCPU id tests")
}

/// CREATE_IRQCHIP: arg 0 once, before any vCPU; EINVAL for another arg,
/// EEXIST a second time, EBUSY once a vCPU exists (even one whose
/// creation came first in a VM that never had an irqchip); the wrong fd
/// kinds are ENOTTY (`ioctls_on_wrong_fd_kind`).
fn create_irqchip_rules() -> TestResult {
    let sys = open()?;
    let vm = npt_vm(&sys)?;
    let fd = vm.as_raw_fd();
    let mut cases = Cases::default();
    for arg in [1, 0xffff_ffff, u64::MAX] {
        cases.check(expect_errno(&format!("CREATE_IRQCHIP({arg:#x})"), raw_ioctl(fd, uapi::PACIFICA_CREATE_IRQCHIP, arg), &[EINVAL]));
    }
    vm.create_irqchip().context("CREATE_IRQCHIP(0)")?;
    cases.check(expect_errno("CREATE_IRQCHIP again", raw_ioctl(fd, uapi::PACIFICA_CREATE_IRQCHIP, 0), &[EEXIST]));
    let _vcpu = vm.create_vcpu(0).context("CREATE_VCPU(0) after CREATE_IRQCHIP")?;
    let late = npt_vm(&sys)?;
    let _late_vcpu = late.create_vcpu(3).context("CREATE_VCPU(3)")?;
    cases.check(expect_errno("CREATE_IRQCHIP after CREATE_VCPU", raw_ioctl(late.as_raw_fd(), uapi::PACIFICA_CREATE_IRQCHIP, 0), &[EBUSY]));
    cases.finish()
}

/// Pointers no ioctl may read or write through.
const BAD_POINTERS: [(&str, u64); 3] = [("NULL", 0), ("0x1", 1), ("a kernel address", 0xffff_8000_0000_0000)];

/// A VM without an irqchip and one with it, each with vCPU 0.
fn plain_and_irqchip_vms(sys: &System) -> Result<[(Vm, Vcpu); 2], Failure> {
    let plain = npt_vm(sys)?;
    let plain_vcpu = plain.create_vcpu(0).context("CREATE_VCPU")?;
    let vm = npt_vm(sys)?;
    vm.create_irqchip().context("CREATE_IRQCHIP")?;
    let vcpu = vm.create_vcpu(0).context("CREATE_VCPU")?;
    Ok([(plain, plain_vcpu), (vm, vcpu)])
}

/// GET_LAPIC and SET_LAPIC: ENXIO without an irqchip, EFAULT for bad
/// pointers, EINVAL for reserved words and for states no APIC could be in.
fn lapic_state_bad_input() -> TestResult {
    let sys = open()?;
    let mut cases = Cases::default();
    let [(_plain, plain_vcpu), (_vm, vcpu)] = plain_and_irqchip_vms(&sys)?;
    cases.check(expect_errno("GET_LAPIC without an irqchip", plain_vcpu.get_lapic(), &[libc::ENXIO]));
    cases.check(expect_errno("SET_LAPIC without an irqchip", plain_vcpu.set_lapic(&uapi::LapicState::default()), &[libc::ENXIO]));
    let good = *vcpu.get_lapic().context("GET_LAPIC")?;
    let fd = vcpu.as_raw_fd();
    for (what, ptr) in BAD_POINTERS {
        cases.check(expect_errno(&format!("GET_LAPIC to {what}"), raw_ioctl(fd, uapi::PACIFICA_GET_LAPIC, ptr), &[EFAULT]));
        cases.check(expect_errno(&format!("SET_LAPIC from {what}"), raw_ioctl(fd, uapi::PACIFICA_SET_LAPIC, ptr), &[EFAULT]));
    }
    let mut reserved = good;
    reserved.reserved[6] = 1;
    let bad = [
        ("a reserved word", reserved),
        ("reserved IA32_APIC_BASE bits", uapi::LapicState { apic_base: good.apic_base | 1, ..good }),
        ("EXTD without ENABLE", uapi::LapicState { apic_base: base::EXTD | base::DEFAULT_ADDR, ..good }),
        ("an address beyond MAXPHYADDR", uapi::LapicState { apic_base: good.apic_base | (1 << 52), ..good }),
    ];
    for (what, state) in bad {
        cases.check(expect_errno(&format!("SET_LAPIC with {what}"), vcpu.set_lapic(&state), &[EINVAL]));
    }
    // What was refused left the APIC as it was.
    ensure_eq!(*vcpu.get_lapic().context("GET_LAPIC")?, good, "the APIC after the refused SET_LAPICs");
    cases.finish()
}

/// SIGNAL_MSI, NMI and SET_LINT: ENXIO without an irqchip, EFAULT for
/// bad pointers, EINVAL for a message outside the APIC window, non-zero
/// flags, an unsupported delivery mode, an NMI argument, a pin or level
/// that does not exist; an MSI nobody is the destination of reaches none.
fn injection_bad_input() -> TestResult {
    let sys = open()?;
    let mut cases = Cases::default();
    let [(plain, plain_vcpu), (vm, vcpu)] = plain_and_irqchip_vms(&sys)?;
    let plain_events = plain_vcpu.events().context("dup")?;
    cases.check(expect_errno("SIGNAL_MSI without an irqchip", plain.signal_msi(0xfee0_0000, 0x40), &[libc::ENXIO]));
    cases.check(expect_errno("NMI without an irqchip", plain_events.nmi(), &[libc::ENXIO]));
    cases.check(expect_errno("SET_LINT without an irqchip", plain_events.set_lint(0, true), &[libc::ENXIO]));
    let events = vcpu.events().context("dup")?;
    for (what, ptr) in BAD_POINTERS {
        cases.check(expect_errno(&format!("SIGNAL_MSI from {what}"), raw_ioctl(vm.as_raw_fd(), uapi::PACIFICA_SIGNAL_MSI, ptr), &[EFAULT]));
        cases.check(expect_errno(&format!("SET_LINT from {what}"), raw_ioctl(vcpu.as_raw_fd(), uapi::PACIFICA_SET_LINT, ptr), &[EFAULT]));
    }
    for (what, address, data) in [
        ("an address outside 0xfee00000-0xfeefffff", 0xfed0_0000u64, 0x40u32),
        ("bits 39:32 of the address set", 0x1_fee0_0000, 0x40),
        ("SMI delivery", 0xfee0_0000, 0x240),
        ("INIT delivery", 0xfee0_0000, 0x500),
        ("STARTUP delivery", 0xfee0_0000, 0x600),
        ("ExtINT delivery", 0xfee0_0000, 0x740),
        ("reserved delivery mode 3", 0xfee0_0000, 0x340),
    ] {
        cases.check(expect_errno(&format!("SIGNAL_MSI with {what}"), vm.signal_msi(address, data), &[EINVAL]));
    }
    let flags = uapi::Msi { address: 0xfee0_0000, data: 0x40, flags: 1 };
    cases.check(expect_errno("SIGNAL_MSI with flags", raw_ioctl(vm.as_raw_fd(), uapi::PACIFICA_SIGNAL_MSI, &flags as *const _ as u64), &[EINVAL]));
    cases.check(expect_errno("NMI with arg 1", raw_ioctl(vcpu.as_raw_fd(), uapi::PACIFICA_NMI, 1), &[EINVAL]));
    cases.check(expect_errno("SET_LINT pin 2", events.set_lint(2, true), &[EINVAL]));
    let level2 = uapi::Lint { pin: 0, level: 2 };
    cases.check(expect_errno("SET_LINT level 2", raw_ioctl(vcpu.as_raw_fd(), uapi::PACIFICA_SET_LINT, &level2 as *const _ as u64), &[EINVAL]));
    // The APIC is software-disabled at reset: it accepts no fixed MSI.
    ensure_eq!(vm.signal_msi(0xfee0_0000, 0x40).context("SIGNAL_MSI")?, 0, "a software-disabled APIC's MSIs");
    ensure_eq!(vm.signal_msi(0xfee0_0000, 0x8040).context("SIGNAL_MSI")?, 0, "a level-triggered de-assertion");
    cases.finish()
}

/// RUN before SET_REGS and SET_SREGS: EINVAL, and the vCPU runs once they
/// are set.
fn run_before_registers_set() -> TestResult {
    let sys = open()?;
    let vm = npt_vm(&sys)?;
    let mut mem = GuestMemory::new(1 << 20).context("mmap")?;
    prepare_memory(&mut mem, hlt::IMAGE)?;
    mem.register(&vm, 0, 0).context("SET_MEMORY_REGION")?;
    let mut vcpu = vm.create_vcpu(0).context("CREATE_VCPU")?;
    let r = raw_ioctl(vcpu.as_raw_fd(), uapi::PACIFICA_RUN, 0);
    expect_errno("RUN with no registers set", r, &[EINVAL])?;
    vcpu.set_sregs(&initial_sregs(Mode::Long64))
        .context("SET_SREGS")?;
    vcpu.set_regs(&initial_regs(hlt::HLT64, STACK_TOP))
        .context("SET_REGS")?;
    run_vcpu(&mut vcpu, &mut GuestLog::default(), RUN_TIMEOUT, until_hlt)
}

/// A vCPU in a VM with no memory at all: the module reports something
/// (an MMIO exit for the instruction fetch, an internal error, an error
/// from RUN); it must not hang or crash. Prints what it was.
fn run_without_memory() -> TestResult {
    let sys = open()?;
    let vm = npt_vm(&sys)?;
    let mut vcpu = vm.create_vcpu(0).context("CREATE_VCPU")?;
    pacifica_selftests::guest::setup_vcpu(&vcpu, Mode::Long64, hlt::HLT64, STACK_TOP)?;
    let what = run_vcpu(&mut vcpu, &mut GuestLog::default(), RUN_TIMEOUT, |exit| {
        Flow::Stop(describe_exit(exit))
    });
    diag!("running with no memory: {what:?}");
    Ok(())
}

/// Guest states VMRUN refuses (APM Vol. 2, 15.5.1 "Canonicalization and
/// Consistency Checks") are refused: by SET_SREGS (EINVAL) or by RUN
/// (EINVAL, or a FailEntry exit, which is how uapi.rst says VMEXIT_INVALID
/// reaches userspace). After a refused entry the registers are still the
/// ones userspace set, nothing in the exit is a host address, and a valid
/// state then runs.
fn invalid_sregs_refused() -> TestResult {
    /// VMEXIT_INVALID (APM Vol. 2, Appendix C): -1.
    const VMEXIT_INVALID: u32 = pacifica::hw::svm::exit::INVALID as u32;
    let mut vm = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
    let good = initial_sregs(Mode::Long64);
    let bad_states = [
        ("long mode without CR4.PAE", uapi::Sregs { cr4: 0, ..good }),
        (
            "long mode without CR0.PE",
            uapi::Sregs {
                cr0: cr0::PG | cr0::ET,
                ..good
            },
        ),
        (
            "CR0.NW without CR0.CD",
            uapi::Sregs {
                cr0: cr0::PG | cr0::NW | cr0::ET | cr0::PE,
                ..good
            },
        ),
        (
            "a 64-bit CS with D set too",
            uapi::Sregs {
                cs: uapi::Segment {
                    attrib: good.cs.attrib | attr::DB,
                    ..good.cs
                },
                ..good
            },
        ),
        (
            "a reserved word that is not zero",
            uapi::Sregs {
                reserved: [0, 0, 0, 1, 0, 0, 0, 0],
                ..good
            },
        ),
    ];
    let mut cases = Cases::default();
    for (what, sregs) in bad_states {
        if let Err(e) = vm.vcpu.set_sregs(&sregs) {
            cases.check(expect_errno(
                &format!("SET_SREGS with {what}"),
                Err::<(), _>(e),
                &[EINVAL],
            ));
            continue;
        }
        let regs = initial_regs(hlt::HLT64, STACK_TOP);
        cases.check(vm.vcpu.set_regs(&regs).context("SET_REGS"));
        let outcome = run_vcpu(&mut vm.vcpu, &mut vm.log, RUN_TIMEOUT, |exit| {
            Flow::Stop(match exit {
                Exit::FailEntry(i) => Ok(i.rip),
                Exit::InternalError(i) if i.exit_code as u32 == VMEXIT_INVALID => Err(format!(
                    "VMRUN refused the state, but the module reported an internal error \
                     instead of PACIFICA_EXIT_FAIL_ENTRY: {}",
                    describe_exit(exit)
                )),
                other => Err(format!("the guest ran: {}", describe_exit(other))),
            })
        });
        let reported_rip = match outcome {
            Ok(Ok(rip)) => {
                diag!("{what}: FailEntry");
                Some(rip)
            }
            Ok(Err(msg)) => {
                cases.0.push(format!("{what}: {msg}"));
                None
            }
            Err(Failure::Fail(msg)) if msg.contains("EINVAL") => {
                diag!("{what}: {msg}");
                None
            }
            Err(Failure::Fail(msg) | Failure::Skip(msg)) => {
                cases.0.push(format!("{what}: {msg}"));
                None
            }
        };
        let rip_now = vm.regs()?.rip;
        for rip in reported_rip.into_iter().chain([rip_now]) {
            if rip >= 0xffff_8000_0000_0000 {
                cases.0.push(format!(
                    "{what}: after the refused entry a RIP of {rip:#x} reaches userspace, a \
                     host kernel address (the VMCB save area after VMEXIT_INVALID is not guest state)"
                ));
            }
        }
        if rip_now != regs.rip && rip_now < 0xffff_8000_0000_0000 {
            cases.0.push(format!(
                "{what}: RIP {rip_now:#x} after the refused entry, set {:#x}",
                regs.rip
            ));
        }
    }
    // Whatever happened above, a valid state must run.
    let recovered = vm
        .vcpu
        .set_sregs(&good)
        .context("SET_SREGS with the valid state")
        .and_then(|_| {
            vm.vcpu
                .set_regs(&initial_regs(hlt::HLT64, STACK_TOP))
                .context("SET_REGS")
        })
        .and_then(|_| vm.run_to_hlt());
    cases.check(recovered.map_err(|e| e.prefixed("with a valid state again")));
    cases.finish()
}

/// mmap of a vCPU fd beyond its one page, and of fds that have nothing to
/// map, fails (the errno is the module's choice; printed).
fn mmap_rules() -> TestResult {
    let vm = TestVm::new(Mode::Long64, hlt::IMAGE, hlt::HLT64)?;
    let sys = open()?;
    let try_map = |fd: RawFd, len: usize, offset: i64| -> std::io::Result<()> {
        // SAFETY: a shared mapping of a device fd at a kernel-chosen
        // address; on success it is unmapped right away.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                offset,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the mapping just created.
        unsafe { libc::munmap(ptr, len) };
        Ok(())
    };
    let mut cases = Cases::default();
    let any = &[EINVAL, libc::ENXIO, libc::ENODEV, libc::EACCES, libc::EPERM];
    let vcpu = vm.vcpu.as_raw_fd();
    cases.check(expect_errno(
        "mmap of the vCPU fd at offset 4096",
        try_map(vcpu, 4096, 4096),
        any,
    ));
    cases.check(expect_errno(
        "mmap of 2 pages of the vCPU fd",
        try_map(vcpu, 8192, 0),
        any,
    ));
    cases.check(expect_errno(
        "mmap of the VM fd",
        try_map(vm.vm.as_raw_fd(), 4096, 0),
        any,
    ));
    cases.check(expect_errno(
        "mmap of the device fd",
        try_map(sys.as_raw_fd(), 4096, 0),
        any,
    ));
    cases.check(try_map(vcpu, 4096, 0).context("mmap of the vCPU's run page"));
    cases.finish()
}

/// Runs `vcpu` in a new thread until a kick after `delay`; returns what
/// the run ended with (an error, or a description of the exit).
fn run_in_thread(
    mut vcpu: Vcpu,
    delay: Duration,
    started: Arc<AtomicBool>,
) -> thread::JoinHandle<(Vcpu, String)> {
    thread::spawn(move || {
        let _kick = Watchdog::arm(delay);
        started.store(true, Ordering::SeqCst);
        let outcome = match vcpu.run() {
            Ok(exit) => describe_exit(&exit),
            Err(e) => format!("RUN failed: {}", describe(&e)),
        };
        (vcpu, outcome)
    })
}

fn wait_started(started: &AtomicBool) {
    while !started.load(Ordering::SeqCst) {
        thread::yield_now();
    }
    // Let the thread get into the guest.
    thread::sleep(Duration::from_millis(300));
}

/// Unmapping guest RAM while another thread runs the guest that writes it:
/// the process survives, the vCPU stops on a signal as usual, and
/// destroying the VM releases the pinned pages.
fn munmap_guest_memory_while_running() -> TestResult {
    let before = module_info()?;
    {
        let TestVm {
            vcpu, vm, mem, sys, ..
        } = TestVm::new(Mode::Long64, spin::IMAGE, spin::SPIN_WRITE64)?;
        let started = Arc::new(AtomicBool::new(false));
        let runner = run_in_thread(vcpu, Duration::from_millis(1000), started.clone());
        wait_started(&started);
        // SAFETY: the mapping belongs to `mem`, which is forgotten right
        // after, so nothing unmaps or touches it again.
        let ret = unsafe { libc::munmap(mem.as_ptr().cast(), mem.size()) };
        std::mem::forget(mem);
        ensure_eq!(ret, 0, "munmap of guest RAM");
        let (mut vcpu, outcome) = runner
            .join()
            .map_err(|_| Failure::Fail("the vCPU thread panicked".into()))?;
        diag!("the run during munmap ended with: {outcome}");
        ensure!(
            outcome.contains("EINTR"),
            "the run during munmap ended with {outcome}, expected EINTR"
        );
        let info = sys.info().context("GET_INFO")?;
        diag!("pinned pages with the RAM unmapped: {}", info.pages_pinned);
        // Once more, after the unmap: anything but a hang or a crash.
        let _kick = Watchdog::arm(Duration::from_millis(500));
        let again = vcpu
            .run()
            .map(|e| describe_exit(&e))
            .map_err(|e| describe(&e));
        diag!("running again after munmap: {again:?}");
        drop(_kick);
        drop(vcpu);
        drop(vm);
    }
    ensure_back_to(&before, "destroying the VM whose RAM was unmapped")
}

/// Closing the VM fd (and the device fd) while a vCPU runs: the vCPU keeps
/// its VM alive and goes on working; closing it then destroys the VM.
fn close_vm_fd_while_vcpu_runs() -> TestResult {
    let before = module_info()?;
    {
        let TestVm {
            vcpu,
            vm,
            mem,
            sys,
            mut log,
            ..
        } = TestVm::new(Mode::Long64, spin::IMAGE, spin::SPIN64)?;
        let started = Arc::new(AtomicBool::new(false));
        let runner = run_in_thread(vcpu, Duration::from_millis(1000), started.clone());
        wait_started(&started);
        drop(vm);
        drop(sys);
        let (mut vcpu, outcome) = runner
            .join()
            .map_err(|_| Failure::Fail("the vCPU thread panicked".into()))?;
        ensure!(
            outcome.contains("EINTR"),
            "the run ended with {outcome}, expected EINTR"
        );
        let mut regs = vcpu
            .get_regs()
            .context("GET_REGS after the VM fd was closed")?;
        regs.rip = spin::HALT64;
        vcpu.set_regs(&regs)
            .context("SET_REGS after the VM fd was closed")?;
        run_vcpu(&mut vcpu, &mut log, RUN_TIMEOUT, until_hlt)
            .map_err(|e| e.prefixed("running after the VM fd was closed"))?;
        ensure_eq!(vcpu.get_regs()?.rax, 0x600d, "RAX at halt64");
        drop(vcpu);
        drop(mem);
    }
    ensure_back_to(&before, "closing the vCPU fd last")
}

fn main() {
    tap::run(&[
        test!(get_info_bad_pointers),
        test!(vcpu_ioctls_bad_pointers),
        test!(set_memory_region_bad_pointers),
        test!(unknown_ioctls),
        test!(ioctls_on_wrong_fd_kind),
        test!(create_vm_paging_modes),
        test!(memory_region_invalid_fields),
        test!(memory_region_bad_userspace_addr),
        test!(memory_region_reuse_and_overlap),
        test!(create_vcpu_bad_ids),
        test!(create_irqchip_rules),
        test!(lapic_state_bad_input),
        test!(injection_bad_input),
        test!(run_before_registers_set),
        test!(run_without_memory),
        test!(invalid_sregs_refused),
        test!(mmap_rules),
        test!(munmap_guest_memory_while_running),
        test!(close_vm_fd_while_vcpu_runs),
    ]);
}

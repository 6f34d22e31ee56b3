// SPDX-License-Identifier: GPL-2.0

//! A VM: its memory and the vCPUs created from it.

use crate::global;
use crate::mm::guest::GuestMemory;
use crate::uapi;
use crate::irq::inbox::Msi;
use crate::hw::apic::lvt;
use crate::vcpu::{Vcpu, VcpuIrq};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::prelude::*;
use kernel::sync::{new_mutex, Arc, Mutex};

/// How guest-physical addresses reach host memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Paging {
    /// Hardware nested paging.
    Npt,
    /// Software shadow paging (`mm/shadow.rs`).
    Shadow,
}

impl Paging {
    /// The mode `PACIFICA_CREATE_VM`'s argument asks for.
    pub(crate) fn from_uapi(arg: u64) -> Result<Self> {
        match arg {
            uapi::PACIFICA_PAGING_NPT => Ok(Paging::Npt),
            uapi::PACIFICA_PAGING_SHADOW => Ok(Paging::Shadow),
            _ => Err(EINVAL),
        }
    }
}

/// A virtual machine.
#[pin_data(PinnedDrop)]
pub(crate) struct Vm {
    pub(crate) paging: Paging,
    /// Guest memory and its nested page tables.
    #[pin]
    pub(crate) mem: Mutex<GuestMemory>,
    /// Bit n set: vCPU n was created; [`IRQCHIP`] set: the vCPUs get an
    /// in-kernel local APIC. One word, so that CREATE_IRQCHIP and
    /// CREATE_VCPU racing in two threads agree on which came first.
    vcpu_ids: AtomicU32,
    /// The inboxes of the vCPUs' local APICs, for MSIs.
    #[pin]
    irqs: Mutex<KVec<Arc<VcpuIrq>>>,
}

/// The `vcpu_ids` bit of `PACIFICA_CREATE_IRQCHIP`.
const IRQCHIP: u32 = 1 << 31;
const VCPU_BITS: u32 = (1 << uapi::PACIFICA_MAX_VCPUS) - 1;
const _: () = assert!(uapi::PACIFICA_MAX_VCPUS < 31);

impl Vm {
    /// Creates a VM with no memory and no vCPUs.
    pub(crate) fn new(paging: Paging) -> Result<Arc<Self>> {
        let mem = GuestMemory::new()?;
        let vm = Arc::pin_init(
            pin_init!(Vm {
                paging,
                mem <- new_mutex!(mem, "Vm::mem"),
                vcpu_ids: AtomicU32::new(0),
                irqs <- new_mutex!(KVec::new(), "Vm::irqs"),
            }),
            GFP_KERNEL_ACCOUNT,
        )?;
        global::get().nr_vms.fetch_add(1, Ordering::Relaxed);
        Ok(vm)
    }

    /// `PACIFICA_SET_MEMORY_REGION`.
    pub(crate) fn set_memory_region(&self, r: &uapi::MemoryRegion) -> Result {
        self.mem.lock().add(r)
    }

    /// How many vCPUs were created.
    pub(crate) fn nr_vcpus(&self) -> u32 {
        (self.vcpu_ids.load(Ordering::Acquire) & VCPU_BITS).count_ones()
    }

    /// `PACIFICA_CREATE_IRQCHIP`: local APICs for the vCPUs to come.
    pub(crate) fn create_irqchip(&self) -> Result {
        self.vcpu_ids
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| (v == 0).then_some(IRQCHIP))
            .map(|_| ())
            .map_err(|v| if v & IRQCHIP != 0 { EEXIST } else { EBUSY })
    }

    /// `PACIFICA_CREATE_VCPU`: reserves `id` and builds the vCPU.
    pub(crate) fn create_vcpu(self: &Arc<Self>, id: u64) -> Result<Arc<Vcpu>> {
        if id >= u64::from(uapi::PACIFICA_MAX_VCPUS) {
            return Err(EINVAL);
        }
        let bit = 1u32 << id;
        let ids = self.vcpu_ids.fetch_or(bit, Ordering::AcqRel);
        if ids & bit != 0 {
            return Err(EEXIST);
        }
        let vcpu = Vcpu::new(self.clone(), id as u32, ids & IRQCHIP != 0).and_then(|vcpu| {
            if let Some(irq) = &vcpu.irq {
                self.irqs.lock().push(irq.clone(), GFP_KERNEL_ACCOUNT)?;
            }
            Ok(vcpu)
        });
        vcpu.inspect_err(|_| {
            self.vcpu_ids.fetch_and(!bit, Ordering::AcqRel);
        })
    }

    /// `PACIFICA_SIGNAL_MSI`: delivers the message to every local APIC it
    /// names (to the first one for lowest priority, which is delivered as
    /// fixed to one of its destinations) and returns how many accepted
    /// it. EINVAL for a malformed message or an unsupported delivery
    /// mode; ENXIO without an in-kernel APIC.
    pub(crate) fn signal_msi(&self, m: &uapi::Msi) -> Result<u32> {
        if self.vcpu_ids.load(Ordering::Acquire) & IRQCHIP == 0 {
            return Err(ENXIO);
        }
        let Some(msi) = Msi::decode(m.address, m.data, m.flags).map_err(|_| EINVAL)? else { return Ok(0) };
        let mut accepted = 0;
        for irq in self.irqs.lock().iter() {
            let d = irq.inbox.destination();
            if !d.accepts(msi.dest, msi.logical) {
                continue;
            }
            if msi.delivery == lvt::DM_NMI {
                irq.inbox.post_nmi();
            } else {
                irq.inbox.post(msi.vector, msi.level_triggered);
            }
            irq.kick();
            accepted += 1;
            if msi.delivery == lvt::DM_LOWEST {
                break;
            }
        }
        Ok(accepted)
    }
}

#[pinned_drop]
impl PinnedDrop for Vm {
    fn drop(self: Pin<&mut Self>) {
        global::get().nr_vms.fetch_sub(1, Ordering::Relaxed);
    }
}

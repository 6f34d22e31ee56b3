// SPDX-License-Identifier: GPL-2.0

//! The PC platform that Linux guests run on, emulated in the VMM.
//!
//! | where                    | what                                          |
//! |--------------------------|-----------------------------------------------|
//! | ports 0x20-0x21, 0xa0-0xa1, 0x4d0-0x4d1 | the 8259A pair and its ELCR ([`pic`]) |
//! | ports 0x40-0x43, 0x61    | the 8254 PIT on IRQ 0 and port B ([`pit`])    |
//! | ports 0x60, 0x64         | the 8042, for its reset command ([`reset`])   |
//! | ports 0x70-0x71          | CMOS RAM and the real-time clock ([`cmos`])    |
//! | ports 0x3f8-0x3ff        | COM1, a 16550A on ISA IRQ 4                     |
//! | port 0xcf9               | the reset control register ([`reset`])         |
//! | port 0xf4                | the exit port: a byte ends the run with it     |
//! | 0xfec00000-0xfec00fff    | the I/O APIC, 24 pins ([`ioapic`])             |
//! | 0xfee00000-0xfee00fff    | the local APIC, in the hypervisor              |
//!
//! and in memory the MP table ([`mptable`]) and the e820 map the loader
//! writes. The interrupt controllers are one [`IrqChip`], shared between
//! the vCPU's thread (the guest's accesses, the EOI and INTA exits) and the
//! console's input thread (received bytes raise IRQ 4); both reach the
//! hypervisor through an [`InterruptSink`]: MSIs for the I/O APIC's
//! messages, the LINT0 level for the 8259's output. Channel 0 of the PIT
//! has a thread of its own that raises IRQ 0 when the counter says so.

pub mod cmos;
pub mod ioapic;
pub mod mptable;
pub mod pic;
pub mod pit;
pub mod reset;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use vm_superio::Trigger;

use crate::devices::{Action, Bus, Device, Devices, ExitPort, Serial, COM1_BASE, COM1_LEN, EXIT_PORT};
use ioapic::{Ioapic, Msi, IOAPIC_BASE, IOAPIC_LEN};
use pic::Pic;

/// COM1's ISA interrupt.
pub const COM1_IRQ: u8 = 4;

/// Where the interrupt controllers' outputs go: the hypervisor's local
/// APICs. Failures cannot be reported to the guest (real buses drop a
/// message nobody accepts), so a sink only counts them.
pub trait InterruptSink: Send {
    /// Delivers an MSI (the I/O APIC's messages).
    fn msi(&self, msi: Msi) -> std::io::Result<()>;
    /// Sets the level of the BSP's LINT0, the 8259's INT output.
    fn set_extint(&self, level: bool) -> std::io::Result<()>;
}

/// The PIC pair and the I/O APIC, and the sink their outputs go to.
pub struct IrqChip {
    pic: Pic,
    ioapic: Ioapic,
    sink: Box<dyn InterruptSink>,
    /// The LINT0 level last given to the sink.
    extint: bool,
    /// Messages or LINT0 changes the hypervisor refused.
    pub refused: u64,
}

/// An [`IrqChip`] shared between threads.
pub type SharedIrqChip = Arc<Mutex<IrqChip>>;

/// Locks `m`; a panic aborts the process, so no guard is ever poisoned.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl IrqChip {
    /// Fresh controllers for a machine of `cpus` CPUs.
    pub fn new(cpus: u8, sink: Box<dyn InterruptSink>) -> Self {
        Self {
            pic: Pic::new(),
            ioapic: Ioapic::new(mptable::ioapic_id(cpus)),
            sink,
            extint: false,
            refused: 0,
        }
    }

    fn send(&mut self, msi: Option<Msi>) {
        if let Some(msi) = msi {
            if self.sink.msi(msi).is_err() {
                self.refused += 1;
            }
        }
    }

    fn update_extint(&mut self) {
        let level = self.pic.output();
        if level != self.extint {
            self.extint = level;
            if self.sink.set_extint(level).is_err() {
                self.refused += 1;
            }
        }
    }

    /// Sets ISA interrupt line `irq` (0-15): the 8259 input of that number
    /// and the I/O APIC pin the MP table gives it.
    pub fn set_irq(&mut self, irq: u8, level: bool) {
        self.pic.set_irq(irq, level);
        let msi = self.ioapic.set_line(usize::from(mptable::isa_irq_pin(irq)), level);
        self.send(msi);
        self.update_extint();
    }

    /// An edge on `irq`: raised, then lowered.
    pub fn pulse(&mut self, irq: u8) {
        self.set_irq(irq, true);
        self.set_irq(irq, false);
    }

    /// The CPU acknowledges the 8259's interrupt: its vector.
    pub fn acknowledge(&mut self) -> u8 {
        let vector = self.pic.acknowledge();
        self.update_extint();
        vector
    }

    /// A local APIC's EOI of a level-triggered `vector`.
    pub fn eoi(&mut self, vector: u8) {
        for msi in self.ioapic.eoi(vector) {
            self.send(Some(msi));
        }
    }

    /// The I/O APIC's redirection entry for `pin` (for tests and
    /// diagnostics).
    pub fn ioapic_entry(&self, pin: usize) -> u64 {
        self.ioapic.entry(pin)
    }
}

/// The bus device for the 8259 ports (one per range, `base` absolute).
struct PicPorts {
    chip: SharedIrqChip,
    base: u64,
}

impl Device for PicPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let mut chip = lock(&self.chip);
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = chip.pic.read(self.base + offset + i as u64);
        }
        chip.update_extint();
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Action {
        let mut chip = lock(&self.chip);
        for (i, &byte) in data.iter().enumerate() {
            chip.pic.write(self.base + offset + i as u64, byte);
        }
        chip.update_extint();
        Action::Continue
    }
}

/// The bus device for the I/O APIC's page.
struct IoapicMmio(SharedIrqChip);

impl Device for IoapicMmio {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        lock(&self.0).ioapic.mmio_read(offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Action {
        let mut chip = lock(&self.0);
        let msi = chip.ioapic.mmio_write(offset, data);
        chip.send(msi);
        Action::Continue
    }
}

/// The CMOS on the port bus.
struct CmosPorts(cmos::Cmos);

impl Device for CmosPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = self.0.read((offset + i as u64) & 1);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Action {
        for (i, &byte) in data.iter().enumerate() {
            self.0.write((offset + i as u64) & 1, byte);
        }
        Action::Continue
    }
}

/// The PIT, shared between the port bus and its interrupt thread.
struct PitShared {
    pit: Mutex<pit::Pit>,
    /// Signalled when the guest reprograms the PIT or the VM ends.
    changed: Condvar,
    stop: AtomicBool,
}

/// The bus device for the PIT's ports and port B (`base` absolute).
struct PitPorts {
    shared: Arc<PitShared>,
    base: u64,
}

impl Device for PitPorts {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let mut pit = lock(&self.shared.pit);
        let now = Instant::now();
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = pit.read(self.base + offset + i as u64, now);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Action {
        let mut pit = lock(&self.shared.pit);
        let now = Instant::now();
        for (i, &byte) in data.iter().enumerate() {
            pit.write(self.base + offset + i as u64, byte, now);
        }
        self.shared.changed.notify_one();
        Action::Continue
    }
}

/// The thread that turns channel 0's output into IRQ 0 edges; stopped and
/// joined when dropped.
pub struct PitTimer {
    shared: Arc<PitShared>,
    thread: Option<JoinHandle<()>>,
}

impl PitTimer {
    fn spawn(shared: Arc<PitShared>, chip: SharedIrqChip) -> Self {
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pit".into())
            .spawn(move || {
                let mut pit = lock(&s.pit);
                while !s.stop.load(Ordering::Acquire) {
                    let now = Instant::now();
                    let (fire, next) = pit.poll_irq(now);
                    if fire {
                        drop(pit);
                        lock(&chip).pulse(pit::PIT_IRQ);
                        pit = lock(&s.pit);
                        continue;
                    }
                    pit = match next {
                        Some(t) => {
                            let wait = t.saturating_duration_since(now);
                            s.changed.wait_timeout(pit, wait).unwrap_or_else(|e| e.into_inner()).0
                        }
                        None => s.changed.wait(pit).unwrap_or_else(|e| e.into_inner()),
                    };
                }
            })
            .ok();
        Self { shared, thread }
    }

    /// Channel 0 interrupts skipped because they came too late.
    pub fn missed(&self) -> u64 {
        lock(&self.shared.pit).missed
    }
}

impl Drop for PitTimer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        // Under the lock, so the thread is either waiting (and woken) or
        // about to test the flag.
        drop(lock(&self.shared.pit));
        self.shared.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The UART's interrupt output: each interrupt `vm-superio` raises is an
/// edge on an ISA line.
pub struct IrqPulse {
    chip: SharedIrqChip,
    irq: u8,
}

impl Trigger for IrqPulse {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        lock(&self.chip).pulse(self.irq);
        Ok(())
    }
}

/// COM1 of the PC, shared with the console's input thread.
pub type PcSerial<W> = Arc<Mutex<Serial<W, IrqPulse>>>;

/// The bus device for a shared UART.
struct SharedSerial<W: Write>(PcSerial<W>);

impl<W: Write> Device for SharedSerial<W> {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        lock(&self.0).read(offset, data);
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Action {
        lock(&self.0).write(offset, data)
    }
}

/// The PC's devices, and handles to the parts other threads drive.
pub struct Pc<W: Write> {
    /// The buses, for the run loop.
    pub devices: Devices,
    /// COM1, to queue the console's input.
    pub serial: PcSerial<W>,
    /// The PIT's interrupt thread, which runs until this is dropped.
    pub pit_timer: PitTimer,
}

/// The PC's devices for `cpus` CPUs, COM1 transmitting to `console`, the
/// interrupt controllers' outputs going to `sink`.
pub fn build<W: Write + Send + 'static>(cpus: u8, console: W, sink: Box<dyn InterruptSink>) -> Pc<W> {
    let chip: SharedIrqChip = Arc::new(Mutex::new(IrqChip::new(cpus, sink)));
    let serial = Arc::new(Mutex::new(Serial::with_interrupt(
        console,
        IrqPulse { chip: chip.clone(), irq: COM1_IRQ },
    )));
    let pit_shared = Arc::new(PitShared {
        pit: Mutex::new(pit::Pit::new()),
        changed: Condvar::new(),
        stop: AtomicBool::new(false),
    });
    let mut pio = Bus::new();
    let mut mmio = Bus::new();
    let pic = |base| Box::new(PicPorts { chip: chip.clone(), base });
    let pit = |base| Box::new(PitPorts { shared: pit_shared.clone(), base });
    [
        pio.insert("pic-master", pic::MASTER_CMD, 2, pic(pic::MASTER_CMD)),
        pio.insert("pic-slave", pic::SLAVE_CMD, 2, pic(pic::SLAVE_CMD)),
        pio.insert("elcr", pic::ELCR_BASE, 2, pic(pic::ELCR_BASE)),
        pio.insert("pit", pit::PIT_BASE, pit::PIT_LEN, pit(pit::PIT_BASE)),
        pio.insert("port-b", pit::PORT_B, 1, pit(pit::PORT_B)),
        pio.insert("i8042-data", reset::I8042_DATA_PORT, 1, Box::new(reset::I8042 { port: reset::I8042_DATA_PORT })),
        pio.insert("i8042-command", reset::I8042_COMMAND_PORT, 1, Box::new(reset::I8042 { port: reset::I8042_COMMAND_PORT })),
        pio.insert("cmos", cmos::CMOS_BASE, cmos::CMOS_LEN, Box::new(CmosPorts(cmos::Cmos::default()))),
        pio.insert("serial", COM1_BASE, COM1_LEN, Box::new(SharedSerial(serial.clone()))),
        pio.insert("reset", reset::RESET_CONTROL_PORT, 1, Box::new(reset::ResetControl::default())),
        pio.insert("exit", EXIT_PORT, 1, Box::new(ExitPort)),
        mmio.insert("ioapic", IOAPIC_BASE, IOAPIC_LEN, Box::new(IoapicMmio(chip.clone()))),
    ]
    .into_iter()
    .collect::<Result<Vec<()>, _>>()
    .expect("the PC's devices do not overlap");
    Pc {
        pit_timer: PitTimer::spawn(pit_shared, chip.clone()),
        devices: Devices { pio, mmio, irqchip: Some(chip) },
        serial,
    }
}

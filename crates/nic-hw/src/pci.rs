//! A PCI-like bus: devices with a configuration space, a register BAR and
//! MSI-X vectors; drivers that bind to them by ID table.
//!
//! Mirrors `drivers/pci` as a network driver sees it: `struct pci_dev`,
//! `struct pci_device_id` with `PCI_DEVICE()`, `pci_register_driver()`
//! calling `probe` for every matching device (`pci_match_id()`,
//! `pci_device_probe()`), `pci_enable_device()`, `pci_set_master()`,
//! `dma_set_mask_and_coherent()`, `pci_iomap()`, `pci_alloc_irq_vectors()`
//! and hot removal (`pci_stop_and_remove_bus_device()` → the driver's
//! `remove`).
//!
//! # Deviations from Linux
//!
//! - A BAR is not an address range but the device model itself:
//!   [`PciDev::pci_iomap`] hands the driver a typed handle on it, through
//!   which it does `rd32`/`wr32`.
//! - MSI-X vectors come from one [`IrqTable`] per bus: each device is given
//!   a block of lines when it is added, and
//!   [`PciDev::pci_alloc_irq_vectors`] programs the device's MSI-X table
//!   with them.
//! - Driver-private data is a `Box<dyn Any + Send>` returned by `probe` and
//!   handed back to `remove` (`pci_set_drvdata()`/`pci_get_drvdata()`).

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use irq::IrqTable;
use netcore::Errno;

/// Matches any vendor, device or subsystem id. `PCI_ANY_ID`.
pub const PCI_ANY_ID: u32 = !0;

/// `PCI_COMMAND` register offset in configuration space.
pub const PCI_COMMAND: usize = 0x04;
/// Memory space enable. `PCI_COMMAND_MEMORY`.
pub const PCI_COMMAND_MEMORY: u16 = 0x2;
/// Bus master enable. `PCI_COMMAND_MASTER`.
pub const PCI_COMMAND_MASTER: u16 = 0x4;

/// One entry of a driver's ID table.
///
/// Mirrors `struct pci_device_id` in `include/linux/mod_devicetable.h`.
#[doc(alias = "pci_device_id")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciDeviceId {
    /// Vendor id or [`PCI_ANY_ID`].
    pub vendor: u32,
    /// Device id or [`PCI_ANY_ID`].
    pub device: u32,
    /// Subsystem vendor id or [`PCI_ANY_ID`].
    pub subvendor: u32,
    /// Subsystem device id or [`PCI_ANY_ID`].
    pub subdevice: u32,
    /// Class code (24 bits), compared under `class_mask`.
    pub class: u32,
    /// Which class bits must match (0: any class).
    pub class_mask: u32,
    /// Data for the driver (igb stores its board type here).
    pub driver_data: usize,
}

impl PciDeviceId {
    /// Matches one vendor/device pair, any subsystem and class.
    ///
    /// Mirrors `PCI_DEVICE(vend, dev)` / `PCI_VDEVICE()`.
    #[doc(alias = "PCI_DEVICE")]
    pub const fn device(vendor: u16, device: u16, driver_data: usize) -> PciDeviceId {
        PciDeviceId {
            vendor: vendor as u32,
            device: device as u32,
            subvendor: PCI_ANY_ID,
            subdevice: PCI_ANY_ID,
            class: 0,
            class_mask: 0,
            driver_data,
        }
    }

    fn matches(&self, h: &PciConfigHeader) -> bool {
        let m = |want: u32, have: u16| want == PCI_ANY_ID || want == u32::from(have);
        m(self.vendor, h.vendor_id)
            && m(self.device, h.device_id)
            && m(self.subvendor, h.subsystem_vendor_id)
            && m(self.subdevice, h.subsystem_id)
            && (h.class ^ self.class) & self.class_mask == 0
    }
}

/// The first entry of `ids` that matches `header`.
///
/// Mirrors `pci_match_id()` in `drivers/pci/pci-driver.c`.
pub fn pci_match_id<'a>(
    ids: &'a [PciDeviceId],
    header: &PciConfigHeader,
) -> Option<&'a PciDeviceId> {
    ids.iter().find(|id| id.matches(header))
}

/// The read-only identity part of a type 0 configuration header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PciConfigHeader {
    /// `PCI_VENDOR_ID`.
    pub vendor_id: u16,
    /// `PCI_DEVICE_ID`.
    pub device_id: u16,
    /// `PCI_REVISION_ID`.
    pub revision: u8,
    /// `PCI_CLASS_PROG` .. `PCI_CLASS_DEVICE`: the 24-bit class code.
    pub class: u32,
    /// `PCI_SUBSYSTEM_VENDOR_ID`.
    pub subsystem_vendor_id: u16,
    /// `PCI_SUBSYSTEM_ID`.
    pub subsystem_id: u16,
}

/// What a device model offers the bus.
///
/// Mirrors the hardware side of a PCI function: its identity, the command
/// register's effect (memory decoding, bus mastering) and its MSI-X table.
pub trait PciFunction: Any + Send + Sync {
    /// The identity in configuration space.
    fn header(&self) -> PciConfigHeader;
    /// How many MSI-X vectors the function has (its table size).
    fn msix_vectors(&self) -> u16;
    /// The command register changed (`PCI_COMMAND_MASTER` gates DMA).
    fn command_write(&self, command: u16);
    /// Programs MSI-X table entry `vector` to raise `line` of `irqs`. The
    /// function must not keep `irqs` alive (hold a `Weak`): the table's
    /// handlers hold the function, so an owning handle would be a cycle.
    fn msix_table_write(&self, vector: u16, irqs: &Arc<IrqTable>, line: u32);
    /// Clears MSI-X table entry `vector`.
    fn msix_table_clear(&self, vector: u16);
    /// The function is being removed from the bus: stop all activity.
    fn surprise_remove(&self) {}
}

/// Why a bus operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PciError {
    /// No device at that address.
    NoSuchDevice {
        /// The address asked for.
        bdf: PciBdf,
    },
    /// A driver of that name is already registered.
    DriverExists {
        /// The driver's name.
        name: &'static str,
    },
    /// The bus's IRQ table has no lines left for the device's vectors.
    NoIrqLines {
        /// Lines the device needs.
        needed: u32,
        /// Lines left.
        left: u32,
    },
    /// The bus is full (32 device slots).
    BusFull,
}

impl fmt::Display for PciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PciError::NoSuchDevice { bdf } => write!(f, "no PCI device at {bdf}"),
            PciError::DriverExists { name } => write!(f, "driver {name} already registered"),
            PciError::NoIrqLines { needed, left } => {
                write!(f, "device needs {needed} IRQ lines, {left} left")
            }
            PciError::BusFull => write!(f, "bus full: accepts 32 devices"),
        }
    }
}

impl core::error::Error for PciError {}

/// A device address: domain 0, bus, device (slot), function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciBdf {
    /// Bus number.
    pub bus: u8,
    /// Device (slot) number, 0..32.
    pub dev: u8,
    /// Function number.
    pub func: u8,
}

impl fmt::Display for PciBdf {
    /// `pci_name()`: `0000:BB:DD.F`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0000:{:02x}:{:02x}.{}", self.bus, self.dev, self.func)
    }
}

/// A driver for PCI devices.
///
/// Mirrors `struct pci_driver` in `include/linux/pci.h`.
#[doc(alias = "pci_driver")]
pub trait PciDriver: Send + Sync {
    /// The driver's name (`ethtool -i` `driver:`).
    fn name(&self) -> &'static str;
    /// The devices it drives.
    fn id_table(&self) -> &[PciDeviceId];
    /// Binds to `pdev`, which matched `id`; returns the driver's private
    /// data, kept by the bus until `remove`.
    fn probe(&self, pdev: &mut PciDev, id: &PciDeviceId) -> Result<Box<dyn Any + Send>, Errno>;
    /// Unbinds from `pdev` (device removed or driver unregistered): must
    /// stop the device and release everything `probe` and `open` took.
    fn remove(&self, pdev: &mut PciDev, drvdata: Box<dyn Any + Send>);
}

/// One device on the bus.
///
/// Mirrors `struct pci_dev`.
#[doc(alias = "pci_dev")]
pub struct PciDev {
    bdf: PciBdf,
    header: PciConfigHeader,
    command: u16,
    function: Arc<dyn PciFunction>,
    bar0: Arc<dyn Any + Send + Sync>,
    irqs: Arc<IrqTable>,
    irq_base: u32,
    nvec: u16,
    allocated: u16,
    dma_mask: u64,
    enable_cnt: u32,
}

impl fmt::Debug for PciDev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PciDev")
            .field("bdf", &self.bdf)
            .field("header", &self.header)
            .field("command", &self.command)
            .finish_non_exhaustive()
    }
}

impl PciDev {
    /// The device's address.
    pub fn bdf(&self) -> PciBdf {
        self.bdf
    }

    /// `pci_name()`: `"0000:00:03.0"`.
    pub fn pci_name(&self) -> String {
        self.bdf.to_string()
    }

    /// The identity part of configuration space.
    pub fn header(&self) -> PciConfigHeader {
        self.header
    }

    /// Reads a 16-bit configuration register. Mirrors
    /// `pci_read_config_word()`; unimplemented registers read 0.
    pub fn pci_read_config_word(&self, offset: usize) -> u16 {
        match offset {
            0x00 => self.header.vendor_id,
            0x02 => self.header.device_id,
            PCI_COMMAND => self.command,
            0x0A => (self.header.class >> 8) as u16,
            0x2C => self.header.subsystem_vendor_id,
            0x2E => self.header.subsystem_id,
            _ => 0,
        }
    }

    fn write_command(&mut self, command: u16) {
        self.command = command;
        self.function.command_write(command);
    }

    /// Enables memory decoding. Mirrors `pci_enable_device_mem()` /
    /// `pci_enable_device()` (counted, as `enable_cnt`).
    #[doc(alias = "pci_enable_device_mem")]
    pub fn pci_enable_device(&mut self) -> Result<(), Errno> {
        self.enable_cnt += 1;
        self.write_command(self.command | PCI_COMMAND_MEMORY);
        Ok(())
    }

    /// Disables the device when the last enable is undone: memory decoding
    /// and bus mastering off. Mirrors `pci_disable_device()`.
    pub fn pci_disable_device(&mut self) {
        self.enable_cnt = self.enable_cnt.saturating_sub(1);
        if self.enable_cnt == 0 {
            self.write_command(self.command & !(PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER));
        }
    }

    /// Whether the device is enabled. Mirrors `pci_is_enabled()`.
    pub fn pci_is_enabled(&self) -> bool {
        self.enable_cnt > 0
    }

    /// Lets the device master the bus (DMA). Mirrors `pci_set_master()`.
    pub fn pci_set_master(&mut self) {
        self.write_command(self.command | PCI_COMMAND_MASTER);
    }

    /// Stops the device's DMA. Mirrors `pci_clear_master()`.
    pub fn pci_clear_master(&mut self) {
        self.write_command(self.command & !PCI_COMMAND_MASTER);
    }

    /// Sets the DMA mask. Mirrors `dma_set_mask_and_coherent()`: the
    /// simulated bus addresses 64 bits, so any mask of at least 32 bits is
    /// accepted; a smaller one fails with `EIO`, as an unusable mask does.
    pub fn dma_set_mask_and_coherent(&mut self, mask: u64) -> Result<(), Errno> {
        if mask < u64::from(u32::MAX) {
            return Err(Errno::Io);
        }
        self.dma_mask = mask;
        Ok(())
    }

    /// The DMA mask set by [`PciDev::dma_set_mask_and_coherent`] (0 before).
    pub fn dma_mask(&self) -> u64 {
        self.dma_mask
    }

    /// Maps BAR `bar` as a handle of type `T` (the device model's type), or
    /// `None` if the device is not enabled, the BAR does not exist or is of
    /// another type. Mirrors `pci_iomap()` / `pci_ioremap_bar()`.
    pub fn pci_iomap<T: Any + Send + Sync>(&self, bar: usize) -> Option<Arc<T>> {
        if bar != 0 || self.command & PCI_COMMAND_MEMORY == 0 {
            return None;
        }
        Arc::clone(&self.bar0).downcast::<T>().ok()
    }

    /// Allocates between `min` and `max` MSI-X vectors (as many as the
    /// device has, up to `max`) and programs the device's MSI-X table.
    /// Mirrors `pci_alloc_irq_vectors(pdev, min, max, PCI_IRQ_MSIX)`;
    /// fails with `ENOSPC` when fewer than `min` are available.
    pub fn pci_alloc_irq_vectors(&mut self, min: u16, max: u16) -> Result<u16, Errno> {
        let n = max.min(self.nvec);
        if n < min || n == 0 {
            return Err(Errno::NoSpc);
        }
        self.pci_free_irq_vectors();
        for v in 0..n {
            self.function
                .msix_table_write(v, &self.irqs, self.irq_base + u32::from(v));
        }
        self.allocated = n;
        Ok(n)
    }

    /// Releases the vectors and clears the MSI-X table.
    /// Mirrors `pci_free_irq_vectors()`.
    pub fn pci_free_irq_vectors(&mut self) {
        for v in 0..self.allocated {
            self.function.msix_table_clear(v);
        }
        self.allocated = 0;
    }

    /// The Linux IRQ number of vector `nr`. Mirrors `pci_irq_vector()`.
    pub fn pci_irq_vector(&self, nr: u16) -> Option<u32> {
        (nr < self.allocated).then(|| self.irq_base + u32::from(nr))
    }

    /// The IRQ table the device's vectors live in (to `request_irq`).
    pub fn irq_table(&self) -> &Arc<IrqTable> {
        &self.irqs
    }
}

struct Slot {
    pdev: PciDev,
    bound: Option<(Arc<dyn PciDriver>, Box<dyn Any + Send>)>,
}

/// A PCI bus with its devices and registered drivers.
///
/// Mirrors `struct pci_bus` together with the driver core's matching of
/// `bus_type pci_bus_type`.
pub struct PciBus {
    number: u8,
    irqs: Arc<IrqTable>,
    next_irq: u32,
    slots: Vec<Option<Slot>>,
    drivers: Vec<Arc<dyn PciDriver>>,
}

impl fmt::Debug for PciBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PciBus")
            .field("number", &self.number)
            .field("devices", &self.slots.iter().flatten().count())
            .field("drivers", &self.drivers.len())
            .finish_non_exhaustive()
    }
}

impl PciBus {
    /// An empty bus numbered `number` whose devices' MSI-X vectors are
    /// lines of `irqs` from `first_irq` on.
    pub fn new(number: u8, irqs: Arc<IrqTable>, first_irq: u32) -> PciBus {
        PciBus {
            number,
            irqs,
            next_irq: first_irq,
            slots: Vec::new(),
            drivers: Vec::new(),
        }
    }

    /// Plugs in a device: it gets the next free slot and a block of IRQ
    /// lines, and a registered driver whose table matches probes it.
    /// Mirrors `pci_bus_add_device()` (hotplug included).
    pub fn add_device<T: PciFunction>(&mut self, function: Arc<T>) -> Result<PciBdf, PciError> {
        let free = self.slots.iter().position(Option::is_none);
        if free.is_none() && self.slots.len() >= 32 {
            return Err(PciError::BusFull);
        }
        let nvec = function.msix_vectors();
        let left = self.irqs.nr_irqs().saturating_sub(self.next_irq);
        if u32::from(nvec) > left {
            return Err(PciError::NoIrqLines {
                needed: u32::from(nvec),
                left,
            });
        }
        let idx = free.unwrap_or(self.slots.len());
        let bdf = PciBdf {
            bus: self.number,
            dev: idx as u8,
            func: 0,
        };
        let pdev = PciDev {
            bdf,
            header: function.header(),
            command: 0,
            bar0: Arc::clone(&function) as Arc<dyn Any + Send + Sync>,
            function,
            irqs: Arc::clone(&self.irqs),
            irq_base: self.next_irq,
            nvec,
            allocated: 0,
            dma_mask: 0,
            enable_cnt: 0,
        };
        self.next_irq += u32::from(nvec);
        let slot = Slot { pdev, bound: None };
        if idx == self.slots.len() {
            self.slots.push(Some(slot));
        } else {
            self.slots[idx] = Some(slot);
        }
        let drivers = self.drivers.clone();
        if let Some(Some(slot)) = self.slots.get_mut(idx) {
            for drv in drivers {
                if Self::try_probe(slot, &drv) {
                    break;
                }
            }
        }
        Ok(bdf)
    }

    fn try_probe(slot: &mut Slot, drv: &Arc<dyn PciDriver>) -> bool {
        if slot.bound.is_some() {
            return false;
        }
        let Some(id) = pci_match_id(drv.id_table(), &slot.pdev.header).copied() else {
            return false;
        };
        match drv.probe(&mut slot.pdev, &id) {
            Ok(data) => {
                slot.bound = Some((Arc::clone(drv), data));
                true
            }
            Err(_) => false,
        }
    }

    /// Registers `driver` and probes every unbound device its table
    /// matches; returns how many it bound.
    /// Mirrors `pci_register_driver()` (`__pci_register_driver()` →
    /// `driver_attach()`).
    pub fn pci_register_driver(&mut self, driver: Arc<dyn PciDriver>) -> Result<usize, PciError> {
        if self.drivers.iter().any(|d| d.name() == driver.name()) {
            return Err(PciError::DriverExists {
                name: driver.name(),
            });
        }
        let mut bound = 0;
        for slot in self.slots.iter_mut().flatten() {
            if Self::try_probe(slot, &driver) {
                bound += 1;
            }
        }
        self.drivers.push(driver);
        Ok(bound)
    }

    /// Unbinds `name` from every device (calling `remove`) and forgets it.
    /// Mirrors `pci_unregister_driver()`.
    pub fn pci_unregister_driver(&mut self, name: &str) {
        for slot in self.slots.iter_mut().flatten() {
            if slot.bound.as_ref().is_some_and(|(d, _)| d.name() == name)
                && let Some((drv, data)) = slot.bound.take()
            {
                drv.remove(&mut slot.pdev, data);
            }
        }
        self.drivers.retain(|d| d.name() != name);
    }

    /// Removes the device at `bdf`, unbinding its driver first (which stops
    /// it while traffic may still flow). Mirrors
    /// `pci_stop_and_remove_bus_device()`.
    pub fn remove_device(&mut self, bdf: PciBdf) -> Result<(), PciError> {
        let idx = usize::from(bdf.dev);
        let slot = self
            .slots
            .get_mut(idx)
            .and_then(Option::take)
            .filter(|s| s.pdev.bdf == bdf);
        let Some(mut slot) = slot else {
            return Err(PciError::NoSuchDevice { bdf });
        };
        if let Some((drv, data)) = slot.bound.take() {
            drv.remove(&mut slot.pdev, data);
        }
        slot.pdev.function.surprise_remove();
        Ok(())
    }

    /// The device at `bdf`.
    pub fn device(&self, bdf: PciBdf) -> Option<&PciDev> {
        self.slots
            .get(usize::from(bdf.dev))?
            .as_ref()
            .map(|s| &s.pdev)
            .filter(|p| p.bdf == bdf)
    }

    /// The name of the driver bound to `bdf`, if any.
    pub fn driver_of(&self, bdf: PciBdf) -> Option<&'static str> {
        self.slots
            .get(usize::from(bdf.dev))?
            .as_ref()
            .filter(|s| s.pdev.bdf == bdf)?
            .bound
            .as_ref()
            .map(|(d, _)| d.name())
    }

    /// The addresses of every device, in slot order (`lspci`).
    pub fn devices(&self) -> Vec<PciBdf> {
        self.slots.iter().flatten().map(|s| s.pdev.bdf).collect()
    }
}

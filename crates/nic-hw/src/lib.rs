//! A simulated igb-class NIC, its bus, its driver and its wires.
//!
//! Mirrors `drivers/net/ethernet/intel/igb` and `drivers/pci`.
//!
//! It will hold the simulated NIC (MAC filter, FCS check, rx/tx descriptor
//! rings, interrupt moderation, RSS over up to 16 queues, checksum and TSO
//! offloads), a PCI-like bus with `pci_register_driver` and `probe`, the driver
//! implementing `netcore::NetDevice` and `netcore::EthtoolOps`, the in-memory
//! `VirtualWire` with netem-like impairments, and a Linux TAP backend.
//!
//! This crate is filled by issue 3; until then it holds only this
//! description.
#![deny(unsafe_code)]

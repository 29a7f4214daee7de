//! Hard IRQ lines and softirqs.
//!
//! Mirrors `kernel/irq` and `kernel/softirq.c`.
//!
//! It will hold IRQ descriptors (`request_irq`, `free_irq`, nested
//! `disable_irq`/`enable_irq`, affinity, per-CPU pending hard IRQs and counts
//! printable as `/proc/interrupts`) and softirqs (per-CPU pending bits for
//! `NET_TX`, `NET_RX` and `TIMER`, `raise_softirq`, and the `__do_softirq`
//! restart rule that hands work to ksoftirqd).
//!
//! This crate is filled by issue 3; until then it holds only this
//! description.
#![forbid(unsafe_code)]

//! Queueing disciplines for the transmit path.
//!
//! Mirrors `net/sched`.
//!
//! It will hold the `Qdisc` trait (enqueue, dequeue, peek, reset, stats) and
//! `pfifo_fast`, `pfifo`, `bfifo`, `fq_codel`, `tbf` and `noqueue`, with
//! statistics as `tc -s qdisc show` prints them.
//!
//! This crate is filled by issue 4; until then it holds only this
//! description.
#![forbid(unsafe_code)]

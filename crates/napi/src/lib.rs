//! NAPI and generic receive offload.
//!
//! Mirrors the NAPI half of `net/core/dev.c` and `net/core/gro.c`.
//!
//! It will hold `NapiStruct` with the state bits of `include/linux/netdevice.h`,
//! `napi_schedule_prep`, `__napi_schedule`, `napi_complete_done`, the
//! `NapiPoll` trait a driver implements, and GRO for TCP/IPv4.
//!
//! This crate is filled by issue 4; until then it holds only this
//! description.
#![forbid(unsafe_code)]

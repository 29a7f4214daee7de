//! The NAPI state bits and constants of `include/linux/netdevice.h`.

use bitflags::bitflags;

/// The default NAPI weight a driver passes to [`netif_napi_add`](crate::netif_napi_add):
/// at most this many packets per poll before the NAPI yields to others.
///
/// Mirrors `NAPI_POLL_WEIGHT` in `include/linux/netdevice.h`; the
/// `net.core.dev_weight` sysctl has the same default (see
/// [`dev_weight`](crate::dev_weight)).
pub const NAPI_POLL_WEIGHT: usize = 64;

/// The first NAPI id handed out; ids below it are reserved for CPU ids
/// (busy polling uses `sk_napi_id` for both).
///
/// Mirrors `MIN_NAPI_ID` (`NR_CPUS + 1`) with the default `NR_CPUS` of
/// x86-64 distribution kernels, 8192.
pub const MIN_NAPI_ID: u32 = 8192 + 1;

bitflags! {
    /// The bits of a NAPI's state word.
    ///
    /// Mirrors the `NAPI_STATE_*` bit numbers and `NAPIF_STATE_*` masks of
    /// `include/linux/netdevice.h`, in the kernel's order. The word itself
    /// is an atomic integer inside [`NapiStruct`](crate::NapiStruct); this
    /// type names and prints its bits ([`NapiStruct::state`](crate::NapiStruct::state)).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
    pub struct NapiState: usize {
        /// A poll is scheduled: whoever set it owns the NAPI until it is
        /// cleared (the one-poller guarantee).
        #[doc(alias = "NAPI_STATE_SCHED")]
        #[doc(alias = "NAPIF_STATE_SCHED")]
        const SCHED = 1 << 0;
        /// A schedule request came while SCHED was held: poll once more.
        #[doc(alias = "NAPI_STATE_MISSED")]
        #[doc(alias = "NAPIF_STATE_MISSED")]
        const MISSED = 1 << 1;
        /// `napi_disable` is pending: refuse new schedules.
        #[doc(alias = "NAPI_STATE_DISABLE")]
        #[doc(alias = "NAPIF_STATE_DISABLE")]
        const DISABLE = 1 << 2;
        /// Netpoll / disabled: do not dequeue from the poll list; completion
        /// is refused.
        #[doc(alias = "NAPI_STATE_NPSVC")]
        #[doc(alias = "NAPIF_STATE_NPSVC")]
        const NPSVC = 1 << 3;
        /// Added to the system's lists (`netif_napi_add`).
        #[doc(alias = "NAPI_STATE_LISTED")]
        #[doc(alias = "NAPIF_STATE_LISTED")]
        const LISTED = 1 << 4;
        /// Not in the NAPI hash: no busy polling.
        #[doc(alias = "NAPI_STATE_NO_BUSY_POLL")]
        #[doc(alias = "NAPIF_STATE_NO_BUSY_POLL")]
        const NO_BUSY_POLL = 1 << 5;
        /// A busy-polling socket owns the NAPI.
        #[doc(alias = "NAPI_STATE_IN_BUSY_POLL")]
        #[doc(alias = "NAPIF_STATE_IN_BUSY_POLL")]
        const IN_BUSY_POLL = 1 << 6;
        /// Prefer busy polling over softirq processing.
        #[doc(alias = "NAPI_STATE_PREFER_BUSY_POLL")]
        #[doc(alias = "NAPIF_STATE_PREFER_BUSY_POLL")]
        const PREFER_BUSY_POLL = 1 << 7;
        /// Polled by its own kthread rather than in softirq.
        #[doc(alias = "NAPI_STATE_THREADED")]
        #[doc(alias = "NAPIF_STATE_THREADED")]
        const THREADED = 1 << 8;
        /// Scheduled in threaded mode.
        #[doc(alias = "NAPI_STATE_SCHED_THREADED")]
        #[doc(alias = "NAPIF_STATE_SCHED_THREADED")]
        const SCHED_THREADED = 1 << 9;
    }
}

impl core::fmt::Display for NapiState {
    /// The set bits as `SCHED|MISSED`, or `0` when none is set.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.is_empty() {
            return f.write_str("0");
        }
        bitflags::parser::to_writer(self, f)
    }
}

//! A socket host for tests: the socket layer over `udp`'s back-to-back
//! fake IP layer.
//!
//! No kernel twin. [`FakeSocketHost`] implements [`SocketHost`] with a
//! [`FakeUdpCtx`] (behind a mutex, lent to each call) and the real
//! monotonic clock, so blocking calls and timeouts work across threads.

use std::sync::Arc;

use netcore::{Clock, MonotonicClock, Sysctl};
use parking_lot::Mutex;
use udp::testutil::{FakeUdpCtx, FakeUdpHost};

use crate::af_inet::UdpProtosw;
use crate::socket::{SocketHost, SocketLayer};

/// A host for socket-layer tests.
pub struct FakeSocketHost {
    /// The UDP side (table, counters, sysctls).
    pub udp: Arc<FakeUdpHost>,
    ctx: Mutex<FakeUdpCtx>,
    clock: MonotonicClock,
    /// Whether blocking calls may sleep (false imitates the simulation).
    pub can_sleep: bool,
}

impl std::fmt::Debug for FakeSocketHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSocketHost")
            .field("addr", &self.udp.addr)
            .finish_non_exhaustive()
    }
}

impl FakeSocketHost {
    /// Wraps `udp` in a socket layer with UDP registered.
    pub fn layer(udp: &Arc<FakeUdpHost>, can_sleep: bool) -> Arc<SocketLayer<FakeSocketHost>> {
        let host = Arc::new(FakeSocketHost {
            udp: Arc::clone(udp),
            ctx: Mutex::new(udp.ctx()),
            clock: MonotonicClock::new(),
            can_sleep,
        });
        let layer = SocketLayer::new(host);
        layer.inet_register_protosw(Arc::new(UdpProtosw));
        layer
    }

    /// Two hosts back to back (198.18.0.1 and 198.18.0.2), each with its
    /// socket layer.
    pub fn pair() -> (
        Arc<SocketLayer<FakeSocketHost>>,
        Arc<SocketLayer<FakeSocketHost>>,
    ) {
        let (a, b) = FakeUdpHost::pair();
        (
            FakeSocketHost::layer(&a, true),
            FakeSocketHost::layer(&b, true),
        )
    }
}

impl SocketHost for FakeSocketHost {
    type Ctx = FakeUdpCtx;

    fn with_ctx<R>(&self, f: impl FnOnce(&mut FakeUdpCtx) -> R) -> R {
        f(&mut self.ctx.lock())
    }

    fn clock(&self) -> &dyn Clock {
        &self.clock
    }

    fn sysctl(&self) -> &Sysctl {
        &self.udp.sysctl
    }

    fn can_sleep(&self) -> bool {
        self.can_sleep
    }
}

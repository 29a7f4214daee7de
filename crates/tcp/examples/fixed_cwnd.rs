//! A user-written congestion control plugged into the TCP from outside
//! the crate: a fixed window of `FIXED_CWND` segments whatever happens
//! (no slow start, no reduction on loss), registered by name and chosen
//! per socket with `TCP_CONGESTION`, then run over a 100 Mbit/s, 20 ms
//! bottleneck in virtual time.
//!
//! Run it with `cargo run -p tcp --example fixed_cwnd`.

use std::sync::Arc;

use netcore::Duration;
use tcp::testutil::{Bottleneck, Net};
use tcp::{CongestionOps, TcpContext, TcpCwnd};

/// The window the algorithm holds, in segments.
pub const FIXED_CWND: u32 = 20;

/// The algorithm: `snd_cwnd` pinned to [`FIXED_CWND`].
#[derive(Debug, Default)]
pub struct FixedCwnd;

impl CongestionOps for FixedCwnd {
    fn name(&self) -> &'static str {
        "fixed"
    }

    fn ssthresh(&mut self, tp: &TcpCwnd) -> u32 {
        // A loss changes nothing: recovery ends at the same window.
        tp.snd_cwnd.max(FIXED_CWND)
    }

    fn cong_avoid(&mut self, tp: &mut TcpCwnd, _ack: u32, _acked: u32) {
        tp.snd_cwnd = FIXED_CWND;
    }

    fn undo_cwnd(&mut self, _tp: &TcpCwnd, _prior_cwnd: u32) -> u32 {
        FIXED_CWND
    }
}

/// What one run measured.
#[derive(Debug)]
pub struct Outcome {
    /// The algorithm the sending socket reported.
    pub name: &'static str,
    /// `tcpi_snd_cwnd` every 10 ms after the first 100 ms.
    pub cwnds: Vec<u32>,
    /// Bytes the receiver read.
    pub received: u64,
    /// How long the transfer ran.
    pub elapsed: Duration,
}

/// Registers the algorithm, picks it for one connection, sends for one
/// second and samples the window.
pub fn run() -> Result<Outcome, netcore::Errno> {
    let mut net = Net::new(2);
    net.delay = Duration::from_millis(10);
    net.logging = false;
    net.bottleneck = Some(Bottleneck::one_bdp(100_000_000, Duration::from_millis(20)));
    // Buffers larger than the window, so only cwnd limits the flow.
    for h in &net.hosts {
        let sysctl = h.ctx.sysctl();
        sysctl
            .set("net.ipv4.tcp_wmem", "4096 1048576 4194304")
            .map_err(|_| netcore::Errno::Inval)?;
        sysctl
            .set("net.ipv4.tcp_rmem", "4096 1048576 6291456")
            .map_err(|_| netcore::Errno::Inval)?;
    }
    net.hosts[0]
        .stack
        .congestion
        .register("fixed", Arc::new(|| Box::new(FixedCwnd)))?;
    let (c, s) = net.connect_pair(5001);
    net.hosts[0]
        .stack
        .set_congestion_control(&net.hosts[0].ctx, &c, "fixed")?;
    let name = net.hosts[0].stack.congestion_control(&c);
    let chunk = vec![7u8; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let mut cwnds = Vec::new();
    let mut received = 0u64;
    let start = net.now();
    for ms in 1..=1000u64 {
        while net.send(0, &c, &chunk).is_ok_and(|n| n > 0) {}
        while let Ok(n) = net.recv(1, &s, &mut buf) {
            if n == 0 {
                break;
            }
            received += n as u64;
        }
        net.run_until_time(start + Duration::from_millis(ms));
        if ms > 100 && ms % 10 == 0 {
            let h = &net.hosts[0];
            cwnds.push(h.stack.tcp_info(&h.ctx, &c).snd_cwnd);
        }
    }
    Ok(Outcome {
        name,
        cwnds,
        received,
        elapsed: net.now().saturating_duration_since(start),
    })
}

fn main() {
    match run() {
        Ok(o) => {
            let mbit = o.received as f64 * 8.0 / o.elapsed.as_secs_f64() / 1e6;
            println!(
                "{}: cwnd {:?}..{:?}, {mbit:.1} Mbit/s",
                o.name,
                o.cwnds.iter().min(),
                o.cwnds.iter().max()
            );
        }
        Err(e) => eprintln!("fixed_cwnd: {e}"),
    }
}

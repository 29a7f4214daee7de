//! The `netstack` command: the demo, packet walks, networks described in
//! TOML, and a host on a TAP device serving and talking to real ones.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use netstack::{NetstackError, NetworkDesc, build_network};

/// A userspace TCP/IP stack shaped like Linux's, run in a simulated network.
#[derive(Parser, Debug)]
#[command(name = "netstack", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Two hosts with two CPUs each on a 10 Gbit/s wire: resolve ARP,
    /// ping, print round-trip times and key counters, write a pcap.
    Demo {
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write the capture of h1's eth0 (default:
        /// target/netstack-demo.pcap if target/ exists, else the temp dir).
        #[arg(long)]
        pcap: Option<PathBuf>,
    },
    /// Run the demo network and print the stages one ICMP echo request and
    /// its reply pass through on each host.
    Walk {
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Walk one TCP data segment of this many bytes (1..=1448) from h1
        /// to h2 and its ACK, instead of an ICMP echo.
        #[arg(long, value_name = "LEN")]
        tcp: Option<usize>,
    },
    /// Run a TCP bulk transfer h1 -> h2 on the demo's hosts, record the
    /// sender's tcp_probe trace and write cwnd.svg and tseq.svg.
    Plot {
        /// Seed of every random choice.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Bytes to send.
        #[arg(long, default_value_t = 1 << 20)]
        bytes: u64,
        /// Probability the wire drops a frame (each direction, 0..1).
        #[arg(long, default_value_t = 0.02)]
        loss: f64,
        /// Directory for the SVG files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Run a network and scenario described in a TOML file and print the
    /// reports it asks for.
    Run {
        /// The description (see docs/runtime.md for the format).
        file: PathBuf,
    },
    /// Attach a host to a TAP device and serve TCP/UDP echo (7), discard
    /// (9), chargen (19) and HTTP/1.1 (80) until Ctrl-C (see docs/hosts.md).
    Serve {
        #[command(flatten)]
        attach: AttachArgs,
    },
    /// HTTP/1.1 GET through a TAP-attached host; prints the time and the
    /// throughput on stderr.
    Get {
        /// http://A.B.C.D[:PORT][/PATH]
        url: String,
        /// Write the body here instead of standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Give up when no byte arrives for this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[command(flatten)]
        attach: AttachArgs,
    },
    /// Ping ADDR from a TAP-attached host.
    Ping {
        /// The destination.
        dst: std::net::Ipv4Addr,
        /// Echo requests to send.
        #[arg(short = 'c', default_value_t = 3)]
        count: u16,
        /// Seconds between requests.
        #[arg(short = 'i', default_value_t = 1.0)]
        interval: f64,
        /// Payload bytes.
        #[arg(short = 's', default_value_t = 56)]
        size: usize,
        #[command(flatten)]
        attach: AttachArgs,
    },
    /// Send each line of standard input as one UDP datagram to ADDR:PORT
    /// from a TAP-attached host and print the replies (like `nc -u`).
    Udp {
        /// The destination, A.B.C.D:PORT.
        dst: std::net::SocketAddrV4,
        /// Milliseconds to wait for a reply to each datagram.
        #[arg(long, default_value_t = 1000)]
        wait_ms: u64,
        #[command(flatten)]
        attach: AttachArgs,
    },
}

/// How a host attaches to a TAP device.
#[derive(clap::Args, Debug)]
struct AttachArgs {
    /// The TAP interface (created if absent; brought up).
    #[arg(long)]
    tap: String,
    /// The host's address, A.B.C.D/LEN.
    #[arg(long)]
    addr: String,
    /// Default gateway.
    #[arg(long)]
    gateway: Option<std::net::Ipv4Addr>,
    /// CPUs (threads) of the host.
    #[arg(long, default_value_t = 2)]
    cpus: usize,
    /// Write a pcap of the frames crossing the TAP here.
    #[arg(long)]
    pcap: Option<PathBuf>,
    /// Open the TAP without IFF_VNET_HDR offloads (one frame per write).
    #[arg(long)]
    no_offload: bool,
}

impl AttachArgs {
    fn config(&self) -> netstack::TapHostConfig {
        let mut c = netstack::TapHostConfig::new(&self.tap, &self.addr);
        c.gateway = self.gateway;
        c.cpus = self.cpus;
        c.pcap.clone_from(&self.pcap);
        c.offload = !self.no_offload;
        c
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netstack: {e}");
            ExitCode::from(match e {
                NetstackError::Parse { .. }
                | NetstackError::BadArgument { .. }
                | NetstackError::Config(_)
                | NetstackError::NoHost(_)
                | NetstackError::NoDevice(_) => 2,
                _ => 1,
            })
        }
    }
}

fn run(cmd: Command) -> Result<(), NetstackError> {
    match cmd {
        Command::Demo { seed, pcap } => {
            let path = pcap.unwrap_or_else(netstack::default_pcap_path);
            let out = netstack::run_demo(seed, &path)?;
            print!("{}", out.text);
            Ok(())
        }
        Command::Walk {
            seed,
            json,
            tcp: Some(len),
        } => {
            let w = netstack::run_tcp_walk(seed, len)?;
            if json {
                println!(
                    "{{\"data\": {}, \"ack\": {}}}",
                    w.data.to_json(),
                    w.ack.to_json()
                );
            } else {
                println!("TCP data segment h1 -> h2 ({len} bytes, 198.18.0.1 -> 198.18.0.2):");
                print!("{}", w.data.to_text());
                println!("\nIts ACK h2 -> h1, and the reader's tcp_recvmsg:");
                print!("{}", w.ack.to_text());
            }
            Ok(())
        }
        Command::Walk {
            seed,
            json,
            tcp: None,
        } => {
            let w = netstack::run_walk(seed)?;
            if json {
                println!(
                    "{{\"request\": {}, \"reply\": {}}}",
                    w.request.to_json(),
                    w.reply.to_json()
                );
            } else {
                println!("Echo request h1 -> h2 (198.18.0.1 -> 198.18.0.2):");
                print!("{}", w.request.to_text());
                println!("\nEcho reply h2 -> h1:");
                print!("{}", w.reply.to_text());
            }
            Ok(())
        }
        Command::Plot {
            seed,
            bytes,
            loss,
            out,
        } => {
            let r = netstack::run_plot(&netstack::PlotOptions {
                seed,
                bytes,
                loss,
                out,
            })?;
            println!(
                "{} bytes in {:?} (virtual), {} retransmitted segments, {} tcp_probe samples, {} cwnd reductions",
                r.bulk.bytes,
                r.bulk.virtual_time,
                r.bulk.retrans,
                r.trace.probes.len(),
                r.trace.cwnd_reductions()
            );
            println!("{}", r.cwnd_svg.display());
            println!("{}", r.tseq_svg.display());
            Ok(())
        }
        Command::Run { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| NetstackError::Config(format!("{}: {e}", file.display())))?;
            let desc = NetworkDesc::parse(&text).map_err(|e| with_file(&file, e))?;
            let built = build_network(&text, desc).map_err(|e| with_file(&file, e))?;
            let out = netstack::run_scenario(built)?;
            print!("{out}");
            Ok(())
        }
        Command::Serve { attach } => serve(&attach),
        Command::Get {
            url,
            output,
            timeout,
            attach,
        } => get(&url, output.as_deref(), timeout, &attach),
        Command::Ping {
            dst,
            count,
            interval,
            size,
            attach,
        } => {
            if !(interval.is_finite() && (0.0..=3600.0).contains(&interval)) {
                return Err(NetstackError::BadArgument {
                    name: "interval",
                    accepts: "0 to 3600 seconds",
                });
            }
            let th = netstack::TapHost::attach(&attach.config())?;
            let iv = std::time::Duration::from_secs_f64(interval);
            let r = netstack::ping(
                th.host(),
                dst,
                count,
                size,
                iv,
                std::time::Duration::from_secs(2),
            );
            th.stop()?;
            let r = r?;
            print!("{r}");
            if r.received() == 0 {
                return Err(NetstackError::Runtime(format!("no reply from {dst}")));
            }
            Ok(())
        }
        Command::Udp {
            dst,
            wait_ms,
            attach,
        } => {
            let mut payloads = Vec::new();
            for line in std::io::stdin().lines() {
                let line = line.map_err(|e| NetstackError::Io(format!("stdin: {e}")))?;
                payloads.push(format!("{line}\n").into_bytes());
            }
            let th = netstack::TapHost::attach(&attach.config())?;
            let r = netstack::udp_exchange(
                th.host(),
                dst,
                &payloads,
                std::time::Duration::from_millis(wait_ms),
            );
            th.stop()?;
            let replies = r?;
            let mut out = std::io::stdout().lock();
            for rep in &replies {
                out.write_all(rep)
                    .map_err(|e| NetstackError::Io(format!("stdout: {e}")))?;
            }
            eprintln!(
                "udp {dst}: {} datagrams sent, {} replies",
                payloads.len(),
                replies.len()
            );
            Ok(())
        }
    }
}

/// `netstack serve`: attach, serve until SIGINT/SIGTERM, print a summary.
fn serve(attach: &AttachArgs) -> Result<(), NetstackError> {
    // Block the stop signals before any thread starts, so only the wait
    // below takes them.
    let signals = nic_hw::StopSignals::block()
        .map_err(|e| NetstackError::Runtime(format!("blocking SIGINT/SIGTERM: {e}")))?;
    let th = netstack::TapHost::attach(&attach.config())?;
    let inetd = netstack::Inetd::start(th.host())?;
    println!(
        "netstack: serving on {} ({}): echo 7, discard 9, chargen 19 (TCP, UDP), http 80; Ctrl-C stops",
        th.tap_name(),
        attach.addr
    );
    let sig = signals
        .wait()
        .map_err(|e| NetstackError::Runtime(format!("sigwait: {e}")))?;
    let up = th.uptime();
    let summary = inetd.stop()?;
    let net = th.stop()?;
    println!(
        "\nnetstack: stopped by signal {sig} after {:.1} s",
        up.as_secs_f64()
    );
    print!("{summary}");
    let h = net.host(netstack::TAP_HOST_NAME)?;
    let st = h
        .shared()
        .dev("eth0")
        .map(|d| d.dev_get_stats())
        .unwrap_or_default();
    println!(
        "eth0: RX packets {} bytes {}  TX packets {} bytes {}",
        st.rx_packets, st.rx_bytes, st.tx_packets, st.tx_bytes
    );
    let m = h.shared().mibs.snapshot();
    println!(
        "Tcp: ActiveOpens {} PassiveOpens {} RetransSegs {} InErrs {} OutRsts {}",
        m.get(netcore::TcpMib::ActiveOpens),
        m.get(netcore::TcpMib::PassiveOpens),
        m.get(netcore::TcpMib::RetransSegs),
        m.get(netcore::TcpMib::InErrs),
        m.get(netcore::TcpMib::OutRsts)
    );
    Ok(())
}

/// `netstack get`.
fn get(
    url: &str,
    output: Option<&std::path::Path>,
    timeout: u64,
    attach: &AttachArgs,
) -> Result<(), NetstackError> {
    let url: netstack::HttpUrl = url.parse().map_err(NetstackError::Config)?;
    let mut sink: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p)
                .map_err(|e| NetstackError::Io(format!("{}: {e}", p.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let th = netstack::TapHost::attach(&attach.config())?;
    let r = netstack::http_get(
        th.host(),
        &url,
        &mut sink,
        std::time::Duration::from_secs(timeout.max(1)),
    );
    let flushed = sink.flush();
    th.stop()?;
    let r = r?;
    flushed.map_err(|e| NetstackError::Io(format!("writing the body: {e}")))?;
    eprintln!(
        "netstack get: HTTP {} {} bytes in {:.3} s ({:.3} Gbit/s)",
        r.status,
        r.bytes,
        r.elapsed.as_secs_f64(),
        r.gbps()
    );
    if r.status >= 400 {
        return Err(NetstackError::Runtime(format!("HTTP status {}", r.status)));
    }
    Ok(())
}

fn with_file(file: &std::path::Path, e: NetstackError) -> NetstackError {
    match e {
        NetstackError::Parse { line, problem } => {
            NetstackError::Config(format!("{}: line {line}: {problem}", file.display()))
        }
        other => other,
    }
}

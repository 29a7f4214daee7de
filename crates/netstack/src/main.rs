//! The `netstack` command: the demo, packet walks, and networks described
//! in TOML.

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
    },
    /// Run a network and scenario described in a TOML file and print the
    /// reports it asks for.
    Run {
        /// The description (see docs/runtime.md for the format).
        file: PathBuf,
    },
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
        Command::Walk { seed, json } => {
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
        Command::Run { file } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| NetstackError::Config(format!("{}: {e}", file.display())))?;
            let desc = NetworkDesc::parse(&text).map_err(|e| with_file(&file, e))?;
            let built = build_network(&text, desc).map_err(|e| with_file(&file, e))?;
            let out = netstack::run_scenario(built)?;
            print!("{out}");
            Ok(())
        }
    }
}

fn with_file(file: &std::path::Path, e: NetstackError) -> NetstackError {
    match e {
        NetstackError::Parse { line, problem } => {
            NetstackError::Config(format!("{}: line {line}: {problem}", file.display()))
        }
        other => other,
    }
}

//! Run configuration: packetdrill's command-line options.
//!
//! Mirrors `struct config` and `parse_and_finalize_config()` in packetdrill's
//! `config.c` for the options the corpus uses (GRAMMAR.md §4). The defaults
//! are the ones both harnesses pass (`run_all.py`, `ksft_runner.sh`), so a
//! run is deterministic.
//!
//! # Deviations from packetdrill
//!
//! packetdrill picks a random local address when none is given; we default to
//! the harnesses' fixed `192.168.0.1`. Options that only matter to a real
//! kernel (`--send_omit_free`, `--so_filename`, `--wire_*`) are refused as
//! unsupported rather than ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use super::ast::ScriptOption;

/// The address family a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpVersion {
    /// `ipv4`.
    Ipv4,
    /// `ipv4-mapped-ipv6`.
    Ipv4MappedIpv6,
    /// `ipv6`.
    Ipv6,
}

/// The settings of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// `--ip_version`.
    pub ip_version: IpVersion,
    /// `--local_ip`: the stack under test.
    pub local_ip: IpAddr,
    /// `--remote_ip`: the script's side.
    pub remote_ip: IpAddr,
    /// `--gateway_ip`.
    pub gateway_ip: IpAddr,
    /// `--netmask_ip`.
    pub netmask_ip: IpAddr,
    /// `--bind_port`: port of `bind(fd, ..., ...)`.
    pub bind_port: u16,
    /// `--connect_port`: port of `connect(fd, ..., ...)`.
    pub connect_port: u16,
    /// `--mtu` of the test device.
    pub mtu: u32,
    /// `--mss`: gso_size of oversized inbound packets.
    pub mss: Option<u16>,
    /// `--tolerance_usecs`.
    pub tolerance_usecs: i64,
    /// `--tolerance_percent`.
    pub tolerance_percent: f64,
    /// `--tcp_ts_tick_usecs`: when set, outbound TS val is checked.
    pub tcp_ts_tick_usecs: Option<u32>,
    /// `--tcp_ts_ecr_scaled`: inbound ecr may interpolate.
    pub tcp_ts_ecr_scaled: bool,
    /// `--strict_segments`: no TSO aggregation of sniffed packets.
    pub strict_segments: bool,
    /// `--define=NAME=value` and `-D NAME=value`.
    pub defines: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ip_version: IpVersion::Ipv4,
            local_ip: [192, 168, 0, 1].into(),
            remote_ip: [192, 0, 2, 1].into(),
            gateway_ip: [192, 168, 0, 1].into(),
            netmask_ip: [255, 255, 0, 0].into(),
            bind_port: 8080,
            connect_port: 8080,
            mtu: 1500,
            mss: None,
            tolerance_usecs: 4000,
            tolerance_percent: 12.5,
            tcp_ts_tick_usecs: None,
            tcp_ts_ecr_scaled: false,
            strict_segments: false,
            defines: BTreeMap::new(),
        }
    }
}

/// A bad or unsupported option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// Known option, bad value; says what it accepts.
    BadValue {
        /// Option name.
        name: String,
        /// What was given.
        value: String,
        /// What is accepted.
        accepts: &'static str,
    },
    /// An option the runner does not implement.
    Unsupported(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::BadValue {
                name,
                value,
                accepts,
            } => write!(f, "--{name}={value}: accepts {accepts}"),
            ConfigError::Unsupported(n) => write!(f, "unsupported option --{n}"),
        }
    }
}

impl std::error::Error for ConfigError {}

fn parse_val<T: std::str::FromStr>(
    name: &str,
    value: Option<&str>,
    accepts: &'static str,
) -> Result<T, ConfigError> {
    let bad = || ConfigError::BadValue {
        name: name.to_string(),
        value: value.unwrap_or("").to_string(),
        accepts,
    };
    value.ok_or_else(bad)?.parse().map_err(|_| bad())
}

impl Config {
    /// Applies one `--name[=value]` option.
    pub fn apply(&mut self, name: &str, value: Option<&str>) -> Result<(), ConfigError> {
        let flag = |v: Option<&str>| -> Result<bool, ConfigError> {
            match v {
                None | Some("1" | "true") => Ok(true),
                Some("0" | "false") => Ok(false),
                Some(other) => Err(ConfigError::BadValue {
                    name: name.to_string(),
                    value: other.to_string(),
                    accepts: "no value, 0/1 or true/false",
                }),
            }
        };
        match name {
            "ip_version" => {
                self.ip_version = match value {
                    Some("ipv4") => IpVersion::Ipv4,
                    Some("ipv4-mapped-ipv6") => IpVersion::Ipv4MappedIpv6,
                    Some("ipv6") => IpVersion::Ipv6,
                    _ => {
                        return Err(ConfigError::BadValue {
                            name: name.into(),
                            value: value.unwrap_or("").into(),
                            accepts: "ipv4, ipv4-mapped-ipv6 or ipv6",
                        });
                    }
                };
            }
            "local_ip" => self.local_ip = parse_val(name, value, "an IP address")?,
            "remote_ip" => self.remote_ip = parse_val(name, value, "an IP address")?,
            "gateway_ip" => self.gateway_ip = parse_val(name, value, "an IP address")?,
            "netmask_ip" => self.netmask_ip = parse_val(name, value, "an IP address")?,
            "bind_port" => self.bind_port = parse_val(name, value, "a port 0-65535")?,
            "connect_port" => self.connect_port = parse_val(name, value, "a port 0-65535")?,
            "mtu" => self.mtu = parse_val(name, value, "an MTU in bytes")?,
            "mss" => self.mss = Some(parse_val(name, value, "an MSS 1-65535")?),
            "tolerance_usecs" => {
                self.tolerance_usecs = parse_val(name, value, "microseconds (an integer)")?;
            }
            "tolerance_percent" => {
                self.tolerance_percent = parse_val(name, value, "a percentage")?;
            }
            "tcp_ts_tick_usecs" => {
                let v: u32 = parse_val(name, value, "microseconds per tick, > 0")?;
                if v == 0 {
                    return Err(ConfigError::BadValue {
                        name: name.into(),
                        value: "0".into(),
                        accepts: "microseconds per tick, > 0",
                    });
                }
                self.tcp_ts_tick_usecs = Some(v);
            }
            "tcp_ts_ecr_scaled" => self.tcp_ts_ecr_scaled = flag(value)?,
            "strict_segments" => self.strict_segments = flag(value)?,
            "define" => {
                let (k, v) =
                    value
                        .and_then(|v| v.split_once('='))
                        .ok_or_else(|| ConfigError::BadValue {
                            name: name.into(),
                            value: value.unwrap_or("").into(),
                            accepts: "NAME=value",
                        })?;
                self.defines.insert(k.to_string(), v.to_string());
            }
            // Accepted and meaningless in virtual time.
            "send_omit_free" | "verbose" | "dry_run" => {}
            other => return Err(ConfigError::Unsupported(other.to_string())),
        }
        Ok(())
    }

    /// The defaults with the script's own options applied in order.
    pub fn from_script_options(options: &[ScriptOption]) -> Result<Self, (u32, ConfigError)> {
        let mut c = Config::default();
        for o in options {
            c.apply(&o.name, o.value.as_deref())
                .map_err(|e| (o.line, e))?;
        }
        if c.ip_version == IpVersion::Ipv6 && c.mtu == 1500 {
            // Both harnesses run the v6 pass with --mtu=1520.
            c.mtu = 1520;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(name: &str, value: Option<&str>) -> ScriptOption {
        ScriptOption {
            line: 1,
            name: name.into(),
            value: value.map(Into::into),
        }
    }

    #[test]
    fn script_options_override_defaults() {
        let c = Config::from_script_options(&[
            opt("mss", Some("1000")),
            opt("tolerance_usecs", Some("7000")),
            opt("tcp_ts_tick_usecs", Some("1000")),
            opt("strict_segments", None),
            opt("local_ip", Some("198.18.0.1")),
        ])
        .unwrap();
        assert_eq!(c.mss, Some(1000));
        assert_eq!(c.tolerance_usecs, 7000);
        assert_eq!(c.tcp_ts_tick_usecs, Some(1000));
        assert!(c.strict_segments);
        assert_eq!(c.local_ip, IpAddr::from([198, 18, 0, 1]));
        assert_eq!(c.remote_ip, IpAddr::from([192, 0, 2, 1]));
    }

    #[test]
    fn bad_and_unknown_options() {
        let mut c = Config::default();
        assert_eq!(
            c.apply("mss", Some("big")).unwrap_err().to_string(),
            "--mss=big: accepts an MSS 1-65535"
        );
        assert_eq!(
            c.apply("so_filename", Some("x.so")).unwrap_err(),
            ConfigError::Unsupported("so_filename".into())
        );
        assert!(c.apply("tcp_ts_tick_usecs", Some("0")).is_err());
    }
}

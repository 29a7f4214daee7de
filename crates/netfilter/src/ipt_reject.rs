//! The `REJECT` target: drop, and tell the sender.
//!
//! Mirrors `net/ipv4/netfilter/ipt_REJECT.c` (`reject_tg()`, `struct
//! ipt_reject_info`, `enum ipt_reject_with`); the answer itself is built by
//! the host through [`NetfilterContext`](crate::NetfilterContext)
//! (`nf_send_unreach()`, `nf_send_reset()`).

use netcore::SkBuff;
use wire::IcmpDestUnreach;

use crate::netfilter::NfInetHooks;
use crate::x_tables::NetfilterContext;

/// What REJECT answers with (`enum ipt_reject_with`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IptRejectWith {
    /// `icmp-net-unreachable` (`IPT_ICMP_NET_UNREACHABLE`).
    IcmpNetUnreachable,
    /// `icmp-host-unreachable`.
    IcmpHostUnreachable,
    /// `icmp-port-unreachable`, the default.
    IcmpPortUnreachable,
    /// `icmp-proto-unreachable`.
    IcmpProtoUnreachable,
    /// `icmp-net-prohibited`.
    IcmpNetProhibited,
    /// `icmp-host-prohibited`.
    IcmpHostProhibited,
    /// `tcp-reset` (`IPT_TCP_RESET`).
    TcpReset,
    /// `icmp-admin-prohibited`.
    IcmpAdminProhibited,
}

impl IptRejectWith {
    /// Every variant with the name `iptables` uses for it.
    pub const NAMES: [(IptRejectWith, &'static str); 8] = [
        (IptRejectWith::IcmpNetUnreachable, "icmp-net-unreachable"),
        (IptRejectWith::IcmpHostUnreachable, "icmp-host-unreachable"),
        (IptRejectWith::IcmpPortUnreachable, "icmp-port-unreachable"),
        (
            IptRejectWith::IcmpProtoUnreachable,
            "icmp-proto-unreachable",
        ),
        (IptRejectWith::IcmpNetProhibited, "icmp-net-prohibited"),
        (IptRejectWith::IcmpHostProhibited, "icmp-host-prohibited"),
        (IptRejectWith::TcpReset, "tcp-reset"),
        (IptRejectWith::IcmpAdminProhibited, "icmp-admin-prohibited"),
    ];

    /// The `--reject-with` name.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(w, _)| *w == self)
            .map_or("icmp-port-unreachable", |(_, n)| n)
    }

    /// Parses a `--reject-with` argument, with iptables' aliases
    /// (`tcp-rst`, `icmp-net-unreach`...).
    pub fn from_name(s: &str) -> Option<IptRejectWith> {
        let s = match s {
            "tcp-rst" => "tcp-reset",
            "icmp-net-unreach" => "icmp-net-unreachable",
            "icmp-host-unreach" => "icmp-host-unreachable",
            "icmp-port-unreach" => "icmp-port-unreachable",
            "icmp-proto-unreach" => "icmp-proto-unreachable",
            other => other,
        };
        Self::NAMES.iter().find(|(_, n)| *n == s).map(|(w, _)| *w)
    }
}

/// Sends the rejection; the caller drops the packet.
///
/// Mirrors `reject_tg()`.
pub fn reject_tg<C: NetfilterContext>(
    with: IptRejectWith,
    skb: &SkBuff,
    hook: NfInetHooks,
    ctx: &mut C,
) {
    let code = match with {
        IptRejectWith::TcpReset => {
            ctx.nf_send_reset(skb, hook);
            return;
        }
        IptRejectWith::IcmpNetUnreachable => IcmpDestUnreach::NetUnreach,
        IptRejectWith::IcmpHostUnreachable => IcmpDestUnreach::HostUnreach,
        IptRejectWith::IcmpPortUnreachable => IcmpDestUnreach::PortUnreach,
        IptRejectWith::IcmpProtoUnreachable => IcmpDestUnreach::ProtUnreach,
        IptRejectWith::IcmpNetProhibited => IcmpDestUnreach::NetAno,
        IptRejectWith::IcmpHostProhibited => IcmpDestUnreach::HostAno,
        IptRejectWith::IcmpAdminProhibited => IcmpDestUnreach::PktFiltered,
    };
    ctx.nf_send_unreach(skb, code, hook);
}

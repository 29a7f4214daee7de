//! Interface addresses: `struct in_ifaddr` lists per device.
//!
//! Mirrors `net/ipv4/devinet.c`: adding and removing addresses
//! (`inet_insert_ifa()`, `inet_del_ifa()`), choosing a source address
//! (`inet_select_addr()`), and the `ip addr` listing iproute2 prints from
//! `RTM_GETADDR`. The routes an address brings (`fib_add_ifaddr()`) are the
//! FIB's business: see [`NetnsIpv4`](crate::NetnsIpv4), which ties both.
//!
//! Also the per-device settings `net.ipv4.conf.{all,default,DEV}.*`
//! (`struct ipv4_devconf`, so far `arp_notify`) and the device events IPv4
//! reacts to (`inetdev_event()`): a device coming up or changing its
//! hardware address announces its addresses with gratuitous ARP when
//! `arp_notify` is on (Linux's default is off), and always on
//! `NETDEV_NOTIFY_PEERS`. Adding an address never does (Linux's
//! `inetaddr_chain` listeners only add routes).
//!
//! # Deviations from Linux
//!
//! `NETDEV_CHANGEADDR` records the new hardware address and flushes the
//! route cache, but does not flush the device's neighbours
//! (`neigh_changeaddr()`): the peers' entries are what the gratuitous ARP
//! refreshes, and ours stay valid since they name the peers' addresses.

use core::fmt::Write as _;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use netcore::{Errno, NetDeviceFlags};
use softnet::dev_queue_xmit;

use crate::arp::inetdev_send_gratuitous_arp;
use crate::context::Ipv4Context;
use crate::fib_trie::prefix_mask;
use crate::route::RtScope;

bitflags::bitflags! {
    /// Flags of an interface address.
    ///
    /// Mirrors the `IFA_F_*` values in `include/uapi/linux/if_addr.h`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct IfaFlags: u32 {
        /// `IFA_F_SECONDARY`: another address of the same subnet came first.
        const SECONDARY = 0x01;
        /// `IFA_F_PERMANENT`: configured, not learned (no lifetime).
        const PERMANENT = 0x80;
        /// `IFA_F_NOPREFIXROUTE`: do not add the connected prefix route.
        const NOPREFIXROUTE = 0x200;
    }
}

/// One IPv4 address of a device.
///
/// Mirrors `struct in_ifaddr` in `include/linux/inetdevice.h`.
#[doc(alias = "in_ifaddr")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InIfaddr {
    /// The device's index.
    pub ifindex: u32,
    /// The local address (`ifa_local`).
    pub ifa_local: Ipv4Addr,
    /// The peer or local address (`ifa_address`; equal to `ifa_local`
    /// on broadcast links).
    pub ifa_address: Ipv4Addr,
    /// Prefix length (`ifa_prefixlen`).
    pub ifa_prefixlen: u8,
    /// Broadcast address (`ifa_broadcast`), `None` when not assigned.
    pub ifa_broadcast: Option<Ipv4Addr>,
    /// Label (`ifa_label`), the device name by default.
    pub ifa_label: String,
    /// Scope (`ifa_scope`).
    pub ifa_scope: RtScope,
    /// Flags (`ifa_flags`).
    pub ifa_flags: IfaFlags,
}

impl InIfaddr {
    /// `ip addr add LOCAL/PLEN dev LABEL`: scope global, permanent, no
    /// broadcast (add [`InIfaddr::with_brd_plus`] for iproute2's `brd +`).
    pub fn new(ifindex: u32, local: Ipv4Addr, prefixlen: u8, label: &str) -> InIfaddr {
        InIfaddr {
            ifindex,
            ifa_local: local,
            ifa_address: local,
            ifa_prefixlen: prefixlen,
            ifa_broadcast: None,
            ifa_label: label.to_owned(),
            ifa_scope: RtScope::Universe,
            ifa_flags: IfaFlags::PERMANENT,
        }
    }

    /// Sets the broadcast address to the highest address of the subnet, as
    /// iproute2's `brd +` does (and `ip addr add` does by default for
    /// prefixes shorter than /31).
    pub fn with_brd_plus(mut self) -> InIfaddr {
        self.ifa_broadcast = (self.ifa_prefixlen < 31)
            .then(|| Ipv4Addr::from(u32::from(self.ifa_local) | !self.mask()));
        self
    }

    /// Sets the scope (`ip addr add ... scope link`).
    pub fn with_scope(mut self, scope: RtScope) -> InIfaddr {
        self.ifa_scope = scope;
        self
    }

    /// The netmask in host order (`ifa_mask`).
    pub fn mask(&self) -> u32 {
        prefix_mask(self.ifa_prefixlen)
    }

    /// The subnet's network address.
    pub fn prefix(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.ifa_address) & self.mask())
    }

    /// Whether `addr` is in this address's subnet. Mirrors `inet_ifa_match()`.
    #[doc(alias = "inet_ifa_match")]
    pub fn matches(&self, addr: Ipv4Addr) -> bool {
        (u32::from(addr) ^ u32::from(self.ifa_address)) & self.mask() == 0
    }

    /// Whether the address is secondary.
    pub fn is_secondary(&self) -> bool {
        self.ifa_flags.contains(IfaFlags::SECONDARY)
    }
}

/// Per-device IPv4 settings, the `net.ipv4.conf.*` sysctls.
///
/// Mirrors `struct ipv4_devconf` with the `IPV4_DEVCONF_ARP_NOTIFY` entry;
/// the other entries netstack honours are host-wide sysctls for now.
#[doc(alias = "ipv4_devconf")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ipv4Devconf {
    /// `arp_notify`: announce the device's addresses with gratuitous ARP
    /// when it comes up or changes its hardware address (non-zero), or not
    /// (0, Linux's default).
    pub arp_notify: i32,
    /// Whether `arp_notify` was written for this device, which stops
    /// writes to `default` from reaching it (the `state` bitmap of
    /// `ipv4_devconf`).
    arp_notify_set: bool,
}

/// A per-device setting. Mirrors the `IPV4_DEVCONF_*` indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DevconfKnob {
    /// `arp_notify` (`IPV4_DEVCONF_ARP_NOTIFY`).
    ArpNotify,
}

/// Which `net.ipv4.conf.*` directory a write goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DevconfTarget {
    /// `conf/all` (`net->ipv4.devconf_all`): combined with each device's
    /// own value, the larger wins (`IN_DEV_MAXCONF`).
    All,
    /// `conf/default` (`net->ipv4.devconf_dflt`): copied into new devices,
    /// and into existing ones that never had the knob written.
    Default,
    /// `conf/DEV` of the device with this index.
    Dev(u32),
}

/// A device event IPv4 reacts to in [`inetdev_event`].
///
/// Mirrors the `NETDEV_*` values of `enum netdev_cmd` that reach
/// `inetdev_event()` and send gratuitous ARP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NetdevEvent {
    /// `NETDEV_UP`: the device was brought up (`dev_open()`).
    Up,
    /// `NETDEV_CHANGEADDR`: the device's hardware address changed.
    ChangeAddr,
    /// `NETDEV_NOTIFY_PEERS`: a driver (failover, migration) asks for the
    /// peers to be told where the addresses are now.
    NotifyPeers,
}

/// The IPv4 state of one device.
///
/// Mirrors `struct in_device` (its `ifa_list` and `cnf`).
#[doc(alias = "in_device")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InDevice {
    /// The device's index.
    pub ifindex: u32,
    /// The device's name.
    pub name: String,
    /// Whether the device is up (`IFF_UP`); routes of addresses on a down
    /// device other than the local one are not added, as in Linux.
    pub up: bool,
    /// Whether this is the loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// The device's MTU (`dev->mtu`), which output routes carry:
    /// 1500 until set, 65536 for loopback.
    pub mtu: u32,
    /// The device's settings (`in_dev->cnf`), a copy of `conf/default` at
    /// creation.
    pub cnf: Ipv4Devconf,
    ifa_list: Vec<InIfaddr>,
}

impl InDevice {
    /// The addresses, primaries first, in the order `ip addr` lists them.
    pub fn ifa_list(&self) -> &[InIfaddr] {
        &self.ifa_list
    }
}

/// What `ip addr` prints about a device that is not IPv4's to know: the
/// device layer fills it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkFacts {
    /// The flags between `<` and `>`, e.g. `BROADCAST,MULTICAST,UP,LOWER_UP`.
    pub flags: String,
    /// MTU.
    pub mtu: u32,
    /// Root qdisc kind, e.g. `pfifo_fast`.
    pub qdisc: String,
    /// Operational state, e.g. `UP`.
    pub state: String,
    /// `txqueuelen`.
    pub qlen: u32,
    /// Link type and addresses, e.g. `link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff`.
    pub link: String,
}

/// The devices' IPv4 address lists.
///
/// Mirrors the set of `struct in_device` hanging off the net devices of one
/// namespace.
#[derive(Clone, Debug, Default)]
pub struct InetDevices {
    devs: BTreeMap<u32, InDevice>,
    devconf_all: Ipv4Devconf,
    devconf_dflt: Ipv4Devconf,
}

impl InetDevices {
    /// No devices.
    pub fn new() -> InetDevices {
        InetDevices::default()
    }

    /// Attaches IPv4 state to a device. Mirrors `inetdev_init()`.
    ///
    /// Errors: [`Errno::Exist`] when `ifindex` already has it,
    /// [`Errno::Inval`] for ifindex 0.
    pub fn inetdev_init(&mut self, ifindex: u32, name: &str, loopback: bool) -> Result<(), Errno> {
        if ifindex == 0 {
            return Err(Errno::Inval);
        }
        if self.devs.contains_key(&ifindex) {
            return Err(Errno::Exist);
        }
        self.devs.insert(
            ifindex,
            InDevice {
                ifindex,
                name: name.to_owned(),
                up: true,
                loopback,
                mtu: if loopback {
                    crate::context::LOOPBACK_MTU
                } else {
                    netcore::ETH_DATA_LEN
                },
                cnf: Ipv4Devconf {
                    arp_notify_set: false,
                    ..self.devconf_dflt
                },
                ifa_list: Vec::new(),
            },
        );
        Ok(())
    }

    /// Detaches IPv4 state from a device; returns it. Mirrors
    /// `inetdev_destroy()`. Errors: [`Errno::NoDev`].
    pub fn inetdev_destroy(&mut self, ifindex: u32) -> Result<InDevice, Errno> {
        self.devs.remove(&ifindex).ok_or(Errno::NoDev)
    }

    /// The device `ifindex`.
    pub fn dev(&self, ifindex: u32) -> Option<&InDevice> {
        self.devs.get(&ifindex)
    }

    /// Sets a device's MTU (`NETDEV_CHANGEMTU`). Errors: [`Errno::NoDev`].
    pub fn set_mtu(&mut self, ifindex: u32, mtu: u32) -> Result<(), Errno> {
        self.devs.get_mut(&ifindex).ok_or(Errno::NoDev)?.mtu = mtu;
        Ok(())
    }

    /// Sets whether a device is up.
    pub fn set_up(&mut self, ifindex: u32, up: bool) -> Result<(), Errno> {
        self.devs.get_mut(&ifindex).ok_or(Errno::NoDev)?.up = up;
        Ok(())
    }

    /// The settings of `conf/all` or `conf/default`; `None` for a device
    /// target (read [`InDevice::cnf`]).
    pub fn devconf(&self, target: DevconfTarget) -> Option<Ipv4Devconf> {
        match target {
            DevconfTarget::All => Some(self.devconf_all),
            DevconfTarget::Default => Some(self.devconf_dflt),
            DevconfTarget::Dev(i) => self.devs.get(&i).map(|d| d.cnf),
        }
    }

    /// Writes `net.ipv4.conf.{all,default,DEV}.KNOB`.
    ///
    /// Mirrors `devinet_conf_proc()`: a device write marks the knob as
    /// set for that device; a `default` write reaches every device whose
    /// knob was never set (`devinet_copy_dflt_conf()`). `arp_notify` is a
    /// `proc_dointvec` boolean: any value, non-zero meaning on.
    /// Errors: [`Errno::NoDev`] for a device target without IPv4 state.
    pub fn devinet_conf_set(
        &mut self,
        target: DevconfTarget,
        knob: DevconfKnob,
        value: i32,
    ) -> Result<(), Errno> {
        let DevconfKnob::ArpNotify = knob;
        match target {
            DevconfTarget::All => self.devconf_all.arp_notify = value,
            DevconfTarget::Default => {
                self.devconf_dflt.arp_notify = value;
                for d in self.devs.values_mut().filter(|d| !d.cnf.arp_notify_set) {
                    d.cnf.arp_notify = value;
                }
            }
            DevconfTarget::Dev(i) => {
                let cnf = &mut self.devs.get_mut(&i).ok_or(Errno::NoDev)?.cnf;
                cnf.arp_notify = value;
                cnf.arp_notify_set = true;
            }
        }
        Ok(())
    }

    /// Whether device `ifindex` announces itself on up and address change:
    /// the larger of `conf/all` and the device's own `arp_notify` is
    /// non-zero. Mirrors `IN_DEV_ARP_NOTIFY()` (`IN_DEV_MAXCONF`); `false`
    /// for an unknown device.
    #[doc(alias = "IN_DEV_ARP_NOTIFY")]
    pub fn in_dev_arp_notify(&self, ifindex: u32) -> bool {
        self.devs
            .get(&ifindex)
            .is_some_and(|d| self.devconf_all.arp_notify.max(d.cnf.arp_notify) != 0)
    }

    /// The name of device `ifindex`, `"?"` when unknown.
    pub fn name(&self, ifindex: u32) -> &str {
        self.devs.get(&ifindex).map_or("?", |d| d.name.as_str())
    }

    /// Every device, by index.
    pub fn iter(&self) -> impl Iterator<Item = &InDevice> {
        self.devs.values()
    }

    /// Adds an address; returns the stored copy (with `SECONDARY` set when
    /// an address of the same subnet is already there).
    ///
    /// Mirrors `__inet_insert_ifa()`. Errors: [`Errno::NoDev`] for an unknown
    /// device, [`Errno::Inval`] for a prefix length over 32 or a zero local
    /// address, [`Errno::Exist`] when the same address and prefix length is
    /// already on the device.
    pub fn inet_insert_ifa(&mut self, mut ifa: InIfaddr) -> Result<InIfaddr, Errno> {
        if ifa.ifa_prefixlen > 32 || ifa.ifa_local.is_unspecified() {
            return Err(Errno::Inval);
        }
        let dev = self.devs.get_mut(&ifa.ifindex).ok_or(Errno::NoDev)?;
        ifa.ifa_flags.remove(IfaFlags::SECONDARY);
        for old in &dev.ifa_list {
            if old.ifa_prefixlen == ifa.ifa_prefixlen && old.matches(ifa.ifa_address) {
                if old.ifa_local == ifa.ifa_local {
                    return Err(Errno::Exist);
                }
                if old.ifa_scope != ifa.ifa_scope {
                    return Err(Errno::Inval);
                }
                ifa.ifa_flags.insert(IfaFlags::SECONDARY);
            }
        }
        if ifa.is_secondary() {
            dev.ifa_list.push(ifa.clone());
        } else {
            // Primaries go before the secondaries, after the other primaries.
            let at = dev
                .ifa_list
                .iter()
                .position(InIfaddr::is_secondary)
                .unwrap_or(dev.ifa_list.len());
            dev.ifa_list.insert(at, ifa.clone());
        }
        Ok(ifa)
    }

    /// Removes `local/prefixlen` from a device; returns the removed
    /// addresses, the named one first.
    ///
    /// Mirrors `__inet_del_ifa()` with `promote_secondaries` off (Linux's
    /// default): removing a primary also removes the secondaries of its
    /// subnet. Errors: [`Errno::NoDev`], [`Errno::AddrNotAvail`] when the
    /// address is not on the device.
    pub fn inet_del_ifa(
        &mut self,
        ifindex: u32,
        local: Ipv4Addr,
        prefixlen: u8,
    ) -> Result<Vec<InIfaddr>, Errno> {
        let dev = self.devs.get_mut(&ifindex).ok_or(Errno::NoDev)?;
        let pos = dev
            .ifa_list
            .iter()
            .position(|a| a.ifa_local == local && a.ifa_prefixlen == prefixlen)
            .ok_or(Errno::AddrNotAvail)?;
        let gone = dev.ifa_list.remove(pos);
        let mut removed = vec![gone.clone()];
        if !gone.is_secondary() {
            dev.ifa_list.retain(|a| {
                let same = a.is_secondary()
                    && a.ifa_prefixlen == gone.ifa_prefixlen
                    && gone.matches(a.ifa_address);
                if same {
                    removed.push(a.clone());
                }
                !same
            });
        }
        Ok(removed)
    }

    /// The primary address of `ifa`'s subnet on its device (itself when it
    /// is primary). Mirrors the `prim` search of `fib_add_ifaddr()`.
    pub fn primary_of<'a>(&'a self, ifa: &'a InIfaddr) -> Option<&'a InIfaddr> {
        if !ifa.is_secondary() {
            return Some(ifa);
        }
        self.devs.get(&ifa.ifindex)?.ifa_list.iter().find(|p| {
            !p.is_secondary() && p.ifa_prefixlen == ifa.ifa_prefixlen && p.matches(ifa.ifa_address)
        })
    }

    /// The address the host uses as source toward `dst` out of `ifindex`.
    ///
    /// Mirrors `inet_select_addr()`: among the device's primary addresses of
    /// scope at most `scope`, the first one whose subnet holds `dst`, else
    /// the first one; when the device has none, the first primary address of
    /// another device with a scope below link (global).
    pub fn inet_select_addr(
        &self,
        ifindex: u32,
        dst: Ipv4Addr,
        scope: RtScope,
    ) -> Option<Ipv4Addr> {
        let mut first = None;
        if let Some(dev) = self.devs.get(&ifindex) {
            for ifa in dev.ifa_list.iter().filter(|a| !a.is_secondary()) {
                if ifa.ifa_scope > scope {
                    continue;
                }
                if dst.is_unspecified() || ifa.matches(dst) {
                    return Some(ifa.ifa_local);
                }
                first.get_or_insert(ifa.ifa_local);
            }
        }
        if first.is_some() {
            return first;
        }
        self.devs
            .values()
            .flat_map(|d| d.ifa_list.iter())
            .find(|a| !a.is_secondary() && a.ifa_scope < RtScope::Link && a.ifa_scope <= scope)
            .map(|a| a.ifa_local)
    }

    /// The address entry holding `local`, on any device.
    pub fn ifa_by_local(&self, local: Ipv4Addr) -> Option<&InIfaddr> {
        self.devs
            .values()
            .flat_map(|d| d.ifa_list.iter())
            .find(|a| a.ifa_local == local)
    }

    /// `ip addr show dev NAME` for one device: the link line from `link`,
    /// then one `inet` line (and its lifetime line) per address.
    ///
    /// Mirrors what iproute2's `print_linkinfo()`/`print_addrinfo()` print
    /// from the kernel's `RTM_NEWLINK`/`RTM_NEWADDR` dumps.
    pub fn ip_addr_show(&self, ifindex: u32, link: &LinkFacts) -> Result<String, Errno> {
        let dev = self.devs.get(&ifindex).ok_or(Errno::NoDev)?;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{}: {}: <{}> mtu {} qdisc {} state {} group default qlen {}",
            dev.ifindex, dev.name, link.flags, link.mtu, link.qdisc, link.state, link.qlen
        );
        let _ = writeln!(s, "    {}", link.link);
        for a in &dev.ifa_list {
            let _ = write!(s, "    inet {}/{} ", a.ifa_local, a.ifa_prefixlen);
            if let Some(b) = a.ifa_broadcast {
                let _ = write!(s, "brd {b} ");
            }
            let _ = write!(s, "scope {} ", a.ifa_scope.name());
            if a.is_secondary() {
                s.push_str("secondary ");
            }
            if a.ifa_flags.contains(IfaFlags::NOPREFIXROUTE) {
                s.push_str("noprefixroute ");
            }
            let _ = writeln!(s, "{}", a.ifa_label);
            s.push_str("       valid_lft forever preferred_lft forever\n");
        }
        Ok(s)
    }
}

/// Reacts to a device event; returns how many gratuitous ARP requests
/// went to the device's queue.
///
/// Mirrors the gratuitous-ARP part of `inetdev_event()`:
/// - [`NetdevEvent::Up`] marks the device up and (re)adds its addresses'
///   routes (`fib_netdev_event()` → `fib_add_ifaddr()`), then announces
///   the addresses if [`InetDevices::in_dev_arp_notify`];
/// - [`NetdevEvent::ChangeAddr`] records the new hardware address, flushes
///   the route cache (`arp_netdev_event()`), then announces as for `Up`;
/// - [`NetdevEvent::NotifyPeers`] always announces.
///
/// Announcing is [`inetdev_send_gratuitous_arp`] for every address on the
/// device, each frame through `dev_queue_xmit()`. Loopback and `IFF_NOARP`
/// devices send nothing (`arp_send()` returns early for them); neither
/// does a device under the 68-byte IPv4 minimum MTU on `Up`
/// (`inetdev_valid_mtu()`).
///
/// `arp_notify` defaults to 0 as in Linux: a host only announces itself
/// when asked to (`net.ipv4.conf.*.arp_notify=1`). Adding an address to a
/// device that is up sends nothing, as in Linux, where `inet_insert_ifa()`
/// only tells the `inetaddr_chain` (routes), never ARP.
///
/// Errors: [`Errno::NoDev`] for a device without IPv4 state.
pub fn inetdev_event<C: Ipv4Context>(
    ctx: &mut C,
    ifindex: u32,
    event: NetdevEvent,
) -> Result<usize, Errno> {
    let net = Arc::clone(ctx.ipv4());
    if net.dev(ifindex).is_none() {
        return Err(Errno::NoDev);
    }
    match event {
        NetdevEvent::Up => {
            net.with_netns_mut(|n| n.fib_netdev_up(ifindex))?;
            if net.dev(ifindex).is_some_and(|d| d.mtu < 68) {
                return Ok(0);
            }
        }
        NetdevEvent::ChangeAddr => net.netdev_change_addr(ifindex)?,
        NetdevEvent::NotifyPeers => {}
    }
    let notify = match event {
        NetdevEvent::Up | NetdevEvent::ChangeAddr => {
            net.with_netns(|n| n.devices.in_dev_arp_notify(ifindex))
        }
        NetdevEvent::NotifyPeers => true,
    };
    let Some(dev) = net.dev(ifindex) else {
        return Err(Errno::NoDev);
    };
    let Some(nd) = dev.dev.as_ref() else {
        return Ok(0);
    };
    let noarp = nd.with_device(|d| {
        d.flags()
            .intersects(NetDeviceFlags::NOARP | NetDeviceFlags::LOOPBACK)
    });
    if !notify || noarp || dev.loopback {
        return Ok(0);
    }
    let frames = net.with_netns(|n| inetdev_send_gratuitous_arp(n, ifindex, dev.dev_addr));
    let mut sent = 0;
    for f in frames {
        if let Ok(skb) = f.to_skb(net.pool()) {
            let _ = dev_queue_xmit(ctx, nd, skb);
            sent += 1;
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn secondary_and_primary_removal_and_source_choice() {
        let mut d = InetDevices::new();
        d.inetdev_init(2, "eth0", false).unwrap();
        assert_eq!(d.inetdev_init(2, "eth0", false), Err(Errno::Exist));
        let a = d
            .inet_insert_ifa(InIfaddr::new(2, ip("198.18.0.1"), 24, "eth0").with_brd_plus())
            .unwrap();
        assert!(!a.is_secondary());
        assert_eq!(a.ifa_broadcast, Some(ip("198.18.0.255")));
        let b = d
            .inet_insert_ifa(InIfaddr::new(2, ip("198.18.0.5"), 24, "eth0"))
            .unwrap();
        assert!(b.is_secondary());
        assert_eq!(d.primary_of(&b).unwrap().ifa_local, ip("198.18.0.1"));
        d.inet_insert_ifa(InIfaddr::new(2, ip("198.19.0.1"), 16, "eth0"))
            .unwrap();
        assert_eq!(
            d.inet_insert_ifa(InIfaddr::new(2, ip("198.18.0.1"), 24, "eth0")),
            Err(Errno::Exist)
        );
        assert_eq!(
            d.inet_insert_ifa(InIfaddr::new(9, ip("198.18.0.1"), 24, "x")),
            Err(Errno::NoDev)
        );
        // Primaries first, secondaries last.
        let order: Vec<_> = d
            .dev(2)
            .unwrap()
            .ifa_list()
            .iter()
            .map(|a| a.ifa_local)
            .collect();
        assert_eq!(
            order,
            [ip("198.18.0.1"), ip("198.19.0.1"), ip("198.18.0.5")]
        );
        assert_eq!(
            d.inet_select_addr(2, ip("198.19.7.7"), RtScope::Link),
            Some(ip("198.19.0.1"))
        );
        assert_eq!(
            d.inet_select_addr(2, ip("8.8.8.8"), RtScope::Universe),
            Some(ip("198.18.0.1"))
        );
        // Removing the primary takes its secondary along.
        let gone = d.inet_del_ifa(2, ip("198.18.0.1"), 24).unwrap();
        assert_eq!(gone.len(), 2);
        assert_eq!(gone[1].ifa_local, ip("198.18.0.5"));
        assert_eq!(
            d.inet_del_ifa(2, ip("198.18.0.1"), 24),
            Err(Errno::AddrNotAvail)
        );
    }

    #[test]
    fn arp_notify_default_all_and_device_values_combine_as_in_linux() {
        let mut d = InetDevices::new();
        d.inetdev_init(2, "eth0", false).unwrap();
        assert!(!d.in_dev_arp_notify(2));
        // conf/all on: every device announces (the larger value wins).
        d.devinet_conf_set(DevconfTarget::All, DevconfKnob::ArpNotify, 1)
            .unwrap();
        assert!(d.in_dev_arp_notify(2));
        d.devinet_conf_set(DevconfTarget::All, DevconfKnob::ArpNotify, 0)
            .unwrap();
        // conf/default reaches devices that never had the knob written,
        // and new devices, but not a device written explicitly.
        d.inetdev_init(3, "eth1", false).unwrap();
        d.devinet_conf_set(DevconfTarget::Dev(3), DevconfKnob::ArpNotify, 0)
            .unwrap();
        d.devinet_conf_set(DevconfTarget::Default, DevconfKnob::ArpNotify, 1)
            .unwrap();
        assert!(d.in_dev_arp_notify(2));
        assert!(!d.in_dev_arp_notify(3));
        d.inetdev_init(4, "eth2", false).unwrap();
        assert_eq!(d.dev(4).unwrap().cnf.arp_notify, 1);
        assert!(!d.in_dev_arp_notify(9));
        assert_eq!(
            d.devinet_conf_set(DevconfTarget::Dev(9), DevconfKnob::ArpNotify, 1),
            Err(Errno::NoDev)
        );
        assert_eq!(d.devconf(DevconfTarget::Dev(9)), None);
    }

    #[test]
    fn ip_addr_show_format() {
        let mut d = InetDevices::new();
        d.inetdev_init(2, "eth0", false).unwrap();
        d.inet_insert_ifa(InIfaddr::new(2, ip("198.18.0.1"), 24, "eth0").with_brd_plus())
            .unwrap();
        d.inet_insert_ifa(InIfaddr::new(2, ip("198.18.0.9"), 24, "eth0"))
            .unwrap();
        let link = LinkFacts {
            flags: "BROADCAST,MULTICAST,UP,LOWER_UP".into(),
            mtu: 1500,
            qdisc: "pfifo_fast".into(),
            state: "UP".into(),
            qlen: 1000,
            link: "link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff".into(),
        };
        assert_eq!(
            d.ip_addr_show(2, &link).unwrap(),
            "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast state UP group default qlen 1000\n\
             \x20   link/ether 02:00:00:00:00:01 brd ff:ff:ff:ff:ff:ff\n\
             \x20   inet 198.18.0.1/24 brd 198.18.0.255 scope global eth0\n\
             \x20      valid_lft forever preferred_lft forever\n\
             \x20   inet 198.18.0.9/24 scope global secondary eth0\n\
             \x20      valid_lft forever preferred_lft forever\n"
        );
    }
}

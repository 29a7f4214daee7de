//! The FIB: route types, tables, longest-prefix lookup, the routes an
//! interface address brings, and the `ip route` listings.
//!
//! Mirrors `net/ipv4/fib_frontend.c` (`fib_add_ifaddr()`,
//! `fib_del_ifaddr()`, `inet_rtm_newroute()`, `inet_addr_type()`),
//! `net/ipv4/fib_semantics.c` (`fib_create_info()`, `fib_check_nh()`,
//! `fib_props`), the table half of `net/ipv4/fib_trie.c`
//! (`fib_table_insert()`, `fib_table_delete()`, `fib_table_lookup()`), and
//! the output-route part of `net/ipv4/route.c` that `ip route get` shows.
//!
//! ```text
//!  ip addr add ──▶ InetDevices::inet_insert_ifa ──▶ fib_add_ifaddr ──▶ Fib
//!  ip route add ─────────────────────────────────▶ fib_table_insert ──┘
//!  ip_route_output / ip_route_input ──▶ Fib::fib_lookup ──▶ FibResult
//! ```
//!
//! # Deviations from Linux
//!
//! - Only the local (255) and main (254) tables exist, kept in one trie as
//!   Linux does when no policy rule was added (`fib_unmerge()` never ran):
//!   a lookup is one longest-prefix match over both, and for equal prefixes
//!   the local table's alias comes first. Other table ids are refused with
//!   `EOPNOTSUPP`.
//! - One nexthop per route (no multipath, no nexthop objects), no TOS
//!   selectors, no route cache exceptions (PMTU, redirects).
//! - Routes whose preferred source disappears with an address are not
//!   flushed (`fib_sync_down_addr()`), except the kernel routes the address
//!   brought.

use core::fmt;
use core::fmt::Write as _;
use std::net::Ipv4Addr;

use netcore::Errno;

use crate::devinet::{IfaFlags, InIfaddr, InetDevices};
use crate::fib_trie::{FibTrie, prefix_mask};

/// The main routing table's id. Mirrors `RT_TABLE_MAIN`.
pub const RT_TABLE_MAIN: u32 = 254;
/// The local routing table's id. Mirrors `RT_TABLE_LOCAL`.
pub const RT_TABLE_LOCAL: u32 = 255;

/// How far a route or address reaches.
///
/// Mirrors `enum rt_scope_t` in `include/uapi/linux/rtnetlink.h`; a larger
/// value is a narrower scope.
#[doc(alias = "rt_scope_t")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RtScope {
    /// `RT_SCOPE_UNIVERSE` (printed `global`).
    Universe = 0,
    /// `RT_SCOPE_SITE`.
    Site = 200,
    /// `RT_SCOPE_LINK`: on the attached link.
    Link = 253,
    /// `RT_SCOPE_HOST`: on this host.
    Host = 254,
    /// `RT_SCOPE_NOWHERE`.
    Nowhere = 255,
}

impl RtScope {
    /// The name iproute2 prints (`rtnl_rtscope_n2a()`).
    pub fn name(self) -> &'static str {
        match self {
            RtScope::Universe => "global",
            RtScope::Site => "site",
            RtScope::Link => "link",
            RtScope::Host => "host",
            RtScope::Nowhere => "nowhere",
        }
    }
}

/// The type of a route: what happens to a packet that matches it.
///
/// Mirrors the `RTN_*` values in `include/uapi/linux/rtnetlink.h` that this
/// FIB handles, with their `fib_props` errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtnType {
    /// `RTN_UNICAST`: a gateway or a directly connected destination.
    Unicast = 1,
    /// `RTN_LOCAL`: an address of this host.
    Local = 2,
    /// `RTN_BROADCAST`: sent and accepted as broadcast.
    Broadcast = 3,
    /// `RTN_MULTICAST`: only returned by [`NetnsIpv4::inet_addr_type`].
    Multicast = 5,
    /// `RTN_BLACKHOLE`: silently discarded (`EINVAL`).
    Blackhole = 6,
    /// `RTN_UNREACHABLE`: host unreachable (`EHOSTUNREACH`).
    Unreachable = 7,
    /// `RTN_PROHIBIT`: administratively prohibited (`EACCES`).
    Prohibit = 8,
}

impl RtnType {
    /// The name iproute2 prints (`rtnl_rtntype_n2a()`).
    pub fn name(self) -> &'static str {
        match self {
            RtnType::Unicast => "unicast",
            RtnType::Local => "local",
            RtnType::Broadcast => "broadcast",
            RtnType::Multicast => "multicast",
            RtnType::Blackhole => "blackhole",
            RtnType::Unreachable => "unreachable",
            RtnType::Prohibit => "prohibit",
        }
    }

    /// The error a lookup that ends on this type returns. Mirrors
    /// `fib_props[type].error`.
    #[doc(alias = "fib_props")]
    pub fn error(self) -> Option<Errno> {
        match self {
            RtnType::Blackhole => Some(Errno::Inval),
            RtnType::Unreachable => Some(Errno::HostUnreach),
            RtnType::Prohibit => Some(Errno::Acces),
            _ => None,
        }
    }
}

/// Who installed a route.
///
/// Mirrors the `RTPROT_*` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtProt {
    /// `RTPROT_KERNEL`: added by the kernel for an address.
    Kernel,
    /// `RTPROT_BOOT`: `ip route add` without `proto` (not printed).
    Boot,
    /// `RTPROT_STATIC`: added by the administrator as permanent.
    Static,
}

impl RtProt {
    /// The name iproute2 prints.
    pub fn name(self) -> &'static str {
        match self {
            RtProt::Kernel => "kernel",
            RtProt::Boot => "boot",
            RtProt::Static => "static",
        }
    }
}

fn table_name(tb: u32) -> String {
    match tb {
        RT_TABLE_MAIN => "main".into(),
        RT_TABLE_LOCAL => "local".into(),
        n => n.to_string(),
    }
}

/// A route's nexthop.
///
/// Mirrors `struct fib_nh` (one nexthop, IPv4 gateway).
#[doc(alias = "fib_nh")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FibNh {
    /// The gateway, `None` when the destination is directly connected.
    pub gw: Option<Ipv4Addr>,
    /// The output device; 0 for routes without a nexthop (unreachable…).
    pub oif: u32,
    /// The nexthop's scope: link through a gateway, host when connected.
    pub scope: RtScope,
}

/// One route of one prefix.
///
/// Mirrors `struct fib_alias` with its `struct fib_info`.
#[doc(alias = "fib_alias")]
#[doc(alias = "fib_info")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FibAlias {
    /// The table (`fa->tb_id`).
    pub tb_id: u32,
    /// The type (`fa->fa_type`).
    pub fa_type: RtnType,
    /// The route's scope (`fib_scope`).
    pub scope: RtScope,
    /// Who added it (`fib_protocol`).
    pub protocol: RtProt,
    /// The metric (`fib_priority`); lower wins.
    pub priority: u32,
    /// The preferred source address (`fib_prefsrc`).
    pub prefsrc: Option<Ipv4Addr>,
    /// The nexthop.
    pub nh: FibNh,
}

/// A route request, as `ip route add/del` sends it.
///
/// Mirrors `struct fib_config`. Unset fields mean "default" when adding and
/// "any" when deleting, as in Linux.
#[doc(alias = "fib_config")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibConfig {
    /// Destination prefix (`fc_dst`).
    pub dst: Ipv4Addr,
    /// Prefix length (`fc_dst_len`).
    pub dst_len: u8,
    /// Table (`fc_table`), main by default.
    pub table: u32,
    /// Type (`fc_type`); `None`: unicast when adding, any when deleting.
    pub fc_type: Option<RtnType>,
    /// Scope (`fc_scope`); `None`: chosen as iproute2 does when adding.
    pub scope: Option<RtScope>,
    /// Protocol (`fc_protocol`); `None`: boot when adding.
    pub protocol: Option<RtProt>,
    /// Metric (`fc_priority`); `None`: 0 when adding.
    pub priority: Option<u32>,
    /// Preferred source (`fc_prefsrc`).
    pub prefsrc: Option<Ipv4Addr>,
    /// Gateway (`fc_gw4`).
    pub gw: Option<Ipv4Addr>,
    /// Output device (`fc_oif`).
    pub oif: Option<u32>,
}

impl FibConfig {
    /// A request for `dst/dst_len` in the main table.
    pub fn new(dst: Ipv4Addr, dst_len: u8) -> FibConfig {
        FibConfig {
            dst,
            dst_len,
            table: RT_TABLE_MAIN,
            fc_type: None,
            scope: None,
            protocol: None,
            priority: None,
            prefsrc: None,
            gw: None,
            oif: None,
        }
    }
    /// `via GW`.
    pub fn via(mut self, gw: Ipv4Addr) -> Self {
        self.gw = Some(gw);
        self
    }
    /// `dev IFINDEX`.
    pub fn dev(mut self, oif: u32) -> Self {
        self.oif = Some(oif);
        self
    }
    /// The route type (`ip route add unreachable …`).
    pub fn rtn_type(mut self, t: RtnType) -> Self {
        self.fc_type = Some(t);
        self
    }
    /// `table ID`.
    pub fn table(mut self, tb: u32) -> Self {
        self.table = tb;
        self
    }
    /// `metric N`.
    pub fn metric(mut self, prio: u32) -> Self {
        self.priority = Some(prio);
        self
    }
    /// `src ADDR`.
    pub fn src(mut self, prefsrc: Ipv4Addr) -> Self {
        self.prefsrc = Some(prefsrc);
        self
    }
    /// `proto P`.
    pub fn proto(mut self, p: RtProt) -> Self {
        self.protocol = Some(p);
        self
    }
    /// `scope S`.
    pub fn with_scope(mut self, s: RtScope) -> Self {
        self.scope = Some(s);
        self
    }
}

/// What a lookup found.
///
/// Mirrors `struct fib_result`.
#[doc(alias = "fib_result")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FibResult<'a> {
    /// The matched prefix.
    pub prefix: Ipv4Addr,
    /// Its length (`prefixlen`).
    pub prefixlen: u8,
    /// The route (`fa`/`fi`): type, scope, nexthop, source.
    pub alias: &'a FibAlias,
}

impl FibResult<'_> {
    /// The route type (`res->type`).
    pub fn rt_type(&self) -> RtnType {
        self.alias.fa_type
    }
}

/// Which table(s) `ip route show` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteTable {
    /// `table main` (the default).
    Main,
    /// `table local`.
    Local,
    /// `table all`.
    All,
}

/// The IPv4 routing tables (local and main, merged).
///
/// Mirrors `net->ipv4.fib_main` / `fib_local` over one `struct trie`.
#[derive(Clone, Debug, Default)]
pub struct Fib {
    trie: FibTrie<FibLeaf>,
}

/// The routes of one prefix, in lookup order (local table first, then by
/// metric), with a copy of the first kept beside the trie's key so that a
/// lookup reads it without following the list's heap pointer.
///
/// Mirrors the `fa_list` of a `struct key_vector` leaf in `fib_trie.c`.
#[derive(Clone, Debug, Default)]
struct FibLeaf {
    head: Option<FibAlias>,
    list: Vec<FibAlias>,
}

impl FibLeaf {
    /// Changes the list and refreshes the head copy.
    fn update<R>(&mut self, f: impl FnOnce(&mut Vec<FibAlias>) -> R) -> R {
        let r = f(&mut self.list);
        self.head = self.list.first().copied();
        r
    }
}

fn key_of(cfg_dst: Ipv4Addr, len: u8) -> Result<u32, Errno> {
    let key = u32::from(cfg_dst);
    if len > 32 || key & !prefix_mask(len) != 0 {
        return Err(Errno::Inval);
    }
    Ok(key)
}

impl Fib {
    /// Empty tables.
    pub fn new() -> Fib {
        Fib::default()
    }

    /// Number of routes in both tables.
    pub fn nr_routes(&self) -> usize {
        self.trie.iter().map(|(_, _, v)| v.list.len()).sum()
    }

    /// The route for `daddr`: the longest matching prefix, local table
    /// first among equals.
    ///
    /// Mirrors `fib_lookup()` → `fib_table_lookup()`. Errors:
    /// [`Errno::NetUnreach`] without a match, and the route type's error for
    /// unreachable ([`Errno::HostUnreach`]), blackhole ([`Errno::Inval`])
    /// and prohibit ([`Errno::Acces`]) routes.
    #[inline]
    pub fn fib_lookup(&self, daddr: Ipv4Addr) -> Result<FibResult<'_>, Errno> {
        let (key, plen, leaf) = self
            .trie
            .lookup(u32::from(daddr))
            .ok_or(Errno::NetUnreach)?;
        let alias = leaf.head.as_ref().ok_or(Errno::NetUnreach)?;
        if let Some(e) = alias.fa_type.error() {
            return Err(e);
        }
        Ok(FibResult {
            prefix: Ipv4Addr::from(key),
            prefixlen: plen,
            alias,
        })
    }

    /// The longest match for `daddr` among unicast/local routes whose scope is
    /// narrower than `scope`: how a gateway is validated.
    fn lookup_scoped(&self, daddr: Ipv4Addr, scope: RtScope) -> Option<FibAlias> {
        let a = u32::from(daddr);
        (0..=32u8).rev().find_map(|l| {
            self.trie
                .get(a & prefix_mask(l), l)?
                .list
                .iter()
                .copied()
                .find(|fa| {
                    fa.scope > scope && matches!(fa.fa_type, RtnType::Unicast | RtnType::Local)
                })
        })
    }

    /// Inserts a fully formed alias. `excl`: refuse a route of the same
    /// table and metric (`NLM_F_EXCL`, `ip route add`); otherwise refuse only
    /// an identical one (`NLM_F_APPEND`, `fib_magic()`).
    ///
    /// Mirrors `fib_table_insert()`. Errors: [`Errno::Inval`] for a bad
    /// prefix, [`Errno::Exist`].
    pub fn fib_table_insert(
        &mut self,
        dst: Ipv4Addr,
        dst_len: u8,
        fa: FibAlias,
        excl: bool,
    ) -> Result<(), Errno> {
        let key = key_of(dst, dst_len)?;
        if self.trie.get(key, dst_len).is_none() {
            self.trie
                .insert(key, dst_len, FibLeaf::default())
                .map_err(|_| Errno::Inval)?;
        }
        let leaf = self.trie.get_mut(key, dst_len).ok_or(Errno::Inval)?;
        let clash = leaf.list.iter().any(|o| {
            if excl {
                o.tb_id == fa.tb_id && o.priority == fa.priority
            } else {
                *o == fa
            }
        });
        if clash {
            if leaf.list.is_empty() {
                self.trie.remove(key, dst_len);
            }
            return Err(Errno::Exist);
        }
        leaf.update(|list| {
            // Local table before main, then by metric, appended among equals.
            let at = list
                .iter()
                .position(|o| {
                    o.tb_id < fa.tb_id || (o.tb_id == fa.tb_id && o.priority > fa.priority)
                })
                .unwrap_or(list.len());
            list.insert(at, fa);
        });
        Ok(())
    }

    /// Removes the first route of `dst/dst_len` for which `matches` holds.
    ///
    /// Mirrors `fib_table_delete()`. Errors: [`Errno::Srch`] when none does
    /// (`RTNETLINK answers: No such process`), [`Errno::Inval`] for a bad
    /// prefix.
    pub fn fib_table_delete(
        &mut self,
        dst: Ipv4Addr,
        dst_len: u8,
        matches: impl Fn(&FibAlias) -> bool,
    ) -> Result<FibAlias, Errno> {
        let key = key_of(dst, dst_len)?;
        let leaf = self.trie.get_mut(key, dst_len).ok_or(Errno::Srch)?;
        let pos = leaf.list.iter().position(matches).ok_or(Errno::Srch)?;
        let fa = leaf.update(|list| list.remove(pos));
        if leaf.list.is_empty() {
            self.trie.remove(key, dst_len);
        }
        Ok(fa)
    }

    /// Every route as `(prefix, len, alias)` in dump order.
    pub fn routes(&self) -> impl Iterator<Item = (Ipv4Addr, u8, &FibAlias)> {
        self.trie
            .iter()
            .flat_map(|(k, l, v)| v.list.iter().map(move |fa| (Ipv4Addr::from(k), l, fa)))
    }
}

/// The IPv4 configuration of one network namespace: device addresses and
/// the FIB, kept consistent the way the kernel's notifier chain does.
///
/// Mirrors the address and routing part of `struct netns_ipv4`, with the
/// rtnetlink handlers `inet_rtm_newaddr()`, `inet_rtm_deladdr()`,
/// `inet_rtm_newroute()`, `inet_rtm_delroute()` and
/// `inet_rtm_getroute()`.
///
/// ```
/// use ipv4::{FibConfig, InIfaddr, NetnsIpv4, RouteTable};
///
/// let mut net = NetnsIpv4::new();
/// net.devices.inetdev_init(1, "lo", true).unwrap();
/// net.devices.inetdev_init(2, "eth0", false).unwrap();
/// net.inet_rtm_newaddr(InIfaddr::new(2, "198.18.0.1".parse().unwrap(), 24, "eth0").with_brd_plus())
///     .unwrap();
/// net.inet_rtm_newroute(FibConfig::new("0.0.0.0".parse().unwrap(), 0).via("198.18.0.254".parse().unwrap()))
///     .unwrap();
/// assert_eq!(
///     net.ip_route_show(RouteTable::Main),
///     "default via 198.18.0.254 dev eth0 \n\
///      198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.1 \n"
/// );
/// assert_eq!(
///     net.ip_route_get("198.18.1.5".parse().unwrap()).unwrap(),
///     "198.18.1.5 via 198.18.0.254 dev eth0 src 198.18.0.1 uid 0 \n    cache \n"
/// );
/// ```
#[doc(alias = "netns_ipv4")]
#[derive(Clone, Debug, Default)]
pub struct NetnsIpv4 {
    /// Device addresses.
    pub devices: InetDevices,
    /// The routing tables.
    pub fib: Fib,
}

/// One route an address brings: `(type, dst, len, alias)`.
type MagicRoute = (Ipv4Addr, u8, FibAlias);

impl NetnsIpv4 {
    /// No devices, no routes.
    pub fn new() -> NetnsIpv4 {
        NetnsIpv4::default()
    }

    /// The routes `fib_add_ifaddr()` adds for `ifa` (given the current
    /// address lists), as `fib_magic()` builds them.
    fn ifaddr_routes(&self, ifa: &InIfaddr) -> Vec<MagicRoute> {
        let Some(dev) = self.devices.dev(ifa.ifindex) else {
            return Vec::new();
        };
        let Some(prim) = self.devices.primary_of(ifa) else {
            return Vec::new();
        };
        let magic = |fa_type: RtnType, dst: Ipv4Addr, len: u8| {
            let tb_id = if fa_type == RtnType::Unicast {
                RT_TABLE_MAIN
            } else {
                RT_TABLE_LOCAL
            };
            let scope = if fa_type == RtnType::Local {
                RtScope::Host
            } else {
                RtScope::Link
            };
            (
                dst,
                len,
                FibAlias {
                    tb_id,
                    fa_type,
                    scope,
                    protocol: RtProt::Kernel,
                    priority: 0,
                    prefsrc: Some(prim.ifa_local),
                    nh: FibNh {
                        gw: None,
                        oif: ifa.ifindex,
                        scope: RtScope::Host,
                    },
                },
            )
        };
        let addr = ifa.ifa_local;
        let mask = ifa.mask();
        let prefix = Ipv4Addr::from(u32::from(ifa.ifa_address) & mask);
        let mut out = vec![magic(RtnType::Local, addr, 32)];
        if !dev.up {
            return out;
        }
        if let Some(brd) = ifa.ifa_broadcast
            && !brd.is_broadcast()
            && !brd.is_unspecified()
        {
            out.push(magic(RtnType::Broadcast, brd, 32));
        }
        if !prefix.is_unspecified()
            && !ifa.is_secondary()
            && (prefix != addr || ifa.ifa_prefixlen < 32)
        {
            if !ifa.ifa_flags.contains(IfaFlags::NOPREFIXROUTE) {
                let t = if dev.loopback {
                    RtnType::Local
                } else {
                    RtnType::Unicast
                };
                out.push(magic(t, prefix, ifa.ifa_prefixlen));
            }
            if ifa.ifa_prefixlen < 31 {
                out.push(magic(
                    RtnType::Broadcast,
                    Ipv4Addr::from(u32::from(prefix) | !mask),
                    32,
                ));
            }
        }
        out
    }

    /// `ip addr add`: adds the address and its routes — the local route
    /// (table local, scope host), the broadcast route(s) (table local) and
    /// the connected prefix route (table main, scope link), each with the
    /// subnet's primary address as preferred source.
    ///
    /// Mirrors `inet_rtm_newaddr()` → `__inet_insert_ifa()` →
    /// `fib_add_ifaddr()`. Since Linux 5.14 no broadcast route is added for
    /// the network address itself (only for the highest address). Returns
    /// the stored address. Errors: those of
    /// [`InetDevices::inet_insert_ifa`].
    #[doc(alias = "fib_add_ifaddr")]
    pub fn inet_rtm_newaddr(&mut self, ifa: InIfaddr) -> Result<InIfaddr, Errno> {
        let ifa = self.devices.inet_insert_ifa(ifa)?;
        for (dst, len, fa) in self.ifaddr_routes(&ifa) {
            // An identical kernel route (a shared broadcast) is not an error.
            match self.fib.fib_table_insert(dst, len, fa, false) {
                Ok(()) | Err(Errno::Exist) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ifa)
    }

    /// `ip addr del`: removes the address (and, for a primary, the
    /// secondaries of its subnet) and the kernel routes no remaining
    /// address needs.
    ///
    /// Mirrors `inet_rtm_deladdr()` → `__inet_del_ifa()` →
    /// `fib_del_ifaddr()`. Returns the removed addresses.
    #[doc(alias = "fib_del_ifaddr")]
    pub fn inet_rtm_deladdr(
        &mut self,
        ifindex: u32,
        local: Ipv4Addr,
        prefixlen: u8,
    ) -> Result<Vec<InIfaddr>, Errno> {
        let dev = self.devices.dev(ifindex).ok_or(Errno::NoDev)?;
        let doomed: Vec<InIfaddr> = {
            let target = dev
                .ifa_list()
                .iter()
                .find(|a| a.ifa_local == local && a.ifa_prefixlen == prefixlen)
                .ok_or(Errno::AddrNotAvail)?;
            dev.ifa_list()
                .iter()
                .filter(|a| {
                    *a == target
                        || (!target.is_secondary()
                            && a.is_secondary()
                            && a.ifa_prefixlen == target.ifa_prefixlen
                            && target.matches(a.ifa_address))
                })
                .cloned()
                .collect()
        };
        let old: Vec<MagicRoute> = doomed.iter().flat_map(|a| self.ifaddr_routes(a)).collect();
        let removed = self.devices.inet_del_ifa(ifindex, local, prefixlen)?;
        let wanted: Vec<MagicRoute> = self
            .devices
            .iter()
            .flat_map(|d| d.ifa_list().iter())
            .flat_map(|a| self.ifaddr_routes(a))
            .collect();
        for (dst, len, fa) in old {
            if !wanted.contains(&(dst, len, fa)) {
                let _ = self.fib.fib_table_delete(dst, len, |o| *o == fa);
            }
        }
        Ok(removed)
    }

    /// Marks a device up and adds the routes of each of its addresses
    /// (those an address on a down device does not get: broadcast and
    /// connected prefix routes); routes already there stay as they are.
    ///
    /// Mirrors `inetdev_event(NETDEV_UP)` and `fib_netdev_event(NETDEV_UP)`
    /// → `fib_add_ifaddr()` for every address. Errors: [`Errno::NoDev`].
    pub fn fib_netdev_up(&mut self, ifindex: u32) -> Result<(), Errno> {
        self.devices.set_up(ifindex, true)?;
        let ifas: Vec<InIfaddr> = self
            .devices
            .dev(ifindex)
            .map(|d| d.ifa_list().to_vec())
            .unwrap_or_default();
        for ifa in &ifas {
            for (dst, len, fa) in self.ifaddr_routes(ifa) {
                match self.fib.fib_table_insert(dst, len, fa, false) {
                    Ok(()) | Err(Errno::Exist) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Removes a device's addresses, the routes they brought and every
    /// other route through it, then its IPv4 state; returns the routes
    /// removed besides the address routes.
    ///
    /// Mirrors `inetdev_event(NETDEV_UNREGISTER)` → `inetdev_destroy()`
    /// (each address through `inet_del_ifa()` → `fib_del_ifaddr()`) and
    /// `fib_disable_ip()` → `fib_sync_down_dev()` for the routes left.
    /// Errors: [`Errno::NoDev`].
    pub fn inetdev_destroy(&mut self, ifindex: u32) -> Result<usize, Errno> {
        let addrs: Vec<(Ipv4Addr, u8)> = self
            .devices
            .dev(ifindex)
            .ok_or(Errno::NoDev)?
            .ifa_list()
            .iter()
            .filter(|a| !a.is_secondary())
            .map(|a| (a.ifa_local, a.ifa_prefixlen))
            .collect();
        for (local, len) in addrs {
            let _ = self.inet_rtm_deladdr(ifindex, local, len);
        }
        let doomed: Vec<(Ipv4Addr, u8, FibAlias)> = self
            .fib
            .routes()
            .filter(|(_, _, fa)| fa.nh.oif == ifindex)
            .map(|(d, l, fa)| (d, l, *fa))
            .collect();
        for (dst, len, fa) in &doomed {
            let _ = self.fib.fib_table_delete(*dst, *len, |o| o == fa);
        }
        self.devices.inetdev_destroy(ifindex)?;
        Ok(doomed.len())
    }

    /// `ip route add`.
    ///
    /// Mirrors `inet_rtm_newroute()` → `fib_create_info()` (with
    /// `fib_check_nh()`) → `fib_table_insert()` with `NLM_F_EXCL`. Defaults
    /// as iproute2 sends them: type unicast, protocol boot, scope host for
    /// local routes, link for broadcast and gateway-less unicast routes,
    /// global otherwise.
    ///
    /// Errors: [`Errno::OpNotSupp`] for a table other than main and local;
    /// [`Errno::Inval`] for a prefix with host bits, a gateway or device on
    /// an unreachable/blackhole/prohibit route, a unicast route with neither,
    /// a host-scope route with a gateway, or a preferred source that is not
    /// local; [`Errno::NoDev`] for an unknown device;
    /// [`Errno::NetUnreach`] for a gateway no connected route reaches;
    /// [`Errno::Exist`] for a route of the same table, prefix and metric.
    pub fn inet_rtm_newroute(&mut self, cfg: FibConfig) -> Result<(), Errno> {
        if cfg.table != RT_TABLE_MAIN && cfg.table != RT_TABLE_LOCAL {
            return Err(Errno::OpNotSupp);
        }
        key_of(cfg.dst, cfg.dst_len)?;
        let fa_type = cfg.fc_type.unwrap_or(RtnType::Unicast);
        if fa_type == RtnType::Multicast {
            return Err(Errno::Inval);
        }
        let scope = cfg.scope.unwrap_or(match fa_type {
            RtnType::Local => RtScope::Host,
            RtnType::Broadcast => RtScope::Link,
            RtnType::Unicast if cfg.gw.is_none() => RtScope::Link,
            _ => RtScope::Universe,
        });
        if scope > RtScope::Host {
            return Err(Errno::Inval);
        }
        if let Some(oif) = cfg.oif
            && self.devices.dev(oif).is_none()
        {
            return Err(Errno::NoDev);
        }
        let nh = if fa_type.error().is_some() {
            if cfg.gw.is_some() || cfg.oif.is_some() {
                return Err(Errno::Inval);
            }
            FibNh {
                gw: None,
                oif: 0,
                scope: RtScope::Nowhere,
            }
        } else if let Some(gw) = cfg.gw {
            if scope == RtScope::Host {
                return Err(Errno::Inval);
            }
            // fib_check_nh_v4_gw(): the gateway must be on a link route.
            let via = self.fib.lookup_scoped(gw, scope).ok_or(Errno::NetUnreach)?;
            if cfg.oif.is_some_and(|o| o != via.nh.oif) {
                return Err(Errno::NetUnreach);
            }
            FibNh {
                gw: Some(gw),
                oif: via.nh.oif,
                scope: RtScope::Link,
            }
        } else {
            let oif = cfg.oif.ok_or(Errno::Inval)?;
            FibNh {
                gw: None,
                oif,
                scope: RtScope::Host,
            }
        };
        if let Some(src) = cfg.prefsrc
            && !(fa_type == RtnType::Local && src == cfg.dst)
            && self.inet_addr_type(src) != RtnType::Local
        {
            return Err(Errno::Inval);
        }
        let fa = FibAlias {
            tb_id: cfg.table,
            fa_type,
            scope,
            protocol: cfg.protocol.unwrap_or(RtProt::Boot),
            priority: cfg.priority.unwrap_or(0),
            prefsrc: cfg.prefsrc,
            nh,
        };
        self.fib.fib_table_insert(cfg.dst, cfg.dst_len, fa, true)
    }

    /// `ip route del`: removes the first route of the prefix and table that
    /// matches every field `cfg` sets.
    ///
    /// Mirrors `inet_rtm_delroute()` → `fib_table_delete()`. Errors:
    /// [`Errno::Srch`] when no route matches.
    pub fn inet_rtm_delroute(&mut self, cfg: FibConfig) -> Result<FibAlias, Errno> {
        self.fib.fib_table_delete(cfg.dst, cfg.dst_len, |fa| {
            fa.tb_id == cfg.table
                && cfg.fc_type.is_none_or(|t| t == fa.fa_type)
                && cfg.scope.is_none_or(|s| s == fa.scope)
                && cfg.protocol.is_none_or(|p| p == fa.protocol)
                && cfg.priority.is_none_or(|p| p == fa.priority)
                && cfg.prefsrc.is_none_or(|s| Some(s) == fa.prefsrc)
                && cfg.gw.is_none_or(|g| Some(g) == fa.nh.gw)
                && cfg.oif.is_none_or(|o| o == fa.nh.oif)
        })
    }

    /// The type of an address from this host's point of view.
    ///
    /// Mirrors `inet_addr_type()`: 0.0.0.0 and 255.255.255.255 are
    /// broadcast, 224/4 multicast, otherwise the type of the matching route
    /// (local, broadcast, unicast), unicast when there is none.
    pub fn inet_addr_type(&self, addr: Ipv4Addr) -> RtnType {
        if addr.is_unspecified() || addr.is_broadcast() {
            return RtnType::Broadcast;
        }
        if addr.is_multicast() {
            return RtnType::Multicast;
        }
        self.fib
            .fib_lookup(addr)
            .map_or(RtnType::Unicast, |r| r.rt_type())
    }

    /// The source address for traffic matching `res`.
    ///
    /// Mirrors `fib_result_prefsrc()`: the route's preferred source, else
    /// the output device's address chosen by `inet_select_addr()` toward the
    /// gateway.
    pub fn fib_result_prefsrc(&self, res: &FibResult<'_>) -> Option<Ipv4Addr> {
        res.alias.prefsrc.or_else(|| {
            self.devices.inet_select_addr(
                res.alias.nh.oif,
                res.alias.nh.gw.unwrap_or(Ipv4Addr::UNSPECIFIED),
                res.alias.scope,
            )
        })
    }

    fn loopback_name(&self) -> &str {
        self.devices
            .iter()
            .find(|d| d.loopback)
            .map_or("lo", |d| d.name.as_str())
    }

    fn format_route(
        &self,
        out: &mut String,
        dst: Ipv4Addr,
        len: u8,
        fa: &FibAlias,
        show_table: bool,
    ) {
        if fa.fa_type != RtnType::Unicast {
            let _ = write!(out, "{} ", fa.fa_type.name());
        }
        match len {
            0 => out.push_str("default "),
            32 => {
                let _ = write!(out, "{dst} ");
            }
            _ => {
                let _ = write!(out, "{dst}/{len} ");
            }
        }
        if let Some(gw) = fa.nh.gw {
            let _ = write!(out, "via {gw} ");
        }
        if fa.nh.oif != 0 {
            let _ = write!(out, "dev {} ", self.devices.name(fa.nh.oif));
        }
        if show_table && fa.tb_id != RT_TABLE_MAIN {
            let _ = write!(out, "table {} ", table_name(fa.tb_id));
        }
        if fa.protocol != RtProt::Boot {
            let _ = write!(out, "proto {} ", fa.protocol.name());
        }
        if fa.scope != RtScope::Universe {
            let _ = write!(out, "scope {} ", fa.scope.name());
        }
        if let Some(src) = fa.prefsrc {
            let _ = write!(out, "src {src} ");
        }
        if fa.priority != 0 {
            let _ = write!(out, "metric {} ", fa.priority);
        }
        out.push('\n');
    }

    /// `ip route show [table main|local|all]` in iproute2's format (each
    /// route line ends with a space, as iproute2 prints it).
    ///
    /// Mirrors the `RTM_GETROUTE` dump (`fib_table_dump()`, main before
    /// local with `table all`) as iproute2's `print_route()` renders it.
    pub fn ip_route_show(&self, table: RouteTable) -> String {
        let mut out = String::new();
        let tables: &[u32] = match table {
            RouteTable::Main => &[RT_TABLE_MAIN],
            RouteTable::Local => &[RT_TABLE_LOCAL],
            RouteTable::All => &[RT_TABLE_MAIN, RT_TABLE_LOCAL],
        };
        for &tb in tables {
            for (dst, len, fa) in self.fib.routes().filter(|r| r.2.tb_id == tb) {
                self.format_route(&mut out, dst, len, fa, table == RouteTable::All);
            }
        }
        out
    }

    /// `ip route get ADDR` as iproute2 prints it (uid 0).
    ///
    /// Mirrors `inet_rtm_getroute()` → `ip_route_output_key_hash_rcu()`:
    /// local destinations leave through the loopback device with the route's
    /// preferred source; broadcast ones are flagged `<local,brd>`; others
    /// show the gateway, device and chosen source. Errors: those of
    /// [`Fib::fib_lookup`].
    #[doc(alias = "inet_rtm_getroute")]
    pub fn ip_route_get(&self, daddr: Ipv4Addr) -> Result<String, Errno> {
        let res = self.fib.fib_lookup(daddr)?;
        let fa = res.alias;
        let mut out = String::new();
        match fa.fa_type {
            RtnType::Local => {
                let src = fa.prefsrc.unwrap_or(daddr);
                let _ = write!(
                    out,
                    "local {daddr} dev {} table local src {src} uid 0 \n    cache <local> \n",
                    self.loopback_name()
                );
            }
            RtnType::Broadcast => {
                let src = self
                    .fib_result_prefsrc(&res)
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                let _ = write!(
                    out,
                    "broadcast {daddr} dev {} table local src {src} uid 0 \n    cache <local,brd> \n",
                    self.devices.name(fa.nh.oif)
                );
            }
            _ => {
                let src = self
                    .fib_result_prefsrc(&res)
                    .unwrap_or(Ipv4Addr::UNSPECIFIED);
                let _ = write!(out, "{daddr} ");
                if let Some(gw) = fa.nh.gw {
                    let _ = write!(out, "via {gw} ");
                }
                let _ = write!(
                    out,
                    "dev {} src {src} uid 0 \n    cache \n",
                    self.devices.name(fa.nh.oif)
                );
            }
        }
        Ok(out)
    }
}

/// A routing decision for one packet.
///
/// Mirrors the parts of `struct rtable` (with its `dst_entry`) that the
/// packet path reads: the route type (`rt_type`), the output device
/// (`dst.dev`), the gateway (`rt_gw4` when `rt_uses_gateway`) and the
/// source to use (`fl4->saddr` on output, `spec_dst` on input). It is
/// computed per packet, except the route a connected socket keeps
/// ([`InetSock::dst_cache`](crate::InetSock::dst_cache), `sk_dst_cache`)
/// with its next hop's neighbour ([`Rtable::neigh`]).
#[doc(alias = "rtable")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtable {
    /// `Local` and `Broadcast`/`Multicast` input routes deliver locally,
    /// `Unicast` forwards (input) or sends (output).
    pub rt_type: RtnType,
    /// The output device's ifindex ([`LOOPBACK_IFINDEX`](crate::LOOPBACK_IFINDEX)
    /// for local output, the input device for local input).
    pub oif: u32,
    /// The gateway, when the destination is not on link.
    pub gateway: Option<Ipv4Addr>,
    /// The source address for this route.
    pub prefsrc: Ipv4Addr,
    /// The output device's MTU (`dst_mtu()`); for local input routes the
    /// input device's.
    pub mtu: u32,
    /// The next hop's neighbour as a socket's cached route last found it
    /// connected (`dst->neighbour`); `None` from a lookup. Checked
    /// against the ARP table's generation before use.
    pub neigh: Option<crate::neighbour::NeighHint>,
}

impl Rtable {
    /// The address to resolve on the link: the gateway, else `daddr`.
    ///
    /// Mirrors `rt_nexthop()`.
    pub fn rt_nexthop(&self, daddr: Ipv4Addr) -> Ipv4Addr {
        self.gateway.unwrap_or(daddr)
    }
}

/// The keys of an output route lookup.
///
/// Mirrors `struct flowi4` (the fields IPv4 output uses).
#[doc(alias = "flowi4")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flowi4 {
    /// Destination (`daddr`); unspecified means "this host".
    pub daddr: Ipv4Addr,
    /// Source (`saddr`); unspecified lets the route choose, and the lookup
    /// fills it in.
    pub saddr: Ipv4Addr,
    /// Output device (`flowi4_oif`), 0 for any.
    pub oif: u32,
    /// IP protocol (`flowi4_proto`).
    pub proto: u8,
    /// TOS (`flowi4_tos`).
    pub tos: u8,
    /// Firewall mark (`flowi4_mark`).
    pub mark: u32,
}

impl Flowi4 {
    /// A flow to `daddr` for `proto`, any source, any device.
    pub fn new(daddr: Ipv4Addr, proto: u8) -> Flowi4 {
        Flowi4 {
            daddr,
            saddr: Ipv4Addr::UNSPECIFIED,
            oif: 0,
            proto,
            tos: 0,
            mark: 0,
        }
    }
}

/// What reverse-path filtering says of a source
/// ([`NetnsIpv4::fib_validate_source`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpFilter {
    /// The route back is good.
    Accept,
    /// No route back, or (strict) not through the arrival device: `-EXDEV`.
    Reject,
    /// The route back is not unicast (local, broadcast, ...): `-EINVAL`.
    Martian,
}

/// Why an input route lookup gave no route to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteInputError {
    /// The source is multicast, limited broadcast, `0.0.0.0/8` or loopback
    /// (`martian_source`).
    MartianSource,
    /// The destination is `0.0.0.0/8`, loopback, or a route type that cannot
    /// be forwarded (`martian_destination`).
    MartianDestination,
    /// A multicast group this host has not joined (`ip_route_input_mc()`
    /// not reached): dropped without a counter.
    NotOurMulticast,
    /// The route is an error route, built by `no_route`/`ip_error()`:
    /// `EHOSTUNREACH` (not for us and forwarding off, or an unreachable
    /// route), `ENETUNREACH` (no route), `EACCES` (prohibit), `EINVAL`
    /// (blackhole).
    Unreachable(Errno),
}

impl NetnsIpv4 {
    /// Routes a received datagram.
    ///
    /// Mirrors `ip_route_input_noref()` → `ip_route_input_slow()` in
    /// `net/ipv4/route.c`, in its order: multicast or limited-broadcast
    /// sources are martian; a limited-broadcast destination (or 0 → 0) is
    /// broadcast input; zero-net and loopback sources/destinations are
    /// martian; then the FIB: local and broadcast routes deliver locally
    /// (with `spec_dst` as [`Rtable::prefsrc`]), a unicast route forwards when
    /// `forwarding` (`IN_DEV_FORWARD`) is on, and everything else is an
    /// [`RouteInputError::Unreachable`] with the errno `ip_error()` acts on
    /// (with forwarding off every miss is `EHOSTUNREACH`).
    ///
    /// # Deviations from Linux
    ///
    /// The reverse-path filter (`rp_filter`) is applied by the caller
    /// ([`NetnsIpv4::fib_validate_source`]); no multicast groups (IGMP is
    /// not implemented); the redirect decision is `ip_forward()`'s.
    pub fn ip_route_input(
        &self,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
        ifindex: u32,
        forwarding: bool,
    ) -> Result<Rtable, RouteInputError> {
        self.ip_route_input_slow(daddr, saddr, ifindex, forwarding)
            .map(|rt| self.with_mtu(rt))
    }

    /// Fills in the output device's MTU.
    fn with_mtu(&self, mut rt: Rtable) -> Rtable {
        rt.mtu = self.devices.dev(rt.oif).map_or(0, |d| d.mtu);
        rt
    }

    fn ip_route_input_slow(
        &self,
        daddr: Ipv4Addr,
        saddr: Ipv4Addr,
        ifindex: u32,
        forwarding: bool,
    ) -> Result<Rtable, RouteInputError> {
        let local_src = |r: &Self| {
            r.devices
                .inet_select_addr(ifindex, saddr, RtScope::Link)
                .unwrap_or(Ipv4Addr::UNSPECIFIED)
        };
        if daddr.is_multicast() {
            return Err(RouteInputError::NotOurMulticast);
        }
        if saddr.is_multicast() || saddr.is_broadcast() {
            return Err(RouteInputError::MartianSource);
        }
        if daddr.is_broadcast() || (saddr.is_unspecified() && daddr.is_unspecified()) {
            if !saddr.is_unspecified() && self.own_source(saddr, ifindex) {
                return Err(RouteInputError::MartianSource);
            }
            return Ok(Rtable {
                mtu: 0,
                neigh: None,
                rt_type: RtnType::Broadcast,
                oif: ifindex,
                gateway: None,
                prefsrc: local_src(self),
            });
        }
        if saddr.octets()[0] == 0 {
            return Err(RouteInputError::MartianSource);
        }
        if daddr.octets()[0] == 0 || daddr.is_loopback() {
            return Err(RouteInputError::MartianDestination);
        }
        if saddr.is_loopback() {
            return Err(RouteInputError::MartianSource);
        }
        let res = match self.fib.fib_lookup(daddr) {
            Ok(res) => res,
            Err(e) => {
                let e = if forwarding { e } else { Errno::HostUnreach };
                return Err(RouteInputError::Unreachable(e));
            }
        };
        if self.own_source(saddr, ifindex) {
            return Err(RouteInputError::MartianSource);
        }
        match res.rt_type() {
            RtnType::Broadcast => Ok(Rtable {
                mtu: 0,
                neigh: None,
                rt_type: RtnType::Broadcast,
                oif: ifindex,
                gateway: None,
                prefsrc: local_src(self),
            }),
            RtnType::Local => Ok(Rtable {
                mtu: 0,
                neigh: None,
                rt_type: RtnType::Local,
                oif: ifindex,
                gateway: None,
                prefsrc: daddr,
            }),
            _ if !forwarding => Err(RouteInputError::Unreachable(Errno::HostUnreach)),
            RtnType::Unicast => Ok(Rtable {
                mtu: 0,
                neigh: None,
                rt_type: RtnType::Unicast,
                oif: res.alias.nh.oif,
                gateway: res.alias.nh.gw,
                prefsrc: self
                    .fib_result_prefsrc(&res)
                    .unwrap_or(Ipv4Addr::UNSPECIFIED),
            }),
            _ => Err(RouteInputError::MartianDestination),
        }
    }

    /// Reverse-path filtering of a datagram from `saddr` that arrived on
    /// `ifindex`: the route back to `saddr` must be a unicast one, and in
    /// strict mode (`rp_filter=1`) leave through `ifindex` itself; in loose
    /// mode (2) any unicast route back will do. Mirrors
    /// `__fib_validate_source()` with `rpf` set (RFC 3704): no route back
    /// is `-EXDEV` ([`RpFilter::Reject`], counted `IPReversePathFilter`), a
    /// route back that is not unicast is `-EINVAL` (a martian source).
    pub fn fib_validate_source(&self, saddr: Ipv4Addr, ifindex: u32, strict: bool) -> RpFilter {
        match self.fib.fib_lookup(saddr) {
            Ok(res) if res.rt_type() == RtnType::Unicast => {
                if res.alias.nh.oif == ifindex || !strict {
                    RpFilter::Accept
                } else {
                    RpFilter::Reject
                }
            }
            Ok(_) => RpFilter::Martian,
            Err(_) => RpFilter::Reject,
        }
    }

    /// Whether `saddr`, seen on a datagram that arrived on `ifindex`, is one
    /// of this host's own addresses coming in from outside (a LAND-style
    /// spoof).
    ///
    /// Mirrors the `rp_filter=0` fast path of `fib_validate_source()`: with
    /// `accept_local=0` (Linux's default) a local address as source is
    /// `-EINVAL`, i.e. a martian source, unless the device is loopback.
    /// `accept_local` itself is not implemented (always 0).
    pub(crate) fn own_source(&self, saddr: Ipv4Addr, ifindex: u32) -> bool {
        ifindex != crate::context::LOOPBACK_IFINDEX && self.devices.ifa_by_local(saddr).is_some()
    }

    /// Routes a datagram this host sends, filling in `fl4.saddr` when unset.
    ///
    /// Mirrors `ip_route_output_key()` → `ip_route_output_key_hash_rcu()`
    /// and `__mkroute_output()`: a set source must be local; no destination
    /// means this host (127.0.0.1 when no source either); a device with a
    /// limited-broadcast or multicast destination needs no lookup; a local
    /// route goes out by loopback with the destination (or the route's
    /// preferred source) as source; otherwise the FIB's route, or the named
    /// device assumed on link when the FIB's route leaves by another one.
    /// Limited broadcast gives a broadcast route and 224/4 a multicast one.
    ///
    /// # Errors
    ///
    /// [`Errno::Inval`] for a source that is not local or not unicast;
    /// [`Errno::NoDev`] for an unknown `oif`; the FIB's errors
    /// ([`Errno::NetUnreach`], [`Errno::HostUnreach`], …).
    pub fn ip_route_output_key(&self, fl4: &mut Flowi4) -> Result<Rtable, Errno> {
        self.ip_route_output_key_hash(fl4)
            .map(|rt| self.with_mtu(rt))
    }

    fn ip_route_output_key_hash(&self, fl4: &mut Flowi4) -> Result<Rtable, Errno> {
        let lo = crate::context::LOOPBACK_IFINDEX;
        if !fl4.saddr.is_unspecified() {
            if fl4.saddr.is_multicast() || fl4.saddr.is_broadcast() || fl4.saddr.octets()[0] == 0 {
                return Err(Errno::Inval);
            }
            if self.inet_addr_type(fl4.saddr) != RtnType::Local {
                return Err(Errno::Inval);
            }
        }
        if fl4.oif != 0 {
            if self.devices.dev(fl4.oif).is_none() {
                return Err(Errno::NoDev);
            }
            if fl4.daddr.is_broadcast() || fl4.daddr.is_multicast() {
                if fl4.saddr.is_unspecified() {
                    fl4.saddr = self
                        .devices
                        .inet_select_addr(fl4.oif, Ipv4Addr::UNSPECIFIED, RtScope::Link)
                        .unwrap_or(Ipv4Addr::UNSPECIFIED);
                }
                let rt_type = if fl4.daddr.is_broadcast() {
                    RtnType::Broadcast
                } else {
                    RtnType::Multicast
                };
                return Ok(Rtable {
                    mtu: 0,
                    neigh: None,
                    rt_type,
                    oif: fl4.oif,
                    gateway: None,
                    prefsrc: fl4.saddr,
                });
            }
        }
        if fl4.daddr.is_unspecified() {
            fl4.daddr = fl4.saddr;
            if fl4.daddr.is_unspecified() {
                fl4.daddr = Ipv4Addr::LOCALHOST;
                fl4.saddr = Ipv4Addr::LOCALHOST;
            }
            return Ok(Rtable {
                mtu: 0,
                neigh: None,
                rt_type: RtnType::Local,
                oif: lo,
                gateway: None,
                prefsrc: fl4.saddr,
            });
        }
        let res = match self.fib.fib_lookup(fl4.daddr) {
            Ok(res) => res,
            Err(e) if fl4.oif == 0 => return Err(e),
            Err(_) => {
                // "Routing tables are wrong: assume the destination is on link."
                if fl4.saddr.is_unspecified() {
                    fl4.saddr = self
                        .devices
                        .inet_select_addr(fl4.oif, Ipv4Addr::UNSPECIFIED, RtScope::Link)
                        .unwrap_or(Ipv4Addr::UNSPECIFIED);
                }
                return Ok(Rtable {
                    mtu: 0,
                    neigh: None,
                    rt_type: RtnType::Unicast,
                    oif: fl4.oif,
                    gateway: None,
                    prefsrc: fl4.saddr,
                });
            }
        };
        if res.rt_type() == RtnType::Local {
            if fl4.saddr.is_unspecified() {
                fl4.saddr = res.alias.prefsrc.unwrap_or(fl4.daddr);
            }
            return Ok(Rtable {
                mtu: 0,
                neigh: None,
                rt_type: RtnType::Local,
                oif: lo,
                gateway: None,
                prefsrc: fl4.saddr,
            });
        }
        let (oif, gateway) = if fl4.oif != 0 && fl4.oif != res.alias.nh.oif {
            (fl4.oif, None)
        } else {
            (res.alias.nh.oif, res.alias.nh.gw)
        };
        if fl4.saddr.is_unspecified() {
            fl4.saddr = if oif == res.alias.nh.oif {
                self.fib_result_prefsrc(&res)
            } else {
                self.devices.inet_select_addr(oif, fl4.daddr, RtScope::Link)
            }
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        }
        let rt_type = if fl4.daddr.is_broadcast() || res.rt_type() == RtnType::Broadcast {
            RtnType::Broadcast
        } else if fl4.daddr.is_multicast() {
            RtnType::Multicast
        } else {
            RtnType::Unicast
        };
        Ok(Rtable {
            mtu: 0,
            neigh: None,
            rt_type,
            oif,
            gateway,
            prefsrc: fl4.saddr,
        })
    }
}

impl fmt::Display for RtScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn host() -> NetnsIpv4 {
        let mut net = NetnsIpv4::new();
        net.devices.inetdev_init(1, "lo", true).unwrap();
        net.devices.inetdev_init(2, "eth0", false).unwrap();
        net.inet_rtm_newaddr(InIfaddr::new(1, ip("127.0.0.1"), 8, "lo").with_scope(RtScope::Host))
            .unwrap();
        net.inet_rtm_newaddr(InIfaddr::new(2, ip("198.18.0.1"), 24, "eth0").with_brd_plus())
            .unwrap();
        net
    }

    #[test]
    fn address_routes_exactly_as_linux_lists_them() {
        let net = host();
        assert_eq!(
            net.ip_route_show(RouteTable::Local),
            "local 127.0.0.0/8 dev lo proto kernel scope host src 127.0.0.1 \n\
             local 127.0.0.1 dev lo proto kernel scope host src 127.0.0.1 \n\
             broadcast 127.255.255.255 dev lo proto kernel scope link src 127.0.0.1 \n\
             local 198.18.0.1 dev eth0 proto kernel scope host src 198.18.0.1 \n\
             broadcast 198.18.0.255 dev eth0 proto kernel scope link src 198.18.0.1 \n"
        );
        assert_eq!(
            net.ip_route_show(RouteTable::Main),
            "198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.1 \n"
        );
        assert_eq!(
            net.ip_route_show(RouteTable::All),
            "198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.1 \n\
             local 127.0.0.0/8 dev lo table local proto kernel scope host src 127.0.0.1 \n\
             local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1 \n\
             broadcast 127.255.255.255 dev lo table local proto kernel scope link src 127.0.0.1 \n\
             local 198.18.0.1 dev eth0 table local proto kernel scope host src 198.18.0.1 \n\
             broadcast 198.18.0.255 dev eth0 table local proto kernel scope link src 198.18.0.1 \n"
        );
    }

    #[test]
    fn secondary_address_and_deletion() {
        let mut net = host();
        net.inet_rtm_newaddr(InIfaddr::new(2, ip("198.18.0.9"), 24, "eth0").with_brd_plus())
            .unwrap();
        // A secondary brings only its local route, with the primary as source.
        assert_eq!(
            net.ip_route_show(RouteTable::Local)
                .lines()
                .filter(|l| l.contains("198.18"))
                .collect::<Vec<_>>(),
            [
                "local 198.18.0.1 dev eth0 proto kernel scope host src 198.18.0.1 ",
                "local 198.18.0.9 dev eth0 proto kernel scope host src 198.18.0.1 ",
                "broadcast 198.18.0.255 dev eth0 proto kernel scope link src 198.18.0.1 ",
            ]
        );
        // Deleting the secondary keeps the primary's routes.
        net.inet_rtm_deladdr(2, ip("198.18.0.9"), 24).unwrap();
        assert_eq!(net.fib.nr_routes(), 6);
        // Deleting the primary removes everything it brought.
        net.inet_rtm_deladdr(2, ip("198.18.0.1"), 24).unwrap();
        assert_eq!(net.ip_route_show(RouteTable::Main), "");
        assert!(!net.ip_route_show(RouteTable::Local).contains("198.18"));
        assert_eq!(net.fib.nr_routes(), 3);
    }

    #[test]
    fn static_routes_lookup_and_route_get() {
        let mut net = host();
        net.inet_rtm_newroute(FibConfig::new(ip("0.0.0.0"), 0).via(ip("198.18.0.254")))
            .unwrap();
        net.inet_rtm_newroute(
            FibConfig::new(ip("198.19.0.0"), 16)
                .via(ip("198.18.0.253"))
                .metric(100)
                .proto(RtProt::Static),
        )
        .unwrap();
        net.inet_rtm_newroute(FibConfig::new(ip("198.19.5.0"), 24).rtn_type(RtnType::Unreachable))
            .unwrap();
        net.inet_rtm_newroute(FibConfig::new(ip("198.19.6.0"), 24).rtn_type(RtnType::Blackhole))
            .unwrap();
        net.inet_rtm_newroute(FibConfig::new(ip("198.19.7.0"), 24).rtn_type(RtnType::Prohibit))
            .unwrap();
        assert_eq!(
            net.ip_route_show(RouteTable::Main),
            "default via 198.18.0.254 dev eth0 \n\
             198.18.0.0/24 dev eth0 proto kernel scope link src 198.18.0.1 \n\
             198.19.0.0/16 via 198.18.0.253 dev eth0 proto static metric 100 \n\
             unreachable 198.19.5.0/24 \n\
             blackhole 198.19.6.0/24 \n\
             prohibit 198.19.7.0/24 \n"
        );
        assert_eq!(
            net.ip_route_get(ip("198.18.1.5")).unwrap(),
            "198.18.1.5 via 198.18.0.254 dev eth0 src 198.18.0.1 uid 0 \n    cache \n"
        );
        assert_eq!(
            net.ip_route_get(ip("198.18.0.7")).unwrap(),
            "198.18.0.7 dev eth0 src 198.18.0.1 uid 0 \n    cache \n"
        );
        assert_eq!(
            net.ip_route_get(ip("198.18.0.1")).unwrap(),
            "local 198.18.0.1 dev lo table local src 198.18.0.1 uid 0 \n    cache <local> \n"
        );
        assert_eq!(
            net.ip_route_get(ip("198.18.0.255")).unwrap(),
            "broadcast 198.18.0.255 dev eth0 table local src 198.18.0.1 uid 0 \n    cache <local,brd> \n"
        );
        let r = net.fib.fib_lookup(ip("198.19.4.4")).unwrap();
        assert_eq!((r.prefix, r.prefixlen), (ip("198.19.0.0"), 16));
        assert_eq!(r.alias.nh.gw, Some(ip("198.18.0.253")));
        assert_eq!(
            net.fib.fib_lookup(ip("198.19.5.1")).unwrap_err(),
            Errno::HostUnreach
        );
        assert_eq!(
            net.fib.fib_lookup(ip("198.19.6.1")).unwrap_err(),
            Errno::Inval
        );
        assert_eq!(
            net.fib.fib_lookup(ip("198.19.7.1")).unwrap_err(),
            Errno::Acces
        );
        assert_eq!(net.inet_addr_type(ip("198.18.0.1")), RtnType::Local);
        assert_eq!(net.inet_addr_type(ip("198.18.0.255")), RtnType::Broadcast);
        assert_eq!(net.inet_addr_type(ip("198.18.0.2")), RtnType::Unicast);
        assert_eq!(net.inet_addr_type(ip("224.0.0.1")), RtnType::Multicast);

        // Errors, as the kernel answers them.
        let dup = FibConfig::new(ip("0.0.0.0"), 0).via(ip("198.18.0.200"));
        assert_eq!(net.inet_rtm_newroute(dup), Err(Errno::Exist));
        assert_eq!(net.inet_rtm_newroute(dup.metric(5)), Ok(()));
        assert_eq!(
            net.inet_rtm_newroute(FibConfig::new(ip("198.20.0.1"), 16).dev(2)),
            Err(Errno::Inval)
        );
        assert_eq!(
            net.inet_rtm_newroute(FibConfig::new(ip("198.20.0.0"), 16).via(ip("203.0.113.1"))),
            Err(Errno::NetUnreach)
        );
        assert_eq!(
            net.inet_rtm_newroute(FibConfig::new(ip("198.20.0.0"), 16).dev(9)),
            Err(Errno::NoDev)
        );
        assert_eq!(
            net.inet_rtm_newroute(
                FibConfig::new(ip("198.20.0.0"), 16)
                    .dev(2)
                    .src(ip("198.18.0.2"))
            ),
            Err(Errno::Inval)
        );
        assert_eq!(
            net.inet_rtm_newroute(FibConfig::new(ip("198.20.0.0"), 16).dev(2).table(100)),
            Err(Errno::OpNotSupp)
        );
        assert_eq!(
            net.inet_rtm_newroute(
                FibConfig::new(ip("198.20.0.0"), 16)
                    .rtn_type(RtnType::Unreachable)
                    .dev(2)
            ),
            Err(Errno::Inval)
        );
        // Delete by prefix; the metric-0 default goes first.
        let gone = net
            .inet_rtm_delroute(FibConfig::new(ip("0.0.0.0"), 0))
            .unwrap();
        assert_eq!(gone.nh.gw, Some(ip("198.18.0.254")));
        assert_eq!(
            net.ip_route_get(ip("203.0.113.9")).unwrap(),
            "203.0.113.9 via 198.18.0.200 dev eth0 src 198.18.0.1 uid 0 \n    cache \n"
        );
        assert_eq!(
            net.inet_rtm_delroute(FibConfig::new(ip("198.21.0.0"), 16)),
            Err(Errno::Srch)
        );
        net.inet_rtm_delroute(FibConfig::new(ip("0.0.0.0"), 0))
            .unwrap();
        assert_eq!(net.ip_route_get(ip("203.0.113.9")), Err(Errno::NetUnreach));
    }

    #[test]
    fn input_routes_follow_ip_route_input_slow() {
        let mut net = host();
        net.inet_rtm_newroute(FibConfig::new(ip("198.18.9.0"), 24).via(ip("198.18.0.254")))
            .unwrap();
        let peer = ip("198.18.0.2");
        let local = net
            .ip_route_input(ip("198.18.0.1"), peer, 2, false)
            .unwrap();
        assert_eq!(
            (local.rt_type, local.oif, local.prefsrc),
            (RtnType::Local, 2, ip("198.18.0.1"))
        );
        let brd = net
            .ip_route_input(ip("198.18.0.255"), peer, 2, false)
            .unwrap();
        assert_eq!(
            (brd.rt_type, brd.prefsrc),
            (RtnType::Broadcast, ip("198.18.0.1"))
        );
        let lbc = net
            .ip_route_input(Ipv4Addr::BROADCAST, peer, 2, false)
            .unwrap();
        assert_eq!(lbc.rt_type, RtnType::Broadcast);
        // Not for us: forwarding decides.
        assert_eq!(
            net.ip_route_input(ip("198.18.9.9"), peer, 2, false),
            Err(RouteInputError::Unreachable(Errno::HostUnreach))
        );
        let fwd = net.ip_route_input(ip("198.18.9.9"), peer, 2, true).unwrap();
        assert_eq!(
            (fwd.rt_type, fwd.gateway),
            (RtnType::Unicast, Some(ip("198.18.0.254")))
        );
        assert_eq!(fwd.rt_nexthop(ip("198.18.9.9")), ip("198.18.0.254"));
        assert_eq!(
            net.ip_route_input(ip("203.0.113.1"), peer, 2, true),
            Err(RouteInputError::Unreachable(Errno::NetUnreach))
        );
        assert_eq!(
            net.ip_route_input(ip("203.0.113.1"), peer, 2, false),
            Err(RouteInputError::Unreachable(Errno::HostUnreach))
        );
        // Martians.
        for (d, s, e) in [
            (
                ip("198.18.0.1"),
                ip("224.0.0.1"),
                RouteInputError::MartianSource,
            ),
            (
                ip("198.18.0.1"),
                Ipv4Addr::BROADCAST,
                RouteInputError::MartianSource,
            ),
            (
                ip("198.18.0.1"),
                ip("0.1.2.3"),
                RouteInputError::MartianSource,
            ),
            (
                ip("198.18.0.1"),
                ip("127.0.0.1"),
                RouteInputError::MartianSource,
            ),
            (ip("127.0.0.1"), peer, RouteInputError::MartianDestination),
            (ip("0.0.0.7"), peer, RouteInputError::MartianDestination),
            (ip("239.1.1.1"), peer, RouteInputError::NotOurMulticast),
        ] {
            assert_eq!(net.ip_route_input(d, s, 2, true), Err(e), "{d} from {s}");
        }
    }

    #[test]
    fn output_routes_choose_device_gateway_and_source() {
        let mut net = host();
        net.inet_rtm_newroute(FibConfig::new(Ipv4Addr::UNSPECIFIED, 0).via(ip("198.18.0.254")))
            .unwrap();
        let mut fl4 = Flowi4::new(ip("203.0.113.5"), 17);
        let rt = net.ip_route_output_key(&mut fl4).unwrap();
        assert_eq!(
            (rt.rt_type, rt.oif, rt.gateway, fl4.saddr),
            (
                RtnType::Unicast,
                2,
                Some(ip("198.18.0.254")),
                ip("198.18.0.1")
            )
        );
        let mut fl4 = Flowi4::new(ip("198.18.0.7"), 17);
        let rt = net.ip_route_output_key(&mut fl4).unwrap();
        assert_eq!(
            (rt.gateway, rt.rt_nexthop(fl4.daddr)),
            (None, ip("198.18.0.7"))
        );
        // To ourselves: loopback, the destination as source.
        let mut fl4 = Flowi4::new(ip("198.18.0.1"), 1);
        let rt = net.ip_route_output_key(&mut fl4).unwrap();
        assert_eq!(
            (rt.rt_type, rt.oif, fl4.saddr),
            (RtnType::Local, 1, ip("198.18.0.1"))
        );
        let mut fl4 = Flowi4::new(Ipv4Addr::UNSPECIFIED, 1);
        let rt = net.ip_route_output_key(&mut fl4).unwrap();
        assert_eq!(
            (rt.rt_type, fl4.daddr, fl4.saddr),
            (RtnType::Local, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST)
        );
        // Broadcast on a named device.
        let mut fl4 = Flowi4::new(Ipv4Addr::BROADCAST, 17);
        fl4.oif = 2;
        let rt = net.ip_route_output_key(&mut fl4).unwrap();
        assert_eq!(
            (rt.rt_type, rt.oif, fl4.saddr),
            (RtnType::Broadcast, 2, ip("198.18.0.1"))
        );
        let mut fl4 = Flowi4::new(ip("198.18.0.255"), 17);
        assert_eq!(
            net.ip_route_output_key(&mut fl4).unwrap().rt_type,
            RtnType::Broadcast
        );
        // A source that is not ours, an unknown device, no route.
        let mut fl4 = Flowi4::new(ip("198.18.0.7"), 17);
        fl4.saddr = ip("198.18.0.99");
        assert_eq!(net.ip_route_output_key(&mut fl4), Err(Errno::Inval));
        let mut fl4 = Flowi4::new(ip("198.18.0.7"), 17);
        fl4.oif = 9;
        assert_eq!(net.ip_route_output_key(&mut fl4), Err(Errno::NoDev));
        let bare = host();
        let mut fl4 = Flowi4::new(ip("203.0.113.5"), 17);
        assert_eq!(bare.ip_route_output_key(&mut fl4), Err(Errno::NetUnreach));
        // With the device named, a destination off every route is on link.
        fl4.oif = 2;
        let rt = bare.ip_route_output_key(&mut fl4).unwrap();
        assert_eq!((rt.oif, rt.gateway, fl4.saddr), (2, None, ip("198.18.0.1")));
    }
}

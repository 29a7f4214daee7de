//! IPv4 on a host: `inet_init` and the reports of `ip`.

use crate::host::HostShared;

/// `ip addr show`.
pub(crate) fn ip_addr_show(_s: &HostShared) -> String {
    String::new()
}

/// `ip route show`.
pub(crate) fn ip_route_show(_s: &HostShared) -> String {
    String::new()
}

/// `ip neigh show`.
pub(crate) fn ip_neigh_show(_s: &HostShared) -> String {
    String::new()
}

//! The standard priorities of the IPv4 hooks.
//!
//! Mirrors `enum nf_ip_hook_priorities` in
//! `include/uapi/linux/netfilter_ipv4.h`. At one hook point, hooks run from
//! the lowest priority to the highest: conntrack (-200) sees a packet before
//! the `mangle` table (-150), destination NAT (-100), the `filter` table (0)
//! and source NAT (100); conntrack confirms the connection last.

/// Runs before every other hook (`INT_MIN`).
pub const NF_IP_PRI_FIRST: i32 = i32::MIN;
/// The `raw` table when it must run before defragmentation
/// (`raw_before_defrag` module parameter).
pub const NF_IP_PRI_RAW_BEFORE_DEFRAG: i32 = -450;
/// Defragmentation for connection tracking (`nf_defrag_ipv4`).
pub const NF_IP_PRI_CONNTRACK_DEFRAG: i32 = -400;
/// The `raw` table (`NOTRACK`/`CT` targets run before conntrack).
pub const NF_IP_PRI_RAW: i32 = -300;
/// SELinux's first hook.
pub const NF_IP_PRI_SELINUX_FIRST: i32 = -225;
/// Connection tracking (`nf_conntrack_in`).
pub const NF_IP_PRI_CONNTRACK: i32 = -200;
/// The `mangle` table.
pub const NF_IP_PRI_MANGLE: i32 = -150;
/// Destination NAT (the `nat` table's PREROUTING and OUTPUT chains).
pub const NF_IP_PRI_NAT_DST: i32 = -100;
/// The `filter` table.
pub const NF_IP_PRI_FILTER: i32 = 0;
/// The `security` table.
pub const NF_IP_PRI_SECURITY: i32 = 50;
/// Source NAT (the `nat` table's INPUT and POSTROUTING chains).
pub const NF_IP_PRI_NAT_SRC: i32 = 100;
/// SELinux's last hook.
pub const NF_IP_PRI_SELINUX_LAST: i32 = 225;
/// Conntrack helpers (FTP, SIP, ...).
pub const NF_IP_PRI_CONNTRACK_HELPER: i32 = 300;
/// Conntrack confirmation: inserts a new connection into the table after
/// every other hook accepted the packet (`INT_MAX`).
pub const NF_IP_PRI_CONNTRACK_CONFIRM: i32 = i32::MAX;
/// Runs after every other hook (`INT_MAX`).
pub const NF_IP_PRI_LAST: i32 = i32::MAX;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_the_kernel_values_in_the_kernel_order() {
        let ordered = [
            NF_IP_PRI_FIRST,
            NF_IP_PRI_RAW_BEFORE_DEFRAG,
            NF_IP_PRI_CONNTRACK_DEFRAG,
            NF_IP_PRI_RAW,
            NF_IP_PRI_SELINUX_FIRST,
            NF_IP_PRI_CONNTRACK,
            NF_IP_PRI_MANGLE,
            NF_IP_PRI_NAT_DST,
            NF_IP_PRI_FILTER,
            NF_IP_PRI_SECURITY,
            NF_IP_PRI_NAT_SRC,
            NF_IP_PRI_SELINUX_LAST,
            NF_IP_PRI_CONNTRACK_HELPER,
            NF_IP_PRI_CONNTRACK_CONFIRM,
        ];
        assert!(ordered.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            ordered[1..13],
            [
                -450, -400, -300, -225, -200, -150, -100, 0, 50, 100, 225, 300
            ]
        );
        assert_eq!(NF_IP_PRI_LAST, NF_IP_PRI_CONNTRACK_CONFIRM);
    }
}

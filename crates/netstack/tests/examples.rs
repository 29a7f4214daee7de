//! The examples' code, run as tests: a user-written qdisc and a
//! user-written `ptype_all` handler in a running host.

#[allow(dead_code)]
#[path = "../examples/custom_qdisc.rs"]
mod custom_qdisc;
#[allow(dead_code)]
#[path = "../examples/icmp_tap.rs"]
mod icmp_tap;

#[test]
fn a_user_qdisc_drops_every_third_packet() {
    let (received, tc) = custom_qdisc::run().unwrap();
    // Queue 0 carries everything of this one flow: ARP request (1), echo 1
    // (2), echo 2 (3, dropped), 3, 4, echo 5 (6, dropped), 6.
    assert_eq!(received, 4, "{tc}");
    assert!(tc.contains("drop_nth every 3"), "{tc}");
    assert!(tc.contains("dropped 2"), "{tc}");
}

#[test]
fn a_user_tap_sees_both_directions() {
    let counts = icmp_tap::run().unwrap();
    assert_eq!(counts, vec![((false, 0), 3), ((true, 8), 3)]);
}

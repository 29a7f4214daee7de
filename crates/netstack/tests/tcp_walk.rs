//! The walk of a TCP data segment (`netstack::run_tcp_walk`): the stages
//! it passes on both hosts, then its ACK. In a binary of its own, as
//! `tracing`'s per-callsite interest is process-wide and walks are
//! recorded with a thread-local subscriber.

/// `run_tcp_walk`: one data segment's path through both hosts, in the
/// order of ARCHITECTURE.md §3, then the ACK coming back.
#[test]
fn the_walk_of_a_tcp_data_segment() {
    let w = netstack::run_tcp_walk(1, 100).unwrap();
    let names = |host: &str, walk: &netstack::Walk| -> Vec<String> {
        walk.stages
            .iter()
            .filter(|s| s.host == host)
            .map(|s| s.name.clone())
            .collect()
    };
    let in_order = |have: &[String], want: &[&str]| {
        let mut at = 0;
        for stage in want {
            let found = have[at..].iter().position(|s| s == stage);
            assert!(found.is_some(), "{stage} missing after {:?}", &have[..at]);
            at += found.unwrap_or(0) + 1;
        }
    };
    let h1 = names("h1", &w.data);
    in_order(
        &h1,
        &[
            "tcp_sendmsg",
            "tcp_transmit_skb",
            "dev_queue_xmit",
            "qdisc_run",
        ],
    );
    let h2 = names("h2", &w.data);
    in_order(
        &h2,
        &[
            "net_rx_action",
            "napi_poll",
            "napi_gro_receive",
            "netif_receive_skb",
            "ip_rcv",
            "ip_local_deliver",
            "tcp_v4_rcv",
            "tcp_data_queue",
        ],
    );
    // The segment carries the 100 bytes written.
    let tx = w
        .data
        .stages
        .iter()
        .find(|s| s.host == "h1" && s.name == "tcp_transmit_skb")
        .unwrap();
    assert_eq!(tx.field("len"), Some("100"));
    // Then h2 ACKs it back to h1, and the reader takes the bytes.
    let back = names("h2", &w.ack);
    assert!(back.iter().any(|s| s == "tcp_transmit_skb"), "{back:?}");
    assert!(back.iter().any(|s| s == "tcp_recvmsg"), "{back:?}");
    assert!(names("h1", &w.ack).iter().any(|s| s == "tcp_v4_rcv"));
    assert!(netstack::run_tcp_walk(1, 0).is_err());
}

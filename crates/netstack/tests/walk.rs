//! The walk of an echo request lists the ingress stages of the
//! architecture's packet path in order.

#[test]
fn the_walk_of_an_echo_request_lists_the_ingress_stages_in_order() {
    let w = netstack::run_walk(1).unwrap();
    let on_h2: Vec<&str> = w
        .request
        .stages
        .iter()
        .filter(|s| s.host == "h2")
        .map(|s| s.name.as_str())
        .collect();
    // ARCHITECTURE.md §3, the stages this model has so far.
    let want = [
        "nic_rx: wire, MAC filter, FCS, DMA to rx ring, DD",
        "handle_irq",
        "napi_schedule",
        "net_rx_action",
        "napi_poll",
        "napi_gro_receive",
        "netif_receive_skb",
        "icmp_rcv",
    ];
    let mut at = 0;
    for stage in want {
        let found = on_h2[at..].iter().position(|s| *s == stage);
        assert!(
            found.is_some(),
            "{stage} missing after {:?} in {on_h2:?}",
            &on_h2[..at]
        );
        at += found.unwrap_or(0) + 1;
    }
    // The request starts with the sender's stages on h1.
    assert_eq!(w.request.stages[0].name, "ping_v4_sendmsg");
    assert_eq!(w.request.stages[0].host, "h1");
    let egress: Vec<&str> = w.request.names();
    let q = egress.iter().position(|s| *s == "ip_queue_xmit").unwrap();
    let d = egress.iter().position(|s| *s == "dev_queue_xmit").unwrap();
    assert!(q < d);
    // The reply arrives back on h1's ping socket.
    assert!(
        w.reply
            .stages
            .iter()
            .any(|s| s.host == "h1" && s.name == "ping_rcv")
    );
    assert!(w.reply.to_text().contains("left=299"));
}

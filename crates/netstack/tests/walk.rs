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
        "ip_rcv",
        "NF_INET_PRE_ROUTING",
        "ip_route_input",
        "ip_local_deliver",
        "NF_INET_LOCAL_IN",
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
    // Egress on h1, in the order of ARCHITECTURE.md §3 (ARP is resolved,
    // so neigh_output takes the cached header: neigh_hh_output).
    let egress: Vec<&str> = w
        .request
        .stages
        .iter()
        .filter(|s| s.host == "h1")
        .map(|s| s.name.as_str())
        .collect();
    let want = [
        "ip_queue_xmit",
        "NF_INET_LOCAL_OUT",
        "ip_output",
        "NF_INET_POST_ROUTING",
        "neigh_hh_output",
        "dev_queue_xmit",
    ];
    let pos: Vec<Option<usize>> = want
        .iter()
        .map(|w| egress.iter().position(|s| s == w))
        .collect();
    assert!(
        pos.iter().all(Option::is_some),
        "{want:?} not all in {egress:?}"
    );
    assert!(
        pos.windows(2).all(|p| p[0] < p[1]),
        "{want:?} out of order in {egress:?}"
    );
    // The hook points carry their verdict and the route its decision.
    let stage = |name: &str| {
        w.request
            .stages
            .iter()
            .find(|s| s.host == "h2" && s.name == name)
    };
    assert_eq!(
        stage("NF_INET_PRE_ROUTING").and_then(|s| s.field("verdict")),
        Some("NF_ACCEPT")
    );
    assert_eq!(
        stage("ip_route_input").and_then(|s| s.field("decision")),
        Some("local")
    );
    // The reply arrives back on h1's ping socket.
    assert!(
        w.reply
            .stages
            .iter()
            .any(|s| s.host == "h1" && s.name == "ping_rcv")
    );
    assert!(w.reply.to_text().contains("left=299"));
}

#[test]
fn netstack_walk_prints_the_ipv4_ingress_stages_in_order() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netstack"))
        .arg("walk")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let request = text.split("Echo reply").next().unwrap_or_default();
    let mut at = 0;
    for stage in [
        "ip_rcv",
        "NF_INET_PRE_ROUTING",
        "ip_route_input",
        "ip_local_deliver",
        "NF_INET_LOCAL_IN",
        "icmp_rcv",
    ] {
        let i = request[at..].find(&format!(" {stage} "));
        assert!(i.is_some(), "{stage} missing after byte {at} in\n{request}");
        at += i.unwrap_or(0) + stage.len();
    }
    assert!(request.contains("verdict=NF_ACCEPT"), "{request}");
    assert!(request.contains("decision=local"), "{request}");
}

//! Many concurrent established TCP connections between two simulated
//! hosts (a bounded count; `cargo bench -p integration-tests --bench scale`
//! runs the large ones and reports the figures).

use integration_tests::scale::open_connections;

#[test]
fn thousands_of_established_connections_each_carry_their_own_bytes() {
    const CONNS: usize = 1_000;
    let (report, mut lab) = open_connections(CONNS, 31).unwrap();
    assert_eq!(report.conns, CONNS);
    assert_eq!(lab.clients.len(), CONNS);
    assert_eq!(lab.servers.len(), CONNS);
    // Every 7th connection carries a message of its own to its own peer.
    let checked = lab.check_every(7).unwrap();
    assert_eq!(checked, CONNS.div_ceil(7));
    // C10K-style echo: every connection carries 32 bytes there and back.
    let echo = lab.echo_all(32).unwrap();
    assert_eq!((echo.conns, echo.len), (CONNS, 32));
    if let Some(per) = report.rss_per_conn {
        eprintln!(
            "{CONNS} connections: {per:.0} bytes of resident memory per connection (both ends), {:.1} s virtual",
            report.virtual_secs
        );
        // Idle connections hold no buffers: far below one receive buffer
        // (tcp_rmem default 131,072) per connection.
        assert!(per < 64.0 * 1024.0, "{per} bytes per idle connection");
    }
    lab.close();
}

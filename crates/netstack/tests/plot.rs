//! `netstack plot`: a bulk transfer with 2 % loss records the sender's
//! `tcp_probe` trace and writes the two SVG graphs from it.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;

use netstack::{NetstackError, PlotOptions, run_plot};

const BYTES: u64 = 256 * 1024;

fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("netstack-plot-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The points of every `<polyline>` in `svg`, per polyline.
fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
    svg.split("<polyline")
        .skip(1)
        .map(|p| {
            let pts = p
                .split("points=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("a polyline has points");
            pts.split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').expect("x,y");
                    (x.parse().expect("x"), y.parse().expect("y"))
                })
                .collect()
        })
        .collect()
}

fn assert_svg(svg: &str, min_points: usize) {
    assert!(svg.starts_with("<?xml"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    // Every text element opened is closed.
    assert_eq!(
        svg.matches("<text ").count(),
        svg.matches("</text>").count()
    );
    let lines = polylines(svg);
    assert!(!lines.is_empty(), "no polyline");
    let longest = lines.iter().map(Vec::len).max().unwrap_or(0);
    assert!(
        longest >= min_points,
        "longest polyline has {longest} points"
    );
    for (x, y) in lines.iter().flatten() {
        assert!(
            (0.0..=800.0).contains(x) && (0.0..=480.0).contains(y),
            "({x}, {y}) off the canvas"
        );
    }
}

#[test]
fn plot_with_loss_records_cwnd_reductions_and_writes_both_graphs() {
    let out = out_dir("loss");
    let r = run_plot(&PlotOptions {
        seed: 1,
        bytes: BYTES,
        loss: 0.02,
        out: out.clone(),
    })
    .unwrap();
    assert!(r.bulk.intact && r.bulk.closed, "{:?}", r.bulk);
    assert!(
        r.bulk.retrans > 0,
        "2 % loss cost no retransmission: {:?}",
        r.bulk
    );

    // The samples: h1's flow to h2:5001, cwnd and ssthresh from tcp_ack().
    let t = &r.trace;
    assert!(t.probes.len() >= 20, "{} samples", t.probes.len());
    let h2 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 5001);
    assert!(
        t.probes
            .iter()
            .all(|p| p.dst == h2 && *p.src.ip() == Ipv4Addr::new(198, 18, 0, 1))
    );
    assert!(
        t.probes.windows(2).all(|w| w[0].at <= w[1].at),
        "samples out of order"
    );
    assert!(t.cwnd_reductions() >= 1, "cwnd never fell under loss");
    let fell = t
        .probes
        .windows(2)
        .find(|w| w[1].snd_cwnd < w[0].snd_cwnd)
        .expect("a sample where cwnd falls");
    // A reduction sets ssthresh to a finite value.
    assert!(fell[1].ssthresh < 0x7fff_ffff, "{:?}", fell[1]);

    // The segments sent: every payload byte at least once, and the
    // retransmissions the MIB counted are marked.
    let data: Vec<_> = t.sent.iter().filter(|s| s.len > 0 && s.dst == h2).collect();
    let payload: u64 = data
        .iter()
        .filter(|s| !s.retrans)
        .map(|s| u64::from(s.len))
        .sum();
    assert_eq!(payload, BYTES);
    let marked = data.iter().filter(|s| s.retrans).count() as u64;
    assert_eq!(
        marked, r.bulk.retrans,
        "retransmissions marked vs RetransSegs"
    );

    // The files.
    assert_eq!(r.cwnd_svg, out.join("cwnd.svg"));
    assert_eq!(r.tseq_svg, out.join("tseq.svg"));
    let cwnd = std::fs::read_to_string(&r.cwnd_svg).unwrap();
    assert_svg(&cwnd, t.probes.len());
    assert!(cwnd.contains("snd_cwnd") && cwnd.contains("ssthresh"));
    let tseq = std::fs::read_to_string(&r.tseq_svg).unwrap();
    assert_svg(&tseq, data.len() - marked as usize);
    assert!(
        tseq.contains("class=\"retransmitted\""),
        "no retransmission marks"
    );
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn plot_rejects_bad_arguments_by_name() {
    for (bytes, loss, name) in [(0, 0.0, "bytes"), (1024, 1.0, "loss"), (1024, -0.1, "loss")] {
        let e = run_plot(&PlotOptions {
            seed: 1,
            bytes,
            loss,
            out: out_dir("bad"),
        })
        .unwrap_err();
        assert!(
            matches!(e, NetstackError::BadArgument { name: n, .. } if n == name),
            "{bytes} {loss}: {e}"
        );
    }
}

#[test]
fn plot_command_prints_the_paths() {
    let out = out_dir("cli");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_netstack"))
        .args([
            "plot", "--seed", "3", "--bytes", "65536", "--loss", "0.02", "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    for f in ["cwnd.svg", "tseq.svg"] {
        let p = out.join(f);
        assert!(text.lines().any(|l| l == p.display().to_string()), "{text}");
        assert!(std::fs::read_to_string(&p).unwrap().contains("<svg"));
    }
    let _ = std::fs::remove_dir_all(&out);
}

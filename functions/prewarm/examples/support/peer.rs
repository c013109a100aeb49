//! The prewarm benchmarks' peer, `skopeo inspect --raw` (Debian's `skopeo`), with its
//! process-start cost measured apart (issue 18: one process per image, so most of the peer's
//! time is process start). Shared by `bench` and `bench_fast`.

use std::process::Command;

/// What the peer run measured.
pub struct Peer {
    /// `skopeo --version`'s line.
    pub version: String,
    /// The inspection's wall time, seconds.
    pub wall: f64,
    /// Whether every inspect succeeded.
    pub ok: bool,
    /// `n` × `skopeo --version` through the same xargs, before and after the inspection
    /// (the machine's load moves), seconds.
    pub start_before: f64,
    pub start_after: f64,
}

/// `skopeo inspect --raw --tls-verify=false --creds CREDS` over `uris` (`docker://...`),
/// `concurrency` processes at a time, with the process-start runs around it. `None` (and a
/// line saying so) when skopeo is not installed. The `--version` runs make no registry
/// request, so the caller may count the registry's requests around this whole call.
pub fn run(uris: &[String], creds: &str, concurrency: usize) -> Option<Peer> {
    let version = Command::new("skopeo").arg("--version").output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        println!("skopeo: not installed (apt-get install skopeo): the comparison is skipped");
        return None;
    };
    let versions = vec!["--version".to_owned(); uris.len()];
    let (start_before, _) = ptc_tests::xargs_skopeo(&versions, concurrency, &[])?;
    let (wall, ok) = ptc_tests::xargs_skopeo(
        uris,
        concurrency,
        &["inspect", "--raw", "--tls-verify=false", "--creds", creds],
    )?;
    let (start_after, _) = ptc_tests::xargs_skopeo(&versions, concurrency, &[])?;
    Some(Peer {
        version: String::from_utf8_lossy(&version.stdout).trim().to_owned(),
        wall,
        ok,
        start_before,
        start_after,
    })
}

/// Print the peer's figures over `n` images (`requests`: the registry requests it made) and
/// each prewarm run's wall time (`runs`: name, seconds) against them.
pub fn print(
    peer: &Peer,
    n: usize,
    requests: u64,
    c: usize,
    latency_ms: u64,
    runs: &[(&str, f64)],
) {
    let start = (peer.start_before + peer.start_after) / 2.0;
    let net = peer.wall - start;
    let limit = requests as f64 * latency_ms as f64 / 1000.0 / c as f64;
    println!(
        "{}: `skopeo inspect --raw` over the same {n} images, xargs -P {c}, one process per image ({}; one manifest per image, no platform, no blob, no verification)",
        peer.version,
        if peer.ok {
            "all succeeded"
        } else {
            "some failed"
        }
    );
    println!(
        "  wall time                 {:.2} s ({:.3} registry requests / image, latency limit {limit:.2} s)",
        peer.wall,
        requests as f64 / n as f64
    );
    println!(
        "  process start             {start:.2} s ({n} x `skopeo --version` through the same xargs -P {c}, the mean of {:.2} s before and {:.2} s after: {:.0}% of the wall time)",
        peer.start_before,
        peer.start_after,
        start / peer.wall * 100.0
    );
    if net >= limit {
        println!(
            "  net of process start      {net:.2} s ({:.2}x its latency limit)",
            net / limit
        );
    } else {
        println!(
            "  net of process start      {net:.2} s, under its own latency limit of {limit:.2} s: the process starts (CPU) and the requests (waits) overlap, so skopeo's time here is its process starts"
        );
    }
    for (name, wall) in runs {
        print!(
            "  prewarm {name}: {:.2}x skopeo's wall time",
            wall / peer.wall
        );
        if net >= limit {
            print!(", {:.2}x skopeo's time net of process start", wall / net);
        }
        println!();
    }
}

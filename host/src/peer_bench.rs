//! `payhost bench peer`: payhost's routes beside wasmtime's own HTTP server in one run,
//! so the comparison in BENCHMARKS.md can be checked by anyone. `tests/peer/run.sh`
//! builds the peer (a `wasmtime` CLI of the version payhost embeds, and a hello
//! `wasi:http` component with the plugins' 64 KiB stack) and calls this.
//!
//! Every server is loaded by the same load generator (`bench::load`: keep-alive
//! HTTP/1.1 connections on loopback) for the same time, one after another; the table
//! gives each one's requests/second, p99 latency and its ratio to payhost's native
//! `/healthz` measured in the same run.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::bench;

/// One `wasmtime serve` configuration of the table.
struct PeerConfig {
    name: &'static str,
    args: &'static [&'static str],
}

const PEERS: &[PeerConfig] = &[
    PeerConfig { name: "`wasmtime serve`, fresh instance, defaults", args: &[] },
    PeerConfig {
        name: "`wasmtime serve`, pooling + 1 MiB resident",
        args: &["-O", "pooling-allocator=y", "-O", "pooling-memory-keep-resident=1048576"],
    },
    PeerConfig {
        name: "`wasmtime serve --max-instance-reuse-count 128`, pooling",
        args: &["--max-instance-reuse-count", "128", "-O", "pooling-allocator=y"],
    },
];

struct Row {
    name: String,
    requests: u64,
    failed: u64,
    p99: Duration,
}

pub async fn peer(template: &Path, wasmtime: &Path, hello: &Path, connections: usize, seconds: u64) -> Result<String> {
    let duration = Duration::from_secs(seconds);
    let mut rows = Vec::new();
    {
        let (addr, running) = bench::serve_scratch(template).await?;
        for (name, path) in [
            ("native hyper route (`/healthz`)", "/healthz"),
            ("payhost template, fresh instance per request", "/template/"),
            ("payhost template, `reuse = 128`", "/warm/"),
        ] {
            rows.push(measure(name, addr, path, connections, duration).await);
        }
        running.shutdown().await;
    }
    for peer in PEERS {
        let addr = free_port()?;
        let mut child = tokio::process::Command::new(wasmtime)
            .arg("serve")
            // The CLI interfaces Rust's std imports (environment, exit, stdio), which
            // `serve` leaves out unless asked.
            .arg("-Scli")
            .arg("--addr")
            .arg(addr.to_string())
            .args(peer.args)
            .arg(hello)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", wasmtime.display()))?;
        let ready = wait_ready(addr, &mut child).await;
        if let Err(e) = ready {
            let _ = child.start_kill();
            let output = child.wait_with_output().await?;
            bail!("{} did not serve: {e}; it said: {}", peer.name, String::from_utf8_lossy(&output.stderr).trim());
        }
        rows.push(measure(peer.name, addr, "/", connections, duration).await);
        child.start_kill()?;
        let _ = child.wait().await;
    }

    let native = rows[0].requests.max(1) as f64;
    let mut table = format!(
        "peer, {connections} keep-alive connections, {seconds}s each, one server after another:\n\
         | server | req/s | p99 | vs native | failed |\n| --- | --- | --- | --- | --- |\n"
    );
    for row in &rows {
        table.push_str(&format!(
            "| {} | {:.0} | {:.2} ms | {:.2}x | {} |\n",
            row.name,
            row.requests as f64 / duration.as_secs_f64(),
            row.p99.as_secs_f64() * 1e3,
            row.requests as f64 / native,
            row.failed
        ));
    }
    Ok(table)
}

async fn measure(name: &str, addr: SocketAddr, path: &str, connections: usize, duration: Duration) -> Row {
    // A second of warm-up, as the `http` bench does: page in code and pool slots.
    let _ = bench::load(addr, path, connections, Duration::from_secs(1)).await;
    let (requests, failed, latencies) = bench::load(addr, path, connections, duration).await;
    let p99 = latencies.get(((latencies.len().max(1) - 1) as f64 * 0.99).round() as usize).copied().unwrap_or_default();
    Row { name: name.to_string(), requests, failed, p99 }
}

fn free_port() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Waits until the server answers a request (it compiles the component first).
async fn wait_ready(addr: SocketAddr, child: &mut tokio::process::Child) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Some(status) = child.try_wait()? {
            bail!("it exited with {status}");
        }
        let (ok, _, _) = bench::load(addr, "/", 1, Duration::from_millis(50)).await;
        if ok > 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no answer within two minutes")
}

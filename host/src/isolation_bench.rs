//! `payhost bench isolation`: what CPU-burning plugins cost everyone else. p50 and p99
//! of the native `/healthz` route and of a template route while 0, 1 and 2 instances of
//! the faulty test plugin loop until their deadline, all on one server in one run. With
//! plugin calls on threads of their own (`runtime::pool`), the p99 with one looping
//! instance should stay within about twice the p99 without.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::bench::{load, percentile, us};

/// The looping instances' deadline: longer than a measured phase, so a loop is running
/// all through it (a new one starts as soon as one ends).
const LOOP_DEADLINE_MS: u64 = 20_000;

struct Scratch {
    dir: std::path::PathBuf,
    config: std::path::PathBuf,
}

impl Scratch {
    fn new(template: &Path, faulty: &Path, plugin_nice: i32) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("payhost-isolation-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("probe_key"), "bench")?;
        let faulty_block = |name: &str| {
            format!(
                "[[plugins]]\nname = \"{name}\"\ncomponent = {:?}\nmount = \"/{name}\"\nallowed_hosts = [\"probe.invalid\"]\n\
                 [plugins.secrets]\nprobe_key = {{ file = {:?} }}\n[plugins.limits]\ndeadline_ms = {LOOP_DEADLINE_MS}\n",
                faulty.display().to_string(),
                dir.join("probe_key").display().to_string(),
            )
        };
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"PAYHOST_BENCH_NO_ADMIN\"\n\
                 [storage]\nurl = \"sqlite://{}\"\n[runtime]\ncache_dir = {:?}\nplugin_nice = {plugin_nice}\n\
                 [[plugins]]\nname = \"template\"\ncomponent = {:?}\nmount = \"/template\"\n{}{}",
                dir.join("bench.db").display(),
                dir.join("cache").display().to_string(),
                template.display().to_string(),
                faulty_block("loop-a"),
                faulty_block("loop-b"),
            ),
        )
        .context("write the isolation bench config")?;
        Ok(Self { dir, config })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Keeps one `/loop` request running on `mount` until `stop`.
fn keep_looping(addr: std::net::SocketAddr, mount: &'static str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else { return };
            let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else { return };
            tokio::spawn(conn);
            let req = hyper::Request::get(format!("{mount}/loop")).header("host", "bench").body(Empty::<Bytes>::new()).expect("request");
            if let Ok(resp) = sender.send_request(req).await {
                let _ = resp.into_body().collect().await;
            }
        }
    })
}

/// p50 and p99 of `path` under load, as one report line.
async fn measure(addr: std::net::SocketAddr, path: &str, connections: usize, duration: Duration) -> (String, Duration) {
    let (ok, failed, latencies) = load(addr, path, connections, duration).await;
    let p99 = percentile(&latencies, 0.99);
    let line = format!(
        "{path}: p50 {:.0} us, p99 {:.0} us ({:.0} req/s, {failed} failed)",
        us(percentile(&latencies, 0.5)),
        us(p99),
        ok as f64 / duration.as_secs_f64()
    );
    (line, p99)
}

/// `plugin_nice` is the server's `runtime.plugin_nice` (10 by default; 0 compares plugin
/// threads at the host's own priority).
pub async fn isolation(template: &Path, faulty: &Path, connections: usize, seconds: u64, plugin_nice: i32) -> Result<String> {
    // The scratch config lives in a temporary folder: its component paths must not be
    // relative to where the command was started.
    let absolute = |p: &Path| std::fs::canonicalize(p).with_context(|| format!("component {}", p.display()));
    let scratch = Scratch::new(&absolute(template)?, &absolute(faulty)?, plugin_nice)?;
    let running = crate::app::start(&scratch.config).await?;
    let addr = running.bound.listen;
    let duration = Duration::from_secs(seconds);
    // Warm up both routes before the first measured phase.
    let _ = load(addr, "/template/", connections, Duration::from_secs(1)).await;
    let _ = load(addr, "/healthz", connections, Duration::from_secs(1)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut loops = Vec::new();
    let mut lines = vec![format!("isolation, {connections} keep-alive connections, {seconds}s per route and phase, plugin_nice {plugin_nice}:")];
    let mut baseline = (Duration::ZERO, Duration::ZERO);
    for (looping, mount) in [(0, None), (1, Some("/loop-a")), (2, Some("/loop-b"))] {
        if let Some(mount) = mount {
            loops.push(keep_looping(addr, mount, stop.clone()));
            // Let the new loop get into its plugin before measuring.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let (health, health_p99) = measure(addr, "/healthz", connections, duration).await;
        let (plugin, plugin_p99) = measure(addr, "/template/", connections, duration).await;
        if looping == 0 {
            baseline = (health_p99, plugin_p99);
        }
        let ratio = |p99: Duration, base: Duration| p99.as_secs_f64() / base.as_secs_f64().max(1e-9);
        lines.push(format!(
            "  {looping} looping: {health}; {plugin}; p99 vs 0 looping: healthz {:.2}x, template {:.2}x",
            ratio(health_p99, baseline.0),
            ratio(plugin_p99, baseline.1)
        ));
    }
    stop.store(true, Ordering::Relaxed);
    for handle in loops {
        handle.abort();
    }
    running.shutdown().await;
    Ok(lines.join("\n"))
}

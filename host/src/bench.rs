//! `payhost bench`: the numbers the README quotes, measured on this machine.
//!
//! - `dispatch`: per-request plugin dispatch (fresh store, instantiate, call, drop) of
//!   the template plugin, median and p99, with no HTTP in the way.
//! - `http`: requests/second of the native `/healthz` route, a template route with a
//!   fresh instance per request and one with warm instances (`limits.reuse`), all of
//!   the same server in the same run, over loopback keep-alive connections, the routes
//!   alternated in rounds.
//! - `swap`: time from a reload call to the new version serving (compiled vs cached),
//!   and request latency percentiles while versions are swapped vs. without swaps.
//! - `ledger`: debits/second on a storage backend with concurrent clients.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

use crate::wit::types::Request;

/// How many requests a warm instance serves in the `http` bench's reuse row.
pub const WARM_REUSE: u32 = 128;

/// A scratch directory with a config serving the template twice: fresh per request at
/// `/template` (whose version swap runs replace with the faulty plugin) and with warm
/// instances (`limits.reuse`) at `/warm`.
struct Scratch {
    dir: PathBuf,
    config: PathBuf,
}

impl Scratch {
    fn new(template: &Path) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("payhost-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let config = dir.join("config.toml");
        let component = dir.join("template.wasm");
        std::fs::copy(template, &component).with_context(|| format!("copy {}", template.display()))?;
        // Grants the faulty test plugin asks for, so it can be the second version in swaps.
        std::fs::write(dir.join("probe_key"), "bench")?;
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\ntoken_env = \"PAYHOST_BENCH_NO_ADMIN\"\n\
                 [storage]\nurl = \"sqlite://{}\"\n[runtime]\ncache_dir = \"{}\"\n\
                 [[plugins]]\nname = \"template\"\ncomponent = \"{}\"\nmount = \"/template\"\nallowed_hosts = [\"probe.invalid\"]\n\
                 [plugins.secrets]\nprobe_key = {{ file = \"{}\" }}\n\
                 [[plugins]]\nname = \"template-warm\"\ncomponent = \"{}\"\nmount = \"/warm\"\n\
                 [plugins.limits]\nreuse = {WARM_REUSE}\n",
                dir.join("bench.db").display(),
                dir.join("cache").display(),
                component.display(),
                dir.join("probe_key").display(),
                component.display(),
            ),
        )?;
        Ok(Self { dir, config })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running server on a scratch config (see `Scratch`), for benches of other modules.
pub struct ScratchServer {
    running: crate::app::Running,
    _scratch: Scratch,
}

impl ScratchServer {
    pub async fn shutdown(self) {
        self.running.shutdown().await;
    }
}

/// Starts the scratch server; returns its public address.
pub async fn serve_scratch(template: &Path) -> Result<(std::net::SocketAddr, ScratchServer)> {
    let scratch = Scratch::new(template)?;
    let running = crate::app::start(&scratch.config).await?;
    Ok((running.bound.listen, ScratchServer { running, _scratch: scratch }))
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx]
}

pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Median and p99 of `iterations` sequential dispatches of `GET /template/`.
pub async fn dispatch(template: &Path, iterations: usize) -> Result<String> {
    let scratch = Scratch::new(template)?;
    let running = crate::app::start(&scratch.config).await?;
    let runtime = running.live.runtime.clone();
    let instance = runtime.current("template").map_err(|e| anyhow::anyhow!("{e}"))?;
    let request = |id: usize| Request {
        id: format!("bench-{id}"),
        method: "GET".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![],
        body: vec![],
        remote_addr: "127.0.0.1:1".into(),
    };
    // Warm up: page in the pool slots and the code.
    for i in 0..1000 {
        runtime.call_handle(&instance, request(i)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let req = request(i);
        let started = Instant::now();
        let resp = runtime.call_handle(&instance, req).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        samples.push(started.elapsed());
        debug_assert_eq!(resp.status, 200);
    }
    samples.sort();
    running.shutdown().await;
    Ok(format!(
        "dispatch (fresh store + instantiate + call handle + drop), {iterations} calls: median {:.1} us, p99 {:.1} us, max {:.1} us",
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.99)),
        us(*samples.last().unwrap_or(&Duration::ZERO)),
    ))
}

/// Keep-alive GET load from `connections` connections for `duration`; returns
/// (requests, failures, latencies).
pub async fn load(addr: std::net::SocketAddr, path: &str, connections: usize, duration: Duration) -> (u64, u64, Vec<Duration>) {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (stop, ok, failed, path) = (stop.clone(), ok.clone(), failed.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return latencies;
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
                failed.fetch_add(1, Ordering::Relaxed);
                return latencies;
            };
            tokio::spawn(conn);
            while !stop.load(Ordering::Relaxed) {
                let req = hyper::Request::get(&path).header("host", "bench").body(Empty::<Bytes>::new()).expect("request");
                let started = Instant::now();
                match sender.send_request(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.into_body().collect().await;
                        latencies.push(started.elapsed());
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        if let Ok(l) = t.await {
            latencies.extend(l);
        }
    }
    latencies.sort();
    (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed), latencies)
}

/// CPU time (user + system) this process has used so far, from `/proc/self/stat`
/// (Linux, whose clock tick is 10 ms); `None` where that file does not exist.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name start at field 3; utime and stime are
    // fields 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// One measured load phase: throughput, latencies and the process CPU it used.
struct Phase {
    ok: u64,
    failed: u64,
    latencies: Vec<Duration>,
    cpu: Option<Duration>,
}

async fn phase(addr: std::net::SocketAddr, path: &str, connections: usize, duration: Duration) -> Phase {
    let _ = load(addr, path, connections, Duration::from_secs(1)).await;
    measured(addr, path, connections, duration).await
}

/// A load phase without a warm-up first.
async fn measured(addr: std::net::SocketAddr, path: &str, connections: usize, duration: Duration) -> Phase {
    let before = process_cpu();
    let (ok, failed, latencies) = load(addr, path, connections, duration).await;
    let cpu = before.zip(process_cpu()).map(|(b, a)| a.saturating_sub(b));
    Phase { ok, failed, latencies, cpu }
}

impl Phase {
    /// The phases of one route over several rounds, as one.
    fn merged(phases: &[Phase]) -> Phase {
        let mut latencies: Vec<Duration> = phases.iter().flat_map(|p| p.latencies.iter().copied()).collect();
        latencies.sort();
        Phase {
            ok: phases.iter().map(|p| p.ok).sum(),
            failed: phases.iter().map(|p| p.failed).sum(),
            latencies,
            cpu: phases.iter().map(|p| p.cpu).sum(),
        }
    }

    fn line(&self, name: &str, duration: Duration) -> String {
        let cpu = self.cpu_per_request_us().map(|cpu| format!(", {cpu:.1} us CPU per request")).unwrap_or_default();
        format!(
            "{name}: {:.0} req/s (p50 {:.0} us, p99 {:.0} us, {} failed{cpu})",
            self.ok as f64 / duration.as_secs_f64(),
            us(percentile(&self.latencies, 0.5)),
            us(percentile(&self.latencies, 0.99)),
            self.failed,
        )
    }

    fn cpu_per_request_us(&self) -> Option<f64> {
        self.cpu.filter(|_| self.ok > 0).map(|cpu| us(cpu) / self.ok as f64)
    }
}

/// Template route vs the native `/healthz` route of the same server, same run: `rounds`
/// rounds, each loading the three routes one after another, so that a machine that
/// speeds up or slows down during the run moves every route alike; each round gives
/// its own ratios, and their median is the result. The CPU per request (server and load
/// generator together, same for every route) shows in microseconds what the plugin adds,
/// which the req/s ratio only implies.
pub async fn http(template: &Path, connections: usize, seconds: u64, rounds: usize) -> Result<String> {
    let scratch = Scratch::new(template)?;
    let running = crate::app::start(&scratch.config).await?;
    let addr = running.bound.listen;
    let duration = Duration::from_secs(seconds);
    let rounds = rounds.max(1);
    let routes = ["/healthz", "/template/", "/warm/"];
    for path in routes {
        let _ = load(addr, path, connections, Duration::from_secs(1)).await;
    }
    let mut phases: [Vec<Phase>; 3] = Default::default();
    for _ in 0..rounds {
        for (route, path) in routes.iter().enumerate() {
            phases[route].push(measured(addr, path, connections, duration).await);
        }
    }
    running.shutdown().await;
    let ratios = |route: usize| -> Vec<f64> {
        phases[route].iter().zip(&phases[0]).map(|(p, n)| p.ok as f64 / n.ok.max(1) as f64).collect()
    };
    let (fresh, warm) = (ratios(1), ratios(2));
    let listed = |r: &[f64]| r.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(" ");
    let [native, plugin, warmed] = phases.map(|p| Phase::merged(&p));
    let total = duration * rounds as u32;
    let added = |p: &Phase| match (native.cpu_per_request_us(), p.cpu_per_request_us()) {
        (Some(n), Some(p)) => format!("{:.1} us", p - n),
        _ => "n/a".into(),
    };
    Ok(format!(
        "http, {connections} keep-alive connections, {} round(s) of {seconds}s per route, routes alternated:\n  {}\n  {}\n  {}\n  \
         ratio template/native by round: fresh {}, reuse {}\n  \
         ratio template/native, median of the rounds: fresh {:.2}, reuse {:.2}\n  \
         CPU the plugin adds per request: fresh {}, reuse {}",
        rounds,
        native.line("native /healthz", total),
        plugin.line("template GET /template/ (fresh instance per request)", total),
        warmed.line(&format!("template GET /warm/ (reuse = {WARM_REUSE})"), total),
        listed(&fresh),
        listed(&warm),
        median(&fresh),
        median(&warm),
        added(&plugin),
        added(&warmed),
    ))
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Reload latency (compiled and cached) and request latency during swaps vs. without.
pub async fn swap(template: &Path, other: &Path, connections: usize, seconds: u64) -> Result<String> {
    let scratch = Scratch::new(template)?;
    // A fresh cache, so the first load of each file compiles.
    let running = crate::app::start(&scratch.config).await?;
    let app = running.live.clone();
    let addr = running.bound.listen;
    let other_copy = scratch.dir.join("other.wasm");
    std::fs::copy(other, &other_copy)?;

    let started = Instant::now();
    app.reload_instance("template", Some(other_copy.clone()), "bench").await?;
    let uncached = started.elapsed();
    let started = Instant::now();
    app.reload_instance("template", Some(scratch.dir.join("template.wasm")), "bench").await?;
    let cached = started.elapsed();

    let duration = Duration::from_secs(seconds);
    let (quiet, quiet_failed, quiet_lat) = load(addr, "/template/", connections, duration).await;
    let swapper = {
        let app = app.clone();
        let files = [other_copy, scratch.dir.join("template.wasm")];
        tokio::spawn(async move {
            let mut swaps = 0u32;
            let until = Instant::now() + duration;
            while Instant::now() < until {
                let file = files[swaps as usize % 2].clone();
                if app.reload_instance("template", Some(file), "bench").await.is_ok() {
                    swaps += 1;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            swaps
        })
    };
    let (busy, busy_failed, busy_lat) = load(addr, "/template/", connections, duration).await;
    let swaps = swapper.await.unwrap_or(0);
    running.shutdown().await;
    Ok(format!(
        "swap: reload to serving, compiled {:.1} ms, from cache {:.1} ms\n  without swaps: {:.0} req/s, p50 {:.0} us, p99 {:.0} us, max {:.1} ms, {quiet_failed} failed\n  with {swaps} swaps: {:.0} req/s, p50 {:.0} us, p99 {:.0} us, max {:.1} ms, {busy_failed} failed",
        uncached.as_secs_f64() * 1000.0,
        cached.as_secs_f64() * 1000.0,
        quiet as f64 / duration.as_secs_f64(),
        us(percentile(&quiet_lat, 0.5)),
        us(percentile(&quiet_lat, 0.99)),
        quiet_lat.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        busy as f64 / duration.as_secs_f64(),
        us(percentile(&busy_lat, 0.5)),
        us(percentile(&busy_lat, 0.99)),
        busy_lat.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    ))
}

/// The fresh path under each engine knob others measured, one server per variant in one
/// run: template `GET /` fresh per request against native `/healthz` of the same server.
pub async fn knobs(template: &Path, connections: usize, seconds: u64) -> Result<String> {
    use crate::runtime::engine::{set_knobs_for_bench, EngineKnobs};
    let base = EngineKnobs::default();
    let variants = [
        ("serving default (CoW images, 1 MiB resident)", base.clone()),
        ("copy-on-write images off", EngineKnobs { memory_init_cow: false, ..base.clone() }),
        ("keep 4 MiB resident", EngineKnobs { keep_resident: 4 << 20, ..base.clone() }),
        ("batched decommit (64)", EngineKnobs { decommit_batch: 64, ..base.clone() }),
        ("PAGEMAP_SCAN reset", EngineKnobs { pagemap_scan: true, ..base.clone() }),
        ("64 MiB reservation per memory", EngineKnobs { reservation_mb: 64, ..base.clone() }),
    ];
    let duration = Duration::from_secs(seconds);
    let mut out = format!("engine knobs, fresh instance per request, {connections} connections, {seconds}s per route:\n");
    for (name, knobs) in variants {
        set_knobs_for_bench(Some(knobs));
        let started = serve_scratch(template).await;
        set_knobs_for_bench(None);
        let (addr, server) = started?;
        let native = phase(addr, "/healthz", connections, duration).await;
        let plugin = phase(addr, "/template/", connections, duration).await;
        server.shutdown().await;
        out.push_str(&format!(
            "  {name}: template {:.0} req/s vs native {:.0} = {:.2}x, p99 {:.0} us, {} failed\n",
            plugin.ok as f64 / duration.as_secs_f64(),
            native.ok as f64 / duration.as_secs_f64(),
            plugin.ok as f64 / native.ok.max(1) as f64,
            us(percentile(&plugin.latencies, 0.99)),
            plugin.failed,
        ));
    }
    Ok(out)
}

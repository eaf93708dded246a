//! A real `payhost` process on loopback with a generated config, for one test.
//!
//! The host runs with a manual clock (tests move time forward instead of sleeping),
//! SQLite in a temporary directory (or a PostgreSQL URL), and its log captured to a file
//! so tests can assert what it did and did not print.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::build::payhost_binary;

pub const ADMIN_TOKEN: &str = "test-admin-token";

pub struct HostBuilder {
    storage_url: Option<String>,
    env: Vec<(String, String)>,
    config: String,
    runtime: Vec<String>,
    manual_clock: bool,
    open_files: Option<u32>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl HostBuilder {
    pub fn new() -> Self {
        Self { storage_url: None, env: Vec::new(), config: String::new(), runtime: Vec::new(), manual_clock: true, open_files: None }
    }

    /// Use this PostgreSQL database instead of a fresh SQLite file.
    pub fn postgres(mut self, url: &str) -> Self {
        self.storage_url = Some(url.to_string());
        self
    }

    /// An environment variable for the host process (secrets).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// TOML appended to the generated config (usually `[[plugins]]` tables).
    pub fn config(mut self, toml: &str) -> Self {
        self.config.push_str(toml);
        self.config.push('\n');
        self
    }

    /// A `key = value` line for the `[runtime]` table.
    pub fn runtime_option(mut self, line: &str) -> Self {
        self.runtime.push(line.to_string());
        self
    }

    /// Run the host with at most this many open files (`RLIMIT_NOFILE`, through
    /// util-linux's `prlimit`, which execs the host so its pid is the host's).
    pub fn open_files_limit(mut self, limit: u32) -> Self {
        self.open_files = Some(limit);
        self
    }

    /// Run on the system clock instead of the manual one.
    pub fn system_clock(mut self) -> Self {
        self.manual_clock = false;
        self
    }

    pub async fn start(self) -> TestHost {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage_url = self
            .storage_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("payhost.db").display()));
        let mut host = TestHost {
            dir,
            storage_url,
            builder: self,
            child: None,
            listen: None,
            admin: None,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            clock_offset_ms: 0,
        };
        host.spawn().await;
        host
    }
}

pub struct TestHost {
    dir: tempfile::TempDir,
    storage_url: String,
    builder: HostBuilder,
    child: Option<Child>,
    listen: Option<SocketAddr>,
    admin: Option<SocketAddr>,
    client: reqwest::Client,
    clock_offset_ms: i64,
}

/// Where compiled components are cached across tests, so each is compiled once.
fn shared_cache_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").join("target").join("payhost-test-cache");
    std::fs::create_dir_all(&root).expect("cache dir");
    root
}

impl TestHost {
    fn config_text(&self) -> String {
        let listen = self.listen.map(|a| a.to_string()).unwrap_or_else(|| "127.0.0.1:0".into());
        let admin = self.admin.map(|a| a.to_string()).unwrap_or_else(|| "127.0.0.1:0".into());
        let mut runtime = vec![
            format!("cache_dir = {:?}", shared_cache_dir().display().to_string()),
            format!("manual_clock = {}", self.builder.manual_clock),
            "max_concurrent_requests = 64".to_string(),
            "job_poll_interval_ms = 50".to_string(),
        ];
        runtime.extend(self.builder.runtime.iter().cloned());
        format!(
            "listen = \"{listen}\"\n\n[admin]\nlisten = \"{admin}\"\ntoken_env = \"PAYHOST_ADMIN_TOKEN\"\n\n[storage]\nurl = {:?}\n\n[runtime]\n{}\n\n{}",
            self.storage_url,
            runtime.join("\n"),
            self.builder.config
        )
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// Rewrites the config file with extra TOML (for config-reload tests).
    pub fn rewrite_config(&mut self, toml: &str) {
        self.builder.config = toml.to_string();
        std::fs::write(self.config_path(), self.config_text()).expect("write config");
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("host.log")
    }

    async fn spawn(&mut self) {
        std::fs::write(self.config_path(), self.config_text()).expect("write config");
        let ready = self.dir.path().join("ready.json");
        let _ = std::fs::remove_file(&ready);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file");
        let mut cmd = match self.builder.open_files {
            Some(limit) => {
                let mut cmd = Command::new("prlimit");
                cmd.arg(format!("--nofile={limit}:{limit}")).arg("--").arg(payhost_binary());
                cmd
            }
            None => Command::new(payhost_binary()),
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .arg("--ready-file")
            .arg(&ready)
            .env("PAYHOST_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PAYHOST_LOG", std::env::var("PAYHOST_TEST_LOG").unwrap_or_else(|_| "info,plugin=debug,payhost=debug".into()))
            .env("PAYHOST_CLOCK_OFFSET_MS", self.clock_offset_ms.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        for (k, v) in &self.builder.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn payhost");
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready) {
                let v: Value = serde_json::from_str(&text).expect("ready file is JSON");
                self.listen = Some(v["listen"].as_str().expect("listen").parse().expect("addr"));
                self.admin = Some(v["admin"].as_str().expect("admin").parse().expect("addr"));
                break;
            }
            if let Some(status) = child.try_wait().expect("wait") {
                panic!("payhost exited during start-up ({status}):\n{}", self.logs());
            }
            assert!(started.elapsed() < Duration::from_secs(120), "payhost did not start in time:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.child = Some(child);
    }

    /// Starts `payhost check` on this host's config; returns (success, output).
    pub fn check(&self) -> (bool, String) {
        let mut cmd = Command::new(payhost_binary());
        cmd.arg("check").arg("--config").arg(self.config_path());
        for (k, v) in &self.builder.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run payhost check");
        (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.expect("host is running")
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr(), path_and_query)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin.expect("admin is running"), path)
    }

    /// The browser console's address on the admin listener.
    pub fn console_url(&self) -> String {
        self.admin_url("/console/")
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client.post(self.url(path)).header("content-type", content_type).body(body).send().await.expect("POST")
    }

    pub async fn post_json(&self, path: &str, value: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(value).send().await.expect("POST")
    }

    /// Calls the admin API; returns status and JSON body (`null` when not JSON).
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, self.admin_url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin call");
        let status = resp.status().as_u16();
        let value = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, value)
    }

    /// Moves the host clock forward and wakes its job workers.
    pub async fn advance_clock(&mut self, seconds: i64) {
        let (status, body) = self.admin("POST", "/clock/advance", Some(serde_json::json!({ "seconds": seconds }))).await;
        assert_eq!(status, 200, "advance clock: {body}");
        self.clock_offset_ms += seconds * 1000;
    }

    /// Host clock, Unix seconds.
    pub async fn now(&self) -> i64 {
        let (_, body) = self.admin("GET", "/clock", None).await;
        body["now_ms"].as_i64().expect("now_ms") / 1000
    }

    /// Polls `cond` until it holds or `timeout` passes; returns whether it held.
    pub async fn wait_until<F, Fut>(&self, timeout: Duration, mut cond: F) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let started = Instant::now();
        loop {
            if cond().await {
                return true;
            }
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Graceful stop (SIGTERM) and start again on the same ports, data and clock.
    pub async fn restart(&mut self) {
        self.stop_gracefully().await;
        self.spawn().await;
    }

    /// Graceful stop (SIGTERM), waiting for the process to exit.
    pub async fn stop(&mut self) {
        self.stop_gracefully().await;
    }

    /// Kills the host with SIGKILL (no chance to finish anything).
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the host again after `kill9`, on the same ports, data and clock.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "host is still running");
        self.spawn().await;
    }

    async fn stop_gracefully(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.wait();
        }
    }

    /// Everything the host printed so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Process id of the running host.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `payhost check` on `config` (written to a temp dir) with `env`; returns
/// (success, combined output).
pub fn check_config(config: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("write config");
    let mut cmd = Command::new(payhost_binary());
    cmd.arg("check").arg("--config").arg(&path).env("PAYHOST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run payhost check");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

//! `config.toml`: what the operator writes, parsed strictly (unknown keys are errors)
//! and validated before anything starts, so a typo stops start-up with a message that
//! names the instance, the key and what to do, instead of surfacing as a failed payment.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Public listener for the plugins' mounts.
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub admin: AdminConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    #[serde(default)]
    pub janitor: JanitorSettings,
    #[serde(default)]
    pub tracing: TracingConfig,
}

/// `[janitor]`: looking up payments whose final outcome never arrived.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct JanitorSettings {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A checkout or charge with no final outcome this long after it started is looked up.
    #[serde(default = "default_janitor_after")]
    pub after_seconds: u64,
    /// How often (host clock) the janitor looks for such payments.
    #[serde(default = "default_janitor_scan")]
    pub scan_seconds: u64,
    /// First wait before asking again about a payment still pending (doubles, up to 6 h).
    #[serde(default = "default_janitor_recheck")]
    pub recheck_seconds: u64,
}

impl Default for JanitorSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            after_seconds: default_janitor_after(),
            scan_seconds: default_janitor_scan(),
            recheck_seconds: default_janitor_recheck(),
        }
    }
}

/// `[tracing]`: what outbound calls carry and where spans go.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// Header that carries the request id into a plugin's outbound HTTP calls; empty: none.
    #[serde(default = "default_request_id_header")]
    pub request_id_header: String,
    /// Export spans over OTLP/HTTP; absent: no exporter.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self { request_id_header: default_request_id_header(), otlp: None }
    }
}

/// `[tracing.otlp]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub endpoint: String,
    #[serde(default = "default_service_name")]
    pub service_name: String,
    #[serde(default = "default_otlp_timeout_ms")]
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Loopback by default: the admin API moves money.
    #[serde(default = "default_admin_listen")]
    pub listen: String,
    /// Environment variable holding the bearer token.
    #[serde(default = "default_admin_token_env")]
    pub token_env: String,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self { listen: default_admin_listen(), token_env: default_admin_token_env() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `sqlite://path/to/file.db` (embedded default) or `postgres://user@host/db`.
    #[serde(default = "default_storage_url")]
    pub url: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self { url: default_storage_url() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Where compiled components are cached (keyed by content hash and engine settings).
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
    /// Requests running at once across all instances; further ones get 503.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: u32,
    /// Largest request body the host accepts, in bytes.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Lets the admin API move the host clock forward (`POST /clock/advance`). For tests
    /// and rehearsals only: it changes when timers fire and what time plugins see.
    #[serde(default)]
    pub manual_clock: bool,
    /// How often job workers look for due timers, deliveries and events.
    #[serde(default = "default_poll_ms")]
    pub job_poll_interval_ms: u64,
    /// How long a claimed job stays with one host before another may take it.
    #[serde(default = "default_lease_seconds")]
    pub job_lease_seconds: i64,
    /// Attempts for a durable outbound delivery whose plugin did not set a limit.
    #[serde(default = "default_delivery_attempts")]
    pub delivery_max_attempts: u32,
    /// A request head must arrive whole this long after its first byte, in milliseconds;
    /// otherwise the connection is closed (half-sent and trickled heads).
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers together), in bytes; a larger one
    /// is answered 431 and its connection closed, so no client makes the host buffer
    /// hundreds of kilobytes per connection or hand them to a plugin.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: u32,
    /// A request body must arrive whole this long after its head, in milliseconds;
    /// otherwise the answer is 408 and the connection is closed.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// A keep-alive connection idle this long between requests is closed, in milliseconds.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Open connections per listener; a new one beyond it is answered 503 and closed,
    /// never queued.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    /// On shutdown, how long in-flight requests may still finish, in milliseconds.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    /// Threads plugin calls run on, apart from the host's own; 0 means twice the cores.
    /// Read at start-up.
    #[serde(default)]
    pub plugin_threads: u32,
    /// How much lower than the host's the plugin threads' OS priority is (a nice value
    /// added on Linux, 0..=19), so the host's own routes win the CPU over busy plugins.
    /// Read at start-up.
    #[serde(default = "default_plugin_nice")]
    pub plugin_nice: i32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: default_cache_dir(),
            max_concurrent_requests: default_max_concurrent(),
            max_request_bytes: default_max_request_bytes(),
            manual_clock: false,
            job_poll_interval_ms: default_poll_ms(),
            job_lease_seconds: default_lease_seconds(),
            delivery_max_attempts: default_delivery_attempts(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            max_header_bytes: default_max_header_bytes(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            idle_timeout_ms: default_idle_timeout_ms(),
            max_connections: default_max_connections(),
            shutdown_grace_ms: default_shutdown_grace_ms(),
            plugin_threads: 0,
            plugin_nice: default_plugin_nice(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Instance name: the store namespace, the ledger key scope, the admin handle.
    pub name: String,
    /// Path to the `.wasm` component (relative to the config file).
    pub component: PathBuf,
    /// URL prefix routed to this instance, e.g. `/webtv`.
    pub mount: String,
    /// Outbound hosts this instance may call, as `host` or `host:port`.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Payment-system instances (or `balance`) this provider may take payments through.
    #[serde(default)]
    pub payment_systems: Vec<String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    #[serde(default)]
    pub limits: Limits,
    /// Reload the component when its file changes on disk.
    #[serde(default)]
    pub watch: bool,
    #[serde(default)]
    pub settings: toml::Table,
}

/// Where a secret's bytes come from. The config file never holds a secret itself.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    pub env: Option<String>,
    pub file: Option<PathBuf>,
    /// How the text is turned into key bytes.
    #[serde(default)]
    pub encoding: SecretEncoding,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SecretEncoding {
    /// The text's UTF-8 bytes (a file's trailing newline is dropped).
    #[default]
    Utf8,
    Base64,
    Hex,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Linear memory cap per request instance, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Wall-clock deadline of one plugin call, in milliseconds.
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u64,
    /// Deadline of one outbound HTTP request, in milliseconds.
    #[serde(default = "default_http_timeout_ms")]
    pub http_timeout_ms: u64,
    /// Largest outbound HTTP answer body, in bytes.
    #[serde(default = "default_http_max_bytes")]
    pub http_max_response_bytes: u64,
    /// `handle` calls one instance serves before it is retired: 1 (the default) is a
    /// fresh instance per request; more keeps the guest's memory between requests (see
    /// `runtime::warm`).
    #[serde(default = "default_reuse")]
    pub reuse: u32,
    /// Calls of this instance running at once (requests, timers, events); one more is
    /// answered 503 with `Retry-After`, so one instance cannot take every call slot.
    #[serde(default = "default_instance_concurrency")]
    pub max_concurrent: u32,
    /// Most bytes the instance's durable store may hold (keys, values and 64 per key),
    /// in MiB; 0: no quota. A write over it is refused, so one plugin cannot fill the
    /// disk the ledger and every other instance write to.
    #[serde(default = "default_store_mb")]
    pub store_mb: u32,
    /// Log lines the plugin may write a second (with a burst of ten seconds' worth);
    /// more are dropped and counted, so one chatty plugin cannot flood the host's log.
    #[serde(default = "default_log_lines_per_second")]
    pub log_lines_per_second: u32,
}

impl Limits {
    /// The store quota in bytes, as storage counts them (`None`: no quota).
    pub fn store_quota_bytes(&self) -> Option<u64> {
        (self.store_mb > 0).then(|| u64::from(self.store_mb) << 20)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_mb: default_memory_mb(),
            deadline_ms: default_deadline_ms(),
            http_timeout_ms: default_http_timeout_ms(),
            http_max_response_bytes: default_http_max_bytes(),
            reuse: default_reuse(),
            max_concurrent: default_instance_concurrency(),
            store_mb: default_store_mb(),
            log_lines_per_second: default_log_lines_per_second(),
        }
    }
}

fn default_reuse() -> u32 {
    1
}
fn default_instance_concurrency() -> u32 {
    64
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
/// Room for long signed redirects (WebTV and Platform24 sign query strings) and cookies,
/// a quarter of hyper's own default.
fn default_max_header_bytes() -> u32 {
    64 * 1024
}
fn default_body_read_timeout_ms() -> u64 {
    30_000
}
fn default_idle_timeout_ms() -> u64 {
    60_000
}
fn default_max_connections() -> u32 {
    1_000
}
fn default_shutdown_grace_ms() -> u64 {
    10_000
}
fn default_plugin_nice() -> i32 {
    10
}
fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin_listen() -> String {
    "127.0.0.1:8081".into()
}
fn default_admin_token_env() -> String {
    "PAYHOST_ADMIN_TOKEN".into()
}
fn default_storage_url() -> String {
    "sqlite://data/payhost.db".into()
}
fn default_cache_dir() -> PathBuf {
    PathBuf::from("data/cache")
}
fn default_max_concurrent() -> u32 {
    512
}
fn default_max_request_bytes() -> usize {
    1 << 20
}
fn default_poll_ms() -> u64 {
    250
}
fn default_lease_seconds() -> i64 {
    60
}
fn default_delivery_attempts() -> u32 {
    12
}
fn default_true() -> bool {
    true
}
fn default_janitor_after() -> u64 {
    900
}
fn default_janitor_scan() -> u64 {
    30
}
fn default_janitor_recheck() -> u64 {
    300
}
fn default_request_id_header() -> String {
    "x-request-id".into()
}
fn default_service_name() -> String {
    "payhost".into()
}
fn default_otlp_timeout_ms() -> u64 {
    10_000
}
fn default_memory_mb() -> u32 {
    64
}
fn default_store_mb() -> u32 {
    1024
}
fn default_log_lines_per_second() -> u32 {
    200
}
fn default_deadline_ms() -> u64 {
    10_000
}
fn default_http_timeout_ms() -> u64 {
    8_000
}
fn default_http_max_bytes() -> u64 {
    4 << 20
}

/// Largest memory cap an instance may ask for; the engine's pool is sized for it.
pub const MAX_MEMORY_MB: u32 = 1024;
/// Largest store quota an instance may be given, in MiB (1 TiB).
pub const MAX_STORE_MB: u32 = 1 << 20;
/// Most `handle` calls one warm instance may serve (`limits.reuse`).
pub const MAX_REUSE: u32 = 100_000;
/// Bounds of `runtime.max_header_bytes`: under 8 KiB refuses ordinary browsers' heads
/// (cookies, long referrers). hyper's connection buffer (about 408 KiB) ends any head
/// first, so a larger limit would be one the host never keeps; 256 KiB stays under it.
const MIN_HEADER_BYTES: u32 = 8 * 1024;
const MAX_HEADER_BYTES: u32 = 256 * 1024;

impl Config {
    /// Reads and validates `path`; relative paths inside are resolved against its folder.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        Self::parse(&text, base).with_context(|| format!("in config file {}", path.display()))
    }

    /// Parses and validates config text; `base` resolves relative paths.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        resolve(&mut self.runtime.cache_dir);
        if let Some(rest) = self.storage.url.strip_prefix("sqlite://") {
            let p = Path::new(rest);
            if p.is_relative() && rest != ":memory:" {
                self.storage.url = format!("sqlite://{}", base.join(p).display());
            }
        }
        for plugin in &mut self.plugins {
            resolve(&mut plugin.component);
            for secret in plugin.secrets.values_mut() {
                if let Some(file) = &mut secret.file {
                    resolve(file);
                }
            }
        }
    }

    /// Checks what can be checked without loading components or reading secrets.
    pub fn validate(&self) -> Result<()> {
        parse_addr("listen", &self.listen)?;
        parse_addr("admin.listen", &self.admin.listen)?;
        if !(self.storage.url.starts_with("sqlite://") || self.storage.url.starts_with("postgres://") || self.storage.url.starts_with("postgresql://")) {
            bail!("storage.url `{}` is neither `sqlite://PATH` nor `postgres://...`", self.storage.url);
        }
        self.validate_operations()?;
        let mut names = std::collections::HashSet::new();
        for p in &self.plugins {
            let at = |key: &str| format!("plugin `{}`: {key}", p.name);
            if p.name.is_empty() || !p.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("plugin name `{}` must be non-empty ASCII letters, digits, `-` or `_`", p.name);
            }
            if p.name == "balance" {
                bail!("plugin name `balance` is reserved for the built-in ledger payment method");
            }
            if p.name == "admin" {
                bail!("plugin name `admin` is reserved: the admin API's ledger calls use it as their scope");
            }
            if !names.insert(p.name.as_str()) {
                bail!("plugin name `{}` is used by two [[plugins]] entries; give each instance its own name", p.name);
            }
            check_mount(&p.mount).with_context(|| at("mount"))?;
            if !p.component.is_file() {
                bail!(
                    "{}: component file {} does not exist; build the plugins (`cargo xtask build-plugins`) or fix the path",
                    at("component"),
                    p.component.display()
                );
            }
            for host in &p.allowed_hosts {
                check_host_pattern(host).with_context(|| at("allowed_hosts"))?;
            }
            for (name, secret) in &p.secrets {
                match (&secret.env, &secret.file) {
                    (Some(_), None) | (None, Some(_)) => {}
                    _ => bail!("{}: give exactly one of `env` or `file`", at(&format!("secrets.{name}"))),
                }
            }
            let l = &p.limits;
            if l.memory_mb == 0 || l.memory_mb > MAX_MEMORY_MB {
                bail!("{}: must be 1..={MAX_MEMORY_MB}", at("limits.memory_mb"));
            }
            if l.deadline_ms == 0 || l.deadline_ms > 600_000 {
                bail!("{}: must be 1..=600000", at("limits.deadline_ms"));
            }
            if l.http_timeout_ms == 0 {
                bail!("{}: must be positive", at("limits.http_timeout_ms"));
            }
            if l.reuse == 0 || l.reuse > MAX_REUSE {
                bail!("{}: must be 1..={MAX_REUSE} (1: a fresh instance per request)", at("limits.reuse"));
            }
            // Above `runtime.max_concurrent_requests` it is allowed (the host's own limit
            // applies first), so lowering the host's limit never breaks a config that left
            // this at its default.
            if l.store_mb > MAX_STORE_MB {
                bail!("{}: must be 0..={MAX_STORE_MB} (MiB; 0: no quota)", at("limits.store_mb"));
            }
            if !(1..=100_000).contains(&l.log_lines_per_second) {
                bail!("{}: must be 1..=100000 (lines a second)", at("limits.log_lines_per_second"));
            }
            if l.max_concurrent == 0 {
                bail!("{}: must be at least 1", at("limits.max_concurrent"));
            }
        }
        for (i, a) in self.plugins.iter().enumerate() {
            for b in &self.plugins[i + 1..] {
                if mounts_overlap(&a.mount, &b.mount) {
                    bail!(
                        "plugin `{}`: mount `{}` overlaps mount `{}` of plugin `{}`; give each instance its own prefix",
                        b.name, b.mount, a.mount, a.name
                    );
                }
            }
        }
        for p in &self.plugins {
            for system in &p.payment_systems {
                if system != "balance" && !self.plugins.iter().any(|o| &o.name == system) {
                    bail!(
                        "plugin `{}`: payment_systems names `{system}`, which is neither `balance` nor a configured plugin instance",
                        p.name
                    );
                }
            }
        }
        Ok(())
    }

    fn validate_operations(&self) -> Result<()> {
        let header = &self.tracing.request_id_header;
        if !header.is_empty() && reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
            bail!("tracing.request_id_header `{header}` is not an HTTP header name (or leave it empty for none)");
        }
        if let Some(otlp) = &self.tracing.otlp {
            let ok = url::Url::parse(&otlp.endpoint).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                bail!("tracing.otlp.endpoint `{}` must be an http(s) URL such as http://127.0.0.1:4318/v1/traces", otlp.endpoint);
            }
        }
        let r = &self.runtime;
        for (key, value) in [
            ("runtime.header_read_timeout_ms", r.header_read_timeout_ms),
            ("runtime.body_read_timeout_ms", r.body_read_timeout_ms),
            ("runtime.idle_timeout_ms", r.idle_timeout_ms),
            ("runtime.shutdown_grace_ms", r.shutdown_grace_ms),
        ] {
            if value == 0 || value > 3_600_000 {
                bail!("{key} must be 1..=3600000 (milliseconds)");
            }
        }
        if r.max_connections == 0 {
            bail!("runtime.max_connections must be positive");
        }
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&r.max_header_bytes) {
            bail!("runtime.max_header_bytes must be {MIN_HEADER_BYTES}..={MAX_HEADER_BYTES} (bytes of a request head)");
        }
        if !(0..=19).contains(&r.plugin_nice) {
            bail!("runtime.plugin_nice must be 0..=19 (0: plugin threads at the host's own priority)");
        }
        if r.plugin_threads > 1024 {
            bail!("runtime.plugin_threads must be 0..=1024 (0: twice the cores)");
        }
        if self.janitor.scan_seconds == 0 || self.janitor.recheck_seconds == 0 {
            bail!("janitor.scan_seconds and janitor.recheck_seconds must be positive");
        }
        Ok(())
    }

    pub fn plugin(&self, name: &str) -> Option<&PluginConfig> {
        self.plugins.iter().find(|p| p.name == name)
    }
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr> {
    value
        .parse()
        .with_context(|| format!("{key} `{value}` is not an address like 127.0.0.1:8080"))
}

fn check_mount(mount: &str) -> Result<()> {
    if !mount.starts_with('/') || mount.len() < 2 || mount.ends_with('/') {
        bail!("`{mount}` must start with `/`, name at least one segment and not end with `/` (e.g. `/webtv`)");
    }
    if mount.contains("//") || mount.contains('?') || mount.contains('#') {
        bail!("`{mount}` must be a plain path prefix");
    }
    Ok(())
}

/// Two mounts overlap when one is a path-segment prefix of the other.
pub fn mounts_overlap(a: &str, b: &str) -> bool {
    let prefix_of = |short: &str, long: &str| long == short || long.starts_with(&format!("{short}/"));
    prefix_of(a, b) || prefix_of(b, a)
}

fn check_host_pattern(host: &str) -> Result<()> {
    let valid = !host.is_empty()
        && !host.contains('/')
        && !host.contains('*')
        && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c));
    if !valid {
        bail!("`{host}` must be a host name or `host:port` (no scheme, path or wildcard)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_mounts_are_detected_by_segment() {
        assert!(mounts_overlap("/a", "/a"));
        assert!(mounts_overlap("/a", "/a/b"));
        assert!(!mounts_overlap("/a", "/ab"));
    }

    #[test]
    fn operations_sections_have_defaults_and_are_checked() {
        let config = Config::parse("", Path::new(".")).unwrap();
        assert_eq!(config.tracing.request_id_header, "x-request-id");
        assert_eq!(config.tracing.otlp, None, "no exporter unless configured");
        assert!(config.janitor.enabled);
        assert_eq!(config.janitor.after_seconds, 900);
        let on = Config::parse("[tracing]\nrequest_id_header = \"x-trace\"\n[tracing.otlp]\nendpoint = \"http://127.0.0.1:4318/v1/traces\"\n", Path::new(".")).unwrap();
        let otlp = on.tracing.otlp.unwrap();
        assert_eq!((otlp.endpoint.as_str(), otlp.service_name.as_str(), otlp.timeout_ms), ("http://127.0.0.1:4318/v1/traces", "payhost", 10_000));
        assert_eq!(on.tracing.request_id_header, "x-trace");
        let bad = Config::parse("[tracing.otlp]\nendpoint = \"localhost:4318\"\n", Path::new(".")).unwrap_err();
        assert!(format!("{bad:#}").contains("tracing.otlp.endpoint"), "{bad:#}");
        let bad = Config::parse("[tracing]\nrequest_id_header = \"x trace\"\n", Path::new(".")).unwrap_err();
        assert!(format!("{bad:#}").contains("request_id_header"), "{bad:#}");
        let off = Config::parse("[janitor]\nenabled = false\nafter_seconds = 60\n", Path::new(".")).unwrap();
        assert_eq!((off.janitor.enabled, off.janitor.after_seconds), (false, 60));
    }

    #[test]
    fn the_request_head_limit_has_a_default_and_bounds() {
        let config = Config::parse("", Path::new(".")).unwrap();
        assert_eq!(config.runtime.max_header_bytes, 65_536);
        let set = Config::parse("[runtime]\nmax_header_bytes = 16384\n", Path::new(".")).unwrap();
        assert_eq!(set.runtime.max_header_bytes, 16_384);
        for refused in [0, 8191, 262_145] {
            let err = Config::parse(&format!("[runtime]\nmax_header_bytes = {refused}\n"), Path::new(".")).unwrap_err();
            assert!(format!("{err:#}").contains("runtime.max_header_bytes must be 8192..=262144"), "{refused}: {err:#}");
        }
    }

    #[test]
    fn the_store_quota_and_the_log_rate_have_defaults_and_bounds() {
        let plugin = |limits: &str| {
            format!("[[plugins]]\nname = \"t\"\ncomponent = \"t.wasm\"\nmount = \"/t\"\n[plugins.limits]\n{limits}\n")
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.wasm"), b"").unwrap();
        let quota = |limits: &str| Config::parse(&plugin(limits), dir.path()).map(|c| c.plugins[0].limits.store_quota_bytes());
        assert_eq!(quota("").unwrap(), Some(1024 << 20));
        assert_eq!(quota("store_mb = 5").unwrap(), Some(5 << 20));
        assert_eq!(quota("store_mb = 0").unwrap(), None, "0 turns the quota off");
        let err = quota("store_mb = 1048577").unwrap_err();
        assert!(format!("{err:#}").contains("limits.store_mb: must be 0..=1048576"), "{err:#}");
        let lines = |limits: &str| Config::parse(&plugin(limits), dir.path()).map(|c| c.plugins[0].limits.log_lines_per_second);
        assert_eq!(lines("").unwrap(), 200);
        assert_eq!(lines("log_lines_per_second = 5").unwrap(), 5);
        let err = lines("log_lines_per_second = 0").unwrap_err();
        assert!(format!("{err:#}").contains("limits.log_lines_per_second: must be 1..=100000"), "{err:#}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse("listn = \"127.0.0.1:1\"", Path::new(".")).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field `listn`"), "{err:#}");
    }
}

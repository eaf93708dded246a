//! Admin routes for plugin instances: listing, reload from a new component, rollback,
//! and whole-config reload.

use std::sync::atomic::Ordering;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::{ok, AdminError, Answer};
use crate::live::LiveOps;

pub async fn handle(app: &LiveOps, method: &Method, rest: &[&str], body: &[u8]) -> Answer {
    match (method, rest) {
        (&Method::GET, []) => ok(&list(app).await),
        (&Method::POST, [name, "reload"]) => {
            let path = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("path").and_then(Value::as_str).map(std::path::PathBuf::from));
            match app.reload_instance(name, path, "admin reload").await {
                Ok(summary) => typed::<Reloaded>(summary),
                Err(e) => refused(StatusCode::UNPROCESSABLE_ENTITY, &e, "previous version"),
            }
        }
        (&Method::POST, [name, "rollback"]) => match app.rollback_instance(name).await {
            Ok(summary) => typed::<RolledBack>(summary),
            Err(e) => refused(StatusCode::CONFLICT, &e, "current version"),
        },
        _ => AdminError::not_found("no such plugins route").answer(),
    }
}

pub async fn reload_config(app: &LiveOps, trigger: &str) -> Answer {
    config_reload_answer(&app.reload_config(trigger).await)
}

/// The answer to a config reload, however it was asked for.
pub fn config_reload_answer(result: &anyhow::Result<Value>) -> Answer {
    match result {
        Ok(summary) => typed::<ConfigReloaded>(summary.clone()),
        Err(e) => refused(StatusCode::UNPROCESSABLE_ENTITY, e, "previous config"),
    }
}

/// Answers `summary` after checking it has the documented shape.
fn typed<T: Serialize + for<'de> Deserialize<'de>>(summary: Value) -> Answer {
    match serde_json::from_value::<T>(summary) {
        Ok(answer) => ok(&answer),
        Err(e) => AdminError::internal(&format!("the summary does not have its documented shape: {e}")).answer(),
    }
}

fn refused(status: StatusCode, e: &anyhow::Error, serving: &str) -> Answer {
    (status, json!({ "error": format!("{e:#}"), "code": "refused", "serving": serving }))
}

/// `GET /plugins`.
#[derive(Serialize, ToSchema)]
pub struct PluginList {
    pub plugins: Vec<PluginView>,
}

/// One serving instance.
#[derive(Serialize, ToSchema)]
pub struct PluginView {
    pub name: String,
    pub mount: String,
    /// `provider` or `payment-system`.
    pub world: String,
    pub plugin: String,
    pub plugin_version: String,
    pub component_hash: String,
    pub wit_version: String,
    /// Host clock, ms.
    pub loaded_at: i64,
    pub requests: u64,
    pub errors: u64,
    /// Versions served, oldest first (the last is the current one).
    pub history: Vec<VersionView>,
    /// The instance's durable store; absent when storage did not answer.
    pub store: Option<StoreView>,
}

/// How much of its quota (`limits.store_mb`) an instance's store uses.
#[derive(Serialize, ToSchema)]
pub struct StoreView {
    /// Keys and values, pending timers (name and payload), and 64 bytes for each key and timer.
    pub bytes: u64,
    /// Absent: no quota (`limits.store_mb = 0`).
    pub quota_bytes: Option<u64>,
}

/// One version an instance served.
#[derive(Serialize, ToSchema)]
pub struct VersionView {
    pub hash: String,
    pub wit_version: String,
    pub plugin_version: String,
    pub path: String,
    pub loaded_at: i64,
    /// `startup`, `admin reload`, `admin rollback`, `watch`, …
    pub trigger: String,
    /// The config generation the version ran with: 1 from start-up, one more per config
    /// reload (a rollback runs the old code with the config in force).
    pub config_generation: u64,
}

/// Body of `POST /plugins/{name}/reload` (optional).
#[derive(Deserialize, ToSchema)]
pub struct ReloadRequest {
    /// Load this component file instead (relative to the config file).
    pub path: Option<String>,
}

/// A new version swapped in.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Reloaded {
    pub name: String,
    pub component_hash: String,
    pub plugin_version: String,
    /// false: taken from the compiled-component cache.
    pub compiled: bool,
    pub load_ms: f64,
}

/// Back on the previous version.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct RolledBack {
    pub name: String,
    pub component_hash: String,
    pub plugin_version: String,
    /// The config generation the old code now runs with (the one in force).
    pub config_generation: u64,
}

/// A config applied whole.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ConfigReloaded {
    /// Instances now configured.
    pub plugins: Vec<String>,
    /// Changed keys that take effect only after a restart.
    pub needs_restart: Vec<String>,
}

async fn list(app: &LiveOps) -> PluginList {
    let table = app.runtime.registry.table();
    let mut plugins: Vec<PluginView> = table
        .mounts
        .iter()
        .map(|(mount, slot)| {
            let current = slot.current();
            PluginView {
                name: slot.name.clone(),
                mount: mount.clone(),
                world: serde_json::to_value(current.component.world).ok().and_then(|w| w.as_str().map(str::to_string)).unwrap_or_default(),
                plugin: current.info.name.clone(),
                plugin_version: current.info.version.clone(),
                component_hash: current.component.hash.clone(),
                wit_version: current.component.wit_version.clone(),
                loaded_at: current.loaded_at,
                requests: slot.requests.load(Ordering::Relaxed),
                errors: slot.errors.load(Ordering::Relaxed),
                history: slot
                    .history()
                    .into_iter()
                    .map(|r| VersionView {
                        hash: r.hash,
                        wit_version: r.wit_version,
                        plugin_version: r.plugin_version,
                        path: r.path,
                        loaded_at: r.loaded_at,
                        trigger: r.trigger,
                        config_generation: r.config_generation,
                    })
                    .collect(),
                store: None,
            }
        })
        .collect();
    plugins.sort_by(|a, b| a.name.cmp(&b.name));
    match app.runtime.services.storage.kv_usages().await {
        Ok(usages) => {
            for plugin in &mut plugins {
                let usage = usages.get(&plugin.name);
                plugin.store = Some(StoreView { bytes: usage.map_or(0, |u| u.bytes), quota_bytes: usage.and_then(|u| u.quota) });
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read the stores' usage for GET /plugins"),
    }
    PluginList { plugins }
}

#[utoipa::path(get, path = "/plugins", tag = "plugins",
    responses((status = 200, description = "Serving instances by name", body = PluginList)))]
pub fn doc_list() {}

#[utoipa::path(post, path = "/plugins/{name}/reload", tag = "plugins", params(("name" = String, Path, description = "Instance name")),
    request_body = ReloadRequest,
    responses(
        (status = 200, description = "Compiled, checked and swapped in", body = Reloaded),
        (status = 422, description = "Refused; the previous version keeps serving (`serving` says so)", body = AdminError),
    ))]
pub fn doc_reload() {}

#[utoipa::path(post, path = "/plugins/{name}/rollback", tag = "plugins", params(("name" = String, Path, description = "Instance name")),
    responses(
        (status = 200, description = "Back on the previous version", body = RolledBack),
        (status = 409, description = "No such instance or no earlier version", body = AdminError),
    ))]
pub fn doc_rollback() {}

#[utoipa::path(post, path = "/config/reload", tag = "plugins",
    responses(
        (status = 200, description = "The config file applied whole", body = ConfigReloaded),
        (status = 422, description = "Refused; the running config stays (`serving` says so)", body = AdminError),
    ))]
pub fn doc_config_reload() {}

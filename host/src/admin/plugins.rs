//! Admin routes for plugin instances: listing, reload from a new component, rollback,
//! and whole-config reload.

use std::sync::atomic::Ordering;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::live::LiveOps;

pub async fn handle(app: &LiveOps, method: &Method, rest: &[&str], body: &[u8]) -> (StatusCode, Value) {
    match (method, rest) {
        (&Method::GET, []) => (StatusCode::OK, list(app)),
        (&Method::POST, [name, "reload"]) => {
            let path = serde_json::from_slice::<Value>(body)
                .ok()
                .and_then(|v| v.get("path").and_then(Value::as_str).map(std::path::PathBuf::from));
            match app.reload_instance(name, path, "admin reload").await {
                Ok(summary) => (StatusCode::OK, summary),
                Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": format!("{e:#}"), "serving": "previous version" })),
            }
        }
        (&Method::POST, [name, "rollback"]) => match app.rollback_instance(name) {
            Ok(summary) => (StatusCode::OK, summary),
            Err(e) => (StatusCode::CONFLICT, json!({ "error": format!("{e:#}") })),
        },
        _ => (StatusCode::NOT_FOUND, json!({ "error": "no such plugins route" })),
    }
}

pub async fn reload_config(app: &LiveOps, trigger: &str) -> (StatusCode, Value) {
    match app.reload_config(trigger).await {
        Ok(summary) => (StatusCode::OK, summary),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": format!("{e:#}"), "serving": "previous config" })),
    }
}

fn list(app: &LiveOps) -> Value {
    let table = app.runtime.registry.table();
    let mut out: Vec<Value> = table
        .mounts
        .iter()
        .map(|(mount, slot)| {
            let current = slot.current();
            json!({
                "name": slot.name,
                "mount": mount,
                "world": current.component.world,
                "plugin": current.info.name,
                "plugin_version": current.info.version,
                "component_hash": current.component.hash,
                "wit_version": current.component.wit_version,
                "loaded_at": current.loaded_at,
                "requests": slot.requests.load(Ordering::Relaxed),
                "errors": slot.errors.load(Ordering::Relaxed),
                "history": slot.history(),
            })
        })
        .collect();
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    json!({ "plugins": out })
}

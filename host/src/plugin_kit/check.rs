//! `payhost plugin check`: what a component is and needs, before it is deployed; with
//! an operator's config, every grant that instance lacks and every grant the plugin
//! never declared.

use std::path::Path;

use anyhow::Result;
use wasmtime::component::types::ComponentItem;

use crate::app;
use crate::config::{Config, PluginConfig};
use crate::runtime::grants;
use crate::runtime::instance::LoadedInstance;
use crate::secrets::Secrets;

/// What `plugin check` found: the description, and one message per problem.
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

/// Inspects `wasm`, and with `config` checks it as that config's instance `instance`.
pub async fn check_plugin(wasm: &Path, config: Option<(&Path, &str)>) -> Result<Report> {
    let (probe, plugin) = match config {
        Some((path, instance)) => {
            let mut config = Config::load(path)?;
            let Some(mut plugin) = config.plugin(instance).cloned() else {
                let names: Vec<&str> = config.plugins.iter().map(|p| p.name.as_str()).collect();
                anyhow::bail!("{} has no [[plugins]] instance `{instance}` (it has: {})", path.display(), names.join(", "));
            };
            plugin.component = wasm.to_path_buf();
            config.plugins.clear();
            (config, plugin)
        }
        None => {
            let config = Config::parse("", Path::new("."))?;
            let plugin: PluginConfig = toml::from_str(&format!(
                "name = \"plugin-check\"\nmount = \"/plugin-check\"\ncomponent = {:?}",
                wasm.display().to_string()
            ))?;
            (config, plugin)
        }
    };
    let mut probe = probe;
    probe.runtime.cache_dir = std::env::temp_dir().join("payhost-plugin-check-cache");
    let runtime = app::probe_runtime(probe).await?;
    let mut report = Report { lines: Vec::new(), problems: Vec::new() };
    let instance = match runtime.describe_instance(&plugin, Secrets::default(), "plugin check").await {
        Ok(i) => i,
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            return Ok(report);
        }
    };
    describe(&runtime.engine, &instance, &mut report.lines);
    if let Some((path, name)) = config {
        let missing = grants::missing(&plugin, &instance.info);
        let undeclared = grants::undeclared(&plugin, &instance.info);
        if missing.is_empty() && undeclared.is_empty() {
            report.lines.push(format!("instance `{name}` in {}: grants exactly what the plugin declares", path.display()));
        }
        report.problems.extend(missing);
        report.problems.extend(undeclared);
    }
    Ok(report)
}

fn describe(engine: &wasmtime::Engine, instance: &LoadedInstance, out: &mut Vec<String>) {
    let c = &instance.component;
    let info = &instance.info;
    let adapted = if c.contract.is_current() { "current" } else { "older, adapted by this host" };
    out.push(format!("component      {} (sha256 {})", c.path.display(), &c.hash[..12]));
    out.push(format!("world          {}", serde_json::to_value(c.world).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()));
    out.push(format!("contract       {}@{} ({adapted})", crate::wit::WIT_PACKAGE, c.wit_version));
    out.push(format!("plugin         {} {}: {}", info.name, info.version, info.description));
    out.push(format!("secrets        {}", names(info.secrets.iter().map(String::as_str))));
    out.push(format!("hosts          {}", names(info.hosts.iter().map(String::as_str))));
    out.push(format!("host settings  {}", names(info.host_settings.iter().map(String::as_str))));
    if info.settings.is_empty() {
        out.push("settings       none".into());
    }
    for (i, s) in info.settings.iter().enumerate() {
        let label = if i == 0 { "settings      " } else { "              " };
        let need = if s.required { "required" } else { "optional" };
        out.push(format!("{label} {} ({need}): {}", s.name, s.description));
    }
    out.push("imports".into());
    let ty = c.component.component_type();
    for (name, item) in ty.imports(engine) {
        let functions: Vec<String> = match item.ty {
            ComponentItem::ComponentInstance(i) => i.exports(engine).map(|(f, _)| f.to_string()).collect(),
            _ => Vec::new(),
        };
        out.push(format!("  {name}: {}", functions.join(", ")));
    }
}

fn names<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = items.collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}


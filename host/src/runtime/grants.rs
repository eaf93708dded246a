//! What an instance's config grants against what its plugin declared in `describe`.
//!
//! A missing grant stops the instance from loading (the plugin would fail at its first
//! use of it); a grant the plugin never declared is only reported, because it is
//! usually a misspelt optional setting or secret that would otherwise be ignored
//! silently.

use crate::capabilities::http::check_allowed;
use crate::config::PluginConfig;
use crate::wit::types::PluginInfo;

/// Grants the plugin needs that the config does not give, one message each.
pub fn missing(plugin: &PluginConfig, info: &PluginInfo) -> Vec<String> {
    let name = &plugin.name;
    let mut problems = Vec::new();
    for secret in &info.secrets {
        if !plugin.secrets.contains_key(secret) {
            problems.push(format!(
                "plugin `{name}`: the plugin needs secret `{secret}`, which [plugins.secrets] does not grant; \
                 add `{secret} = {{ env = \"VAR\" }}` (or `file = \"...\"`) to its secrets"
            ));
        }
    }
    for host in &info.hosts {
        if !plugin.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            problems.push(format!(
                "plugin `{name}`: the plugin needs outbound host `{host}`, which allowed_hosts does not grant; add it to allowed_hosts"
            ));
        }
    }
    for setting in info.settings.iter().filter(|s| s.required) {
        if !plugin.settings.contains_key(&setting.name) {
            problems.push(format!(
                "plugin `{name}`: the plugin needs setting `{}` ({}); add it under [plugins.settings]",
                setting.name, setting.description
            ));
        }
    }
    for setting in &info.host_settings {
        let Some(value) = plugin.settings.get(setting).and_then(|v| v.as_str()) else { continue };
        match url::Url::parse(value) {
            Err(e) => problems.push(format!("plugin `{name}`: setting `{setting}` must be an absolute URL ({e})")),
            Ok(url) => {
                if check_allowed(&url, &plugin.allowed_hosts).is_err() {
                    let host = host_port(&url);
                    problems.push(format!(
                        "plugin `{name}`: the plugin calls the host of setting `{setting}` ({host}), which allowed_hosts does not grant; add `{host}` to allowed_hosts"
                    ));
                }
            }
        }
    }
    problems
}

/// Grants in the config that the plugin never declared, one message each.
pub fn undeclared(plugin: &PluginConfig, info: &PluginInfo) -> Vec<String> {
    let name = &plugin.name;
    let mut warnings = Vec::new();
    for secret in plugin.secrets.keys() {
        if !info.secrets.contains(secret) {
            warnings.push(format!(
                "plugin `{name}`: secret `{secret}` is granted but the plugin never declared it (misspelt?); it declares {}",
                listed(info.secrets.iter())
            ));
        }
    }
    for setting in plugin.settings.keys() {
        if !info.settings.iter().any(|s| &s.name == setting) && !info.host_settings.contains(setting) {
            warnings.push(format!(
                "plugin `{name}`: setting `{setting}` is set but the plugin never declared it (misspelt?); it declares {}",
                listed(info.settings.iter().map(|s| &s.name).chain(&info.host_settings))
            ));
        }
    }
    let setting_hosts: Vec<url::Url> = info
        .host_settings
        .iter()
        .filter_map(|s| plugin.settings.get(s).and_then(|v| v.as_str()))
        .filter_map(|v| url::Url::parse(v).ok())
        .collect();
    for granted in &plugin.allowed_hosts {
        let declared = info.hosts.iter().any(|h| h.eq_ignore_ascii_case(granted) || granted_host(granted).eq_ignore_ascii_case(h))
            || setting_hosts.iter().any(|url| check_allowed(url, std::slice::from_ref(granted)).is_ok());
        if !declared {
            warnings.push(format!(
                "plugin `{name}`: allowed host `{granted}` is granted but the plugin never declared it (neither in its hosts nor as the host of a URL setting)"
            ));
        }
    }
    warnings
}

fn host_port(url: &url::Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(0))
}

/// The host part of an `allowed_hosts` entry (`host` or `host:port`).
fn granted_host(entry: &str) -> &str {
    match entry.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => host,
        _ => entry,
    }
}

fn listed<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wit::types::SettingSpec;

    fn plugin(toml: &str) -> PluginConfig {
        toml::from_str(&format!("name = \"p\"\ncomponent = \"p.wasm\"\nmount = \"/p\"\n{toml}")).unwrap()
    }

    fn info() -> PluginInfo {
        PluginInfo {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            secrets: vec!["api_key".into()],
            hosts: vec!["api.example.com".into()],
            host_settings: vec!["callback_url".into()],
            settings: vec![SettingSpec { name: "shop".into(), required: true, description: "shop id".into() }],
        }
    }

    #[test]
    fn each_missing_grant_is_named() {
        let p = plugin("[settings]\ncallback_url = \"https://cb.example.com/x\"\n");
        let problems = missing(&p, &info());
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("secret `api_key`"));
        assert!(problems[1].contains("outbound host `api.example.com`"));
        assert!(problems[2].contains("setting `shop`"));
        assert!(problems[3].contains("setting `callback_url` (cb.example.com:443)"));
    }

    #[test]
    fn a_full_grant_has_no_problems_and_no_warnings() {
        let p = plugin(
            "allowed_hosts = [\"api.example.com\", \"cb.example.com:443\"]\n\
             [secrets]\napi_key = { env = \"K\" }\n\
             [settings]\nshop = \"7\"\ncallback_url = \"https://cb.example.com/x\"\n",
        );
        assert!(missing(&p, &info()).is_empty());
        assert!(undeclared(&p, &info()).is_empty(), "{:#?}", undeclared(&p, &info()));
    }

    #[test]
    fn misspelt_grants_are_reported() {
        let p = plugin(
            "allowed_hosts = [\"api.example.com\", \"other.example.com\"]\n\
             [secrets]\napi_key = { env = \"K\" }\napi_kee = { env = \"K\" }\n\
             [settings]\nshop = \"7\"\nshpo = \"7\"\n",
        );
        let warnings = undeclared(&p, &info());
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(warnings[0].contains("secret `api_kee`"));
        assert!(warnings[1].contains("setting `shpo`"));
        assert!(warnings[2].contains("allowed host `other.example.com`"));
    }
}

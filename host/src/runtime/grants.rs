//! The load-time grant check: a plugin says in `describe` which secrets, hosts and
//! settings it needs, and an instance whose config does not grant them is refused.

use anyhow::{bail, Result};

use crate::config::PluginConfig;
use crate::wit::types::PluginInfo;

/// Refuses an instance whose plugin needs a secret, host or setting the config does not grant.
pub(super) fn check(plugin: &PluginConfig, info: &PluginInfo) -> Result<()> {
    let name = &plugin.name;
    for secret in &info.secrets {
        if !plugin.secrets.contains_key(secret) {
            bail!(
                "plugin `{name}`: the plugin needs secret `{secret}`, which [plugins.secrets] does not grant; \
                 add `{secret} = {{ env = \"VAR\" }}` (or `file = \"...\"`) to its secrets"
            );
        }
    }
    for host in &info.hosts {
        if !plugin.allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            bail!("plugin `{name}`: the plugin needs outbound host `{host}`, which allowed_hosts does not grant; add it to allowed_hosts");
        }
    }
    for setting in info.settings.iter().filter(|s| s.required) {
        if !plugin.settings.contains_key(&setting.name) {
            bail!(
                "plugin `{name}`: the plugin needs setting `{}` ({}); add it under [plugins.settings]",
                setting.name, setting.description
            );
        }
    }
    Ok(())
}


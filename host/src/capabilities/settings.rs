//! `settings`: the instance's free-form settings from config.

use crate::wit::settings::Host;
use super::state::PluginState;

impl Host for PluginState {
    fn get(&mut self, name: String) -> Option<String> {
        self.ctx.settings.iter().find(|(k, _)| *k == name).map(|(_, v)| v.clone())
    }

    fn all(&mut self) -> Vec<(String, String)> {
        self.ctx.settings.clone()
    }
}

/// Flattens a TOML table to name/string pairs: strings as they are, everything else as
/// JSON text, so plugins need no TOML parser.
pub fn flatten(table: &toml::Table) -> Vec<(String, String)> {
    table
        .iter()
        .map(|(k, v)| {
            let text = match v {
                toml::Value::String(s) => s.clone(),
                other => serde_json::to_string(other).unwrap_or_default(),
            };
            (k.clone(), text)
        })
        .collect()
}

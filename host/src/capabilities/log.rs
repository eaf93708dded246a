//! `log`: plugin log lines into the host's tracing, tagged with instance and request.

use crate::wit::log::{Host, Level};
use super::state::PluginState;

impl Host for PluginState {
    fn log(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        let instance = self.instance();
        let request = self.request_id.as_str();
        // Plugins promise not to log secrets; the host still refuses to echo one.
        let redacted = self.ctx.secrets.any_in(message.as_bytes())
            || fields.iter().any(|(_, v)| self.ctx.secrets.any_in(v.as_bytes()));
        let (message, fields) = if redacted {
            ("<plugin log line withheld: it contained a secret>".to_string(), String::new())
        } else {
            let fields = fields.iter().map(|(k, v)| format!("{k}={v:?}")).collect::<Vec<_>>().join(" ");
            (message, fields)
        };
        match level {
            Level::Trace => tracing::trace!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Debug => tracing::debug!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Info => tracing::info!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Warn => tracing::warn!(target: "plugin", instance, request, %fields, "{message}"),
            Level::Error => tracing::error!(target: "plugin", instance, request, %fields, "{message}"),
        }
    }
}

//! Why a plugin call failed, sorted into what the client is told and what the
//! operator's log says. A failure never leaks plugin internals to the client.

use std::fmt;

/// Longest plugin error the host keeps.
const MAX_PLUGIN_ERROR_BYTES: usize = 8 * 1024;

#[derive(Debug)]
pub enum CallFailure {
    /// The plugin ran past its deadline (epoch interruption or host-side timeout).
    Deadline,
    /// The plugin tried to grow memory past its cap.
    Memory(String),
    /// The plugin trapped (panic, unreachable, bad memory access).
    Trap(String),
    /// The plugin returned an error from `handle`.
    PluginError(String),
    /// Instantiation failed (pool exhausted, linking).
    Instantiate(String),
    /// No instance of that name, or of the wrong world.
    Unavailable(String),
    /// The instance (or the host) is running as many calls as it may; try again shortly.
    Busy(String),
}

impl CallFailure {
    pub fn from_wasmtime(err: wasmtime::Error) -> Self {
        if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
            if *trap == wasmtime::Trap::Interrupt {
                return CallFailure::Deadline;
            }
        }
        let text = format!("{err:?}");
        if text.contains("forcing trap when growing memory") || text.contains("memory minimum size") {
            CallFailure::Memory(first_line(&text))
        } else {
            CallFailure::Trap(first_line(&text))
        }
    }

    /// The HTTP status for the client.
    pub fn status(&self) -> u16 {
        match self {
            CallFailure::Deadline | CallFailure::Unavailable(_) | CallFailure::Instantiate(_) | CallFailure::Busy(_) => 503,
            _ => 500,
        }
    }

    /// What the client reads: the kind only, never plugin internals.
    pub fn public_message(&self) -> &'static str {
        match self {
            CallFailure::Deadline => "the payment plugin did not answer in time",
            CallFailure::Memory(_) => "the payment plugin ran out of memory",
            CallFailure::Trap(_) => "the payment plugin failed",
            CallFailure::PluginError(_) => "the payment plugin reported an error",
            CallFailure::Instantiate(_) => "the payment plugin could not be started",
            CallFailure::Unavailable(_) => "the payment plugin is not available",
            CallFailure::Busy(_) => "the payment plugin is busy; retry shortly",
        }
    }

    /// The plugin's own error, cut to `MAX_PLUGIN_ERROR_BYTES`: the host logs it with the
    /// failed call and keeps it with a failed job, and the plugin chose its length.
    pub fn plugin_error(message: String) -> Self {
        CallFailure::PluginError(crate::text::cut(&message, MAX_PLUGIN_ERROR_BYTES))
    }

    /// Seconds the client should wait before retrying, when waiting helps.
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            CallFailure::Busy(_) => Some(1),
            _ => None,
        }
    }

    /// The text kept with a failed job for the operator: the plugin's own error as it
    /// gave it, otherwise what failed and how.
    pub fn detail(&self) -> String {
        match self {
            CallFailure::PluginError(text) => text.clone(),
            other => other.to_string(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::Deadline => "deadline",
            CallFailure::Memory(_) => "memory",
            CallFailure::Trap(_) => "trap",
            CallFailure::PluginError(_) => "plugin-error",
            CallFailure::Instantiate(_) => "instantiate",
            CallFailure::Unavailable(_) => "unavailable",
            CallFailure::Busy(_) => "busy",
        }
    }
}

impl fmt::Display for CallFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallFailure::Deadline => f.write_str("deadline exceeded"),
            CallFailure::Memory(d) => write!(f, "memory limit: {d}"),
            CallFailure::Trap(d) => write!(f, "trap: {d}"),
            CallFailure::PluginError(d) => write!(f, "plugin error: {d}"),
            CallFailure::Instantiate(d) => write!(f, "instantiate: {d}"),
            CallFailure::Unavailable(d) => write!(f, "unavailable: {d}"),
            CallFailure::Busy(d) => write!(f, "busy: {d}"),
        }
    }
}

fn first_line(text: &str) -> String {
    text.lines().take(3).collect::<Vec<_>>().join(" | ")
}

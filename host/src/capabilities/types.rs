//! `types`: shared records only; the interface has no functions to implement.

use crate::wit::types::Host;
use super::state::PluginState;

impl Host for PluginState {}

//! `payments`: shared payment records only; the interface has no functions to implement.

use super::state::PluginState;
use crate::wit::payments::Host;

impl Host for PluginState {}

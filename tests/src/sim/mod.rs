//! Counterpart simulators: loopback servers that speak one side of a provider's
//! protocol and check what payhost sends them with their own implementation of the
//! documented formulas (never with the plugin's code).

pub mod http;
pub mod netflix;
pub mod platform24;
pub mod platform24_api;
pub mod stripe;
pub mod webtv;

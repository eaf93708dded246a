//! `clock`: the host clock, the plugins' only time source.

use crate::wit::clock::{Host, Instant};
use super::state::PluginState;

impl Host for PluginState {
    fn now(&mut self) -> Instant {
        let ms = self.services().clock.now_millis();
        Instant { seconds: ms.div_euclid(1000), nanoseconds: (ms.rem_euclid(1000) as u32) * 1_000_000 }
    }
}

//! Payment events the host delivers for checkouts and charges this instance started.
//! Delivery repeats until we answer Ok, so every branch is idempotent; an event we
//! cannot place is logged and acknowledged rather than retried forever.

use crate::config::Config;
use crate::host::Host;
use crate::ids;
use crate::payment::{self, Answer, Payment};
use crate::recurring;
use crate::settle;
use payhost_sdk::log::Level;
use payhost_sdk::payments::PaymentEvent;

pub fn on_payment_event(host: &dyn Host, cfg: &Config, event: PaymentEvent) -> Result<(), String> {
    if let Some((slug, attempt)) = ids::parse_order_reference(&event.reference) {
        let system = event.system.clone();
        let known = match payment::answer(Ok(event.clone())) {
            Answer::Succeeded(ev) => settle::paid(host, &slug, &Payment::from_event(attempt, &system, &ev))?.is_some(),
            Answer::Failed(message) => settle::failed(host, &slug, attempt, &message)?.is_some(),
            Answer::Unknown(_) => true,
        };
        if !known {
            host.log(Level::Warn, "webtv: payment event for an unknown order", &[("reference", &event.reference)]);
        }
        return Ok(());
    }
    if let Some((profile_id, period, retry)) = ids::parse_charge_reference(&event.reference) {
        return recurring::on_charge_event(host, cfg, event, &profile_id, period, retry);
    }
    host.log(Level::Warn, "webtv: payment event with a reference this plugin does not make", &[("reference", &event.reference)]);
    Ok(())
}

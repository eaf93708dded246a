//! `lookup`: the current state of a checkout session (`cs_...`) or payment (`pi_...`).

use payhost_sdk::payments::{Error, PaymentEvent};

use crate::api;
use crate::config::Config;
use crate::events;
use crate::retrieve;

pub fn lookup(external_id: &str) -> Result<PaymentEvent, Error> {
    if !api::is_id(external_id) {
        return Err(Error::NotFound(format!("`{external_id}` is not a Stripe id")));
    }
    let config = Config::load()?;
    if external_id.starts_with("cs_") {
        let session = retrieve::session(&config, external_id)?;
        let outcome = events::session_outcome(&session);
        let saved = retrieve::saved_method(&config, &session, &outcome)?;
        events::session_event(&session, outcome, saved)
            .map_err(Error::Other)?
            .ok_or_else(|| Error::NotFound(format!("checkout session {external_id} was not started by payhost")))
    } else if external_id.starts_with("pi_") {
        let intent = retrieve::intent(&config, external_id)?;
        events::intent_event(&intent, events::intent_outcome(&intent))
            .ok_or_else(|| Error::NotFound(format!("payment intent {external_id} was not made by payhost")))
    } else {
        Err(Error::NotFound(format!(
            "`{external_id}` is neither a checkout session (cs_) nor a payment intent (pi_)"
        )))
    }
}

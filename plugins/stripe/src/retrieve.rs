//! Reading sessions and payment intents back from Stripe, and the saved card of a paid
//! checkout (which only its PaymentIntent knows).

use payhost_sdk::payments::Error;

use crate::api;
use crate::config::Config;
use crate::events::{self, Outcome};
use crate::objects::{expandable_id, PaymentIntent, Session};

pub fn session(config: &Config, id: &str) -> Result<Session, Error> {
    let body = api::get(config, &format!("/v1/checkout/sessions/{id}"))?.map_err(|f| f.into_error())?;
    api::parse(&body, "checkout session")
}

pub fn intent(config: &Config, id: &str) -> Result<PaymentIntent, Error> {
    let body = api::get(config, &format!("/v1/payment_intents/{id}"))?.map_err(|f| f.into_error())?;
    api::parse(&body, "payment intent")
}

/// `cus_...:pm_...` for a paid checkout that asked to keep the card, else `None`.
pub fn saved_method(config: &Config, session: &Session, outcome: &Outcome) -> Result<Option<String>, Error> {
    let Some(intent_id) = events::wants_saved_method(session, outcome) else {
        return Ok(None);
    };
    if !api::is_id(&intent_id) {
        return Err(Error::Other(format!("session {} names an odd payment intent id", session.id)));
    }
    let intent = intent(config, &intent_id)?;
    let saved = events::intent_saved_method(&intent, expandable_id(&session.customer));
    if saved.is_none() {
        payhost_sdk::warn(
            "stripe checkout asked to save the card but the payment has no customer or method",
            &[("session", &session.id), ("payment_intent", &intent.id)],
        );
    }
    Ok(saved)
}

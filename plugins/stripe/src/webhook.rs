//! Stripe webhooks: verify `Stripe-Signature`, then turn the event into payment events.
//!
//! A bad or stale signature is `bad-signature` (the host answers 400 and records nothing).
//! A verified event we do not use is acknowledged with no events, so Stripe stops
//! resending it. Repeats of one event give the same payment event again; the host keeps
//! provider deliveries to one per event.

use payhost_sdk::bindings::payment_system::exports::payhost::gateway::processor::Webhook;
use payhost_sdk::payments::{Error, PaymentEvent};
use payhost_sdk::signing::{self, HmacAlgorithm};
use payhost_sdk::{Request, Response};

use crate::config::Config;
use crate::events::{self, Action};
use crate::objects::Event;
use crate::retrieve;
use crate::signature::{self, SignatureHeader};

/// The named secret holding the endpoint's signing secret (`whsec_...`).
pub const WEBHOOK_SECRET: &str = "stripe_webhook_secret";

pub fn parse(req: Request) -> Result<Webhook, Error> {
    let config = Config::load()?;
    let header = req
        .header("stripe-signature")
        .ok_or_else(|| Error::BadSignature("missing Stripe-Signature header".into()))?;
    let parsed = signature::parse_header(header).map_err(Error::BadSignature)?;
    verify(&parsed, &req.body)?;
    let now = payhost_sdk::now_seconds();
    signature::check_freshness(parsed.timestamp, now, config.webhook_tolerance_seconds)
        .map_err(Error::BadSignature)?;

    let event: Event = serde_json::from_slice(&req.body)
        .map_err(|e| Error::Rejected(format!("signed webhook body is not a Stripe event: {e}")))?;
    let events = match events::classify(&event).map_err(Error::Other)? {
        Action::Ignore(reason) => {
            payhost_sdk::info("stripe webhook ignored", &[("event", &event.id), ("type", &event.kind), ("why", &reason)]);
            Vec::new()
        }
        Action::Session(session, outcome) => {
            let saved = retrieve::saved_method(&config, &session, &outcome)?;
            events::session_event(&session, outcome, saved).map_err(Error::Other)?.into_iter().collect()
        }
        Action::Intent(intent) => events::intent_event(&intent, events::intent_outcome(&intent)).into_iter().collect(),
    };
    log_events(&event, &events);
    Ok(Webhook {
        response: Response::json(200, &serde_json::json!({ "received": true })),
        events,
    })
}

/// Accepts when any `v1` matches (Stripe sends two while a secret is being rolled).
fn verify(header: &SignatureHeader, body: &[u8]) -> Result<(), Error> {
    let parts = signature::signed_parts(&header.timestamp_text, body);
    for expected in &header.v1 {
        match signing::verify_hmac(HmacAlgorithm::Sha256, WEBHOOK_SECRET, &parts, expected) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(signing::Error::NotGranted(name)) => {
                return Err(Error::Other(format!("secret `{name}` is not granted to this instance")))
            }
            Err(e) => return Err(Error::Other(format!("cannot verify the webhook: {e:?}"))),
        }
    }
    Err(Error::BadSignature("no v1 signature matches the payload".into()))
}

fn log_events(event: &Event, events: &[PaymentEvent]) {
    for e in events {
        let status = format!("{:?}", e.status);
        payhost_sdk::info(
            "stripe webhook event",
            &[("event", &event.id), ("type", &event.kind), ("reference", &e.reference), ("status", &status)],
        );
    }
}

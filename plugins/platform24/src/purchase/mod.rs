//! `packet` and `packets`: check money, debit, connect the packets through the
//! provider API, then answer `{"status":1}`.
//!
//! The order that keeps the subscriber's money safe:
//! 1. the packet rules are checked against the catalog and the user's subscriptions
//!    (reads only; a refusal moves nothing);
//! 2. a durable record is created (`Debiting`) with a timer that resolves it should
//!    this request never finish;
//! 3. all packets are debited in one ledger call (the idempotency key is the
//!    purchase's, see `dedup`);
//! 4. the record becomes `Connecting` *before* the platform hears of it;
//! 5. one `POST /users/{id}/subscriptions` connects every packet; success closes the
//!    record (`Connected`), any failure reverses the debit (`Refunded`) and answers
//!    `status < -1`.
//!
//! Every API call shares one deadline, `answer_budget_ms` after the request arrived,
//! so the answer reaches Platform24 inside its ~5 s wait. A repeat of the same request
//! finds the record: connected answers 1 again, one still in progress answers that it
//! is, and a refunded one was released so the repeat is a new attempt.

mod connected;
pub mod record;
pub mod recovery;
pub mod store;

use crate::answer::Failure;
use crate::api::{Api, ApiError};
use crate::billing::{ledger_failure, subscriber, unavailable};
use crate::config::Config;
use crate::rules::{self, Wanted};
use crate::wire::Purchase;
use crate::{catalog, dedup, users};
use payhost_sdk::{clock, ledger};
use record::{Line, PurchaseRecord, State};

/// Below this much time left, the connect is not started (nothing is debited).
const MIN_CONNECT_MS: i64 = 500;

/// Ledger lines of a record, in a fixed order so a replay is the same call.
pub fn debit_lines(record: &PurchaseRecord) -> Vec<ledger::DebitLine> {
    let mut paid: Vec<&Line> = record.paid_lines().collect();
    paid.sort_by(|a, b| (a.packet_id.as_str(), a.price.as_str()).cmp(&(b.packet_id.as_str(), b.price.as_str())));
    paid.into_iter()
        .map(|l| ledger::DebitLine {
            account: record.account.clone(),
            amount: l.price.clone(),
            reference: format!("Пакет 24часаТВ {}", l.packet_id),
        })
        .collect()
}

/// Whether a refused debit certainly moved no money.
fn definite(e: &ledger::Error) -> bool {
    !matches!(e, ledger::Error::Backend(_))
}

pub fn buy(config: &Config, purchase: &Purchase, received_ms: i64) -> Result<(), Failure> {
    let account = subscriber(config, &purchase.user)?;
    let platform_user = users::platform_id(&purchase.user, purchase.platform_user_id.as_deref())
        .map_err(|e| unavailable("user-link", e))?
        .ok_or_else(|| Failure::NotOnPlatform(purchase.user.clone()))?;
    let priced: Vec<(&str, &str)> = purchase.packets.iter().map(|p| (p.id.as_str(), p.price.as_str())).collect();
    let api = Api::until(config, received_ms + config.answer_budget_ms);
    let key = dedup::key_for(&account.id, &priced, config.dedup_window_seconds).map_err(|e| unavailable("dedup", e))?;

    if let Some(answer) = answer_existing(config, &api, &key) {
        return answer;
    }

    let catalog = catalog::get(config, &api).map_err(|e| platform_down("catalog", &e))?;
    let current = api.subscriptions(&platform_user).map_err(|e| platform_down("subscriptions", &e))?;
    let wanted: Vec<Wanted> = purchase
        .packets
        .iter()
        .map(|p| Wanted { id: &p.id, name: &p.name, price: p.price.as_str(), is_base: p.is_base })
        .collect();
    let now = clock::now().seconds;
    let cx = rules::Context { catalog: &catalog, subscriptions: &current, addons_without_base: config.addons_without_base, now };
    let plan = match rules::plan(&wanted, &cx) {
        Ok(plan) => plan,
        // An identical request may have connected these packets meanwhile.
        Err(refusal) => return answer_existing(config, &api, &key).unwrap_or(Err(Failure::Rules(refusal.errmsg()))),
    };
    if api.remaining_ms() < MIN_CONNECT_MS {
        payhost_sdk::warn("platform24 purchase refused: no time left for the connect", &[("user", &purchase.user)]);
        return Err(Failure::PlatformUnavailable);
    }

    let record = PurchaseRecord {
        key: key.clone(),
        account: account.id.clone(),
        provider_uid: purchase.user.clone(),
        platform_user,
        currency: config.currency.clone(),
        lines: purchase
            .packets
            .iter()
            .map(|p| Line { packet_id: p.id.clone(), name: p.name.clone(), price: p.price.as_str().into() })
            .collect(),
        plan,
        before: current.iter().map(|s| s.id.clone()).collect(),
        created_at: now,
        owner_until: now + config.recovery_after_seconds,
        resolving_until: None,
        state: State::Debiting,
    };
    if !store::create(&record).map_err(|e| unavailable("purchase-create", e))? {
        // An identical request created it a moment ago.
        return answer_existing(config, &api, &key).unwrap_or(Err(Failure::InProgress));
    }

    let lines = debit_lines(&record);
    let transaction = if lines.is_empty() {
        None
    } else {
        match ledger::debit_many(&key, &config.currency, &lines) {
            Ok(entries) => entries.first().map(|e| e.transaction_id.clone()),
            Err(e) if definite(&e) => {
                if let Err(d) = store::discard(&key) {
                    payhost_sdk::warn("platform24 could not discard a refused purchase", &[("key", &key), ("error", &d)]);
                }
                return Err(ledger_failure(e));
            }
            // The money may have moved: the record stays `Debiting` and its timer refunds.
            Err(e) => return Err(unavailable("debit", format!("{e:?}"))),
        }
    };

    let connecting = PurchaseRecord { state: State::Connecting { transaction }, ..record };
    if let Err(e) = store::save(&connecting) {
        // Without this mark a crash after the connect would be taken for "never sent".
        payhost_sdk::error("platform24 could not mark a purchase connecting; refunding", &[("key", &key), ("error", &e)]);
        return match recovery::refund(&connecting, "the purchase record could not be written", true) {
            Ok(()) => Err(Failure::Unavailable),
            Err(r) => Err(unavailable("refund", r)),
        };
    }

    match api.connect(&connecting.platform_user, &connecting.plan.connect) {
        Ok(created) => {
            // Paid and connected: that is the answer. Bookkeeping that fails here is
            // finished by the record's timer (it finds the subscriptions on the platform).
            if let Err(e) = connected::finish(config, &connecting, &created, &api) {
                payhost_sdk::error("platform24 could not record a connected purchase", &[("key", &key), ("error", &e)]);
            }
            Ok(())
        }
        Err(e) => {
            payhost_sdk::warn(
                "platform24 did not connect the packets; refunding",
                &[("user", &connecting.provider_uid), ("key", &key), ("error", &e.to_string())],
            );
            // A refusal was certainly not applied; after a timeout or a 5xx the record
            // stays open so its timer ends anything the platform connected late.
            match recovery::refund(&connecting, &e.to_string(), e.not_applied()) {
                Ok(()) => Err(Failure::ConnectFailed),
                Err(r) => Err(unavailable("refund", r)),
            }
        }
    }
}

fn platform_down(step: &str, e: &ApiError) -> Failure {
    payhost_sdk::warn("platform24 api unavailable before the debit", &[("step", step), ("error", &e.to_string())]);
    Failure::PlatformUnavailable
}

/// The answer from the purchase under `key`, when there is one.
fn answer_existing(config: &Config, api: &Api, key: &str) -> Option<Result<(), Failure>> {
    match store::load(key) {
        Ok(Some((_, existing))) => Some(repeat(config, api, existing)),
        Ok(None) => None,
        Err(e) => Some(Err(unavailable("purchase-load", e))),
    }
}

/// A purchase with this key exists: answer from it (resolving it first if its
/// request is gone).
fn repeat(config: &Config, api: &Api, existing: PurchaseRecord) -> Result<(), Failure> {
    let now = clock::now().seconds;
    let record = if existing.resolvable(now) {
        recovery::resolve(config, api, &existing.key).map_err(|e| unavailable("resolve", e))?;
        match store::load(&existing.key).map_err(|e| unavailable("purchase-load", e))? {
            Some((_, r)) => r,
            // Resolved as "never debited": nothing to answer from but a new attempt.
            None => return Err(Failure::InProgress),
        }
    } else {
        existing
    };
    match record.state {
        State::Connected { .. } => Ok(()),
        State::Refunded { .. } => Err(Failure::ConnectFailed),
        State::Debiting | State::Connecting { .. } => Err(Failure::InProgress),
    }
}

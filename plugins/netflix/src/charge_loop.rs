//! One iteration of the monthly billing loop: resend what is still pending, read the
//! charge events Netflix has for us, give each exactly one result, and send the results.
//!
//! Safety rests on three things: a result is stored before it is sent (so a crash resends
//! the same result), the ledger debit's idempotency key is the NetflixTransactionID (so a
//! replayed event cannot move money twice), and a stored result always wins over deciding
//! again (so an event served again gets the same answer).
//!
//! Bulk work shares commits: the debits of one ReadCharge answer go to the ledger as one
//! `post-batch` (each with its own key and result), and Netflix's answer to a SendCharge
//! call is stored with one `set-many`. New records are still created one by one with
//! compare-and-swap, so a concurrent poll can never overwrite a stored result.

use crate::client::Netflix;
use crate::config::Config;
use crate::decision::{after_debit_error, plan, DebitFailure, Plan};
use crate::event::{parse_event, BadEvent, ChargeEvent};
use crate::record::{ChargeRecord, ChargeStatus, DeclineReason, Delivery};
use crate::repo::{self, RecordId};
use crate::wire::{parse_events, parse_rejected, send_charge_body, CHARGE_PATH, NEXT_CALL_HEADER};
use payhost_sdk::signing::{self, DigestAlgorithm, Part};
use payhost_sdk::{clock, ledger};

/// What an iteration did, for the schedule and the admin view.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `Netflix-NextCallInSeconds` of the ReadCharge answer.
    pub next_call: Option<String>,
    pub events: u32,
    pub results_sent: u32,
    /// The first thing that went wrong; any failure backs the loop off.
    pub failure: Option<String>,
}

impl Outcome {
    fn fail(&mut self, message: String) {
        payhost_sdk::warn("netflix charge loop problem", &[("problem", &message)]);
        self.failure.get_or_insert(message);
    }
}

type Batch = Vec<(RecordId, ChargeRecord)>;

/// Most postings one ledger batch takes (the host's limit).
const MAX_POSTINGS: usize = 512;

pub fn run(config: &Config) -> Outcome {
    let netflix = Netflix::new(config);
    let mut outcome = Outcome::default();
    if let Err(e) = flush_pending(config, &netflix, &mut outcome) {
        outcome.fail(format!("pending results not delivered: {e}"));
        return outcome;
    }
    let answer = match netflix.get(CHARGE_PATH, None) {
        Ok(answer) => answer,
        Err(e) => {
            outcome.fail(format!("ReadCharge failed: {e}"));
            return outcome;
        }
    };
    outcome.next_call = answer.header(NEXT_CALL_HEADER).map(str::to_string);
    let events = match parse_events(&answer.body) {
        Ok(events) => events,
        Err(e) => {
            outcome.fail(e);
            return outcome;
        }
    };
    outcome.events = u32::try_from(events.len()).unwrap_or(u32::MAX);
    let mut slots: Vec<(RecordId, Slot)> = Vec::new();
    for raw in &events {
        match resolve(raw) {
            Ok(Some((id, slot))) => {
                if !slots.iter().any(|(known, _)| *known == id) {
                    slots.push((id, slot));
                }
            }
            Ok(None) => {}
            Err(e) => outcome.fail(e),
        }
    }
    let mut batch: Batch = Vec::with_capacity(slots.len());
    for (id, decided) in decide_all(config, slots) {
        match decided {
            Ok(Decision::Stored(record)) => batch.push((id, record)),
            Ok(Decision::New(record)) => match repo::create(&id, &record) {
                Ok(stored) => batch.push((id, stored)),
                Err(e) => outcome.fail(e),
            },
            Err(e) => outcome.fail(e),
        }
    }
    // Results are sent only once they are tracked: an untracked one is not resent after
    // a crash until Netflix serves its event again.
    if let Err(e) = repo::track_many(&batch) {
        outcome.fail(e);
        return outcome;
    }
    if let Err(e) = send(config, &netflix, &batch, &mut outcome) {
        outcome.fail(format!("SendCharge failed: {e}"));
    }
    outcome
}

/// Sends stored results Netflix has not acknowledged and finishes interrupted reversals.
fn flush_pending(config: &Config, netflix: &Netflix, outcome: &mut Outcome) -> Result<(), String> {
    let mut batch: Batch = Vec::new();
    for id in repo::pending()? {
        let Some(record) = repo::load(&id)? else {
            repo::forget_pending(&id)?;
            continue;
        };
        match record.delivery {
            Delivery::Pending => batch.push((id, record)),
            Delivery::Rejected if record.needs_reversal() => reverse(&id, record)?,
            Delivery::Sent | Delivery::Rejected => repo::forget_pending(&id)?,
        }
    }
    send(config, netflix, &batch, outcome)
}

/// One event of a ReadCharge answer: its stored result, or what deciding it needs.
enum Slot {
    Stored(ChargeRecord),
    New(Result<ChargeEvent, BadEvent>),
}

/// Finds the stored result of one raw event, or leaves it to be decided.
/// `None` when the event must get no result now (its result was rejected by Netflix).
fn resolve(raw: &str) -> Result<Option<(RecordId, Slot)>, String> {
    let parsed = parse_event(raw);
    let id = match &parsed {
        Ok(event) => RecordId::for_transaction(&event.netflix_transaction_id),
        Err(BadEvent { netflix_transaction_id: Some(ntid), .. }) => RecordId::for_transaction(ntid),
        Err(_) => RecordId::for_raw_event(&sha256_hex(raw)?),
    };
    if let Some(existing) = repo::load(&id)? {
        return match existing.delivery {
            Delivery::Rejected => {
                payhost_sdk::warn(
                    "netflix served an event whose result it rejected; not answering again",
                    &[("netflix_transaction_id", &existing.netflix_transaction_id)],
                );
                Ok(None)
            }
            Delivery::Pending | Delivery::Sent => Ok(Some((id, Slot::Stored(existing)))),
        };
    }
    Ok(Some((id, Slot::New(parsed))))
}

/// The result of every slot, in order: stored ones as they are, new events decided, with
/// all their debits in one ledger batch (a commit per batch instead of per event). Each
/// debit keeps its own idempotency key, so a replayed event still moves money once.
fn decide_all(config: &Config, slots: Vec<(RecordId, Slot)>) -> Vec<(RecordId, Result<Decision, String>)> {
    let mut decided: Vec<(RecordId, Result<Decision, String>)> = Vec::with_capacity(slots.len());
    // (index in `decided`, account) of each record waiting for its debit.
    let mut waiting: Vec<(usize, String)> = Vec::new();
    let mut postings: Vec<ledger::BatchPosting> = Vec::new();
    for (id, slot) in slots {
        let result = match slot {
            Slot::Stored(record) => Ok(Decision::Stored(record)),
            Slot::New(Err(bad)) => bad_request(&id, &bad).map(Decision::New),
            Slot::New(Ok(event)) => match decide(config, &event) {
                Ok(Decided::Final(record)) => Ok(Decision::New(record)),
                Ok(Decided::Debit(record, account)) => {
                    waiting.push((decided.len(), account.clone()));
                    postings.push(ledger::BatchPosting {
                        idempotency_key: debit_key(&event.netflix_transaction_id),
                        kind: ledger::PostingKind::Debit,
                        currency: event.currency.clone(),
                        lines: vec![ledger::DebitLine { account, amount: event.amount_text(), reference: event.ledger_reference() }],
                    });
                    Ok(Decision::New(record))
                }
                Err(e) => Err(e),
            },
        };
        decided.push((id, result));
    }
    let mut answers = Vec::with_capacity(postings.len());
    for chunk in postings.chunks(MAX_POSTINGS) {
        answers.extend(ledger::post_batch(chunk));
    }
    let mut answers = answers.into_iter();
    for (index, account) in waiting {
        let answer = answers.next();
        let (_, result) = &mut decided[index];
        let Ok(Decision::New(record)) = result else { continue };
        *result = match answer {
            Some(answer) => after_debit(record.clone(), account, answer).map(Decision::New),
            // Never decide a charge without its debit's answer: Netflix serves it again.
            None => Err("the ledger batch answered fewer postings than it was given".into()),
        };
    }
    decided
}

/// The result an event gets in this run.
enum Decision {
    /// Decided before: sent again as it is.
    Stored(ChargeRecord),
    /// Decided now: stored (unless a concurrent poll stored one first) before it is sent.
    New(ChargeRecord),
}

/// What deciding a new event comes to before its debit.
enum Decided {
    Final(ChargeRecord),
    /// Approved once this account is debited.
    Debit(ChargeRecord, String),
}

/// Decides a new event; a charge waits for its debit.
fn decide(config: &Config, event: &ChargeEvent) -> Result<Decided, String> {
    let cancelled = repo::cancellation(&event.partner_customer_id)?.is_some();
    let mut record = new_record(event);
    match plan(event, cancelled) {
        Plan::DeclineCancelled => {
            record.charge_status = ChargeStatus::Declined;
            record.decline_reason = Some(DeclineReason::CustomerRequestedCancel);
            record.detail = Some("the operator marked the customer cancelled".into());
            record.partner_reference_id = generated_reference(&event.netflix_transaction_id)?;
        }
        Plan::ApproveFree => {
            record.charge_status = ChargeStatus::Approved;
            record.partner_reference_id = generated_reference(&event.netflix_transaction_id)?;
        }
        Plan::Debit => return Ok(Decided::Debit(record, config.account_for(&event.partner_customer_id))),
    }
    Ok(Decided::Final(record))
}

/// The record of a charge once its debit answered.
fn after_debit(mut record: ChargeRecord, account: String, debit: Result<Vec<ledger::Entry>, ledger::Error>) -> Result<ChargeRecord, String> {
    let debit = debit.and_then(|entries| {
        entries.into_iter().next().ok_or_else(|| ledger::Error::Backend("the debit returned no entry".into()))
    });
    match debit {
        Ok(entry) => {
            record.charge_status = ChargeStatus::Approved;
            record.partner_reference_id = entry.transaction_id.clone();
            record.ledger_transaction_id = Some(entry.transaction_id);
            record.account = Some(account);
        }
        Err(error) => match after_debit_error(&error) {
            DebitFailure::Result { status, reason, detail } => {
                record.charge_status = status;
                record.decline_reason = reason;
                record.detail = Some(detail);
                record.partner_reference_id = generated_reference(&record.netflix_transaction_id)?;
            }
            DebitFailure::Retry(message) => return Err(message),
        },
    }
    Ok(record)
}

fn new_record(event: &ChargeEvent) -> ChargeRecord {
    ChargeRecord {
        netflix_transaction_id: event.netflix_transaction_id.clone(),
        partner_customer_id: event.partner_customer_id.clone(),
        partner_reference_id: String::new(),
        charge_status: ChargeStatus::BadRequest,
        decline_reason: None,
        amount: Some(event.amount_text()),
        currency: Some(event.currency.clone()),
        plan_type: event.plan_type.clone(),
        display_invoice_id: event.display_invoice_id.clone(),
        paid_through_date: event.paid_through_date.clone(),
        account: None,
        ledger_transaction_id: None,
        detail: None,
        delivery: Delivery::Pending,
        reversal_transaction_id: None,
        reversal_error: None,
        decided_at: clock::now().seconds,
        sent_at: None,
        rejected_at: None,
        times_sent: 0,
    }
}

fn bad_request(id: &RecordId, bad: &BadEvent) -> Result<ChargeRecord, String> {
    payhost_sdk::warn("netflix charge event cannot be parsed", &[("reason", &bad.reason)]);
    Ok(ChargeRecord {
        netflix_transaction_id: bad.netflix_transaction_id.clone().unwrap_or_default(),
        partner_customer_id: bad.partner_customer_id.clone().unwrap_or_default(),
        partner_reference_id: generated_reference(id.as_str())?,
        charge_status: ChargeStatus::BadRequest,
        detail: Some(bad.reason.clone()),
        amount: None,
        currency: None,
        plan_type: None,
        display_invoice_id: None,
        paid_through_date: None,
        decline_reason: None,
        account: None,
        ledger_transaction_id: None,
        delivery: Delivery::Pending,
        reversal_transaction_id: None,
        reversal_error: None,
        decided_at: clock::now().seconds,
        sent_at: None,
        rejected_at: None,
        times_sent: 0,
    })
}

/// Sends results in batches and applies Netflix's answer to each stored record.
fn send(config: &Config, netflix: &Netflix, batch: &[(RecordId, ChargeRecord)], outcome: &mut Outcome) -> Result<(), String> {
    for chunk in batch.chunks(config.send_batch_size) {
        let results: Vec<serde_json::Value> = chunk.iter().map(|(_, r)| r.to_wire()).collect();
        let answer = netflix.post(CHARGE_PATH, None, send_charge_body(&results)).map_err(|e| e.to_string())?;
        let rejected = parse_rejected(&answer.body)?;
        let now = clock::now().seconds;
        for reference in &rejected {
            if !chunk.iter().any(|(_, r)| &r.partner_reference_id == reference) {
                payhost_sdk::warn("netflix rejected a reference we did not send", &[("partner_reference_id", reference)]);
            }
        }
        let mut answered = Vec::with_capacity(chunk.len());
        for (id, record) in chunk {
            let mut record = record.clone();
            if rejected.contains(&record.partner_reference_id) {
                payhost_sdk::warn(
                    "netflix rejected a charge result; it will not be sent again",
                    &[
                        ("netflix_transaction_id", &record.netflix_transaction_id),
                        ("partner_reference_id", &record.partner_reference_id),
                    ],
                );
                record.delivery = Delivery::Rejected;
                record.rejected_at = Some(now);
            } else {
                record.delivery = Delivery::Sent;
                record.sent_at = Some(now);
                record.times_sent = record.times_sent.saturating_add(1);
            }
            answered.push((id.clone(), record));
        }
        // One store commit for the chunk; a rejected debit is put back after its record
        // says so, and stays pending until it is (a crash here finishes it next run).
        repo::save_many(&answered)?;
        for (id, record) in answered {
            if record.delivery == Delivery::Rejected && record.needs_reversal() {
                reverse(&id, record)?;
            }
        }
        outcome.results_sent = outcome.results_sent.saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
    }
    Ok(())
}

/// Puts back the debit of a rejected result.
fn reverse(id: &RecordId, mut record: ChargeRecord) -> Result<(), String> {
    let Some(transaction) = record.ledger_transaction_id.clone() else {
        return repo::save(id, &record);
    };
    let reference = format!("Netflix rejected result {}", record.partner_reference_id);
    match ledger::reverse(&reversal_key(&record.netflix_transaction_id), &transaction, &reference) {
        Ok(entries) => {
            record.reversal_transaction_id =
                Some(entries.first().map(|e| e.transaction_id.clone()).unwrap_or_else(|| transaction.clone()));
        }
        // Already put back (e.g. by the operator): nothing left to do, but say so.
        Err(ledger::Error::NotReversible(m)) => record.reversal_error = Some(format!("not reversible: {m}")),
        Err(ledger::Error::Backend(m)) => return Err(format!("ledger unavailable: {m}")),
        Err(other) => record.reversal_error = Some(format!("{other:?}")),
    }
    repo::save(id, &record)
}

fn debit_key(netflix_transaction_id: &str) -> String {
    format!("netflix-charge:{netflix_transaction_id}")
}

fn reversal_key(netflix_transaction_id: &str) -> String {
    format!("netflix-rejected:{netflix_transaction_id}")
}

/// PartnerReferenceID of a result without a debit: derived from the record id, so it is
/// the same if the decision is ever made again, and never looks like a ledger id.
fn generated_reference(seed: &str) -> Result<String, String> {
    let hex = sha256_hex(&format!("payhost-netflix-result:{seed}"))?;
    Ok(format!("nfx-{}", &hex[..32]))
}

fn sha256_hex(text: &str) -> Result<String, String> {
    signing::digest(DigestAlgorithm::Sha256, &[Part::Text(text.into())])
        .map(|d| signing::to_hex(&d))
        .map_err(|e| format!("digest failed: {e:?}"))
}

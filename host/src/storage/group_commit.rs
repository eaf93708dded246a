//! Group commit for ledger postings: one writer per storage handle drains every posting
//! that is waiting and applies them in one durable transaction, each as under its own
//! savepoint, so a refused posting rolls back only itself (SQLite takes a savepoint per
//! posting; PostgreSQL decides refusals in memory before it writes, `postgres::batch`). One commit (one fsync, or one
//! PostgreSQL commit) then answers every caller of the batch.
//!
//! Latency is not traded for throughput: the writer never waits for a batch to fill. A
//! lone posting is taken and committed at once; postings that arrive while commits are
//! under way queue up and become the next batch, so batches grow only when commits are
//! the bottleneck. A batch is one transaction, so a crash before its commit leaves none
//! of its postings applied and none of its callers answered.
//!
//! A backend may run more than one batch at a time (`BatchPoster::in_flight`): on
//! PostgreSQL the next batch sends its `BEGIN` and reads, and waits on the accounts' row
//! locks, while the one before it commits, instead of starting its first round trip only
//! after that commit. Batches in flight together are as two hosts' batches are: the row
//! locks order them, and a key or account both write makes one of them run again.

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{EntryRow, Posting, PostingRefusal, StorageError, StorageResult};

/// What one posting of a batch came to.
pub type PostingOutcome = Result<Vec<EntryRow>, PostingRefusal>;

/// Most postings one commit carries; the rest wait for the next one.
pub const MAX_BATCH: usize = 512;

/// Applies a batch of postings in one transaction: the backend's half of group commit.
pub trait BatchPoster: Send + Sync + 'static {
    /// One outcome per posting, in order; `Err` when the transaction as a whole failed
    /// (then nothing of the batch was written).
    fn post_batch(&self, postings: Arc<[Posting]>) -> BoxFuture<'_, StorageResult<Vec<PostingOutcome>>>;

    /// How many batches may be under way at once (at least 1). A backend with one
    /// connection gains nothing from more.
    fn in_flight(&self) -> usize {
        1
    }
}

type Answer = oneshot::Sender<StorageResult<PostingOutcome>>;

/// The queue in front of one backend's writer. Dropping it ends the writer once the
/// postings already queued are answered.
pub struct GroupCommit {
    queue: mpsc::UnboundedSender<(Posting, Answer)>,
}

impl GroupCommit {
    /// Starts the writer task on `home`, or on the current tokio runtime.
    pub fn start(home: Option<&tokio::runtime::Handle>, poster: Arc<dyn BatchPoster>) -> Self {
        let (queue, jobs) = mpsc::unbounded_channel();
        match home {
            Some(home) => drop(home.spawn(writer(poster, jobs))),
            None => drop(tokio::spawn(writer(poster, jobs))),
        }
        Self { queue }
    }

    /// Queues `posting` for the next commit and waits for its outcome.
    pub async fn post(&self, posting: Posting) -> StorageResult<PostingOutcome> {
        let (answer, outcome) = oneshot::channel();
        self.queue
            .send((posting, answer))
            .map_err(|_| writer_failed("the ledger writer has stopped"))?;
        outcome
            .await
            .map_err(|_| writer_failed("the ledger writer stopped before answering"))?
    }
}

async fn writer(poster: Arc<dyn BatchPoster>, mut jobs: mpsc::UnboundedReceiver<(Posting, Answer)>) {
    let in_flight = poster.in_flight().max(1);
    let slots = Arc::new(Semaphore::new(in_flight));
    loop {
        // A slot first: postings that arrive while every slot is busy wait in the queue
        // and make the next batch together.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let Some((posting, answer)) = jobs.recv().await else { break };
        let mut postings = vec![posting];
        let mut answers = vec![answer];
        while postings.len() < MAX_BATCH {
            let Ok((posting, answer)) = jobs.try_recv() else { break };
            postings.push(posting);
            answers.push(answer);
        }
        let poster = poster.clone();
        tokio::spawn(async move {
            commit_and_answer(&*poster, postings.into(), answers).await;
            drop(slot);
        });
    }
    // The queue is closed: every batch still under way answers its callers before the
    // writer is gone.
    let _ = slots.acquire_many(in_flight as u32).await;
}

/// Commits one batch and answers each of its callers.
async fn commit_and_answer(poster: &dyn BatchPoster, batch: Arc<[Posting]>, answers: Vec<Answer>) {
    let outcomes = match poster.post_batch(batch.clone()).await {
        Ok(outcomes) if outcomes.len() == batch.len() => outcomes.into_iter().map(Ok).collect(),
        Ok(outcomes) => {
            let message = format!("the ledger batch returned {} outcomes for {} postings", outcomes.len(), batch.len());
            batch.iter().map(|_| Err(writer_failed(&message))).collect()
        }
        // The whole transaction rolled back, so each posting is as if never sent:
        // apply them one by one, and only the one the backend cannot take fails.
        Err(e) if batch.len() > 1 => {
            tracing::warn!(postings = batch.len(), error = %e, "ledger batch failed; committing its postings one by one");
            let mut outcomes = Vec::with_capacity(batch.len());
            for posting in batch.iter() {
                outcomes.push(alone(poster, posting).await);
            }
            outcomes
        }
        Err(e) => vec![Err(e)],
    };
    for (answer, outcome) in answers.into_iter().zip(outcomes) {
        // A caller that gave up waiting no longer needs its answer.
        let _ = answer.send(outcome);
    }
}

async fn alone(poster: &dyn BatchPoster, posting: &Posting) -> StorageResult<PostingOutcome> {
    let mut outcomes = poster.post_batch(Arc::from(vec![posting.clone()])).await?;
    match (outcomes.pop(), outcomes.is_empty()) {
        (Some(outcome), true) => Ok(outcome),
        _ => Err(writer_failed("the ledger batch returned another number of outcomes than postings")),
    }
}

fn writer_failed(message: &str) -> StorageError {
    StorageError::Failed { what: "ledger group commit".into(), source: message.to_string().into() }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use tokio::sync::{Notify, Semaphore};

    use super::*;
    use crate::storage::{EntryKind, PostingLine};

    /// Records the batches it is given. Each batch signals `started`, then waits for a
    /// permit, so a test decides when a commit finishes. A posting with reference `fail`
    /// fails its whole batch; every other posting is answered with its own key.
    struct Recorder {
        batches: Mutex<Vec<Vec<String>>>,
        started: Notify,
        commits: Semaphore,
        in_flight: usize,
    }

    impl BatchPoster for Recorder {
        fn post_batch(&self, postings: Arc<[Posting]>) -> BoxFuture<'_, StorageResult<Vec<PostingOutcome>>> {
            Box::pin(async move {
                self.started.notify_one();
                self.commits.acquire().await.expect("semaphore").forget();
                let keys: Vec<String> = postings.iter().map(|p| p.idempotency_key.clone()).collect();
                self.batches.lock().unwrap().push(keys);
                if postings.iter().any(|p| p.lines[0].reference == "fail") {
                    return Err(writer_failed("simulated failure"));
                }
                Ok(postings.iter().map(|p| Err(PostingRefusal::UnknownAccount(p.idempotency_key.clone()))).collect())
            })
        }

        fn in_flight(&self) -> usize {
            self.in_flight
        }
    }

    fn recorder(permits: usize) -> Arc<Recorder> {
        recorder_with_in_flight(permits, 1)
    }

    fn recorder_with_in_flight(permits: usize, in_flight: usize) -> Arc<Recorder> {
        Arc::new(Recorder { batches: Mutex::new(Vec::new()), started: Notify::new(), commits: Semaphore::new(permits), in_flight })
    }

    fn posting(key: &str, reference: &str) -> Posting {
        Posting {
            idempotency_key: key.into(),
            request_hash: String::new(),
            currency: "RUB".into(),
            lines: vec![PostingLine { account: "a".into(), delta: -1, kind: EntryKind::Debit, reference: reference.into() }],
            reverses: None,
            opens: false,
            at: 0,
        }
    }

    fn answered_key(outcome: StorageResult<PostingOutcome>) -> String {
        match outcome {
            Ok(Err(PostingRefusal::UnknownAccount(key))) => key,
            other => panic!("unexpected outcome {other:?}"),
        }
    }

    /// Posts `first` and waits until the writer holds it in a commit that cannot finish,
    /// then queues `rest` behind it (on this single-threaded runtime, a task that counted
    /// itself has also queued its posting: `post` queues before its first await).
    async fn queue_behind_a_commit(
        poster: &Arc<Recorder>,
        commit: &Arc<GroupCommit>,
        first: Posting,
        rest: Vec<Posting>,
    ) -> Vec<tokio::task::JoinHandle<StorageResult<PostingOutcome>>> {
        let mut tasks = vec![tokio::spawn({
            let commit = commit.clone();
            async move { commit.post(first).await }
        })];
        poster.started.notified().await;
        let queued = Arc::new(AtomicUsize::new(0));
        let count = rest.len();
        for posting in rest {
            let (commit, queued) = (commit.clone(), queued.clone());
            tasks.push(tokio::spawn(async move {
                queued.fetch_add(1, Ordering::SeqCst);
                commit.post(posting).await
            }));
        }
        while queued.load(Ordering::SeqCst) < count {
            tokio::task::yield_now().await;
        }
        tasks
    }

    #[tokio::test]
    async fn a_lone_posting_is_committed_at_once() {
        let poster = recorder(1);
        let commit = GroupCommit::start(None, poster.clone());
        assert_eq!(answered_key(commit.post(posting("k1", "r")).await), "k1");
        assert_eq!(*poster.batches.lock().unwrap(), vec![vec!["k1".to_string()]]);
    }

    #[tokio::test]
    async fn postings_waiting_for_a_commit_share_the_next_one() {
        let poster = recorder(0);
        let commit = Arc::new(GroupCommit::start(None, poster.clone()));
        let rest = (0..5).map(|i| posting(&format!("k{i}"), "r")).collect();
        let tasks = queue_behind_a_commit(&poster, &commit, posting("first", "r"), rest).await;
        poster.commits.add_permits(2);
        let keys: Vec<String> = futures::future::join_all(tasks).await.into_iter().map(|t| answered_key(t.unwrap())).collect();
        assert_eq!(keys, ["first", "k0", "k1", "k2", "k3", "k4"]);
        let batches = poster.batches.lock().unwrap().clone();
        assert_eq!(batches, vec![vec!["first".to_string()], (0..5).map(|i| format!("k{i}")).collect::<Vec<_>>()]);
    }

    #[tokio::test]
    async fn a_failed_batch_is_retried_posting_by_posting_and_only_the_failing_one_fails() {
        let poster = recorder(0);
        let commit = Arc::new(GroupCommit::start(None, poster.clone()));
        let rest = vec![posting("a", "r"), posting("bad", "fail"), posting("c", "r")];
        let tasks = queue_behind_a_commit(&poster, &commit, posting("first", "r"), rest).await;
        poster.commits.add_permits(1 + 1 + 3);
        let mut outcomes: Vec<_> = futures::future::join_all(tasks).await.into_iter().map(|t| t.unwrap()).collect();
        assert!(matches!(outcomes.remove(2), Err(StorageError::Failed { .. })));
        let keys: Vec<String> = outcomes.into_iter().map(answered_key).collect();
        assert_eq!(keys, ["first", "a", "c"]);
        let batches = poster.batches.lock().unwrap().clone();
        let expected: Vec<Vec<String>> =
            [vec!["first"], vec!["a", "bad", "c"], vec!["a"], vec!["bad"], vec!["c"]].iter().map(|b| b.iter().map(|k| k.to_string()).collect()).collect();
        assert_eq!(batches, expected);
    }

    #[tokio::test]
    async fn with_two_in_flight_a_batch_starts_while_the_one_before_commits() {
        let poster = recorder_with_in_flight(0, 2);
        let commit = Arc::new(GroupCommit::start(None, poster.clone()));
        let mut tasks = queue_behind_a_commit(&poster, &commit, posting("first", "r"), Vec::new()).await;
        // No commit has finished, yet the next posting is taken into a batch of its own;
        // with both slots busy, what arrives after it waits, and makes one batch.
        let rest = vec![posting("k0", "r"), posting("k1", "r")];
        tasks.extend(queue_behind_a_commit(&poster, &commit, posting("second", "r"), rest).await);
        assert_eq!(poster.batches.lock().unwrap().len(), 0, "nothing committed yet");
        poster.commits.add_permits(3);
        let keys: Vec<String> = futures::future::join_all(tasks).await.into_iter().map(|t| answered_key(t.unwrap())).collect();
        assert_eq!(keys, ["first", "second", "k0", "k1"]);
        let batches = poster.batches.lock().unwrap().clone();
        let expected: Vec<Vec<String>> = [vec!["first"], vec!["second"], vec!["k0", "k1"]]
            .iter()
            .map(|b| b.iter().map(|k| k.to_string()).collect())
            .collect();
        assert_eq!(batches, expected);
    }
}

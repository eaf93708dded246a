//! WAL checkpoints off the commit path. By default SQLite checkpoints inside whichever
//! commit pushes the WAL past 1,000 pages: that commit also copies pages into the
//! database file and syncs it, and under load (a batch of debits writes a few pages per
//! debit) that is every few dozen milliseconds, so every caller waiting on that batch
//! takes several times as long. Here the storage's own connection never checkpoints: a
//! WAL hook on it only notes the WAL's length after each commit, and a thread with a
//! connection of its own runs a passive checkpoint (it never blocks a writer) each time
//! the WAL has grown by [`PASSIVE_PAGES`].
//!
//! The WAL is only reused once a checkpoint has copied all of it, which a passive one
//! rarely manages while commits keep coming, so past [`RESTART_PAGES`] the thread holds
//! the storage's connection (keeping this process's writers out; back-to-back commits
//! would otherwise starve it) for one `RESTART` checkpoint, which copies the frames the
//! passive ones left and lets the WAL start over.

use std::os::raw::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::hooks::Wal;
use rusqlite::Connection;

use super::SharedConnection;

/// WAL growth in pages between passive checkpoints (16 MiB of 4 KiB pages).
const PASSIVE_PAGES: i64 = 4_000;

/// WAL pages from which the next checkpoint is a `RESTART`.
const RESTART_PAGES: i64 = 16_000;

/// How long the thread sleeps when no commit wakes it: long enough to cost nothing,
/// short enough that a stop is seen at once (it is woken for that too).
const IDLE: Duration = Duration::from_secs(1);

/// The longest WAL any commit of this process reported since the checkpoint threads
/// last looked, and the signal that wakes them. The hook is a plain function, so this is
/// process-wide: with several databases open, a long WAL in one wakes the threads of
/// all, and the others find little to copy.
static WAL_PAGES: AtomicI64 = AtomicI64::new(0);
/// The WAL length at which the threads are woken next.
static MARK: AtomicI64 = AtomicI64::new(PASSIVE_PAGES);
static WAKE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// Registers the hook on the storage's connection (whose automatic checkpoints the
/// caller has turned off: that pragma replaces the hook, so it comes first).
pub(super) fn watch(conn: &Connection) {
    conn.wal_hook(Some(on_commit));
}

fn on_commit(_wal: &Wal, pages: c_int) -> rusqlite::Result<()> {
    let pages = i64::from(pages);
    WAL_PAGES.fetch_max(pages, Ordering::AcqRel);
    if pages >= MARK.load(Ordering::Acquire) {
        WAKE.1.notify_all();
    }
    Ok(())
}

/// The checkpoint thread of one database file; stopped (and joined) on drop.
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a connection of its own to `path` and starts checkpointing it.
    pub(super) fn start(path: &Path, busy_timeout: Duration, shared: SharedConnection) -> anyhow::Result<Self> {
        let conn = Connection::open(path).map_err(|e| anyhow::anyhow!("opening SQLite database {} for checkpoints: {e}", path.display()))?;
        conn.busy_timeout(busy_timeout)?;
        // The checkpoint syncs the database file before the WAL may be reused.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("sqlite-checkpoint".into()).spawn(move || run(&conn, &shared, &stopped))?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

fn run(own: &Connection, shared: &SharedConnection, stop: &AtomicBool) {
    loop {
        let guard = WAKE.0.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = WAKE
            .1
            .wait_timeout_while(guard, IDLE, |_| WAL_PAGES.load(Ordering::Acquire) < MARK.load(Ordering::Acquire) && !stop.load(Ordering::Acquire))
            .unwrap_or_else(|p| p.into_inner());
        drop(guard);
        if stop.load(Ordering::Acquire) {
            return;
        }
        let pages = WAL_PAGES.swap(0, Ordering::AcqRel);
        if pages < PASSIVE_PAGES {
            continue;
        }
        let result = if pages >= RESTART_PAGES {
            // Copy what can be copied first, so writers wait only for the last few frames.
            checkpoint(own, "PASSIVE").and_then(|()| {
                let _writers_wait = shared.blocking_lock();
                MARK.store(PASSIVE_PAGES, Ordering::Release);
                checkpoint(own, "RESTART")
            })
        } else {
            MARK.store(pages + PASSIVE_PAGES, Ordering::Release);
            checkpoint(own, "PASSIVE")
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "SQLite checkpoint failed; the next commit past the mark tries again");
        }
    }
}

/// One checkpoint in `mode`; a busy one (another connection's checkpoint, or a reader
/// of another process in the way of a restart) is simply tried again after later commits.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<()> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        {
            // Under the lock, so the thread is either waiting (and is woken) or has not
            // yet checked the flag (and will see it).
            let _guard = WAKE.0.lock().unwrap_or_else(|p| p.into_inner());
            WAKE.1.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStorage;
    use crate::storage::{KeyValueStore, Storage};

    /// More WAL than a restart's mark (80 MiB of 1 MiB values), so passive checkpoints
    /// and a restart run while writes go on: every value is there afterwards, through the
    /// same handle and after a reopen, and closing joins the thread.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_past_the_marks_survive_checkpoints_and_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let value = |i: usize| vec![(i % 251) as u8; 1 << 20];
        let storage = SqliteStorage::open(&path).unwrap();
        storage.migrate().await.unwrap();
        for i in 0..80 {
            storage.kv_set("ns", &format!("k{i:02}"), &value(i)).await.unwrap();
        }
        assert_eq!(storage.kv_get("ns", "k00").await.unwrap(), Some(value(0)));
        drop(storage);

        let reopened = SqliteStorage::open(&path).unwrap();
        reopened.migrate().await.unwrap();
        for i in 0..80 {
            assert_eq!(reopened.kv_get("ns", &format!("k{i:02}")).await.unwrap(), Some(value(i)), "value {i}");
        }
    }
}

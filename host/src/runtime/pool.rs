//! Where plugin code runs. A call starts on the worker that took its request, which
//! costs nothing for the short calls payments are made of; a call that is still running
//! guest code a tick later (`instance::MOVE_AFTER`) is moved, mid-call, to threads of
//! its own: an async runtime apart from the one that accepts connections and serves the
//! host's own routes (`/healthz`, the admin API, metrics). There a busy plugin competes
//! with the host's routes through the OS scheduler instead of holding their workers, and
//! at a lower OS priority (`runtime.plugin_nice`), so the OS preempts it as soon as a host
//! route has work. Moving is safe at any await point: the call is an owned, `Send`
//! future (wasmtime resumes its fiber on whichever thread polls it, as tokio's own work
//! stealing already does), and it is moved only while it yields at an epoch tick.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

use anyhow::{Context, Result};
use tracing::Instrument;

use crate::call_failure::CallFailure;

/// Plugin calls' own async runtime.
pub struct PluginPool {
    /// `Some` until drop, which hands it to `shutdown_background`: a runtime dropped
    /// normally blocks until its tasks finish, which tokio forbids inside another runtime.
    runtime: Option<tokio::runtime::Runtime>,
    nice: i32,
}

/// How the pool is sized and prioritised (from `[runtime]`).
#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Worker threads; 0 means twice the cores.
    pub threads: usize,
    /// Added to each plugin thread's nice value (Linux; 0 leaves it as the host's).
    pub nice: i32,
}

impl PluginPool {
    pub fn start(settings: PoolSettings) -> Result<Self> {
        let threads = match settings.threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
            n => n,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("payhost-plugin")
            .enable_all()
            .build()
            .context("cannot start the plugin runtime")?;
        Ok(Self { runtime: Some(runtime), nice: settings.nice })
    }

    /// Runs `call` on the caller's task until it sets `move_now` (its epoch callback does,
    /// once the call has run guest code for a tick), then on a plugin thread, and waits for
    /// it either way; `on_move` runs when it moves (the metric). Dropping the returned
    /// future cancels the call wherever it runs, as a client that hangs up always did.
    pub async fn run<R, F>(&self, move_now: Arc<AtomicBool>, call: F, on_move: impl FnOnce()) -> Result<R, CallFailure>
    where
        R: Send + 'static,
        F: Future<Output = Result<R, CallFailure>> + Send + 'static,
    {
        let mut call = Box::pin(call);
        let inline = std::future::poll_fn(|cx| match call.as_mut().poll(cx) {
            Poll::Ready(result) => Poll::Ready(Some(result)),
            Poll::Pending if move_now.load(Ordering::Acquire) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        })
        .await;
        if let Some(result) = inline {
            return result;
        }
        on_move();
        let runtime = self.runtime.as_ref().expect("plugin runtime lives until drop");
        let nice = self.nice;
        let rest = async move {
            // Once per worker, on its first call. Blocking threads a worker starts inherit
            // the lower priority, so storage does its blocking work on the runtime it was
            // opened on (`storage::sqlite`), never here.
            lower_priority_once(nice);
            call.await
        };
        // The caller's span goes along, so what the call logs stays under its request.
        // Aborted when its caller goes away.
        let task = tokio_util::task::AbortOnDropHandle::new(runtime.spawn(rest.in_current_span()));
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(CallFailure::Unavailable("the plugin call panicked in the host".into())),
            Err(_) => Err(CallFailure::Unavailable("the host is shutting down".into())),
        }
    }
}

impl Drop for PluginPool {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

thread_local! {
    /// Whether this plugin worker has had its priority lowered.
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Raises the calling thread's nice value by `by`, once per thread (a thread may always
/// lower its own priority). A failure is logged once per process, not per thread.
fn lower_priority_once(by: i32) {
    if by == 0 || LOWERED.with(|l| l.replace(true)) {
        return;
    }
    static WARNED: AtomicBool = AtomicBool::new(false);
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread; `gettid` cannot fail, and errno
        // is this thread's own.
        let failed = unsafe {
            let tid = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid);
            let current = if *libc::__errno_location() != 0 { 0 } else { current };
            libc::setpriority(libc::PRIO_PROCESS, tid, (current + by).min(19)) != 0
        };
        if failed && !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(nice = by, error = %std::io::Error::last_os_error(), "cannot lower the plugin threads' priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(nice = by, "runtime.plugin_nice is applied on Linux only");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: as in `lower_priority_once`.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    fn thread_name() -> Option<String> {
        std::thread::current().name().map(str::to_string)
    }

    /// A call that asks to move, yields once (as the epoch callback does), then reports
    /// where it finished.
    async fn moving_call(move_now: Arc<AtomicBool>) -> Result<(Option<String>, i32), CallFailure> {
        move_now.store(true, Ordering::Release);
        tokio::task::yield_now().await;
        Ok((thread_name(), nice_of_this_thread()))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_short_call_runs_on_the_callers_thread() {
        let pool = PluginPool::start(PoolSettings { threads: 1, nice: 7 }).unwrap();
        let caller = (thread_name(), nice_of_this_thread());
        let moved = std::cell::Cell::new(false);
        let ran = pool.run(Arc::new(AtomicBool::new(false)), async { Ok((thread_name(), nice_of_this_thread())) }, || moved.set(true)).await.unwrap();
        assert_eq!(ran, caller);
        assert!(!moved.get(), "a call that stayed is not counted as moved");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_that_asks_to_move_finishes_on_a_plugin_thread_at_lower_priority() {
        let pool = PluginPool::start(PoolSettings { threads: 1, nice: 7 }).unwrap();
        let host_nice = nice_of_this_thread();
        let flag = Arc::new(AtomicBool::new(false));
        let moved = std::cell::Cell::new(0);
        let (name, nice) = pool.run(flag.clone(), moving_call(flag), || moved.set(moved.get() + 1)).await.unwrap();
        assert_eq!(moved.get(), 1, "the move is reported once");
        assert_eq!(name.as_deref(), Some("payhost-plugin"));
        assert_eq!(nice, (host_nice + 7).min(19));
        assert_eq!(nice_of_this_thread(), host_nice, "the caller's thread keeps its priority");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_moved_call_is_cancelled_with_its_caller() {
        let pool = PluginPool::start(PoolSettings { threads: 1, nice: 0 }).unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let (dropped, was_dropped) = tokio::sync::oneshot::channel::<()>();
        struct Signal(Option<tokio::sync::oneshot::Sender<()>>);
        impl Drop for Signal {
            fn drop(&mut self) {
                let _ = self.0.take().map(|s| s.send(()));
            }
        }
        let call = {
            let flag = flag.clone();
            async move {
                let _signal = Signal(Some(dropped));
                flag.store(true, Ordering::Release);
                tokio::task::yield_now().await;
                // Never ends by itself.
                std::future::pending::<()>().await;
                Ok(())
            }
        };
        let mut caller = Box::pin(pool.run(flag, call, || {}));
        // Poll until the call has moved and is waiting on the plugin thread.
        for _ in 0..3 {
            assert!(futures::poll!(caller.as_mut()).is_pending());
        }
        drop(caller);
        was_dropped.await.expect("the moved call is dropped, not left running");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_call_is_a_failure_not_a_crash() {
        let pool = PluginPool::start(PoolSettings { threads: 1, nice: 0 }).unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let call = {
            let flag = flag.clone();
            async move {
                flag.store(true, Ordering::Release);
                tokio::task::yield_now().await;
                if flag.load(Ordering::Acquire) {
                    panic!("host bug");
                }
                Ok(())
            }
        };
        let failure = pool.run(flag, call, || {}).await.unwrap_err();
        assert!(matches!(failure, CallFailure::Unavailable(_)), "{failure}");
        let flag = Arc::new(AtomicBool::new(false));
        assert_eq!(pool.run(flag.clone(), moving_call(flag), || {}).await.unwrap().0.as_deref(), Some("payhost-plugin"), "the pool still serves");
    }
}

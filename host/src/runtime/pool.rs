//! The threads plugin code runs on: an async runtime of its own, apart from the one
//! that accepts connections and serves the host's own routes (`/healthz`, the admin API,
//! metrics). A guest burning CPU yields at every epoch tick, but on a shared worker a
//! request queued behind it still waits for that tick; on threads of their own, plugins
//! compete with the host's routes through the OS scheduler instead, which preempts them
//! as soon as a host route has work. The threads also run at a lower OS priority
//! (`runtime.plugin_nice`), so a host with every plugin thread busy still answers its
//! health checks and its operators at once.

use std::future::Future;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

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

    /// Runs `call` on a plugin thread and waits for it from wherever the caller runs.
    /// The call is not cancelled when the caller goes away (a client that hangs up): it
    /// ends at its own deadline like any other, so a posting a plugin started is never cut
    /// off half way by the client.
    pub async fn run<R, F>(&self, call: F) -> Result<R, CallFailure>
    where
        R: Send + 'static,
        F: Future<Output = Result<R, CallFailure>> + Send + 'static,
    {
        let runtime = self.runtime.as_ref().expect("plugin runtime lives until drop");
        let nice = self.nice;
        let call = async move {
            // Once per worker, on its first call. Blocking threads a worker starts inherit
            // the lower priority, so storage does its blocking work on the runtime it was
            // opened on (`storage::sqlite`), never here.
            lower_priority_once(nice);
            call.await
        };
        // The caller's span goes along, so what the call logs stays under its request.
        match runtime.spawn(call.in_current_span()).await {
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

    #[tokio::test]
    async fn calls_run_on_plugin_threads_at_lower_priority() {
        let pool = PluginPool::start(PoolSettings { threads: 1, nice: 7 }).unwrap();
        let host_nice = nice_of_this_thread();
        let (name, nice) = pool
            .run(async { Ok((std::thread::current().name().map(str::to_string), nice_of_this_thread())) })
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("payhost-plugin"));
        assert_eq!(nice, (host_nice + 7).min(19));
        assert_eq!(nice_of_this_thread(), host_nice, "the caller's thread keeps its priority");
    }

    #[tokio::test]
    async fn a_call_whose_caller_went_away_still_finishes() {
        let pool = PluginPool::start(PoolSettings { threads: 1, nice: 0 }).unwrap();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (finished, was_finished) = tokio::sync::oneshot::channel::<()>();
        let caller = pool.run(async move {
            let _ = released.await;
            let _ = finished.send(());
            Ok(())
        });
        // Poll the caller once so the call is spawned, then drop it.
        assert!(futures::poll!(Box::pin(caller)).is_pending());
        release.send(()).unwrap();
        was_finished.await.expect("the call ran to its end after its caller was dropped");
    }

    #[tokio::test]
    async fn a_panicking_call_is_a_failure_not_a_crash() {
        let pool = PluginPool::start(PoolSettings { threads: 1, nice: 0 }).unwrap();
        let failure = pool.run(async { if true { panic!("host bug") } else { Ok(()) } }).await.unwrap_err();
        assert!(matches!(failure, CallFailure::Unavailable(_)), "{failure}");
        // The pool still serves.
        assert_eq!(pool.run(async { Ok(1) }).await.unwrap(), 1);
    }
}

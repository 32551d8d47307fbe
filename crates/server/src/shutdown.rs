//! Process lifecycle: the first SIGTERM/SIGINT starts a graceful drain, a second one exits at once.
//!
//! Draining is a `CancellationToken` that every long-lived task watches (listeners stop accepting,
//! WebSocket handlers tell their clients and close) plus a `TaskTracker` we wait on up to a timeout.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Shared lifecycle state: readiness, the drain signal and the tasks to wait for.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    /// Cancelled when draining starts.
    pub shutdown: CancellationToken,
    /// Connection and session tasks that must finish (or time out) before the process exits.
    pub tasks: TaskTracker,
    ready: Arc<AtomicBool>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self::new()
    }
}

impl Lifecycle {
    pub fn new() -> Lifecycle {
        Lifecycle {
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            ready: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed) && !self.shutdown.is_cancelled()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Waits for tracked tasks to finish, at most `timeout`. Returns whether they all finished.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(timeout, self.tasks.wait())
            .await
            .is_ok()
    }
}

/// SIGTERM and SIGINT handlers, installed before the server announces itself: a signal that arrives
/// between "listening" and the first wait must drain too, not kill the process by default disposition.
pub struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn install() -> Result<Signals, crate::Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind| {
            signal(kind)
                .map_err(|e| crate::Error::Startup(format!("cannot install signal handlers: {e}")))
        };
        Ok(Signals {
            term: install(SignalKind::terminate())?,
            int: install(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the first SIGTERM or SIGINT; after that, a second one exits the process immediately.
    pub async fn wait(mut self) {
        self.next().await;
        tokio::spawn(async move {
            self.next().await;
            tracing::warn!("second signal: exiting without waiting for the drain to finish");
            std::process::exit(1);
        });
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received: draining"),
            _ = self.int.recv() => tracing::info!("SIGINT received: draining"),
        }
    }
}

//! Graceful shutdown: one broadcast signal that threads poll and tasks await.

use tokio::sync::watch;

/// Cloneable shutdown signal (tokio `watch` underneath, usable from plain threads).
#[derive(Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// A signal not yet raised.
    pub fn new() -> Self {
        let (tx, rx) = watch::channel(false);
        Self {
            tx: std::sync::Arc::new(tx),
            rx,
        }
    }

    /// Raises the signal for every clone.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the signal has been raised (never blocks).
    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the signal is raised.
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|v| *v).await;
    }
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

//! One served model's HTTP client, shared by every camera: a call waits for one of
//! `max_concurrency` slots, passes the circuit breaker and the hourly budget, then
//! POSTs with a per-request timeout, retrying 429 (after its `Retry-After`), 5xx,
//! timeouts and refused connections with backoff. The slow lane's [`Cancel`] ends a
//! wait or a backoff at once; a request in flight ends at its timeout.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use ureq::Agent;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use super::breaker::{Admit, Breaker};
use super::budget::Budget;
use super::config::RemoteConfig;
use super::dialect::{Dialect, Reply};
use super::error::RemoteError;
use crate::kit::metrics::RemoteMetrics;
use crate::model::Cancel;

/// Longest `Retry-After` waited for within one call; a longer one fails the call
/// (and counts towards the breaker) instead of holding the camera's slow lane.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// The first backoff; doubled at each retry.
const BACKOFF: Duration = Duration::from_millis(250);

/// The breaker and the budget, behind one lock.
struct Gate {
    breaker: Breaker,
    budget: Budget,
}

/// One served model's client.
pub struct Client {
    name: String,
    dialect: Dialect,
    endpoint: String,
    key: Option<String>,
    timeout: Duration,
    retries: u32,
    agent: Agent,
    gate: Mutex<Gate>,
    slots: (Mutex<usize>, Condvar),
    max_concurrency: usize,
    metrics: Arc<RemoteMetrics>,
    /// Told each time the model becomes available or unavailable.
    watcher: Mutex<Option<Watcher>>,
}

/// What is told of a change of availability (`true`: available again).
pub type Watcher = Box<dyn Fn(bool) + Send + Sync>;

impl Client {
    /// The client of model `name` as `cfg` describes it; `key` is the API key.
    pub fn new(name: &str, dialect: Dialect, cfg: &RemoteConfig, key: Option<String>) -> Self {
        let roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&roots))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(cfg.timeout))
            .user_agent(format!("ocellus/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build()
            .into();
        Self {
            name: name.to_string(),
            dialect,
            endpoint: dialect.endpoint(&cfg.url),
            key,
            timeout: cfg.timeout,
            retries: cfg.retries,
            agent,
            gate: Mutex::new(Gate {
                breaker: Breaker::new(cfg.breaker_failures, cfg.breaker_cooldown),
                budget: Budget::new(cfg.max_calls_per_hour),
            }),
            slots: (Mutex::new(0), Condvar::new()),
            max_concurrency: cfg.max_concurrency,
            metrics: Arc::new(RemoteMetrics::default()),
            watcher: Mutex::new(None),
        }
    }

    /// Tells `watcher` each time the model becomes unavailable or available again
    /// (replacing the one before).
    pub fn watch(&self, watcher: Watcher) {
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(watcher);
    }

    /// The client's counters (shown on `/metrics`).
    pub fn metrics(&self) -> &Arc<RemoteMetrics> {
        &self.metrics
    }

    /// The URL requests go to (credentials never appear in it: the config refuses them).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// POSTs `body` and reads the reply, within the breaker, the budget, the
    /// concurrency limit and the retries.
    pub fn call(&self, body: &Value, cancel: &Cancel) -> Result<Reply, RemoteError> {
        let t0 = Instant::now();
        let admitted = self.lock_gate().breaker.admit(Instant::now());
        let probe = match admitted {
            Admit::Call => false,
            Admit::Probe => true,
            Admit::Refuse {
                failures,
                retry_in,
                last,
            } => {
                self.metrics.refused.inc();
                return Err(RemoteError::Unavailable {
                    failures,
                    retry_in,
                    last,
                });
            }
        };
        let result = self.with_slot(cancel, || self.attempts(body, cancel));
        self.metrics.call.record(t0.elapsed());
        let mut gate = self.lock_gate();
        match &result {
            Ok(_) => {
                self.metrics.answered.inc();
                if probe {
                    tracing::info!(model = %self.name, "model available again");
                }
                gate.breaker.succeeded();
            }
            Err(e) if e.counts_as_failure() => {
                self.metrics.failures.inc();
                if gate.breaker.failed(Instant::now(), e.to_string()) {
                    tracing::warn!(
                        model = %self.name,
                        "model unavailable: {e}; calls fail at once until a probe succeeds"
                    );
                }
            }
            Err(_) => gate.breaker.abandoned(),
        }
        let available = gate.breaker.available();
        drop(gate);
        if available != self.metrics.available() {
            self.metrics.set_available(available);
            if let Some(w) = &*self.watcher.lock().unwrap_or_else(|e| e.into_inner()) {
                w(available);
            }
        }
        result
    }

    fn lock_gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` holding one of the `max_concurrency` slots (waiting for one, ended
    /// early by `cancel`).
    fn with_slot<T>(
        &self,
        cancel: &Cancel,
        f: impl FnOnce() -> Result<T, RemoteError>,
    ) -> Result<T, RemoteError> {
        let (lock, freed) = &self.slots;
        {
            let mut busy = lock.lock().unwrap_or_else(|e| e.into_inner());
            while *busy >= self.max_concurrency {
                cancel.beat();
                if cancel.is_raised() {
                    return Err(RemoteError::Cancelled);
                }
                busy = freed
                    .wait_timeout(busy, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            *busy += 1;
        }
        let out = f();
        let mut busy = lock.lock().unwrap_or_else(|e| e.into_inner());
        *busy = busy.saturating_sub(1);
        freed.notify_one();
        out
    }

    /// The request and its retries.
    fn attempts(&self, body: &Value, cancel: &Cancel) -> Result<Reply, RemoteError> {
        let mut attempt = 0;
        loop {
            if cancel.is_raised() {
                return Err(RemoteError::Cancelled);
            }
            let taken = {
                let mut gate = self.lock_gate();
                let limit = gate.budget.limit().unwrap_or_default();
                let taken = gate
                    .budget
                    .take(Instant::now())
                    .map_err(|wait| (limit, wait));
                self.metrics.set_budget_used(gate.budget.used() as u64);
                taken
            };
            if let Err((limit, wait)) = taken {
                self.metrics.over_budget.inc();
                return Err(RemoteError::OverBudget { limit, wait });
            }
            let e = match self.once(body, cancel) {
                Ok(reply) => return Ok(reply),
                Err(e) => e,
            };
            if matches!(e, RemoteError::Timeout { .. }) {
                self.metrics.timeouts.inc();
            }
            if matches!(e, RemoteError::Malformed { .. }) {
                self.metrics.malformed.inc();
            }
            let after = match &e {
                RemoteError::Status { retry_after, .. } => *retry_after,
                _ => None,
            };
            let wait = after.unwrap_or(BACKOFF * 2u32.pow(attempt.min(6)));
            if !e.is_transient() || attempt >= self.retries || wait > MAX_RETRY_AFTER {
                return Err(e);
            }
            attempt += 1;
            self.metrics.retries.inc();
            tracing::debug!(model = %self.name, attempt, ?wait, "retrying: {e}");
            if !sleep(wait, cancel) {
                return Err(RemoteError::Cancelled);
            }
        }
    }

    /// One POST, sent from a thread of its own so that the slow lane keeps beating
    /// its heartbeat while it waits and returns at once when `cancel` is raised (the
    /// abandoned request ends at its timeout).
    fn once(&self, body: &Value, cancel: &Cancel) -> Result<Reply, RemoteError> {
        self.metrics.requests.inc();
        let post = Post {
            agent: self.agent.clone(),
            dialect: self.dialect,
            url: self.endpoint.clone(),
            key: self.key.clone(),
            timeout: self.timeout,
        };
        let body = body.to_string();
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::Builder::new()
            .name(format!("remote-{}", self.name))
            .spawn(move || {
                let _ = tx.send(post.send(body));
            })
            .map_err(|e| RemoteError::Transport {
                url: self.endpoint.clone(),
                source: ureq::Error::Io(e),
            })?;
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(result) => return result,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    cancel.beat();
                    if cancel.is_raised() {
                        return Err(RemoteError::Cancelled);
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    return Err(RemoteError::Cancelled);
                }
            }
        }
    }
}

/// What one request needs, moved to the thread that sends it.
struct Post {
    agent: Agent,
    dialect: Dialect,
    url: String,
    key: Option<String>,
    timeout: Duration,
}

impl Post {
    fn send(self, body: String) -> Result<Reply, RemoteError> {
        let transport = |e: ureq::Error, url: &str| match e {
            ureq::Error::Timeout(_) => RemoteError::Timeout {
                url: url.to_string(),
                timeout: self.timeout,
            },
            source => RemoteError::Transport {
                url: url.to_string(),
                source,
            },
        };
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.key {
            req = req.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = req
            .send(body.as_bytes())
            .map_err(|e| transport(e, &self.url))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(8 << 20)
            .read_to_vec()
            .map_err(|e| transport(e, &self.url))?;
        if !(200..300).contains(&status) {
            return Err(RemoteError::Status {
                url: self.url.clone(),
                status,
                message: self.dialect.error_message(&bytes),
                retry_after,
            });
        }
        self.dialect
            .reply(&bytes)
            .map_err(|what| RemoteError::Malformed {
                url: self.url.clone(),
                what,
            })
    }
}

/// Sleeps `d` unless `cancel` is raised first; false when it was.
fn sleep(d: Duration, cancel: &Cancel) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        cancel.beat();
        if cancel.is_raised() {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    !cancel.is_raised()
}

//! HTTP endpoints and the web interface (`[http]`, 127.0.0.1:9380 by default; when a
//! token is configured, and one must be for any non-loopback address, a request
//! carries it as a bearer token or comes with a browser session from `/login`, whose
//! changes also carry its CSRF token (see `session`); a request whose `Host` is not
//! an IP address, `localhost` or a name in `allowed_hosts` is refused with 421, one
//! that changes something from a foreign `Origin` with 403, see `guard`):
//!
//! - `GET /healthz`: per-camera frame age and status, broker connection, model load
//!   state; 200 when healthy, 503 (with the reasons) when not.
//! - `GET /metrics`: every stage's counters and latency histograms, per camera and
//!   per model, in Prometheus' text format.
//! - `GET /api/cameras`, `GET /api/cameras/<id>/snapshot.jpg` (the latest alert's).
//! - `GET /api/queries`; `PUT /api/queries/<cam>/<q>` with a JSON query spec and
//!   `DELETE /api/queries/<cam>/<q>`: the same path as the MQTT commands.
//! - `POST /api/reload`: re-read the config, like SIGHUP.
//! - The web interface: `/` and `/ui/...` (the pages, `ui`), `/login`, and what they
//!   read: `GET /api/session`, `GET /api/live` (Server-Sent Events of everything the
//!   publisher sends and of each frame's scores), `GET /api/cameras/<cam>/live.jpg`,
//!   a query's `.../history`, `GET /api/events`, `POST /api/cameras/<cam>/ask` (a
//!   one-shot question) and `GET /api/system` (`live`, `ask`, `system`).
//!
//! ```text
//! curl -s 127.0.0.1:9380/healthz
//! curl -s -X PUT 127.0.0.1:9380/api/queries/door/parcel \
//!      -d '{"ask":"a parcel?","kind":"yes_no","model":"clip","no":["an empty step"]}'
//! ```

mod ask;
mod config;
mod daemon;
mod guard;
mod health;
mod live;
mod prometheus;
mod reply;
mod routes;
mod session;
mod system;
mod teach;
mod ui;
mod web_config;

use std::sync::Arc;

use crate::app::status::Status;

pub use config::{HttpConfig, TokenError};
pub use health::{Health, health};
pub use prometheus::render;
pub use web_config::WebConfig;

/// Serves the endpoints on `rt`. A listener that cannot be bound, or a token file
/// that cannot be read, is one logged line: the daemon runs on without HTTP.
pub fn spawn(rt: &tokio::runtime::Handle, cfg: &HttpConfig, shared: Arc<Status>) {
    let token = match cfg.read_token() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("{e}; the HTTP endpoints are off");
            return;
        }
    };
    let listen = cfg.listen;
    let session_ttl = cfg.web.session;
    let cfg_ui = cfg.web.enabled;
    let guard = guard::Guard::new(cfg);
    rt.spawn(async move {
        let listener = match tokio::net::TcpListener::bind(listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("http: cannot listen on {listen}: {e}; the HTTP endpoints are off");
                return;
            }
        };
        tracing::info!(
            "http: listening on {listen}{}",
            match (token.is_some(), cfg_ui) {
                (true, true) =>
                    " (bearer token or a session from /login required; web interface at /)",
                (true, false) => " (bearer token required)",
                (false, true) => " (web interface at /)",
                (false, false) => "",
            }
        );
        let sessions = Arc::new(session::Sessions::new(token, session_ttl));
        let app = routes::router(shared, sessions, guard);
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("http: {e}");
        }
    });
}

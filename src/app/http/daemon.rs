//! Requests to the daemon's supervisor from a route (the same queue as MQTT's
//! commands and SIGHUP), and the wait for its answer.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;

use super::reply::error;
use crate::app::control;
use crate::app::status::Status;

/// How long a change may wait for the daemon before the request gives up.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// Hands `request` to the daemon's supervisor and waits for its answer.
pub(super) async fn ask_daemon<T>(
    shared: &Status,
    request: control::Request,
    answer: tokio::sync::oneshot::Receiver<Result<T, String>>,
) -> Result<Result<T, String>, Response> {
    if shared.requests.try_send(request).is_err() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is busy or stopping; try again".into(),
        ));
    }
    match tokio::time::timeout(ANSWER_WITHIN, answer).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(_)) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping".into(),
        )),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            "no answer from the daemon within 60 s".into(),
        )),
    }
}

//! The online feature server: HTTP/JSON over [`OnlineServing`], with axum.
//!
//! | endpoint | what |
//! |---|---|
//! | `POST /get-online-features` | Feast-compatible features (request and response as Feast's feature server) |
//! | `POST /v1/online-features` | the same, natively: per value its component digest and exact event time |
//! | `POST /push` | Feast's push: source rows through the views' components, online at once and offline in micro-batches ([`skewless_runtime::push`]) |
//! | `POST /write-to-online-store` | Feast's write of precomputed feature values: refused (403): it would store values no component computed and the offline store never holds |
//! | `GET /v1/views` | the views served, their kind and component digest |
//! | `GET /health` | liveness: the process answers |
//! | `GET /ready` | readiness: the online store answers (503 while it does not; recovers by itself) |
//! | `GET /metrics` | Prometheus metrics ([`metrics`]) |
//! | `GET /openapi.json` | an OpenAPI 3.1 description of every endpoint and error |
//!
//! The handlers are thin: read the body (up to a size limit), parse, do the work (store reads,
//! component calls) under a per-request deadline, render. A store with an async path (Redis)
//! is awaited on the async worker, with the CPU work around it in place; with another store,
//! quick requests (a local store, few rows) run in place on the async worker, and the others,
//! and every request once a component has been seen slow, run off it.
//! A failing request (bad input, a trapping or slow component, a dead store) gets a JSON error
//! ([`error`]) and never disturbs the others: a component that runs past the deadline is
//! stopped by the engine's own epoch deadline, and a dead store answers within its timeout.

pub mod error;
pub mod metrics;
mod render;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::FutureExt;
use serde::Serialize;
use serde_json::json;

pub use error::ApiError;
pub use metrics::Metrics;

use skewless_runtime::error::{Error, ErrorKind, Result};
use skewless_runtime::push::PushService;
use skewless_runtime::serving::{FeatureRequest, OnlineFeatures, OnlineServing};

/// The OpenAPI description served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// The deadline of one request, from the body read to the rendered answer (504 beyond).
    pub request_timeout: Duration,
    /// The most feature requests answered at once; one more is refused at once with a 503
    /// rather than queued behind the others past its deadline.
    pub max_in_flight: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(1),
            max_in_flight: 512,
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    serving: Arc<OnlineServing>,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// Feature requests being answered now.
    in_flight: Arc<AtomicUsize>,
    /// The push sources, when the repo declares any.
    push: Option<Arc<PushService>>,
}

impl AppState {
    /// The state of a server over `serving` with `limits`.
    pub fn new(serving: OnlineServing, limits: Limits) -> Self {
        let metrics = Metrics::new(serving.store().backend());
        AppState {
            serving: Arc::new(serving),
            metrics: Arc::new(metrics),
            limits,
            in_flight: Arc::new(AtomicUsize::new(0)),
            push: None,
        }
    }

    /// Serves `POST /push` with `push`.
    pub fn with_push(mut self, push: Arc<PushService>) -> Self {
        self.push = Some(push);
        self
    }

    /// The server's metrics (a push service reports its commits to them).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Admits one more feature request, or `None` when `max_in_flight` are being answered.
    fn admit(&self) -> Option<Admitted> {
        let admitted = self
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_in_flight).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| Admitted(self.in_flight.clone()))
    }
}

/// One admitted feature request; leaving its place when dropped.
#[derive(Debug)]
struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router of every endpoint; no socket needed (tests drive it with `tower::ServiceExt`).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/get-online-features", post(feast_features))
        .route("/v1/online-features", post(native_features))
        .route("/push", post(push))
        .route("/write-to-online-store", post(write_to_online_store))
        .route("/v1/views", get(views))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(no_route)
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` resolves; requests in flight then finish
/// before this returns.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::new(ErrorKind::Io, format!("the server stopped: {e}")).with_source(e))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

async fn feast_features(State(state): State<AppState>, body: Body) -> Response {
    features(&state, "get-online-features", body, |f, view_metadata| {
        let view_metadata = view_metadata.then(|| feast_view_metadata(&state, f));
        render::to_json(
            &render::Feast {
                features: f,
                view_metadata,
            },
            f,
        )
    })
    .await
}

async fn native_features(State(state): State<AppState>, body: Body) -> Response {
    features(&state, "online-features", body, |f, _| {
        render::to_json(&render::Native(f), f)
    })
    .await
}

/// The views that served `f`'s features, in first-use order, each with its digest.
fn feast_view_metadata<'a>(
    state: &'a AppState,
    f: &'a OnlineFeatures,
) -> Vec<render::ViewMetadata<'a>> {
    let mut views: Vec<render::ViewMetadata<'a>> = Vec::new();
    for column in &f.features {
        if views.iter().any(|v| v.name == &*column.view) {
            continue;
        }
        if let Some(digest) = state.serving.view_digest(&column.view) {
            views.push(render::ViewMetadata {
                name: &column.view,
                digest,
            });
        }
    }
    views
}

/// The shared path of both feature endpoints: answer, render, record metrics. `render` is
/// given the answer and whether the request asked for feature view metadata.
async fn features(
    state: &AppState,
    endpoint: &'static str,
    body: Body,
    render: impl FnOnce(&OnlineFeatures, bool) -> serde_json::Result<Vec<u8>>,
) -> Response {
    let started = Instant::now();
    let response = match answer(state, body).await {
        Ok((features, view_metadata)) => {
            state
                .metrics
                .served(endpoint, features.rows, &features.timings);
            match render(&features, view_metadata) {
                Ok(bytes) => json_bytes(StatusCode::OK, bytes),
                Err(e) => failed(
                    state,
                    endpoint,
                    Error::new(ErrorKind::Internal, format!("rendering the answer: {e}")).into(),
                ),
            }
        }
        Err(e) => failed(state, endpoint, e),
    };
    state
        .metrics
        .request(endpoint, response.status().as_u16(), started.elapsed());
    response
}

/// Admits the request (or refuses it: too many in flight), reads and parses the body, then
/// answers it under the deadline: in place when it is quick, off the async workers otherwise.
/// Returns the answer and whether the request asked for feature view metadata.
async fn answer(state: &AppState, body: Body) -> Result<(OnlineFeatures, bool), ApiError> {
    let limits = state.limits;
    let _admitted = state
        .admit()
        .ok_or_else(|| ApiError::overloaded(limits.max_in_flight))?;
    let bytes = axum::body::to_bytes(body, limits.max_body_bytes)
        .await
        .map_err(|_| ApiError::too_large(limits.max_body_bytes))?;
    let request = FeatureRequest::from_json(&bytes)?;
    let view_metadata = request.include_feature_view_version_metadata;
    let serving = state.serving.clone();
    let started = Instant::now();
    let deadline_exceeded = || {
        ApiError::from(Error::new(
            ErrorKind::DeadlineExceeded,
            format!(
                "the request did not finish within its deadline of {} ms; send fewer rows per \
                 request, or raise the server's --request-timeout-ms",
                limits.request_timeout.as_millis()
            ),
        ))
    };
    // Where the work runs, on a multi-threaded runtime:
    // - with a store read asynchronously (`OnlineServing::reads_async`: Redis), everything on
    //   this worker: the plan (CPU), the store's round trip awaited without blocking it, and
    //   the values (CPU; request-time views that are not quick after `block_in_place`, as
    //   below). No hand-off at all: on 2 cores the hand-off per request was most of a
    //   request's time under load;
    // - a quick request (`OnlineServing::is_quick`: a local store, few rows, no slow
    //   component seen yet) right here on the async worker: a few µs of CPU, and no hand-off
    //   to pay for (on 2 cores the hand-off doubled what a request-time view adds at p50);
    // - any other right here too, but after `block_in_place` has handed this worker's other
    //   tasks to another thread, so a store's round trip or a slow component holds no
    //   worker (still 25-30 µs faster at p50 than waking a blocking-pool thread).
    // The time is bounded by the engine's deadline for component calls (`serve` sets it to
    // the request deadline) and the store's timeouts; an answer later than the deadline is
    // still a 504 (an awaited store read is dropped at the deadline). Elsewhere the work goes
    // to the blocking pool, where the deadline can answer without waiting for it.
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::MultiThread
    {
        // A panic (a bug) fails this request with a 500, as on the blocking pool.
        let panicked = || {
            ApiError::from(Error::new(
                ErrorKind::Internal,
                "the request failed unexpectedly (a panic; see the log)",
            ))
        };
        if serving.reads_async() {
            let work = async {
                let planned = serving.plan(&request, skewless_runtime::micros::now())?;
                let read = planned.read_async().await?;
                match planned.is_quick_to_finish() {
                    true => planned.finish(read),
                    false => tokio::task::block_in_place(|| planned.finish(read)),
                }
            };
            let work = std::panic::AssertUnwindSafe(work).catch_unwind();
            let result = tokio::time::timeout(limits.request_timeout, work).await;
            return match result {
                Ok(_) if started.elapsed() > limits.request_timeout => Err(deadline_exceeded()),
                Ok(Ok(result)) => Ok((result?, view_metadata)),
                Ok(Err(_)) => Err(panicked()),
                Err(_) => Err(deadline_exceeded()),
            };
        }
        let run =
            || std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serving.get(&request)));
        let result = match serving.is_quick(&request) {
            true => run(),
            false => tokio::task::block_in_place(run),
        };
        if started.elapsed() > limits.request_timeout {
            return Err(deadline_exceeded());
        }
        return match result {
            Ok(result) => Ok((result?, view_metadata)),
            Err(_) => Err(panicked()),
        };
    }
    let work = tokio::task::spawn_blocking(move || serving.get(&request));
    match tokio::time::timeout(limits.request_timeout, work).await {
        Ok(Ok(result)) => Ok((result?, view_metadata)),
        Ok(Err(join)) => Err(Error::new(
            ErrorKind::Internal,
            format!("the request failed unexpectedly: {join}"),
        )
        .into()),
        Err(_) => Err(deadline_exceeded()),
    }
}

fn failed(state: &AppState, endpoint: &'static str, e: ApiError) -> Response {
    state.metrics.error(endpoint, e.error.kind());
    e.into_response()
}

fn json_bytes(status: StatusCode, bytes: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

fn json_value(status: StatusCode, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => json_bytes(status, bytes),
        Err(e) => ApiError::from(Error::new(ErrorKind::Internal, e.to_string())).into_response(),
    }
}

/// Feast's `POST /push` (`{"push_source_name", "df", "to"}`): see [`skewless_runtime::push`]. 200 once
/// the rows are where `to` asks: online (and in the write-ahead log) for `online`, committed
/// offline (and materialized) for `offline` and `online_and_offline`.
async fn push(State(state): State<AppState>, body: Body) -> Response {
    let endpoint = "push";
    let started = Instant::now();
    let response = match pushed(&state, body, started).await {
        Ok(value) => json_value(StatusCode::OK, &value),
        Err(e) => failed(&state, endpoint, e),
    };
    state
        .metrics
        .request(endpoint, response.status().as_u16(), started.elapsed());
    response
}

async fn pushed(
    state: &AppState,
    body: Body,
    started: Instant,
) -> Result<serde_json::Value, ApiError> {
    let limit = state.limits.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))?;
    // The body's shape is checked first, so a malformed one gets its 400 either way.
    let request = skewless_runtime::push::PushRequest::parse(&bytes)?;
    let source = request.push_source_name.clone();
    let Some(service) = state.push.clone() else {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "there is no push source `{source}`: this server has none; declare one as \
                 [[push_source]] in skewless.toml (name and source table) and restart it"
            ),
        )
        .with_context("field", "push_source_name")
        .into());
    };
    let receipt = tokio::task::spawn_blocking(move || service.push_request(&request))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("the push failed: {e}")))??;
    let visible = skewless_runtime::micros::now();
    let waited = match receipt.committed {
        Some(committed) => {
            tokio::time::timeout(skewless_runtime::push::ACK_TIMEOUT, committed).await
        }
        None => Ok(Ok(())),
    };
    if !matches!(waited, Ok(Ok(()))) {
        return Err(skewless_runtime::push::not_committed(&format!(
            "were not committed to the offline store within {} s (see the server's log)",
            skewless_runtime::push::ACK_TIMEOUT.as_secs()
        ))
        .into());
    }
    let freshness = match receipt.to {
        skewless_runtime::push::To::Offline => None,
        _ => receipt
            .oldest_event_us
            .map(|event| Duration::from_micros(visible.saturating_sub(event).max(0) as u64)),
    };
    state.metrics.pushed(
        &source,
        receipt.to.as_str(),
        receipt.rows,
        started.elapsed(),
        freshness,
    );
    Ok(json!({
        "status": "ok",
        "push_source_name": source,
        "to": receipt.to.as_str(),
        "rows": receipt.rows,
        "online_written": receipt.online_written,
    }))
}

/// Feast's `POST /write-to-online-store` (`{"feature_view_name": ..., "df": {column: [...]}}`,
/// what a Feast client's `write_to_online_store` and the remote online store's
/// `online_write_batch` send): **refused** with a 403 that says why and what to do instead.
///
/// The body carries feature values computed elsewhere. Storing them would serve values that
/// no component computed and that the offline store never holds, so historical retrieval
/// could not reproduce them: the training-serving skew skewless exists to remove. Online
/// values come from the view's component run over source rows that are also in the offline
/// store (`skewless materialize`). The body is still checked first, so a malformed one or an
/// unknown view gets the usual 400 or 404 naming what was wrong.
async fn write_to_online_store(State(state): State<AppState>, body: Body) -> Response {
    let endpoint = "write-to-online-store";
    let started = Instant::now();
    let refusal = match checked_online_write(&state, body).await {
        Ok(view) => ApiError::from(
            Error::new(
                ErrorKind::Unsupported,
                format!(
                    "skewless does not store feature values computed outside it: `{view}`'s \
                     online values are computed by its component from source rows that the \
                     offline store also holds, so that training and serving see the same values. \
                     Append the source rows to the view's source table (`skewless ingest`) and \
                     run `skewless materialize {view}`"
                ),
            )
            .with_context("view", view),
        ),
        Err(e) => e,
    };
    let response = failed(&state, endpoint, refusal);
    state
        .metrics
        .request(endpoint, response.status().as_u16(), started.elapsed());
    response
}

/// Checks a `/write-to-online-store` body as Feast's server does; the view it names.
async fn checked_online_write(state: &AppState, body: Body) -> Result<String, ApiError> {
    let limit = state.limits.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::too_large(limit))?;
    let invalid = |field: &str, message: String| {
        ApiError::from(Error::new(ErrorKind::InvalidInput, message).with_context("field", field))
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        invalid(
            "body",
            format!(
                "the request body is not valid JSON: {e}; expected {{\"feature_view_name\": \
                 \"view\", \"df\": {{\"column\": [...], ...}}}}"
            ),
        )
    })?;
    let Some(body) = value.as_object() else {
        return Err(invalid(
            "body",
            format!(
                "the request body is {}, expected an object: {{\"feature_view_name\": \"view\", \
                 \"df\": {{\"column\": [...], ...}}}}",
                skewless_runtime::serving::json_kind(&value)
            ),
        ));
    };
    let view = match value.get("feature_view_name") {
        Some(serde_json::Value::String(view)) => view,
        other => {
            let given = other.map_or("missing", skewless_runtime::serving::json_kind);
            return Err(invalid(
                "feature_view_name",
                format!("`feature_view_name` is {given}, expected the name of a feature view"),
            ));
        }
    };
    if !value.get("df").is_some_and(serde_json::Value::is_object) {
        return Err(invalid(
            "df",
            "`df` must be an object of columns: {\"column\": [values...], ...}".to_owned(),
        ));
    }
    skewless_runtime::serving::check_feast_write_flags(body)?;
    if state.serving.view_digest(view).is_none() {
        let known: Vec<&str> = state.serving.views().map(|(name, _, _)| name).collect();
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "there is no feature view `{view}` (views: [{}])",
                known.join(", ")
            ),
        )
        .with_context("field", "feature_view_name")
        .into());
    }
    Ok(view.clone())
}

async fn views(State(state): State<AppState>) -> Response {
    let views: Vec<_> = state
        .serving
        .views()
        .map(|(name, kind, digest)| json!({"name": name, "kind": kind, "digest": digest}))
        .collect();
    json_value(StatusCode::OK, &json!({ "views": views }))
}

async fn health() -> Response {
    json_value(StatusCode::OK, &json!({"status": "ok"}))
}

/// 200 when the online store answers a ping within the request deadline, 503 otherwise.
async fn ready(State(state): State<AppState>) -> Response {
    let store = state.serving.store().clone();
    let backend = store.backend();
    let ping = tokio::task::spawn_blocking(move || store.ping());
    let outcome = match tokio::time::timeout(state.limits.request_timeout, ping).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(join)) => Err(Error::new(ErrorKind::Internal, join.to_string())),
        Err(_) => Err(Error::new(
            ErrorKind::Unavailable,
            format!("the {backend} online store did not answer a ping in time"),
        )),
    };
    match outcome {
        Ok(()) => json_value(
            StatusCode::OK,
            &json!({"status": "ready", "online_store": backend}),
        ),
        Err(e) => {
            let mut body = ApiError::from(e).body();
            body["status"] = "unavailable".into();
            body["online_store"] = backend.into();
            json_value(StatusCode::SERVICE_UNAVAILABLE, &body)
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        OPENAPI,
    )
        .into_response()
}

async fn method_not_allowed(request: Request) -> Response {
    ApiError::no_route(
        StatusCode::METHOD_NOT_ALLOWED,
        request.method().as_str(),
        request.uri().path(),
    )
    .into_response()
}

async fn no_route(request: Request) -> Response {
    ApiError::no_route(
        StatusCode::NOT_FOUND,
        request.method().as_str(),
        request.uri().path(),
    )
    .into_response()
}

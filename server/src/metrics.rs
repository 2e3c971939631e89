//! The server's Prometheus metrics, exposed at `GET /metrics` in the OpenMetrics text format.
//!
//! - `skewless_http_request_duration_seconds{endpoint, status}`: histogram per endpoint and
//!   status code, from the first byte of the handler to the rendered response;
//! - `skewless_transform_duration_seconds{view}`: one component call of a request-time view;
//! - `skewless_store_read_duration_seconds{backend}`: the online store read of a request
//!   (every batch view involved at once);
//! - `skewless_errors_total{endpoint, kind}`: failed requests by error kind;
//! - `skewless_served_rows_total{endpoint}`: entity rows answered;
//! - `skewless_pushed_rows_total{push_source, to}`: rows accepted by `POST /push`;
//! - `skewless_push_duration_seconds{to}`: a push, from the body read to the acknowledgement;
//! - `skewless_push_freshness_seconds{push_source}`: from the oldest event time of a push's
//!   rows to the moment they are visible online (pushes that write online);
//! - `skewless_push_commit_lag_seconds{push_source}`: from a pushed row's arrival to the
//!   offline commit of its micro-batch;
//! - `skewless_push_commit_failures_total{push_source}`: failed offline commits or
//!   materializations of pushed rows (each is tried again).
//!
//! Buckets run from 25 µs to ~13 s by doubling: the interesting part of an online feature
//! server's latency is below a millisecond.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use skewless_runtime::error::ErrorKind;
use skewless_runtime::serving::Timings;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ViewLabels {
    view: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    backend: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    endpoint: &'static str,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushLabels {
    push_source: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    push_source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToLabels {
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(25e-6, 2.0, 20))
}

/// Every metric the server records, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Histograms<RequestLabels>,
    transforms: Histograms<ViewLabels>,
    store_reads: Histograms<StoreLabels>,
    errors: Family<ErrorLabels, Counter<u64, AtomicU64>>,
    rows: Family<EndpointLabels, Counter<u64, AtomicU64>>,
    pushed: Family<PushLabels, Counter<u64, AtomicU64>>,
    push_latency: Histograms<ToLabels>,
    freshness: Histograms<SourceLabels>,
    commit_lag: Histograms<SourceLabels>,
    commit_failures: Family<SourceLabels, Counter<u64, AtomicU64>>,
    backend: &'static str,
}

impl Metrics {
    /// Empty metrics for a server whose online store is `backend`.
    pub fn new(backend: &'static str) -> Self {
        let mut registry = Registry::with_prefix("skewless");
        let requests: Histograms<RequestLabels> = Family::new_with_constructor(latency_histogram);
        let transforms: Histograms<ViewLabels> = Family::new_with_constructor(latency_histogram);
        let store_reads: Histograms<StoreLabels> = Family::new_with_constructor(latency_histogram);
        let errors = Family::<ErrorLabels, Counter>::default();
        let rows = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by endpoint and status",
            requests.clone(),
        );
        registry.register(
            "transform_duration_seconds",
            "Time of one component call of a request-time view",
            transforms.clone(),
        );
        registry.register(
            "store_read_duration_seconds",
            "Time of one online store read",
            store_reads.clone(),
        );
        registry.register(
            "errors",
            "Failed requests, by endpoint and error kind",
            errors.clone(),
        );
        registry.register(
            "served_rows",
            "Entity rows answered, by endpoint",
            rows.clone(),
        );
        let pushed = Family::<PushLabels, Counter>::default();
        let push_latency: Histograms<ToLabels> = Family::new_with_constructor(latency_histogram);
        let freshness: Histograms<SourceLabels> = Family::new_with_constructor(latency_histogram);
        let commit_lag: Histograms<SourceLabels> = Family::new_with_constructor(latency_histogram);
        let commit_failures = Family::<SourceLabels, Counter>::default();
        registry.register(
            "pushed_rows",
            "Rows accepted by POST /push, by push source and destination",
            pushed.clone(),
        );
        registry.register(
            "push_duration_seconds",
            "Time to acknowledge a push, by destination",
            push_latency.clone(),
        );
        registry.register(
            "push_freshness_seconds",
            "From the oldest event time of a push's rows to their online visibility",
            freshness.clone(),
        );
        registry.register(
            "push_commit_lag_seconds",
            "From a pushed row's arrival to the offline commit of its micro-batch",
            commit_lag.clone(),
        );
        registry.register(
            "push_commit_failures",
            "Failed offline commits or materializations of pushed rows (tried again)",
            commit_failures.clone(),
        );
        Metrics {
            registry,
            requests,
            transforms,
            store_reads,
            errors,
            rows,
            pushed,
            push_latency,
            freshness,
            commit_lag,
            commit_failures,
            backend,
        }
    }

    /// Records one answered request.
    pub(crate) fn request(&self, endpoint: &'static str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, status })
            .observe(elapsed.as_secs_f64());
    }

    /// Records a failed request's error kind.
    pub(crate) fn error(&self, endpoint: &'static str, kind: ErrorKind) {
        self.errors
            .get_or_create(&ErrorLabels {
                endpoint,
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Records where a served request spent its time, and how many rows it answered.
    pub(crate) fn served(&self, endpoint: &'static str, rows: usize, timings: &Timings) {
        self.rows
            .get_or_create(&EndpointLabels { endpoint })
            .inc_by(rows as u64);
        if let Some(elapsed) = timings.store {
            self.store_reads
                .get_or_create(&StoreLabels {
                    backend: self.backend,
                })
                .observe(elapsed.as_secs_f64());
        }
        for (view, elapsed) in &timings.transforms {
            self.transforms
                .get_or_create(&ViewLabels {
                    view: view.to_string(),
                })
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Records an acknowledged push: its rows, its latency and, when it wrote online, how
    /// old its oldest event was when it became visible.
    pub(crate) fn pushed(
        &self,
        source: &str,
        to: &'static str,
        rows: usize,
        elapsed: Duration,
        visible_after_event: Option<Duration>,
    ) {
        self.pushed
            .get_or_create(&PushLabels {
                push_source: source.to_owned(),
                to,
            })
            .inc_by(rows as u64);
        self.push_latency
            .get_or_create(&ToLabels { to })
            .observe(elapsed.as_secs_f64());
        if let Some(age) = visible_after_event {
            self.freshness
                .get_or_create(&SourceLabels {
                    push_source: source.to_owned(),
                })
                .observe(age.as_secs_f64());
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl skewless_runtime::push::PushObserver for Metrics {
    fn committed(&self, source: &str, _rows: usize, lag: Duration) {
        self.commit_lag
            .get_or_create(&SourceLabels {
                push_source: source.to_owned(),
            })
            .observe(lag.as_secs_f64());
    }

    fn commit_failed(&self, source: &str) {
        self.commit_failures
            .get_or_create(&SourceLabels {
                push_source: source.to_owned(),
            })
            .inc();
    }
}

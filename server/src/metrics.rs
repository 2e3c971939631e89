//! The server's Prometheus metrics, exposed at `GET /metrics` in the OpenMetrics text format.
//!
//! - `skewless_http_request_duration_seconds{endpoint, status}`: histogram per endpoint and
//!   status code, from the first byte of the handler to the rendered response;
//! - `skewless_transform_duration_seconds{view}`: one component call of a request-time view;
//! - `skewless_store_read_duration_seconds{backend}`: the online store read of a request
//!   (every batch view involved at once);
//! - `skewless_errors_total{endpoint, kind}`: failed requests by error kind;
//! - `skewless_served_rows_total{endpoint}`: entity rows answered.
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
        Metrics {
            registry,
            requests,
            transforms,
            store_reads,
            errors,
            rows,
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

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

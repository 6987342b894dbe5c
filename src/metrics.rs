//! Prometheus metrics. Labels are static names (operations, outcomes, error kinds), never error
//! text, so their number stays small.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// create, get, list or delete.
    pub operation: &'static str,
    /// `ok` or the error kind.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// The step the reconcile took.
    pub step: &'static str,
    /// `ok` or the error kind.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeLabels {
    /// get, list, watch, create, update, patch, delete or deletecollection.
    pub verb: &'static str,
    /// modelimports, secrets, events, leases, namespaces or other.
    pub resource: &'static str,
    /// `status`, `other`, or empty for the object itself.
    pub subresource: &'static str,
}

/// The controller's metrics.
pub struct Metrics {
    pub registry: Registry,
    pub reconciliations: Family<ReconcileLabels, Counter>,
    pub reconcile_duration: Histogram,
    pub api_requests: Family<ApiLabels, Counter>,
    pub api_request_duration: Family<ApiLabels, Histogram>,
    pub status_writes: Counter,
    pub events_published: Counter,
    pub api_rate_limit_wait: Histogram,
    pub unreadable_objects: Counter,
    pub kube_requests: Family<KubeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modelstudio");
        let reconciliations = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let api_requests = Family::<ApiLabels, Counter>::default();
        let api_request_duration = Family::<ApiLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let status_writes = Counter::default();
        let events_published = Counter::default();
        let api_rate_limit_wait = Histogram::new(exponential_buckets(0.001, 4.0, 10));
        let unreadable_objects = Counter::default();
        let kube_requests = Family::<KubeLabels, Counter>::default();
        registry.register(
            "kubernetes_requests",
            "Requests to the Kubernetes API, by verb and resource",
            kube_requests.clone(),
        );
        registry.register(
            "unreadable_objects",
            "ModelImports skipped because they do not read as the controller's type",
            unreadable_objects.clone(),
        );
        registry.register(
            "api_rate_limit_wait_seconds",
            "Time a request to Model Studio waited for the client-side rate limiter",
            api_rate_limit_wait.clone(),
        );
        registry.register(
            "reconciliations",
            "Reconciliations of ModelImports, by step and result",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconciliation took",
            reconcile_duration.clone(),
        );
        registry.register(
            "api_requests",
            "Requests to the Model Studio import API, by operation and result",
            api_requests.clone(),
        );
        registry.register(
            "api_request_duration_seconds",
            "Time a request to the Model Studio import API took",
            api_request_duration.clone(),
        );
        registry.register(
            "status_writes",
            "Status updates written to the Kubernetes API",
            status_writes.clone(),
        );
        registry.register(
            "events_published",
            "Kubernetes Events published",
            events_published.clone(),
        );
        Metrics {
            registry,
            reconciliations,
            reconcile_duration,
            api_requests,
            api_request_duration,
            status_writes,
            events_published,
            api_rate_limit_wait,
            unreadable_objects,
            kube_requests,
        }
    }
}

impl Metrics {
    /// The metrics in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

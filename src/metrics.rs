//! Prometheus metrics. Labels are static names (operations, outcomes, error kinds, phases,
//! reasons), never error text, so their number stays small.

mod cache_gauges;
mod deployments;
mod imports;
mod outputs;
mod secrets;

pub use cache_gauges::CacheGauges;
pub use deployments::{DeploymentGauges, DeploymentTally};
pub use imports::{ImportGauges, Tally};
pub use outputs::OutputsGauges;
pub use secrets::SecretGauges;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// create, get, list or delete (import jobs); deployment_create, deployment_get,
    /// deployment_list, deployment_scale, deployment_update or deployment_delete.
    pub operation: &'static str,
    /// `ok` or the error kind.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// The kind reconciled: ModelImport or ModelDeployment.
    pub kind: &'static str,
    /// The step the reconcile took.
    pub step: &'static str,
    /// `ok` or the error kind.
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// The kind reconciled: ModelImport or ModelDeployment.
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeLabels {
    /// get, list, watch, create, update, patch, delete or deletecollection.
    pub verb: &'static str,
    /// modelimports, modeldeployments, secrets, configmaps, events, leases, namespaces or other.
    pub resource: &'static str,
    /// `status`, `other`, or empty for the object itself.
    pub subresource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    /// The call's class in the quota's queue: mutation, recovery, poll or resync.
    pub priority: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeletionLabels {
    /// The resource's `deletionPolicy`: Delete or Orphan.
    pub policy: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// From a minute-long simulated import to a day-long real one.
const TIME_TO_READY_BUCKETS: [f64; 16] = [
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    28800.0, 86400.0,
];

/// From an orphan's instant release to a deletion that waits hours for its job to finish.
const DELETION_BUCKETS: [f64; 17] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
    14400.0, 28800.0, 86400.0,
];

/// The controller's metrics.
pub struct Metrics {
    pub registry: Registry,
    /// Reconciles of both kinds, by kind, step and result.
    pub reconciliations: Family<ReconcileLabels, Counter>,
    /// How long one reconcile took, by kind.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    pub api_requests: Family<ApiLabels, Counter>,
    pub api_request_duration: Family<ApiLabels, Histogram>,
    pub status_writes: Counter,
    pub events_published: Counter,
    /// Events dropped because too many were waiting to be sent.
    pub events_dropped: Counter,
    pub api_rate_limit_wait: Family<QuotaLabels, Histogram>,
    pub unreadable_objects: Counter,
    pub kube_requests: Family<KubeLabels, Counter>,
    /// From the start of a workspace's poll cycle to the start of its next.
    pub poll_cycle: Histogram,
    /// From creationTimestamp to the controller's write of Ready=True.
    pub time_to_ready: Histogram,
    /// From deletionTimestamp to the release of the finalizer.
    pub deletion_duration: Family<DeletionLabels, Histogram>,
    /// 1 while this replica acts (holds the Lease, or runs without election), else 0.
    pub leader: Gauge,
    /// The ModelImports of the watch cache, counted at each scrape.
    pub imports: ImportGauges,
    /// The ModelDeployments of the watch cache, counted at each scrape.
    pub deployments: DeploymentGauges,
    /// The credentials Secrets of the watch cache, counted at each scrape.
    pub secrets: SecretGauges,
    pub outputs: OutputsGauges,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modelstudio");
        let reconciliations = Family::<ReconcileLabels, Counter>::default();
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let api_requests = Family::<ApiLabels, Counter>::default();
        let api_request_duration = Family::<ApiLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 14))
        });
        let status_writes = Counter::default();
        let events_published = Counter::default();
        let events_dropped = Counter::default();
        let api_rate_limit_wait = Family::<QuotaLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 10))
        });
        let unreadable_objects = Counter::default();
        let kube_requests = Family::<KubeLabels, Counter>::default();
        let poll_cycle = Histogram::new(exponential_buckets(0.5, 2.0, 12));
        let time_to_ready = Histogram::new(TIME_TO_READY_BUCKETS);
        let deletion_duration = Family::<DeletionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(DELETION_BUCKETS)
        });
        let leader = Gauge::default();
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        let imports = ImportGauges::default();
        let deployments = DeploymentGauges::default();
        let secrets = SecretGauges::default();
        let outputs = OutputsGauges::default();
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
            "Time a request to Model Studio waited for the client-side rate limiter, by its class",
            api_rate_limit_wait.clone(),
        );
        registry.register(
            "reconciliations",
            "Reconciliations of ModelImports and ModelDeployments, by kind, step and result",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconciliation took, by kind",
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
        registry.register(
            "events_dropped",
            "Kubernetes Events dropped unsent because too many were waiting (the status still says it)",
            events_dropped.clone(),
        );
        registry.register(
            "poll_cycle_seconds",
            "Time from the start of a workspace's poll cycle to the start of its next: the poll interval in effect, longer than --poll-interval while the quota cannot cover the polling",
            poll_cycle.clone(),
        );
        registry.register(
            "time_to_ready_seconds",
            "Time from a ModelImport's creation to the controller's write of Ready=True",
            time_to_ready.clone(),
        );
        registry.register(
            "deletion_duration_seconds",
            "Time from a ModelImport's deletionTimestamp to the release of its finalizer, by deletionPolicy",
            deletion_duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica is the one that reconciles (holds the leader Lease, or runs without election), else 0",
            leader.clone(),
        );
        registry.register(
            "build_info",
            "Always 1; the controller's version as a label",
            build_info,
        );
        registry.register_collector(Box::new(imports.clone()));
        registry.register_collector(Box::new(deployments.clone()));
        registry.register_collector(Box::new(secrets.clone()));
        registry.register_collector(Box::new(outputs.clone()));
        Metrics {
            registry,
            reconciliations,
            reconcile_duration,
            api_requests,
            api_request_duration,
            status_writes,
            events_published,
            events_dropped,
            api_rate_limit_wait,
            unreadable_objects,
            kube_requests,
            poll_cycle,
            time_to_ready,
            deletion_duration,
            leader,
            imports,
            deployments,
            secrets,
            outputs,
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

    /// Marks whether this replica is the one that reconciles.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }
}

/// Seconds from `since` to `now`; 0 when the clocks disagree the other way.
pub fn seconds_between(since: jiff::Timestamp, now: jiff::Timestamp) -> f64 {
    now.duration_since(since).as_secs_f64().max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Each sample line as name{labels} → value.
    fn samples(text: &str) -> BTreeMap<String, f64> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn build_info_names_the_version() {
        let all = samples(&Metrics::default().encode());
        let name = format!(
            "modelstudio_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(all.get(&name), Some(&1.0), "{all:?}");
    }

    #[test]
    fn leader_follows_the_election() {
        let metrics = Metrics::default();
        assert_eq!(samples(&metrics.encode())["modelstudio_leader"], 0.0);
        metrics.set_leader(true);
        assert_eq!(samples(&metrics.encode())["modelstudio_leader"], 1.0);
        metrics.set_leader(false);
        assert_eq!(samples(&metrics.encode())["modelstudio_leader"], 0.0);
    }

    #[test]
    fn time_to_ready_and_deletion_duration_are_histograms_in_seconds() {
        let metrics = Metrics::default();
        metrics.time_to_ready.observe(42.0);
        metrics
            .deletion_duration
            .get_or_create(&DeletionLabels { policy: "Delete" })
            .observe(700.0);
        let all = samples(&metrics.encode());
        assert_eq!(all["modelstudio_time_to_ready_seconds_count"], 1.0);
        assert_eq!(all["modelstudio_time_to_ready_seconds_sum"], 42.0);
        assert_eq!(
            all["modelstudio_time_to_ready_seconds_bucket{le=\"30.0\"}"],
            0.0
        );
        assert_eq!(
            all["modelstudio_time_to_ready_seconds_bucket{le=\"60.0\"}"],
            1.0
        );
        assert_eq!(
            all["modelstudio_deletion_duration_seconds_count{policy=\"Delete\"}"],
            1.0
        );
        assert_eq!(
            all["modelstudio_deletion_duration_seconds_bucket{le=\"600.0\",policy=\"Delete\"}"],
            0.0
        );
        assert_eq!(
            all["modelstudio_deletion_duration_seconds_bucket{le=\"1800.0\",policy=\"Delete\"}"],
            1.0
        );
    }

    #[test]
    fn the_quota_wait_is_labelled_by_priority() {
        let metrics = Metrics::default();
        metrics
            .api_rate_limit_wait
            .get_or_create(&QuotaLabels { priority: "poll" })
            .observe(0.5);
        let all = samples(&metrics.encode());
        assert_eq!(
            all["modelstudio_api_rate_limit_wait_seconds_count{priority=\"poll\"}"],
            1.0
        );
    }

    #[test]
    fn seconds_between_never_goes_negative() {
        let t = |s| jiff::Timestamp::from_second(s).unwrap();
        assert_eq!(seconds_between(t(100), t(160)), 60.0);
        assert_eq!(seconds_between(t(160), t(100)), 0.0);
    }
}

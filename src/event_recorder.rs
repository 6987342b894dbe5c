//! Publishes `events.k8s.io/v1` Events as kube-runtime's `Recorder` does (a new event is created,
//! the same event on the same object within six minutes becomes a series: a merge patch of its
//! count and last time), with a compact cache: per event, its name and series, not the whole
//! Event object; expired at most every ten seconds, not at each publish, and capped. With
//! thousands of ModelImports, kube-runtime's cache held tens of MiB and was scanned whole at
//! every publish.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::Client;
use serde_json::json;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

/// How long a repeat is one series (kube-runtime's and client-go's).
const SERIES_TTL: SignedDuration = SignedDuration::from_mins(6);
/// How often expired entries are dropped.
const PRUNE_EVERY: SignedDuration = SignedDuration::from_secs(10);
/// The most events remembered; the oldest go first.
pub const CAPACITY: usize = 20_000;
/// How many of the oldest a full cache drops at once, so the scan that finds them is paid once
/// per this many new events, not at each.
const EVICT: usize = CAPACITY / 16;

/// What a repeat needs of a published event: the namespace is the reference's, part of the key.
#[derive(Debug, Clone, PartialEq)]
struct Published {
    name: Box<str>,
    count: i32,
    last: Timestamp,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<u64, Published>,
    pruned: Option<Timestamp>,
}

impl Cache {
    /// Drops expired entries, at most every [`PRUNE_EVERY`].
    fn prune(&mut self, now: Timestamp) {
        if self.pruned.is_none_or(|t| t + PRUNE_EVERY <= now) {
            self.entries.retain(|_, e| e.last + SERIES_TTL > now);
            self.pruned = Some(now);
        }
    }

    /// The name and the next count of the live series `key` would continue, if any.
    fn repeat(&self, key: u64, now: Timestamp) -> Option<(Box<str>, i32)> {
        let entry = self.entries.get(&key)?;
        (entry.last + SERIES_TTL > now).then(|| (entry.name.clone(), entry.count + 1))
    }

    /// Remembers a published event; a full cache first drops its [`EVICT`] oldest.
    fn insert(&mut self, key: u64, published: Published) {
        if self.entries.len() >= CAPACITY && !self.entries.contains_key(&key) {
            let mut times: Vec<Timestamp> = self.entries.values().map(|e| e.last).collect();
            let (_, cutoff, _) = times.select_nth_unstable(EVICT - 1);
            let cutoff = *cutoff;
            self.entries.retain(|_, e| e.last > cutoff);
        }
        self.entries.insert(key, published);
    }

    /// Counts a repeat the server took, unless its series was dropped or replaced meanwhile.
    fn observed(&mut self, key: u64, name: &str, count: i32, now: Timestamp) {
        if let Some(entry) = self.entries.get_mut(&key) {
            if *entry.name == *name && entry.count < count {
                entry.count = count;
                entry.last = now;
            }
        }
    }
}

pub struct EventRecorder {
    client: Client,
    reporter: Reporter,
    cache: Mutex<Cache>,
}

impl EventRecorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        EventRecorder {
            client,
            reporter,
            cache: Mutex::default(),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `event` on the object `regarding` names.
    pub async fn publish(
        &self,
        event: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = self.key(event, regarding);
        let repeat = {
            let mut cache = self.cache();
            cache.prune(now);
            cache.repeat(key, now)
        };
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<K8sEvent> = Api::namespaced(self.client.clone(), namespace);
        match repeat {
            // The series alone: a merge patch keeps the fields the server holds immutable.
            Some((name, count)) => {
                let patch = json!({"series": {"count": count, "lastObservedTime": MicroTime(now)}});
                events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                // Counted once the server took it, as kube-runtime does.
                self.cache().observed(key, &name, count, now);
            }
            None => {
                let created = self.new_event(event, regarding, now);
                events.create(&PostParams::default(), &created).await?;
                let published = Published {
                    name: created.metadata.name.unwrap_or_default().into(),
                    count: 1,
                    last: now,
                };
                self.cache().insert(key, published);
            }
        }
        Ok(())
    }

    /// What makes two publishes one series: kube-runtime's key (type, action, reason, reporter,
    /// the object and the related one), hashed.
    fn key(&self, event: &Event, regarding: &ObjectReference) -> u64 {
        let mut h = DefaultHasher::new();
        matches!(event.type_, EventType::Warning).hash(&mut h);
        event.action.hash(&mut h);
        event.reason.hash(&mut h);
        self.reporter.controller.hash(&mut h);
        self.reporter.instance.hash(&mut h);
        for r in std::iter::once(Some(regarding)).chain([event.secondary.as_ref()]) {
            r.map(|r| {
                (
                    &r.api_version,
                    &r.kind,
                    &r.namespace,
                    &r.name,
                    &r.uid,
                    &r.resource_version,
                    &r.field_path,
                )
            })
            .hash(&mut h);
        }
        h.finish()
    }

    /// The Event kube-runtime's `Recorder` creates for a first publish.
    fn new_event(&self, event: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        let controller = &self.reporter.controller;
        K8sEvent {
            action: Some(event.action.clone()),
            reason: Some(event.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: event.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| controller.clone()),
            ),
            type_: Some(
                match event.type_ {
                    EventType::Normal => "Normal",
                    EventType::Warning => "Warning",
                }
                .into(),
            ),
            related: event.secondary.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response};
    use kube::client::Body;

    fn reference(name: &str, version: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("modelstudio.io/v1alpha1".into()),
            kind: Some("ModelImport".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            resource_version: Some(version.into()),
            field_path: None,
        }
    }

    fn event(reason: &str) -> Event {
        Event {
            type_: EventType::Warning,
            reason: reason.into(),
            note: Some("the job is still running".into()),
            action: "DeleteImportJob".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn a_first_event_is_created_and_a_repeat_patches_its_series() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let recorder = EventRecorder::new(client, "modelstudio-controller".into());
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..3 {
                let (request, send) = handle.next_request().await.expect("a request");
                let (parts, body) = request.into_parts();
                let body: serde_json::Value =
                    serde_json::from_slice(&body.collect_bytes().await.unwrap()).unwrap();
                seen.push((
                    parts.method.clone(),
                    parts.uri.path().to_string(),
                    body.clone(),
                ));
                // The first (created) event stands for the answer to each.
                let answer = seen[0].2.clone();
                send.send_response(
                    Response::builder()
                        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                );
            }
            seen
        });
        let on_a = reference("a", "7");
        recorder
            .publish(&event("DeletionBlocked"), &on_a)
            .await
            .unwrap();
        recorder
            .publish(&event("DeletionBlocked"), &on_a)
            .await
            .unwrap();
        recorder
            .publish(&event("DeletionBlocked"), &on_a)
            .await
            .unwrap();
        let seen = server.await.unwrap();
        assert_eq!(seen[0].0, Method::POST);
        assert_eq!(seen[0].1, "/apis/events.k8s.io/v1/namespaces/ns/events");
        let name = seen[0].2["metadata"]["name"].as_str().unwrap().to_string();
        assert!(name.starts_with("a."), "{name}");
        assert_eq!(seen[0].2["reportingController"], "modelstudio-controller");
        assert_eq!(seen[0].2["regarding"]["uid"], "uid-a");
        for (i, (method, path, body)) in seen[1..].iter().enumerate() {
            assert_eq!(method, Method::PATCH);
            assert_eq!(
                path,
                &format!("/apis/events.k8s.io/v1/namespaces/ns/events/{name}")
            );
            assert_eq!(body["series"]["count"], i as i64 + 2);
            assert_eq!(
                body.as_object().unwrap().len(),
                1,
                "the series alone: {body}"
            );
        }
        assert_eq!(recorder.cache().entries.len(), 1);
    }

    #[tokio::test]
    async fn one_series_per_event_and_object_version() {
        let recorder = EventRecorder::new(
            Client::new(
                tower_test::mock::pair::<Request<Body>, Response<Body>>().0,
                "default",
            ),
            "modelstudio-controller".into(),
        );
        let key = |reason: &str, r: &ObjectReference| recorder.key(&event(reason), r);
        assert_eq!(
            key("A", &reference("a", "1")),
            key("A", &reference("a", "1"))
        );
        assert_ne!(
            key("A", &reference("a", "1")),
            key("B", &reference("a", "1"))
        );
        assert_ne!(
            key("A", &reference("a", "1")),
            key("A", &reference("b", "1"))
        );
        assert_ne!(
            key("A", &reference("a", "1")),
            key("A", &reference("a", "2"))
        );
    }

    fn published(count: i32, last: Timestamp) -> Published {
        Published {
            name: "e".into(),
            count,
            last,
        }
    }

    #[test]
    fn a_series_expires_six_minutes_after_its_last_repeat() {
        let t0 = Timestamp::now();
        let mut cache = Cache::default();
        cache.insert(1, published(1, t0));
        let t1 = t0 + SignedDuration::from_mins(5);
        assert_eq!(cache.repeat(1, t1), Some(("e".into(), 2)));
        cache.observed(1, "e", 2, t1);
        // Seven minutes after the first, five after the last: still one series.
        let t2 = t0 + SignedDuration::from_mins(7);
        assert_eq!(cache.repeat(1, t2), Some(("e".into(), 3)));
        assert_eq!(cache.repeat(1, t1 + SERIES_TTL), None);
        cache.prune(t1 + SERIES_TTL);
        assert!(cache.entries.is_empty());
    }

    #[test]
    fn expired_entries_are_dropped_at_most_every_ten_seconds() {
        let t0 = Timestamp::now();
        let mut cache = Cache::default();
        cache.prune(t0);
        cache.insert(1, published(1, t0 - SERIES_TTL));
        cache.prune(t0 + SignedDuration::from_secs(9));
        assert_eq!(cache.entries.len(), 1, "pruned 9 s ago: not yet");
        // An expired entry waiting for the pass is still no series.
        assert_eq!(cache.repeat(1, t0 + SignedDuration::from_secs(9)), None);
        cache.prune(t0 + PRUNE_EVERY);
        assert!(cache.entries.is_empty());
    }

    #[test]
    fn a_full_cache_drops_its_oldest_and_stays_capped() {
        let t0 = Timestamp::now();
        let mut cache = Cache::default();
        for k in 0..CAPACITY as u64 {
            cache.insert(k, published(1, t0 + SignedDuration::from_secs(k as i64)));
        }
        assert_eq!(cache.entries.len(), CAPACITY);
        let new = CAPACITY as u64;
        cache.insert(new, published(1, t0 + SignedDuration::from_hours(6)));
        assert_eq!(cache.entries.len(), CAPACITY - EVICT + 1);
        assert!(cache.entries.contains_key(&new));
        assert!((0..EVICT as u64).all(|k| !cache.entries.contains_key(&k)));
        assert!(cache.entries.contains_key(&(EVICT as u64)));
        // A repeat's count on a full cache drops nothing.
        let full = cache.entries.len();
        cache.observed(new, "e", 2, t0 + SignedDuration::from_hours(6));
        assert_eq!(cache.entries.len(), full);
        assert_eq!(cache.entries[&new].count, 2);
    }
}

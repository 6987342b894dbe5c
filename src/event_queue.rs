//! Events go out in the background, as client-go's broadcaster sends them: a reconcile hands its
//! events over and goes on, so a busy API server slows the events, not the creates. A few lanes
//! send at once; one object's events share a lane, so they keep their order (and a repeat finds
//! its series). A full lane drops the event, counted and logged: events are best effort, the
//! status is the record.

use crate::event_recorder::EventRecorder;
use crate::metrics::Metrics;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::Event;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use tracing::warn;

/// How many events are sent at once.
const LANES: usize = 4;
/// How many events a lane holds before it drops (client-go's broadcaster holds 1,000 in all).
const LANE_CAPACITY: usize = 256;

struct Queued {
    event: Event,
    regarding: ObjectReference,
}

/// Counts the events handed over and not yet sent, for [`EventQueue::flush`].
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    drained: Notify,
}

impl Pending {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.drained.notify_waiters();
        }
    }
}

pub struct EventQueue {
    lanes: Vec<mpsc::Sender<Queued>>,
    pending: Arc<Pending>,
    metrics: Arc<Metrics>,
}

impl EventQueue {
    /// Starts the lanes' senders on the current Tokio runtime; they end when the queue is dropped.
    pub fn start(recorder: EventRecorder, metrics: Arc<Metrics>) -> Self {
        let recorder = Arc::new(recorder);
        let pending = Arc::new(Pending::default());
        let lanes = (0..LANES)
            .map(|_| {
                let (tx, mut rx) = mpsc::channel::<Queued>(LANE_CAPACITY);
                let (recorder, metrics, pending) =
                    (recorder.clone(), metrics.clone(), pending.clone());
                tokio::spawn(async move {
                    while let Some(q) = rx.recv().await {
                        match recorder.publish(&q.event, &q.regarding).await {
                            Ok(()) => {
                                metrics.events_published.inc();
                            }
                            Err(e) => {
                                warn!(error = %e, reason = %q.event.reason, "could not publish an event");
                            }
                        }
                        pending.done();
                    }
                });
                tx
            })
            .collect();
        EventQueue {
            lanes,
            pending,
            metrics,
        }
    }

    /// Hands `event` on the object `regarding` names over for sending; never waits.
    pub fn send(&self, event: Event, regarding: ObjectReference) {
        let mut hasher = DefaultHasher::new();
        (&regarding.uid, &regarding.namespace, &regarding.name).hash(&mut hasher);
        let lane = &self.lanes[(hasher.finish() % LANES as u64) as usize];
        self.pending.count.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = lane.try_send(Queued { event, regarding }) {
            self.pending.done();
            self.metrics.events_dropped.inc();
            let Queued { event, regarding } = e.into_inner();
            warn!(reason = %event.reason, name = ?regarding.name, namespace = ?regarding.namespace,
                  "too many events waiting to be sent: dropped one");
        }
    }

    /// Waits until every event handed over so far is sent (or failed).
    pub async fn flush(&self) {
        loop {
            let drained = self.pending.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.pending.count.load(Ordering::Acquire) == 0 {
                return;
            }
            drained.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use kube::runtime::events::EventType;
    use kube::Client;
    use std::time::Duration;

    fn on(name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("modelstudio.io/v1alpha1".into()),
            kind: Some("ModelImport".into()),
            namespace: Some("ns".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        }
    }

    fn event(reason: String) -> Event {
        Event {
            type_: EventType::Normal,
            reason,
            note: Some("note".into()),
            action: "CreateImportJob".into(),
            secondary: None,
        }
    }

    #[tokio::test]
    async fn a_send_never_waits_keeps_an_objects_order_and_drops_past_capacity() {
        let (service, mut server) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let metrics = Arc::new(Metrics::default());
        let recorder = EventRecorder::new(Client::new(service, "default"), "test".into());
        let queue = EventQueue::start(recorder, metrics.clone());
        // The server answers nothing yet: every send still returns at once.
        for i in 0..LANE_CAPACITY + 10 {
            queue.send(event(format!("Reason{i}")), on("a"));
        }
        assert_eq!(metrics.events_dropped.get(), 10);
        let mut reasons = Vec::new();
        for _ in 0..LANE_CAPACITY {
            let (request, answer) =
                tokio::time::timeout(Duration::from_secs(10), server.next_request())
                    .await
                    .expect("the queue sends its events")
                    .expect("a request");
            let body = request.into_body().collect_bytes().await.unwrap();
            let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
            reasons.push(sent["reason"].as_str().unwrap_or_default().to_string());
            answer.send_response(Response::builder().body(Body::from(body.to_vec())).unwrap());
        }
        tokio::time::timeout(Duration::from_secs(10), queue.flush())
            .await
            .expect("flush returns once all are sent");
        let expected: Vec<String> = (0..LANE_CAPACITY).map(|i| format!("Reason{i}")).collect();
        assert_eq!(reasons, expected, "one object's events keep their order");
        assert_eq!(metrics.events_published.get(), LANE_CAPACITY as u64);
    }
}

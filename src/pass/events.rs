//! Publishes the core's events on a resource of either kind, through the background
//! [`EventQueue`]: a reconcile never waits on an event. An object that does not read as its kind
//! is reported here too.
//!
//! [`EventQueue`]: crate::event_queue::EventQueue

use super::context::Context;
use crate::watches::Watched;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::DynamicObject;
use kube::runtime::events::{Event, EventType};
use kube::Resource;
use modelstudio_core::events::{self, EventType as CoreEventType};
use std::sync::Arc;
use tracing::warn;

/// Publishes `events` on the object `reference` names.
pub(crate) fn publish_to(ctx: &Context, reference: &ObjectReference, events: &[events::Event]) {
    for e in events {
        let event = Event {
            type_: match e.type_ {
                CoreEventType::Normal => EventType::Normal,
                CoreEventType::Warning => EventType::Warning,
            },
            reason: e.reason.into(),
            note: Some(e.note.clone()),
            action: e.action.as_str().into(),
            secondary: None,
        };
        ctx.events.send(event, reference.clone());
    }
}

/// Reports an object that does not read as a `K` (stored under an older or hand-loosened
/// schema): a Warning event naming the bad value, a log line and a metric, once per version. The
/// watch leaves it out of the cache, so it never fails the others nor loops.
pub async fn report_unreadable<K: Watched>(
    mut unreadable: tokio::sync::mpsc::UnboundedReceiver<DynamicObject>,
    ctx: Arc<Context>,
) {
    let resource = kube::api::ApiResource::erase::<K>(&());
    let kind = K::kind(&()).to_string();
    let mut reported = std::collections::HashSet::new();
    while let Some(obj) = unreadable.recv().await {
        let version = (
            obj.metadata.uid.clone(),
            obj.metadata.resource_version.clone(),
        );
        if !reported.insert(version) {
            continue;
        }
        let Err(e) = obj.clone().try_parse::<K>() else {
            continue;
        };
        let error = e.to_string();
        warn!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, %error, "skipping a {kind} that cannot be read");
        ctx.metrics.unreadable_objects.inc();
        publish_to(
            &ctx,
            &obj.object_ref(&resource),
            &[events::Event::unreadable(&kind, &error)],
        );
    }
}

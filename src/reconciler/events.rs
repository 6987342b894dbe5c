//! Publishes the core's events on the resource. A failed publish is logged, never fatal.

use super::context::Context;
use super::observe::Io;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use kube::Resource;
use modelstudio_core::reason::{self, EventType as Kind};
use tracing::warn;

impl Io<'_> {
    pub(super) async fn publish(&self, events: &[reason::Event]) {
        publish_to(self.ctx, &self.obj.object_ref(&()), events).await;
    }
}

/// Publishes `events` on the object `reference` names.
pub(super) async fn publish_to(
    ctx: &Context,
    reference: &ObjectReference,
    events: &[reason::Event],
) {
    {
        for e in events {
            let event = Event {
                type_: match e.type_ {
                    Kind::Normal => EventType::Normal,
                    Kind::Warning => EventType::Warning,
                },
                reason: e.reason.into(),
                note: Some(e.note.clone()),
                action: e.action.as_str().into(),
                secondary: None,
            };
            match ctx.recorder.publish(&event, reference).await {
                Ok(()) => {
                    ctx.metrics.events_published.inc();
                }
                Err(err) => warn!(error = %err, reason = e.reason, "could not publish an event"),
            }
        }
    }
}

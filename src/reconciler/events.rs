//! Publishes the core's events on the resource, through the background [`EventQueue`]: a
//! reconcile never waits on an event.
//!
//! [`EventQueue`]: crate::event_queue::EventQueue

use super::context::Context;
use super::observe::Io;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType};
use kube::Resource;
use modelstudio_core::events::{self, EventType as Kind};

impl Io<'_> {
    pub(super) fn publish(&self, events: &[events::Event]) {
        publish_to(self.ctx, &self.obj.object_ref(&()), events);
    }
}

/// Publishes `events` on the object `reference` names.
pub(crate) fn publish_to(ctx: &Context, reference: &ObjectReference, events: &[events::Event]) {
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
        ctx.events.send(event, reference.clone());
    }
}

//! What one decision of either kind asks of the IO side: the status to write, the finalizer change
//! or remote call to make, the events to publish and when to look again. A kind brings its own
//! status and calls; the shape, and what the driver reads of it, is one.

use crate::events::Event;
use crate::requeue::Requeue;

/// The whole step: record `status`, make `act`, publish `events`, requeue.
#[derive(Debug, Clone, PartialEq)]
pub struct Step<Status, Act> {
    /// The plan this step carries out, for metric labels.
    pub plan: &'static str,
    /// The status to write before acting (a ModelImport's: the change to it); `None` when
    /// nothing changed.
    pub status: Option<Status>,
    pub act: Act,
    pub events: Vec<Event>,
    pub requeue: Requeue,
    /// Put the controller's finalizer on the credentials Secret before acting: a remote object
    /// whose deletion needs its key is about to exist, or exists.
    pub protect_secret: bool,
}

impl<Status, Act: Default + PartialEq> Step<Status, Act> {
    /// A step of `plan` that writes, calls and publishes nothing and never looks again.
    pub fn idle(plan: &'static str) -> Self {
        Step {
            plan,
            status: None,
            act: Act::default(),
            events: Vec::new(),
            requeue: Requeue::Never,
            protect_secret: false,
        }
    }

    /// Whether the step changes a finalizer or calls Model Studio (its act is not the kind's
    /// default, nothing).
    pub fn acts(&self) -> bool {
        self.act != Act::default()
    }
}

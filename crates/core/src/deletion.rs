//! What happens to the remote object (an import job, a deployment) when its resource is deleted;
//! both kinds' specs carry it.

/// What happens to the remote object when the resource is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Orphan,
}

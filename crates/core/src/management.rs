//! Whether the controller manages a resource's remote object or only mirrors it (as Crossplane's
//! managementPolicies and AWS Controllers' read-only resources): both kinds' specs carry it.
//! Imports no other module of the core.

/// What the controller may do to the remote object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ManagementPolicy {
    /// Create, change and delete it (the default).
    #[default]
    Manage,
    /// Adopt it by its id and mirror it; never create, change or delete it (deleting the
    /// resource only lets go of it).
    Observe,
}

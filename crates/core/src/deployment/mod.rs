//! The ModelDeployment kind: its resource view ([`resource`]: spec, status, and the view of the
//! ModelImport it may name), the deployment API in domain terms ([`deployments`]: the
//! deployments, their states and the [`deployments::Deployments`] trait), its condition reasons
//! ([`reason`]) and its step machine ([`step`]). It uses the shared modules beside it and
//! nothing of the import kind.

pub mod deployments;
pub mod reason;
pub mod resource;
pub mod step;

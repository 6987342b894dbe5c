//! The ModelImport kind: its resource view ([`resource`]), the import API in domain terms
//! ([`jobs`]: the jobs, their states and the [`jobs::ImportJobs`] trait), every condition reason
//! ([`reason`]), the decisions ([`decision`]), finding the job of a lost create ([`recovery`]),
//! status building ([`status`]) and the step machine ([`step`]: `next_need` names what to
//! observe, `decide` returns the whole step). It uses the shared modules beside it and nothing
//! of the deployment kind.

pub mod decision;
pub mod jobs;
pub mod reason;
pub mod recovery;
pub mod resource;
pub mod status;
pub mod step;

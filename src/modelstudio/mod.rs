//! The Model Studio import and deployment APIs: the core's [`ImportJobs`] and [`Deployments`]
//! traits (domain terms), their one real implementation over HTTP (the wire format lives here
//! and nowhere else), and the layers that wrap it (rate limiting, metrics).

mod client;
mod deployment_wire;
mod deployments;
mod error;
mod import_wire;
mod imports;
mod layers;

pub use client::{decode, FromAnswer, HttpClient, HttpClientConfig};
pub use layers::{layered, rate_limiter, Metered, Priority, RateLimited};
pub use modelstudio_core::api::{ApiError, ApiKey, Operation, RemoteError};
pub use modelstudio_core::deployment::deployments::{
    Deployment, DeploymentPage, DeploymentState, Deployments, Limits, NewDeployment, PageRequest,
    Plan, PtuCapacity,
};
pub use modelstudio_core::import::jobs::{
    ImportJobs, Job, JobPage, JobState, ListQuery, NewJob, Source, Storage, WeightType,
};

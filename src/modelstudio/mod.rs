//! The Model Studio import and deployment APIs: the core's [`ImportJobs`] and [`Deployments`]
//! traits (domain terms), their one real implementation over HTTP (the wire format lives here
//! and nowhere else), and the layers that wrap it (rate limiting, metrics).

mod deployment_http;
mod deployment_wire;
mod error;
mod http;
mod layers;
mod wire;

pub use deployment_http::{decode_deletion, decode_deployment, decode_deployment_page};
pub use http::{decode_job, decode_page, HttpClient, HttpClientConfig};
pub use layers::{rate_limiter, Metered, Priority, RateLimited};
pub use modelstudio_core::api::{ApiError, ApiKey, Operation, RemoteError};
pub use modelstudio_core::deployment::deployments::{
    Deployment, DeploymentPage, DeploymentState, Deployments, Limits, NewDeployment, PageRequest,
    Plan, PtuCapacity,
};
pub use modelstudio_core::import::jobs::{
    ImportJobs, Job, JobPage, JobState, ListQuery, NewJob, Source, Storage, WeightType,
};

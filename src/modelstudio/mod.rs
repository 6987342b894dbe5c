//! The Model Studio import API: the core's [`ImportJobs`] trait (domain terms), its one real
//! implementation over HTTP (the wire format lives here and nowhere else), and the layers that
//! wrap it (rate limiting, metrics).

mod error;
mod http;
mod layers;
mod wire;

pub use http::{decode_job, decode_page, HttpClient, HttpClientConfig};
pub use layers::{rate_limiter, Metered, Priority, RateLimited};
pub use modelstudio_core::remote::{
    ApiError, ApiKey, ImportJobs, Job, JobPage, JobState, ListQuery, NewJob, Operation,
    RemoteError, Source, Storage, WeightType,
};

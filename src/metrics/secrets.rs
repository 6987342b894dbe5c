//! How many Secrets the controller holds in memory: only those it reads API keys from (its
//! Secrets watch selects them by the controller's label), counted at each scrape.

use super::cache_gauges::CountedCache;
use super::CacheGauges;
use k8s_openapi::api::core::v1::Secret;

/// The collector: counts the Secrets' watch cache at each scrape.
pub type SecretGauges = CacheGauges<Secret>;

impl CountedCache for Secret {
    const GAUGE: &'static str = "secrets_cached";
    const HELP: &'static str =
        "Secrets the controller holds in memory: the ones it reads API keys from, never another";
}

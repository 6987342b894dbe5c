//! How many Secrets the controller holds in memory: only those it reads API keys from (its
//! Secrets watch selects them by the controller's label), counted at each scrape.

use super::CacheGauges;
use k8s_openapi::api::core::v1::Secret;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;

/// The collector: counts the Secrets' watch cache at each scrape.
pub type SecretGauges = CacheGauges<Secret>;

impl Collector for SecretGauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(store.state().len() as u64);
        let family = encoder.encode_descriptor(
            "secrets_cached",
            "Secrets the controller holds in memory: the ones it reads API keys from, never another",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(family)
    }
}

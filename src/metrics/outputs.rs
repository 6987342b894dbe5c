//! How many outputs ConfigMaps the controller holds in memory: only those it wrote for the apps
//! (its ConfigMaps watch selects them by its label), counted at each scrape.

use super::CacheGauges;
use k8s_openapi::api::core::v1::ConfigMap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;

/// The collector: counts the outputs ConfigMaps' watch cache at each scrape.
pub type OutputsGauges = CacheGauges<ConfigMap>;

impl Collector for OutputsGauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(store.state().len() as u64);
        let family = encoder.encode_descriptor(
            "outputs_config_maps_cached",
            "ConfigMaps the controller holds in memory: the outputs it wrote for the apps, never another",
            None,
            gauge.metric_type(),
        )?;
        gauge.encode(family)
    }
}

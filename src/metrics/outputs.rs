//! How many outputs ConfigMaps the controller holds in memory: only those it wrote for the apps
//! (its ConfigMaps watch selects them by its label), counted at each scrape.

use super::cache_gauges::CountedCache;
use super::CacheGauges;
use k8s_openapi::api::core::v1::ConfigMap;

/// The collector: counts the outputs ConfigMaps' watch cache at each scrape.
pub type OutputsGauges = CacheGauges<ConfigMap>;

impl CountedCache for ConfigMap {
    const GAUGE: &'static str = "outputs_config_maps_cached";
    const HELP: &'static str =
        "ConfigMaps the controller holds in memory: the outputs it wrote for the apps, never another";
}

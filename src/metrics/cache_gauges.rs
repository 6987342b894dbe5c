//! The collector both kinds' gauges are: it counts a kind's watch cache at each scrape, once the
//! controller has one (only the leader does, so a standby exports none). What it counts is the
//! kind's (`Collector` for `CacheGauges<ModelImport>`, `CacheGauges<ModelDeployment>`).

use kube::runtime::reflector::Store;
use kube::Resource;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use std::fmt;
use std::sync::{Arc, OnceLock};

pub struct CacheGauges<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Arc<OnceLock<Store<K>>>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> CacheGauges<K> {
    /// Counts `store` from now on (the first store given stays).
    pub fn watch(&self, store: Store<K>) {
        let _ = self.store.set(store);
    }

    /// The cache, once one is watched.
    pub fn store(&self) -> Option<&Store<K>> {
        self.store.get()
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Default for CacheGauges<K> {
    fn default() -> Self {
        CacheGauges {
            store: Arc::default(),
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Clone for CacheGauges<K> {
    fn clone(&self) -> Self {
        CacheGauges {
            store: self.store.clone(),
        }
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> fmt::Debug for CacheGauges<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheGauges")
            .field("kind", &K::kind(&()))
            .field("watching", &self.store.get().is_some())
            .finish()
    }
}

/// A cache counted by one gauge (the Secrets', the outputs ConfigMaps'): its name and help.
pub trait CountedCache {
    const GAUGE: &'static str;
    const HELP: &'static str;
}

impl<K> Collector for CacheGauges<K>
where
    K: CountedCache + Resource<DynamicType = ()> + Clone + fmt::Debug + Send + Sync + 'static,
{
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(store) = self.store() else {
            return Ok(());
        };
        let gauge = ConstGauge::new(store.state().len() as u64);
        let family = encoder.encode_descriptor(K::GAUGE, K::HELP, None, gauge.metric_type())?;
        gauge.encode(family)
    }
}

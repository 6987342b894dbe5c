//! Record: fold the core's update into the status (the core builds it) and write it when it
//! changed, by server-side apply as [`MANAGER`].

use super::finalizer::params;
use super::observe::Io;
use super::Error;
use crate::config::MANAGER;
use crate::crd::{ModelImport, ModelImportStatus};
use crate::domain;
use crate::metrics::seconds_between;
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use modelstudio_core::import::status::{became_ready, next_status, Update};
use modelstudio_core::import::step::Observation;
use serde_json::json;

impl Io<'_> {
    /// Writes the status the update leads to, if it differs from the current one, and keeps the
    /// observation in step with what was written.
    pub(super) async fn record(
        &mut self,
        obs: &mut Observation,
        update: Option<&Update>,
    ) -> Result<(), Error> {
        let Some(update) = update else {
            return Ok(());
        };
        let resource = obs.resource();
        let now = jiff::Timestamp::now();
        let next = next_status(&resource.status, update, resource.generation, now);
        if next == resource.status {
            return Ok(());
        }
        let ready = became_ready(&resource.status, &next);
        self.write_status(&domain::model_import_status(&next))
            .await?;
        if let (true, Some(created)) = (ready, &self.obj.metadata.creation_timestamp) {
            self.ctx
                .metrics
                .time_to_ready
                .observe(seconds_between(created.0, now));
        }
        let mut written = obs.resource().clone();
        written.status = next;
        obs.fresh = Some(written);
        Ok(())
    }

    /// Server-side apply of the whole status as [`MANAGER`]: the API server then removes the
    /// fields this manager applied before and leaves out now, and keeps field ownership, so
    /// another writer of the status shows in managedFields instead of being overwritten silently.
    async fn write_status(&mut self, next: &ModelImportStatus) -> Result<(), Error> {
        let serde = |e| Error::WriteStatus(kube::Error::SerdeError(e));
        let status = serde_json::to_value(next).map_err(serde)?;
        let written = apply_status(&self.api, &self.name(), &status)
            .await
            .map_err(Error::WriteStatus)?;
        self.ctx.metrics.status_writes.inc();
        self.note_write(&written);
        // Apply removes only what this manager owns: a field an earlier merge patch wrote (before
        // the controller applied its status) is still in the answer, and is cleared by name, after
        // the apply, so a crash in between leaves the new status (a recorded job beside a stale
        // intent, which is harmless) and never a status without both.
        if let Some(written) = clear_stray_status(&self.api, &self.name(), &status, &written)
            .await
            .map_err(Error::WriteStatus)?
        {
            self.note_write(&written);
        }
        self.obj.status = Some(next.clone());
        Ok(())
    }
}

impl Io<'_> {
    /// A status write whose pass scheduled the next look wakes no reconcile of its own.
    fn note_write(&self, written: &ModelImport) {
        if let (true, Some(version)) = (
            self.progress.quiet_writes,
            &written.metadata.resource_version,
        ) {
            self.ctx.note_own_write(&self.key, version);
        }
    }
}

/// Server-side apply of the whole `status` of the object `name` as [`MANAGER`], forcing
/// ownership; the object as written.
pub(crate) async fn apply_status<K>(
    api: &Api<K>,
    name: &str,
    status: &serde_json::Value,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let apply = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&apply),
    )
    .await
}

/// Clears, by a merge patch, the status fields that `written` (the answer to an apply of
/// `applied`) still holds although the apply left them out: fields this manager did not own.
/// Returns the object after the patch, if one was needed.
pub(crate) async fn clear_stray_status<K>(
    api: &Api<K>,
    name: &str,
    applied: &serde_json::Value,
    written: &K,
) -> Result<Option<K>, kube::Error>
where
    K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let written = serde_json::to_value(written).map_err(kube::Error::SerdeError)?;
    let stray: serde_json::Map<String, serde_json::Value> = written
        .get("status")
        .and_then(|v| v.as_object())
        .into_iter()
        .flat_map(|c| c.keys())
        .filter(|f| applied.get(f.as_str()).is_none())
        .map(|f| (f.clone(), serde_json::Value::Null))
        .collect();
    if stray.is_empty() {
        return Ok(None);
    }
    api.patch_status(name, &params(), &Patch::Merge(&json!({ "status": stray })))
        .await
        .map(Some)
}

//! Record: a kind's status, as the core built it, written by server-side apply as [`MANAGER`],
//! with the fields an earlier writer left cleared by name, and the write noted as the
//! controller's own when the pass that wrote it scheduled the next look.

use super::context::Context;
use super::finalizer::params;
use super::Error;
use crate::config::MANAGER;
use kube::api::{Api, Patch, PatchParams};
use kube::Resource;
use serde_json::json;

/// Writes `status` as the whole status of the object `name`: applied, then what the apply left
/// but did not own cleared. The apply is counted, and each write noted as the controller's own
/// (by the resource's `key`) when `quiet`: its watch event then wakes no reconcile. The object as
/// last written.
pub(crate) async fn write_status<K>(
    ctx: &Context,
    api: &Api<K>,
    name: &str,
    key: &str,
    status: &impl serde::Serialize,
    quiet: bool,
) -> Result<K, Error>
where
    K: Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let serde = |e| Error::WriteStatus(kube::Error::SerdeError(e));
    let applied = serde_json::to_value(status).map_err(serde)?;
    let note = |written: &K| {
        if let (true, Some(version)) = (quiet, &written.meta().resource_version) {
            ctx.note_own_write(key, version);
        }
    };
    let written = apply_status(api, name, &applied)
        .await
        .map_err(Error::WriteStatus)?;
    ctx.metrics.status_writes.inc();
    note(&written);
    // Apply removes only what this manager owns: a field an earlier merge patch wrote (before
    // the controller applied its status) is still in the answer, and is cleared by name, after
    // the apply, so a crash in between leaves the new status (a recorded job beside a stale
    // intent, which is harmless) and never a status without both.
    let Some(cleared) = clear_stray_status(api, name, &applied, &written)
        .await
        .map_err(Error::WriteStatus)?
    else {
        return Ok(written);
    };
    note(&cleared);
    Ok(cleared)
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

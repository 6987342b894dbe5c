//! The controller's finalizer on a resource of either kind: it goes on before anything remote
//! exists. JSON patches with a `test` operation, so
//! a concurrent change of the list is refused rather than overwritten.

use crate::config::MANAGER;
use crate::crd::FINALIZER;
use kube::api::{Api, Patch, PatchParams};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::fmt::Debug;

/// A JSON patch sent as this controller's field manager.
pub(crate) fn json_patch(ops: Value) -> Result<Patch<()>, serde_json::Error> {
    Ok(Patch::Json::<()>(serde_json::from_value::<
        json_patch::Patch,
    >(ops)?))
}

pub(crate) fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    }
}

/// Adds [`FINALIZER`] to the object `name` whose finalizers are `current` (as read): refused if
/// the list changed since. The patch itself triggers the next reconcile.
pub(crate) async fn add_finalizer_to<K>(
    api: &Api<K>,
    name: &str,
    current: Option<&Vec<String>>,
) -> Result<(), kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    let ops = match current {
        None => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
        ]),
        Some(list) => json!([
            {"op": "test", "path": "/metadata/finalizers", "value": list},
            {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
        ]),
    };
    let patch = json_patch(ops).map_err(kube::Error::SerdeError)?;
    api.patch(name, &params(), &patch).await.map(|_| ())
}

/// Removes [`FINALIZER`] from the object `name` whose finalizers are `current`: `false` when it
/// was not there, or the object is already gone.
pub(crate) async fn remove_finalizer_from<K>(
    api: &Api<K>,
    name: &str,
    current: &[String],
) -> Result<bool, kube::Error>
where
    K: Clone + DeserializeOwned + Debug,
{
    let Some(index) = current.iter().position(|f| f == FINALIZER) else {
        return Ok(false);
    };
    let path = format!("/metadata/finalizers/{index}");
    let patch = json_patch(json!([
        {"op": "test", "path": path, "value": FINALIZER},
        {"op": "remove", "path": path},
    ]))
    .map_err(kube::Error::SerdeError)?;
    match api.patch(name, &params(), &patch).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e),
    }
}

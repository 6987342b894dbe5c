//! The finalizer goes on before anything remote exists. JSON patches with a `test` operation, so
//! a concurrent change of the list is refused rather than overwritten.

use super::observe::Io;
use super::Error;
use crate::config::MANAGER;
use crate::crd::FINALIZER;
use kube::api::{Patch, PatchParams};
use serde_json::{json, Value};

/// A JSON patch sent as this controller's field manager.
pub(super) fn json_patch(ops: Value) -> Result<Patch<()>, serde_json::Error> {
    Ok(Patch::Json::<()>(serde_json::from_value::<
        json_patch::Patch,
    >(ops)?))
}

pub(super) fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.into()),
        ..Default::default()
    }
}

impl Io<'_> {
    pub(super) async fn add_finalizer(&self) -> Result<(), Error> {
        let ops = match &self.obj.metadata.finalizers {
            None => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]},
            ]),
            Some(list) => json!([
                {"op": "test", "path": "/metadata/finalizers", "value": list},
                {"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER},
            ]),
        };
        let patch = json_patch(ops).map_err(|e| Error::AddFinalizer(kube::Error::SerdeError(e)))?;
        // The patch itself triggers the next reconcile.
        self.api
            .patch(&self.name(), &params(), &patch)
            .await
            .map_err(Error::AddFinalizer)?;
        Ok(())
    }
}

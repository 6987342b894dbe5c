//! `modelstudio-controller orphan`: the step before uninstalling. Every selected ModelDeployment
//! and ModelImport gets `deletionPolicy: Orphan` and loses the controller's finalizer, then every
//! credentials Secret that no remaining import needs loses its finalizer and the controller's
//! label too (no resource it manages names it any more), so that deleting a
//! namespace (or the CRDs) later never waits for a controller that is gone. The deployments and
//! jobs stay in Model Studio.

use crate::cli::OrphanArgs;
use crate::config::MANAGER;
use crate::crd::{ModelDeployment, ModelImport, FINALIZER};
use crate::keeper::{CredentialsKeeper, KeeperError};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum OrphanError {
    #[error("could not connect to Kubernetes (check the kubeconfig): {0}")]
    Kube(#[source] kube::Error),
    #[error("could not list ModelImports or ModelDeployments: {0}")]
    List(#[source] kube::Error),
    #[error("could not orphan {kind} {namespace}/{name}: {source}")]
    Patch {
        kind: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error(transparent)]
    Secrets(#[from] KeeperError),
}

/// What was done.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Orphaned {
    pub imports: usize,
    pub deployments: usize,
    pub secrets: usize,
}

pub async fn run(args: &OrphanArgs) -> Result<Orphaned, OrphanError> {
    let client = Client::try_default().await.map_err(OrphanError::Kube)?;
    orphan(client, args).await
}

pub async fn orphan(client: Client, args: &OrphanArgs) -> Result<Orphaned, OrphanError> {
    // The deployments first: none of them then waits for an import, and each keeps serving.
    let deployments =
        orphan_kind(&client, &ApiResource::erase::<ModelDeployment>(&()), args).await?;
    let imports = orphan_kind(&client, &ApiResource::erase::<ModelImport>(&()), args).await?;
    let secrets = CredentialsKeeper::release_unneeded(&client, args.namespace.clone()).await?;
    println!(
        "{imports} ModelImports keep their jobs and {deployments} ModelDeployments their deployments in Model Studio and no longer wait for the controller; {secrets} credentials Secrets released"
    );
    Ok(Orphaned {
        imports,
        deployments,
        secrets,
    })
}

/// Orphans every selected object of one kind; a kind whose CRD is not installed has none.
async fn orphan_kind(
    client: &Client,
    resource: &ApiResource,
    args: &OrphanArgs,
) -> Result<usize, OrphanError> {
    let api: Api<DynamicObject> = match &args.namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    let objects = match api.list(&params).await {
        Ok(list) => list,
        Err(kube::Error::Api(status)) if status.code == 404 => return Ok(0),
        Err(e) => return Err(OrphanError::List(e)),
    };
    let kind = resource.kind.to_lowercase();
    for obj in &objects.items {
        let namespace = obj.namespace().unwrap_or_default();
        let name = obj.name_any();
        let one: Api<DynamicObject> = Api::namespaced_with(client.clone(), &namespace, resource);
        let error = |source| OrphanError::Patch {
            kind: resource.kind.clone(),
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        };
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        let policy = json!({"spec": {"deletionPolicy": "Orphan"}});
        one.patch(&name, &params, &Patch::Merge(&policy))
            .await
            .map_err(error)?;
        if let Some(i) = obj.finalizers().iter().position(|f| f == FINALIZER) {
            let path = format!("/metadata/finalizers/{i}");
            let ops = json!([
                {"op": "test", "path": path, "value": FINALIZER},
                {"op": "remove", "path": path},
            ]);
            let patch: json_patch::Patch =
                serde_json::from_value(ops).map_err(|e| error(kube::Error::SerdeError(e)))?;
            one.patch(&name, &params, &Patch::Json::<()>(patch))
                .await
                .map_err(error)?;
        }
        println!("orphaned {kind} {namespace}/{name}");
    }
    Ok(objects.items.len())
}

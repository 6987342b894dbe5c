//! Export: the ConfigMap an application reads to call the model, written at the end of a pass for
//! either kind, and its `OutputsReady` condition. What it holds and whether the controller may
//! write it are the core's decisions ([`modelstudio_core::outputs`]); this file finds the
//! ConfigMap (in the watch cache of the ConfigMaps the controller wrote, else on the server),
//! creates or rewrites it owned by the resource, deletes the ones it wrote under an earlier name,
//! and writes the condition as a field manager of its own.

use super::conditions::{core_condition, crd_condition};
use super::object::{Object, ObjectKind};
use super::Error;
use crate::config::MANAGER;
use crate::crd::{ModelDeployment, ModelImport};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::reflector::ObjectRef;
use kube::ResourceExt;
use modelstudio_core::credentials::{SecretRef, REGION_FIELD};
use modelstudio_core::outputs::{self, Export, Facts, Found, OUTPUTS_LABEL, OUTPUTS_READY};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The field manager of the `OutputsReady` condition: the status apply (as [`MANAGER`]) never
/// holds it, so neither write undoes the other.
pub const OUTPUTS_MANAGER: &str = "modelstudio-controller-outputs";

/// The keys of the ConfigMap the controller writes; others someone added are left alone.
const KEYS: [&str; 5] = [
    outputs::MODEL_NAME_KEY,
    outputs::BASE_URL_KEY,
    outputs::WORKSPACE_KEY,
    outputs::REGION_KEY,
    outputs::SECRET_KEY,
];

/// What a kind exports at the end of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The ConfigMap's name.
    pub config_map: String,
    /// The name to call the model by, once known.
    pub model: Option<String>,
    /// The Secret the resource's spec names for its key (`None`: the default one).
    pub secret: Option<SecretRef>,
}

/// A kind's conditions as written in its status, for the `OutputsReady` one.
pub trait Conditions {
    fn conditions(&self) -> &[Condition];
}

impl Conditions for ModelImport {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
}

impl Conditions for ModelDeployment {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }
}

/// The `OutputsReady` condition of `obj`, in the core's terms.
pub fn outputs_ready(obj: &impl Conditions) -> Option<modelstudio_core::conditions::Condition> {
    obj.conditions()
        .iter()
        .find(|c| c.type_ == OUTPUTS_READY)
        .map(core_condition)
}

impl<K: ObjectKind> Object<'_, K> {
    /// Writes the outputs ConfigMap `wanted` describes (when the core says so) and the
    /// `OutputsReady` condition.
    pub async fn export(&self, wanted: Wanted) -> Result<(), Error> {
        let data = outputs::data(&self.facts(&wanted).await?);
        let name = wanted.config_map.as_str();
        let mut existing = self.find_config_map(name);
        let mut export = outputs::decide(data.clone(), self.classify(existing.as_deref()));
        // A new name (spec.outputs.configMapName changed) always leads to a create or a rewrite:
        // only then are the ones written under a former name looked for (a scan of the cache,
        // kept off the passes that change nothing). Before the write, so that a failed delete
        // is tried again by the next pass, which still finds the new one to write.
        if matches!(export, Export::Create(_) | Export::Write(_)) {
            self.delete_former_config_maps(name).await?;
        }
        if let Export::Create(data) = &export {
            // Absent from the cache: the one of that name, if any, is not one the controller
            // wrote, and is found on the server when the create is refused.
            if !self.create_config_map(name, data).await? {
                existing = self.read_config_map(name).await?.map(Arc::new);
                export = outputs::decide(Some(data.clone()), self.classify(existing.as_deref()));
            }
        }
        if let (Export::Write(data), Some(existing)) = (&export, &existing) {
            self.rewrite_config_map(existing, data).await?;
        }
        self.record_outputs_condition(&export, name).await
    }

    /// What the ConfigMap says: the model, and where its key is sent.
    async fn facts(&self, wanted: &Wanted) -> Result<Facts, Error> {
        let namespace = self.namespace();
        let (key, secret) = match &self.api_key {
            Some(key) => (Some(key.clone()), self.secret.clone()),
            // The pass did not need the key: it is read now (from the cache, as a pass does).
            None => {
                let chosen = self
                    .ctx
                    .chosen_key(&namespace, wanted.secret.as_ref(), false)
                    .await?;
                (chosen.key, chosen.secret.map(|(name, _)| name))
            }
        };
        let region = secret.as_ref().and_then(|name| {
            let secret = self
                .ctx
                .secrets
                .get(&ObjectRef::new(name).within(&namespace))?;
            let value = secret.data.as_ref()?.get(REGION_FIELD)?;
            Some(String::from_utf8_lossy(&value.0).trim().to_string()).filter(|r| !r.is_empty())
        });
        Ok(Facts {
            model: wanted.model.clone(),
            endpoint: key
                .as_ref()
                .and_then(|k| k.endpoint())
                .unwrap_or(&self.ctx.config.endpoint)
                .to_string(),
            workspace: key.as_ref().and_then(|k| k.workspace()).map(String::from),
            region,
            secret,
        })
    }

    fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace())
    }

    /// The ConfigMap `name` as the watch cache holds it (the ones the controller wrote).
    fn find_config_map(&self, name: &str) -> Option<Arc<ConfigMap>> {
        self.ctx
            .outputs
            .get(&ObjectRef::new(name).within(&self.namespace()))
    }

    /// The ConfigMap `name` as the server holds it.
    async fn read_config_map(&self, name: &str) -> Result<Option<ConfigMap>, Error> {
        self.config_maps()
            .get_opt(name)
            .await
            .map_err(Error::ReadOutputs)
    }

    /// Whose the ConfigMap is: none, this resource's, an earlier one's of the same kind and name
    /// (gone: one name holds one object), or someone else's.
    fn classify(&self, cm: Option<&ConfigMap>) -> Found {
        let Some(cm) = cm else {
            return Found::Absent;
        };
        let controller = cm
            .owner_references()
            .iter()
            .find(|o| o.controller == Some(true));
        let ours_label = cm.labels().contains_key(OUTPUTS_LABEL);
        match controller {
            Some(owner) if Some(&owner.uid) == self.current.meta().uid.as_ref() => Found::Ours {
                data: cm
                    .data
                    .iter()
                    .flatten()
                    .filter(|(k, _)| KEYS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
            Some(owner)
                if ours_label
                    && owner.kind == K::kind(&())
                    && owner.api_version == K::api_version(&())
                    && owner.name == self.name() =>
            {
                Found::Former
            }
            owner => Found::Foreign {
                owner: owner.map(|o| format!("{}/{}", o.kind, o.name)),
            },
        }
    }

    /// The ConfigMap as the controller writes it: labelled, owned by the resource, holding `data`.
    fn config_map(&self, name: &str, data: &BTreeMap<String, String>) -> ConfigMap {
        let owner = OwnerReference {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            name: self.name(),
            uid: self.current.meta().uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: None,
        };
        let mut cm = ConfigMap {
            data: Some(data.clone()),
            ..Default::default()
        };
        cm.metadata.name = Some(name.to_string());
        cm.metadata.namespace = Some(self.namespace());
        cm.metadata.labels = Some(BTreeMap::from([(
            OUTPUTS_LABEL.to_string(),
            K::kind(&()).to_lowercase(),
        )]));
        cm.metadata.owner_references = Some(vec![owner]);
        cm
    }

    /// Creates the ConfigMap; `false` when one of that name exists already.
    async fn create_config_map(
        &self,
        name: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        let params = PostParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        match self
            .config_maps()
            .create(&params, &self.config_map(name, data))
            .await
        {
            Ok(written) => {
                self.note_own_write(&written);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(Error::WriteOutputs(e)),
        }
    }

    /// Rewrites `existing` (one the controller wrote, for this resource or an earlier one of its
    /// name) to hold `data` under its label, owned by this resource. A merge patch, not an apply:
    /// the create wrote those fields as an update, so an apply would leave the former owner
    /// beside the new one; the resourceVersion makes it refused if the ConfigMap changed since
    /// it was read. Other owners, labels and keys someone added stay.
    async fn rewrite_config_map(
        &self,
        existing: &ConfigMap,
        data: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let ours = self.config_map(existing.name_any().as_str(), data);
        let mut owners: Vec<OwnerReference> = existing
            .owner_references()
            .iter()
            .filter(|o| o.controller != Some(true))
            .cloned()
            .collect();
        owners.extend(ours.metadata.owner_references.into_iter().flatten());
        // The controller's keys it no longer writes are removed.
        let mut values: serde_json::Map<String, serde_json::Value> = KEYS
            .iter()
            .map(|k| (k.to_string(), serde_json::Value::Null))
            .collect();
        values.extend(data.iter().map(|(k, v)| (k.clone(), json!(v))));
        let patch = json!({
            "metadata": {
                "resourceVersion": existing.resource_version(),
                "labels": ours.metadata.labels,
                "ownerReferences": owners,
            },
            "data": values,
        });
        let params = PatchParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        let written = self
            .config_maps()
            .patch(&existing.name_any(), &params, &Patch::Merge(&patch))
            .await
            .map_err(Error::WriteOutputs)?;
        self.note_own_write(&written);
        Ok(())
    }

    /// The controller's own write of a ConfigMap wakes no pass through the watch.
    fn note_own_write(&self, written: &ConfigMap) {
        if let (Some(uid), Some(version)) =
            (&written.metadata.uid, &written.metadata.resource_version)
        {
            self.ctx.note_own_write(uid, version);
        }
    }

    /// Deletes the ConfigMaps the controller wrote for this resource under another name
    /// (`spec.outputs.configMapName` changed).
    async fn delete_former_config_maps(&self, name: &str) -> Result<(), Error> {
        let uid = self.current.meta().uid.clone();
        let namespace = self.namespace();
        let former = self.ctx.outputs.state().into_iter().filter(|cm| {
            cm.metadata.namespace.as_deref() == Some(namespace.as_str())
                && cm.metadata.name.as_deref() != Some(name)
                && cm
                    .owner_references()
                    .iter()
                    .any(|o| o.controller == Some(true) && Some(&o.uid) == uid.as_ref())
        });
        for cm in former {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: cm.metadata.uid.clone(),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match self.config_maps().delete(&cm.name_any(), &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
                Err(e) => return Err(Error::WriteOutputs(e)),
            }
        }
        Ok(())
    }

    /// Writes `OutputsReady` when it says something new, as [`OUTPUTS_MANAGER`].
    async fn record_outputs_condition(&self, export: &Export, name: &str) -> Result<(), Error> {
        let current = self.outputs_ready.as_ref();
        let generation = self.current.meta().generation;
        let next = outputs::condition(
            export,
            &K::kind(&()),
            name,
            current,
            generation,
            jiff::Timestamp::now(),
        );
        if !outputs::condition_changed(current, &next) {
            return Ok(());
        }
        let condition = crd_condition(&next);
        let apply = json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": { "conditions": [condition] },
        });
        self.api
            .patch_status(
                &self.name(),
                &PatchParams::apply(OUTPUTS_MANAGER).force(),
                &Patch::Apply(&apply),
            )
            .await
            .map_err(Error::WriteStatus)?;
        Ok(())
    }
}

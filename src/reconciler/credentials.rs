//! The API key: the Secret that spec.apiKeySecretRef names, else the controller's default. Which
//! one is used is the core's choice ([`choose_key`]); this file only reads the Secret.

use super::observe::Io;
use super::Error;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::ResourceExt;
use modelstudio_core::reason::CredentialProblem;
use modelstudio_core::remote::ApiKey;
use modelstudio_core::step::{choose_key, KeySource};

impl Io<'_> {
    /// Reads the credentials, keeps the chosen key for the calls of this reconcile, and returns
    /// the choice for the core.
    pub(super) async fn credentials(
        &mut self,
        deleting: bool,
    ) -> Result<Result<KeySource, CredentialProblem>, Error> {
        let secret = self.secret_key().await?;
        let default = self.ctx.config.default_api_key.clone();
        let read = secret
            .as_ref()
            .map(|r| r.as_ref().map(|_| ()).map_err(Clone::clone));
        let choice = choose_key(read, default.is_some(), deleting);
        self.api_key = match (&choice, secret) {
            (Ok(KeySource::Secret), Some(Ok(key))) => Some(key),
            (Ok(KeySource::Default), _) => default,
            _ => None,
        };
        Ok(choice)
    }

    /// The key in the resource's Secret; `None` when the resource names no Secret.
    async fn secret_key(&self) -> Result<Option<Result<ApiKey, CredentialProblem>>, Error> {
        let Some(reference) = &self.obj.spec.api_key_secret_ref else {
            return Ok(None);
        };
        let secrets: Api<Secret> = Api::namespaced(
            self.ctx.client.clone(),
            &self.obj.namespace().unwrap_or_default(),
        );
        let secret = secrets
            .get_opt(&reference.name)
            .await
            .map_err(Error::ReadSecret)?;
        let Some(secret) = secret else {
            return Ok(Some(Err(CredentialProblem::SecretNotFound {
                name: reference.name.clone(),
            })));
        };
        let Some(bytes) = secret.data.as_ref().and_then(|d| d.get(&reference.key)) else {
            return Ok(Some(Err(CredentialProblem::KeyMissing {
                name: reference.name.clone(),
                key: reference.key.clone(),
            })));
        };
        Ok(Some(
            std::str::from_utf8(&bytes.0)
                .ok()
                .and_then(ApiKey::new)
                .ok_or(CredentialProblem::KeyEmpty {
                    name: reference.name.clone(),
                    key: reference.key.clone(),
                }),
        ))
    }
}

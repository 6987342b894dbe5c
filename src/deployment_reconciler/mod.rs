//! The ModelDeployment reconciler: observe once, decide once (in the core,
//! [`modelstudio_core::deployment_step`]), act, record. Like the ModelImport reconciler, the files
//! of this module only read what the core names, carry out the step and hand the answer back.

pub mod domain;
mod observe;
mod record;

use crate::crd::{ModelDeployment, ModelImport};
use crate::metrics::ReconcileLabels;
use crate::reconciler::{Context, Error};
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use modelstudio_core::decision::Requeue;
use modelstudio_core::deployment_step::{self, Act, Answer, DeploymentStep};
use modelstudio_core::deployments::Deployments;
use std::sync::Arc;
use std::time::Instant;
use tracing::warn;

/// A step's answer may call for one more call (a recovered deployment to delete); no step chains
/// further than this.
const MAX_ACTS: usize = 3;

/// What the deployment reconciles share beyond the import reconciler's context.
pub struct DeploymentContext {
    /// The client, events, metrics, settings, Secrets cache and backoff bookkeeping.
    pub core: Arc<Context>,
    /// The deployment API, behind the same quota and metrics layers as the import API.
    pub deployments: Arc<dyn Deployments>,
    /// The ModelImports' watch cache (the import controller's), for modelImportRef.
    pub imports: Store<ModelImport>,
}

/// Reconciles one ModelDeployment.
pub async fn reconcile(
    obj: Arc<ModelDeployment>,
    ctx: Arc<DeploymentContext>,
) -> Result<Action, Error> {
    let mut io = observe::Io::new(&ctx, &obj);
    let result = one_pass(&mut io).await;
    let labels = ReconcileLabels {
        step: io.plan,
        result: match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        },
    };
    ctx.core
        .metrics
        .deployment_reconciliations
        .get_or_create(&labels)
        .inc();
    result
}

async fn one_pass(io: &mut observe::Io<'_>) -> Result<Action, Error> {
    let started = Instant::now();
    // Observe: every input the core names, each once.
    let mut obs = io.observation();
    while let Some(need) = deployment_step::next_need(&obs) {
        io.observe(&mut obs, need).await?;
    }
    for _ in 0..MAX_ACTS {
        // Decide, record (a create's intent before the create), act, publish.
        let step: DeploymentStep = deployment_step::decide(&obs);
        io.plan = step.plan;
        // A write that leaves nothing scheduled wakes the next reconcile through its watch event.
        io.quiet_writes = !(step.act == Act::Nothing && step.requeue == Requeue::Never);
        // The key's Secret is protected before a deployment that needs it to be deleted exists.
        if step.protect_secret {
            io.protect_secret().await?;
        }
        io.record(&mut obs, step.status.as_ref()).await?;
        let answer: Option<Answer> = io.act(&step.act).await?;
        io.publish(&step.events);
        let Some(answer) = answer else {
            io.ctx
                .core
                .metrics
                .reconcile_duration
                .observe(started.elapsed().as_secs_f64());
            return Ok(io.ctx.core.requeue(&io.key, step.requeue));
        };
        obs.answer = Some(answer);
    }
    warn!(name = %io.name(), "a deployment step chained more calls than any should; looking again later");
    Ok(io.ctx.core.requeue(&io.key, Requeue::Backoff { min: None }))
}

impl observe::Io<'_> {
    /// Carries out the step's finalizer change or remote call; a remote answer goes back to the
    /// core.
    async fn act(&mut self, act: &Act) -> Result<Option<Answer>, Error> {
        match act {
            Act::AddFinalizer => return self.add_finalizer().await.map(|()| None),
            Act::RemoveFinalizer => return self.release().await.map(|()| None),
            _ => {}
        }
        // The core asks for no remote call without a key.
        let Some(key) = self.api_key.clone() else {
            return Ok(None);
        };
        let api = &self.ctx.deployments;
        Ok(match act {
            Act::Nothing | Act::AddFinalizer | Act::RemoveFinalizer => None,
            Act::Create(new) => Some(Answer::Created(api.create(&key, new).await)),
            Act::Scale {
                deployed_model,
                capacity,
            } => Some(Answer::Scaled(
                api.scale(&key, deployed_model, *capacity).await,
            )),
            Act::UpdateLimits {
                deployed_model,
                limits,
            } => Some(Answer::LimitsUpdated(
                api.update_limits(&key, deployed_model, limits).await,
            )),
            Act::Delete { deployed_model } => Some(Answer::Deleted {
                deployed_model: deployed_model.clone(),
                result: api.delete(&key, deployed_model).await,
            }),
        })
    }
}

/// After a Kubernetes-side failure of [`reconcile`], requeue with the same backoff as remote
/// failures.
pub fn error_policy(
    obj: Arc<ModelDeployment>,
    error: &Error,
    ctx: Arc<DeploymentContext>,
) -> Action {
    warn!(name = ?obj.metadata.name, namespace = ?obj.metadata.namespace, error = %error, "deployment reconcile failed");
    ctx.core
        .requeue(&domain::key(&obj), Requeue::Backoff { min: None })
}

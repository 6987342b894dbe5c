//! An in-memory [`Deployments`] for reconciler tests: deployments change state only when the
//! test says so ([`FakeDeployments::finish`], [`FakeDeployments::set_state`]), any call can be
//! made to fail once with a chosen error, and every call is logged. It keeps the API's rules
//! that a reconcile must meet (Conflict on a name in use, capacity a multiple of the base,
//! no scaling of plan lora, at least one limit, NotFound once gone), in the core's domain types.

use crate::fake_calls::CallScript;
use crate::fake_jobs::remote_error;
use async_trait::async_trait;
use modelstudio_core::api::{ApiError, ApiKey, Operation, RemoteError};
use modelstudio_core::deployment::deployments::{
    check_capacity, Deployment, DeploymentPage, DeploymentState, Deployments, Limits,
    NewDeployment, PageRequest, Plan,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    /// By deployed_model; creation order is kept in `order`.
    deployments: BTreeMap<String, Deployment>,
    order: Vec<String>,
    base_capacity: HashMap<String, u32>,
    script: CallScript,

    clock: u64,
}

/// The fake. Every method is synchronous under one lock, so a test reads a consistent state.
#[derive(Default)]
pub struct FakeDeployments {
    state: Mutex<State>,
}

fn refused(code: &str, http_status: u16, message: String) -> RemoteError {
    RemoteError {
        message,
        ..remote_error(code, http_status)
    }
}

fn not_found(deployed_model: &str) -> ApiError {
    ApiError::NotFound(refused(
        "NotFound",
        404,
        format!("Deployed model: {deployed_model} not found!"),
    ))
}

fn invalid(message: String) -> ApiError {
    ApiError::InvalidParameter(refused("InvalidParameter", 400, message))
}

impl FakeDeployments {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next call of `op` fails with the error `make` builds.
    pub fn fail_next(&self, op: Operation, make: impl FnOnce() -> ApiError + Send + 'static) {
        self.state().script.fail_next(op, make);
    }

    /// The base capacity of `model_name` (1 unless set).
    pub fn set_base_capacity(&self, model_name: &str, base_capacity: u32) {
        self.state()
            .base_capacity
            .insert(model_name.to_string(), base_capacity);
    }

    /// Ends the change in progress: PENDING or UPDATING become RUNNING with every unit ready;
    /// DELETING becomes gone.
    pub fn finish(&self, deployed_model: &str) {
        let mut s = self.state();
        let gone = match s.deployments.get_mut(deployed_model) {
            Some(d) if d.status == DeploymentState::Deleting => true,
            Some(d)
                if matches!(
                    d.status,
                    DeploymentState::Pending | DeploymentState::Updating
                ) =>
            {
                set(d, DeploymentState::Running);
                d.ready_capacity = d.capacity;
                false
            }
            _ => false,
        };
        if gone {
            s.deployments.remove(deployed_model);
            s.order.retain(|n| n != deployed_model);
        }
    }

    /// Moves a deployment to `state` (e.g. STOPPED or FAILED, which only the console makes).
    pub fn set_state(&self, deployed_model: &str, state: DeploymentState) {
        if let Some(d) = self.state().deployments.get_mut(deployed_model) {
            d.ready_capacity = match state {
                DeploymentState::Running => d.capacity,
                _ => Some(0),
            };
            set(d, state);
        }
    }

    /// Adds a deployment as if someone (or an earlier create whose answer was lost) had made it.
    pub fn insert(&self, new: &NewDeployment) -> Deployment {
        make(&mut self.state(), new)
    }

    /// Every deployment the API can see, oldest first.
    pub fn deployments(&self) -> Vec<Deployment> {
        let s = self.state();
        s.order
            .iter()
            .filter_map(|n| s.deployments.get(n).cloned())
            .collect()
    }

    /// Every call so far: the operation and the deployment it named.
    pub fn calls(&self) -> Vec<(Operation, Option<String>)> {
        self.state().script.calls().to_vec()
    }

    pub fn count(&self, op: Operation) -> usize {
        self.state().script.count(op)
    }

    /// Logs the call and takes its scripted failure, if one is due.
    fn enter(&self, op: Operation, deployed_model: Option<&str>) -> Result<(), ApiError> {
        let due = self.state().script.enter(op, deployed_model);
        due.map_or(Ok(()), |make| Err(make()))
    }
}

fn set(d: &mut Deployment, state: DeploymentState) {
    d.status_text = state.spelling().to_string();
    d.status = state;
}

fn timestamp(clock: u64) -> String {
    format!(
        "2026-01-01T00:{:02}:{:02}.000",
        (clock / 60) % 60,
        clock % 60
    )
}

fn make(s: &mut State, new: &NewDeployment) -> Deployment {
    s.clock += 1;
    let deployed_model = new.deployed_model();
    let base = s.base_capacity.get(&new.model_name).copied().unwrap_or(1);
    let d = Deployment {
        deployed_model: deployed_model.clone(),
        name: Some(new.name.clone().unwrap_or_else(|| deployed_model.clone())),
        model_name: Some(new.model_name.clone()),
        base_model: Some(new.model_name.clone()),
        status: DeploymentState::Pending,
        status_text: "PENDING".into(),
        plan: new.plan.clone(),
        capacity: Some(new.capacity.unwrap_or(0)),
        base_capacity: Some(base),
        ready_capacity: Some(0),
        rpm_limit: new.rpm_limit,
        tpm_limit: new.tpm_limit,
        enable_thinking: new.enable_thinking,
        max_context_length: new.max_context_length,
        gmt_create: Some(timestamp(s.clock)),
        gmt_modified: Some(timestamp(s.clock)),
    };
    if s.deployments
        .insert(deployed_model.clone(), d.clone())
        .is_none()
    {
        s.order.push(deployed_model);
    }
    d
}

#[async_trait]
impl Deployments for FakeDeployments {
    async fn create(
        &self,
        _key: &ApiKey,
        deployment: &NewDeployment,
    ) -> Result<Deployment, ApiError> {
        self.enter(Operation::DeploymentCreate, None)?;
        if let Some(problem) = deployment.problems().into_iter().next() {
            return Err(invalid(problem));
        }
        let mut s = self.state();
        let name = deployment.deployed_model();
        if s.deployments.contains_key(&name) {
            return Err(ApiError::Conflict(refused(
                "Conflict",
                409,
                format!("Deployed model {name} already exists, please specify a suffix."),
            )));
        }
        let base = s
            .base_capacity
            .get(&deployment.model_name)
            .copied()
            .unwrap_or(1);
        if !matches!(deployment.plan, Some(Plan::Lora | Plan::Ptu)) {
            check_capacity(deployment.capacity.unwrap_or(0), base).map_err(invalid)?;
        }
        Ok(make(&mut s, deployment))
    }

    async fn get(&self, _key: &ApiKey, deployed_model: &str) -> Result<Deployment, ApiError> {
        self.enter(Operation::DeploymentGet, Some(deployed_model))?;
        self.state()
            .deployments
            .get(deployed_model)
            .cloned()
            .ok_or_else(|| not_found(deployed_model))
    }

    async fn list(&self, _key: &ApiKey, page: &PageRequest) -> Result<DeploymentPage, ApiError> {
        self.enter(Operation::DeploymentList, None)?;
        let s = self.state();
        let page_no = page.page_no.unwrap_or(1).max(1);
        let page_size = page.page_size.unwrap_or(10).clamp(1, 100);
        let skip = (page_no as usize - 1).saturating_mul(page_size as usize);
        // Newest first, as the simulator lists them.
        let deployments = s
            .order
            .iter()
            .rev()
            .skip(skip)
            .take(page_size as usize)
            .filter_map(|n| s.deployments.get(n).cloned())
            .collect();
        Ok(DeploymentPage {
            total: s.order.len() as u64,
            page_no,
            page_size,
            items: deployments,
        })
    }

    async fn scale(
        &self,
        _key: &ApiKey,
        deployed_model: &str,
        capacity: u32,
    ) -> Result<Deployment, ApiError> {
        self.enter(Operation::DeploymentScale, Some(deployed_model))?;
        let mut s = self.state();
        let d = s
            .deployments
            .get_mut(deployed_model)
            .ok_or_else(|| not_found(deployed_model))?;
        if d.plan.as_ref().is_some_and(|p| !p.can_scale()) {
            return Err(ApiError::Unsupported(refused(
                "UnsupportedOperation",
                400,
                format!("Deployment {deployed_model} uses plan lora, whose capacity cannot be changed through the API."),
            )));
        }
        if d.status != DeploymentState::Running {
            return Err(ApiError::OperationDenied(refused(
                "OperationDenied",
                400,
                format!(
                    "Deployment {deployed_model} is {} and cannot be scaled now.",
                    d.status
                ),
            )));
        }
        check_capacity(capacity, d.base_capacity.unwrap_or(1)).map_err(invalid)?;
        if d.capacity != Some(capacity) {
            d.ready_capacity = d.capacity;
            d.capacity = Some(capacity);
            set(d, DeploymentState::Updating);
        }
        Ok(d.clone())
    }

    async fn update_limits(
        &self,
        _key: &ApiKey,
        deployed_model: &str,
        limits: &Limits,
    ) -> Result<Deployment, ApiError> {
        self.enter(Operation::DeploymentUpdate, Some(deployed_model))?;
        let mut s = self.state();
        let d = s
            .deployments
            .get_mut(deployed_model)
            .ok_or_else(|| not_found(deployed_model))?;
        if let Some(rpm) = limits.rpm_limit() {
            d.rpm_limit = Some(rpm);
        }
        if let Some(tpm) = limits.tpm_limit() {
            d.tpm_limit = Some(tpm);
        }
        Ok(d.clone())
    }

    async fn delete(
        &self,
        _key: &ApiKey,
        deployed_model: &str,
    ) -> Result<DeploymentState, ApiError> {
        self.enter(Operation::DeploymentDelete, Some(deployed_model))?;
        let mut s = self.state();
        let d = s
            .deployments
            .get_mut(deployed_model)
            .ok_or_else(|| not_found(deployed_model))?;
        d.ready_capacity = Some(0);
        set(d, DeploymentState::Deleting);
        Ok(d.status.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(model: &str, plan: Plan, capacity: u32, suffix: Option<&str>) -> NewDeployment {
        NewDeployment {
            model_name: model.into(),
            capacity: Some(capacity),
            deploy_spec: (plan == Plan::Mu).then(|| "MU1".into()),
            plan: Some(plan),
            suffix: suffix.map(str::to_string),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn deployments_move_only_when_told_and_keep_the_api_rules() {
        let fake = FakeDeployments::new();
        let key = ApiKey::new("sk-x").unwrap();
        fake.set_base_capacity("m", 2);
        let e = fake
            .create(&key, &new("m", Plan::Mu, 3, None))
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::InvalidParameter(_)), "{e}");
        let d = fake
            .create(&key, &new("m", Plan::Mu, 2, None))
            .await
            .unwrap();
        assert_eq!(
            (d.status, d.ready_capacity),
            (DeploymentState::Pending, Some(0))
        );
        let e = fake
            .create(&key, &new("m", Plan::Mu, 2, None))
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::Conflict(_)), "{e}");
        assert!(fake
            .create(&key, &new("m", Plan::Lora, 1, Some("v2")))
            .await
            .is_ok());
        // Not RUNNING yet: scaling is refused until the test moves it.
        let e = fake.scale(&key, "m", 4).await.unwrap_err();
        assert!(matches!(e, ApiError::OperationDenied(_)), "{e}");
        fake.finish("m");
        let d = fake.scale(&key, "m", 4).await.unwrap();
        assert_eq!(
            (d.status, d.capacity, d.ready_capacity),
            (DeploymentState::Updating, Some(4), Some(2))
        );
        fake.finish("m");
        assert!(fake.get(&key, "m").await.unwrap().is_ready_at(4));
        fake.finish("m-v2");
        let e = fake.scale(&key, "m-v2", 2).await.unwrap_err();
        assert!(matches!(e, ApiError::Unsupported(_)), "{e}");
        let limits = Limits::new(Some(60), None).unwrap();
        assert_eq!(
            fake.update_limits(&key, "m", &limits)
                .await
                .unwrap()
                .rpm_limit,
            Some(60)
        );
        let state = fake.delete(&key, "m").await.unwrap();
        assert_eq!(state, DeploymentState::Deleting);
        fake.finish("m");
        assert!(matches!(
            fake.get(&key, "m").await,
            Err(ApiError::NotFound(_))
        ));
        assert!(matches!(
            fake.delete(&key, "m").await,
            Err(ApiError::NotFound(_))
        ));
        assert_eq!(fake.count(Operation::DeploymentDelete), 2);
        assert_eq!(fake.deployments().len(), 1);
    }

    #[tokio::test]
    async fn a_scripted_failure_hits_the_next_call_of_its_operation_only() {
        let fake = FakeDeployments::new();
        let key = ApiKey::new("sk-x").unwrap();
        fake.fail_next(Operation::DeploymentCreate, || {
            ApiError::Server(remote_error("InternalError", 500))
        });
        let d = fake.insert(&new("a", Plan::Lora, 1, None));
        assert!(fake.get(&key, &d.deployed_model).await.is_ok());
        assert!(fake
            .create(&key, &new("b", Plan::Lora, 1, None))
            .await
            .is_err());
        assert!(fake
            .create(&key, &new("b", Plan::Lora, 1, None))
            .await
            .is_ok());
        for i in 0..12 {
            fake.insert(&new(&format!("n{i}"), Plan::Lora, 1, None));
        }
        let page = fake
            .list(
                &key,
                &PageRequest {
                    page_no: Some(2),
                    page_size: Some(10),
                },
            )
            .await
            .unwrap();
        assert_eq!((page.total, page.items.len()), (14, 4));
        assert!(!page.has_more());
        assert_eq!(page.items[3].deployed_model, "a", "newest first");
        assert_eq!(
            fake.calls()[0],
            (Operation::DeploymentGet, Some("a".to_string()))
        );
    }
}

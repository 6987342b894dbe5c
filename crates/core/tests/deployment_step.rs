//! The ModelDeployment step machine case by case. A small world answers each input that
//! `next_need` names (once each, in a bounded loop), `decide` returns the step, and the step's
//! status is recorded as the IO side writes it: onto the copy acted on, before a remote call,
//! whose answer is then decided on in the same observation.

use jiff::{SignedDuration, Timestamp};
use modelstudio_core::api::{ApiError, ApiKey, RemoteError};
use modelstudio_core::conditions::{Condition, FALSE, READY, RECONCILING, STALLED, TRUE};
use modelstudio_core::correlation;
use modelstudio_core::credentials::{CredentialProblem, KeySource};
use modelstudio_core::deletion::DeletionPolicy;
use modelstudio_core::deployment::deployments::{
    Deployment, DeploymentState, Limits, NewDeployment, Plan, PtuCapacity,
};
use modelstudio_core::deployment::reason::DeploymentCode;
use modelstudio_core::deployment::resource::{
    DeploymentPhase, DeploymentResource, DeploymentSpec, DeploymentStatus, ImportView, ModelSource,
};
use modelstudio_core::deployment::step::{
    decide, display_name, next_need, Act, Answer, DeploymentStep, Need, Observation, Seen,
};
use modelstudio_core::events::{Action, EventType};
use modelstudio_core::management::ManagementPolicy;
use modelstudio_core::requeue::{Requeue, Timing};
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "qwen-chat";
const UID: &str = "0f9c1a2b-0000-4000-8000-00000000d001";
const IMPORT: &str = "my-import";
const MODEL: &str = "qwen3-32b-ft-20260101-ab12";
/// The deployment of MODEL without a suffix.
const DM: &str = MODEL;
const POLL: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(120);
/// The fingerprint of the key the deployment was seen with, and of another workspace's key.
const FP_OLD: &str = "sha256:0a1b2c3d4e5f6071";
const FP_NEW: &str = "sha256:9f8e7d6c5b4a3928";

// ---------------------------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------------------------

fn now() -> Timestamp {
    Timestamp::from_second(1_750_000_000).unwrap()
}

fn ago(secs: i64) -> Timestamp {
    now().checked_sub(SignedDuration::from_secs(secs)).unwrap()
}

fn later(secs: i64) -> Timestamp {
    now().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

fn timing() -> Timing {
    Timing {
        poll_interval: POLL,
        create_grace: GRACE,
    }
}

fn from_import() -> ModelSource {
    ModelSource::Import(IMPORT.into())
}

fn from_model() -> ModelSource {
    ModelSource::Model(MODEL.into())
}

fn spec(source: ModelSource) -> DeploymentSpec {
    DeploymentSpec {
        source,
        plan: None,
        capacity: 2,
        deploy_spec: None,
        ptu_capacity: None,
        name: None,
        suffix: None,
        enable_thinking: None,
        max_context_length: None,
        rpm_limit: None,
        tpm_limit: None,
        api_key_secret: None,
        deletion_policy: DeletionPolicy::Delete,
        management: ManagementPolicy::Manage,
        deployed_model: None,
    }
}

/// A resource with the finalizer and nothing remote yet.
fn new_resource(source: ModelSource) -> DeploymentResource {
    DeploymentResource {
        name: NAME.into(),
        uid: UID.into(),
        generation: Some(1),
        deleting: false,
        has_finalizer: true,
        control: Default::default(),
        spec: spec(source),
        status: DeploymentStatus::default(),
    }
}

/// The display name a create for `new_resource` sends.
fn ours() -> String {
    correlation::display_name(NAME, UID)
}

/// A resource that records deployment DM (capacity 2), seen with the key FP_OLD.
fn tracking() -> DeploymentResource {
    let mut r = new_resource(from_model());
    r.status = DeploymentStatus {
        deployed_model: Some(DM.into()),
        model_name: Some(MODEL.into()),
        display_name: Some(ours()),
        remote_status: Some("PENDING".into()),
        phase: Some(DeploymentPhase::Pending),
        capacity: Some(2),
        key_fingerprint: Some(FP_OLD.into()),
        observed_generation: Some(1),
        ..Default::default()
    };
    r
}

/// A resource whose create intent was recorded `secs_ago`, with no deployment recorded.
fn attempted(source: ModelSource, secs_ago: i64) -> DeploymentResource {
    let mut r = new_resource(source);
    r.status = DeploymentStatus {
        model_name: Some(MODEL.into()),
        display_name: Some(ours()),
        create_attempted_at: Some(ago(secs_ago).to_string()),
        phase: Some(DeploymentPhase::Pending),
        key_fingerprint: Some(FP_OLD.into()),
        observed_generation: Some(1),
        ..Default::default()
    };
    r
}

fn with(
    mut r: DeploymentResource,
    change: impl FnOnce(&mut DeploymentResource),
) -> DeploymentResource {
    change(&mut r);
    r
}

fn deleting(r: DeploymentResource) -> DeploymentResource {
    with(r, |r| r.deleting = true)
}

/// Deployment DM as Model Studio reports it: `state`, every unit of `capacity` serving.
fn deployment(state: &str, capacity: u32) -> Deployment {
    Deployment {
        deployed_model: DM.into(),
        name: Some(ours()),
        model_name: Some(MODEL.into()),
        base_model: Some("qwen3-32b".into()),
        status: DeploymentState::parse(state),
        status_text: state.into(),
        plan: None,
        capacity: Some(capacity),
        base_capacity: Some(1),
        ready_capacity: Some(capacity),
        rpm_limit: None,
        tpm_limit: None,
        enable_thinking: None,
        max_context_length: None,
        gmt_create: Some("2026-01-01T10:00:00.68".into()),
        gmt_modified: None,
    }
}

/// Another deployment in the listing, with display name `name`.
fn listed(deployed_model: &str, name: &str, state: &str) -> Deployment {
    Deployment {
        deployed_model: deployed_model.into(),
        name: Some(name.into()),
        ..deployment(state, 2)
    }
}

fn remote(code: &str, http_status: u16) -> RemoteError {
    RemoteError {
        code: code.into(),
        message: format!("{code} message"),
        request_id: Some("req-1".into()),
        http_status,
    }
}

fn not_found() -> ApiError {
    ApiError::NotFound(remote("NotFound", 404))
}

fn invalid() -> ApiError {
    ApiError::InvalidParameter(remote("InvalidParameter", 400))
}

fn denied() -> ApiError {
    ApiError::OperationDenied(remote("OperationDenied", 400))
}

fn unsupported() -> ApiError {
    ApiError::Unsupported(remote("Unsupported", 400))
}

fn server_error() -> ApiError {
    ApiError::Server(remote("InternalError", 500))
}

fn throttled(secs: u64) -> ApiError {
    ApiError::Throttled {
        remote: remote("Throttling", 429),
        retry_after: Some(Duration::from_secs(secs)),
    }
}

fn transport(detail: &str) -> ApiError {
    ApiError::Transport(Arc::new(std::io::Error::other(detail.to_string())))
}

// ---------------------------------------------------------------------------------------------
// The world and the driver
// ---------------------------------------------------------------------------------------------

/// What the IO side would read for each need.
#[derive(Clone)]
struct World {
    /// The copy read past the cache; the cached one when `None`.
    fresh: Option<DeploymentResource>,
    import: Option<ImportView>,
    credentials: Result<KeySource, CredentialProblem>,
    fingerprint: Option<String>,
    deployment: Option<Result<Deployment, ApiError>>,
    listing: Option<Result<Vec<Deployment>, ApiError>>,
}

impl Default for World {
    fn default() -> Self {
        World {
            fresh: None,
            import: None,
            credentials: Ok(KeySource::Default),
            fingerprint: Some(FP_OLD.into()),
            deployment: None,
            listing: None,
        }
    }
}

fn world() -> World {
    World::default()
}

impl World {
    fn import(self, view: ImportView) -> Self {
        World {
            import: Some(view),
            ..self
        }
    }
    fn ready_import(self) -> Self {
        self.import(ImportView::Ready {
            model_name: Some(MODEL.into()),
        })
    }
    fn deployment(self, read: Result<Deployment, ApiError>) -> Self {
        World {
            deployment: Some(read),
            ..self
        }
    }
    fn listing(self, read: Result<Vec<Deployment>, ApiError>) -> Self {
        World {
            listing: Some(read),
            ..self
        }
    }
    fn no_key(self, problem: CredentialProblem) -> Self {
        World {
            credentials: Err(problem),
            fingerprint: None,
            ..self
        }
    }
    fn fingerprint(self, fp: &str) -> Self {
        World {
            fingerprint: Some(fp.into()),
            ..self
        }
    }
}

fn missing_secret() -> CredentialProblem {
    CredentialProblem::SecretNotFound {
        name: "modelstudio-credentials".into(),
    }
}

/// Answers what `next_need` names until it names nothing, each need at most once; the needs in
/// the order asked.
fn observe(o: &mut Observation, w: &World) -> Vec<Need> {
    let mut needs: Vec<Need> = Vec::new();
    while let Some(need) = next_need(o) {
        assert!(needs.len() < 6, "needs do not end: {needs:?} then {need:?}");
        assert!(!needs.contains(&need), "{need:?} asked twice: {needs:?}");
        match &need {
            Need::FreshCopy => o.fresh = Some(w.fresh.clone().unwrap_or_else(|| o.cached.clone())),
            Need::Import(name) => {
                assert_eq!(name, IMPORT);
                o.import = Some(w.import.clone().expect("the import was not expected"));
            }
            Need::Credentials => {
                o.credentials = Some(w.credentials.clone());
                o.key_fingerprint = w.fingerprint.clone();
            }
            Need::Deployment(_) => {
                let read = w
                    .deployment
                    .clone()
                    .expect("a deployment read was not expected");
                o.seen = Some(Seen::Deployment(read));
            }
            Need::Listing => {
                let read = w.listing.clone().expect("a listing was not expected");
                o.seen = Some(Seen::Listing(read));
            }
        }
        needs.push(need);
    }
    needs
}

/// One pass at `at`: the needs, the step, and the observation (to answer an act on).
fn pass_at(
    r: &DeploymentResource,
    w: &World,
    at: Timestamp,
) -> (Vec<Need>, DeploymentStep, Observation) {
    let mut o = Observation::new(at, timing(), r.clone());
    let needs = observe(&mut o, w);
    let step = decide(&o);
    (needs, step, o)
}

fn pass(r: &DeploymentResource, w: &World) -> (Vec<Need>, DeploymentStep, Observation) {
    pass_at(r, w, now())
}

fn step_of(r: &DeploymentResource, w: &World) -> DeploymentStep {
    pass(r, w).1
}

/// The resource after the step's status is written and its finalizer change made.
fn record(r: &DeploymentResource, step: &DeploymentStep) -> DeploymentResource {
    let mut next = r.clone();
    if let Some(status) = &step.status {
        next.status = status.clone();
    }
    match step.act {
        Act::AddFinalizer => next.has_finalizer = true,
        Act::RemoveFinalizer => next.has_finalizer = false,
        _ => {}
    }
    next
}

/// Carries out `step`'s remote call as the IO side does: its status is written first, then the
/// answer is decided on in the same observation.
fn answer(o: &mut Observation, step: &DeploymentStep, answer: Answer) -> DeploymentStep {
    assert!(
        matches!(
            step.act,
            Act::Create(_) | Act::Scale { .. } | Act::UpdateLimits { .. } | Act::Delete { .. }
        ),
        "no remote call to answer: {:?}",
        step.act
    );
    o.fresh = Some(record(o.resource(), step));
    o.answer = Some(answer);
    assert_eq!(next_need(o), None, "an answer needs nothing more");
    decide(o)
}

/// The status the step writes (it must write one).
fn written(step: &DeploymentStep) -> &DeploymentStatus {
    step.status
        .as_ref()
        .unwrap_or_else(|| panic!("no status written: {step:?}"))
}

fn condition<'a>(s: &'a DeploymentStatus, type_: &str) -> &'a Condition {
    s.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {s:?}"))
}

/// Ready, Reconciling and Stalled as written.
fn summary(s: &DeploymentStatus) -> [&str; 3] {
    [READY, RECONCILING, STALLED].map(|t| condition(s, t).status.as_str())
}

const READY_: [&str; 3] = [TRUE, FALSE, FALSE];
const RECONCILING_: [&str; 3] = [FALSE, TRUE, FALSE];
const STALLED_: [&str; 3] = [FALSE, FALSE, TRUE];

/// The reason of the condition that is True.
fn code_in(s: &DeploymentStatus) -> DeploymentCode {
    let c = s
        .conditions
        .iter()
        .find(|c| c.status == TRUE)
        .unwrap_or_else(|| panic!("no condition is True: {s:?}"));
    DeploymentCode::parse(&c.reason).unwrap_or_else(|| panic!("unknown reason {}", c.reason))
}

fn code(step: &DeploymentStep) -> DeploymentCode {
    code_in(written(step))
}

fn message(step: &DeploymentStep) -> String {
    let s = written(step);
    let code = code_in(s);
    s.conditions
        .iter()
        .find(|c| c.reason == code.as_str())
        .map(|c| c.message.clone())
        .unwrap()
}

fn event_reasons(step: &DeploymentStep) -> Vec<&str> {
    step.events.iter().map(|e| e.reason).collect()
}

fn created(step: &DeploymentStep) -> &NewDeployment {
    match &step.act {
        Act::Create(d) => d,
        other => panic!("expected a create, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The finalizer and the fresh copy
// ---------------------------------------------------------------------------------------------

#[test]
fn without_the_finalizer_it_is_added_before_anything_is_read() {
    for source in [from_model(), from_import()] {
        let r = with(new_resource(source), |r| r.has_finalizer = false);
        let (needs, step, _) = pass(&r, &world());
        assert!(needs.is_empty(), "{needs:?}");
        assert_eq!(step.act, Act::AddFinalizer);
        assert_eq!(step.plan, "add_finalizer");
        assert_eq!(step.requeue, Requeue::Never);
        assert!(step.events.is_empty());
        assert!(record(&r, &step).has_finalizer);
    }
}

#[test]
fn a_fresh_copy_is_read_before_any_create() {
    let (needs, step, _) = pass(&new_resource(from_model()), &world());
    assert_eq!(needs, vec![Need::FreshCopy, Need::Credentials]);
    assert_eq!(step.plan, "create");
    assert_eq!(created(&step).model_name, MODEL);
}

#[test]
fn a_fresh_copy_that_records_a_deployment_leads_to_reading_it_never_to_a_create() {
    // The cache lags: it has no deployment, the API server's copy does.
    for source in [from_model(), from_import()] {
        let fresh = with(tracking(), |r| r.spec.source = source.clone());
        let w = World {
            fresh: Some(fresh),
            ..world().deployment(Ok(deployment("RUNNING", 2)))
        };
        let (needs, step, _) = pass(&new_resource(source), &w);
        assert_eq!(
            needs,
            vec![
                Need::FreshCopy,
                Need::Credentials,
                Need::Deployment(DM.into())
            ]
        );
        assert!(!matches!(step.act, Act::Create(_)), "{:?}", step.act);
        assert_eq!(step.plan, "mirror");
        assert_eq!(code(&step), DeploymentCode::DeploymentRunning);
    }
}

// ---------------------------------------------------------------------------------------------
// modelImportRef
// ---------------------------------------------------------------------------------------------

#[test]
fn an_import_that_cannot_be_deployed_from_yet_is_waited_for_without_reading_the_key() {
    let cases = [
        (ImportView::Missing, "does not exist"),
        (
            ImportView::NotReady {
                phase: Some("Running".into()),
            },
            "it is Running",
        ),
        (ImportView::NotReady { phase: None }, "not started"),
        (ImportView::Deleting, "being deleted"),
        (ImportView::Ready { model_name: None }, "names no model"),
    ];
    for (view, words) in cases {
        let (needs, step, _) = pass(&new_resource(from_import()), &world().import(view.clone()));
        assert_eq!(
            needs,
            vec![Need::FreshCopy, Need::Import(IMPORT.into())],
            "{view:?}"
        );
        assert_eq!(step.act, Act::Nothing, "{view:?}");
        assert_eq!(step.plan, "wait_for_import");
        assert_eq!(code(&step), DeploymentCode::WaitingForImport, "{view:?}");
        assert_eq!(summary(written(&step)), RECONCILING_, "{view:?}");
        assert!(
            message(&step).contains(words),
            "{view:?}: {}",
            message(&step)
        );
        assert!(message(&step).contains(IMPORT));
        assert!(step.events.is_empty(), "{view:?}");
        // The import's watch wakes the resource, but the wake can come before the imports'
        // cache shows the change: a look at the poll interval bounds the wait.
        assert_eq!(step.requeue, Requeue::Poll);
        assert_eq!(written(&step).create_attempted_at, None);
    }
}

#[test]
fn a_failed_import_stalls_the_deployment() {
    let view = ImportView::Failed {
        message: "Failed to get files from OSS.".into(),
    };
    let (needs, step, _) = pass(&new_resource(from_import()), &world().import(view));
    assert_eq!(needs, vec![Need::FreshCopy, Need::Import(IMPORT.into())]);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::ImportFailed);
    assert_eq!(summary(written(&step)), STALLED_);
    assert!(message(&step).contains("Failed to get files from OSS"));
    assert_eq!(step.requeue, Requeue::Never);
    // A new stall is announced once, as a Warning named by its reason.
    assert_eq!(step.events.len(), 1);
    assert_eq!(step.events[0].type_, EventType::Warning);
    assert_eq!(step.events[0].reason, "ImportFailed");
    let again = step_of(
        &record(&new_resource(from_import()), &step),
        &world().import(ImportView::Failed {
            message: "Failed to get files from OSS.".into(),
        }),
    );
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(again.status, None);
}

#[test]
fn a_ready_import_is_deployed_with_the_token_in_the_display_name_and_the_intent_recorded() {
    let r = new_resource(from_import());
    let (needs, step, _) = pass(&r, &world().ready_import());
    assert_eq!(
        needs,
        vec![
            Need::FreshCopy,
            Need::Import(IMPORT.into()),
            Need::Credentials
        ]
    );
    assert_eq!(step.plan, "create");
    let sent = created(&step);
    assert_eq!(sent.model_name, MODEL);
    let name = format!("{NAME}-{}", correlation::token(UID));
    assert_eq!(sent.name.as_deref(), Some(name.as_str()));
    assert_eq!(display_name(&r), name);
    // The intent goes into the status written before the create is sent, in the same step.
    let s = written(&step);
    assert_eq!(s.create_attempted_at, Some(now().to_string()));
    assert_eq!(s.display_name.as_deref(), Some(name.as_str()));
    assert_eq!(s.model_name.as_deref(), Some(MODEL));
    assert_eq!(s.deployed_model, None);
    assert_eq!(s.phase, Some(DeploymentPhase::Pending));
    assert_eq!(s.observed_generation, Some(1));
    // The key too: the deployment will live in its workspace, where the recovery looks.
    assert_eq!(s.key_fingerprint.as_deref(), Some(FP_OLD));
    assert_eq!(code(&step), DeploymentCode::Creating);
    assert_eq!(summary(s), RECONCILING_);
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::Poll);
}

#[test]
fn the_spec_name_is_the_display_name_with_the_token() {
    let r = with(new_resource(from_model()), |r| {
        r.spec.name = Some("Chat for support".into())
    });
    let step = step_of(&r, &world());
    let expected = correlation::display_name("Chat for support", UID);
    assert!(expected.starts_with("Chat for support-"));
    assert_eq!(created(&step).name.as_deref(), Some(expected.as_str()));
    assert_eq!(written(&step).display_name, Some(expected));
}

// ---------------------------------------------------------------------------------------------
// modelName and the create request
// ---------------------------------------------------------------------------------------------

#[test]
fn a_model_name_is_deployed_directly_with_every_field_of_the_spec() {
    let r = with(new_resource(from_model()), |r| {
        r.spec.plan = Some(Plan::Mu);
        r.spec.deploy_spec = Some("MU1".into());
        r.spec.capacity = 4;
        r.spec.suffix = Some("v2".into());
        r.spec.enable_thinking = Some(false);
        r.spec.max_context_length = Some(32_768);
        r.spec.rpm_limit = Some(100);
        r.spec.tpm_limit = Some(50_000);
    });
    let step = step_of(&r, &world());
    assert_eq!(
        created(&step),
        &NewDeployment {
            model_name: MODEL.into(),
            capacity: Some(4),
            plan: Some(Plan::Mu),
            deploy_spec: Some("MU1".into()),
            ptu_capacity: None,
            name: Some(ours()),
            suffix: Some("v2".into()),
            enable_thinking: Some(false),
            max_context_length: Some(32_768),
            rpm_limit: Some(100),
            tpm_limit: Some(50_000),
        }
    );
}

#[test]
fn ptu_is_sized_by_its_throughput_and_lora_keeps_its_capacity() {
    let ptu = PtuCapacity {
        input_tpm: 10_000,
        output_tpm: 1_000,
    };
    let r = with(new_resource(from_model()), |r| {
        r.spec.plan = Some(Plan::Ptu);
        r.spec.ptu_capacity = Some(ptu);
    });
    let sent = step_of(&r, &world());
    assert_eq!(created(&sent).capacity, None);
    assert_eq!(created(&sent).ptu_capacity, Some(ptu));

    let r = with(new_resource(from_model()), |r| {
        r.spec.plan = Some(Plan::Lora)
    });
    let sent = step_of(&r, &world());
    assert_eq!(created(&sent).capacity, Some(2));
    assert_eq!(created(&sent).plan, Some(Plan::Lora));
}

#[test]
fn a_spec_that_breaks_a_rule_stalls_without_a_create_until_the_spec_changes() {
    // The CRD's schema would refuse it; built by hand, the core must refuse it too.
    let broken = with(new_resource(from_model()), |r| r.spec.plan = Some(Plan::Mu));
    let (_, step, _) = pass(&broken, &world());
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.plan, "stalled");
    assert_eq!(code(&step), DeploymentCode::InvalidSpec);
    assert_eq!(summary(written(&step)), STALLED_);
    assert!(message(&step).contains("deploy_spec"), "{}", message(&step));
    assert_eq!(written(&step).create_attempted_at, None);
    assert_eq!(step.requeue, Requeue::Never);
    assert_eq!(event_reasons(&step), vec!["InvalidSpec"]);

    // The same generation again: nothing is tried, read or written.
    let stalled = record(&broken, &step);
    let (needs, again, _) = pass(&stalled, &world());
    assert_eq!(needs, vec![Need::FreshCopy]);
    assert_eq!(again.act, Act::Nothing);
    assert_eq!(again.status, None);
    assert!(again.events.is_empty());
    assert_eq!(again.requeue, Requeue::Never);

    // An unknown plan breaks a rule too.
    let gold = with(new_resource(from_model()), |r| {
        r.spec.plan = Some(Plan::parse("gold"))
    });
    let step = step_of(&gold, &world());
    assert_eq!(step.act, Act::Nothing);
    assert!(
        message(&step).contains("plan must be"),
        "{}",
        message(&step)
    );

    // A new generation that fixes the spec is created.
    let fixed = with(stalled, |r| {
        r.generation = Some(2);
        r.spec.deploy_spec = Some("MU1".into());
    });
    let step = step_of(&fixed, &world());
    assert_eq!(created(&step).deploy_spec.as_deref(), Some("MU1"));
    assert_eq!(code(&step), DeploymentCode::Creating);
    assert_eq!(written(&step).observed_generation, Some(2));
}

#[test]
fn a_missing_key_is_reported_before_a_create_and_nothing_is_sent() {
    let (needs, step, _) = pass(
        &new_resource(from_model()),
        &world().no_key(missing_secret()),
    );
    assert_eq!(needs, vec![Need::FreshCopy, Need::Credentials]);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::CredentialsMissing);
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
    // Not deleting: no hint about orphaning.
    assert!(!message(&step).contains("Orphan"), "{}", message(&step));
}

// ---------------------------------------------------------------------------------------------
// The answer to a create
// ---------------------------------------------------------------------------------------------

/// The create step of a new resource with `change`, and its observation.
fn create_step(change: impl FnOnce(&mut DeploymentResource)) -> (DeploymentStep, Observation) {
    let (_, step, o) = pass(&with(new_resource(from_model()), change), &world());
    created(&step);
    (step, o)
}

#[test]
fn a_created_deployment_is_recorded_and_the_intent_cleared() {
    let (step, mut o) = create_step(|_| {});
    let done = answer(&mut o, &step, Answer::Created(Ok(deployment("PENDING", 2))));
    assert_eq!(done.plan, "create");
    assert_eq!(done.act, Act::Nothing);
    let s = written(&done);
    assert_eq!(s.deployed_model.as_deref(), Some(DM));
    assert_eq!(s.create_attempted_at, None);
    assert_eq!(s.display_name, Some(ours()));
    assert_eq!(s.remote_status.as_deref(), Some("PENDING"));
    assert_eq!(s.phase, Some(DeploymentPhase::Pending));
    assert_eq!(s.capacity, Some(2));
    assert_eq!(s.key_fingerprint.as_deref(), Some(FP_OLD));
    assert_eq!(code(&done), DeploymentCode::DeploymentPending);
    assert_eq!(done.events.len(), 1);
    assert_eq!(done.events[0].reason, "Created");
    assert_eq!(done.events[0].type_, EventType::Normal);
    assert_eq!(done.events[0].action, Action::CreateDeployment);
    assert!(done.events[0].note.contains(DM));
    assert_eq!(done.requeue, Requeue::Poll);
}

#[test]
fn a_conflict_stalls_naming_the_deployment_with_its_suffix() {
    let (step, mut o) = create_step(|r| r.spec.suffix = Some("v2".into()));
    let done = answer(
        &mut o,
        &step,
        Answer::Created(Err(ApiError::Conflict(remote("Conflict", 409)))),
    );
    assert_eq!(done.act, Act::Nothing);
    assert_eq!(code(&done), DeploymentCode::DeployedModelConflict);
    assert_eq!(summary(written(&done)), STALLED_);
    assert!(
        message(&done).contains(&format!("{MODEL}-v2")),
        "{}",
        message(&done)
    );
    assert_eq!(written(&done).create_attempted_at, None);
    assert_eq!(done.requeue, Requeue::Never);
    assert_eq!(event_reasons(&done), vec!["DeployedModelConflict"]);

    // Not sent again at this generation: it would conflict again.
    let stalled = record(o.resource(), &done);
    let (needs, again, _) = pass(&stalled, &world());
    assert_eq!(needs, vec![Need::FreshCopy]);
    assert_eq!(again.act, Act::Nothing);
    assert_eq!(again.status, None);
    // A new suffix is a new generation, and a new create.
    let renamed = with(stalled, |r| {
        r.generation = Some(2);
        r.spec.suffix = Some("v3".into());
    });
    assert_eq!(
        created(&step_of(&renamed, &world())).deployed_model(),
        format!("{MODEL}-v3")
    );
}

#[test]
fn a_refused_create_stalls_and_certainly_made_nothing() {
    for (err, code_) in [
        (invalid(), DeploymentCode::InvalidSpec),
        (not_found(), DeploymentCode::ModelNotFound),
    ] {
        let (step, mut o) = create_step(|_| {});
        let done = answer(&mut o, &step, Answer::Created(Err(err)));
        assert_eq!(code(&done), code_);
        assert_eq!(summary(written(&done)), STALLED_);
        assert_eq!(written(&done).create_attempted_at, None, "{code_:?}");
        assert_eq!(written(&done).deployed_model, None);
        assert_eq!(done.requeue, Requeue::Never);
        if code_ == DeploymentCode::ModelNotFound {
            assert!(message(&done).contains(MODEL), "{}", message(&done));
        }
        // The stall holds at this generation: the next pass creates nothing.
        let after = record(o.resource(), &done);
        let again = step_of(&after, &world());
        assert_eq!(again.act, Act::Nothing, "{code_:?}");
        assert_eq!(again.status, None);
    }
}

#[test]
fn a_create_without_an_answer_keeps_its_intent() {
    for err in [
        ApiError::Timeout(Duration::from_secs(30)),
        transport("connection reset by peer"),
        server_error(),
    ] {
        assert!(!err.create_certainly_not_applied(), "{err}");
        let (step, mut o) = create_step(|_| {});
        let done = answer(&mut o, &step, Answer::Created(Err(err)));
        assert_eq!(code(&done), DeploymentCode::CreateUnconfirmed);
        assert_eq!(summary(written(&done)), RECONCILING_);
        assert_eq!(
            written(&done).create_attempted_at,
            Some(now().to_string()),
            "the intent must survive for the recovery"
        );
        assert_eq!(done.requeue, Requeue::Backoff { min: None });
        assert_eq!(done.act, Act::Nothing);
    }
}

#[test]
fn a_throttled_create_made_nothing_and_waits_the_asked_delay() {
    let (step, mut o) = create_step(|_| {});
    let done = answer(&mut o, &step, Answer::Created(Err(throttled(9))));
    assert_eq!(code(&done), DeploymentCode::Throttled);
    assert_eq!(written(&done).create_attempted_at, None);
    assert_eq!(
        done.requeue,
        Requeue::Backoff {
            min: Some(Duration::from_secs(9))
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Recovery of a create whose answer was lost
// ---------------------------------------------------------------------------------------------

fn stranger() -> Deployment {
    listed("other-model", "someone-else-abcdefgh", "RUNNING")
}

#[test]
fn the_one_deployment_carrying_the_display_name_is_adopted() {
    let r = attempted(from_model(), 300);
    let w = world().listing(Ok(vec![stranger(), deployment("PENDING", 2)]));
    let (needs, step, _) = pass(&r, &w);
    assert_eq!(
        needs,
        vec![Need::FreshCopy, Need::Credentials, Need::Listing]
    );
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.plan, "recover");
    let s = written(&step);
    assert_eq!(s.deployed_model.as_deref(), Some(DM));
    assert_eq!(s.create_attempted_at, None);
    assert_eq!(code(&step), DeploymentCode::DeploymentPending);
    assert_eq!(event_reasons(&step), vec!["Recovered"]);
    assert_eq!(step.events[0].action, Action::RecoverDeployment);
}

#[test]
fn two_deployments_carrying_the_display_name_stall_without_a_create() {
    let r = attempted(from_model(), 300);
    let w = world().listing(Ok(vec![
        deployment("RUNNING", 2),
        listed(&format!("{MODEL}-x"), &ours(), "PENDING"),
        stranger(),
    ]));
    let step = step_of(&r, &w);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::CreateAmbiguous);
    assert_eq!(summary(written(&step)), STALLED_);
    let m = message(&step);
    assert!(m.contains(DM) && m.contains(&format!("{MODEL}-x")), "{m}");
    assert_eq!(written(&step).deployed_model, None);
    // The cure is a deletion in Model Studio, which does not wake the resource: it is looked at
    // again at the resync (never would leave it stalled for good).
    assert_eq!(step.requeue, Requeue::Resync);
    assert_eq!(event_reasons(&step), vec!["CreateAmbiguous"]);

    // Once a person deleted the extra one, the one left is adopted; nothing is created.
    let stalled = record(&r, &step);
    let left = world().listing(Ok(vec![deployment("RUNNING", 2), stranger()]));
    let step = step_of(&stalled, &left);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(written(&step).deployed_model.as_deref(), Some(DM));
    assert_eq!(written(&step).create_attempted_at, None);
    assert_eq!(code(&step), DeploymentCode::DeploymentRunning);
}

#[test]
fn nothing_listed_within_the_grace_is_looked_for_again_without_a_create() {
    for (secs_ago, wait) in [(100, 20), (10, 30)] {
        let r = attempted(from_model(), secs_ago);
        let step = step_of(&r, &world().listing(Ok(vec![stranger()])));
        assert_eq!(step.act, Act::Nothing);
        assert_eq!(code(&step), DeploymentCode::CreateUnconfirmed);
        assert_eq!(summary(written(&step)), RECONCILING_);
        // The rest of the grace, at most a poll interval.
        assert_eq!(step.requeue, Requeue::After(Duration::from_secs(wait)));
        assert_eq!(
            written(&step).create_attempted_at,
            Some(ago(secs_ago).to_string())
        );
    }
}

#[test]
fn nothing_listed_after_the_grace_is_created_again_with_a_new_intent() {
    let r = attempted(from_model(), 300);
    let step = step_of(&r, &world().listing(Ok(vec![stranger()])));
    assert_eq!(created(&step).name, Some(ours()));
    assert_eq!(step.plan, "create");
    assert_eq!(written(&step).create_attempted_at, Some(now().to_string()));
    assert_eq!(code(&step), DeploymentCode::Creating);
}

#[test]
fn nothing_listed_with_another_workspaces_key_is_no_proof_that_nothing_was_made() {
    // The create went out with FP_OLD; the key now in use lists another workspace.
    let w = world().fingerprint(FP_NEW).listing(Ok(vec![stranger()]));
    let step = step_of(&attempted(from_model(), 300), &w);
    assert_eq!(step.act, Act::Nothing, "created again in another workspace");
    assert_eq!(code(&step), DeploymentCode::WorkspaceChanged);
    assert_eq!(
        written(&step).create_attempted_at,
        Some(ago(300).to_string())
    );
    assert_eq!(written(&step).key_fingerprint.as_deref(), Some(FP_OLD));

    // While deleting: not let go, since the deployment may be billed in the other workspace.
    let step = step_of(&deleting(attempted(from_model(), 300)), &w);
    assert_eq!(step.act, Act::Nothing, "released");
    assert_eq!(code(&step), DeploymentCode::WorkspaceChanged);
    assert!(message(&step).contains("Orphan"), "{}", message(&step));

    // Found there all the same: adopted, whatever the key.
    let w = world()
        .fingerprint(FP_NEW)
        .listing(Ok(vec![deployment("RUNNING", 2)]));
    let step = step_of(&attempted(from_model(), 300), &w);
    assert_eq!(written(&step).deployed_model.as_deref(), Some(DM));
}

#[test]
fn a_failed_listing_is_retried_without_a_create() {
    for (err, code_) in [
        (server_error(), DeploymentCode::RemoteUnavailable),
        (
            ApiError::InvalidApiKey(remote("InvalidApiKey", 401)),
            DeploymentCode::InvalidApiKey,
        ),
    ] {
        let r = attempted(from_model(), 300);
        let step = step_of(&r, &world().listing(Err(err)));
        assert_eq!(step.act, Act::Nothing);
        assert_eq!(code(&step), code_);
        assert_eq!(summary(written(&step)), RECONCILING_);
        assert!(matches!(step.requeue, Requeue::Backoff { .. }));
        assert_eq!(
            written(&step).create_attempted_at,
            Some(ago(300).to_string())
        );
    }
}

#[test]
fn a_missing_key_during_recovery_creates_nothing() {
    let r = attempted(from_model(), 300);
    let (needs, step, _) = pass(&r, &world().no_key(missing_secret()));
    assert_eq!(needs, vec![Need::FreshCopy, Need::Credentials]);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::CredentialsMissing);
}

#[test]
fn recovery_happens_even_when_the_import_is_no_longer_ready() {
    for view in [
        ImportView::Missing,
        ImportView::Deleting,
        ImportView::NotReady { phase: None },
    ] {
        let r = attempted(from_import(), 300);
        let w = world()
            .import(view.clone())
            .listing(Ok(vec![deployment("RUNNING", 2)]));
        let (needs, step, _) = pass(&r, &w);
        assert_eq!(
            needs[..3],
            [Need::FreshCopy, Need::Credentials, Need::Listing]
        );
        assert_eq!(step.act, Act::Nothing);
        assert_eq!(
            written(&step).deployed_model.as_deref(),
            Some(DM),
            "{view:?}"
        );
        assert!(event_reasons(&step).contains(&"Recovered"));

        // Not listed yet, within the grace: still looked for, not waited on the import.
        let r = attempted(from_import(), 10);
        let step = step_of(&r, &world().import(view.clone()).listing(Ok(vec![])));
        assert_eq!(code(&step), DeploymentCode::CreateUnconfirmed, "{view:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Mirroring the deployment
// ---------------------------------------------------------------------------------------------

fn mirror(d: Deployment) -> DeploymentStep {
    let (needs, step, _) = pass(&tracking(), &world().deployment(Ok(d)));
    assert_eq!(needs, vec![Need::Credentials, Need::Deployment(DM.into())]);
    step
}

#[test]
fn a_pending_deployment_is_polled() {
    // DEPLOYING is the official SDK's state between PENDING and RUNNING: in progress too.
    for status in ["PENDING", "DEPLOYING"] {
        let step = mirror(deployment(status, 2));
        assert_eq!(step.plan, "mirror");
        assert_eq!(step.act, Act::Nothing);
        assert_eq!(code(&step), DeploymentCode::DeploymentPending, "{status}");
        assert_eq!(summary(written(&step)), RECONCILING_);
        assert_eq!(written(&step).phase, Some(DeploymentPhase::Pending));
        assert_eq!(written(&step).remote_status.as_deref(), Some(status));
        assert_eq!(step.requeue, Requeue::Poll);
    }
}

#[test]
fn running_at_the_spec_capacity_is_ready_and_announced_once() {
    let step = mirror(deployment("RUNNING", 2));
    assert_eq!(code(&step), DeploymentCode::DeploymentRunning);
    assert_eq!(summary(written(&step)), READY_);
    let s = written(&step);
    assert_eq!(s.phase, Some(DeploymentPhase::Running));
    assert_eq!(s.remote_status.as_deref(), Some("RUNNING"));
    assert_eq!(s.ready_capacity, Some(2));
    assert_eq!(s.base_capacity, Some(1));
    assert_eq!(s.created_at.as_deref(), Some("2026-01-01T10:00:00.68"));
    assert_eq!(step.requeue, Requeue::Resync);
    assert_eq!(event_reasons(&step), vec!["Running"]);
    assert_eq!(step.events[0].type_, EventType::Normal);

    // Already Ready: no new event, and nothing to write.
    let ready = record(&tracking(), &step);
    let (_, again, _) = pass(&ready, &world().deployment(Ok(deployment("RUNNING", 2))));
    assert!(again.events.is_empty(), "{:?}", again.events);
    assert_eq!(again.status, None);
    assert_eq!(again.requeue, Requeue::Resync);
}

#[test]
fn running_with_units_still_starting_is_not_ready() {
    let step = mirror(Deployment {
        ready_capacity: Some(1),
        ..deployment("RUNNING", 2)
    });
    assert_eq!(code(&step), DeploymentCode::DeploymentUpdating);
    assert_eq!(summary(written(&step)), RECONCILING_);
    assert!(message(&step).contains("1 of 2"), "{}", message(&step));
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::Poll);
    assert_eq!(step.act, Act::Nothing);
}

#[test]
fn each_remote_state_has_its_reason() {
    let cases = [
        (
            "UPDATING",
            DeploymentCode::DeploymentUpdating,
            RECONCILING_,
            Some(DeploymentPhase::Updating),
            Requeue::Poll,
        ),
        (
            "STOPPED",
            DeploymentCode::DeploymentStopped,
            STALLED_,
            Some(DeploymentPhase::Stopped),
            Requeue::Resync,
        ),
        (
            "FAILED",
            DeploymentCode::DeploymentFailed,
            STALLED_,
            Some(DeploymentPhase::Failed),
            Requeue::Resync,
        ),
        (
            "DELETING",
            DeploymentCode::DeploymentDeleting,
            RECONCILING_,
            Some(DeploymentPhase::Deleting),
            Requeue::Poll,
        ),
        // A state this controller does not know keeps the phase it had.
        (
            "PAUSED",
            DeploymentCode::UnknownDeploymentStatus,
            RECONCILING_,
            Some(DeploymentPhase::Pending),
            Requeue::Poll,
        ),
    ];
    for (state, code_, conditions, phase, requeue) in cases {
        let step = mirror(deployment(state, 2));
        assert_eq!(code(&step), code_, "{state}");
        assert_eq!(summary(written(&step)), conditions, "{state}");
        assert_eq!(written(&step).phase, phase, "{state}");
        assert_eq!(written(&step).remote_status.as_deref(), Some(state));
        assert_eq!(step.requeue, requeue, "{state}");
        assert_eq!(step.act, Act::Nothing, "{state}");
        let warned = step.events.iter().any(|e| e.type_ == EventType::Warning);
        assert_eq!(warned, conditions == STALLED_, "{state}: {:?}", step.events);
    }
    // Deleted outside the controller: says so.
    let step = mirror(deployment("DELETING", 2));
    assert!(message(&step).contains("outside"), "{}", message(&step));
    let step = mirror(deployment("PAUSED", 2));
    assert!(message(&step).contains("PAUSED"));
}

#[test]
fn a_deployment_gone_from_the_same_workspace_stalls() {
    let (_, step, _) = pass(&tracking(), &world().deployment(Err(not_found())));
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::DeploymentNotFound);
    assert_eq!(summary(written(&step)), STALLED_);
    assert_eq!(written(&step).deployed_model.as_deref(), Some(DM));
    assert_eq!(event_reasons(&step), vec!["DeploymentNotFound"]);
}

#[test]
fn a_deployment_not_found_with_another_workspaces_key_is_not_taken_as_gone() {
    let w = world().fingerprint(FP_NEW).deployment(Err(not_found()));
    let step = step_of(&tracking(), &w);
    assert_eq!(code(&step), DeploymentCode::WorkspaceChanged);
    assert_eq!(summary(written(&step)), STALLED_);
    let m = message(&step);
    assert!(m.contains(FP_OLD) && m.contains(FP_NEW), "{m}");
    // The recorded fingerprint stays: it says which workspace holds the deployment.
    assert_eq!(written(&step).key_fingerprint.as_deref(), Some(FP_OLD));
}

#[test]
fn a_failed_read_is_retried_with_its_reason() {
    let step = step_of(&tracking(), &world().deployment(Err(throttled(7))));
    assert_eq!(code(&step), DeploymentCode::Throttled);
    assert_eq!(
        step.requeue,
        Requeue::Backoff {
            min: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(step.act, Act::Nothing);
    let step = step_of(&tracking(), &world().deployment(Err(server_error())));
    assert_eq!(code(&step), DeploymentCode::RemoteUnavailable);
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
}

#[test]
fn a_missing_key_while_mirroring_reads_nothing() {
    let (needs, step, _) = pass(&tracking(), &world().no_key(missing_secret()));
    assert_eq!(needs, vec![Need::Credentials]);
    assert_eq!(code(&step), DeploymentCode::CredentialsMissing);
    assert_eq!(step.act, Act::Nothing);
}

// ---------------------------------------------------------------------------------------------
// Scale
// ---------------------------------------------------------------------------------------------

/// A deployment recorded at capacity 2 whose spec now asks for 4, on `plan`.
fn scaled_up(plan: Option<Plan>) -> DeploymentResource {
    with(tracking(), |r| {
        r.spec.capacity = 4;
        r.spec.plan = plan;
    })
}

fn running_at_2() -> World {
    world().deployment(Ok(deployment("RUNNING", 2)))
}

#[test]
fn a_running_deployment_below_the_spec_capacity_is_scaled() {
    for plan in [None, Some(Plan::Cu)] {
        let step = step_of(&scaled_up(plan.clone()), &running_at_2());
        assert_eq!(
            step.act,
            Act::Scale {
                deployed_model: DM.into(),
                capacity: 4
            },
            "{plan:?}"
        );
        assert_eq!(step.plan, "scale");
        assert_eq!(code(&step), DeploymentCode::DeploymentUpdating);
        assert!(message(&step).contains("from 2 to 4"), "{}", message(&step));
        assert_eq!(step.requeue, Requeue::Poll);
    }
}

#[test]
fn a_deployment_is_scaled_only_once_it_runs() {
    for state in ["PENDING", "UPDATING"] {
        let step = step_of(
            &scaled_up(None),
            &world().deployment(Ok(deployment(state, 2))),
        );
        assert_eq!(step.act, Act::Nothing, "{state}");
        assert_eq!(step.requeue, Requeue::Poll);
    }
}

#[test]
fn a_lora_deployment_is_not_scaled_but_stalls() {
    let step = step_of(&scaled_up(Some(Plan::Lora)), &running_at_2());
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::ScaleUnsupported);
    assert_eq!(summary(written(&step)), STALLED_);
    assert!(message(&step).contains("back to 2"), "{}", message(&step));
}

#[test]
fn a_ptu_deployment_is_never_scaled() {
    let r = with(scaled_up(Some(Plan::Ptu)), |r| {
        r.spec.ptu_capacity = Some(PtuCapacity {
            input_tpm: 10_000,
            output_tpm: 1_000,
        })
    });
    let step = step_of(&r, &running_at_2());
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::DeploymentRunning);
}

/// The scale step and its observation.
fn scale_step() -> (DeploymentStep, Observation) {
    let (_, step, o) = pass(&scaled_up(None), &running_at_2());
    assert!(matches!(step.act, Act::Scale { .. }));
    (step, o)
}

#[test]
fn the_answers_to_a_scale() {
    // Accepted: the deployment updates towards 4.
    let (step, mut o) = scale_step();
    let d = Deployment {
        ready_capacity: Some(2),
        ..deployment("UPDATING", 4)
    };
    let done = answer(&mut o, &step, Answer::Scaled(Ok(d)));
    assert_eq!(done.act, Act::Nothing);
    assert_eq!(code(&done), DeploymentCode::DeploymentUpdating);
    assert_eq!(written(&done).capacity, Some(4));
    assert_eq!(written(&done).phase, Some(DeploymentPhase::Updating));
    assert_eq!(event_reasons(&done), vec!["Scaled"]);
    assert_eq!(done.requeue, Requeue::Poll);

    let (step, mut o) = scale_step();
    let done = answer(&mut o, &step, Answer::Scaled(Err(unsupported())));
    assert_eq!(code(&done), DeploymentCode::ScaleUnsupported);
    assert_eq!(summary(written(&done)), STALLED_);
    assert_eq!(done.requeue, Requeue::Never);

    let (step, mut o) = scale_step();
    let done = answer(&mut o, &step, Answer::Scaled(Err(invalid())));
    assert_eq!(code(&done), DeploymentCode::CapacityRefused);
    assert_eq!(summary(written(&done)), STALLED_);
    assert!(message(&done).contains("capacity 4"), "{}", message(&done));
    assert_eq!(done.requeue, Requeue::Never);

    // Busy (e.g. updating already): waits and polls.
    let (step, mut o) = scale_step();
    let done = answer(&mut o, &step, Answer::Scaled(Err(denied())));
    assert_eq!(code(&done), DeploymentCode::DeploymentUpdating);
    assert_eq!(summary(written(&done)), RECONCILING_);
    assert_eq!(done.requeue, Requeue::Poll);

    let (step, mut o) = scale_step();
    let done = answer(&mut o, &step, Answer::Scaled(Err(server_error())));
    assert_eq!(code(&done), DeploymentCode::RemoteUnavailable);
    assert_eq!(done.act, Act::Nothing);
}

#[test]
fn a_refused_scale_is_not_retried_at_this_generation_but_still_mirrors() {
    for refusal in [invalid(), unsupported()] {
        let (step, mut o) = scale_step();
        let done = answer(&mut o, &step, Answer::Scaled(Err(refusal.clone())));
        let stalled = record(o.resource(), &done);
        let stall = code_in(&stalled.status);

        // The deployment changed a little meanwhile: it is mirrored, not scaled.
        let w = world().deployment(Ok(Deployment {
            base_capacity: Some(2),
            ..deployment("RUNNING", 2)
        }));
        let again = step_of(&stalled, &w);
        assert_eq!(again.act, Act::Nothing, "{refusal}: retried");
        assert!(again.events.is_empty(), "{:?}", again.events);
        let s = written(&again);
        assert_eq!(s.base_capacity, Some(2));
        assert_eq!(s.remote_status.as_deref(), Some("RUNNING"));
        assert_eq!(code_in(s), stall, "the stall is kept");
        assert_eq!(s.conditions, stalled.status.conditions);

        // A new generation (same capacity asked) is tried again.
        let next = with(stalled, |r| r.generation = Some(2));
        let again = step_of(&next, &running_at_2());
        assert!(
            matches!(again.act, Act::Scale { capacity: 4, .. }),
            "{refusal}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// A mu deployment whose spec asks for rpm 100 and tpm 5000; it runs at rpm 50, tpm 5000.
fn limited(plan: Option<Plan>) -> (DeploymentResource, World) {
    let r = with(tracking(), |r| {
        r.spec.plan = plan;
        r.spec.deploy_spec = Some("MU1".into());
        r.spec.rpm_limit = Some(100);
        r.spec.tpm_limit = Some(5_000);
    });
    let w = world().deployment(Ok(Deployment {
        rpm_limit: Some(50),
        tpm_limit: Some(5_000),
        ..deployment("RUNNING", 2)
    }));
    (r, w)
}

#[test]
fn differing_limits_of_a_mu_deployment_are_updated_alone() {
    let (r, w) = limited(Some(Plan::Mu));
    let step = step_of(&r, &w);
    assert_eq!(
        step.act,
        Act::UpdateLimits {
            deployed_model: DM.into(),
            limits: Limits::new(Some(100), None).unwrap(),
        }
    );
    assert_eq!(step.plan, "update_limits");
    assert_eq!(code(&step), DeploymentCode::DeploymentUpdating);
    assert_eq!(step.requeue, Requeue::Poll);
}

#[test]
fn limits_of_another_plan_stall_without_a_call() {
    for (plan, words) in [(Some(Plan::Cu), "is cu"), (None, "cu (the default)")] {
        let (r, w) = limited(plan);
        let step = step_of(&r, &w);
        assert_eq!(step.act, Act::Nothing);
        assert_eq!(code(&step), DeploymentCode::LimitsUnsupported);
        assert_eq!(summary(written(&step)), STALLED_);
        assert!(message(&step).contains(words), "{}", message(&step));
    }
}

#[test]
fn the_answers_to_a_limits_update() {
    let (r, w) = limited(Some(Plan::Mu));
    let updated = Deployment {
        rpm_limit: Some(100),
        tpm_limit: Some(5_000),
        ..deployment("RUNNING", 2)
    };
    let (_, step, mut o) = pass(&r, &w);
    let done = answer(&mut o, &step, Answer::LimitsUpdated(Ok(updated.clone())));
    assert_eq!(event_reasons(&done), vec!["LimitsUpdated", "Running"]);
    assert!(done.events[0].note.contains("rpm 100"));
    assert_eq!(code(&done), DeploymentCode::DeploymentRunning);
    // Next pass: the limits agree, nothing more to do.
    let after = record(o.resource(), &done);
    let again = step_of(&after, &world().deployment(Ok(updated)));
    assert_eq!(again.act, Act::Nothing);
    assert_eq!(again.status, None);

    for (err, code_, requeue) in [
        (
            unsupported(),
            DeploymentCode::LimitsUnsupported,
            Requeue::Never,
        ),
        (invalid(), DeploymentCode::InvalidSpec, Requeue::Never),
        (denied(), DeploymentCode::DeploymentUpdating, Requeue::Poll),
    ] {
        let (_, step, mut o) = pass(&r, &w);
        let done = answer(&mut o, &step, Answer::LimitsUpdated(Err(err)));
        assert_eq!(code(&done), code_);
        assert_eq!(done.requeue, requeue, "{code_:?}");
        assert_eq!(done.act, Act::Nothing);
        // A refusal is not retried at this generation.
        if code_ != DeploymentCode::DeploymentUpdating {
            let stalled = record(o.resource(), &done);
            let again = step_of(&stalled, &w);
            assert_eq!(again.act, Act::Nothing, "{code_:?}: retried");
            assert_eq!(again.status, None, "{code_:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deletion
// ---------------------------------------------------------------------------------------------

#[test]
fn an_orphaned_deployment_is_let_go_without_a_call() {
    let r = deleting(with(tracking(), |r| {
        r.spec.deletion_policy = DeletionPolicy::Orphan
    }));
    let (needs, step, _) = pass(&r, &world());
    assert!(needs.is_empty(), "{needs:?}");
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(step.plan, "release");
    assert_eq!(event_reasons(&step), vec!["Orphaned"]);
    assert!(step.events[0].note.contains(DM));
    assert_eq!(written(&step).phase, Some(DeploymentPhase::Deleting));
}

#[test]
fn nothing_recorded_is_let_go_at_once() {
    let r = deleting(new_resource(from_import()));
    let (needs, step, _) = pass(&r, &world());
    assert!(needs.is_empty(), "{needs:?}");
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::Never);
}

#[test]
fn without_the_finalizer_a_deleted_resource_is_left_alone() {
    let r = deleting(with(tracking(), |r| r.has_finalizer = false));
    let (needs, step, _) = pass(&r, &world());
    assert!(needs.is_empty());
    assert_eq!(step.act, Act::Nothing);
    assert!(step.events.is_empty());
}

#[test]
fn a_recorded_deployment_is_read_then_deleted_unless_already_deleting() {
    let (needs, step, _) = pass(
        &deleting(tracking()),
        &world().deployment(Ok(deployment("RUNNING", 2))),
    );
    assert_eq!(needs, vec![Need::Credentials, Need::Deployment(DM.into())]);
    assert_eq!(
        step.act,
        Act::Delete {
            deployed_model: DM.into()
        }
    );
    assert_eq!(step.plan, "delete");
    assert_eq!(code(&step), DeploymentCode::DeploymentDeleting);
    assert_eq!(written(&step).phase, Some(DeploymentPhase::Deleting));
    assert_eq!(step.requeue, Requeue::Poll);

    let step = step_of(
        &deleting(tracking()),
        &world().deployment(Ok(deployment("DELETING", 2))),
    );
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::DeploymentDeleting);
    assert_eq!(step.requeue, Requeue::Poll);
}

#[test]
fn a_recorded_deployment_no_longer_found_lets_the_resource_go() {
    let step = step_of(&deleting(tracking()), &world().deployment(Err(not_found())));
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(event_reasons(&step), vec!["Deleted"]);
    assert!(step.events[0].note.contains(DM));

    // Not found with another workspace's key: kept, not released.
    let w = world().fingerprint(FP_NEW).deployment(Err(not_found()));
    let step = step_of(&deleting(tracking()), &w);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::WorkspaceChanged);

    // Any other failed read: retried, not released.
    let step = step_of(
        &deleting(tracking()),
        &world().deployment(Err(server_error())),
    );
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::RemoteUnavailable);
}

#[test]
fn the_answers_to_a_delete() {
    let delete_step = || {
        let (_, step, o) = pass(
            &deleting(tracking()),
            &world().deployment(Ok(deployment("RUNNING", 2))),
        );
        assert!(matches!(step.act, Act::Delete { .. }));
        (step, o)
    };

    let (step, mut o) = delete_step();
    let done = answer(&mut o, &step, deleted(&step, Ok(DeploymentState::Deleting)));
    assert_eq!(done.act, Act::Nothing);
    assert_eq!(written(&done).phase, Some(DeploymentPhase::Deleting));
    assert_eq!(written(&done).remote_status.as_deref(), Some("DELETING"));
    assert_eq!(event_reasons(&done), vec!["Deleted"]);
    assert_eq!(done.requeue, Requeue::Poll);

    let (step, mut o) = delete_step();
    let done = answer(&mut o, &step, deleted(&step, Err(not_found())));
    assert_eq!(done.act, Act::RemoveFinalizer);
    assert_eq!(event_reasons(&done), vec!["Deleted"]);

    let (step, mut o) = delete_step();
    let done = answer(&mut o, &step, deleted(&step, Err(denied())));
    assert_eq!(done.act, Act::Nothing);
    assert_eq!(code(&done), DeploymentCode::DeletionBlocked);
    assert!(message(&done).contains("Orphan"), "{}", message(&done));
    assert_eq!(done.requeue, Requeue::Poll);

    let (step, mut o) = delete_step();
    let done = answer(&mut o, &step, deleted(&step, Err(server_error())));
    assert_eq!(done.act, Act::Nothing);
    assert_eq!(code(&done), DeploymentCode::RemoteUnavailable);
}

#[test]
fn a_missing_key_while_deleting_says_how_to_orphan_and_keeps_the_finalizer() {
    for r in [deleting(tracking()), deleting(attempted(from_model(), 300))] {
        let (needs, step, _) = pass(&r, &world().no_key(missing_secret()));
        assert_eq!(needs, vec![Need::Credentials]);
        assert_eq!(step.act, Act::Nothing);
        assert_eq!(code(&step), DeploymentCode::CredentialsMissing);
        assert!(
            message(&step).contains("deletionPolicy to Orphan"),
            "{}",
            message(&step)
        );
        assert_eq!(step.requeue, Requeue::Backoff { min: None });
    }
}

#[test]
fn a_create_attempted_but_not_recorded_is_looked_for_before_letting_go() {
    let other = format!("{MODEL}-x");
    let r = deleting(attempted(from_model(), 300));

    // Ours, not yet deleting: deleted.
    let w = world().listing(Ok(vec![stranger(), deployment("RUNNING", 2)]));
    let (needs, step, _) = pass(&r, &w);
    assert_eq!(needs, vec![Need::Credentials, Need::Listing]);
    assert_eq!(
        step.act,
        Act::Delete {
            deployed_model: DM.into()
        }
    );

    // One of two already deleting: the other is deleted.
    let w = world().listing(Ok(vec![
        deployment("DELETING", 2),
        listed(&other, &ours(), "RUNNING"),
    ]));
    assert_eq!(
        step_of(&r, &w).act,
        Act::Delete {
            deployed_model: other.clone()
        }
    );

    // All deleting: waited for.
    let w = world().listing(Ok(vec![deployment("DELETING", 2)]));
    let step = step_of(&r, &w);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::DeploymentDeleting);
    assert_eq!(step.requeue, Requeue::Poll);

    // None after the grace: let go.
    let step = step_of(&r, &world().listing(Ok(vec![stranger()])));
    assert_eq!(step.act, Act::RemoveFinalizer);

    // None within the grace: looked for again.
    let young = deleting(attempted(from_model(), 100));
    let step = step_of(&young, &world().listing(Ok(vec![])));
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::CreateUnconfirmed);
    assert_eq!(step.requeue, Requeue::After(Duration::from_secs(20)));

    // A failed listing: retried, never released.
    let step = step_of(&r, &world().listing(Err(server_error())));
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(code(&step), DeploymentCode::RemoteUnavailable);
}

#[test]
fn two_deployments_of_an_unrecorded_create_are_both_deleted_before_letting_go() {
    let other = format!("{MODEL}-x");
    let r = deleting(attempted(from_model(), 300));
    let both = vec![deployment("RUNNING", 2), listed(&other, &ours(), "RUNNING")];
    let (_, step, mut o) = pass(&r, &world().listing(Ok(both)));
    assert_eq!(
        step.act,
        Act::Delete {
            deployed_model: DM.into()
        }
    );
    // The answer records no deployment: the intent stays, so the next pass lists again.
    let after = answer(&mut o, &step, deleted(&step, Ok(DeploymentState::Deleting)));
    let r = record(o.resource(), &after);
    assert_eq!(r.status.deployed_model, None);
    assert!(r.status.create_attempted_at.is_some());
    assert_eq!(after.requeue, Requeue::Poll);
    let w = world().listing(Ok(vec![
        deployment("DELETING", 2),
        listed(&other, &ours(), "RUNNING"),
    ]));
    assert_eq!(
        step_of(&r, &w).act,
        Act::Delete {
            deployed_model: other.clone()
        }
    );
    // A NotFound to the DELETE of an unrecorded one is no release either: list again.
    let (_, step, mut o) = pass(&r, &w);
    let after = answer(&mut o, &step, deleted(&step, Err(not_found())));
    assert_eq!(after.act, Act::Nothing);
    assert_eq!(after.requeue, Requeue::Poll);
}

// ---------------------------------------------------------------------------------------------
// Status writes
// ---------------------------------------------------------------------------------------------

#[test]
fn the_same_observation_twice_writes_nothing_the_second_time() {
    let cases: [(DeploymentResource, World); 4] = [
        (tracking(), world().deployment(Ok(deployment("RUNNING", 2)))),
        (tracking(), world().deployment(Ok(deployment("PENDING", 2)))),
        (
            new_resource(from_import()),
            world().import(ImportView::NotReady {
                phase: Some("Running".into()),
            }),
        ),
        (tracking(), world().deployment(Err(not_found()))),
    ];
    for (r, w) in cases {
        let first = step_of(&r, &w);
        assert!(first.status.is_some());
        let second = step_of(&record(&r, &first), &w);
        assert_eq!(second.status, None, "{:?}", first.status);
        assert!(second.events.is_empty());
        assert_eq!(second.act, first.act);
        assert_eq!(second.requeue, first.requeue);
    }
}

#[test]
fn last_transition_time_moves_only_when_a_condition_status_changes() {
    let r0 = tracking();
    let (_, step, _) = pass_at(
        &r0,
        &world().deployment(Ok(deployment("PENDING", 2))),
        now(),
    );
    let r1 = record(&r0, &step);
    for t in [READY, RECONCILING, STALLED] {
        assert_eq!(condition(&r1.status, t).last_transition_time, now());
    }

    // Another Reconciling reason a minute later: every condition keeps its status.
    let (_, step, _) = pass_at(
        &r1,
        &world().deployment(Ok(deployment("UPDATING", 2))),
        later(60),
    );
    let r2 = record(&r1, &step);
    assert_eq!(
        condition(&r2.status, RECONCILING).reason,
        "DeploymentUpdating"
    );
    for t in [READY, RECONCILING, STALLED] {
        assert_eq!(condition(&r2.status, t).last_transition_time, now(), "{t}");
    }

    // Running: Ready and Reconciling flip, Stalled does not.
    let (_, step, _) = pass_at(
        &r2,
        &world().deployment(Ok(deployment("RUNNING", 2))),
        later(120),
    );
    let r3 = record(&r2, &step);
    assert_eq!(
        condition(&r3.status, READY).last_transition_time,
        later(120)
    );
    assert_eq!(
        condition(&r3.status, RECONCILING).last_transition_time,
        later(120)
    );
    assert_eq!(condition(&r3.status, STALLED).last_transition_time, now());
}

#[test]
fn conditions_set_by_others_are_kept() {
    let mut r = tracking();
    let foreign = Condition {
        type_: "Audited".into(),
        status: TRUE.into(),
        reason: "Checked".into(),
        message: "checked by someone else".into(),
        observed_generation: Some(1),
        last_transition_time: ago(3600),
    };
    r.status.conditions.push(foreign.clone());
    let step = step_of(&r, &world().deployment(Ok(deployment("RUNNING", 2))));
    assert!(written(&step).conditions.contains(&foreign));
}

// ---------------------------------------------------------------------------------------------
// The API key
// ---------------------------------------------------------------------------------------------

#[test]
fn the_api_key_never_appears_in_a_status_or_an_event() {
    let key = ApiKey::new("sk-canary-7f3e9d2c1b0a").unwrap();
    // Errors as a careless client might build them: with the key formatted into their text.
    let leaky = |code: &str, http| RemoteError {
        message: format!("request with key {key} ({key:?}) failed"),
        ..remote(code, http)
    };
    let errors = || {
        vec![
            ApiError::InvalidApiKey(leaky("InvalidApiKey", 401)),
            ApiError::AccessDenied(leaky("AccessDenied", 403)),
            ApiError::NotFound(leaky("NotFound", 404)),
            ApiError::InvalidParameter(leaky("InvalidParameter", 400)),
            ApiError::Conflict(leaky("Conflict", 409)),
            ApiError::OperationDenied(leaky("OperationDenied", 400)),
            ApiError::Unsupported(leaky("Unsupported", 400)),
            ApiError::Server(leaky("InternalError", 500)),
            ApiError::Throttled {
                remote: leaky("Throttling", 429),
                retry_after: None,
            },
            transport(&format!("sending with {key:?}")),
            ApiError::Timeout(Duration::from_secs(30)),
        ]
    };
    let mut steps: Vec<DeploymentStep> = Vec::new();
    for err in errors() {
        steps.push(step_of(&tracking(), &world().deployment(Err(err.clone()))));
        steps.push(step_of(
            &deleting(tracking()),
            &world().deployment(Err(err.clone())),
        ));
        steps.push(step_of(
            &attempted(from_model(), 300),
            &world().listing(Err(err.clone())),
        ));
        let (step, mut o) = create_step(|r| r.spec.suffix = Some("v2".into()));
        steps.push(answer(&mut o, &step, Answer::Created(Err(err.clone()))));
        let (step, mut o) = scale_step();
        steps.push(answer(&mut o, &step, Answer::Scaled(Err(err.clone()))));
        let (r, w) = limited(Some(Plan::Mu));
        let (_, step, mut o) = pass(&r, &w);
        steps.push(answer(
            &mut o,
            &step,
            Answer::LimitsUpdated(Err(err.clone())),
        ));
        let (_, step, mut o) = pass(
            &deleting(tracking()),
            &world().deployment(Ok(deployment("RUNNING", 2))),
        );
        steps.push(answer(&mut o, &step, deleted(&step, Err(err))));
    }
    for problem in [
        missing_secret(),
        CredentialProblem::KeyEmpty {
            name: "s".into(),
            key: "api-key".into(),
        },
    ] {
        steps.push(step_of(&tracking(), &world().no_key(problem.clone())));
        steps.push(step_of(&deleting(tracking()), &world().no_key(problem)));
    }
    steps.push(step_of(
        &tracking(),
        &world().fingerprint(FP_NEW).deployment(Err(not_found())),
    ));
    assert!(steps.len() > 70);
    for step in &steps {
        let mut texts: Vec<String> = step.events.iter().map(|e| e.note.clone()).collect();
        if let Some(s) = &step.status {
            texts.extend(s.conditions.iter().map(|c| c.message.clone()));
        }
        // Everything else the step carries, too.
        texts.push(format!("{step:?}"));
        for text in texts {
            assert!(!text.contains(key.expose()), "the key leaked: {text}");
        }
    }
    // The errors did reach the messages (redacted): the scan looked at real text.
    assert!(steps.iter().any(|s| s.status.as_ref().is_some_and(|st| st
        .conditions
        .iter()
        .any(|c| c.message.contains("<redacted>")))));
}

/// The answer to the DELETE `step` asked for: a DELETE answers only the state.
fn deleted(step: &DeploymentStep, result: Result<DeploymentState, ApiError>) -> Answer {
    let Act::Delete { deployed_model } = &step.act else {
        panic!("the step asked for no delete: {:?}", step.act);
    };
    Answer::Deleted {
        deployed_model: deployed_model.clone(),
        result,
    }
}

#[test]
fn a_paused_deployment_makes_no_call_keeps_ready_and_lets_go_uncalled_when_deleted() {
    // Ready and running, then paused.
    let running = mirror(deployment("RUNNING", 2));
    let mut r = record(&tracking(), &running);
    r.control.paused = true;
    let (needs, step, _) = pass(&r, &world());
    assert!(needs.is_empty(), "no key, no read: {needs:?}");
    assert_eq!(step.plan, "paused");
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.requeue, Requeue::Never);
    let s = written(&step);
    assert_eq!(condition(s, READY).status, TRUE, "Ready as it was");
    let reconciling = condition(s, RECONCILING);
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        (FALSE, "Paused")
    );
    assert_eq!(condition(s, STALLED).status, FALSE);
    // Paused and asked to reconcile: nothing is read, and the request waits for the unpause.
    let mut asked = record(&r, &step);
    asked.control.reconcile_requested_at = Some("1".into());
    let (needs, step, _) = pass(&asked, &world());
    assert!(needs.is_empty());
    assert_eq!(step.status, None, "nothing new to write");
    // Deleted while paused: released at once, no call, and a Warning says the deployment stays.
    let (needs, step, _) = pass(&deleting(asked), &world());
    assert!(needs.is_empty(), "{needs:?}");
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(event_reasons(&step), vec!["Orphaned"]);
    assert_eq!(step.events[0].type_, EventType::Warning);
    assert!(
        step.events[0].note.contains("paused"),
        "{}",
        step.events[0].note
    );
}

#[test]
fn an_observed_deployment_is_adopted_by_name_and_mirrored_never_created_scaled_or_deleted() {
    // Observed: no model to deploy, no import to wait for; the spec names the deployment.
    let mut r = new_resource(from_model());
    r.spec.management = ManagementPolicy::Observe;
    r.spec.deployed_model = Some(DM.into());
    // Its spec asks for another capacity than the deployment has: nothing is scaled.
    r.spec.capacity = 8;
    let (needs, step, _) = pass(&r, &world().deployment(Ok(deployment("RUNNING", 2))));
    assert_eq!(needs, vec![Need::Credentials, Need::Deployment(DM.into())]);
    assert_eq!(step.plan, "observe");
    assert_eq!(step.act, Act::Nothing, "never created, scaled or updated");
    assert!(!step.protect_secret);
    assert_eq!(event_reasons(&step), vec!["Adopted", "Running"]);
    let s = written(&step);
    assert_eq!(s.deployed_model.as_deref(), Some(DM));
    assert_eq!(s.capacity, Some(2), "the deployment as it is");
    assert_eq!(condition(s, READY).status, TRUE);
    let reconciling = condition(s, RECONCILING);
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        (FALSE, "Observing")
    );
    // Next passes read the recorded deployment and announce nothing new.
    let r = record(&r, &step);
    let (needs, step, _) = pass(&r, &world().deployment(Ok(deployment("RUNNING", 2))));
    assert_eq!(needs, vec![Need::Credentials, Need::Deployment(DM.into())]);
    assert_eq!(step.act, Act::Nothing);
    assert!(step.events.is_empty(), "{:?}", step.events);
    // Deleted: let go without a call, and an event says the deployment stays.
    let (needs, step, _) = pass(&deleting(r), &world());
    assert!(needs.is_empty(), "{needs:?}");
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(event_reasons(&step), vec!["Orphaned"]);
    assert_eq!(step.events[0].type_, EventType::Normal);
    assert!(
        step.events[0].note.contains("Observe"),
        "{}",
        step.events[0].note
    );
}

#[test]
fn an_observed_deployment_without_a_name_stalls_and_one_gone_is_not_found() {
    let mut r = new_resource(from_model());
    r.spec.management = ManagementPolicy::Observe;
    let (needs, step, _) = pass(&r, &world());
    assert!(needs.is_empty(), "{needs:?}");
    assert_eq!(step.act, Act::Nothing);
    let s = written(&step);
    assert_eq!(condition(s, STALLED).reason, "ObservedWithoutDeployedModel");
    r.spec.deployed_model = Some(DM.into());
    let gone = ApiError::NotFound(RemoteError {
        code: "NotFound".into(),
        message: "Deployment not found.".into(),
        request_id: None,
        http_status: 404,
    });
    let (_, step, _) = pass(&r, &world().deployment(Err(gone)));
    assert_eq!(step.act, Act::Nothing, "never created in its place");
    assert_eq!(
        condition(written(&step), STALLED).reason,
        "DeploymentNotFound"
    );
}

//! Property tests over the decisions: the next step (`plan`, also from a whole resource through
//! `step::snapshot`), what a job means (`observe_job`), what a failed call means (`on_api_error`,
//! `on_delete`, `on_delete_denied`) and the status builder (`next_status`, `conditions_for`,
//! `merge_conditions`). The response decoder's properties are the controller crate's
//! (tests/properties.rs there), since the wire format is its business.
//!
//! Nothing here may panic on any input: every error becomes a condition a person can read, and
//! every outcome says when to look again.

use std::time::Duration;

use jiff::Timestamp;
use modelstudio_core::api::{ApiError, RemoteError, RemoteFailure};
use modelstudio_core::conditions::{
    merge_conditions, Condition, Meaning, READY, RECONCILING, STALLED,
};
use modelstudio_core::credentials::CredentialProblem;
use modelstudio_core::deletion::DeletionPolicy;
use modelstudio_core::import::decision::{
    observe_job, on_api_error, on_delete, on_delete_denied, plan, Call, DeletionOutcome, PassPlan,
    ReleaseReason, Snapshot,
};
use modelstudio_core::import::jobs::{Job, JobState, Source, Storage, WeightType};
use modelstudio_core::import::reason::{Code, Reason, Unconfirmed};
use modelstudio_core::import::resource::{ImportStatus, Phase, Resource, Spec};
use modelstudio_core::import::status::{conditions_for, next_status, Update};
use modelstudio_core::import::step::snapshot;
use modelstudio_core::requeue::Requeue;
use proptest::prelude::*;

const CASES: u32 = 384;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,24}",
        any::<String>(),
        prop::sample::select(
            &[
                "",
                "PENDING",
                "RUNNING",
                "SUCCESSED",
                "SUCCEEDED",
                "FAILED",
                "InvalidParameter",
                "NotFound",
                "OperationDenied",
                "InvalidApiKey",
                "Throttling.RateQuota",
                "InternalError",
                "200",
                "Success",
            ][..]
        )
        .prop_map(str::to_string),
    ]
}

fn arb_status() -> impl Strategy<Value = u16> {
    prop_oneof![
        0u16..1000,
        prop::sample::select(
            &[200u16, 201, 204, 301, 400, 401, 403, 404, 409, 429, 500, 502, 503, 504][..]
        ),
    ]
}

fn arb_retry_after() -> impl Strategy<Value = Option<Duration>> {
    prop::option::of((0u64..100_000).prop_map(Duration::from_secs))
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

// ---------------------------------------------------------------------------------------------
// (b) The decision logic
// ---------------------------------------------------------------------------------------------

const OPERATIONS: [Call; 5] = [
    Call::Create,
    Call::Recover,
    Call::Adopt,
    Call::Poll,
    Call::Delete,
];

fn arb_job_id() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(&["j1", "j2", ""][..]).prop_map(str::to_string),
        "[A-Za-z0-9-]{1,12}",
    ])
}

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        prop::option::of(0i64..4),
        any::<bool>(),
        any::<bool>(),
        prop::bool::ANY.prop_map(|o| {
            if o {
                DeletionPolicy::Orphan
            } else {
                DeletionPolicy::Delete
            }
        }),
        arb_job_id(),
        arb_job_id(),
        prop::option::of(0i64..4),
        any::<bool>(),
        (prop::bool::weighted(0.2), prop::bool::weighted(0.3)),
    )
        .prop_map(
            |(
                generation,
                deleting,
                has_finalizer,
                deletion_policy,
                spec,
                status,
                stalled,
                attempted,
                (paused, observe),
            )| {
                Snapshot {
                    generation,
                    deleting,
                    has_finalizer,
                    deletion_policy,
                    spec_job_id: spec,
                    status_job_id: status,
                    stalled_generation: stalled,
                    create_attempted: attempted,
                    paused,
                    observe,
                }
            },
        )
}

fn arb_remote() -> impl Strategy<Value = RemoteError> {
    (
        arb_text(),
        arb_text(),
        prop::option::of("[a-f0-9-]{0,36}"),
        arb_status(),
    )
        .prop_map(|(code, message, request_id, http_status)| RemoteError {
            code,
            message,
            request_id,
            http_status,
        })
}

/// Every way a call fails. `ApiError` holds a boxed cause and is not `Clone`, so a case is kept
/// as its recipe and built as often as needed; a connect or transport failure gets a plain
/// `std::io::Error` as its cause.
#[derive(Debug, Clone)]
enum ErrSpec {
    InvalidParameter(RemoteError),
    NotFound(RemoteError),
    OperationDenied(RemoteError),
    Conflict(RemoteError),
    Unsupported(RemoteError),
    InvalidApiKey(RemoteError),
    AccessDenied(RemoteError),
    Throttled(RemoteError, Option<Duration>),
    Server(RemoteError),
    Unknown(RemoteError),
    UnexpectedBody(u16, String, Option<Duration>),
    Malformed(u16, String, Option<String>),
    Timeout(Duration),
    Connect(String),
    Transport(String),
}

impl ErrSpec {
    fn build(&self) -> ApiError {
        match self.clone() {
            ErrSpec::InvalidParameter(r) => ApiError::InvalidParameter(r),
            ErrSpec::NotFound(r) => ApiError::NotFound(r),
            ErrSpec::OperationDenied(r) => ApiError::OperationDenied(r),
            ErrSpec::Conflict(r) => ApiError::Conflict(r),
            ErrSpec::Unsupported(r) => ApiError::Unsupported(r),
            ErrSpec::InvalidApiKey(r) => ApiError::InvalidApiKey(r),
            ErrSpec::AccessDenied(r) => ApiError::AccessDenied(r),
            ErrSpec::Throttled(remote, retry_after) => ApiError::Throttled {
                remote,
                retry_after,
            },
            ErrSpec::Server(r) => ApiError::Server(r),
            ErrSpec::Unknown(r) => ApiError::Unknown(r),
            ErrSpec::UnexpectedBody(status, excerpt, retry_after) => ApiError::UnexpectedBody {
                status,
                excerpt,
                retry_after,
            },
            ErrSpec::Malformed(status, detail, request_id) => ApiError::MalformedResponse {
                status,
                detail,
                request_id,
            },
            ErrSpec::Timeout(d) => ApiError::Timeout(d),
            ErrSpec::Connect(cause) => ApiError::Connect(std::sync::Arc::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                cause,
            ))),
            ErrSpec::Transport(cause) => {
                ApiError::Transport(std::sync::Arc::new(std::io::Error::other(cause)))
            }
        }
    }
}

fn arb_error() -> impl Strategy<Value = ErrSpec> {
    prop_oneof![
        arb_remote().prop_map(ErrSpec::InvalidParameter),
        arb_remote().prop_map(ErrSpec::NotFound),
        arb_remote().prop_map(ErrSpec::OperationDenied),
        arb_remote().prop_map(ErrSpec::Conflict),
        arb_remote().prop_map(ErrSpec::Unsupported),
        arb_remote().prop_map(ErrSpec::InvalidApiKey),
        arb_remote().prop_map(ErrSpec::AccessDenied),
        (arb_remote(), arb_retry_after()).prop_map(|(r, d)| ErrSpec::Throttled(r, d)),
        arb_remote().prop_map(ErrSpec::Server),
        arb_remote().prop_map(ErrSpec::Unknown),
        (arb_status(), arb_text(), arb_retry_after())
            .prop_map(|(s, e, d)| ErrSpec::UnexpectedBody(s, e, d)),
        (
            arb_status(),
            arb_text(),
            prop::option::of("[a-f0-9-]{1,36}")
        )
            .prop_map(|(s, d, r)| ErrSpec::Malformed(s, d, r)),
        (0u64..600).prop_map(|s| ErrSpec::Timeout(Duration::from_secs(s))),
        arb_text().prop_map(ErrSpec::Connect),
        arb_text().prop_map(ErrSpec::Transport),
    ]
}

fn arb_remote_status_text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(
            &[
                "PENDING",
                "RUNNING",
                "SUCCESSED",
                "SUCCEEDED",
                "FAILED",
                "pending",
                " Failed ",
                "succeeded\n",
                "CANCELLED",
                "",
            ][..]
        )
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

fn arb_state() -> impl Strategy<Value = JobState> {
    prop_oneof![
        Just(JobState::Pending),
        Just(JobState::Running),
        Just(JobState::Succeeded),
        Just(JobState::Failed),
        any::<String>().prop_map(JobState::Unknown),
    ]
}

/// A job as a client reports it: its state usually read from the status text as the HTTP client
/// does, sometimes any state with any text (as another implementation might report it).
fn arb_job() -> impl Strategy<Value = Job> {
    (
        "[A-Za-z0-9-]{0,16}",
        arb_remote_status_text(),
        prop::option::weighted(0.25, arb_state()),
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
        prop::option::of((arb_text(), arb_text())),
    )
        .prop_map(
            |(
                id,
                status_text,
                state,
                model_name,
                created_at,
                error_code,
                display_name,
                storage,
            )| Job {
                id,
                model_name,
                display_name,
                storage: storage.map(|(bucket_name, object_key)| Storage {
                    bucket_name,
                    object_key,
                }),
                state: state.unwrap_or_else(|| JobState::parse(&status_text)),
                status_text,
                created_at,
                error_code,
            },
        )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn plan_obeys_its_invariants(s in arb_snapshot()) {
        let p = plan(&s);
        let any_job = s.status_job_id.clone().or_else(|| s.spec_job_id.clone());
        if s.deleting && !s.has_finalizer {
            prop_assert_eq!(&p, &PassPlan::Nothing);
        }
        if !s.deleting && !s.has_finalizer {
            prop_assert_eq!(&p, &PassPlan::AddFinalizer);
        }
        // Observed: never created, never deleted; a deletion only lets go.
        if s.observe {
            prop_assert!(!matches!(p, PassPlan::Create | PassPlan::Delete { .. }), "{p:?}");
            if s.deleting && s.has_finalizer && !s.paused {
                prop_assert_eq!(&p, &PassPlan::Release { reason: ReleaseReason::Observed });
            }
        }
        if s.deleting && s.has_finalizer && s.deletion_policy == DeletionPolicy::Orphan && !s.paused && !s.observe {
            prop_assert_eq!(&p, &PassPlan::Release { reason: ReleaseReason::Orphan });
        }
        // Paused: nothing remote, and a deletion is never blocked by it.
        if s.paused && s.has_finalizer {
            prop_assert!(!p.calls_remote(), "{p:?}");
            if s.deleting {
                prop_assert_eq!(&p, &PassPlan::Release { reason: ReleaseReason::Paused });
            } else {
                prop_assert_eq!(&p, &PassPlan::Paused);
            }
        }
        match &p {
            PassPlan::Nothing => prop_assert!(s.deleting && !s.has_finalizer),
            PassPlan::AddFinalizer => prop_assert!(!s.deleting && !s.has_finalizer),
            PassPlan::Create => {
                prop_assert!(!s.deleting && s.has_finalizer);
                prop_assert!(s.spec_job_id.is_none() && s.status_job_id.is_none());
                prop_assert!(!s.create_attempted, "a create that may have made a job is never repeated blindly");
            }
            PassPlan::Recover => {
                prop_assert!(s.has_finalizer && s.create_attempted);
                prop_assert!(s.status_job_id.is_none());
                prop_assert!(!s.deleting || s.deletion_policy == DeletionPolicy::Delete);
            }
            PassPlan::Adopt { job_id } => {
                prop_assert!(!s.deleting && s.status_job_id.is_none());
                prop_assert_eq!(Some(job_id), s.spec_job_id.as_ref());
            }
            PassPlan::Poll { job_id } => {
                prop_assert!(!s.deleting);
                prop_assert_eq!(Some(job_id), s.status_job_id.as_ref());
                prop_assert!(s.spec_job_id.is_none() || s.spec_job_id == s.status_job_id);
            }
            PassPlan::JobIdConflict { spec, status } => {
                prop_assert!(!s.deleting);
                prop_assert_eq!(Some(spec), s.spec_job_id.as_ref());
                prop_assert_eq!(Some(status), s.status_job_id.as_ref());
                prop_assert_ne!(spec, status);
            }
            PassPlan::WaitForSpecChange => {
                prop_assert!(!s.deleting && s.has_finalizer);
                prop_assert!(s.stalled_generation.is_some());
                prop_assert_eq!(s.stalled_generation, s.generation);
            }
            PassPlan::Delete { job_id } => {
                prop_assert!(s.deleting && s.has_finalizer);
                prop_assert_eq!(s.deletion_policy, DeletionPolicy::Delete);
                prop_assert_eq!(Some(job_id), any_job.as_ref());
            }
            PassPlan::Release { reason: ReleaseReason::NeverCreated } => {
                prop_assert!(s.deleting && s.has_finalizer);
                prop_assert_eq!(s.deletion_policy, DeletionPolicy::Delete);
                prop_assert!(any_job.is_none());
                prop_assert!(!s.create_attempted, "a job that may exist is looked for before letting go");
            }
            PassPlan::Release { reason: ReleaseReason::Orphan } => {
                prop_assert!(s.deleting && s.deletion_policy == DeletionPolicy::Orphan);
            }
            PassPlan::Release { reason: ReleaseReason::Paused } => {
                prop_assert!(s.deleting && s.has_finalizer && s.paused);
            }
            PassPlan::Paused => prop_assert!(!s.deleting && s.has_finalizer && s.paused),
            PassPlan::Release { reason: ReleaseReason::Observed } => {
                prop_assert!(s.deleting && s.has_finalizer && s.observe && !s.paused);
            }
            PassPlan::ObservedWithoutJobId => {
                prop_assert!(!s.deleting && s.has_finalizer && s.observe);
                prop_assert!(s.spec_job_id.is_none() && s.status_job_id.is_none());
            }
        }
        // A stall never blocks deletion, and a stall of another generation is no stall.
        if s.has_finalizer && !s.deleting && !s.paused && s.stalled_generation.is_some()
            && s.stalled_generation == s.generation
        {
            prop_assert_eq!(&p, &PassPlan::WaitForSpecChange);
        }
    }

    #[test]
    fn observe_job_is_total_and_terminal_jobs_do_not_poll(job in arb_job()) {
        let v = observe_job(&job);
        prop_assert_eq!(&v.job_id, &job.id);
        prop_assert_eq!(&v.remote_status, &job.status_text);
        prop_assert!(!v.reason.code().as_str().is_empty());
        prop_assert!(!v.reason.message().is_empty());
        prop_assert!(!v.reason.waits_for_spec_change(), "a job's state is not a spec stall");
        if job.state.is_terminal() {
            prop_assert_ne!(v.requeue, Requeue::Poll);
            prop_assert_eq!(v.requeue, Requeue::Resync);
        } else {
            prop_assert_eq!(v.requeue, Requeue::Poll);
        }
        match &job.state {
            JobState::Succeeded => {
                prop_assert_eq!(v.phase, Phase::Succeeded);
                prop_assert_eq!(v.reason.meaning(), Meaning::Ready, "{:?}", v.reason);
            }
            JobState::Failed => {
                prop_assert_eq!(v.phase, Phase::Failed);
                prop_assert_eq!(v.reason.meaning(), Meaning::Stalled, "{:?}", v.reason);
                prop_assert_eq!(&v.error_code, &job.error_code);
            }
            JobState::Pending => prop_assert_eq!(v.phase, Phase::Pending),
            JobState::Running | JobState::Unknown(_) => {
                prop_assert_eq!(v.phase, Phase::Running)
            }
        }
        if job.state != JobState::Failed {
            prop_assert_eq!(v.error_code, None);
            prop_assert_ne!(v.reason.meaning(), Meaning::Stalled, "{:?}", v.reason);
        }
    }

    #[test]
    fn every_failed_call_becomes_a_condition(spec in arb_error()) {
        let err = spec.build();
        for op in OPERATIONS {
            let o = on_api_error(op, &err);
            let code = o.reason.code().as_str();
            prop_assert!(!code.is_empty(), "{:?} {:?}", op, err);
            prop_assert!(!o.reason.message().trim().is_empty(), "{:?} {:?}", op, err);
            prop_assert!(
                code.chars().all(|c| c.is_ascii_alphanumeric()),
                "a condition reason is CamelCase: {}", code
            );
            prop_assert_ne!(o.reason.meaning(), Meaning::Ready, "{:?}", o);
            match o.reason.meaning() {
                Meaning::Stalled => prop_assert_eq!(o.requeue, Requeue::Never),
                // Work blocked by the job's own progress: looked at again at the poll interval.
                Meaning::Reconciling if matches!(o.reason, Reason::DeletionBlocked { .. }) => {
                    prop_assert_eq!(op, Call::Delete);
                    prop_assert_eq!(o.requeue, Requeue::Poll);
                }
                // Anything else that retrying may cure: retried with backoff.
                Meaning::Reconciling => {
                    prop_assert_eq!(o.requeue, Requeue::Backoff { min: err.retry_after() })
                }
                Meaning::Ready => unreachable!(),
            }
            if op == Call::Create && !err.create_certainly_not_applied() {
                // The job may exist: retried, and the retry looks for it (see
                // `a_create_that_may_have_made_a_job_is_looked_for_not_repeated`).
                let unconfirmed =
                    matches!(o.reason, Reason::CreateUnconfirmed(Unconfirmed::NoAnswer { .. }));
                prop_assert!(unconfirmed, "{:?} after {:?}", o.reason, err);
                prop_assert_eq!(o.reason.code(), Code::CreateUnconfirmed);
                prop_assert_eq!(o.requeue, Requeue::Backoff { min: err.retry_after() });
            }
            if o.requeue == Requeue::Never {
                prop_assert!(o.reason.waits_for_spec_change(), "a Never without a way out: {:?}", o);
            }
        }
        match on_delete(&Err(spec.build())) {
            DeletionOutcome::Released { already_gone } => {
                prop_assert!(already_gone);
                let is_not_found = matches!(err, ApiError::NotFound(_));
                prop_assert!(is_not_found);
            }
            // Refused while the job runs: with no job read after it, the same as any refusal.
            DeletionOutcome::Denied { message } => {
                let is_denied =
                    matches!(&err, ApiError::OperationDenied(r) if r.message == message);
                prop_assert!(is_denied, "{:?}", err);
                prop_assert_eq!(
                    on_delete_denied(&message, None),
                    on_api_error(Call::Delete, &err)
                );
            }
            DeletionOutcome::Retry(o) => prop_assert_eq!(o, on_api_error(Call::Delete, &err)),
        }
    }

    #[test]
    fn a_refused_connection_is_retried_never_stalled(cause in arb_text()) {
        // A create that never connected made nothing; no operation stalls on it.
        let e = ErrSpec::Connect(cause).build();
        prop_assert_eq!(e.kind(), "ConnectError");
        prop_assert!(e.is_transient() && e.create_certainly_not_applied());
        for op in OPERATIONS {
            let o = on_api_error(op, &e);
            prop_assert!(matches!(o.requeue, Requeue::Backoff { .. }), "{:?}: {:?}", op, o);
            prop_assert_eq!(o.reason.meaning(), Meaning::Reconciling, "{:?}: {:?}", op, o);
        }
    }

    #[test]
    fn a_denied_deletion_waits_for_the_job_or_says_why(
        remote in arb_remote(),
        job in prop::option::of(arb_job()),
    ) {
        let message = match on_delete(&Err(ApiError::OperationDenied(remote.clone()))) {
            DeletionOutcome::Denied { message } => message,
            other => return Err(TestCaseError::fail(format!("{other:?}"))),
        };
        prop_assert_eq!(&message, &remote.message);
        let blocked = on_delete_denied(&message, None);
        let o = on_delete_denied(&message, job.as_ref());
        prop_assert_eq!(o.reason.meaning(), Meaning::Reconciling);
        prop_assert!(!o.reason.message().trim().is_empty());
        match job.filter(|j| j.state.is_terminal()) {
            // A finished job refused: said so, and retried slowly rather than polled.
            Some(j) => {
                let refused = matches!(
                    &o.reason,
                    Reason::DeletionRefused { job_id, status, .. }
                        if *job_id == j.id && *status == j.status_text
                );
                prop_assert!(refused, "{:?}", o);
                // Model Studio's words, not the wording for a job still running.
                prop_assert!(o.reason.message().contains(message.as_str()));
                prop_assert!(o.reason.message() != blocked.reason.message());
                prop_assert_eq!(o.requeue, Requeue::Backoff { min: None });
            }
            None => prop_assert_eq!(o, blocked),
        }
    }

    #[test]
    fn a_create_that_may_have_made_a_job_is_looked_for_not_repeated(
        spec in arb_error(),
        generation in 1i64..4,
        deleting in any::<bool>(),
        orphan in any::<bool>(),
        earlier in arb_conditions(),
    ) {
        // The controller records the intent, sends the create, and records the outcome; the
        // next reconcile plans from what was recorded.
        let err = spec.build();
        let intent = ImportStatus {
            display_name: Some("m-0123abcd".into()),
            create_attempted_at: Some("2026-01-01T00:00:00Z".into()),
            phase: Some(Phase::Pending),
            conditions: earlier,
            ..Default::default()
        };
        let outcome = on_api_error(Call::Create, &err);
        let recorded = next_status(
            &intent,
            &Update {
                reason: Some(outcome.reason.clone()),
                create_not_applied: err.create_certainly_not_applied(),
                ..Default::default()
            },
            Some(generation),
            t(5_000),
        );
        let r = Resource {
            name: "m".into(),
            uid: "6c1d5e8a-3f0b-4d2e-9a7c-1b2c3d4e5f60".into(),
            generation: Some(generation),
            deleting,
            has_finalizer: true,
            control: Default::default(),
            spec: Spec {
                base_model: "qwen3-32b".into(),
                display_name: None,
                weight_type: WeightType::Lora,
                source: Source::Oss,
                storage: Storage { bucket_name: "b-1".into(), object_key: "m/".into() },
                deletion_policy: if orphan { DeletionPolicy::Orphan } else { DeletionPolicy::Delete },
                job_id: None,
                management: Default::default(),
                api_key_secret: None,
            },
            status: recorded,
        };
        let next = plan(&snapshot(&r));
        if err.create_certainly_not_applied() {
            let ok = matches!(
                (&next, deleting),
                (PassPlan::Create | PassPlan::WaitForSpecChange, false) | (PassPlan::Release { .. }, true)
            );
            prop_assert!(ok, "{:?} after {:?}", next, err);
            if outcome.reason.waits_for_spec_change() && !deleting {
                prop_assert_eq!(&next, &PassPlan::WaitForSpecChange);
            }
        } else {
            let want = if deleting && orphan {
                PassPlan::Release { reason: ReleaseReason::Orphan }
            } else {
                PassPlan::Recover
            };
            prop_assert_eq!(&next, &want, "after {:?}", err);
        }
    }

    #[test]
    fn a_deleted_job_releases(job in arb_job()) {
        prop_assert_eq!(on_delete(&Ok(job)), DeletionOutcome::Released { already_gone: false });
    }
}

// ---------------------------------------------------------------------------------------------
// (c) The status builder
// ---------------------------------------------------------------------------------------------

const CONDITION_TYPES: &[&str] = &[READY, RECONCILING, STALLED, "example.com/Audited", "Other"];

fn arb_conditions() -> impl Strategy<Value = Vec<Condition>> {
    prop::collection::vec(
        (
            prop::sample::select(&["True", "False", "Unknown"][..]),
            "[A-Z][a-zA-Z]{0,10}",
            arb_text(),
            prop::option::of(0i64..5),
            0i64..1_000,
        ),
        CONDITION_TYPES.len(),
    )
    .prop_flat_map(|attrs| {
        // A subset of the types, each at most once (the API server keeps a list-map unique).
        prop::sample::subsequence(CONDITION_TYPES, 0..=CONDITION_TYPES.len()).prop_map(
            move |types| {
                types
                    .iter()
                    .zip(attrs.iter())
                    .map(|(ty, (status, reason, message, gen, time))| Condition {
                        type_: ty.to_string(),
                        status: status.to_string(),
                        reason: reason.clone(),
                        message: message.clone(),
                        observed_generation: *gen,
                        last_transition_time: t(*time),
                    })
                    .collect()
            },
        )
    })
}

fn arb_phase() -> impl Strategy<Value = Phase> {
    prop::sample::select(
        &[
            Phase::Pending,
            Phase::Running,
            Phase::Succeeded,
            Phase::Failed,
            Phase::Deleting,
        ][..],
    )
}

/// A key's fingerprint, or none (not read, or nothing seen with it).
fn arb_fingerprint() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        prop::sample::select(&["sha256:aaaa", "sha256:bbbb"][..]).prop_map(str::to_string),
        "sha256:[0-9a-f]{8}",
    ])
}

fn arb_current_status() -> impl Strategy<Value = ImportStatus> {
    (
        (arb_job_id(), arb_fingerprint()),
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
        prop::option::of(arb_remote_status_text()),
        prop::option::of(arb_phase()),
        prop::option::of(arb_text()),
        prop::option::of(0i64..5),
        arb_conditions(),
        any::<bool>(),
    )
        .prop_map(
            |(
                (job_id, key_fingerprint),
                display_name,
                model_name,
                remote_status,
                phase,
                error_code,
                observed,
                conditions,
                attempted,
            )| {
                ImportStatus {
                    job_id,
                    display_name,
                    model_name,
                    remote_status,
                    phase,
                    error_code,
                    observed_generation: observed,
                    conditions,
                    create_attempted_at: attempted.then(|| "2026-01-01T00:00:00Z".to_string()),
                    key_fingerprint,
                    ..Default::default()
                }
            },
        )
}

/// A reason of every code (the match is exhaustive, so a new code must be generated too), with
/// arbitrary contents: Ready, Reconciling and Stalled ones alike.
fn arb_reason() -> impl Strategy<Value = Reason> {
    (
        prop::sample::select(Code::ALL),
        "[A-Za-z0-9-]{0,12}",
        arb_text(),
        arb_text(),
        prop::option::of(arb_text()),
        prop::collection::vec("[A-Za-z0-9-]{1,12}", 0..4),
        0u8..4,
        any::<bool>(),
        0u64..3_600,
    )
        .prop_map(|(code, id, a, b, opt, ids, problem, flag, secs)| {
            let problem = match problem {
                0 => CredentialProblem::NoSecretRefAndNoDefault,
                1 => CredentialProblem::SecretNotFound { name: a.clone() },
                2 => CredentialProblem::KeyMissing {
                    name: a.clone(),
                    key: b.clone(),
                },
                _ => CredentialProblem::KeyEmpty {
                    name: a.clone(),
                    key: b.clone(),
                },
            };
            let reason = match code {
                Code::Creating => Reason::Creating,
                Code::CreateUnconfirmed if flag => {
                    Reason::CreateUnconfirmed(Unconfirmed::NoAnswer { error: a })
                }
                Code::CreateUnconfirmed => Reason::CreateUnconfirmed(Unconfirmed::NotListedYet {
                    display_name: a,
                    grace: Duration::from_secs(secs),
                }),
                Code::JobPending => Reason::JobPending { job_id: id },
                Code::JobRunning => Reason::JobRunning { job_id: id },
                Code::UnknownJobStatus => Reason::UnknownJobStatus {
                    job_id: id,
                    status: a,
                },
                Code::JobNotVisibleYet => Reason::JobNotVisibleYet {
                    job_id: id,
                    error: a,
                },
                Code::JobSucceeded => Reason::JobSucceeded {
                    job_id: id,
                    model_name: opt,
                },
                Code::JobFailed => Reason::JobFailed {
                    job_id: id,
                    error_code: opt,
                },
                Code::InvalidParameter => Reason::InvalidParameter { error: a },
                Code::BaseModelNotFound => Reason::BaseModelNotFound { error: a },
                Code::JobNotFound => Reason::JobNotFound { error: a },
                Code::JobIdConflict => Reason::JobIdConflict {
                    spec: id,
                    status: b,
                },
                Code::ObservedWithoutJobId => Reason::ObservedWithoutJobId,
                Code::CreateAmbiguous => Reason::CreateAmbiguous {
                    display_name: a,
                    job_ids: ids,
                },
                Code::CredentialsMissing => Reason::CredentialsMissing {
                    problem,
                    deleting: flag,
                },
                Code::InvalidApiKey
                | Code::AccessDenied
                | Code::Throttled
                | Code::RemoteUnavailable
                | Code::RemoteError => Reason::Remote {
                    failure: *RemoteFailure::ALL
                        .iter()
                        .find(|f| Code::from(**f) == code)
                        .expect("every remote code has its failure"),
                    error: a,
                },
                Code::DeletionBlocked => Reason::DeletionBlocked { error: a },
                Code::DeletionRefused => Reason::DeletionRefused {
                    job_id: id,
                    status: b,
                    error: a,
                },
                Code::WorkspaceChanged => Reason::WorkspaceChanged {
                    job_id: id,
                    recorded: a,
                    current: b,
                },
                Code::ServedByDeployment => Reason::ServedByDeployment { deployment: a },
            };
            assert_eq!(reason.code(), code);
            reason
        })
}

fn arb_update() -> impl Strategy<Value = Update> {
    (
        prop::option::of(arb_job().prop_map(|j| observe_job(&j))),
        prop::option::of(arb_phase()),
        prop::option::of(arb_reason()),
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.25, arb_text()),
        arb_fingerprint(),
    )
        .prop_map(
            |(job, phase, reason, reason_of_job, create_not_applied, intent, fingerprint)| {
                // Usually the reason shown is the job's own.
                let reason = match (&job, reason_of_job) {
                    (Some(v), true) => Some(v.reason.clone()),
                    _ => reason,
                };
                Update {
                    job,
                    phase,
                    reason,
                    create_not_applied,
                    intent,
                    fingerprint,
                    handled_reconcile: None,
                    paused: false,
                    observed: false,
                }
            },
        )
}

fn types_unique(conditions: &[Condition]) -> bool {
    let mut types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    let n = types.len();
    types.sort_unstable();
    types.dedup();
    types.len() == n
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn next_status_is_idempotent_and_moves_time_only_on_transitions(
        current in arb_current_status(),
        update in arb_update(),
        generation in prop::option::of(0i64..5),
        now1 in 1_000i64..2_000,
        later in 1i64..1_000,
    ) {
        let s1 = next_status(&current, &update, generation, t(now1));
        prop_assert_eq!(
            &next_status(&s1, &update, generation, t(now1)),
            &s1,
            "the same update twice must change nothing"
        );
        let s2 = next_status(&s1, &update, generation, t(now1 + later));
        match &update.intent {
            None => prop_assert_eq!(&s1, &s2, "the same update twice must change nothing"),
            Some(_) => {
                // Recording an intent stamps the attempt's time, and nothing else moves with it.
                prop_assert_eq!(&s2.create_attempted_at, &Some(t(now1 + later).to_string()));
                let s2_at_now1 = ImportStatus {
                    create_attempted_at: s1.create_attempted_at.clone(),
                    ..s2.clone()
                };
                prop_assert_eq!(&s2_at_now1, &s1);
            }
        }

        prop_assert!(s1.phase.is_some());
        prop_assert_eq!(s1.observed_generation, generation.or(current.observed_generation));
        prop_assert!(types_unique(&s1.conditions), "{:?}", s1.conditions);
        match &update.reason {
            None => prop_assert_eq!(&s1.conditions, &current.conditions),
            Some(r) => {
                for c in &s1.conditions {
                    let old = current.conditions.iter().find(|o| o.type_ == c.type_);
                    let ours = [READY, RECONCILING, STALLED].contains(&c.type_.as_str());
                    if !ours {
                        prop_assert_eq!(Some(c), old, "a foreign condition is kept as is");
                        continue;
                    }
                    prop_assert_eq!(c.observed_generation, generation);
                    match old {
                        Some(o) if o.status == c.status => {
                            prop_assert_eq!(c.last_transition_time, o.last_transition_time)
                        }
                        _ => prop_assert_eq!(c.last_transition_time, t(now1)),
                    }
                }
                // kstatus: never Ready and Stalled, never Reconciling and Stalled.
                let on = |ty: &str| s1.conditions.iter().any(|c| c.type_ == ty && c.status == "True");
                prop_assert_eq!(on(READY), r.meaning() == Meaning::Ready);
                prop_assert_eq!(on(RECONCILING), r.meaning() == Meaning::Reconciling);
                prop_assert_eq!(on(STALLED), r.meaning() == Meaning::Stalled);
                prop_assert!(!(on(RECONCILING) && on(STALLED)));
                prop_assert!(!(on(READY) && on(RECONCILING)));
            }
        }
        if let Some(job) = &update.job {
            prop_assert_eq!(s1.job_id.as_ref(), Some(&job.job_id));
            prop_assert_eq!(s1.remote_status.as_ref(), Some(&job.remote_status));
        } else {
            prop_assert_eq!(&s1.job_id, &current.job_id);
        }
        if let Some(p) = update.phase {
            prop_assert_eq!(s1.phase, Some(p));
        }
        // The key a job was last seen with is replaced only by another one, never forgotten.
        match &update.fingerprint {
            Some(f) => prop_assert_eq!(s1.key_fingerprint.as_ref(), Some(f)),
            None => prop_assert_eq!(&s1.key_fingerprint, &current.key_fingerprint),
        }
        match &update.intent {
            // A create about to be sent: its display name and time are recorded.
            Some(name) => {
                prop_assert_eq!(s1.display_name.as_ref(), Some(name));
                prop_assert_eq!(&s1.create_attempted_at, &Some(t(now1).to_string()));
            }
            // The create intent is forgotten exactly when a job is recorded or the create
            // certainly made nothing.
            None => {
                prop_assert_eq!(&s1.display_name, &current.display_name);
                if s1.job_id.is_some() || update.create_not_applied {
                    prop_assert_eq!(&s1.create_attempted_at, &None);
                } else {
                    prop_assert_eq!(&s1.create_attempted_at, &current.create_attempted_at);
                }
            }
        }
    }

    #[test]
    fn merge_conditions_keeps_types_unique_and_times_honest(
        current in arb_conditions(),
        reason in arb_reason(),
        generation in prop::option::of(0i64..5),
        now in 1_000i64..2_000,
    ) {
        let desired = conditions_for(&reason, generation);
        prop_assert!(types_unique(&desired));
        let merged = merge_conditions(&current, desired.clone(), t(now));
        prop_assert!(types_unique(&merged));
        let mut want_types: Vec<&str> = desired.iter().map(|c| c.type_.as_str())
            .chain(current.iter().map(|c| c.type_.as_str()))
            .collect();
        want_types.sort_unstable();
        want_types.dedup();
        prop_assert_eq!(merged.len(), want_types.len());
        for c in &merged {
            let old = current.iter().find(|o| o.type_ == c.type_);
            let changed = old.is_none_or(|o| o.status != c.status);
            prop_assert_eq!(
                c.last_transition_time == t(now),
                changed || old.is_some_and(|o| o.last_transition_time == t(now)),
                "{:?} from {:?}", c, old
            );
        }
        // Merging again at a later time changes nothing.
        let again = merge_conditions(&merged, desired, t(now + 60));
        prop_assert_eq!(again, merged);
    }
}

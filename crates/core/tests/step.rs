//! The step machine as whole sequences: `next_need` names each input, the test observes it as the
//! IO side would, `decide` returns the step, and its update is folded into the status with
//! `status::next_status` before the next round.

use jiff::{SignedDuration, Timestamp};
use modelstudio_core::api::{ApiError, RemoteError, RemoteFailure};
use modelstudio_core::conditions::{READY, RECONCILING, STALLED};
use modelstudio_core::correlation::display_name;
use modelstudio_core::credentials::{
    choose_key, CredentialProblem, DefaultKey, KeySource, SecretRead,
};
use modelstudio_core::deletion::DeletionPolicy;
use modelstudio_core::events::{Action, Event, EventType};
use modelstudio_core::import::decision::Listing;
use modelstudio_core::import::jobs::{Job, JobState, NewJob, Source, Storage, WeightType};
use modelstudio_core::import::reason::{Code, Reason, Unconfirmed};
use modelstudio_core::import::resource::{ImportStatus, Phase, Resource, Spec};
use modelstudio_core::import::status::{condition_status, next_status, stalled_generation, Update};
use modelstudio_core::import::step::{
    decide, deletes_remotely, next_need, Act, Answer, Need, Observation, Seen, Step, STALE_RETRY,
};
use modelstudio_core::management::ManagementPolicy;
use modelstudio_core::requeue::{Requeue, Timing};
use std::time::Duration;

const NAME: &str = "my-lora";
const UID: &str = "6b8a4c1e-0000-4000-8000-000000000001";
const BASE: &str = "qwen3-32b";
const POLL: Duration = Duration::from_secs(30);
const GRACE: Duration = Duration::from_secs(120);

fn now() -> Timestamp {
    Timestamp::from_second(1_750_000_000).unwrap()
}

fn ago(secs: i64) -> Timestamp {
    now().checked_sub(SignedDuration::from_secs(secs)).unwrap()
}

fn timing() -> Timing {
    Timing {
        poll_interval: POLL,
        create_grace: GRACE,
    }
}

fn storage() -> Storage {
    Storage {
        bucket_name: "bucket".into(),
        object_key: "models/lora/".into(),
    }
}

fn spec() -> Spec {
    Spec {
        base_model: BASE.into(),
        display_name: None,
        weight_type: WeightType::Lora,
        source: Source::Oss,
        storage: storage(),
        deletion_policy: DeletionPolicy::Delete,
        job_id: None,
        management: ManagementPolicy::Manage,
        api_key_secret: None,
    }
}

/// A resource with the finalizer and nothing remote yet.
fn resource() -> Resource {
    Resource {
        name: NAME.into(),
        uid: UID.into(),
        generation: Some(1),
        deleting: false,
        has_finalizer: true,
        control: Default::default(),
        spec: spec(),
        status: ImportStatus::default(),
    }
}

/// The display name a create for `resource()` sends.
fn ours() -> String {
    display_name(NAME, UID)
}

/// A resource tracking job `id` in `phase`, read `created_secs_ago` after the job was made.
fn tracking(id: &str, phase: Phase, created_secs_ago: i64) -> Resource {
    let mut r = resource();
    r.status = ImportStatus {
        job_id: Some(id.into()),
        display_name: Some(ours()),
        remote_status: Some("RUNNING".into()),
        phase: Some(phase),
        created_at: Some(ago(created_secs_ago).to_string()),
        observed_generation: Some(1),
        ..Default::default()
    };
    r
}

/// A resource whose create intent was recorded `secs_ago` and whose job is not known.
fn attempted(secs_ago: i64) -> Resource {
    let mut r = resource();
    r.status = ImportStatus {
        display_name: Some(ours()),
        create_attempted_at: Some(ago(secs_ago).to_string()),
        phase: Some(Phase::Pending),
        observed_generation: Some(1),
        ..Default::default()
    };
    r
}

fn deleting(mut r: Resource) -> Resource {
    r.deleting = true;
    r
}

fn job(id: &str, status: &str) -> Job {
    Job {
        id: id.into(),
        model_name: Some("qwen3-32b-offline-20250615-ab12".into()),
        display_name: Some(ours()),
        storage: Some(storage()),
        state: JobState::parse(status),
        status_text: status.into(),
        created_at: Some(ago(1).to_string()),
        error_code: (status == "FAILED").then(|| "Failed to get files from OSS.".into()),
    }
}

fn stranger(id: &str) -> Job {
    Job {
        display_name: Some("someone-else-abcdefgh".into()),
        ..job(id, "RUNNING")
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

fn server_error() -> ApiError {
    ApiError::Server(remote("InternalError", 500))
}

fn not_found() -> ApiError {
    ApiError::NotFound(remote("NotFound", 404))
}

fn obs(r: Resource) -> Observation {
    Observation::new(now(), timing(), r, None)
}

/// Answers every need as the IO side would: the fresh copy is the cached one, the credentials
/// are `key`, and a read of Model Studio gives `seen` (at most one read is asked for).
fn observe(
    o: &mut Observation,
    key: Result<KeySource, CredentialProblem>,
    seen: Option<Seen>,
) -> Vec<Need> {
    let mut seen = seen;
    let mut needs = Vec::new();
    while let Some(need) = next_need(o) {
        assert!(needs.len() < 4, "needs do not end: {needs:?} then {need:?}");
        match &need {
            Need::FreshCopy => o.fresh = Some(o.cached.clone()),
            Need::Credentials => o.credentials = Some(key.clone()),
            Need::Job(_) | Need::JobNow(_) | Need::Listing => {
                o.seen = Some(
                    seen.take()
                        .expect("a read of Model Studio was not expected"),
                )
            }
        }
        needs.push(need);
    }
    assert!(seen.is_none(), "the read given was never asked for");
    needs
}

/// The resource after the step is recorded and its finalizer change made.
fn record(r: &Resource, step: &Step) -> Resource {
    let mut next = r.clone();
    if let Some(update) = &step.status {
        next.status = next_status(&r.status, update, r.generation, now());
    }
    match step.act {
        Act::AddFinalizer => next.has_finalizer = true,
        Act::RemoveFinalizer => next.has_finalizer = false,
        _ => {}
    }
    next
}

fn reason_of(step: &Step) -> Option<&Reason> {
    step.status.as_ref().and_then(|u| u.reason.as_ref())
}

fn code_of(step: &Step) -> Option<Code> {
    reason_of(step).map(Reason::code)
}

fn condition_reason<'a>(s: &'a ImportStatus, type_: &str) -> Option<&'a str> {
    s.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.reason.as_str())
}

const SECRET: Result<KeySource, CredentialProblem> = Ok(KeySource::Secret);

// ---------------------------------------------------------------------------------------------
// The finalizer and the create
// ---------------------------------------------------------------------------------------------

#[test]
fn a_new_resource_gets_the_finalizer_and_nothing_else() {
    for spec_job in [None, Some("job-s")] {
        let mut r = resource();
        r.has_finalizer = false;
        r.spec.job_id = spec_job.map(Into::into);
        let o = obs(r.clone());
        assert_eq!(next_need(&o), None);
        let step = decide(&o);
        assert_eq!(
            step,
            Step {
                plan: "add_finalizer",
                status: None,
                act: Act::AddFinalizer,
                events: vec![],
                requeue: Requeue::Never,
                protect_secret: false,
            }
        );
        assert!(record(&r, &step).has_finalizer);
    }
}

#[test]
fn a_create_reads_a_fresh_copy_then_the_key_then_records_its_intent() {
    let r = resource();
    let mut o = obs(r.clone());
    assert_eq!(next_need(&o), Some(Need::FreshCopy));
    o.fresh = Some(r.clone());
    assert_eq!(next_need(&o), Some(Need::Credentials));
    o.credentials = Some(SECRET);
    assert_eq!(next_need(&o), None);

    let step = decide(&o);
    assert_eq!(step.plan, "create");
    assert_eq!(
        step.status,
        Some(Update {
            reason: Some(Reason::Creating),
            intent: Some(format!(
                "{NAME}-{}",
                modelstudio_core::correlation::token(UID)
            )),
            ..Default::default()
        })
    );
    assert_eq!(
        step.act,
        Act::Create(NewJob {
            base_model: BASE.into(),
            display_name: Some(display_name(NAME, UID)),
            source: Source::Oss,
            weight_type: WeightType::Lora,
            storage: storage(),
        })
    );
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::Never);

    let after = record(&r, &step);
    assert_eq!(after.status.display_name, Some(ours()));
    assert_eq!(after.status.create_attempted_at, Some(now().to_string()));
    assert_eq!(after.status.job_id, None);
    assert_eq!(after.status.phase, Some(Phase::Pending));
    assert_eq!(after.status.observed_generation, Some(1));
    assert_eq!(condition_status(&after.status, RECONCILING), Some("True"));
    assert_eq!(
        condition_reason(&after.status, RECONCILING),
        Some("Creating")
    );
    assert_eq!(condition_status(&after.status, READY), Some("False"));
    // The recorded intent alone moves the next plan on to looking for the job.
    assert_eq!(obs(after).plan().name(), "recover");
}

#[test]
fn a_create_sends_the_spec_display_name_with_the_token() {
    let mut r = resource();
    r.spec.display_name = Some("Friendly name".into());
    r.spec.weight_type = WeightType::Full;
    let mut o = obs(r);
    assert_eq!(
        observe(&mut o, Ok(KeySource::Default), None),
        vec![Need::FreshCopy, Need::Credentials]
    );
    let step = decide(&o);
    let sent = display_name("Friendly name", UID);
    assert!(sent.starts_with("Friendly name-"));
    assert_eq!(
        step.status.as_ref().unwrap().intent.as_deref(),
        Some(sent.as_str())
    );
    match &step.act {
        Act::Create(new_job) => {
            assert_eq!(new_job.display_name.as_deref(), Some(sent.as_str()));
            assert_eq!(new_job.weight_type, WeightType::Full);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_create_waits_without_a_fresh_copy_or_a_key() {
    let o = obs(resource());
    let step = decide(&o);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.status, None);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));

    let mut o = obs(resource());
    o.fresh = Some(resource());
    let step = decide(&o);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.status, None);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
}

#[test]
fn a_stale_fresh_copy_makes_no_step() {
    // The cache has no job yet; the API server already has the job this controller recorded.
    let mut o = obs(resource());
    o.fresh = Some(tracking("job-1", Phase::Running, 5));
    assert_eq!(next_need(&o), None);
    let step = decide(&o);
    assert_eq!(step.plan, "create");
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.status, None);
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
    // Even with a key at hand.
    o.credentials = Some(SECRET);
    assert_eq!(decide(&o).requeue, Requeue::After(STALE_RETRY));
    assert_eq!(decide(&o).act, Act::Nothing);

    // A release on a stale copy does not let go either.
    let mut r = deleting(resource());
    r.spec.deletion_policy = DeletionPolicy::Orphan;
    let mut o = obs(r.clone());
    let mut fresh = r;
    fresh.has_finalizer = false;
    o.fresh = Some(fresh);
    let step = decide(&o);
    assert_eq!(step.plan, "release");
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
}

#[test]
fn a_created_job_is_recorded_and_polled() {
    let r = attempted(0);
    let mut o = obs(r.clone());
    let made = job("job-1", "PENDING");
    o.answer = Some(Answer::Created(Ok(made.clone())));
    let step = decide(&o);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.requeue, Requeue::Poll);
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Normal,
            reason: "Created",
            action: Action::CreateImportJob,
            note: format!("Created import job job-1 for model {BASE}"),
        }]
    );
    assert_eq!(
        reason_of(&step),
        Some(&Reason::JobPending {
            job_id: "job-1".into()
        })
    );
    let after = record(&r, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-1"));
    assert_eq!(after.status.remote_status.as_deref(), Some("PENDING"));
    assert_eq!(after.status.phase, Some(Phase::Pending));
    assert_eq!(
        after.status.model_name.as_deref(),
        Some("qwen3-32b-offline-20250615-ab12")
    );
    assert_eq!(after.status.created_at, made.created_at);
    assert_eq!(after.status.create_attempted_at, None);
    assert_eq!(after.status.display_name, Some(ours()));
    assert_eq!(
        condition_reason(&after.status, RECONCILING),
        Some("JobPending")
    );
    // Next: poll the recorded job.
    assert_eq!(obs(after).plan().name(), "poll");
}

#[test]
fn a_refused_create_stalls_with_a_warning_until_the_spec_changes() {
    let r = attempted(0);
    let mut o = obs(r.clone());
    o.answer = Some(Answer::Created(Err(ApiError::InvalidParameter(remote(
        "InvalidParameter",
        400,
    )))));
    let step = decide(&o);
    let reason = reason_of(&step).unwrap().clone();
    assert_eq!(reason.code(), Code::InvalidParameter);
    assert_eq!(step.requeue, Requeue::Never);
    assert_eq!(step.act, Act::Nothing);
    let update = step.status.as_ref().unwrap();
    assert!(update.create_not_applied);
    assert_eq!(update.intent, None);
    assert_eq!(update.job, None);
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Warning,
            reason: "InvalidParameter",
            action: Action::CreateImportJob,
            note: reason.message(),
        }]
    );
    assert!(step.events[0].note.contains("InvalidParameter message"));

    let after = record(&r, &step);
    assert_eq!(after.status.create_attempted_at, None);
    assert_eq!(condition_status(&after.status, STALLED), Some("True"));
    assert_eq!(
        condition_reason(&after.status, STALLED),
        Some("InvalidParameter")
    );
    assert_eq!(condition_status(&after.status, RECONCILING), Some("False"));
    assert_eq!(stalled_generation(&after.status), Some(1));

    // Nothing happens on this generation.
    let o = obs(after.clone());
    assert_eq!(next_need(&o), None);
    assert_eq!(
        decide(&o),
        Step {
            plan: "wait_for_spec_change",
            status: None,
            act: Act::Nothing,
            events: vec![],
            requeue: Requeue::Never,
            protect_secret: false,
        }
    );
    // A new generation creates again.
    let mut changed = after;
    changed.generation = Some(2);
    assert_eq!(obs(changed).plan().name(), "create");
}

#[test]
fn a_create_on_an_unknown_base_model_stalls() {
    let mut o = obs(attempted(0));
    o.answer = Some(Answer::Created(Err(not_found())));
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::BaseModelNotFound));
    assert_eq!(step.requeue, Requeue::Never);
    assert!(step.status.as_ref().unwrap().create_not_applied);
    assert_eq!(step.events.len(), 1);
    assert_eq!(step.events[0].reason, "BaseModelNotFound");
    assert_eq!(step.events[0].type_, EventType::Warning);
}

#[test]
fn a_create_without_an_answer_is_unconfirmed_and_looked_for() {
    for err in [server_error(), ApiError::Timeout(Duration::from_secs(30))] {
        let error = err.to_string();
        let r = attempted(0);
        let mut o = obs(r.clone());
        o.answer = Some(Answer::Created(Err(err)));
        let step = decide(&o);
        assert_eq!(
            step.status,
            Some(Update {
                reason: Some(Reason::CreateUnconfirmed(Unconfirmed::NoAnswer { error })),
                create_not_applied: false,
                ..Default::default()
            })
        );
        assert!(step.events.is_empty(), "a retry is not announced");
        assert_eq!(step.requeue, Requeue::Backoff { min: None });
        assert_eq!(step.act, Act::Nothing);
        let after = record(&r, &step);
        // The intent stays: the next step lists the jobs before creating again.
        assert_eq!(
            after.status.create_attempted_at,
            r.status.create_attempted_at
        );
        assert_eq!(
            condition_reason(&after.status, RECONCILING),
            Some("CreateUnconfirmed")
        );
        assert_eq!(obs(after).plan().name(), "recover");
    }
}

#[test]
fn a_throttled_create_forgets_its_intent_and_waits_as_asked() {
    let r = attempted(0);
    let mut o = obs(r.clone());
    o.answer = Some(Answer::Created(Err(ApiError::Throttled {
        remote: remote("Throttling.RateQuota", 429),
        retry_after: Some(Duration::from_secs(7)),
    })));
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::Throttled));
    assert!(step.status.as_ref().unwrap().create_not_applied);
    assert_eq!(
        step.requeue,
        Requeue::Backoff {
            min: Some(Duration::from_secs(7))
        }
    );
    assert!(step.events.is_empty());
    let after = record(&r, &step);
    assert_eq!(after.status.create_attempted_at, None);
    assert_eq!(obs(after).plan().name(), "create");
}

// ---------------------------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------------------------

#[test]
fn a_poll_soon_after_the_last_read_waits_out_the_rest() {
    let r = tracking("job-1", Phase::Running, 600);
    let o = Observation::new(now(), timing(), r.clone(), Some(Duration::from_secs(10)));
    assert_eq!(next_need(&o), None);
    assert_eq!(
        decide(&o),
        Step {
            plan: "poll",
            status: None,
            act: Act::Nothing,
            events: vec![],
            requeue: Requeue::After(Duration::from_secs(20)),
            protect_secret: false,
        }
    );
    // Just under half the interval still waits.
    let o = Observation::new(
        now(),
        timing(),
        r.clone(),
        Some(Duration::from_millis(14_999)),
    );
    assert_eq!(
        decide(&o).requeue,
        Requeue::After(Duration::from_millis(15_001))
    );
    // At half the interval, or never read by this process, the job is read.
    for last_read in [Some(POLL / 2), Some(POLL * 3), None] {
        let mut o = Observation::new(now(), timing(), r.clone(), last_read);
        assert_eq!(next_need(&o), Some(Need::Credentials), "{last_read:?}");
        o.credentials = Some(SECRET);
        assert_eq!(next_need(&o), Some(Need::Job("job-1".into())));
        o.seen = Some(Seen::Job(Ok(job("job-1", "RUNNING"))));
        assert_eq!(next_need(&o), None);
    }
}

#[test]
fn a_reconcile_asked_for_reads_the_job_now_and_is_recorded_as_handled() {
    let mut r = tracking("job-1", Phase::Running, 600);
    r.control.reconcile_requested_at = Some("2026-12-07T10:00:00Z".into());
    // Read moments ago: without the request this pass would wait (see above); with it the job
    // is read now, past the workspace's listing.
    let mut o = Observation::new(now(), timing(), r.clone(), Some(Duration::from_secs(1)));
    assert_eq!(
        observe(&mut o, SECRET, Some(Seen::Job(Ok(job("job-1", "RUNNING"))))),
        vec![Need::Credentials, Need::JobNow("job-1".into())]
    );
    let step = decide(&o);
    assert_eq!(step.plan, "poll");
    let handled = step
        .status
        .as_ref()
        .and_then(|u| u.handled_reconcile.clone());
    assert_eq!(handled.as_deref(), Some("2026-12-07T10:00:00Z"));
    let after = record(&r, &step);
    assert_eq!(
        after.status.last_handled_reconcile_at.as_deref(),
        Some("2026-12-07T10:00:00Z")
    );
    // Handled: the next pass that soon waits again, and records nothing more.
    let o = Observation::new(now(), timing(), after.clone(), Some(Duration::from_secs(1)));
    assert_eq!(next_need(&o), None);
    assert_eq!(decide(&o).status, None);
    // A new value asks again.
    let mut again = after;
    again.control.reconcile_requested_at = Some("2".into());
    let mut o = Observation::new(now(), timing(), again, Some(Duration::from_secs(1)));
    o.credentials = Some(SECRET);
    assert_eq!(next_need(&o), Some(Need::JobNow("job-1".into())));
}

#[test]
fn a_reconcile_asked_for_is_not_handled_by_a_pass_that_only_looks_again() {
    let mut r = tracking("job-1", Phase::Running, 600);
    r.control.reconcile_requested_at = Some("1".into());
    // The key is not read yet: the pass looks again in a moment, having handled nothing.
    let o = obs(r.clone());
    let step = decide(&o);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
    assert_eq!(step.status, None);
    // A credentials problem is an answer: handled, with the condition saying why.
    let mut o = obs(r);
    observe(
        &mut o,
        Err(CredentialProblem::SecretNotFound { name: "s".into() }),
        None,
    );
    let step = decide(&o);
    let update = step.status.expect("a status");
    assert_eq!(update.handled_reconcile.as_deref(), Some("1"));
    assert_eq!(
        update.reason.map(|r| r.code()),
        Some(Code::CredentialsMissing)
    );
}

#[test]
fn a_poll_without_its_read_waits() {
    let mut o = obs(tracking("job-1", Phase::Running, 600));
    o.credentials = Some(SECRET);
    let step = decide(&o);
    assert_eq!(step.status, None);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
}

#[test]
fn a_running_job_is_mirrored_without_events() {
    let r = tracking("job-1", Phase::Pending, 600);
    let mut o = obs(r.clone());
    assert_eq!(
        observe(&mut o, SECRET, Some(Seen::Job(Ok(job("job-1", "RUNNING"))))),
        vec![Need::Credentials, Need::Job("job-1".into())]
    );
    let step = decide(&o);
    assert_eq!(step.plan, "poll");
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::Poll);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(
        reason_of(&step),
        Some(&Reason::JobRunning {
            job_id: "job-1".into()
        })
    );
    let after = record(&r, &step);
    assert_eq!(after.status.phase, Some(Phase::Running));
    assert_eq!(after.status.remote_status.as_deref(), Some("RUNNING"));
    assert_eq!(
        condition_reason(&after.status, RECONCILING),
        Some("JobRunning")
    );
}

#[test]
fn success_is_announced_once() {
    let r = tracking("job-1", Phase::Running, 600);
    let mut o = obs(r.clone());
    observe(
        &mut o,
        SECRET,
        Some(Seen::Job(Ok(job("job-1", "SUCCESSED")))),
    );
    let step = decide(&o);
    let reason = Reason::JobSucceeded {
        job_id: "job-1".into(),
        model_name: Some("qwen3-32b-offline-20250615-ab12".into()),
    };
    assert_eq!(reason_of(&step), Some(&reason));
    assert_eq!(step.requeue, Requeue::Resync);
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Normal,
            reason: "Succeeded",
            action: Action::PollImportJob,
            note: "Model qwen3-32b-offline-20250615-ab12 was imported and can be deployed".into(),
        }]
    );
    let after = record(&r, &step);
    assert_eq!(after.status.phase, Some(Phase::Succeeded));
    assert_eq!(after.status.remote_status.as_deref(), Some("SUCCESSED"));
    assert_eq!(condition_status(&after.status, READY), Some("True"));
    assert_eq!(condition_reason(&after.status, READY), Some("JobSucceeded"));

    // Read again later: the same status, no second event, and no change to write.
    let mut o = obs(after.clone());
    observe(
        &mut o,
        SECRET,
        Some(Seen::Job(Ok(job("job-1", "SUCCESSED")))),
    );
    let again = decide(&o);
    assert!(again.events.is_empty());
    assert_eq!(again.requeue, Requeue::Resync);
    assert_eq!(record(&after, &again).status, after.status);
}

#[test]
fn failure_is_announced_as_a_warning() {
    let r = tracking("job-1", Phase::Running, 600);
    let mut o = obs(r.clone());
    observe(&mut o, SECRET, Some(Seen::Job(Ok(job("job-1", "FAILED")))));
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::JobFailed));
    assert_eq!(step.requeue, Requeue::Resync);
    assert_eq!(step.events.len(), 1);
    assert_eq!(step.events[0].type_, EventType::Warning);
    assert_eq!(step.events[0].reason, "Failed");
    assert_eq!(step.events[0].action, Action::PollImportJob);
    assert!(step.events[0].note.contains("Failed to get files from OSS"));
    let after = record(&r, &step);
    assert_eq!(after.status.phase, Some(Phase::Failed));
    assert_eq!(
        after.status.error_code.as_deref(),
        Some("Failed to get files from OSS.")
    );
    assert_eq!(condition_status(&after.status, STALLED), Some("True"));
    // A failed job is final but no spec stall: it keeps being resynced.
    assert_eq!(stalled_generation(&after.status), None);
}

#[test]
fn a_new_job_not_found_is_not_visible_yet() {
    let r = tracking("job-1", Phase::Pending, 10);
    let mut o = obs(r.clone());
    observe(&mut o, SECRET, Some(Seen::Job(Err(not_found()))));
    let step = decide(&o);
    assert_eq!(
        reason_of(&step),
        Some(&Reason::JobNotVisibleYet {
            job_id: "job-1".into(),
            error: not_found().to_string(),
        })
    );
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
    assert!(step.events.is_empty());
    let after = record(&r, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-1"));
    assert_eq!(condition_status(&after.status, STALLED), Some("False"));
}

#[test]
fn an_old_job_not_found_stalls() {
    // Past the grace period, and with no creation time at all.
    let past = tracking("job-1", Phase::Running, 3600);
    let mut unknown_age = tracking("job-1", Phase::Running, 0);
    unknown_age.status.created_at = None;
    let mut unreadable_age = tracking("job-1", Phase::Running, 0);
    unreadable_age.status.created_at = Some("yesterday".into());
    for r in [past, unknown_age, unreadable_age] {
        let mut o = obs(r.clone());
        observe(&mut o, SECRET, Some(Seen::Job(Err(not_found()))));
        let step = decide(&o);
        assert_eq!(
            code_of(&step),
            Some(Code::JobNotFound),
            "{:?}",
            r.status.created_at
        );
        assert_eq!(step.requeue, Requeue::Never);
        let after = record(&r, &step);
        assert_eq!(stalled_generation(&after.status), Some(1));
    }
}

#[test]
fn a_finished_job_that_cannot_be_read_is_no_news() {
    for phase in [Phase::Succeeded, Phase::Failed] {
        let mut o = obs(tracking("job-1", phase, 3600));
        observe(&mut o, SECRET, Some(Seen::Job(Err(server_error()))));
        let step = decide(&o);
        assert_eq!(step.status, None, "{phase:?}");
        assert!(step.events.is_empty());
        assert_eq!(step.requeue, Requeue::Backoff { min: None });
    }
    // A finished job that is gone is news: it stalls.
    let mut o = obs(tracking("job-1", Phase::Succeeded, 3600));
    observe(&mut o, SECRET, Some(Seen::Job(Err(not_found()))));
    assert_eq!(code_of(&decide(&o)), Some(Code::JobNotFound));
}

#[test]
fn an_unfinished_job_that_cannot_be_read_is_retried() {
    let mut o = obs(tracking("job-1", Phase::Running, 3600));
    observe(&mut o, SECRET, Some(Seen::Job(Err(server_error()))));
    let step = decide(&o);
    assert_eq!(
        reason_of(&step),
        Some(&Reason::Remote {
            failure: RemoteFailure::RemoteUnavailable,
            error: server_error().to_string()
        })
    );
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
}

#[test]
fn adopting_a_job_announces_it() {
    let mut r = resource();
    r.spec.job_id = Some("job-s".into());
    let mut o = obs(r.clone());
    assert_eq!(
        observe(
            &mut o,
            SECRET,
            Some(Seen::Job(Ok(job("job-s", "SUCCESSED"))))
        ),
        vec![Need::Credentials, Need::Job("job-s".into())]
    );
    let step = decide(&o);
    assert_eq!(step.plan, "adopt");
    assert_eq!(step.requeue, Requeue::Resync);
    let reasons: Vec<_> = step.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, vec!["Adopted", "Succeeded"]);
    assert_eq!(
        step.events[0],
        Event {
            type_: EventType::Normal,
            reason: "Adopted",
            action: Action::AdoptImportJob,
            note: "Adopted existing import job job-s".into(),
        }
    );
    let after = record(&r, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-s"));
    assert_eq!(obs(after).plan().name(), "poll");

    // A job to adopt that does not exist stalls.
    let mut o = obs(r);
    observe(&mut o, SECRET, Some(Seen::Job(Err(not_found()))));
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::JobNotFound));
    assert_eq!(step.requeue, Requeue::Never);
}

#[test]
fn a_spec_job_id_that_names_another_job_stalls() {
    let mut r = tracking("job-1", Phase::Running, 600);
    r.spec.job_id = Some("job-2".into());
    let o = obs(r.clone());
    assert_eq!(next_need(&o), None);
    let step = decide(&o);
    assert_eq!(step.plan, "job_id_conflict");
    assert_eq!(
        reason_of(&step),
        Some(&Reason::JobIdConflict {
            spec: "job-2".into(),
            status: "job-1".into(),
        })
    );
    assert_eq!(step.requeue, Requeue::Never);
    assert_eq!(step.act, Act::Nothing);
    let after = record(&r, &step);
    assert_eq!(stalled_generation(&after.status), Some(1));
}

// ---------------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------------

/// A Secret read (or none named), whether a default key exists, whether deleting, the choice.
type Case = (
    Option<Result<(), CredentialProblem>>,
    bool,
    bool,
    Result<KeySource, CredentialProblem>,
);

#[test]
fn the_key_is_chosen_by_table() {
    let missing = || CredentialProblem::KeyMissing {
        name: "s".into(),
        key: "api-key".into(),
    };
    use KeySource::{Default as Fallback, Secret};
    let cases: Vec<Case> = vec![
        (None, true, false, Ok(Fallback)),
        (None, true, true, Ok(Fallback)),
        (
            None,
            false,
            false,
            Err(CredentialProblem::NoSecretRefAndNoDefault),
        ),
        (
            None,
            false,
            true,
            Err(CredentialProblem::NoSecretRefAndNoDefault),
        ),
        (Some(Ok(())), true, false, Ok(Secret)),
        (Some(Ok(())), false, false, Ok(Secret)),
        (Some(Ok(())), true, true, Ok(Secret)),
        (Some(Ok(())), false, true, Ok(Secret)),
        // A broken Secret is not covered by the default while the resource lives...
        (Some(Err(missing())), true, false, Err(missing())),
        (Some(Err(missing())), false, false, Err(missing())),
        // ...but the default may delete the job once the Secret went first.
        (Some(Err(missing())), true, true, Ok(Fallback)),
        (Some(Err(missing())), false, true, Err(missing())),
        (
            Some(Err(CredentialProblem::SecretNotFound { name: "s".into() })),
            true,
            true,
            Ok(Fallback),
        ),
        (
            Some(Err(CredentialProblem::SecretNotFound { name: "s".into() })),
            false,
            true,
            Err(CredentialProblem::SecretNotFound { name: "s".into() }),
        ),
    ];
    for (secret, has_default, deleting, want) in cases {
        let label = format!("{secret:?} default={has_default} deleting={deleting}");
        let default = if has_default {
            DefaultKey::Granted
        } else {
            DefaultKey::Absent
        };
        assert_eq!(choose_key(secret, default, deleting), want, "{label}");
    }
}

#[test]
fn a_namespace_without_the_grant_gets_no_default_key_but_deletes_what_it_made() {
    use KeySource::*;
    let not_granted = || DefaultKey::NotGranted {
        namespace: "team-a".into(),
        selector: "modelstudio.io/default-key=granted".into(),
    };
    let problem = CredentialProblem::DefaultKeyNotGranted {
        namespace: "team-a".into(),
        selector: "modelstudio.io/default-key=granted".into(),
    };
    let refused = Err(problem.clone());
    let missing = || CredentialProblem::SecretNotFound { name: "s".into() };
    let cases: Vec<(
        Option<SecretRead>,
        bool,
        Result<KeySource, CredentialProblem>,
    )> = vec![
        // No Secret of its own: refused while it lives...
        (None, false, refused.clone()),
        // ...but a job the default key made before is still deleted with it.
        (None, true, Ok(Default)),
        // Its own Secret needs no grant.
        (Some(Ok(())), false, Ok(Secret)),
        (Some(Ok(())), true, Ok(Secret)),
        // A broken Secret of its own is never covered by the platform's key.
        (Some(Err(missing())), false, Err(missing())),
        (Some(Err(missing())), true, Err(missing())),
    ];
    for (secret, deleting, want) in cases {
        let label = format!("{secret:?} deleting={deleting}");
        assert_eq!(choose_key(secret, not_granted(), deleting), want, "{label}");
    }
    let message = problem.message();
    assert!(message.contains("team-a"), "{message}");
    assert!(message.contains("spec.apiKeySecretRef"), "{message}");
    assert!(
        message.contains("modelstudio.io/default-key=granted"),
        "{message}"
    );
}

#[test]
fn a_missing_key_stops_a_create_before_anything_remote() {
    let problem = CredentialProblem::KeyMissing {
        name: "s".into(),
        key: "api-key".into(),
    };
    let r = resource();
    let mut o = obs(r.clone());
    assert_eq!(
        observe(&mut o, Err(problem.clone()), None),
        vec![Need::FreshCopy, Need::Credentials]
    );
    let step = decide(&o);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(
        step.status,
        Some(Update {
            reason: Some(Reason::CredentialsMissing {
                problem,
                deleting: false
            }),
            phase: None,
            ..Default::default()
        })
    );
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
    let after = record(&r, &step);
    assert_eq!(after.status.phase, Some(Phase::Pending));
    assert_eq!(after.status.create_attempted_at, None);
    assert_eq!(
        condition_reason(&after.status, RECONCILING),
        Some("CredentialsMissing")
    );
}

#[test]
fn a_missing_key_on_a_poll_asks_for_no_read() {
    let mut o = obs(tracking("job-1", Phase::Running, 600));
    assert_eq!(
        observe(
            &mut o,
            Err(CredentialProblem::NoSecretRefAndNoDefault),
            None
        ),
        vec![Need::Credentials]
    );
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::CredentialsMissing));
    assert_eq!(step.status.as_ref().unwrap().phase, None);
}

#[test]
fn a_missing_key_on_a_delete_shows_deleting() {
    let problem = CredentialProblem::SecretNotFound { name: "s".into() };
    let r = deleting(tracking("job-1", Phase::Succeeded, 3600));
    let mut o = obs(r.clone());
    assert_eq!(
        observe(&mut o, Err(problem.clone()), None),
        vec![Need::Credentials]
    );
    let step = decide(&o);
    assert_eq!(step.plan, "delete");
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(
        step.status,
        Some(Update {
            reason: Some(Reason::CredentialsMissing {
                problem,
                deleting: true
            }),
            phase: Some(Phase::Deleting),
            ..Default::default()
        })
    );
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
    assert!(reason_of(&step).unwrap().message().contains("Orphan"));
    let after = record(&r, &step);
    assert_eq!(after.status.phase, Some(Phase::Deleting));
    assert!(after.has_finalizer);
}

// ---------------------------------------------------------------------------------------------
// Deletion
// ---------------------------------------------------------------------------------------------

/// The DELETE step of a resource tracking job-1, and the resource.
fn delete_step() -> (Resource, Step) {
    let r = deleting(tracking("job-1", Phase::Succeeded, 3600));
    let mut o = obs(r.clone());
    assert_eq!(observe(&mut o, SECRET, None), vec![Need::Credentials]);
    (r, decide(&o))
}

fn answer(r: &Resource, answer: Answer) -> Step {
    let mut o = obs(r.clone());
    o.answer = Some(answer);
    decide(&o)
}

#[test]
fn a_delete_plan_sends_the_delete() {
    let (_, step) = delete_step();
    assert_eq!(
        step,
        Step {
            plan: "delete",
            status: None,
            act: Act::Delete {
                job_id: "job-1".into()
            },
            events: vec![],
            requeue: Requeue::Never,
            protect_secret: false,
        }
    );
    // spec.jobId alone is deleted too.
    let mut r = deleting(resource());
    r.spec.job_id = Some("job-s".into());
    let mut o = obs(r);
    observe(&mut o, SECRET, None);
    assert_eq!(
        decide(&o).act,
        Act::Delete {
            job_id: "job-s".into()
        }
    );
}

#[test]
fn a_job_whose_model_a_deployment_serves_is_kept_until_the_deployment_is_gone() {
    let r = deleting(tracking("job-1", Phase::Succeeded, 3600));
    let mut o = obs(r.clone());
    observe(&mut o, SECRET, None);
    o.served_by = Some("serving".into());
    let step = decide(&o);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.requeue, Requeue::Poll);
    let update = step.status.expect("the wait is recorded");
    assert_eq!(update.phase, Some(Phase::Deleting));
    let reason = update.reason.expect("with its reason");
    assert_eq!(reason.code(), Code::ServedByDeployment);
    assert!(
        reason.message().contains("ModelDeployment serving"),
        "{}",
        reason.message()
    );
    // Once it is gone, the job is deleted.
    o.served_by = None;
    assert_eq!(
        decide(&o).act,
        Act::Delete {
            job_id: "job-1".into()
        }
    );
}

#[test]
fn a_deleted_job_lets_the_resource_go() {
    let (r, _) = delete_step();
    let step = answer(&r, Answer::Deleted(Ok(job("job-1", "SUCCESSED"))));
    assert_eq!(
        step,
        Step {
            plan: "delete",
            status: None,
            act: Act::RemoveFinalizer,
            events: vec![Event {
                type_: EventType::Normal,
                reason: "Deleted",
                action: Action::DeleteImportJob,
                note: "Deleted import job job-1 and its imported model".into(),
            }],
            requeue: Requeue::Never,
            protect_secret: false,
        }
    );
    assert!(!record(&r, &step).has_finalizer);
}

#[test]
fn a_job_already_gone_lets_the_resource_go() {
    let (r, _) = delete_step();
    let step = answer(&r, Answer::Deleted(Err(not_found())));
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(step.status, None);
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Normal,
            reason: "Deleted",
            action: Action::DeleteImportJob,
            note: "Import job job-1 was already gone from Model Studio".into(),
        }]
    );
}

#[test]
fn a_denied_delete_reads_the_job() {
    let (r, _) = delete_step();
    let step = answer(
        &r,
        Answer::Deleted(Err(ApiError::OperationDenied(remote(
            "OperationDenied",
            400,
        )))),
    );
    assert_eq!(
        step,
        Step {
            plan: "delete",
            status: None,
            act: Act::ReadAfterDenial {
                job_id: "job-1".into(),
                message: "OperationDenied message".into(),
            },
            events: vec![],
            requeue: Requeue::Never,
            protect_secret: false,
        }
    );
}

#[test]
fn a_running_job_blocks_its_deletion() {
    let (r, _) = delete_step();
    let step = answer(
        &r,
        Answer::ReadAfterDenial {
            message: "OperationDenied message".into(),
            job: Some(job("job-1", "RUNNING")),
        },
    );
    let reason = Reason::DeletionBlocked {
        error: "OperationDenied message".into(),
    };
    assert_eq!(reason_of(&step), Some(&reason));
    assert_eq!(step.requeue, Requeue::Poll);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Warning,
            reason: "DeletionBlocked",
            action: Action::DeleteImportJob,
            note: reason.message(),
        }]
    );
    let update = step.status.as_ref().unwrap();
    assert_eq!(update.phase, Some(Phase::Deleting));
    assert_eq!(
        update.job.as_ref().map(|j| j.remote_status.as_str()),
        Some("RUNNING")
    );
    let after = record(&r, &step);
    // The job's own phase is overridden: the resource is being deleted.
    assert_eq!(after.status.phase, Some(Phase::Deleting));
    assert_eq!(after.status.remote_status.as_deref(), Some("RUNNING"));
    assert_eq!(
        condition_reason(&after.status, RECONCILING),
        Some("DeletionBlocked")
    );
    assert!(after.has_finalizer);
}

#[test]
fn a_denied_delete_whose_read_failed_is_blocked() {
    let (r, _) = delete_step();
    let step = answer(
        &r,
        Answer::ReadAfterDenial {
            message: "busy".into(),
            job: None,
        },
    );
    assert_eq!(
        step.status,
        Some(Update {
            job: None,
            phase: Some(Phase::Deleting),
            reason: Some(Reason::DeletionBlocked {
                error: "busy".into()
            }),
            ..Default::default()
        })
    );
    assert_eq!(step.requeue, Requeue::Poll);
    assert_eq!(step.events[0].reason, "DeletionBlocked");
}

#[test]
fn a_finished_job_refused_deletion_is_refused_not_blocked() {
    let (r, _) = delete_step();
    let step = answer(
        &r,
        Answer::ReadAfterDenial {
            message: "in use".into(),
            job: Some(job("job-1", "SUCCESSED")),
        },
    );
    let reason = Reason::DeletionRefused {
        job_id: "job-1".into(),
        status: "SUCCESSED".into(),
        error: "in use".into(),
    };
    assert_eq!(reason_of(&step), Some(&reason));
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Warning,
            reason: "DeletionRefused",
            action: Action::DeleteImportJob,
            note: reason.message(),
        }]
    );
    let after = record(&r, &step);
    assert_eq!(after.status.phase, Some(Phase::Deleting));
    assert_eq!(
        condition_reason(&after.status, RECONCILING),
        Some("DeletionRefused")
    );
}

#[test]
fn a_failed_delete_is_retried_showing_deleting() {
    let (r, _) = delete_step();
    let step = answer(&r, Answer::Deleted(Err(server_error())));
    assert_eq!(
        step.status,
        Some(Update {
            reason: Some(Reason::Remote {
                failure: RemoteFailure::RemoteUnavailable,
                error: server_error().to_string()
            }),
            phase: Some(Phase::Deleting),
            ..Default::default()
        })
    );
    assert_eq!(step.act, Act::Nothing);
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
}

#[test]
fn an_orphaned_job_is_left_and_announced() {
    for (status_job, spec_job, named) in [
        (Some("job-1"), None, "job-1"),
        (None, Some("job-s"), "job-s"),
        (Some("job-1"), Some("job-1"), "job-1"),
    ] {
        let mut r = deleting(resource());
        r.spec.deletion_policy = DeletionPolicy::Orphan;
        r.spec.job_id = spec_job.map(Into::into);
        r.status.job_id = status_job.map(Into::into);
        let mut o = obs(r.clone());
        // No key is needed to let go.
        assert_eq!(
            observe(
                &mut o,
                Err(CredentialProblem::NoSecretRefAndNoDefault),
                None
            ),
            vec![Need::FreshCopy]
        );
        let step = decide(&o);
        assert_eq!(
            step,
            Step {
                plan: "release",
                status: None,
                act: Act::RemoveFinalizer,
                events: vec![Event {
                    type_: EventType::Normal,
                    reason: "Orphaned",
                    action: Action::DeleteImportJob,
                    note: format!(
                        "Left import job {named} in Model Studio (deletionPolicy: Orphan)"
                    ),
                }],
                requeue: Requeue::Never,
                protect_secret: false,
            }
        );
    }
}

#[test]
fn a_release_without_a_job_is_silent() {
    // Orphan with nothing remote, even with an unrecorded create.
    let mut orphan = deleting(attempted(5));
    orphan.spec.deletion_policy = DeletionPolicy::Orphan;
    // Delete with nothing ever created.
    let never = deleting(resource());
    for r in [orphan, never] {
        let mut o = obs(r.clone());
        assert_eq!(observe(&mut o, SECRET, None), vec![Need::FreshCopy]);
        let step = decide(&o);
        assert_eq!(
            step,
            Step {
                plan: "release",
                status: None,
                act: Act::RemoveFinalizer,
                events: vec![],
                requeue: Requeue::Never,
                protect_secret: false,
            },
            "{r:?}"
        );
    }
}

#[test]
fn a_deleting_resource_without_the_finalizer_is_left_alone() {
    let mut r = deleting(tracking("job-1", Phase::Running, 600));
    r.has_finalizer = false;
    let o = obs(r);
    assert_eq!(next_need(&o), None);
    assert_eq!(
        decide(&o),
        Step {
            plan: "nothing",
            status: None,
            act: Act::Nothing,
            events: vec![],
            requeue: Requeue::Never,
            protect_secret: false,
        }
    );
}

#[test]
fn deletes_remotely_only_with_the_delete_policy_and_something_remote() {
    let with = |policy, status_job: bool, spec_job: bool, attempt: bool| {
        let mut r = resource();
        r.spec.deletion_policy = policy;
        r.status.job_id = status_job.then(|| "job-1".into());
        r.spec.job_id = spec_job.then(|| "job-s".into());
        r.status.create_attempted_at = attempt.then(|| ago(5).to_string());
        deletes_remotely(&r)
    };
    use DeletionPolicy::*;
    assert!(!with(Delete, false, false, false));
    assert!(with(Delete, true, false, false));
    assert!(with(Delete, false, true, false));
    assert!(with(Delete, false, false, true));
    assert!(with(Delete, true, true, true));
    for s in [false, true] {
        for j in [false, true] {
            for a in [false, true] {
                assert!(!with(Orphan, s, j, a), "{s} {j} {a}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery
// ---------------------------------------------------------------------------------------------

fn complete(jobs: Vec<Job>) -> Seen {
    Seen::Listing(Ok(Listing {
        jobs,
        complete: true,
    }))
}

/// The step of a Recover plan on `r` with the listing `seen`.
fn recover_step(r: &Resource, seen: Seen) -> Step {
    let mut o = obs(r.clone());
    assert_eq!(
        observe(&mut o, SECRET, Some(seen)),
        vec![Need::FreshCopy, Need::Credentials, Need::Listing]
    );
    let step = decide(&o);
    assert_eq!(step.plan, "recover");
    step
}

fn not_listed_yet() -> Reason {
    Reason::CreateUnconfirmed(Unconfirmed::NotListedYet {
        display_name: ours(),
        grace: GRACE,
    })
}

#[test]
fn a_recovered_job_is_mirrored_and_announced() {
    let r = attempted(600);
    let step = recover_step(
        &r,
        complete(vec![stranger("job-x"), job("job-1", "RUNNING")]),
    );
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.requeue, Requeue::Poll);
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Normal,
            reason: "Recovered",
            action: Action::RecoverImportJob,
            note: "Found import job job-1 made by an earlier create whose answer was not recorded; not creating another".into(),
        }]
    );
    assert_eq!(
        reason_of(&step),
        Some(&Reason::JobRunning {
            job_id: "job-1".into()
        })
    );
    let after = record(&r, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-1"));
    assert_eq!(after.status.create_attempted_at, None);
    assert_eq!(after.status.phase, Some(Phase::Running));
    assert_eq!(obs(after).plan().name(), "poll");
}

#[test]
fn a_recovered_finished_job_is_announced_twice() {
    let r = attempted(600);
    let step = recover_step(&r, complete(vec![job("job-1", "SUCCESSED")]));
    let reasons: Vec<_> = step.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, vec!["Recovered", "Succeeded"]);
    assert_eq!(step.requeue, Requeue::Resync);
}

#[test]
fn a_recovery_found_even_on_a_partial_listing_within_the_grace_period() {
    let r = attempted(5);
    let step = recover_step(
        &r,
        Seen::Listing(Ok(Listing {
            jobs: vec![job("job-1", "PENDING")],
            complete: false,
        })),
    );
    assert_eq!(step.events[0].reason, "Recovered");
    assert_eq!(code_of(&step), Some(Code::JobPending));
}

#[test]
fn nothing_listed_after_the_grace_period_creates_again() {
    let r = attempted(600);
    let step = recover_step(&r, complete(vec![stranger("job-x")]));
    assert_eq!(
        step.status,
        Some(Update {
            reason: Some(Reason::Creating),
            intent: Some(ours()),
            ..Default::default()
        })
    );
    assert_eq!(
        step.act,
        Act::Create(NewJob {
            base_model: BASE.into(),
            display_name: Some(ours()),
            source: Source::Oss,
            weight_type: WeightType::Lora,
            storage: storage(),
        })
    );
    assert!(step.events.is_empty());
    // The new attempt is stamped now.
    let after = record(&r, &step);
    assert_eq!(after.status.create_attempted_at, Some(now().to_string()));
}

#[test]
fn the_recorded_display_name_is_looked_for_and_resent() {
    // The status's display name wins over the one the spec would give now.
    let mut r = attempted(600);
    r.spec.display_name = Some("renamed".into());
    let step = recover_step(&r, complete(vec![]));
    assert_eq!(step.status.as_ref().unwrap().intent, Some(ours()));
    match &step.act {
        Act::Create(j) => assert_eq!(j.display_name, Some(ours())),
        other => panic!("{other:?}"),
    }
    let mut found = job("job-1", "RUNNING");
    found.display_name = Some(display_name("renamed", UID));
    let step = recover_step(&r, complete(vec![found]));
    assert_eq!(
        step.act,
        Act::Create(modelstudio_core::import::step::new_job(&r))
    );
}

#[test]
fn nothing_listed_yet_waits() {
    // A partial listing after the grace period, and a whole one within it.
    for (r, complete) in [(attempted(600), false), (attempted(30), true)] {
        let step = recover_step(
            &r,
            Seen::Listing(Ok(Listing {
                jobs: vec![stranger("job-x")],
                complete,
            })),
        );
        assert_eq!(
            step.status,
            Some(Update {
                reason: Some(not_listed_yet()),
                ..Default::default()
            })
        );
        assert_eq!(step.act, Act::Nothing);
        assert!(step.events.is_empty());
        assert_eq!(step.requeue, Requeue::Backoff { min: None });
        let after = record(&r, &step);
        assert_eq!(
            after.status.create_attempted_at,
            r.status.create_attempted_at
        );
        assert_eq!(
            condition_reason(&after.status, RECONCILING),
            Some("CreateUnconfirmed")
        );
    }
}

#[test]
fn the_grace_period_is_counted_from_the_attempt() {
    let just_under = attempted(GRACE.as_secs() as i64 - 1);
    let step = recover_step(&just_under, complete(vec![]));
    assert_eq!(reason_of(&step), Some(&not_listed_yet()));
    let at = attempted(GRACE.as_secs() as i64);
    let step = recover_step(&at, complete(vec![]));
    assert_eq!(reason_of(&step), Some(&Reason::Creating));
}

#[test]
fn nothing_listed_with_a_chosen_job_forgets_the_create() {
    let mut r = attempted(600);
    r.spec.job_id = Some("job-s".into());
    let step = recover_step(&r, complete(vec![stranger("job-x")]));
    assert_eq!(
        step.status,
        Some(Update {
            create_not_applied: true,
            ..Default::default()
        })
    );
    assert_eq!(step.act, Act::Nothing);
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
    let after = record(&r, &step);
    assert_eq!(after.status.create_attempted_at, None);
    // spec.jobId is taken over next.
    let o = obs(after);
    assert_eq!(o.plan().name(), "adopt");
}

#[test]
fn nothing_listed_while_deleting_lets_go() {
    let r = deleting(attempted(600));
    let step = recover_step(&r, complete(vec![]));
    assert_eq!(
        step,
        Step {
            plan: "recover",
            status: None,
            act: Act::RemoveFinalizer,
            events: vec![],
            requeue: Requeue::Never,
            protect_secret: false,
        }
    );
    // With spec.jobId the chosen job is deleted next rather than leaked.
    let mut r = deleting(attempted(600));
    r.spec.job_id = Some("job-s".into());
    let step = recover_step(&r, complete(vec![]));
    assert_eq!(step.act, Act::Nothing);
    let after = record(&r, &step);
    assert_eq!(obs(after).plan().name(), "delete");
}

#[test]
fn a_job_recovered_while_deleting_is_deleted_next() {
    let r = deleting(attempted(600));
    let step = recover_step(&r, complete(vec![job("job-1", "RUNNING")]));
    assert_eq!(step.events[0].reason, "Recovered");
    let after = record(&r, &step);
    let mut o = obs(after);
    assert_eq!(observe(&mut o, SECRET, None), vec![Need::Credentials]);
    assert_eq!(
        decide(&o).act,
        Act::Delete {
            job_id: "job-1".into()
        }
    );
}

#[test]
fn several_holders_stall_until_a_person_chooses() {
    let r = attempted(600);
    let listed = || {
        vec![
            job("job-a", "RUNNING"),
            stranger("job-x"),
            job("job-b", "SUCCESSED"),
        ]
    };
    let step = recover_step(&r, complete(listed()));
    let reason = Reason::CreateAmbiguous {
        display_name: ours(),
        job_ids: vec!["job-a".into(), "job-b".into()],
    };
    assert_eq!(reason_of(&step), Some(&reason));
    assert_eq!(step.requeue, Requeue::Never);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(
        step.events,
        vec![Event {
            type_: EventType::Warning,
            reason: "CreateAmbiguous",
            action: Action::RecoverImportJob,
            note: reason.message(),
        }]
    );
    let stalled = record(&r, &step);
    assert_eq!(stalled_generation(&stalled.status), Some(1));
    assert_eq!(
        condition_reason(&stalled.status, STALLED),
        Some("CreateAmbiguous")
    );
    assert_eq!(obs(stalled.clone()).plan().name(), "wait_for_spec_change");

    // The person sets spec.jobId to one of them: a new generation, which adopts it.
    let mut chosen = stalled;
    chosen.spec.job_id = Some("job-b".into());
    chosen.generation = Some(2);
    let step = recover_step(&chosen, complete(listed()));
    let reasons: Vec<_> = step.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, vec!["Adopted", "Succeeded"]);
    assert_eq!(step.events[0].note, "Adopted existing import job job-b");
    assert_eq!(step.events[0].action, Action::AdoptImportJob);
    assert_eq!(step.requeue, Requeue::Resync);
    let after = record(&chosen, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-b"));
    assert_eq!(after.status.create_attempted_at, None);
    assert_eq!(after.status.observed_generation, Some(2));
    assert_eq!(condition_status(&after.status, READY), Some("True"));
    assert_eq!(condition_status(&after.status, STALLED), Some("False"));
    assert_eq!(obs(after).plan().name(), "poll");
}

#[test]
fn several_holders_while_deleting_are_looked_at_again() {
    let r = deleting(attempted(600));
    let step = recover_step(
        &r,
        complete(vec![job("job-a", "RUNNING"), job("job-b", "RUNNING")]),
    );
    assert_eq!(code_of(&step), Some(Code::CreateAmbiguous));
    assert_eq!(step.requeue, Requeue::Poll);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.events.len(), 1);
    assert_eq!(step.events[0].type_, EventType::Warning);
}

#[test]
fn a_failed_listing_is_retried() {
    let r = attempted(600);
    let step = recover_step(&r, Seen::Listing(Err(server_error())));
    assert_eq!(
        step.status,
        Some(Update {
            reason: Some(Reason::Remote {
                failure: RemoteFailure::RemoteUnavailable,
                error: server_error().to_string()
            }),
            ..Default::default()
        })
    );
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
    assert_eq!(step.act, Act::Nothing);
    // A listing never creates: even a refusal is no reason to create.
    let step = recover_step(
        &r,
        Seen::Listing(Err(ApiError::InvalidApiKey(remote("InvalidApiKey", 401)))),
    );
    assert_eq!(code_of(&step), Some(Code::InvalidApiKey));
    assert_eq!(step.act, Act::Nothing);
    let after = record(&r, &step);
    assert_eq!(
        after.status.create_attempted_at,
        r.status.create_attempted_at
    );
}

#[test]
fn a_recovery_waits_for_its_listing_and_a_fresh_copy() {
    let r = attempted(600);
    // No fresh copy yet.
    let o = obs(r.clone());
    assert_eq!(decide(&o).requeue, Requeue::After(STALE_RETRY));
    // A fresh copy and a key, but no listing.
    let mut o = obs(r.clone());
    o.fresh = Some(r.clone());
    o.credentials = Some(SECRET);
    assert_eq!(next_need(&o), Some(Need::Listing));
    let step = decide(&o);
    assert_eq!(step.status, None);
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
    // A fresh copy that already records the job: the cache lagged, nothing is listed.
    let mut o = obs(r);
    o.fresh = Some(tracking("job-1", Phase::Pending, 5));
    assert_eq!(next_need(&o), None);
    let step = decide(&o);
    assert_eq!(step.status, None);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
}

// ---------------------------------------------------------------------------------------------
// Protecting the credentials Secret
// ---------------------------------------------------------------------------------------------

/// The fingerprint of the key a job was made with, and of another key.
const FP_OLD: &str = "sha256:0a1b2c3d";
const FP_NEW: &str = "sha256:9f8e7d6c";

/// As `observe`, with the key's fingerprint and whether its Secret is protected given along with
/// the credentials, as the IO side reads them together.
fn observe_key(
    o: &mut Observation,
    key: Result<KeySource, CredentialProblem>,
    fingerprint: Option<&str>,
    protected: Option<bool>,
    seen: Option<Seen>,
) -> Vec<Need> {
    let needs = observe(o, key, seen);
    if needs.contains(&Need::Credentials) {
        o.key_fingerprint = fingerprint.map(Into::into);
        o.secret_protected = protected;
    }
    needs
}

#[test]
fn an_unprotected_secret_is_protected_before_a_create() {
    let mut o = obs(resource());
    assert_eq!(
        observe_key(&mut o, SECRET, Some(FP_NEW), Some(false), None),
        vec![Need::FreshCopy, Need::Credentials]
    );
    let step = decide(&o);
    assert_eq!(step.plan, "create");
    assert!(step.protect_secret);
    assert_eq!(
        step.act,
        Act::Create(modelstudio_core::import::step::new_job(&resource()))
    );
    // The intent records the key: the job of this create will live in its workspace.
    assert_eq!(
        step.status.as_ref().unwrap().fingerprint.as_deref(),
        Some(FP_NEW)
    );
}

#[test]
fn an_unprotected_secret_is_protected_on_every_step_that_calls_model_studio() {
    // Poll: the job is read, or fails to be read; either way it exists and needs the key.
    for seen in [
        Seen::Job(Ok(job("job-1", "RUNNING"))),
        Seen::Job(Err(server_error())),
    ] {
        let mut o = obs(tracking("job-1", Phase::Running, 600));
        observe_key(&mut o, SECRET, Some(FP_OLD), Some(false), Some(seen));
        let step = decide(&o);
        assert_eq!(step.plan, "poll");
        assert!(step.protect_secret, "{:?}", step.status);
    }
    // Adopt.
    let mut r = resource();
    r.spec.job_id = Some("job-s".into());
    let mut o = obs(r);
    observe_key(
        &mut o,
        SECRET,
        Some(FP_OLD),
        Some(false),
        Some(Seen::Job(Ok(job("job-s", "RUNNING")))),
    );
    let step = decide(&o);
    assert_eq!(step.plan, "adopt");
    assert!(step.protect_secret);
    // Recover.
    let mut o = obs(attempted(600));
    assert_eq!(
        observe_key(
            &mut o,
            SECRET,
            Some(FP_OLD),
            Some(false),
            Some(complete(vec![job("job-1", "RUNNING")]))
        ),
        vec![Need::FreshCopy, Need::Credentials, Need::Listing]
    );
    let step = decide(&o);
    assert_eq!(step.plan, "recover");
    assert!(step.protect_secret);
}

#[test]
fn a_key_not_from_an_unprotected_secret_protects_nothing() {
    let problem = CredentialProblem::KeyMissing {
        name: "s".into(),
        key: "api-key".into(),
    };
    // (key, whether its Secret is protected)
    let cases: Vec<(Result<KeySource, CredentialProblem>, Option<bool>)> = vec![
        // The controller's default key: no Secret to protect.
        (Ok(KeySource::Default), None),
        // Even if the IO side reported an unprotected Secret along with it.
        (Ok(KeySource::Default), Some(false)),
        // Already protected.
        (SECRET, Some(true)),
        // Not known to be unprotected.
        (SECRET, None),
        // No usable key at all.
        (Err(problem), Some(false)),
    ];
    for (key, protected) in cases {
        let label = format!("{key:?} {protected:?}");
        let mut o = obs(resource());
        observe_key(&mut o, key.clone(), Some(FP_NEW), protected, None);
        let step = decide(&o);
        assert_eq!(step.plan, "create", "{label}");
        assert!(!step.protect_secret, "{label}");
        let mut o = obs(tracking("job-1", Phase::Running, 600));
        let seen = key.is_ok().then(|| Seen::Job(Ok(job("job-1", "RUNNING"))));
        observe_key(&mut o, key, Some(FP_OLD), protected, seen);
        let step = decide(&o);
        assert_eq!(step.plan, "poll", "{label}");
        assert!(!step.protect_secret, "{label}");
    }
}

#[test]
fn a_deleting_or_orphaning_resource_protects_nothing() {
    // Deleting: the DELETE itself, and a recovery before it.
    let mut o = obs(deleting(tracking("job-1", Phase::Succeeded, 3600)));
    assert_eq!(
        observe_key(&mut o, SECRET, Some(FP_OLD), Some(false), None),
        vec![Need::Credentials]
    );
    let step = decide(&o);
    assert_eq!(
        step,
        Step {
            plan: "delete",
            status: None,
            act: Act::Delete {
                job_id: "job-1".into()
            },
            events: vec![],
            requeue: Requeue::Never,
            protect_secret: false,
        }
    );
    let mut o = obs(deleting(attempted(600)));
    observe_key(
        &mut o,
        SECRET,
        Some(FP_OLD),
        Some(false),
        Some(complete(vec![job("job-1", "RUNNING")])),
    );
    let step = decide(&o);
    assert_eq!(step.plan, "recover");
    assert!(!step.protect_secret);

    // deletionPolicy Orphan: the job never needs the key to be deleted.
    let mut r = resource();
    r.spec.deletion_policy = DeletionPolicy::Orphan;
    let mut o = obs(r);
    observe_key(&mut o, SECRET, Some(FP_NEW), Some(false), None);
    let step = decide(&o);
    assert_eq!(step.plan, "create");
    assert!(matches!(step.act, Act::Create(_)));
    assert!(!step.protect_secret);
    let mut r = tracking("job-1", Phase::Running, 600);
    r.spec.deletion_policy = DeletionPolicy::Orphan;
    let mut o = obs(r);
    observe_key(
        &mut o,
        SECRET,
        Some(FP_OLD),
        Some(false),
        Some(Seen::Job(Ok(job("job-1", "RUNNING")))),
    );
    let step = decide(&o);
    assert_eq!(step.plan, "poll");
    assert!(!step.protect_secret);
}

#[test]
fn steps_that_call_nothing_remote_protect_nothing() {
    // The observation is filled in by hand: these plans never ask for a key.
    let with_key = |r: Resource| {
        let mut o = obs(r);
        o.credentials = Some(SECRET);
        o.key_fingerprint = Some(FP_NEW.into());
        o.secret_protected = Some(false);
        decide(&o)
    };
    let mut no_finalizer = resource();
    no_finalizer.has_finalizer = false;
    let step = with_key(no_finalizer);
    assert_eq!(step.plan, "add_finalizer");
    assert_eq!(step.act, Act::AddFinalizer);
    assert!(!step.protect_secret);

    let mut conflict = tracking("job-1", Phase::Running, 600);
    conflict.spec.job_id = Some("job-2".into());
    let step = with_key(conflict);
    assert_eq!(step.plan, "job_id_conflict");
    assert!(!step.protect_secret);

    let mut stalled = attempted(0);
    stalled.status = next_status(
        &stalled.status,
        &Update {
            reason: Some(Reason::InvalidParameter {
                error: "bad".into(),
            }),
            create_not_applied: true,
            ..Default::default()
        },
        Some(1),
        now(),
    );
    let step = with_key(stalled);
    assert_eq!(step.plan, "wait_for_spec_change");
    assert!(!step.protect_secret);

    let mut orphan = deleting(tracking("job-1", Phase::Running, 600));
    orphan.spec.deletion_policy = DeletionPolicy::Orphan;
    let mut o = obs(orphan.clone());
    o.fresh = Some(orphan);
    o.credentials = Some(SECRET);
    o.secret_protected = Some(false);
    let step = decide(&o);
    assert_eq!(step.plan, "release");
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert!(!step.protect_secret);
}

#[test]
fn an_answer_step_protects_nothing() {
    // The Secret was protected (or not) before the call; the answer only records.
    let answers = [
        Answer::Created(Ok(job("job-1", "PENDING"))),
        Answer::Created(Err(server_error())),
        Answer::Created(Err(ApiError::InvalidParameter(remote(
            "InvalidParameter",
            400,
        )))),
    ];
    for a in answers {
        let label = format!("{a:?}");
        let mut o = obs(attempted(0));
        o.credentials = Some(SECRET);
        o.key_fingerprint = Some(FP_NEW.into());
        o.secret_protected = Some(false);
        o.answer = Some(a);
        let step = decide(&o);
        assert!(!step.protect_secret, "{label}");
    }
}

#[test]
fn no_protection_without_a_key_read() {
    // A poll too soon after the last read reads no key.
    let mut o = Observation::new(
        now(),
        timing(),
        tracking("job-1", Phase::Running, 600),
        Some(Duration::from_secs(1)),
    );
    o.secret_protected = Some(false);
    assert_eq!(next_need(&o), None);
    let step = decide(&o);
    assert_eq!(step.requeue, Requeue::After(Duration::from_secs(29)));
    assert!(!step.protect_secret);
    // A create that has not read its key yet.
    let mut o = obs(resource());
    o.fresh = Some(resource());
    o.secret_protected = Some(false);
    let step = decide(&o);
    assert_eq!(step.requeue, Requeue::After(STALE_RETRY));
    assert!(!step.protect_secret);
}

// ---------------------------------------------------------------------------------------------
// The fingerprint of the key a job was seen with
// ---------------------------------------------------------------------------------------------

/// `r` with `fingerprint` recorded as the key its job was last seen with.
fn seen_with(mut r: Resource, fingerprint: Option<&str>) -> Resource {
    r.status.key_fingerprint = fingerprint.map(Into::into);
    r
}

fn fingerprint_of(step: &Step) -> Option<&str> {
    step.status.as_ref().and_then(|u| u.fingerprint.as_deref())
}

#[test]
fn a_created_job_records_the_key_it_was_made_with() {
    let r = attempted(0);
    let mut o = obs(r.clone());
    o.credentials = Some(SECRET);
    o.key_fingerprint = Some(FP_NEW.into());
    o.answer = Some(Answer::Created(Ok(job("job-1", "PENDING"))));
    let step = decide(&o);
    assert_eq!(fingerprint_of(&step), Some(FP_NEW));
    let after = record(&r, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-1"));
    assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_NEW));

    // A create that made no job records no key.
    for err in [server_error(), not_found()] {
        let mut o = obs(r.clone());
        o.credentials = Some(SECRET);
        o.key_fingerprint = Some(FP_NEW.into());
        o.answer = Some(Answer::Created(Err(err)));
        let step = decide(&o);
        assert_eq!(step.status.as_ref().unwrap().job, None);
        assert_eq!(fingerprint_of(&step), None);
        assert_eq!(record(&r, &step).status.key_fingerprint, None);
    }
}

#[test]
fn a_mirrored_poll_or_adoption_records_the_key() {
    // First seen with this key: recorded.
    let r = tracking("job-1", Phase::Pending, 600);
    let mut o = obs(r.clone());
    observe_key(
        &mut o,
        SECRET,
        Some(FP_OLD),
        Some(true),
        Some(Seen::Job(Ok(job("job-1", "RUNNING")))),
    );
    let step = decide(&o);
    assert_eq!(fingerprint_of(&step), Some(FP_OLD));
    let after = record(&r, &step);
    assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_OLD));
    // Seen again with the same key: nothing changes.
    let mut o = obs(after.clone());
    observe_key(
        &mut o,
        SECRET,
        Some(FP_OLD),
        Some(true),
        Some(Seen::Job(Ok(job("job-1", "RUNNING")))),
    );
    let again = decide(&o);
    assert_eq!(fingerprint_of(&again), Some(FP_OLD));
    assert_eq!(record(&after, &again).status, after.status);

    // Adopted with the controller's default key: its fingerprint is recorded too.
    let mut r = resource();
    r.spec.job_id = Some("job-s".into());
    let mut o = obs(r.clone());
    observe_key(
        &mut o,
        Ok(KeySource::Default),
        Some(FP_NEW),
        None,
        Some(Seen::Job(Ok(job("job-s", "SUCCESSED")))),
    );
    let step = decide(&o);
    assert_eq!(step.plan, "adopt");
    assert_eq!(fingerprint_of(&step), Some(FP_NEW));
    let after = record(&r, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-s"));
    assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_NEW));
}

#[test]
fn a_recovered_job_records_the_key() {
    let r = attempted(600);
    let mut o = obs(r.clone());
    observe_key(
        &mut o,
        SECRET,
        Some(FP_NEW),
        Some(true),
        Some(complete(vec![stranger("job-x"), job("job-1", "RUNNING")])),
    );
    let step = decide(&o);
    assert_eq!(step.events[0].reason, "Recovered");
    assert_eq!(fingerprint_of(&step), Some(FP_NEW));
    let after = record(&r, &step);
    assert_eq!(after.status.job_id.as_deref(), Some("job-1"));
    assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_NEW));
}

#[test]
fn a_rotated_key_that_still_sees_the_job_replaces_the_fingerprint() {
    // The key was rotated within the same workspace: the job (made long ago) is still read.
    let r = seen_with(tracking("job-1", Phase::Running, 3600), Some(FP_OLD));
    let mut o = obs(r.clone());
    let read = Job {
        created_at: r.status.created_at.clone(),
        ..job("job-1", "RUNNING")
    };
    observe_key(
        &mut o,
        SECRET,
        Some(FP_NEW),
        Some(true),
        Some(Seen::Job(Ok(read))),
    );
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::JobRunning));
    assert_eq!(fingerprint_of(&step), Some(FP_NEW));
    let after = record(&r, &step);
    assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_NEW));
    // From then on a NotFound under the new key is taken at its word.
    let mut o = obs(after);
    observe_key(
        &mut o,
        SECRET,
        Some(FP_NEW),
        Some(true),
        Some(Seen::Job(Err(not_found()))),
    );
    let step = decide(&o);
    assert_eq!(
        reason_of(&step),
        Some(&Reason::JobNotFound {
            error: remote("NotFound", 404).to_string()
        })
    );
    assert_eq!(step.requeue, Requeue::Never);
}

#[test]
fn updates_without_a_job_keep_the_recorded_key() {
    // A failed read of the job is no proof of the key's workspace.
    let r = seen_with(tracking("job-1", Phase::Running, 600), Some(FP_OLD));
    let mut o = obs(r.clone());
    observe_key(
        &mut o,
        SECRET,
        Some(FP_NEW),
        Some(true),
        Some(Seen::Job(Err(server_error()))),
    );
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::RemoteUnavailable));
    assert_eq!(fingerprint_of(&step), None);
    assert_eq!(
        record(&r, &step).status.key_fingerprint.as_deref(),
        Some(FP_OLD)
    );
    // Nor is a key that cannot be read.
    let mut o = obs(r.clone());
    observe_key(
        &mut o,
        Err(CredentialProblem::NoSecretRefAndNoDefault),
        None,
        None,
        None,
    );
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::CredentialsMissing));
    assert_eq!(
        record(&r, &step).status.key_fingerprint.as_deref(),
        Some(FP_OLD)
    );
}

#[test]
fn a_job_read_after_a_refused_delete_records_the_key() {
    let r = seen_with(
        deleting(tracking("job-1", Phase::Succeeded, 3600)),
        Some(FP_OLD),
    );
    let mut o = obs(r.clone());
    o.key_fingerprint = Some(FP_NEW.into());
    o.answer = Some(Answer::ReadAfterDenial {
        message: "busy".into(),
        job: Some(job("job-1", "RUNNING")),
    });
    let step = decide(&o);
    assert_eq!(code_of(&step), Some(Code::DeletionBlocked));
    assert_eq!(fingerprint_of(&step), Some(FP_NEW));
    assert!(!step.protect_secret);
    // Without the job read, nothing is recorded.
    let mut o = obs(r);
    o.key_fingerprint = Some(FP_NEW.into());
    o.answer = Some(Answer::ReadAfterDenial {
        message: "busy".into(),
        job: None,
    });
    assert_eq!(fingerprint_of(&decide(&o)), None);
}

// ---------------------------------------------------------------------------------------------
// A key of another workspace
// ---------------------------------------------------------------------------------------------

fn workspace_changed(job_id: &str) -> Reason {
    Reason::WorkspaceChanged {
        job_id: job_id.into(),
        recorded: FP_OLD.into(),
        current: FP_NEW.into(),
    }
}

#[test]
fn workspace_changed_names_both_keys_and_the_ways_out() {
    let reason = workspace_changed("job-1");
    assert_eq!(reason.code(), Code::WorkspaceChanged);
    assert_eq!(reason.code().as_str(), "WorkspaceChanged");
    assert!(!reason.waits_for_spec_change());
    let message = reason.message();
    for part in [
        "Import job job-1",
        "the API key sha256:0a1b2c3d",
        "(sha256:9f8e7d6c)",
        "another workspace",
        "Put the original key back",
        "spec.apiKeySecretRef",
        "spec.deletionPolicy to Orphan",
    ] {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

#[test]
fn a_job_not_found_under_another_key_is_not_taken_as_gone() {
    // Old, just created (within the grace period), and finished: all the same.
    for (phase, created_secs_ago) in [
        (Phase::Running, 3600),
        (Phase::Pending, 10),
        (Phase::Succeeded, 3600),
    ] {
        let r = seen_with(tracking("job-1", phase, created_secs_ago), Some(FP_OLD));
        let mut o = obs(r.clone());
        observe_key(
            &mut o,
            SECRET,
            Some(FP_NEW),
            Some(true),
            Some(Seen::Job(Err(not_found()))),
        );
        let step = decide(&o);
        let label = format!("{phase:?} {created_secs_ago}");
        assert_eq!(
            step,
            Step {
                plan: "poll",
                status: Some(Update {
                    reason: Some(workspace_changed("job-1")),
                    ..Default::default()
                }),
                act: Act::Nothing,
                events: vec![],
                requeue: Requeue::Backoff { min: None },
                protect_secret: false,
            },
            "{label}"
        );
        let after = record(&r, &step);
        assert_eq!(condition_status(&after.status, STALLED), Some("True"));
        assert_eq!(
            condition_reason(&after.status, STALLED),
            Some("WorkspaceChanged")
        );
        assert_eq!(condition_status(&after.status, RECONCILING), Some("False"));
        assert_eq!(condition_status(&after.status, READY), Some("False"));
        // Not a spec stall: the job is read again (with backoff) until the key is back.
        assert_eq!(stalled_generation(&after.status), None, "{label}");
        assert_eq!(after.status.job_id.as_deref(), Some("job-1"));
        assert_eq!(after.status.phase, Some(phase));
        assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_OLD));
        assert_eq!(obs(after).plan().name(), "poll");
    }
}

#[test]
fn the_original_key_back_clears_workspace_changed() {
    let r = seen_with(tracking("job-1", Phase::Running, 3600), Some(FP_OLD));
    let mut o = obs(r.clone());
    observe_key(
        &mut o,
        SECRET,
        Some(FP_NEW),
        Some(true),
        Some(Seen::Job(Err(not_found()))),
    );
    let stalled = record(&r, &decide(&o));
    let mut o = obs(stalled.clone());
    observe_key(
        &mut o,
        SECRET,
        Some(FP_OLD),
        Some(true),
        Some(Seen::Job(Ok(job("job-1", "RUNNING")))),
    );
    let step = decide(&o);
    let after = record(&stalled, &step);
    assert_eq!(condition_status(&after.status, STALLED), Some("False"));
    assert_eq!(
        condition_reason(&after.status, RECONCILING),
        Some("JobRunning")
    );
    assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_OLD));
}

#[test]
fn a_job_to_adopt_not_found_under_another_key_is_workspace_changed() {
    let mut r = seen_with(resource(), Some(FP_OLD));
    r.spec.job_id = Some("job-s".into());
    let mut o = obs(r);
    observe_key(
        &mut o,
        SECRET,
        Some(FP_NEW),
        Some(true),
        Some(Seen::Job(Err(not_found()))),
    );
    let step = decide(&o);
    assert_eq!(step.plan, "adopt");
    assert_eq!(reason_of(&step), Some(&workspace_changed("job-s")));
    assert_eq!(step.requeue, Requeue::Backoff { min: None });
    assert!(step.events.is_empty());
}

#[test]
fn other_read_failures_under_another_key_are_unchanged() {
    for (err, want) in [
        (
            server_error(),
            Reason::Remote {
                failure: RemoteFailure::RemoteUnavailable,
                error: server_error().to_string(),
            },
        ),
        (
            ApiError::InvalidApiKey(remote("InvalidApiKey", 401)),
            Reason::Remote {
                failure: RemoteFailure::InvalidApiKey,
                error: ApiError::InvalidApiKey(remote("InvalidApiKey", 401)).to_string(),
            },
        ),
    ] {
        let r = seen_with(tracking("job-1", Phase::Running, 3600), Some(FP_OLD));
        let mut o = obs(r);
        observe_key(
            &mut o,
            SECRET,
            Some(FP_NEW),
            Some(true),
            Some(Seen::Job(Err(err))),
        );
        let step = decide(&o);
        assert_eq!(reason_of(&step), Some(&want));
        assert_eq!(step.requeue, Requeue::Backoff { min: None });
    }
}

#[test]
fn a_job_not_found_under_the_same_key_or_an_unrecorded_one_stalls_as_before() {
    // (recorded, current)
    for (recorded, current) in [
        (Some(FP_OLD), Some(FP_OLD)),
        (None, Some(FP_NEW)),
        (Some(FP_OLD), None),
        (None, None),
    ] {
        let label = format!("{recorded:?} {current:?}");
        let r = seen_with(tracking("job-1", Phase::Running, 3600), recorded);
        let mut o = obs(r.clone());
        observe_key(
            &mut o,
            SECRET,
            current,
            Some(true),
            Some(Seen::Job(Err(not_found()))),
        );
        let step = decide(&o);
        assert_eq!(
            step.status,
            Some(Update {
                reason: Some(Reason::JobNotFound {
                    error: remote("NotFound", 404).to_string()
                }),
                ..Default::default()
            }),
            "{label}"
        );
        assert_eq!(step.requeue, Requeue::Never, "{label}");
        let after = record(&r, &step);
        assert_eq!(stalled_generation(&after.status), Some(1), "{label}");
        assert_eq!(after.status.key_fingerprint.as_deref(), recorded, "{label}");
        // And a job made moments ago is still only not visible yet.
        let r = seen_with(tracking("job-1", Phase::Pending, 10), recorded);
        let mut o = obs(r);
        observe_key(
            &mut o,
            SECRET,
            current,
            Some(true),
            Some(Seen::Job(Err(not_found()))),
        );
        assert_eq!(
            code_of(&decide(&o)),
            Some(Code::JobNotVisibleYet),
            "{label}"
        );
    }
}

/// The answer to the DELETE of job-1 recorded as seen with `recorded`, sent with `current`.
fn delete_answer(
    recorded: Option<&str>,
    current: Option<&str>,
    result: Answer,
) -> (Resource, Step) {
    let r = seen_with(
        deleting(tracking("job-1", Phase::Succeeded, 3600)),
        recorded,
    );
    let mut o = obs(r.clone());
    o.credentials = Some(SECRET);
    o.key_fingerprint = current.map(Into::into);
    o.secret_protected = Some(true);
    o.answer = Some(result);
    let step = decide(&o);
    (r, step)
}

#[test]
fn a_delete_not_found_under_another_key_keeps_the_finalizer() {
    let (r, step) = delete_answer(
        Some(FP_OLD),
        Some(FP_NEW),
        Answer::Deleted(Err(not_found())),
    );
    assert_eq!(
        step,
        Step {
            plan: "delete",
            status: Some(Update {
                reason: Some(workspace_changed("job-1")),
                phase: Some(Phase::Deleting),
                ..Default::default()
            }),
            act: Act::Nothing,
            events: vec![],
            requeue: Requeue::Backoff { min: None },
            protect_secret: false,
        }
    );
    let after = record(&r, &step);
    assert!(after.has_finalizer);
    assert_eq!(after.status.phase, Some(Phase::Deleting));
    assert_eq!(
        condition_reason(&after.status, STALLED),
        Some("WorkspaceChanged")
    );
    assert_eq!(after.status.key_fingerprint.as_deref(), Some(FP_OLD));
    // The DELETE is sent again next time.
    assert_eq!(obs(after).plan().name(), "delete");

    // Setting deletionPolicy to Orphan lets it go without a key.
    let mut orphaned = record(&r, &step);
    orphaned.spec.deletion_policy = DeletionPolicy::Orphan;
    let mut o = obs(orphaned);
    assert_eq!(observe(&mut o, SECRET, None), vec![Need::FreshCopy]);
    let step = decide(&o);
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(step.events[0].reason, "Orphaned");
}

#[test]
fn other_delete_answers_under_another_key_are_unchanged() {
    // Deleted: the job is gone whatever key deleted it.
    let (_, step) = delete_answer(
        Some(FP_OLD),
        Some(FP_NEW),
        Answer::Deleted(Ok(job("job-1", "SUCCESSED"))),
    );
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(
        step.events[0].note,
        "Deleted import job job-1 and its imported model"
    );
    // A failed DELETE is retried as before.
    let (_, step) = delete_answer(
        Some(FP_OLD),
        Some(FP_NEW),
        Answer::Deleted(Err(server_error())),
    );
    assert_eq!(
        step.status,
        Some(Update {
            reason: Some(Reason::Remote {
                failure: RemoteFailure::RemoteUnavailable,
                error: server_error().to_string()
            }),
            phase: Some(Phase::Deleting),
            ..Default::default()
        })
    );
    assert_eq!(step.act, Act::Nothing);
}

#[test]
fn a_delete_not_found_under_the_same_key_or_an_unrecorded_one_releases_as_before() {
    for (recorded, current) in [
        (Some(FP_OLD), Some(FP_OLD)),
        (None, Some(FP_NEW)),
        (Some(FP_OLD), None),
        (None, None),
    ] {
        let label = format!("{recorded:?} {current:?}");
        let (r, step) = delete_answer(recorded, current, Answer::Deleted(Err(not_found())));
        assert_eq!(
            step,
            Step {
                plan: "delete",
                status: None,
                act: Act::RemoveFinalizer,
                events: vec![Event {
                    type_: EventType::Normal,
                    reason: "Deleted",
                    action: Action::DeleteImportJob,
                    note: "Import job job-1 was already gone from Model Studio".into(),
                }],
                requeue: Requeue::Never,
                protect_secret: false,
            },
            "{label}"
        );
        assert!(!record(&r, &step).has_finalizer, "{label}");
    }
}

#[test]
fn the_secret_protected_before_a_create_is_relied_on_until_the_release() {
    use modelstudio_core::credentials::{SecretRef, NAMESPACE_CREDENTIALS};
    use modelstudio_core::import::step::relies_on;
    let mut r = resource();
    r.spec.api_key_secret = Some(SecretRef {
        name: "team-key".into(),
        key: "token".into(),
    });
    // Nothing remote yet, but it may create at any moment: its pass protects the Secret right
    // before it records the intent, which the keeper's cache may not show yet.
    assert!(relies_on(&r, "team-key"), "may create");
    let mut o = obs(r.clone());
    observe_key(&mut o, SECRET, Some(FP_NEW), Some(false), None);
    let step = decide(&o);
    assert!(step.protect_secret);
    // The intent alone makes the Secret needed: the create may make a job.
    let r = record(&r, &step);
    assert!(relies_on(&r, "team-key"));
    assert!(!relies_on(&r, NAMESPACE_CREDENTIALS));
    let mut o = obs(r.clone());
    o.key_fingerprint = Some(FP_NEW.into());
    o.answer = Some(Answer::Created(Ok(job("job-1", "PENDING"))));
    let r = record(&r, &decide(&o));
    assert_eq!(r.status.key_fingerprint.as_deref(), Some(FP_NEW));
    assert!(relies_on(&r, "team-key"));
    // Deleted: the DELETE goes out, then the finalizer goes and the Secret is no longer needed.
    let r = deleting(r);
    assert!(relies_on(&r, "team-key"));
    let mut o = obs(r.clone());
    o.key_fingerprint = Some(FP_NEW.into());
    o.answer = Some(Answer::Deleted(Ok(job("job-1", "SUCCESSED"))));
    let r = record(&r, &decide(&o));
    assert!(!r.has_finalizer);
    assert!(!relies_on(&r, "team-key"));
}

#[test]
fn a_lost_create_listed_in_another_workspace_is_not_taken_as_never_made() {
    // The create was sent with the old key (its fingerprint recorded with the intent); the key
    // now points at another workspace, whose complete listing shows nothing.
    for deleting in [false, true] {
        let mut r = attempted(0);
        r.status.key_fingerprint = Some(FP_OLD.into());
        r.deleting = deleting;
        let mut o = obs(r.clone());
        o.fresh = Some(r);
        o.credentials = Some(SECRET);
        o.key_fingerprint = Some(FP_NEW.into());
        o.seen = Some(Seen::Listing(Ok(Listing {
            jobs: vec![],
            complete: true,
        })));
        o.now += std::time::Duration::from_secs(3600);
        let step = decide(&o);
        assert_eq!(step.act, Act::Nothing, "deleting={deleting}");
        let reason = step.status.as_ref().unwrap().reason.clone().unwrap();
        assert_eq!(reason.code().as_str(), "WorkspaceChanged");
        assert!(reason.message().contains(FP_OLD) && reason.message().contains(FP_NEW));
        assert_eq!(step.requeue, Requeue::Backoff { min: None });
    }
}

#[test]
fn no_news_of_a_job_this_cycle_changes_nothing_and_looks_again_next_cycle() {
    let mut o = obs(tracking("job-1", Phase::Running, 600));
    o.credentials = Some(SECRET);
    o.seen = Some(Seen::NoNews);
    let step = decide(&o);
    assert_eq!(step.status, None);
    assert_eq!(step.act, Act::Nothing);
    assert!(step.events.is_empty());
    assert_eq!(step.requeue, Requeue::Poll);
}

#[test]
fn a_finished_job_read_a_moment_ago_is_next_read_at_the_resync_not_the_poll() {
    for (phase, want) in [
        (Phase::Succeeded, Requeue::Resync),
        (Phase::Failed, Requeue::Resync),
    ] {
        let mut o = obs(tracking("job-1", phase, 600));
        o.last_read = Some(std::time::Duration::from_millis(1));
        assert_eq!(next_need(&o), None, "{phase:?}");
        let step = decide(&o);
        assert_eq!(step.requeue, want, "{phase:?}");
        assert_eq!(step.act, Act::Nothing);
    }
    let mut o = obs(tracking("job-1", Phase::Running, 600));
    o.last_read = Some(std::time::Duration::from_millis(1));
    assert!(matches!(decide(&o).requeue, Requeue::After(_)));
}

#[test]
fn a_paused_import_makes_no_call_keeps_ready_and_lets_go_uncalled_when_deleted() {
    let mut r = tracking("job-1", Phase::Running, 600);
    let mut o = obs(r.clone());
    observe(
        &mut o,
        SECRET,
        Some(Seen::Job(Ok(job("job-1", "SUCCESSED")))),
    );
    r = record(&r, &decide(&o));
    assert_eq!(condition_status(&r.status, READY), Some("True"));
    r.control.paused = true;
    r.control.reconcile_requested_at = Some("1".into());
    let mut o = obs(r.clone());
    assert!(observe(&mut o, SECRET, None).is_empty(), "no key, no read");
    let step = decide(&o);
    assert_eq!(step.plan, "paused");
    assert_eq!(step.act, Act::Nothing);
    assert_eq!(step.requeue, Requeue::Never);
    let paused = record(&r, &step);
    assert_eq!(
        condition_status(&paused.status, READY),
        Some("True"),
        "Ready as it was"
    );
    let reconciling = paused
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == RECONCILING)
        .unwrap();
    assert_eq!(
        (reconciling.status.as_str(), reconciling.reason.as_str()),
        ("False", "Paused")
    );
    assert_eq!(
        paused.status.last_handled_reconcile_at, None,
        "not handled while paused"
    );
    // Deleted while paused: released, no call, and a Warning says the job stays.
    let mut o = obs(deleting(paused));
    let needs = observe(&mut o, SECRET, None);
    assert!(needs.iter().all(|n| *n == Need::FreshCopy), "{needs:?}");
    let step = decide(&o);
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(step.events.len(), 1);
    assert_eq!(step.events[0].type_, EventType::Warning);
    assert!(step.events[0].note.contains("job-1") && step.events[0].note.contains("paused"));
}

#[test]
fn an_observed_import_adopts_and_mirrors_its_job_never_creates_or_deletes_it() {
    let mut r = resource();
    r.spec.management = ManagementPolicy::Observe;
    r.spec.job_id = Some("job-9".into());
    let mut o = obs(r.clone());
    observe(&mut o, SECRET, Some(Seen::Job(Ok(job("job-9", "RUNNING")))));
    let step = decide(&o);
    assert_eq!(step.plan, "adopt");
    assert!(
        !matches!(step.act, Act::Create(_) | Act::Delete { .. }),
        "{:?}",
        step.act
    );
    assert!(
        !step.protect_secret,
        "an observed job never needs its key to be deleted"
    );
    r = record(&r, &step);
    assert_eq!(r.status.job_id.as_deref(), Some("job-9"));
    let reconciling = |r: &Resource| {
        let c = r
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == RECONCILING)
            .unwrap();
        (c.status.clone(), c.reason.clone())
    };
    // Work under way in Model Studio still shows as such.
    assert_eq!(reconciling(&r), ("True".into(), "JobRunning".into()));
    let mut o = obs(r.clone());
    observe(
        &mut o,
        SECRET,
        Some(Seen::Job(Ok(job("job-9", "SUCCESSED")))),
    );
    r = record(&r, &decide(&o));
    assert_eq!(condition_status(&r.status, READY), Some("True"));
    assert_eq!(reconciling(&r), ("False".into(), "Observing".into()));

    // Deleted: let go without a call, and an event says the job stays.
    let mut o = obs(deleting(r));
    let needs = observe(&mut o, SECRET, None);
    assert!(needs.iter().all(|n| *n == Need::FreshCopy), "{needs:?}");
    let step = decide(&o);
    assert_eq!(step.act, Act::RemoveFinalizer);
    assert_eq!(step.events.len(), 1);
    assert_eq!(step.events[0].type_, EventType::Normal);
    assert!(step.events[0].note.contains("job-9") && step.events[0].note.contains("Observe"));
}

#[test]
fn an_observed_import_without_a_job_id_stalls_and_creates_nothing() {
    let mut r = resource();
    r.spec.management = ManagementPolicy::Observe;
    let mut o = obs(r.clone());
    observe(&mut o, SECRET, None);
    let step = decide(&o);
    assert_eq!(step.plan, "observed_without_job_id");
    assert_eq!(step.act, Act::Nothing);
    let r = record(&r, &step);
    assert_eq!(condition_status(&r.status, STALLED), Some("True"));
    let stalled = r
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == STALLED)
        .unwrap();
    assert_eq!(stalled.reason, "ObservedWithoutJobId");
    assert!(
        stalled.message.contains("spec.jobId"),
        "{}",
        stalled.message
    );
    // Once stalled, nothing is called until the spec changes.
    let step = decide(&obs(r));
    assert_eq!(step.act, Act::Nothing);
}

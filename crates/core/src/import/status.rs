//! Builds a ModelImport's next status from the current one and what was learnt: pure, so that
//! "write only when something changed" and "lastTransitionTime moves only on a real transition"
//! are tested without a server. The conditions it writes are built by `conditions`.

use super::decision::JobView;
use super::reason::{Code, Reason};
use super::resource::{ImportStatus, Phase};
use crate::conditions::{
    conditions_of, merge_conditions, observed_conditions, paused_conditions, Condition, READY,
    STALLED, TRUE,
};
use jiff::Timestamp;

/// What a reconcile learnt, to be folded into the status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    /// The remote job as last read.
    pub job: Option<JobView>,
    /// Overrides the phase (Deleting).
    pub phase: Option<Phase>,
    /// The reason to show in the conditions.
    pub reason: Option<Reason>,
    /// The last create attempt certainly made no job: forget it.
    pub create_not_applied: bool,
    /// A create is about to be sent with this display name: record the intent.
    pub intent: Option<String>,
    /// The fingerprint of the key the job was just seen with.
    pub fingerprint: Option<String>,
    /// The `modelstudio.io/reconcile-requested-at` value this pass handled.
    pub handled_reconcile: Option<String>,
    /// Paused by its annotation: Reconciling says so, Ready and Stalled stay as they were.
    pub paused: bool,
    /// `managementPolicy: Observe`: Reconciling=False says so where it would say Idle.
    pub observed: bool,
}

/// The status after `update`, with `observedGeneration` set to `generation`.
pub fn next_status(
    current: &ImportStatus,
    update: &Update,
    generation: Option<i64>,
    now: Timestamp,
) -> ImportStatus {
    let mut next = current.clone();
    if let Some(job) = &update.job {
        next.job_id = Some(job.job_id.clone());
        if job.model_name.is_some() {
            next.model_name = job.model_name.clone();
        }
        next.remote_status = Some(job.remote_status.clone());
        next.phase = Some(job.phase);
        if job.error_code.is_some() {
            next.error_code = job.error_code.clone();
        }
        if job.created_at.is_some() {
            next.created_at = job.created_at.clone();
        }
    }
    if let Some(phase) = update.phase {
        next.phase = Some(phase);
    }
    if update.fingerprint.is_some() {
        next.key_fingerprint = update.fingerprint.clone();
    }
    if update.handled_reconcile.is_some() {
        next.last_handled_reconcile_at = update.handled_reconcile.clone();
    }
    // Once a job is recorded, or the attempt certainly failed, there is nothing to recover.
    if next.job_id.is_some() || update.create_not_applied {
        next.create_attempted_at = None;
    }
    if let Some(display_name) = &update.intent {
        next.display_name = Some(display_name.clone());
        next.create_attempted_at = Some(now.to_string());
    }
    if next.phase.is_none() {
        next.phase = Some(Phase::Pending);
    }
    if let Some(reason) = &update.reason {
        next.conditions =
            merge_conditions(&current.conditions, conditions_for(reason, generation), now);
    }
    if update.paused {
        next.conditions = paused_conditions(&next.conditions, generation, now);
    } else if update.observed {
        next.conditions = observed_conditions(&next.conditions);
    }
    next.observed_generation = generation.or(current.observed_generation);
    next
}

/// The three kstatus conditions for a reason.
pub fn conditions_for(reason: &Reason, generation: Option<i64>) -> Vec<Condition> {
    conditions_of(
        reason.meaning(),
        reason.code().as_str(),
        &reason.message(),
        generation,
    )
}

/// The generation at which the resource stalled waiting for a spec change, read back from status.
pub fn stalled_generation(status: &ImportStatus) -> Option<i64> {
    status
        .conditions
        .iter()
        .find(|c| {
            c.type_ == STALLED
                && c.status == TRUE
                && Code::parse(&c.reason).is_some_and(Code::waits_for_spec_change)
        })
        .and_then(|c| c.observed_generation)
}

/// Whether `after` is the first status of a series to say Ready=True: the moment an import
/// became usable.
pub fn became_ready(before: &ImportStatus, after: &ImportStatus) -> bool {
    condition_status(before, READY) != Some(TRUE) && condition_status(after, READY) == Some(TRUE)
}

/// The status of a condition type, if present.
pub fn condition_status<'a>(status: &'a ImportStatus, type_: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ApiError, RemoteError};
    use crate::conditions::RECONCILING;
    use crate::import::decision::{observe_job, on_api_error, Call};
    use crate::import::jobs::{Job, JobState};
    use crate::requeue::Requeue;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn view(status: &str) -> JobView {
        observe_job(&Job {
            id: "j".into(),
            model_name: Some("m-offline-20240101-abcd".into()),
            display_name: None,
            storage: None,
            state: JobState::parse(status),
            status_text: status.into(),
            created_at: Some("2024-01-01T00:00:00.000+00:00".into()),
            error_code: None,
        })
    }

    fn apply(current: &ImportStatus, v: JobView, generation: i64, now: Timestamp) -> ImportStatus {
        let reason = v.reason.clone();
        next_status(
            current,
            &Update {
                job: Some(v),
                reason: Some(reason),
                ..Default::default()
            },
            Some(generation),
            now,
        )
    }

    #[test]
    fn ready_only_when_succeeded() {
        let s = apply(&ImportStatus::default(), view("RUNNING"), 1, t(10));
        assert_eq!(condition_status(&s, READY), Some("False"));
        assert_eq!(condition_status(&s, RECONCILING), Some("True"));
        assert_eq!(condition_status(&s, STALLED), Some("False"));
        assert_eq!(s.phase, Some(Phase::Running));
        let s = apply(&s, view("SUCCESSED"), 1, t(20));
        assert_eq!(condition_status(&s, READY), Some("True"));
        assert_eq!(condition_status(&s, RECONCILING), Some("False"));
        assert_eq!(s.model_name.as_deref(), Some("m-offline-20240101-abcd"));
        assert_eq!(s.observed_generation, Some(1));
        let s = apply(&ImportStatus::default(), view("FAILED"), 3, t(20));
        assert_eq!(condition_status(&s, STALLED), Some("True"));
        assert_eq!(condition_status(&s, READY), Some("False"));
        assert!(s
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn becoming_ready_is_seen_once() {
        let running = apply(&ImportStatus::default(), view("RUNNING"), 1, t(10));
        let done = apply(&running, view("SUCCESSED"), 1, t(20));
        assert!(became_ready(&running, &done));
        assert!(became_ready(&ImportStatus::default(), &done));
        // Already Ready: a later write is no new transition.
        let resynced = apply(&done, view("SUCCESSED"), 1, t(30));
        assert!(!became_ready(&done, &resynced));
        assert!(!became_ready(&ImportStatus::default(), &running));
        let failed = apply(&running, view("FAILED"), 1, t(20));
        assert!(!became_ready(&running, &failed));
    }

    #[test]
    fn transition_time_moves_only_on_a_real_transition() {
        let s1 = apply(&ImportStatus::default(), view("PENDING"), 1, t(10));
        let s2 = apply(&s1, view("RUNNING"), 1, t(20));
        let ready = |s: &ImportStatus| {
            s.conditions
                .iter()
                .find(|c| c.type_ == READY)
                .unwrap()
                .clone()
        };
        // Still Ready=False: the time stays, while reason and message follow the job.
        assert_eq!(ready(&s2).last_transition_time, t(10));
        assert_eq!(ready(&s2).reason, "JobRunning");
        let s3 = apply(&s2, view("SUCCESSED"), 1, t(30));
        assert_eq!(ready(&s3).last_transition_time, t(30));
        // Nothing new: the status is equal, so no write is needed.
        let s4 = apply(&s3, view("SUCCESSED"), 1, t(40));
        assert_eq!(s3, s4);
    }

    #[test]
    fn foreign_conditions_are_kept() {
        let mut s = ImportStatus::default();
        s.conditions.push(Condition {
            type_: "example.com/Audited".into(),
            status: "True".into(),
            reason: "Audited".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: t(1),
        });
        let s = apply(&s, view("RUNNING"), 1, t(10));
        assert_eq!(s.conditions.len(), 4);
    }

    #[test]
    fn spec_stalls_are_read_back_with_their_generation() {
        let o = on_api_error(
            Call::Create,
            &ApiError::InvalidParameter(RemoteError {
                code: "InvalidParameter".into(),
                message: "bad".into(),
                request_id: None,
                http_status: 400,
            }),
        );
        assert_eq!(o.requeue, Requeue::Never);
        let s = next_status(
            &ImportStatus::default(),
            &Update {
                reason: Some(o.reason),
                ..Default::default()
            },
            Some(4),
            t(1),
        );
        assert_eq!(stalled_generation(&s), Some(4));
        // A failed job is final but is not a spec stall.
        let s = apply(&ImportStatus::default(), view("FAILED"), 4, t(1));
        assert_eq!(stalled_generation(&s), None);
    }

    #[test]
    fn an_intent_is_recorded_then_cleared_by_the_job() {
        let s = next_status(
            &ImportStatus::default(),
            &Update {
                reason: Some(Reason::Creating),
                intent: Some("name-abcdefgh".into()),
                ..Default::default()
            },
            Some(1),
            t(5),
        );
        assert_eq!(s.display_name.as_deref(), Some("name-abcdefgh"));
        assert_eq!(s.create_attempted_at, Some(t(5).to_string()));
        assert_eq!(condition_status(&s, RECONCILING), Some("True"));
        let s = apply(&s, view("PENDING"), 1, t(6));
        assert_eq!(s.create_attempted_at, None);
        assert_eq!(s.display_name.as_deref(), Some("name-abcdefgh"));
    }
}

//! Builds the next `status` from the current one and what was learnt: pure, so that "write only
//! when something changed" and "lastTransitionTime moves only on a real transition" are tested
//! without a server.

use crate::crd::{ModelImportStatus, Phase};
use crate::decision::{Health, JobView};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// What a reconcile learnt, to be folded into the status.
#[derive(Debug, Clone, Default)]
pub struct Update {
    /// The remote job as last read.
    pub job: Option<JobView>,
    /// Overrides the phase (Deleting).
    pub phase: Option<Phase>,
    /// The health to show in the conditions.
    pub health: Option<Health>,
    /// The last create attempt certainly made no job: forget it.
    pub create_not_applied: bool,
}

/// The status after `update`, with `observedGeneration` set to `generation`.
pub fn next_status(
    current: &ModelImportStatus,
    update: &Update,
    generation: Option<i64>,
    now: Timestamp,
) -> ModelImportStatus {
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
    // Once a job is recorded, or the attempt certainly failed, there is nothing to recover.
    if next.job_id.is_some() || update.create_not_applied {
        next.create_attempted_at = None;
    }
    if next.phase.is_none() {
        next.phase = Some(Phase::Pending);
    }
    if let Some(health) = &update.health {
        next.conditions =
            merge_conditions(&current.conditions, conditions_for(health, generation), now);
    }
    next.observed_generation = generation.or(current.observed_generation);
    next
}

/// The three kstatus conditions for a health.
pub fn conditions_for(health: &Health, generation: Option<i64>) -> Vec<Condition> {
    let (ready, reconciling, stalled) = match health {
        Health::Ready { .. } => (true, false, false),
        Health::Progressing { .. } | Health::Degraded { .. } => (false, true, false),
        Health::Stalled { .. } => (false, false, true),
    };
    let reason = health.reason();
    let message = health.message();
    let cond = |type_: &str, on: bool, reason: &str, message: &str| Condition {
        type_: type_.to_string(),
        status: if on { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    };
    vec![
        cond(READY, ready, reason, message),
        if reconciling {
            cond(RECONCILING, true, reason, message)
        } else {
            cond(RECONCILING, false, "Idle", "No work in progress")
        },
        if stalled {
            cond(STALLED, true, reason, message)
        } else {
            cond(STALLED, false, "NotStalled", "Progressing normally")
        },
    ]
}

/// Keeps `lastTransitionTime` of conditions whose status did not change; stamps `now` on the rest.
pub fn merge_conditions(
    current: &[Condition],
    desired: Vec<Condition>,
    now: Timestamp,
) -> Vec<Condition> {
    let mut out: Vec<Condition> = desired
        .into_iter()
        .map(|mut c| {
            c.last_transition_time = match current.iter().find(|o| o.type_ == c.type_) {
                Some(old) if old.status == c.status => old.last_transition_time.clone(),
                _ => Time(now),
            };
            c
        })
        .collect();
    // Conditions of other types (set by someone else) are kept.
    for old in current {
        if !out.iter().any(|c| c.type_ == old.type_) {
            out.push(old.clone());
        }
    }
    out
}

/// The generation at which the resource stalled waiting for a spec change, read back from status.
pub fn stalled_generation(status: &ModelImportStatus) -> Option<i64> {
    status
        .conditions
        .iter()
        .find(|c| {
            c.type_ == STALLED
                && c.status == "True"
                && crate::decision::SPEC_STALL_REASONS.contains(&c.reason.as_str())
        })
        .and_then(|c| c.observed_generation)
}

/// The status of a condition type, if present.
pub fn condition_status<'a>(status: &'a ModelImportStatus, type_: &str) -> Option<&'a str> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{observe_job, Requeue};
    use crate::modelstudio::ImportJob;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn view(status: &str) -> JobView {
        observe_job(&ImportJob {
            job_id: "j".into(),
            model_name: Some("m-offline-20240101-abcd".into()),
            display_name: None,
            source: None,
            weight_type: None,
            storage_info: None,
            status: status.into(),
            gmt_create: Some("2024-01-01T00:00:00.000+00:00".into()),
            error_code: None,
        })
    }

    fn apply(
        current: &ModelImportStatus,
        v: JobView,
        generation: i64,
        now: Timestamp,
    ) -> ModelImportStatus {
        let health = v.health.clone();
        next_status(
            current,
            &Update {
                job: Some(v),
                health: Some(health),
                ..Default::default()
            },
            Some(generation),
            now,
        )
    }

    #[test]
    fn ready_only_when_succeeded() {
        let s = apply(&ModelImportStatus::default(), view("RUNNING"), 1, t(10));
        assert_eq!(condition_status(&s, READY), Some("False"));
        assert_eq!(condition_status(&s, RECONCILING), Some("True"));
        assert_eq!(condition_status(&s, STALLED), Some("False"));
        assert_eq!(s.phase, Some(Phase::Running));
        let s = apply(&s, view("SUCCESSED"), 1, t(20));
        assert_eq!(condition_status(&s, READY), Some("True"));
        assert_eq!(condition_status(&s, RECONCILING), Some("False"));
        assert_eq!(s.model_name.as_deref(), Some("m-offline-20240101-abcd"));
        assert_eq!(s.observed_generation, Some(1));
        let s = apply(&ModelImportStatus::default(), view("FAILED"), 3, t(20));
        assert_eq!(condition_status(&s, STALLED), Some("True"));
        assert_eq!(condition_status(&s, READY), Some("False"));
        assert!(s
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(3)));
    }

    #[test]
    fn transition_time_moves_only_on_a_real_transition() {
        let s1 = apply(&ModelImportStatus::default(), view("PENDING"), 1, t(10));
        let s2 = apply(&s1, view("RUNNING"), 1, t(20));
        let ready = |s: &ModelImportStatus| {
            s.conditions
                .iter()
                .find(|c| c.type_ == READY)
                .unwrap()
                .clone()
        };
        // Still Ready=False: the time stays, while reason and message follow the job.
        assert_eq!(ready(&s2).last_transition_time, Time(t(10)));
        assert_eq!(ready(&s2).reason, "JobRunning");
        let s3 = apply(&s2, view("SUCCESSED"), 1, t(30));
        assert_eq!(ready(&s3).last_transition_time, Time(t(30)));
        // Nothing new: the status is equal, so no write is needed.
        let s4 = apply(&s3, view("SUCCESSED"), 1, t(40));
        assert_eq!(s3, s4);
    }

    #[test]
    fn foreign_conditions_are_kept() {
        let mut s = ModelImportStatus::default();
        s.conditions.push(Condition {
            type_: "example.com/Audited".into(),
            status: "True".into(),
            reason: "Audited".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(t(1)),
        });
        let s = apply(&s, view("RUNNING"), 1, t(10));
        assert_eq!(s.conditions.len(), 4);
    }

    #[test]
    fn spec_stalls_are_read_back_with_their_generation() {
        let o = crate::decision::on_api_error(
            crate::decision::Operation::Create,
            &crate::modelstudio::ApiError::InvalidParameter(crate::modelstudio::RemoteError {
                code: "InvalidParameter".into(),
                message: "bad".into(),
                request_id: None,
                http_status: 400,
            }),
        );
        assert_eq!(o.requeue, Requeue::Never);
        let s = next_status(
            &ModelImportStatus::default(),
            &Update {
                health: Some(o.health),
                ..Default::default()
            },
            Some(4),
            t(1),
        );
        assert_eq!(stalled_generation(&s), Some(4));
        // A failed job is final but is not a spec stall.
        let s = apply(&ModelImportStatus::default(), view("FAILED"), 4, t(1));
        assert_eq!(stalled_generation(&s), None);
    }
}

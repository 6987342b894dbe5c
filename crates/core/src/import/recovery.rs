//! Finding an import job again after a lost create: among the listed jobs, the one that carries
//! the resource's token ([`crate::correlation`]) in its display name. Pure functions.

use super::jobs::{Job, Storage};

/// What a create request is expected to have made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub display_name: String,
    pub base_model: String,
    pub storage: Storage,
}

/// The jobs that look like ours.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// No such job: the create never took effect, so creating is safe.
    NotCreated,
    /// Exactly one: adopt it.
    Found(Box<Job>),
    /// More than one: a person has to choose.
    Ambiguous(Vec<String>),
}

/// Whether `job` carries the display name a create with `expected` sent (its UID token).
pub fn carries_token(job: &Job, expected: &Expected) -> bool {
    job.display_name.as_deref().map(str::trim) == Some(expected.display_name.trim())
}

/// Whether the storage and base model the service echoed agree with `expected` (a job that lacks
/// them agrees).
pub fn agrees(job: &Job, expected: &Expected) -> bool {
    let storage_ok = job.storage.as_ref().is_none_or(|s| *s == expected.storage);
    let base_ok = job
        .model_name
        .as_deref()
        .is_none_or(|m| m.starts_with(&format!("{}-", expected.base_model)));
    storage_ok && base_ok
}

/// Decides from every job of the workspace. The token alone identifies a job (a false negative
/// would create a duplicate); storage and base model only break ties between token holders.
pub fn recover(jobs: &[Job], expected: &Expected) -> Recovery {
    let mut seen = std::collections::HashSet::new();
    // The same job seen twice (a page boundary moved while listing) is one job.
    let holders: Vec<&Job> = jobs
        .iter()
        .filter(|j| carries_token(j, expected) && seen.insert(j.id.as_str()))
        .collect();
    let agreeing: Vec<&Job> = holders
        .iter()
        .copied()
        .filter(|j| agrees(j, expected))
        .collect();
    match (holders.as_slice(), agreeing.as_slice()) {
        ([], _) => Recovery::NotCreated,
        ([one], _) | (_, [one]) => Recovery::Found(Box::new((*one).clone())),
        (many, _) => Recovery::Ambiguous(many.iter().map(|j| j.id.clone()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str, display: &str, object_key: &str) -> Job {
        Job {
            id: id.into(),
            model_name: Some("qwen3-32b-offline-20240101-abc1".into()),
            display_name: Some(display.into()),
            storage: Some(Storage {
                bucket_name: "b".into(),
                object_key: object_key.into(),
            }),
            state: crate::import::jobs::JobState::Running,
            status_text: "RUNNING".into(),
            created_at: None,
            error_code: None,
        }
    }

    fn expected(display: &str) -> Expected {
        Expected {
            display_name: display.into(),
            base_model: "qwen3-32b".into(),
            storage: Storage {
                bucket_name: "b".into(),
                object_key: "m/".into(),
            },
        }
    }

    #[test]
    fn recovery_matches_name_storage_and_base() {
        let e = expected("a-12345678");
        assert_eq!(recover(&[], &e), Recovery::NotCreated);
        let ours = job("j1", "a-12345678", "m/");
        let other_name = job("j2", "a-87654321", "m/");
        let other_path = job("j3", "a-12345678", "n/");
        assert_eq!(
            recover(&[other_name.clone(), ours.clone(), other_path.clone()], &e),
            Recovery::Found(Box::new(ours.clone()))
        );
        // The token decides even when an echoed field differs (no duplicate on a normalised echo);
        // the other fields only break ties.
        let mut other_base = ours.clone();
        other_base.id = "j4".into();
        other_base.model_name = Some("qwen3-8b-offline-20240101-zzzz".into());
        assert_eq!(
            recover(&[other_base.clone()], &e),
            Recovery::Found(Box::new(other_base.clone()))
        );
        assert_eq!(
            recover(&[other_base, ours.clone()], &e),
            Recovery::Found(Box::new(ours.clone()))
        );
        let mut twin = ours.clone();
        twin.id = "j5".into();
        assert_eq!(
            recover(&[ours.clone(), twin], &e),
            Recovery::Ambiguous(vec!["j1".into(), "j5".into()])
        );
        // The same job seen twice (a page boundary moved while listing) is one job.
        assert_eq!(
            recover(&[ours.clone(), ours.clone()], &e),
            Recovery::Found(Box::new(ours))
        );
    }
}

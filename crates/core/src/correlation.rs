//! Finding a job again after a lost create. The import API has no idempotency token, so the
//! controller puts one in the display name (which the API echoes back), derived from the
//! resource's UID: after a crash or a lost answer, listing the jobs and matching on it tells
//! whether the create took effect. Pure functions.

use crate::remote::{Job, Storage};

/// The API's limit on display names, in characters.
pub const DISPLAY_NAME_LIMIT: usize = 50;
/// Length of the token derived from the UID.
pub const TOKEN_LEN: usize = 8;

/// A stable, lowercase alphanumeric token of `TOKEN_LEN` characters for a UID (FNV-1a, base 36).
pub fn token(uid: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in uid.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..TOKEN_LEN)
        .map(|_| {
            let d = DIGITS[(hash % 36) as usize] as char;
            hash /= 36;
            d
        })
        .collect()
}

/// The display name sent on create: `name` cut to fit, a dash, and the UID's token.
pub fn display_name(name: &str, uid: &str) -> String {
    let room = DISPLAY_NAME_LIMIT - TOKEN_LEN - 1;
    let base: String = name.trim().chars().take(room).collect();
    let base = base.trim_end_matches(['-', ' ']);
    if base.is_empty() {
        token(uid)
    } else {
        format!("{base}-{}", token(uid))
    }
}

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
            state: crate::remote::JobState::Running,
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
    fn token_is_stable_short_and_differs_by_uid() {
        let a = token("6b8a4c1e-0000-4000-8000-000000000001");
        assert_eq!(a, token("6b8a4c1e-0000-4000-8000-000000000001"));
        assert_eq!(a.len(), TOKEN_LEN);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert_ne!(a, token("6b8a4c1e-0000-4000-8000-000000000002"));
    }

    #[test]
    fn display_name_fits_the_limit() {
        let uid = "u-1";
        let d = display_name("my-lora", uid);
        assert_eq!(d, format!("my-lora-{}", token(uid)));
        let long = "x".repeat(80);
        assert_eq!(display_name(&long, uid).chars().count(), DISPLAY_NAME_LIMIT);
        let wide = "模型".repeat(30);
        assert_eq!(display_name(&wide, uid).chars().count(), DISPLAY_NAME_LIMIT);
        assert_eq!(display_name("  ", uid), token(uid));
        assert_eq!(
            display_name(&format!("{}-", "a".repeat(40)), uid),
            format!("{}-{}", "a".repeat(40), token(uid))
        );
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

//! Which Secret holds a resource's API key, and which Secrets the controller keeps from being
//! deleted while a job still needs their key to be deleted. Pure: the IO side reads and patches.

use crate::domain::{Resource, SecretRef, Spec};
use crate::reason::CredentialProblem;
use crate::step::deletes_remotely;

/// The Secret a namespace provides for its ModelImports that name none (before the controller's
/// default key).
pub const NAMESPACE_CREDENTIALS: &str = "modelstudio-credentials";
/// The key inside a credentials Secret when none is named.
pub const DEFAULT_SECRET_KEY: &str = "api-key";
/// The optional field of a credentials Secret naming the key's region (e.g. `ap-southeast-1`):
/// its calls go to the host the controller configured for that region. Never a URL, so a tenant
/// cannot point the controller (and its key) at a host of their choosing.
pub const REGION_FIELD: &str = "region";
/// The optional field of a credentials Secret naming the key's workspace id (`llm-...`): sent as
/// `X-DashScope-WorkSpace`.
pub const WORKSPACE_FIELD: &str = "workspace";
/// The finalizer the controller puts on a credentials Secret that a job still needs.
pub const SECRET_FINALIZER: &str = "modelstudio.io/credentials";
/// The label that marks the Secrets carrying [`SECRET_FINALIZER`], so they can be found again.
pub const PROTECTED_LABEL: &str = "modelstudio.io/credentials";
pub const PROTECTED_VALUE: &str = "in-use";

/// The Secret to read for a resource's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretChoice {
    pub secret: SecretRef,
    /// Named by spec.apiKeySecretRef (rather than the namespace's well-known Secret).
    pub named: bool,
}

/// spec.apiKeySecretRef when set, else the namespace's [`NAMESPACE_CREDENTIALS`].
pub fn credentials_secret(spec: &Spec) -> SecretChoice {
    secret_choice(spec.api_key_secret.as_ref())
}

/// The Secret to read for a resource whose spec names `named` (any kind that carries
/// `apiKeySecretRef`): that one, else the namespace's well-known Secret.
pub fn secret_choice(named: Option<&SecretRef>) -> SecretChoice {
    match named {
        Some(secret) => SecretChoice {
            secret: secret.clone(),
            named: true,
        },
        None => SecretChoice {
            secret: SecretRef {
                name: NAMESPACE_CREDENTIALS.into(),
                key: DEFAULT_SECRET_KEY.into(),
            },
            named: false,
        },
    }
}

/// What a read of the chosen Secret means for [`crate::step::choose_key`]: a namespace default
/// that does not exist is no Secret at all (the controller's default key comes next), while a
/// named Secret that is missing is a problem to report.
pub fn secret_read(
    choice: &SecretChoice,
    read: Result<(), CredentialProblem>,
) -> Option<Result<(), CredentialProblem>> {
    match read {
        Err(CredentialProblem::SecretNotFound { .. }) if !choice.named => None,
        read => Some(read),
    }
}

/// The Secret whose key `r` still needs to delete its job, if any: it holds our finalizer and
/// would call DELETE.
pub fn secret_relied_on(r: &Resource) -> Option<String> {
    (r.has_finalizer && deletes_remotely(r)).then(|| credentials_secret(&r.spec).secret.name)
}

/// Whether `r` still needs the key in Secret `secret` to delete its job.
pub fn relies_on(r: &Resource, secret: &str) -> bool {
    secret_relied_on(r).is_some_and(|s| s == secret)
}

/// Whether any of `imports` (one namespace's) other than `released` (a UID) relies on `secret`.
pub fn secret_in_use(secret: &str, imports: &[Resource], released: Option<&str>) -> bool {
    imports
        .iter()
        .filter(|r| Some(r.uid.as_str()) != released)
        .any(|r| relies_on(r, secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeletionPolicy;
    use crate::remote::{Source, Storage, WeightType};
    use crate::status::ImportStatus;

    fn import(uid: &str, secret: Option<&str>) -> Resource {
        Resource {
            name: uid.into(),
            uid: uid.into(),
            generation: Some(1),
            deleting: false,
            has_finalizer: true,
            spec: Spec {
                base_model: "qwen3-32b".into(),
                display_name: None,
                weight_type: WeightType::Lora,
                source: Source::Oss,
                storage: Storage {
                    bucket_name: "b".into(),
                    object_key: "k/".into(),
                },
                deletion_policy: DeletionPolicy::Delete,
                job_id: None,
                api_key_secret: secret.map(|name| SecretRef {
                    name: name.into(),
                    key: DEFAULT_SECRET_KEY.into(),
                }),
            },
            status: ImportStatus {
                job_id: Some(format!("job-{uid}")),
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_named_secret_then_the_namespace_default() {
        let named = credentials_secret(&import("a", Some("team-key")).spec);
        assert_eq!(
            (named.secret.name.as_str(), named.named),
            ("team-key", true)
        );
        let default = credentials_secret(&import("a", None).spec);
        assert_eq!(default.secret.name, NAMESPACE_CREDENTIALS);
        assert!(!default.named);
        let gone = || Err(CredentialProblem::SecretNotFound { name: "x".into() });
        assert_eq!(secret_read(&default, gone()), None);
        assert_eq!(secret_read(&named, gone()), Some(gone()));
        let broken = Err(CredentialProblem::KeyMissing {
            name: NAMESPACE_CREDENTIALS.into(),
            key: DEFAULT_SECRET_KEY.into(),
        });
        assert_eq!(secret_read(&default, broken.clone()), Some(broken));
    }

    #[test]
    fn a_secret_is_in_use_while_an_unreleased_job_to_delete_reads_it() {
        let a = import("a", Some("s"));
        assert!(secret_in_use("s", std::slice::from_ref(&a), None));
        assert!(!secret_in_use("s", std::slice::from_ref(&a), Some("a")));
        assert!(!secret_in_use("other", std::slice::from_ref(&a), None));
        let mut orphan = a.clone();
        orphan.spec.deletion_policy = DeletionPolicy::Orphan;
        assert!(!secret_in_use("s", &[orphan], None));
        let mut released = a.clone();
        released.has_finalizer = false;
        assert!(!secret_in_use("s", &[released], None));
        let mut never_created = a.clone();
        never_created.status = ImportStatus::default();
        assert!(!secret_in_use("s", &[never_created], None));
        // Deleting, with the finalizer still on: it needs the key to call DELETE.
        let mut deleting = a.clone();
        deleting.deleting = true;
        assert!(secret_in_use("s", &[deleting], None));
        let by_default = import("d", None);
        assert!(secret_in_use(NAMESPACE_CREDENTIALS, &[by_default], None));
    }
}

//! Which Secret holds a resource's API key, what a read of it means, which key a call goes out
//! with, and the labels and finalizer that keep a Secret whose key is still needed: for both
//! kinds. Pure: the IO side reads and patches. Which Secret a resource still needs is each kind's
//! decision (`import::step::secret_relied_on`, `deployment::step::secret_relied_on`). Imports no
//! other module of the core.

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
/// The label the controller puts on every Secret it reads a key from: its Secrets watch selects
/// this label alone, so no other Secret of the cluster is ever held in its memory.
pub const CREDENTIALS_LABEL: &str = "modelstudio.io/credentials";
/// [`CREDENTIALS_LABEL`]'s value on a Secret that also carries [`SECRET_FINALIZER`] (a job or a
/// deployment still needs its key), so the protected ones can be found again.
pub const PROTECTED_VALUE: &str = "in-use";
/// [`CREDENTIALS_LABEL`]'s value on a Secret a resource names (or the namespace's
/// [`NAMESPACE_CREDENTIALS`]) that no remote object needs yet.
pub const READ_VALUE: &str = "read";

/// A key of a Secret in the resource's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub name: String,
    pub key: String,
}

/// The Secret to read for a resource's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretChoice {
    pub secret: SecretRef,
    /// Named by spec.apiKeySecretRef (rather than the namespace's well-known Secret).
    pub named: bool,
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

/// What a read of the chosen Secret means for [`choose_key`]: a namespace default that does not
/// exist is no Secret at all (the controller's default key comes next), while a named Secret that
/// is missing is a problem to report.
pub fn secret_read(
    choice: &SecretChoice,
    read: Result<(), CredentialProblem>,
) -> Option<Result<(), CredentialProblem>> {
    match read {
        Err(CredentialProblem::SecretNotFound { .. }) if !choice.named => None,
        read => Some(read),
    }
}

/// Why no API key could be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialProblem {
    NoSecretRefAndNoDefault,
    SecretNotFound {
        name: String,
    },
    KeyMissing {
        name: String,
        key: String,
    },
    KeyEmpty {
        name: String,
        key: String,
    },
    /// The Secret's `region` is not one the controller has a host for.
    UnknownRegion {
        name: String,
        region: String,
        known: Vec<String>,
    },
    /// The Secret's `workspace` is not a workspace id.
    InvalidWorkspace {
        name: String,
    },
    /// The region's host is per workspace and the Secret names none.
    RegionNeedsWorkspace {
        name: String,
        region: String,
    },
    /// The resource would need the controller's default key, which the platform team has not
    /// granted to its namespace.
    DefaultKeyNotGranted {
        namespace: String,
        /// The label selector of the namespaces that may use it.
        selector: String,
    },
}

impl CredentialProblem {
    /// What is wrong and what to fix, as the conditions of both kinds say it.
    pub fn message(&self) -> String {
        match self {
            CredentialProblem::NoSecretRefAndNoDefault => {
                "spec.apiKeySecretRef is not set, this namespace has no Secret modelstudio-credentials \
                 and the controller has no default API key: set spec.apiKeySecretRef to a Secret \
                 holding the DashScope API key, or create the Secret modelstudio-credentials with \
                 the key in its field api-key"
                    .to_string()
            }
            CredentialProblem::SecretNotFound { name } => {
                format!("Secret {name:?} (spec.apiKeySecretRef) does not exist in this namespace")
            }
            CredentialProblem::KeyMissing { name, key } => {
                format!("Secret {name:?} has no field {key:?} holding the API key")
            }
            CredentialProblem::KeyEmpty { name, key } => {
                format!("Secret {name:?} key {key:?} is empty or not UTF-8 text")
            }
            CredentialProblem::UnknownRegion {
                name,
                region,
                known,
            } => format!(
                "Secret {name:?} names region {region:?}, which this controller has no Model \
                 Studio host for: set its field region to one of {}, or ask the platform team to \
                 add the region (--region-endpoint)",
                known.join(", ")
            ),
            CredentialProblem::InvalidWorkspace { name } => format!(
                "Secret {name:?} field workspace is not a workspace id: write the id of the key's \
                 workspace, such as llm-abc123 (letters, digits and '-' only)"
            ),
            CredentialProblem::RegionNeedsWorkspace { name, region } => format!(
                "Secret {name:?} names region {region:?}, whose Model Studio host is per \
                 workspace: set its field workspace to the key's workspace id"
            ),
            CredentialProblem::DefaultKeyNotGranted {
                namespace,
                selector,
            } => format!(
                "Namespace {namespace} may not use the controller's default API key (the platform \
                 team grants it to the namespaces labelled {selector:?}): nothing is created or \
                 changed. Ask them to label this namespace, or give it a key of its own: set \
                 spec.apiKeySecretRef to a Secret holding a DashScope API key, or create the \
                 Secret modelstudio-credentials with the key in its field api-key"
            ),
        }
    }
}

/// Which key a call goes out with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// The Secret named by spec.apiKeySecretRef.
    Secret,
    /// The controller's default key.
    Default,
}

/// What was read of the Secret that spec.apiKeySecretRef names.
pub type SecretRead = Result<(), CredentialProblem>;

/// Whether the controller's default key may serve a resource of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefaultKey {
    /// The controller has none.
    Absent,
    /// The namespace may use it.
    Granted,
    /// The namespace may not (see [`CredentialProblem::DefaultKeyNotGranted`]).
    NotGranted { namespace: String, selector: String },
}

/// The key to use: the resource's Secret, else the controller's default where the namespace may
/// use it. `secret` is `None` when the resource names no Secret (and the namespace has none).
pub fn choose_key(
    secret: Option<SecretRead>,
    default: DefaultKey,
    deleting: bool,
) -> Result<KeySource, CredentialProblem> {
    match (secret, default) {
        (None, DefaultKey::Granted) => Ok(KeySource::Default),
        (None, DefaultKey::Absent) => Err(CredentialProblem::NoSecretRefAndNoDefault),
        // What the default key made before the grant existed (or changed) is still deleted with
        // it: no namespace hangs on its deletion.
        (None, DefaultKey::NotGranted { .. }) if deleting => Ok(KeySource::Default),
        (
            None,
            DefaultKey::NotGranted {
                namespace,
                selector,
            },
        ) => Err(CredentialProblem::DefaultKeyNotGranted {
            namespace,
            selector,
        }),
        (Some(Ok(())), _) => Ok(KeySource::Secret),
        // The Secret often goes first when a namespace or a folder of manifests is deleted: the
        // controller's default key may still delete the job, where the namespace may use it.
        (Some(Err(_)), DefaultKey::Granted) if deleting => Ok(KeySource::Default),
        (Some(Err(problem)), _) => Err(problem),
    }
}

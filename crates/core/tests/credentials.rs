//! Which Secret holds a resource's key (`step::credentials_secret`), what a read of it means for
//! the choice of key (`credentials::secret_read` fed to `step::choose_key`, as the IO side does),
//! and which Secrets stay protected (`step::relies_on`, `secret_in_use`).

use modelstudio_core::credentials::{
    choose_key, secret_read, CredentialProblem, DefaultKey, KeySource, SecretChoice, SecretRef,
    DEFAULT_SECRET_KEY, NAMESPACE_CREDENTIALS,
};
use modelstudio_core::deletion::DeletionPolicy;
use modelstudio_core::import::jobs::{Source, Storage, WeightType};
use modelstudio_core::import::resource::{ImportStatus, Resource, Spec};
use modelstudio_core::import::step::{
    credentials_secret, relies_on, secret_in_use, secret_relied_on,
};

fn secret_ref(name: &str, key: &str) -> SecretRef {
    SecretRef {
        name: name.into(),
        key: key.into(),
    }
}

fn spec(secret: Option<SecretRef>) -> Spec {
    Spec {
        base_model: "qwen3-32b".into(),
        display_name: None,
        weight_type: WeightType::Lora,
        source: Source::Oss,
        storage: Storage {
            bucket_name: "bucket".into(),
            object_key: "models/lora/".into(),
        },
        deletion_policy: DeletionPolicy::Delete,
        job_id: None,
        management: Default::default(),
        api_key_secret: secret,
    }
}

/// A live resource with the finalizer that tracks `job-<uid>` and reads its key from `secret`
/// (the namespace default when `None`).
fn import(uid: &str, secret: Option<&str>) -> Resource {
    Resource {
        name: format!("import-{uid}"),
        uid: uid.into(),
        generation: Some(1),
        deleting: false,
        has_finalizer: true,
        control: Default::default(),
        spec: spec(secret.map(|name| secret_ref(name, DEFAULT_SECRET_KEY))),
        status: ImportStatus {
            job_id: Some(format!("job-{uid}")),
            ..Default::default()
        },
    }
}

fn namespace_default() -> SecretChoice {
    credentials_secret(&spec(None))
}

fn named(name: &str) -> SecretChoice {
    credentials_secret(&spec(Some(secret_ref(name, "token"))))
}

fn not_found(name: &str) -> Result<(), CredentialProblem> {
    Err(CredentialProblem::SecretNotFound { name: name.into() })
}

/// The key chosen after reading `choice` with `read`, as the IO side chooses it.
fn chosen(
    choice: &SecretChoice,
    read: Result<(), CredentialProblem>,
    has_default: bool,
    deleting: bool,
) -> Result<KeySource, CredentialProblem> {
    let default = if has_default {
        DefaultKey::Granted
    } else {
        DefaultKey::Absent
    };
    choose_key(secret_read(choice, read), default, deleting)
}

// ---------------------------------------------------------------------------------------------
// The Secret to read
// ---------------------------------------------------------------------------------------------

#[test]
fn the_named_secret_is_read_with_its_own_key() {
    assert_eq!(
        named("team-key"),
        SecretChoice {
            secret: secret_ref("team-key", "token"),
            named: true,
        }
    );
    // Naming the well-known Secret explicitly still counts as named.
    assert_eq!(
        credentials_secret(&spec(Some(secret_ref(NAMESPACE_CREDENTIALS, "api-key")))),
        SecretChoice {
            secret: secret_ref("modelstudio-credentials", "api-key"),
            named: true,
        }
    );
}

#[test]
fn without_a_name_the_namespace_default_is_read() {
    assert_eq!(NAMESPACE_CREDENTIALS, "modelstudio-credentials");
    assert_eq!(DEFAULT_SECRET_KEY, "api-key");
    assert_eq!(
        namespace_default(),
        SecretChoice {
            secret: secret_ref("modelstudio-credentials", "api-key"),
            named: false,
        }
    );
}

// ---------------------------------------------------------------------------------------------
// The read, then the key
// ---------------------------------------------------------------------------------------------

#[test]
fn a_missing_namespace_default_is_no_secret_at_all() {
    let gone = || not_found(NAMESPACE_CREDENTIALS);
    assert_eq!(secret_read(&namespace_default(), gone()), None);
    for deleting in [false, true] {
        // The controller's default key comes next...
        assert_eq!(
            chosen(&namespace_default(), gone(), true, deleting),
            Ok(KeySource::Default),
            "deleting={deleting}"
        );
        // ...and without one there is no key, said as such (not as a missing Secret).
        assert_eq!(
            chosen(&namespace_default(), gone(), false, deleting),
            Err(CredentialProblem::NoSecretRefAndNoDefault),
            "deleting={deleting}"
        );
    }
}

#[test]
fn a_present_namespace_default_is_used_before_the_controller_default() {
    assert_eq!(secret_read(&namespace_default(), Ok(())), Some(Ok(())));
    for has_default in [false, true] {
        for deleting in [false, true] {
            assert_eq!(
                chosen(&namespace_default(), Ok(()), has_default, deleting),
                Ok(KeySource::Secret),
                "default={has_default} deleting={deleting}"
            );
        }
    }
}

#[test]
fn a_broken_namespace_default_is_the_problem_while_the_resource_lives() {
    let broken = [
        CredentialProblem::KeyMissing {
            name: NAMESPACE_CREDENTIALS.into(),
            key: DEFAULT_SECRET_KEY.into(),
        },
        CredentialProblem::KeyEmpty {
            name: NAMESPACE_CREDENTIALS.into(),
            key: DEFAULT_SECRET_KEY.into(),
        },
    ];
    for problem in broken {
        assert_eq!(
            secret_read(&namespace_default(), Err(problem.clone())),
            Some(Err(problem.clone()))
        );
        // Not papered over by the controller's default key: the Secret is there and meant.
        assert_eq!(
            chosen(&namespace_default(), Err(problem.clone()), true, false),
            Err(problem.clone())
        );
        assert_eq!(
            chosen(&namespace_default(), Err(problem.clone()), false, false),
            Err(problem.clone())
        );
        // A deletion may still go ahead with the controller's default.
        assert_eq!(
            chosen(&namespace_default(), Err(problem.clone()), true, true),
            Ok(KeySource::Default)
        );
        assert_eq!(
            chosen(&namespace_default(), Err(problem.clone()), false, true),
            Err(problem)
        );
    }
}

#[test]
fn a_missing_named_secret_is_a_problem_to_report() {
    let gone = || not_found("team-key");
    assert_eq!(secret_read(&named("team-key"), gone()), Some(gone()));
    assert_eq!(
        chosen(&named("team-key"), gone(), true, false),
        Err(CredentialProblem::SecretNotFound {
            name: "team-key".into()
        })
    );
    assert_eq!(
        chosen(&named("team-key"), gone(), false, false),
        Err(CredentialProblem::SecretNotFound {
            name: "team-key".into()
        })
    );
    // The Secret often goes first when a namespace is deleted: the default may delete the job.
    assert_eq!(
        chosen(&named("team-key"), gone(), true, true),
        Ok(KeySource::Default)
    );
    assert_eq!(
        chosen(&named("team-key"), gone(), false, true),
        Err(CredentialProblem::SecretNotFound {
            name: "team-key".into()
        })
    );
    // A named Secret that is there is used.
    assert_eq!(
        chosen(&named("team-key"), Ok(()), false, false),
        Ok(KeySource::Secret)
    );
}

// ---------------------------------------------------------------------------------------------
// Which Secrets stay protected
// ---------------------------------------------------------------------------------------------

#[test]
fn a_resource_relies_on_its_secret_while_it_would_call_delete() {
    let live = import("a", Some("team-key"));
    assert!(relies_on(&live, "team-key"));
    assert!(!relies_on(&live, NAMESPACE_CREDENTIALS));
    assert!(!relies_on(&live, "other"));

    // Deleting, the finalizer still on: the DELETE is still to be sent.
    let mut going = live.clone();
    going.deleting = true;
    assert!(relies_on(&going, "team-key"));

    // A create whose job is not recorded yet may have made one.
    let mut attempted = live.clone();
    attempted.status = ImportStatus {
        create_attempted_at: Some("2025-06-15T12:00:00Z".into()),
        ..Default::default()
    };
    assert!(relies_on(&attempted, "team-key"));

    // A job named by spec.jobId is deleted too.
    let mut adopting = live.clone();
    adopting.status = ImportStatus::default();
    adopting.spec.job_id = Some("job-s".into());
    assert!(relies_on(&adopting, "team-key"));

    // Without our finalizer, with Orphan, or being deleted with nothing remote: no DELETE, no key
    // needed. Live with nothing remote yet, it may create at any moment, so it still relies on it.
    let mut released = going.clone();
    released.has_finalizer = false;
    assert!(!relies_on(&released, "team-key"));
    let mut orphan = live.clone();
    orphan.spec.deletion_policy = DeletionPolicy::Orphan;
    assert!(!relies_on(&orphan, "team-key"));
    let mut nothing = live;
    nothing.status = ImportStatus::default();
    assert!(relies_on(&nothing, "team-key"));
    nothing.deleting = true;
    assert!(!relies_on(&nothing, "team-key"));

    // By default, the namespace's well-known Secret.
    let by_default = import("d", None);
    assert!(relies_on(&by_default, "modelstudio-credentials"));
    assert!(!relies_on(&by_default, "team-key"));
}

#[test]
fn a_secret_stays_in_use_until_its_last_user_is_released() {
    let imports = [
        import("a", Some("team-key")),
        import("b", Some("team-key")),
        import("c", None),
    ];
    assert!(secret_in_use("team-key", &imports, None));
    // Releasing one of two users leaves the other.
    assert!(secret_in_use("team-key", &imports, Some("a")));
    assert!(secret_in_use("team-key", &imports[..2], Some("b")));
    // Releasing the only user frees it.
    assert!(secret_in_use(NAMESPACE_CREDENTIALS, &imports, None));
    assert!(!secret_in_use(NAMESPACE_CREDENTIALS, &imports, Some("c")));
    assert!(!secret_in_use("team-key", &imports[..1], Some("a")));
    // A Secret nobody names is not in use; nor is anything in an empty namespace.
    assert!(!secret_in_use("unrelated", &imports, None));
    assert!(!secret_in_use("team-key", &[], None));
    // Users that no longer need a key do not hold it.
    let mut orphan = import("o", Some("team-key"));
    orphan.spec.deletion_policy = DeletionPolicy::Orphan;
    let mut released = import("r", Some("team-key"));
    released.deleting = true;
    released.has_finalizer = false;
    assert!(!secret_in_use(
        "team-key",
        &[orphan.clone(), released.clone()],
        None
    ));
    // The name each relies on, as a sweep gathers them one import at a time.
    assert_eq!(secret_relied_on(&imports[0]).as_deref(), Some("team-key"));
    assert_eq!(
        secret_relied_on(&imports[2]).as_deref(),
        Some(NAMESPACE_CREDENTIALS)
    );
    assert_eq!(secret_relied_on(&orphan), None);
    assert_eq!(secret_relied_on(&released), None);
    // A live import with nothing remote yet may create at any moment: it relies on its Secret
    // (the keeper's cache may not show the intent recorded right after the protection). Being
    // deleted with nothing remote, or only observed, it does not.
    let mut fresh = import("f", Some("team-key"));
    fresh.status = Default::default();
    assert_eq!(secret_relied_on(&fresh).as_deref(), Some("team-key"));
    fresh.deleting = true;
    assert_eq!(secret_relied_on(&fresh), None);
    let mut observed = import("v", Some("team-key"));
    observed.spec.management = modelstudio_core::management::ManagementPolicy::Observe;
    assert_eq!(secret_relied_on(&observed), None);
}

#[test]
fn a_secret_naming_a_region_or_workspace_badly_is_told_what_to_write() {
    use modelstudio_core::credentials::CredentialProblem;
    let problems = [
        CredentialProblem::UnknownRegion {
            name: "bj".into(),
            region: "mars-1".into(),
            known: vec!["ap-southeast-1".into(), "cn-beijing".into()],
        },
        CredentialProblem::InvalidWorkspace { name: "bj".into() },
        CredentialProblem::RegionNeedsWorkspace {
            name: "bj".into(),
            region: "eu-central-1".into(),
        },
    ];
    let wants = [
        "one of ap-southeast-1, cn-beijing",
        "such as llm-abc123",
        "set its field workspace",
    ];
    for (problem, want) in problems.iter().zip(wants) {
        let message = problem.message();
        assert!(message.contains(want), "{message}");
        assert!(message.starts_with("Secret \"bj\""), "{message}");
        assert!(!message.contains("  "), "a run of spaces: {message}");
    }
}

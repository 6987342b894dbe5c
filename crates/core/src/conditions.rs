//! The kstatus conditions both kinds show: Ready, Reconciling and Stalled, what a reason means for
//! them ([`Meaning`]), the macro that lists a kind's reasons (`codes!`), and the building of the
//! three conditions and their merge into a status. Imports no other module of the core: each
//! kind's reasons and status build on it.

use jiff::Timestamp;

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";
pub const TRUE: &str = "True";
pub const FALSE: &str = "False";

/// A status condition (the metav1.Condition fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub type_: String,
    /// `True`, `False` or `Unknown`: kept as written, since others may set conditions too.
    pub status: String,
    pub reason: String,
    pub message: String,
    pub observed_generation: Option<i64>,
    pub last_transition_time: Timestamp,
}

/// What a reason means for the three kstatus conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Done and usable: Ready=True, Reconciling=False, Stalled=False.
    Ready,
    /// Work under way or being retried: Ready=False, Reconciling=True, Stalled=False.
    Reconciling,
    /// Cannot progress without a person: Ready=False, Reconciling=False, Stalled=True.
    Stalled,
}

impl Meaning {
    /// The condition that is True for this meaning.
    pub fn condition(self) -> &'static str {
        match self {
            Meaning::Ready => READY,
            Meaning::Reconciling => RECONCILING,
            Meaning::Stalled => STALLED,
        }
    }
}

/// Declares a list of condition reasons: `Code` for ModelImport, `DeploymentCode` for
/// ModelDeployment. The reasons every kind shares (a missing key and the [`RemoteFailure`]s) are
/// added after the kind's own, with `From<RemoteFailure>`.
///
/// [`RemoteFailure`]: crate::api::RemoteFailure
macro_rules! codes {
    ($(#[$attr:meta])* $name:ident { $($code:ident => $meaning:ident, $spec_stall:literal, $doc:literal;)* }) => {
        $crate::conditions::codes!(@list $(#[$attr])* $name {
            $($code => $meaning, $spec_stall, $doc;)*
            CredentialsMissing => Reconciling, false, "No usable API key: the Secret, its key or the default is missing.";
            InvalidApiKey => Reconciling, false, "Model Studio rejected the API key; retried with backoff.";
            AccessDenied => Reconciling, false, "The API key has no access; retried with backoff.";
            Throttled => Reconciling, false, "Model Studio is throttling; retried after its delay.";
            RemoteUnavailable => Reconciling, false, "Model Studio had a server error or did not answer; retried with backoff.";
            RemoteError => Reconciling, false, "Model Studio answered with an unexpected error; retried slowly.";
        });

        impl From<$crate::api::RemoteFailure> for $name {
            fn from(failure: $crate::api::RemoteFailure) -> $name {
                use $crate::api::RemoteFailure as F;
                match failure {
                    F::InvalidApiKey => $name::InvalidApiKey,
                    F::AccessDenied => $name::AccessDenied,
                    F::Throttled => $name::Throttled,
                    F::RemoteUnavailable => $name::RemoteUnavailable,
                    F::RemoteError => $name::RemoteError,
                }
            }
        }
    };
    (@list $(#[$attr:meta])* $name:ident { $($code:ident => $meaning:ident, $spec_stall:literal, $doc:literal;)* }) => {
        $(#[$attr])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $(#[doc = $doc] $code,)* }

        impl $name {
            /// Every reason, in documentation order.
            pub const ALL: &'static [$name] = &[$($name::$code,)*];

            /// The reason as written in a condition.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$code => stringify!($code),)* }
            }

            /// What it means for Ready, Reconciling and Stalled.
            pub fn meaning(self) -> Meaning {
                match self { $($name::$code => Meaning::$meaning,)* }
            }

            /// Stalls that only a spec change can cure (a failed job, by contrast, is final).
            pub fn waits_for_spec_change(self) -> bool {
                match self { $($name::$code => $spec_stall,)* }
            }

            /// One line for a person, as the documentation lists it.
            pub fn description(self) -> &'static str {
                match self { $($name::$code => $doc,)* }
            }

            /// Reads a reason back from a condition.
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|c| c.as_str() == s)
            }
        }
    };
}
pub(crate) use codes;

/// Reason and message of Reconciling=False: nothing under way.
pub const IDLE: (&str, &str) = ("Idle", "No work in progress");
/// Reason and message of Stalled=False.
pub const NOT_STALLED: (&str, &str) = ("NotStalled", "Progressing normally");

/// The three kstatus conditions for a reason named `name` that means `meaning`.
pub fn conditions_of(
    meaning: Meaning,
    name: &str,
    message: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    let cond = |type_: &str, on: bool, reason: &str, message: &str| Condition {
        type_: type_.to_string(),
        status: if on { TRUE } else { FALSE }.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: Timestamp::UNIX_EPOCH,
    };
    vec![
        cond(READY, meaning == Meaning::Ready, name, message),
        if meaning == Meaning::Reconciling {
            cond(RECONCILING, true, name, message)
        } else {
            cond(RECONCILING, false, IDLE.0, IDLE.1)
        },
        if meaning == Meaning::Stalled {
            cond(STALLED, true, name, message)
        } else {
            cond(STALLED, false, NOT_STALLED.0, NOT_STALLED.1)
        },
    ]
}

/// Reason and message of Reconciling=False while `modelstudio.io/paused` is set.
pub const PAUSED: (&str, &str) = (
    "Paused",
    "The annotation modelstudio.io/paused is \"true\": no call to Model Studio until it is removed \
     (Ready and Stalled show what was last known)",
);

/// The conditions of a paused resource: Reconciling=False with reason `Paused`; Ready and Stalled
/// as they were (a paused resource says nothing new about its remote object).
pub fn paused_conditions(
    current: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let paused = Condition {
        type_: RECONCILING.to_string(),
        status: FALSE.to_string(),
        reason: PAUSED.0.to_string(),
        message: PAUSED.1.to_string(),
        observed_generation: generation,
        last_transition_time: Timestamp::UNIX_EPOCH,
    };
    merge_conditions(current, vec![paused], now)
}

/// Reason and message of Reconciling=False for a resource the controller only observes.
pub const OBSERVING: (&str, &str) = (
    "Observing",
    "managementPolicy is Observe: the controller mirrors the remote object and never creates, \
     changes or deletes it",
);

/// The conditions of an observed resource: Reconciling=False says so (reason `Observing`) where
/// it would say `Idle`; a change under way (Reconciling=True) shows as it is.
pub fn observed_conditions(current: &[Condition]) -> Vec<Condition> {
    current
        .iter()
        .cloned()
        .map(|mut c| {
            if c.type_ == RECONCILING && c.status == FALSE && c.reason == IDLE.0 {
                c.reason = OBSERVING.0.to_string();
                c.message = OBSERVING.1.to_string();
            }
            c
        })
        .collect()
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
                Some(old) if old.status == c.status => old.last_transition_time,
                _ => now,
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

//! Outputs for the applications that call a model: what a resource (either kind) writes into its
//! ConfigMap, whether it may write there, and the `OutputsReady` condition that says how it went.
//! The ConfigMap holds what an app needs to call the model (its name, the OpenAI-compatible base
//! URL of the key's workspace and region, the workspace, the region and the key's Secret's name),
//! never the key. Imports only [`conditions`](crate::conditions).

use crate::conditions::{Condition, FALSE, TRUE};
use jiff::Timestamp;
use std::collections::BTreeMap;

/// The label on every ConfigMap the controller writes (its value: the owner's kind, lower case):
/// the controller watches only ConfigMaps that carry it.
pub const OUTPUTS_LABEL: &str = "modelstudio.io/outputs-of";

/// The condition that says whether the outputs ConfigMap holds what it should.
pub const OUTPUTS_READY: &str = "OutputsReady";

/// The keys of the ConfigMap, named as environment variables so that `envFrom` reads them:
/// OpenAI's SDKs read `OPENAI_BASE_URL` themselves.
pub const MODEL_NAME_KEY: &str = "MODEL_NAME";
pub const BASE_URL_KEY: &str = "OPENAI_BASE_URL";
pub const WORKSPACE_KEY: &str = "MODELSTUDIO_WORKSPACE_ID";
pub const REGION_KEY: &str = "MODELSTUDIO_REGION";
pub const SECRET_KEY: &str = "MODELSTUDIO_API_KEY_SECRET";

/// The path of the OpenAI-compatible API under a region's (or workspace's) host.
const COMPATIBLE_PATH: &str = "/compatible-mode/v1";

/// What is known of where and how the model is called.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The name to call the model by (a deployed model, or an import's generated model name);
    /// `None` until it is known.
    pub model: Option<String>,
    /// The native API's base URL the key is sent to (its region's or workspace's host).
    pub endpoint: String,
    pub workspace: Option<String>,
    pub region: Option<String>,
    /// The Secret in the resource's namespace the key came from (`None`: the controller's
    /// default key, which the app cannot read).
    pub secret: Option<String>,
}

/// The OpenAI-compatible base URL of a native endpoint: its host with `/compatible-mode/v1`.
pub fn base_url(endpoint: &str) -> String {
    let root = endpoint.trim_end_matches('/');
    let root = root.strip_suffix("/api/v1").unwrap_or(root);
    format!("{root}{COMPATIBLE_PATH}")
}

/// The ConfigMap's data, or `None` while the model's name is not known.
pub fn data(facts: &Facts) -> Option<BTreeMap<String, String>> {
    let model = facts.model.as_ref().filter(|m| !m.is_empty())?;
    let mut data = BTreeMap::from([
        (MODEL_NAME_KEY.to_string(), model.clone()),
        (BASE_URL_KEY.to_string(), base_url(&facts.endpoint)),
    ]);
    let optional = [
        (WORKSPACE_KEY, &facts.workspace),
        (REGION_KEY, &facts.region),
        (SECRET_KEY, &facts.secret),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            data.insert(key.to_string(), value.clone());
        }
    }
    Some(data)
}

/// The ConfigMap of the wanted name, as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// No ConfigMap of that name.
    Absent,
    /// One whose controlling owner is this resource, holding `data`.
    Ours { data: BTreeMap<String, String> },
    /// One the controller wrote for an earlier resource of the same kind and name that is gone
    /// (deleted, then created again): taken over, as the garbage collector would delete it.
    Former,
    /// One of someone else's; `owner` names its controlling owner, if any (`Kind/name`).
    Foreign { owner: Option<String> },
}

/// What to do about the outputs ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Export {
    /// It holds what it should.
    Unchanged,
    /// Create it (it does not exist) with this data.
    Create(BTreeMap<String, String>),
    /// Write this data into it (the controller's own, or a former resource's).
    Write(BTreeMap<String, String>),
    /// Nothing to write yet: the model's name is not known.
    Wait,
    /// Leave it: it is not the controller's.
    Refuse { owner: Option<String> },
}

/// Decides what to do with the ConfigMap, given what it should hold (`None`: not known yet) and
/// what was found under its name.
pub fn decide(wanted: Option<BTreeMap<String, String>>, found: Found) -> Export {
    match (found, wanted) {
        (Found::Foreign { owner }, _) => Export::Refuse { owner },
        (_, None) => Export::Wait,
        (Found::Absent, Some(data)) => Export::Create(data),
        (Found::Ours { data }, Some(wanted)) if data == wanted => Export::Unchanged,
        (Found::Ours { .. } | Found::Former, Some(wanted)) => Export::Write(wanted),
    }
}

/// The `OutputsReady` condition after `export` of ConfigMap `name` for a resource of `kind`
/// (`ModelDeployment`), stamped as `merge` would: `lastTransitionTime` kept when the status did
/// not change.
pub fn condition(
    export: &Export,
    kind: &str,
    name: &str,
    current: Option<&Condition>,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let (status, reason, message) = match export {
        Export::Unchanged | Export::Create(_) | Export::Write(_) => (
            TRUE,
            "Written",
            format!(
                "ConfigMap {name} holds the model's name and base URL (envFrom it to call the \
                 model)"
            ),
        ),
        Export::Wait => (
            FALSE,
            "WaitingForModel",
            format!("ConfigMap {name} is written once the model's name is known"),
        ),
        Export::Refuse { owner } => (
            FALSE,
            "ConfigMapNotOwned",
            format!(
                "ConfigMap {name} exists and is not this {kind}'s ({}): the controller does not \
                 overwrite it; delete it, or set spec.outputs.configMapName to another name",
                match owner {
                    Some(owner) => format!("its owner is {owner}"),
                    None => "it has no owner".to_string(),
                }
            ),
        ),
    };
    let last_transition_time = match current {
        Some(old) if old.status == status => old.last_transition_time,
        _ => now,
    };
    Condition {
        type_: OUTPUTS_READY.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time,
    }
}

/// Whether `next` says something `current` does not (its time aside): the condition is written
/// only then.
pub fn condition_changed(current: Option<&Condition>, next: &Condition) -> bool {
    current.is_none_or(|c| {
        (&c.status, &c.reason, &c.message, c.observed_generation)
            != (
                &next.status,
                &next.reason,
                &next.message,
                next.observed_generation,
            )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            model: Some("qwen3-32b-ft-abc1".into()),
            endpoint: "https://dashscope-intl.aliyuncs.com".into(),
            workspace: Some("llm-ws1".into()),
            region: Some("ap-southeast-1".into()),
            secret: Some("modelstudio-key".into()),
        }
    }

    #[test]
    fn the_base_url_is_the_compatible_mode_of_the_key_host() {
        assert_eq!(
            base_url("https://dashscope-intl.aliyuncs.com/"),
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
        );
        assert_eq!(
            base_url("https://dashscope.aliyuncs.com/api/v1"),
            "https://dashscope.aliyuncs.com/compatible-mode/v1"
        );
        assert_eq!(
            base_url("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000/compatible-mode/v1"
        );
    }

    #[test]
    fn data_names_the_model_and_where_to_call_it_never_the_key() {
        let data = data(&facts()).unwrap();
        assert_eq!(data[MODEL_NAME_KEY], "qwen3-32b-ft-abc1");
        assert_eq!(
            data[BASE_URL_KEY],
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
        );
        assert_eq!(data[WORKSPACE_KEY], "llm-ws1");
        assert_eq!(data[REGION_KEY], "ap-southeast-1");
        assert_eq!(data[SECRET_KEY], "modelstudio-key");
        assert_eq!(data.len(), 5);
        // What is not known is left out, not written empty.
        let bare = super::data(&Facts {
            workspace: None,
            region: None,
            secret: None,
            ..facts()
        })
        .unwrap();
        assert_eq!(
            bare.keys().collect::<Vec<_>>(),
            [MODEL_NAME_KEY, BASE_URL_KEY]
        );
        // Without a model there is nothing to export.
        assert_eq!(
            super::data(&Facts {
                model: None,
                ..facts()
            }),
            None
        );
        assert_eq!(
            super::data(&Facts {
                model: Some(String::new()),
                ..facts()
            }),
            None
        );
    }

    #[test]
    fn decisions_case_by_case() {
        let wanted = data(&facts()).unwrap();
        let other = data(&Facts {
            region: Some("cn-beijing".into()),
            ..facts()
        })
        .unwrap();
        assert_eq!(
            decide(Some(wanted.clone()), Found::Absent),
            Export::Create(wanted.clone())
        );
        assert_eq!(
            decide(
                Some(wanted.clone()),
                Found::Ours {
                    data: wanted.clone()
                }
            ),
            Export::Unchanged
        );
        assert_eq!(
            decide(Some(wanted.clone()), Found::Ours { data: other }),
            Export::Write(wanted.clone())
        );
        assert_eq!(
            decide(Some(wanted.clone()), Found::Former),
            Export::Write(wanted.clone())
        );
        assert_eq!(decide(None, Found::Absent), Export::Wait);
        assert_eq!(
            decide(
                Some(wanted.clone()),
                Found::Foreign {
                    owner: Some("Deployment/app".into())
                }
            ),
            Export::Refuse {
                owner: Some("Deployment/app".into())
            }
        );
        // A foreign ConfigMap is refused even before there is anything to write.
        assert_eq!(
            decide(None, Found::Foreign { owner: None }),
            Export::Refuse { owner: None }
        );
    }

    #[test]
    fn the_condition_says_what_to_fix_and_keeps_its_transition_time() {
        let t0 = Timestamp::from_second(1_000).unwrap();
        let t1 = Timestamp::from_second(2_000).unwrap();
        let refused = condition(
            &Export::Refuse { owner: None },
            "ModelDeployment",
            "chat",
            None,
            Some(1),
            t0,
        );
        assert_eq!(
            (refused.status.as_str(), refused.reason.as_str()),
            (FALSE, "ConfigMapNotOwned")
        );
        assert!(refused.message.contains("ConfigMap chat exists"));
        assert!(refused.message.contains("spec.outputs.configMapName"));
        assert_eq!(refused.last_transition_time, t0);
        let waiting = condition(
            &Export::Wait,
            "ModelDeployment",
            "chat",
            Some(&refused),
            Some(1),
            t1,
        );
        assert_eq!(waiting.last_transition_time, t0, "False stays False");
        assert!(condition_changed(Some(&refused), &waiting));
        let written = condition(
            &Export::Unchanged,
            "ModelDeployment",
            "chat",
            Some(&waiting),
            Some(1),
            t1,
        );
        assert_eq!(
            (written.status.as_str(), written.last_transition_time),
            (TRUE, t1)
        );
        let again = condition(
            &Export::Write(BTreeMap::new()),
            "ModelDeployment",
            "chat",
            Some(&written),
            Some(1),
            t1,
        );
        assert!(!condition_changed(Some(&written), &again));
        assert!(condition_changed(None, &again));
    }
}

//! Request and response bodies of the deployment API (reference §11) and their translation to
//! and from the core's domain types. Answers are read leniently: only `deployed_model` and
//! `status` are required, and a number may come as a string (the reference types
//! `base_capacity` as a string).

use super::client::FromAnswer;
use modelstudio_core::deployment::deployments::{
    Deployment, DeploymentPage, DeploymentState, Limits, NewDeployment, Plan,
};
use serde::{Deserialize, Deserializer, Serialize};

/// Body of a create request. Fields left `None` are not sent: the service applies its defaults.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct CreateDeploymentBody {
    model_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    capacity: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deploy_spec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ptu_capacity: Option<PtuCapacityBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suffix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    enable_thinking: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_context_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_limit: Option<u64>,
}

#[derive(Serialize, Debug, Clone, Copy, PartialEq)]
struct PtuCapacityBody {
    input_tpm: u64,
    output_tpm: u64,
}

impl From<&NewDeployment> for CreateDeploymentBody {
    fn from(d: &NewDeployment) -> Self {
        CreateDeploymentBody {
            model_name: d.model_name.clone(),
            capacity: d.capacity,
            plan: d.plan.as_ref().map(|p| p.spelling().to_string()),
            deploy_spec: d.deploy_spec.clone(),
            ptu_capacity: d.ptu_capacity.map(|p| PtuCapacityBody {
                input_tpm: p.input_tpm,
                output_tpm: p.output_tpm,
            }),
            name: d.name.clone(),
            suffix: d.suffix.clone().filter(|s| !s.is_empty()),
            enable_thinking: d.enable_thinking,
            max_context_length: d.max_context_length,
            rpm_limit: d.rpm_limit,
            tpm_limit: d.tpm_limit,
        }
    }
}

/// Body of `PUT .../scale`.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct ScaleBody {
    pub capacity: u32,
}

/// Body of `PUT .../update`: only the limits that change.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct UpdateLimitsBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    rpm_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_limit: Option<u64>,
}

impl From<&Limits> for UpdateLimitsBody {
    fn from(l: &Limits) -> Self {
        UpdateLimitsBody {
            rpm_limit: l.rpm_limit(),
            tpm_limit: l.tpm_limit(),
        }
    }
}

/// A number as JSON number or numeric string; anything else reads as absent rather than failing
/// the whole answer.
fn lenient_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

fn lenient_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    Ok(lenient_number(d)?.and_then(|n| u32::try_from(n).ok()))
}

/// A boolean as JSON boolean or `"true"`/`"false"`.
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        Some(serde_json::Value::Bool(b)) => Some(b),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    })
}

/// A deployment as the API returns it.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct DeploymentBody {
    deployed_model: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default)]
    base_model: Option<String>,
    status: String,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default, deserialize_with = "lenient_u32")]
    capacity: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    base_capacity: Option<u32>,
    #[serde(default, deserialize_with = "lenient_u32")]
    ready_capacity: Option<u32>,
    #[serde(default, deserialize_with = "lenient_number")]
    rpm_limit: Option<u64>,
    #[serde(default, deserialize_with = "lenient_number")]
    tpm_limit: Option<u64>,
    #[serde(default, deserialize_with = "lenient_bool")]
    enable_thinking: Option<bool>,
    #[serde(default, deserialize_with = "lenient_number")]
    max_context_length: Option<u64>,
    #[serde(default)]
    gmt_create: Option<String>,
    #[serde(default)]
    gmt_modified: Option<String>,
}

impl FromAnswer for Deployment {
    type Body = DeploymentBody;
}

impl From<DeploymentBody> for Deployment {
    fn from(b: DeploymentBody) -> Self {
        Deployment {
            status: DeploymentState::parse(&b.status),
            deployed_model: b.deployed_model,
            name: b.name,
            model_name: b.model_name,
            base_model: b.base_model,
            status_text: b.status,
            plan: b.plan.filter(|p| !p.is_empty()).map(|p| Plan::parse(&p)),
            capacity: b.capacity,
            base_capacity: b.base_capacity,
            ready_capacity: b.ready_capacity,
            rpm_limit: b.rpm_limit,
            tpm_limit: b.tpm_limit,
            enable_thinking: b.enable_thinking,
            max_context_length: b.max_context_length,
            gmt_create: b.gmt_create,
            gmt_modified: b.gmt_modified,
        }
    }
}

/// The answer to a DELETE: only the state matters (and is all the official SDK reads).
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct DeletionBody {
    status: String,
}

impl FromAnswer for DeploymentState {
    type Body = DeletionBody;
}

impl From<DeletionBody> for DeploymentState {
    fn from(b: DeletionBody) -> Self {
        DeploymentState::parse(&b.status)
    }
}

/// One page of `GET /api/v1/deployments`.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct DeploymentPageBody {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    page_no: u32,
    #[serde(default)]
    page_size: u32,
    #[serde(default)]
    deployments: Vec<DeploymentBody>,
}

impl FromAnswer for DeploymentPage {
    type Body = DeploymentPageBody;
}

impl From<DeploymentPageBody> for DeploymentPage {
    fn from(b: DeploymentPageBody) -> Self {
        DeploymentPage {
            total: b.total,
            page_no: b.page_no,
            page_size: b.page_size,
            items: b.deployments.into_iter().map(Deployment::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelstudio_core::deployment::deployments::PtuCapacity;
    use serde_json::json;

    #[test]
    fn a_create_sends_only_what_is_set_as_the_api_spells_it() {
        let body = CreateDeploymentBody::from(&NewDeployment {
            model_name: "m".into(),
            capacity: Some(2),
            plan: Some(Plan::Lora),
            suffix: Some("".into()),
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"model_name": "m", "capacity": 2, "plan": "lora"})
        );
        let body = CreateDeploymentBody::from(&NewDeployment {
            model_name: "m".into(),
            plan: Some(Plan::Ptu),
            ptu_capacity: Some(PtuCapacity {
                input_tpm: 10_000,
                output_tpm: 1_000,
            }),
            name: Some("n".into()),
            suffix: Some("v2".into()),
            enable_thinking: Some(false),
            max_context_length: Some(8192),
            rpm_limit: Some(60),
            tpm_limit: Some(1000),
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({"model_name": "m", "plan": "ptu",
                   "ptu_capacity": {"input_tpm": 10000, "output_tpm": 1000},
                   "name": "n", "suffix": "v2", "enable_thinking": false,
                   "max_context_length": 8192, "rpm_limit": 60, "tpm_limit": 1000})
        );
        let limits = Limits::new(None, Some(5)).unwrap();
        assert_eq!(
            serde_json::to_value(UpdateLimitsBody::from(&limits)).unwrap(),
            json!({"tpm_limit": 5})
        );
    }

    #[test]
    fn answers_are_read_leniently() {
        let body: DeploymentBody = serde_json::from_value(json!({
            "deployed_model": "m-v2", "status": "updating", "plan": "mu",
            "capacity": "4", "base_capacity": 2, "ready_capacity": null,
            "enable_thinking": "true", "rpm_limit": -1, "charge_type": "post_paid",
            "gmt_create": "2025-06-17T11:00:38.68"
        }))
        .unwrap();
        let d = Deployment::from(body);
        assert_eq!(d.status, DeploymentState::Updating);
        assert_eq!(d.status_text, "updating");
        assert_eq!(d.plan, Some(Plan::Mu));
        assert_eq!(
            (d.capacity, d.base_capacity, d.ready_capacity),
            (Some(4), Some(2), None)
        );
        assert_eq!(d.enable_thinking, Some(true));
        assert_eq!(d.rpm_limit, None);
        assert_eq!(d.gmt_create.as_deref(), Some("2025-06-17T11:00:38.68"));
        // Without the name or the status the answer is not a deployment.
        assert!(serde_json::from_value::<DeploymentBody>(json!({"status": "RUNNING"})).is_err());
    }
}

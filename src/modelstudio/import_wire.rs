//! Request and response bodies of the import API, as the reference documents them, and their
//! translation to and from the core's domain types. Responses are read leniently: only `job_id`
//! and `status` are required, since get, list and delete leave out fields that create returns.

use super::client::FromAnswer;
use modelstudio_core::import::jobs::{Job, JobPage, JobState, NewJob, Source, Storage, WeightType};
use serde::{Deserialize, Serialize};

/// Body of a create request.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub(crate) struct CreateBody {
    /// The base model ID.
    model_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    source: &'static str,
    weight_type: &'static str,
    storage_info: StorageInfo,
}

impl From<&NewJob> for CreateBody {
    fn from(job: &NewJob) -> Self {
        CreateBody {
            model_name: job.base_model.clone(),
            display_name: job.display_name.clone(),
            source: match job.source {
                Source::Oss => "oss",
            },
            weight_type: match job.weight_type {
                WeightType::Lora => "lora",
                WeightType::Full => "full",
            },
            storage_info: StorageInfo {
                bucket_name: job.storage.bucket_name.clone(),
                object_key: job.storage.object_key.clone(),
            },
        }
    }
}

/// An OSS location.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct StorageInfo {
    bucket_name: String,
    object_key: String,
}

/// An import job as the API returns it.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct JobBody {
    job_id: String,
    /// The generated model name (not the base model).
    #[serde(default)]
    model_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    storage_info: Option<StorageInfo>,
    status: String,
    #[serde(default)]
    gmt_create: Option<String>,
    /// Only FAILED jobs carry it: a readable reason.
    #[serde(default)]
    error_code: Option<String>,
}

impl FromAnswer for Job {
    type Body = JobBody;
}

impl From<JobBody> for Job {
    fn from(body: JobBody) -> Self {
        Job {
            state: JobState::parse(&body.status),
            id: body.job_id,
            model_name: body.model_name,
            display_name: body.display_name,
            storage: body.storage_info.map(|s| Storage {
                bucket_name: s.bucket_name,
                object_key: s.object_key,
            }),
            status_text: body.status,
            created_at: body.gmt_create,
            error_code: body.error_code,
        }
    }
}

/// One page of a list response.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct PageBody {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    page_no: u32,
    #[serde(default)]
    page_size: u32,
    #[serde(default)]
    list: Vec<JobBody>,
}

impl FromAnswer for JobPage {
    type Body = PageBody;
}

impl From<PageBody> for JobPage {
    fn from(body: PageBody) -> Self {
        JobPage {
            total: body.total,
            page_no: body.page_no,
            page_size: body.page_size,
            items: body.list.into_iter().map(Job::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_response_without_weight_type_parses() {
        let body: JobBody = serde_json::from_str(
            r#"{"job_id":"j1","model_name":"qwen3-32b-offline-20240101-abc1","status":"FAILED","error_code":"Failed to get files from OSS."}"#,
        )
        .unwrap();
        let job = Job::from(body);
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.status_text, "FAILED");
        assert_eq!(
            job.error_code.as_deref(),
            Some("Failed to get files from OSS.")
        );
        assert_eq!(job.storage, None);
    }

    #[test]
    fn a_create_is_sent_as_the_api_spells_it() {
        let body = CreateBody::from(&NewJob {
            base_model: "qwen3-32b".into(),
            display_name: None,
            source: Source::Oss,
            weight_type: WeightType::Full,
            storage: Storage {
                bucket_name: "b".into(),
                object_key: "k/".into(),
            },
        });
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            serde_json::json!({
                "model_name": "qwen3-32b",
                "source": "oss",
                "weight_type": "full",
                "storage_info": {"bucket_name": "b", "object_key": "k/"}
            })
        );
    }

    #[test]
    fn both_success_spellings_read_as_success_and_the_filter_uses_the_documented_one() {
        for status in ["SUCCESSED", "SUCCEEDED"] {
            let body: JobBody =
                serde_json::from_value(serde_json::json!({"job_id": "j", "status": status}))
                    .unwrap();
            let job = Job::from(body);
            assert_eq!(job.state, JobState::Succeeded);
            assert_eq!(job.status_text, status);
        }
        assert_eq!(JobState::Succeeded.spelling(), "SUCCESSED");
        assert_eq!(JobState::Unknown("X".into()).spelling(), "X");
    }
}

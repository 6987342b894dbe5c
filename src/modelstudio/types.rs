//! Request and response bodies of the import API, as the reference documents them. Responses are
//! read leniently: only `job_id` and `status` are required, since get, list and delete leave out
//! fields that create returns.

use serde::{Deserialize, Serialize};

/// Body of a create request.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct CreateJob {
    /// The base model ID.
    pub model_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub source: String,
    pub weight_type: String,
    pub storage_info: StorageInfo,
}

/// An OSS location.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct StorageInfo {
    pub bucket_name: String,
    pub object_key: String,
}

/// An import job as the API returns it.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct ImportJob {
    pub job_id: String,
    /// The generated model name (not the base model).
    #[serde(default)]
    pub model_name: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    /// Only the create response carries it.
    #[serde(default)]
    pub weight_type: Option<String>,
    #[serde(default)]
    pub storage_info: Option<StorageInfo>,
    pub status: String,
    #[serde(default)]
    pub gmt_create: Option<String>,
    /// Only FAILED jobs carry it: a readable reason.
    #[serde(default)]
    pub error_code: Option<String>,
}

impl ImportJob {
    /// The status, parsed.
    pub fn remote_status(&self) -> RemoteStatus {
        RemoteStatus::parse(&self.status)
    }
}

/// A job's status. Both documented spellings of success are read as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// A status the reference does not document; kept as sent.
    Unknown(String),
}

impl RemoteStatus {
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_uppercase().as_str() {
            "PENDING" => RemoteStatus::Pending,
            "RUNNING" => RemoteStatus::Running,
            "SUCCESSED" | "SUCCEEDED" => RemoteStatus::Succeeded,
            "FAILED" => RemoteStatus::Failed,
            _ => RemoteStatus::Unknown(s.to_string()),
        }
    }

    /// SUCCESSED/SUCCEEDED and FAILED are final: the job changes no more.
    pub fn is_terminal(&self) -> bool {
        matches!(self, RemoteStatus::Succeeded | RemoteStatus::Failed)
    }
}

/// Filters and paging of a list request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// 1-based page number.
    pub page_no: Option<u32>,
    /// At most 100.
    pub page_size: Option<u32>,
    /// Exact status filter, as the API spells it (`SUCCESSED`).
    pub status: Option<String>,
    /// Exact match on the generated model name.
    pub model_name: Option<String>,
}

/// One page of a list response.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct JobPage {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub page_no: u32,
    #[serde(default)]
    pub page_size: u32,
    #[serde(default)]
    pub list: Vec<ImportJob>,
}

impl JobPage {
    /// Whether a later page exists (the API has no cursor: page until page_no*page_size >= total).
    pub fn has_more(&self) -> bool {
        self.page_size > 0 && u64::from(self.page_no) * u64::from(self.page_size) < self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_success_spellings_are_success() {
        assert_eq!(RemoteStatus::parse("SUCCESSED"), RemoteStatus::Succeeded);
        assert_eq!(RemoteStatus::parse("SUCCEEDED"), RemoteStatus::Succeeded);
        assert_eq!(RemoteStatus::parse("running"), RemoteStatus::Running);
        assert_eq!(
            RemoteStatus::parse("CANCELLED"),
            RemoteStatus::Unknown("CANCELLED".into())
        );
        assert!(RemoteStatus::Failed.is_terminal());
        assert!(!RemoteStatus::Pending.is_terminal());
    }

    #[test]
    fn get_response_without_weight_type_parses() {
        let job: ImportJob = serde_json::from_str(
            r#"{"job_id":"j1","model_name":"qwen3-32b-offline-20240101-abc1","status":"FAILED","error_code":"Failed to get files from OSS."}"#,
        )
        .unwrap();
        assert_eq!(job.remote_status(), RemoteStatus::Failed);
        assert!(job.weight_type.is_none());
        assert_eq!(
            job.error_code.as_deref(),
            Some("Failed to get files from OSS.")
        );
    }

    #[test]
    fn paging_stops_at_total() {
        let page = |page_no, total| JobPage {
            total,
            page_no,
            page_size: 10,
            list: vec![],
        };
        assert!(page(1, 11).has_more());
        assert!(!page(2, 11).has_more());
        assert!(!page(1, 10).has_more());
    }
}

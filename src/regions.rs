//! Where each region's Model Studio lives. A credentials Secret may name its key's region and
//! workspace (an API key belongs to one workspace of one region); the host for that region comes
//! from here, the controller's own configuration, never from the Secret, so a tenant cannot send
//! the controller's calls (and their key) to a host of their choosing.

use modelstudio_core::credentials::CredentialProblem;
use std::collections::BTreeMap;

/// The placeholder a region's base URL may hold for the key's workspace id, as the official SDK's
/// per-workspace hosts are written (`https://{workspace}.ap-southeast-1.maas.aliyuncs.com`).
pub const WORKSPACE_PLACEHOLDER: &str = "{workspace}";

/// The public hosts of the regions the API reference documents (§1.2), and Hong Kong's as the
/// official SDK (dashscope 2.0.2, `v2/_config.py`) writes it.
pub const DOCUMENTED_REGIONS: [(&str, &str); 4] = [
    ("cn-beijing", "https://dashscope.aliyuncs.com"),
    ("ap-southeast-1", "https://dashscope-intl.aliyuncs.com"),
    ("us-east-1", "https://dashscope-us.aliyuncs.com"),
    ("cn-hongkong", "https://cn-hongkong.dashscope.aliyuncs.com"),
];

/// Why a `--region-endpoint` cannot be used; each says what to fix.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegionError {
    #[error("--region-endpoint {0:?} must be REGION=URL, such as ap-southeast-1=https://dashscope-intl.aliyuncs.com")]
    Form(String),
    #[error("--region-endpoint region {0:?} must be lower-case letters, digits and '-', such as cn-beijing")]
    Name(String),
    #[error("--region-endpoint {region}'s URL {url:?} must be an http:// or https:// URL (it may hold {WORKSPACE_PLACEHOLDER} in its host)")]
    Url { region: String, url: String },
}

/// The base URL of each region the controller knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    endpoints: BTreeMap<String, String>,
}

impl Default for Regions {
    fn default() -> Self {
        Regions {
            endpoints: DOCUMENTED_REGIONS
                .iter()
                .map(|(r, u)| (r.to_string(), u.to_string()))
                .collect(),
        }
    }
}

impl Regions {
    /// The documented regions, with `overrides` (`REGION=URL` each) added or put in their place.
    pub fn with_overrides(overrides: &[String]) -> Result<Regions, RegionError> {
        let mut regions = Regions::default();
        for entry in overrides.iter().filter(|e| !e.trim().is_empty()) {
            let (region, url) = parse_entry(entry)?;
            regions.endpoints.insert(region, url);
        }
        Ok(regions)
    }

    /// The regions known, in order.
    pub fn names(&self) -> Vec<String> {
        self.endpoints.keys().cloned().collect()
    }

    /// The base URL for a key of `region` in `workspace` that Secret `secret` names.
    pub fn endpoint(
        &self,
        secret: &str,
        region: &str,
        workspace: Option<&str>,
    ) -> Result<String, CredentialProblem> {
        let Some(url) = self.endpoints.get(region) else {
            return Err(CredentialProblem::UnknownRegion {
                name: secret.to_string(),
                region: region.chars().take(63).collect(),
                known: self.names(),
            });
        };
        if !url.contains(WORKSPACE_PLACEHOLDER) {
            return Ok(url.clone());
        }
        match workspace {
            Some(ws) => Ok(url.replace(WORKSPACE_PLACEHOLDER, ws)),
            None => Err(CredentialProblem::RegionNeedsWorkspace {
                name: secret.to_string(),
                region: region.to_string(),
            }),
        }
    }
}

/// A workspace id can go in a header and a host name: letters, digits and '-', 1 to 63 of them.
pub fn is_workspace_id(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn parse_entry(entry: &str) -> Result<(String, String), RegionError> {
    let (region, url) = entry
        .split_once('=')
        .ok_or_else(|| RegionError::Form(entry.to_string()))?;
    let (region, url) = (region.trim(), url.trim());
    let name_ok = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !name_ok {
        return Err(RegionError::Name(region.to_string()));
    }
    // The placeholder is checked with a workspace id standing in for it.
    let probe = url.replace(WORKSPACE_PLACEHOLDER, "llm-probe");
    let valid = reqwest::Url::parse(&probe).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base() && u.host().is_some()
    });
    if !valid {
        return Err(RegionError::Url {
            region: region.to_string(),
            url: url.to_string(),
        });
    }
    Ok((region.to_string(), url.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_regions_and_overrides() {
        let r = Regions::default();
        assert_eq!(
            r.endpoint("s", "ap-southeast-1", None).unwrap(),
            "https://dashscope-intl.aliyuncs.com"
        );
        let r = Regions::with_overrides(&[
            "cn-beijing=http://127.0.0.1:9001".into(),
            "eu-central-1=https://{workspace}.eu-central-1.maas.aliyuncs.com".into(),
        ])
        .unwrap();
        assert_eq!(
            r.endpoint("s", "cn-beijing", Some("llm-a")).unwrap(),
            "http://127.0.0.1:9001"
        );
        assert_eq!(
            r.endpoint("s", "eu-central-1", Some("llm-a")).unwrap(),
            "https://llm-a.eu-central-1.maas.aliyuncs.com"
        );
        assert!(matches!(
            r.endpoint("s", "eu-central-1", None),
            Err(CredentialProblem::RegionNeedsWorkspace { .. })
        ));
        match r.endpoint("s", "mars-1", None) {
            Err(CredentialProblem::UnknownRegion { known, .. }) => {
                assert!(known.contains(&"cn-beijing".to_string()), "{known:?}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_overrides_say_what_to_fix() {
        for (entry, words) in [
            ("cn-beijing", "REGION=URL"),
            ("CN=http://x", "lower-case"),
            ("x=ftp://h", "http://"),
            ("x=not a url", "http://"),
        ] {
            let e = Regions::with_overrides(&[entry.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(words), "{entry}: {e}");
        }
    }

    #[test]
    fn workspace_ids_are_safe_in_a_header_and_a_host() {
        assert!(is_workspace_id("llm-abc123"));
        for bad in ["", "a.b", "evil.com/x", "-a", "a b", &"a".repeat(64)] {
            assert!(!is_workspace_id(bad), "{bad}");
        }
    }
}

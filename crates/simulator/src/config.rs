//! Simulator settings, usable as clap flags (each also read from a `SIMULATOR_*` variable).

use std::fmt;
use std::time::Duration;

/// Base models that accept imports, as listed in section 8.3 of the API reference.
pub const DEFAULT_BASE_MODELS: &[&str] = &[
    "qwen3-32b",
    "qwen3-14b",
    "qwen3-8b",
    "qwen3-4b-instruct-2507",
    "qwen3-vl-8b-instruct",
    "qwen2.5-72b-instruct",
    "qwen2.5-32b-instruct",
    "qwen2.5-14b-instruct",
    "qwen2.5-7b-instruct",
    "qwen2.5-vl-72b-instruct",
    "qwen2.5-vl-7b-instruct",
];

/// Status spelling used by every wire example of the import API.
pub const SUCCESSED: &str = "SUCCESSED";
/// Status spelling used by the English object page only.
pub const SUCCEEDED: &str = "SUCCEEDED";

/// The `error_code` example of the English documentation.
pub const DEFAULT_FAILURE_MESSAGE: &str = "Failed to get files from OSS. Check the files in OSS.";

/// An `object_key` containing this makes the job end FAILED.
pub const DEFAULT_FAIL_MARKER: &str = "simulate-failure";

/// Models every workspace can deploy, as `name=base_capacity` (the deployment reference's
/// examples). A workspace's SUCCESSED imports are deployable too.
pub const DEFAULT_DEPLOYABLE_MODELS: &[&str] = &["qwen-plus=8", "qwen-turbo=2", "emo=1"];

/// DELETE accepts any deployment (the documentation's example deletes a live one).
pub const DELETE_ANY: &str = "any";
/// DELETE accepts only STOPPED or FAILED deployments (what the official CLI checks).
pub const DELETE_STOPPED_OR_FAILED: &str = "stopped-or-failed";

fn default_deployable_models() -> Vec<String> {
    DEFAULT_DEPLOYABLE_MODELS
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

/// Reads `name=base_capacity`.
pub fn parse_deployable(s: &str) -> Result<(String, u32), String> {
    let (name, base) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not name=base_capacity"))?;
    let base: u32 = base
        .trim()
        .parse()
        .ok()
        .filter(|b| *b > 0)
        .ok_or_else(|| format!("`{s}`: base_capacity must be a positive integer"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`{s}`: the model name is empty"));
    }
    Ok((name.to_owned(), base))
}

fn deployable_arg(s: &str) -> Result<String, String> {
    parse_deployable(s).map(|_| s.to_owned())
}

/// Reads an `--api-key` value: `KEY`, or `KEY=WORKSPACE_ID` to fix the key's workspace id.
/// Split at the last `=`, so a key may hold `=` when a workspace id follows.
pub fn parse_api_key(s: &str) -> Result<(String, Option<String>), String> {
    let Some((key, workspace)) = s.rsplit_once('=') else {
        return Ok((s.to_owned(), None));
    };
    if key.is_empty() {
        return Err(
            "an --api-key value has an empty key before '='; write KEY or KEY=WORKSPACE_ID, e.g. sk-bj=llm-beijing"
                .to_owned(),
        );
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if workspace.is_empty() || !workspace.chars().all(valid) {
        return Err(format!(
            "the workspace id after '=' in an --api-key value must be non-empty letters, digits, '-', '_' or '.', not {:?}; write KEY=WORKSPACE_ID, e.g. sk-bj=llm-beijing",
            workspace.chars().take(40).collect::<String>()
        ));
    }
    Ok((key.to_owned(), Some(workspace.to_owned())))
}

/// Checks `--api-key` values. A raw clap error, because clap's usual one repeats the value (a key).
#[derive(Clone)]
struct ApiKeyParser;

impl clap::builder::TypedValueParser for ApiKeyParser {
    type Value = String;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let invalid = |m: String| clap::Error::raw(clap::error::ErrorKind::InvalidValue, m + "\n");
        let s = value
            .to_str()
            .ok_or_else(|| invalid("an --api-key value is not valid UTF-8".to_owned()))?;
        parse_api_key(s).map_err(invalid)?;
        Ok(s.to_owned())
    }
}

fn default_base_models() -> Vec<String> {
    DEFAULT_BASE_MODELS
        .iter()
        .map(|m| (*m).to_owned())
        .collect()
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let rate: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!("`{s}` is not a probability between 0 and 1"))
    }
}

/// Settings of a [`crate::Simulator`].
///
/// `Debug` is written by hand so that API keys never reach a log line.
#[derive(clap::Args, Clone)]
pub struct SimulatorConfig {
    /// How long a new job stays PENDING.
    #[arg(long, env = "SIMULATOR_PENDING_DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub pending_duration: Duration,

    /// How long a job stays RUNNING after PENDING, before it succeeds or fails.
    #[arg(long, env = "SIMULATOR_RUNNING_DURATION", default_value = "5s", value_parser = humantime::parse_duration)]
    pub running_duration: Duration,

    /// Accepted API keys (repeat the flag, or comma-separate in the variable), each `KEY` or
    /// `KEY=WORKSPACE_ID` to fix its workspace id (e.g. `sk-bj=llm-beijing`; otherwise each key
    /// gets `llm-simNNNN` in first-use order). When none is given, any key starting with `sk-`
    /// is accepted.
    #[arg(
        long = "api-key",
        env = "SIMULATOR_API_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = ApiKeyParser
    )]
    pub api_keys: Vec<String>,

    /// Base models that can be imported (repeat the flag, or comma-separate in the variable).
    #[arg(long = "base-model", env = "SIMULATOR_BASE_MODELS", value_delimiter = ',', default_values_t = default_base_models())]
    pub base_models: Vec<String>,

    /// Spelling of the success status: SUCCESSED (every wire example) or SUCCEEDED.
    #[arg(long, env = "SIMULATOR_SUCCESS_SPELLING", default_value = SUCCESSED, value_parser = [SUCCESSED, SUCCEEDED])]
    pub success_spelling: String,

    /// HTTP status of `OperationDenied` (undocumented; 400 is the best guess).
    #[arg(long, env = "SIMULATOR_OPERATION_DENIED_STATUS", default_value_t = 400, value_parser = clap::value_parser!(u16).range(400..=599))]
    pub operation_denied_status: u16,

    /// A job whose object_key contains this text ends FAILED (empty: never).
    #[arg(long, env = "SIMULATOR_FAIL_MARKER", default_value = DEFAULT_FAIL_MARKER)]
    pub fail_marker: String,

    /// The `error_code` text of FAILED jobs.
    #[arg(long, env = "SIMULATOR_FAILURE_MESSAGE", default_value = DEFAULT_FAILURE_MESSAGE)]
    pub failure_message: String,

    /// Delay added to every API call (fault injection).
    #[arg(long, env = "SIMULATOR_LATENCY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,

    /// Probability (0..=1) that an API call answers 429 Throttling.RateQuota.
    #[arg(long, env = "SIMULATOR_THROTTLE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub throttle_rate: f64,

    /// `Retry-After` value, in seconds, of simulated 429 answers.
    #[arg(long, env = "SIMULATOR_RETRY_AFTER_SECONDS", default_value_t = 1)]
    pub retry_after_seconds: u64,

    /// Probability (0..=1) that an API call answers 500 InternalError.
    #[arg(long, env = "SIMULATOR_ERROR_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,

    /// Probability (0..=1) that a create makes the job but answers 500 (a lost answer).
    #[arg(long, env = "SIMULATOR_LOST_CREATE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub lost_create_rate: f64,

    /// Seed of the random generators (ids, names, faults), for repeatable runs.
    #[arg(long, env = "SIMULATOR_SEED")]
    pub seed: Option<u64>,

    /// How long a new deployment stays PENDING (the service takes 5 to 10 minutes).
    #[arg(long, env = "SIMULATOR_DEPLOYMENT_PENDING_DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
    pub deployment_pending_duration: Duration,

    /// How long a new deployment reports DEPLOYING after PENDING, before RUNNING (0: never).
    #[arg(long, env = "SIMULATOR_DEPLOYMENT_DEPLOYING_DURATION", default_value = "0s", value_parser = humantime::parse_duration)]
    pub deployment_deploying_duration: Duration,

    /// How long a scaled deployment stays UPDATING before it runs at its new capacity.
    #[arg(long, env = "SIMULATOR_DEPLOYMENT_UPDATING_DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub deployment_updating_duration: Duration,

    /// How long a deleted deployment stays DELETING before it is gone.
    #[arg(long, env = "SIMULATOR_DEPLOYMENT_DELETING_DURATION", default_value = "2s", value_parser = humantime::parse_duration)]
    pub deployment_deleting_duration: Duration,

    /// Which deployments DELETE accepts: `any` (the documentation's example) or
    /// `stopped-or-failed` (the official CLI's check; others answer OperationDenied).
    #[arg(long, env = "SIMULATOR_DEPLOYMENT_DELETE_RULE", default_value = DELETE_ANY, value_parser = [DELETE_ANY, DELETE_STOPPED_OR_FAILED])]
    pub deployment_delete_rule: String,

    /// Models every workspace can deploy, as `name=base_capacity` (repeat the flag, or
    /// comma-separate in the variable).
    #[arg(long = "deployable-model", env = "SIMULATOR_DEPLOYABLE_MODELS", value_delimiter = ',', default_values_t = default_deployable_models(), value_parser = deployable_arg)]
    pub deployable_models: Vec<String>,

    /// base_capacity of a workspace's imported (custom) models.
    #[arg(long, env = "SIMULATOR_CUSTOM_MODEL_BASE_CAPACITY", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub custom_model_base_capacity: u32,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            pending_duration: Duration::from_secs(2),
            running_duration: Duration::from_secs(5),
            api_keys: Vec::new(),
            base_models: default_base_models(),
            success_spelling: SUCCESSED.to_owned(),
            operation_denied_status: 400,
            fail_marker: DEFAULT_FAIL_MARKER.to_owned(),
            failure_message: DEFAULT_FAILURE_MESSAGE.to_owned(),
            latency: Duration::ZERO,
            throttle_rate: 0.0,
            retry_after_seconds: 1,
            error_rate: 0.0,
            lost_create_rate: 0.0,
            seed: None,
            deployment_pending_duration: Duration::from_secs(3),
            deployment_deploying_duration: Duration::ZERO,
            deployment_updating_duration: Duration::from_secs(2),
            deployment_deleting_duration: Duration::from_secs(2),
            deployment_delete_rule: DELETE_ANY.to_owned(),
            deployable_models: default_deployable_models(),
            custom_model_base_capacity: 1,
        }
    }
}

impl fmt::Debug for SimulatorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatorConfig")
            .field("pending_duration", &self.pending_duration)
            .field("running_duration", &self.running_duration)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("base_models", &self.base_models)
            .field("success_spelling", &self.success_spelling)
            .field("operation_denied_status", &self.operation_denied_status)
            .field("fail_marker", &self.fail_marker)
            .field("failure_message", &self.failure_message)
            .field("latency", &self.latency)
            .field("throttle_rate", &self.throttle_rate)
            .field("retry_after_seconds", &self.retry_after_seconds)
            .field("error_rate", &self.error_rate)
            .field("lost_create_rate", &self.lost_create_rate)
            .field("seed", &self.seed)
            .field(
                "deployment_pending_duration",
                &self.deployment_pending_duration,
            )
            .field(
                "deployment_deploying_duration",
                &self.deployment_deploying_duration,
            )
            .field(
                "deployment_updating_duration",
                &self.deployment_updating_duration,
            )
            .field(
                "deployment_deleting_duration",
                &self.deployment_deleting_duration,
            )
            .field("deployment_delete_rule", &self.deployment_delete_rule)
            .field("deployable_models", &self.deployable_models)
            .field(
                "custom_model_base_capacity",
                &self.custom_model_base_capacity,
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimulatorConfig,
    }

    #[test]
    fn clap_defaults_match_default() {
        let parsed = Cli::try_parse_from(["sim"]).unwrap().sim;
        let default = SimulatorConfig::default();
        assert_eq!(format!("{parsed:?}"), format!("{default:?}"));
    }

    #[test]
    fn flags_parse() {
        let parsed = Cli::try_parse_from([
            "sim",
            "--pending-duration",
            "100ms",
            "--running-duration",
            "1m",
            "--api-key",
            "sk-a,sk-b",
            "--api-key",
            "sk-c",
            "--base-model",
            "m1",
            "--success-spelling",
            "SUCCEEDED",
            "--operation-denied-status",
            "409",
            "--throttle-rate",
            "0.5",
            "--seed",
            "7",
            "--latency",
            "250ms",
            "--deployment-pending-duration",
            "1s",
            "--deployment-deploying-duration",
            "2s",
            "--deployment-delete-rule",
            "stopped-or-failed",
            "--deployable-model",
            "m1=4",
            "--custom-model-base-capacity",
            "2",
        ])
        .unwrap()
        .sim;
        assert_eq!(parsed.pending_duration, Duration::from_millis(100));
        assert_eq!(parsed.running_duration, Duration::from_secs(60));
        assert_eq!(parsed.api_keys, ["sk-a", "sk-b", "sk-c"]);
        assert_eq!(parsed.base_models, ["m1"]);
        assert_eq!(parsed.success_spelling, SUCCEEDED);
        assert_eq!(parsed.operation_denied_status, 409);
        assert_eq!(parsed.throttle_rate, 0.5);
        assert_eq!(parsed.seed, Some(7));
        assert_eq!(parsed.latency, Duration::from_millis(250));
        assert_eq!(parsed.deployment_pending_duration, Duration::from_secs(1));
        assert_eq!(parsed.deployment_deploying_duration, Duration::from_secs(2));
        assert_eq!(parsed.deployment_delete_rule, DELETE_STOPPED_OR_FAILED);
        assert_eq!(parsed.deployable_models, ["m1=4"]);
        assert_eq!(parsed.custom_model_base_capacity, 2);
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            ["sim", "--throttle-rate", "1.5"],
            ["sim", "--error-rate", "nan"],
            ["sim", "--success-spelling", "DONE"],
            ["sim", "--operation-denied-status", "200"],
            ["sim", "--latency", "fast"],
            ["sim", "--deployment-delete-rule", "never"],
            ["sim", "--deployable-model", "m1"],
            ["sim", "--deployable-model", "m1=0"],
            ["sim", "--custom-model-base-capacity", "0"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn debug_hides_keys() {
        let config = SimulatorConfig {
            api_keys: vec!["sk-secret".into(), "sk-other=llm-fixed".into()],
            ..SimulatorConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("sk-secret") && !debug.contains("sk-other"),
            "{debug}"
        );
    }

    #[test]
    fn an_api_key_may_fix_its_workspace() {
        assert_eq!(parse_api_key("sk-a"), Ok(("sk-a".into(), None)));
        assert_eq!(
            parse_api_key("sk-bj=llm-beijing"),
            Ok(("sk-bj".into(), Some("llm-beijing".into())))
        );
        // The last '=' splits, so a key may hold '=' when a workspace follows.
        assert_eq!(
            parse_api_key("sk-a=b=llm-x"),
            Ok(("sk-a=b".into(), Some("llm-x".into())))
        );
        for bad in ["=llm-x", "sk-a=", "sk-a=llm x", "sk-a=llm/x"] {
            let message = parse_api_key(bad).unwrap_err();
            assert!(message.contains("KEY=WORKSPACE_ID"), "{bad}: {message}");
        }
        let parsed = Cli::try_parse_from(["sim", "--api-key", "sk-bj=llm-beijing,sk-plain"])
            .unwrap()
            .sim;
        assert_eq!(parsed.api_keys, ["sk-bj=llm-beijing", "sk-plain"]);
        let Err(e) = Cli::try_parse_from(["sim", "--api-key", "sk-secret-key=bad ws"]) else {
            panic!("a bad workspace id was accepted");
        };
        let message = e.to_string();
        assert!(message.contains("KEY=WORKSPACE_ID"), "{message}");
        assert!(
            !message.contains("sk-secret-key"),
            "the error repeats the key: {message}"
        );
    }
}

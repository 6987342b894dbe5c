//! The controller's settings, typed and checked once. The command line (and its environment
//! variables) is one way to build a [`Config`]; the sandbox, the benchmark and the tests build one
//! directly. The process environment that is not a flag (`POD_NAME`, `DASHSCOPE_API_KEY`) is read
//! in one place, [`Environment::from_process`].

use crate::backoff::BackoffPolicy;
use crate::cli::{LogFormat, PollMode, RunArgs};
use crate::leader;
use crate::regions::{RegionError, Regions};
use modelstudio_core::api::ApiKey;
use std::net::SocketAddr;
use std::time::Duration;

/// The name this controller writes with and reports events as.
pub const MANAGER: &str = "modelstudio-controller";

/// Why the settings cannot be used; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{flag} must be more than 0s")]
    ZeroDuration { flag: &'static str },
    #[error("--qps must be a number above 0")]
    Qps,
    #[error("{flag} must be at least 1")]
    ZeroCount { flag: &'static str },
    #[error("--backoff-base must be more than 0s and at most --backoff-max")]
    Backoff,
    #[error("could not read the API key file {path}: {source}")]
    ApiKeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the API key file {path} is empty")]
    EmptyApiKeyFile { path: String },
    #[error(
        "a default API key is configured ({origin}): say which namespaces may use it, with \
         --default-key-namespace-selector=LABEL_SELECTOR (the namespaces labelled so) or \
         --default-key-all-namespaces (every namespace; in the chart: \
         defaultCredentials.namespaceSelector or defaultCredentials.allNamespaces)"
    )]
    UngrantedDefaultKey { origin: &'static str },
    #[error(
        "--default-key-namespace-selector or --default-key-all-namespaces is set but there is no \
         default API key (--api-key-file or DASHSCOPE_API_KEY) for it to grant"
    )]
    GrantWithoutDefaultKey,
    #[error("--default-key-namespace-selector is empty: give a label selector, such as modelstudio.io/default-key=granted")]
    EmptyNamespaceSelector,
    #[error(transparent)]
    Region(#[from] RegionError),
}

/// What the process environment says beyond the flags.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// The pod's name (the downward API's `POD_NAME`): the replica's identity in events, in the
    /// leader Lease and in the User-Agent.
    pub pod_name: Option<String>,
    /// `DASHSCOPE_API_KEY`: the default key when no `--api-key-file` is given.
    pub default_api_key: Option<ApiKey>,
}

/// `POD_NAME`: see [`Environment::pod_name`].
pub const POD_NAME_ENV: &str = "POD_NAME";
/// `DASHSCOPE_API_KEY`: see [`Environment::default_api_key`].
pub const API_KEY_ENV: &str = "DASHSCOPE_API_KEY";

/// The environment variables that are not a flag's, with their meaning, for the configuration
/// reference.
pub const ENVIRONMENT_ONLY: [(&str, &str); 3] = [
    (
        API_KEY_ENV,
        "The default API key itself, used by ModelImports without `apiKeySecretRef` when no \
         `--api-key-file` is given.",
    ),
    (
        POD_NAME_ENV,
        "This replica's name: its Lease identity, the events' reporting instance and its \
         User-Agent (deploy/ and the Helm chart set it from the pod).",
    ),
    (
        "RUST_LOG",
        "Which logs are written, as a tracing filter (default `info`; e.g. \
         `info,modelstudio_controller=debug`).",
    ),
];

impl Environment {
    /// Reads `POD_NAME` and `DASHSCOPE_API_KEY`; the only place the controller reads the
    /// environment outside its flags.
    pub fn from_process() -> Self {
        Environment {
            pod_name: std::env::var(POD_NAME_ENV)
                .ok()
                .filter(|name| !name.trim().is_empty()),
            default_api_key: std::env::var(API_KEY_ENV).ok().and_then(ApiKey::new),
        }
    }
}

/// Leader election through a Lease.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    pub lease_name: String,
    pub lease_namespace: String,
    pub timing: leader::Timing,
}

/// Everything the controller runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Model Studio base URL (or a simulator's), for keys whose Secret names no region.
    pub endpoint: String,
    /// The base URL of each region a credentials Secret may name.
    pub regions: Regions,
    /// Watch only this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Reconcile only the ModelImports matching this label selector.
    pub selector: Option<String>,
    /// How many ModelImports are reconciled at once.
    pub concurrency: u16,
    /// How often a job in progress (or a blocked deletion) is looked at.
    pub poll_interval: Duration,
    /// How jobs in progress are observed.
    pub poll_mode: PollMode,
    /// How often a finished job is checked again; zero turns it off.
    pub resync_interval: Duration,
    /// Spread of poll and resync delays, as a fraction (0.1: ±10%), so that jobs created together
    /// are not polled in lockstep.
    pub poll_jitter: f64,
    /// Time allowed for one request to Model Studio.
    pub request_timeout: Duration,
    /// How long after a create whose answer was lost a listing without the job is trusted to
    /// mean "not created" (a slow create may not be listed at once).
    pub create_grace: Duration,
    /// Backoff after failures.
    pub backoff: BackoffPolicy,
    /// Steady requests per second to Model Studio, for the whole controller.
    pub qps: f64,
    /// Requests that may go at once above the steady rate.
    pub burst: u32,
    /// The key used when a resource names no Secret, and the namespaces that may use it.
    pub default_key: Option<DefaultKeyConfig>,
    /// Address of /metrics, /healthz and /readyz.
    pub metrics_addr: SocketAddr,
    pub log_format: LogFormat,
    /// `None`: this replica reconciles without a Lease.
    pub leader_election: Option<LeaderElection>,
    /// After the shutdown signal, how long reconciles under way may take to finish.
    pub shutdown_timeout: Duration,
    /// This replica's name (the pod's), when it has one.
    pub instance: Option<String>,
}

/// The controller's default API key and the namespaces that may use it: a default key always
/// says who may spend it.
#[derive(Debug, Clone)]
pub struct DefaultKeyConfig {
    pub key: ApiKey,
    pub namespaces: NamespaceGrant,
}

/// The namespaces that may use the default key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceGrant {
    All,
    /// The Namespaces this label selector matches (the API server evaluates it).
    Selector(String),
}

/// The default key of `run`'s flags (the file wins over `DASHSCOPE_API_KEY`) with its grant,
/// which must be said whenever there is a key.
fn default_key(args: &RunArgs, env: &Environment) -> Result<Option<DefaultKeyConfig>, ConfigError> {
    let (key, origin) = match &args.api_key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ApiKeyFile {
                path: path.display().to_string(),
                source,
            })?;
            let key = ApiKey::new(text).ok_or_else(|| ConfigError::EmptyApiKeyFile {
                path: path.display().to_string(),
            })?;
            (Some(key), "--api-key-file")
        }
        None => (env.default_api_key.clone(), API_KEY_ENV),
    };
    let grant = match (
        &args.default_key_namespace_selector,
        args.default_key_all_namespaces,
    ) {
        (Some(selector), _) if selector.trim().is_empty() => {
            return Err(ConfigError::EmptyNamespaceSelector)
        }
        (Some(selector), _) => Some(NamespaceGrant::Selector(selector.trim().to_string())),
        (None, true) => Some(NamespaceGrant::All),
        (None, false) => None,
    };
    match (key, grant) {
        (Some(key), Some(namespaces)) => Ok(Some(DefaultKeyConfig { key, namespaces })),
        (Some(_), None) => Err(ConfigError::UngrantedDefaultKey { origin }),
        (None, Some(_)) => Err(ConfigError::GrantWithoutDefaultKey),
        (None, None) => Ok(None),
    }
}

impl Config {
    /// The defaults of the command line, against `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Config {
        let request_timeout = Duration::from_secs(30);
        Config {
            endpoint: endpoint.into(),
            regions: Regions::default(),
            namespace: None,
            selector: None,
            concurrency: 8,
            poll_interval: Duration::from_secs(30),
            poll_mode: PollMode::Listing,
            resync_interval: Duration::from_secs(1800),
            poll_jitter: 0.1,
            request_timeout,
            create_grace: create_grace(request_timeout),
            backoff: BackoffPolicy::default(),
            qps: 5.0,
            burst: 10,
            default_key: None,
            metrics_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            log_format: LogFormat::Text,
            leader_election: None,
            shutdown_timeout: Duration::from_secs(20),
            instance: None,
        }
    }

    /// The settings of `modelstudio-controller run`, checked.
    pub fn from_args(args: &RunArgs, env: &Environment) -> Result<Config, ConfigError> {
        let default_key = default_key(args, env)?;
        let config = Config {
            endpoint: args.endpoint.clone(),
            regions: Regions::with_overrides(&args.region_endpoints)?,
            namespace: args.namespace.clone(),
            selector: args.selector.clone().filter(|s| !s.trim().is_empty()),
            concurrency: args.concurrency,
            poll_interval: args.poll_interval,
            poll_mode: args.poll_mode,
            resync_interval: args.resync_interval,
            poll_jitter: 0.1,
            request_timeout: args.request_timeout,
            create_grace: create_grace(args.request_timeout),
            backoff: BackoffPolicy {
                base: args.backoff_base,
                cap: args.backoff_max,
            },
            qps: args.qps,
            burst: args.burst,
            default_key,
            metrics_addr: args.metrics_addr,
            log_format: args.log_format,
            leader_election: args.leader_election.then(|| LeaderElection {
                lease_name: args.lease_name.clone(),
                lease_namespace: args
                    .lease_namespace
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                timing: leader::Timing::default(),
            }),
            shutdown_timeout: args.shutdown_timeout,
            instance: env.pod_name.clone(),
        };
        config.check()?;
        Ok(config)
    }

    /// Refuses settings the controller cannot run with.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.request_timeout.is_zero() {
            return Err(ConfigError::ZeroDuration {
                flag: "--request-timeout",
            });
        }
        if self.poll_interval.is_zero() {
            return Err(ConfigError::ZeroDuration {
                flag: "--poll-interval",
            });
        }
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Err(ConfigError::Qps);
        }
        if self.burst == 0 {
            return Err(ConfigError::ZeroCount { flag: "--burst" });
        }
        if self.concurrency == 0 {
            return Err(ConfigError::ZeroCount {
                flag: "--concurrency",
            });
        }
        if self.backoff.base.is_zero() || self.backoff.cap < self.backoff.base {
            return Err(ConfigError::Backoff);
        }
        Ok(())
    }

    /// The User-Agent sent to Model Studio: the replica's name tells its logs (and the
    /// simulator) who called.
    pub fn user_agent(&self) -> String {
        match &self.instance {
            Some(pod) => format!("{MANAGER}/{} ({pod})", env!("CARGO_PKG_VERSION")),
            None => format!("{MANAGER}/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A create slower than two request timeouts is assumed not to exist any more.
fn create_grace(request_timeout: Duration) -> Duration {
    request_timeout.saturating_mul(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn run_args(extra: &[&str]) -> RunArgs {
        let mut argv = vec!["modelstudio-controller", "run"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Run(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn config(extra: &[&str]) -> Result<Config, ConfigError> {
        Config::from_args(&run_args(extra), &Environment::default())
    }

    #[test]
    fn durations_parse_and_bad_values_are_refused() {
        let c = config(&["--poll-interval", "10s", "--resync-interval", "2m"]).unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(10));
        assert_eq!(c.resync_interval, Duration::from_secs(120));
        let e = Cli::try_parse_from(["x", "run", "--poll-interval", "ten"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("10s"), "{e}");
        let e = config(&["--poll-interval", "0s"]).unwrap_err().to_string();
        assert_eq!(e, "--poll-interval must be more than 0s");
        let e = config(&["--concurrency", "0"]).unwrap_err().to_string();
        assert_eq!(e, "--concurrency must be at least 1");
        assert!(matches!(
            config(&["--backoff-base", "10m", "--backoff-max", "1m"]),
            Err(ConfigError::Backoff)
        ));
        assert!(matches!(config(&["--qps", "0"]), Err(ConfigError::Qps)));
    }

    #[test]
    fn the_command_line_defaults_are_the_typed_defaults() {
        let from_args = config(&[]).unwrap();
        let typed = Config::new("https://dashscope-intl.aliyuncs.com");
        assert_eq!(format!("{from_args:?}"), format!("{typed:?}"));
        typed.check().unwrap();
    }

    #[test]
    fn the_environment_gives_the_instance_and_the_default_key() {
        let env = Environment {
            pod_name: Some("controller-0".into()),
            default_api_key: ApiKey::new("sk-from-env"),
        };
        let c = Config::from_args(
            &run_args(&["--leader-election", "--default-key-all-namespaces"]),
            &env,
        )
        .unwrap();
        let default = c.default_key.as_ref().unwrap();
        assert_eq!(default.key.expose(), "sk-from-env");
        assert_eq!(default.namespaces, NamespaceGrant::All);
        assert!(
            c.user_agent().ends_with("(controller-0)"),
            "{}",
            c.user_agent()
        );
        let lease = c.leader_election.unwrap();
        assert_eq!(lease.lease_namespace, "default");
        assert_eq!(lease.lease_name, "modelstudio-controller");
    }

    #[test]
    fn a_default_key_needs_its_namespaces_said_and_a_grant_needs_a_key() {
        let env = Environment {
            pod_name: None,
            default_api_key: ApiKey::new("sk-from-env"),
        };
        // A key without a grant: refused, saying what to set, never naming the key.
        let e = Config::from_args(&run_args(&[]), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--default-key-namespace-selector"), "{e}");
        assert!(e.contains("--default-key-all-namespaces"), "{e}");
        assert!(e.contains("DASHSCOPE_API_KEY"), "{e}");
        assert!(!e.contains("sk-from-env"), "{e}");
        // A grant without a key.
        let e = config(&["--default-key-all-namespaces"]).unwrap_err();
        assert!(matches!(e, ConfigError::GrantWithoutDefaultKey), "{e}");
        // An empty selector.
        let e = Config::from_args(&run_args(&["--default-key-namespace-selector", " "]), &env)
            .unwrap_err();
        assert!(matches!(e, ConfigError::EmptyNamespaceSelector), "{e}");
        // Both ways at once.
        let e = Cli::try_parse_from([
            "x",
            "run",
            "--default-key-all-namespaces",
            "--default-key-namespace-selector",
            "a=b",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("cannot be used with"), "{e}");
        // No key and no grant: nothing to say.
        assert!(config(&[]).unwrap().default_key.is_none());
    }

    #[test]
    fn api_key_file_is_read_and_trimmed_and_wins_over_the_environment() {
        let dir = std::env::temp_dir().join(format!("msc-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "sk-from-file\n").unwrap();
        let env = Environment {
            pod_name: None,
            default_api_key: ApiKey::new("sk-from-env"),
        };
        let a = run_args(&[
            "--api-key-file",
            path.to_str().unwrap(),
            "--default-key-namespace-selector",
            "team=ml",
        ]);
        let default = Config::from_args(&a, &env).unwrap().default_key.unwrap();
        assert_eq!(default.key.expose(), "sk-from-file");
        assert_eq!(
            default.namespaces,
            NamespaceGrant::Selector("team=ml".into())
        );
        std::fs::write(&path, "\n").unwrap();
        let e = Config::from_args(&a, &env).unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let a = run_args(&[
            "--api-key-file",
            dir.join("missing").to_str().unwrap(),
            "--default-key-all-namespaces",
        ]);
        let e = Config::from_args(&a, &env).unwrap_err().to_string();
        assert!(e.contains("could not read"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

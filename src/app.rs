//! The controller process: telemetry, the metrics and health endpoint, and the kube-runtime
//! Controller wired to the reconciler.

use crate::backoff::BackoffPolicy;
use crate::cli::{LogFormat, RunArgs};
use crate::controller::{error_policy, reconcile, Context, Settings, MANAGER};
use crate::crd::ModelImport;
use crate::leader::{self, Elector};
use crate::metrics::Metrics;
use crate::modelstudio::{ApiKey, HttpClient, HttpClientConfig};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use kube::runtime::controller::{self, Controller};
use kube::runtime::watcher;
use kube::{Api, Client};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::{error, info, warn};

/// Why the controller could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("could not read the API key file {path}: {source}")]
    ApiKeyFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to Kubernetes (check the kubeconfig or in-cluster config): {0}")]
    Kube(#[source] kube::Error),
    #[error("lost the leader lease: stopping so that only the new leader acts")]
    LostLeadership,
    #[error("could not serve metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Installs the log subscriber. RUST_LOG filters (default `info`).
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    // Colours only on a terminal: a log collector wants plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The default API key: the file named by --api-key-file, else DASHSCOPE_API_KEY.
fn default_api_key(args: &RunArgs) -> Result<Option<ApiKey>, StartError> {
    if let Some(path) = &args.api_key_file {
        let text = std::fs::read_to_string(path).map_err(|source| StartError::ApiKeyFile {
            path: path.display().to_string(),
            source,
        })?;
        return ApiKey::new(text).map(Some).ok_or_else(|| {
            StartError::Config(format!("the API key file {} is empty", path.display()))
        });
    }
    Ok(std::env::var("DASHSCOPE_API_KEY")
        .ok()
        .and_then(ApiKey::new))
}

/// Checks the flags that clap cannot.
fn settings(args: &RunArgs) -> Result<Settings, StartError> {
    if args.request_timeout.is_zero() {
        return Err(StartError::Config(
            "--request-timeout must be more than 0s".into(),
        ));
    }
    if args.poll_interval.is_zero() {
        return Err(StartError::Config(
            "--poll-interval must be more than 0s".into(),
        ));
    }
    if !(args.qps.is_finite() && args.qps > 0.0) {
        return Err(StartError::Config("--qps must be a number above 0".into()));
    }
    if args.burst == 0 {
        return Err(StartError::Config("--burst must be at least 1".into()));
    }
    if args.concurrency == 0 {
        return Err(StartError::Config(
            "--concurrency must be at least 1".into(),
        ));
    }
    if args.backoff_base.is_zero() || args.backoff_max < args.backoff_base {
        return Err(StartError::Config(
            "--backoff-base must be more than 0s and at most --backoff-max".into(),
        ));
    }
    Ok(Settings {
        poll_interval: args.poll_interval,
        resync_interval: args.resync_interval,
        backoff: BackoffPolicy {
            base: args.backoff_base,
            cap: args.backoff_max,
        },
        default_api_key: default_api_key(args)?,
        // A create slower than two request timeouts is assumed not to exist any more.
        create_grace: args.request_timeout.saturating_mul(2),
        poll_jitter: 0.1,
        qps: args.qps,
        burst: args.burst,
    })
}

/// The /metrics, /healthz and /readyz endpoints.
pub fn health_router(metrics: Arc<Metrics>, ready: Arc<AtomicBool>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    if ready {
                        (StatusCode::OK, "ready").into_response()
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "waiting for the first list of ModelImports",
                        )
                            .into_response()
                    }
                }
            }),
        )
}

/// Runs the controller with the kubeconfig or in-cluster config until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), StartError> {
    let client = Client::try_default().await.map_err(StartError::Kube)?;
    run_with_client(client, args, shutdown_signal()).await
}

/// Runs the controller with `client` until `shutdown` resolves. `modelstudio-sandbox` calls this
/// with the embedded API server's client.
pub async fn run_with_client(
    client: Client,
    args: RunArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartError> {
    let settings = settings(&args)?;
    let jobs = HttpClient::new(HttpClientConfig {
        endpoint: args.endpoint.clone(),
        timeout: args.request_timeout,
        // The replica's name tells Model Studio's logs (and the simulator) who called.
        user_agent: match std::env::var("POD_NAME") {
            Ok(pod) if !pod.is_empty() => {
                format!("{MANAGER}/{} ({pod})", env!("CARGO_PKG_VERSION"))
            }
            _ => format!("{MANAGER}/{}", env!("CARGO_PKG_VERSION")),
        },
    })
    .map_err(StartError::Config)?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));

    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|source| StartError::Metrics {
            addr: args.metrics_addr,
            source,
        })?;
    info!(addr = %listener.local_addr().map_err(|source| StartError::Metrics { addr: args.metrics_addr, source })?, "serving /metrics, /healthz and /readyz");
    let router = health_router(metrics.clone(), ready.clone());
    let metrics_server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            error!(error = %e, "metrics server stopped");
        }
    });

    let api: Api<ModelImport> = match &args.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let ctx = Arc::new(Context::new(client, Arc::new(jobs), metrics, settings));
    info!(
        endpoint = %args.endpoint,
        namespace = args.namespace.as_deref().unwrap_or("(all)"),
        poll_interval = ?args.poll_interval,
        "starting controller"
    );
    // One shutdown signal, awaited in several places.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let mut elector = args.leader_election.then(|| {
        let namespace = args
            .lease_namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let identity = std::env::var("POD_NAME")
            .ok()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or_else(|| format!("{MANAGER}-{}", uuid::Uuid::new_v4().simple()));
        Elector::new(
            ctx.client.clone(),
            &namespace,
            &args.lease_name,
            &identity,
            leader::Timing::default(),
        )
    });
    if let Some(elector) = elector.as_mut() {
        // A healthy standby is ready: a rollout of two replicas must not wait for the lease.
        ready.store(true, Ordering::Relaxed);
        info!(identity = elector.identity(), lease = %args.lease_name, "waiting to become the leader");
        tokio::select! {
            _ = elector.acquire() => {}
            _ = stopped() => return Ok(()),
        }
    }

    let controller = Controller::new(api, watcher::Config::default().any_semantic())
        .with_config(controller::Config::default().concurrency(args.concurrency));
    let store = controller.store();
    tokio::spawn(async move {
        if store.wait_until_ready().await.is_ok() {
            ready.store(true, Ordering::Relaxed);
        }
    });
    let running = controller
        .graceful_shutdown_on(stopped())
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                match e {
                    controller::Error::ObjectNotFound(_) => {}
                    e => warn!(error = %e, "controller event"),
                }
            }
        });
    // After the signal, in-flight reconciles get `shutdown_timeout` to finish.
    let deadline = async {
        stopped().await;
        tokio::time::sleep(args.shutdown_timeout).await;
    };
    let lost_leadership = async {
        match elector.as_mut() {
            Some(elector) => elector.hold().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        _ = running => Ok(()),
        _ = deadline => {
            warn!(timeout = ?args.shutdown_timeout, "reconciles still running at the shutdown deadline; stopping them");
            Ok(())
        }
        _ = lost_leadership => Err(StartError::LostLeadership),
    };
    if outcome.is_ok() {
        if let Some(elector) = &elector {
            elector.release().await;
        }
    }
    metrics_server.abort();
    info!("controller stopped");
    outcome
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
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

    #[test]
    fn durations_parse_and_bad_values_are_refused() {
        let a = run_args(&["--poll-interval", "10s", "--resync-interval", "2m"]);
        assert_eq!(a.poll_interval, std::time::Duration::from_secs(10));
        assert_eq!(a.resync_interval, std::time::Duration::from_secs(120));
        let e = Cli::try_parse_from(["x", "run", "--poll-interval", "ten"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("10s"), "{e}");
        assert!(settings(&run_args(&["--poll-interval", "0s"])).is_err());
        assert!(settings(&run_args(&["--concurrency", "0"])).is_err());
        assert!(settings(&run_args(&["--backoff-base", "10m", "--backoff-max", "1m"])).is_err());
    }

    #[tokio::test]
    async fn health_endpoints_and_metrics() {
        let metrics = Arc::new(Metrics::default());
        metrics.status_writes.inc();
        let ready = Arc::new(AtomicBool::new(false));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = health_router(metrics, ready.clone());
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let get = |path: &'static str| async move {
            let r = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        };
        assert_eq!(get("/healthz").await.0, 200);
        assert_eq!(get("/readyz").await.0, 503);
        ready.store(true, Ordering::Relaxed);
        assert_eq!(get("/readyz").await.0, 200);
        let (status, body) = get("/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("modelstudio_status_writes_total 1"), "{body}");
        assert!(body.contains("# EOF"));
        server.abort();
    }

    #[test]
    fn api_key_file_is_read_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("msc-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "sk-from-file\n").unwrap();
        let a = run_args(&["--api-key-file", path.to_str().unwrap()]);
        assert_eq!(
            settings(&a).unwrap().default_api_key.unwrap().expose(),
            "sk-from-file"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(settings(&a).unwrap_err().to_string().contains("empty"));
        let a = run_args(&["--api-key-file", dir.join("missing").to_str().unwrap()]);
        assert!(settings(&a)
            .unwrap_err()
            .to_string()
            .contains("could not read"));
    }
}

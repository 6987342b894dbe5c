//! The controller process: telemetry, the metrics and health endpoint, and the kube-runtime
//! Controllers of both kinds, each wired in its own step.

use crate::cli::LogFormat;
use crate::config::{Config, ConfigError, NamespaceGrant, MANAGER};
use crate::crd::ModelDeployment;
use crate::crd::ModelImport;
use crate::deployment::{self, DeploymentContext};
use crate::import::{self, ImportContext};
use crate::keeper::{Caches, CredentialsKeeper};
use crate::kube_requests::counting_layer;
use crate::leader::Elector;
use crate::metrics::Metrics;
use crate::modelstudio::{layered, HttpClient, HttpClientConfig};
use crate::pass::{report_unreadable, Context};
use crate::watches::{labelled_watch_config, trim_cached, trim_metadata, typed_event};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{ApiResource, DynamicObject, ListParams};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{self, Controller};
use kube::runtime::reflector::store::Writer;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::{Api, Client};
use modelstudio_core::credentials::CREDENTIALS_LABEL;
use modelstudio_core::deployment::deployments::Deployments;
use modelstudio_core::outputs::OUTPUTS_LABEL;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::{error, info, warn};

/// The longest the controller waits at exit for its last events to be sent.
const EVENT_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the controller could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("invalid endpoint: {0}")]
    Endpoint(String),
    #[error("could not connect to Kubernetes (check the kubeconfig or in-cluster config): {0}")]
    Kube(#[source] kube::Error),
    #[error("the ModelImport CustomResourceDefinition (modelimports.modelstudio.io) is not installed in this cluster: install the CRDs first with `kubectl apply -f crds/` (or `modelstudio-controller crd | kubectl apply -f -` and `modelstudio-controller crd modeldeployment | kubectl apply -f -`)")]
    CrdNotInstalled,
    #[error("could not list ModelImports{scope} (check the controller's RBAC): {source}")]
    ListModelImports {
        scope: String,
        #[source]
        source: kube::Error,
    },
    #[error("--selector is not a label selector the API server accepts: {0}")]
    Selector(String),
    #[error(
        "--default-key-namespace-selector is not a label selector the API server accepts: {0}"
    )]
    NamespaceSelector(String),
    #[error("could not list the Namespaces granted the default API key (the controller needs list and watch on namespaces): {0}")]
    ListNamespaces(#[source] kube::Error),
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

/// Fails fast, and plainly, when the default key's namespace selector is not one the API server
/// accepts, or the Namespaces cannot be listed.
async fn check_namespace_grant(client: &Client, config: &Config) -> Result<(), StartError> {
    let Some(selector) = granted_selector(config) else {
        return Ok(());
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    match namespaces
        .list_metadata(&ListParams::default().labels(selector).limit(1))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 400 => {
            Err(StartError::NamespaceSelector(status.message))
        }
        Err(e) => Err(StartError::ListNamespaces(e)),
    }
}

/// The label selector of the Namespaces granted the default key, when a selector grants it.
fn granted_selector(config: &Config) -> Option<&str> {
    match config.default_key.as_ref().map(|d| &d.namespaces) {
        Some(NamespaceGrant::Selector(selector)) => Some(selector),
        _ => None,
    }
}

/// Fails fast, and plainly, when the CRD is not installed or the ModelImports cannot be listed:
/// a watcher would otherwise retry the same 404 forever.
async fn check_crd(
    api: &Api<ModelImport>,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<(), StartError> {
    let mut params = ListParams::default().limit(1);
    if let Some(selector) = selector {
        params = params.labels(selector);
    }
    match api.list_metadata(&params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(StartError::CrdNotInstalled),
        Err(kube::Error::Api(status)) if status.code == 400 && selector.is_some() => {
            Err(StartError::Selector(status.message))
        }
        Err(source) => Err(StartError::ListModelImports {
            scope: namespace
                .map(|ns| format!(" in namespace {ns}"))
                .unwrap_or_default(),
            source,
        }),
    }
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
pub async fn run(config: Config) -> Result<(), StartError> {
    let metrics = Arc::new(Metrics::default());
    let kube_config = kube::Config::infer()
        .await
        .map_err(|e| StartError::Kube(kube::Error::InferConfig(e)))?;
    let client = kube::client::ClientBuilder::try_from(kube_config)
        .map_err(StartError::Kube)?
        .with_layer(&counting_layer(metrics.clone()))
        .build();
    run_with(client, config, metrics, shutdown_signal()).await
}

/// Runs the controller with `client` until `shutdown` resolves. `modelstudio-sandbox` calls this
/// with the embedded API server's client.
pub async fn run_with_client(
    client: Client,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartError> {
    run_with(client, config, Arc::new(Metrics::default()), shutdown).await
}

async fn run_with(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> Result<(), StartError> {
    config.check()?;
    let http = HttpClient::new(HttpClientConfig {
        endpoint: config.endpoint.clone(),
        timeout: config.request_timeout,
        user_agent: config.user_agent(),
    })
    .map_err(StartError::Endpoint)?;
    let ready = Arc::new(AtomicBool::new(false));
    let namespace = config.namespace.clone();
    check_crd(
        &scoped(&client, namespace.as_deref()),
        namespace.as_deref(),
        config.selector.as_deref(),
    )
    .await?;
    check_namespace_grant(&client, &config).await?;
    let metrics_server = serve_metrics(config.metrics_addr, metrics.clone(), ready.clone()).await?;

    // One quota for both APIs: the import jobs and the deployments go through the same layers.
    let api = layered(http, &config, metrics.clone());
    info!(
        endpoint = %config.endpoint,
        namespace = namespace.as_deref().unwrap_or("(all)"),
        poll_interval = ?config.poll_interval,
        "starting controller"
    );
    let shutdown_timeout = config.shutdown_timeout;
    let lease = config.leader_election.clone();
    let instance = config.instance.clone();
    let ctx = Arc::new(Context::new(client, metrics, config));
    let import_ctx = Arc::new(ImportContext::new(ctx.clone(), api.clone()));
    let stop = Stop::on(shutdown);

    let mut elector = lease.map(|lease| {
        let identity =
            instance.unwrap_or_else(|| format!("{MANAGER}-{}", uuid::Uuid::new_v4().simple()));
        Elector::new(
            ctx.client.clone(),
            &lease.lease_namespace,
            &lease.lease_name,
            &identity,
            lease.timing,
        )
    });
    if let Some(elector) = elector.as_mut() {
        // A healthy standby is ready: a rollout of two replicas must not wait for the lease.
        ready.store(true, Ordering::Relaxed);
        info!(
            identity = elector.identity(),
            "waiting to become the leader"
        );
        tokio::select! {
            _ = elector.acquire() => {}
            _ = stop.stopped() => return Ok(()),
        }
    }
    // From here on this replica reconciles: it won the Lease, or runs alone.
    ctx.metrics.set_leader(true);

    let (imports_running, imports) = import_controller(import_ctx.clone(), stop.stopped());
    let deployments_running = deployment_controller(
        &import_ctx,
        api,
        imports.clone(),
        namespace.as_deref(),
        stop.stopped(),
    )
    .await;
    let imports_ready = imports.clone();
    tokio::spawn(async move {
        if imports_ready.wait_until_ready().await.is_ok() {
            ready.store(true, Ordering::Relaxed);
        }
    });
    watch_secrets(&ctx, namespace.as_deref(), stop.stopped());
    watch_outputs(&ctx, namespace.as_deref(), stop.stopped());
    watch_granted_namespaces(&ctx, stop.stopped());
    // After the deployment controller's start: the keeper reads the deployments' cache if it is
    // filled.
    start_keeper(&import_ctx, imports, namespace, stop.stopped());
    let running = futures::future::join(imports_running, deployments_running);
    let outcome =
        run_until_stopped(running, stop.stopped(), shutdown_timeout, elector.as_mut()).await;
    ctx.metrics.set_leader(false);
    // The last reconciles' events go out before the process ends.
    if tokio::time::timeout(EVENT_FLUSH_TIMEOUT, ctx.events.flush())
        .await
        .is_err()
    {
        warn!(timeout = ?EVENT_FLUSH_TIMEOUT, "events still unsent at exit");
    }
    if outcome.is_ok() {
        if let Some(elector) = &elector {
            elector.release().await;
        }
    }
    metrics_server.abort();
    info!("controller stopped");
    outcome
}

/// `Api` of `K` in `namespace`, or in every namespace.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The objects of `K` watched untyped, so that one object that does not read as a `K` is
/// reported and skipped instead of failing the list of all of them.
fn scoped_untyped<K: kube::Resource<DynamicType = ()>>(
    client: &Client,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<K>(&());
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// The watch configuration of a kind's objects: `selector`, if given, picks them.
fn watch_config(selector: Option<&str>) -> watcher::Config {
    let config = watcher::Config::default().any_semantic();
    match selector {
        Some(selector) => config.labels(selector),
        None => config,
    }
}

/// Binds the /metrics, /healthz and /readyz endpoints and serves them in the background.
async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
) -> Result<tokio::task::JoinHandle<()>, StartError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Metrics { addr, source })?;
    info!(addr = %listener.local_addr().map_err(|source| StartError::Metrics { addr, source })?, "serving /metrics, /healthz and /readyz");
    let router = health_router(metrics, ready);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            error!(error = %e, "metrics server stopped");
        }
    }))
}

/// One shutdown signal, awaited in several places.
#[derive(Clone)]
struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    /// A signal that `stopped()` resolves on once `shutdown` has.
    fn on(shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        Stop(stop_rx)
    }

    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// The ModelImport controller: the ModelImports watched untyped and cached typed and trimmed (one
/// that does not parse is reported and left out), woken by the job listings that show a change.
/// The watch event of the controller's own status write wakes no reconcile (the pass that wrote it
/// scheduled the next look). Returns the controller, to run, and the ModelImports' cache.
fn import_controller(
    ctx: Arc<ImportContext>,
    stopped: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> (
    futures::future::BoxFuture<'static, ()>,
    reflector::Store<ModelImport>,
) {
    use futures::FutureExt;
    let pass = ctx.pass.clone();
    let config = &pass.config;
    let watched = scoped_untyped::<ModelImport>(&pass.client, config.namespace.as_deref());
    let (unreadable_tx, unreadable) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(report_unreadable::<ModelImport>(unreadable, pass.clone()));
    let writer: Writer<ModelImport> = Writer::default();
    let store = writer.as_reader();
    pass.metrics.imports.watch(store.clone());
    let own = pass.clone();
    let typed = watcher(watched, watch_config(config.selector.as_deref()))
        .modify(trim_cached)
        .filter_map(move |event| {
            std::future::ready(event.map(|e| typed_event(e, &unreadable_tx)).transpose())
        });
    let imports = reflector(writer, typed)
        .applied_objects()
        .try_filter(move |obj| std::future::ready(!own.is_own_write(&obj.metadata)));
    // A listing that shows a job changed wakes the resources that follow it.
    let changes = ctx.job_cache.take_changes().map(|inbox| {
        futures::stream::unfold(inbox, |mut inbox| async move {
            inbox.recv().await.map(|resource| (resource, inbox))
        })
    });
    let mut controller = Controller::for_stream(imports, store.clone())
        .with_config(controller::Config::default().concurrency(config.concurrency));
    if let Some(changes) = changes {
        controller = controller.reconcile_on(changes);
    }
    // An edit of a key's Secret, or of an outputs ConfigMap, wakes the resources concerned.
    controller = controller.reconcile_on(pass.wakes.of_kind(store.clone(), |i: &ModelImport| {
        i.spec.api_key_secret_ref.as_ref()
    }));
    let running = controller
        .graceful_shutdown_on(stopped)
        .run(import::reconcile, import::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                match e {
                    controller::Error::ObjectNotFound(_) => {}
                    e => warn!(error = %e, "controller event"),
                }
            }
        })
        .boxed();
    (running, store)
}

/// The Secrets the keys come from, watched instead of read at each reconcile.
fn watch_secrets(
    ctx: &Context,
    namespace: Option<&str>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let Some(writer) = ctx.take_secrets_writer() else {
        return;
    };
    ctx.metrics.secrets.watch(ctx.secrets.clone());
    let secrets: Api<Secret> = scoped(&ctx.client, namespace);
    let watch = reflector(
        writer,
        watcher(secrets, labelled_watch_config(CREDENTIALS_LABEL)).modify(trim_metadata),
    )
    .inspect_ok(ctx.wakes.on_secret_events());
    fill_cache(watch, "the credentials Secrets", stopped);
}

/// The outputs ConfigMaps the controller wrote (by their label, never another ConfigMap of the
/// cluster), watched so that a pass finds them in the cache, and so that one edited or deleted by
/// someone else wakes its resource, which writes it again.
fn watch_outputs(
    ctx: &Arc<Context>,
    namespace: Option<&str>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let Some(writer) = ctx.take_outputs_writer() else {
        return;
    };
    ctx.metrics.outputs.watch(ctx.outputs.clone());
    let config_maps: Api<ConfigMap> = scoped(&ctx.client, namespace);
    let own = ctx.clone();
    let watch = reflector(
        writer,
        watcher(config_maps, labelled_watch_config(OUTPUTS_LABEL)).modify(trim_metadata),
    )
    .inspect_ok(move |event| match event {
        watcher::Event::Apply(cm) if !own.is_own_write(&cm.metadata) => own.wakes.owner_of(cm),
        watcher::Event::Delete(cm) => own.wakes.owner_of(cm),
        _ => {}
    });
    fill_cache(watch, "the outputs ConfigMaps", stopped);
}

/// Runs the watch that fills a cache (with backoff, its errors logged as the watch of `what`)
/// until `stopped`.
fn fill_cache<K: Send + 'static>(
    watch: impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
    what: &'static str,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let watch = watch.default_backoff().for_each(move |event| async move {
        if let Err(e) = event {
            warn!(error = %e, "watch of {what}");
        }
    });
    tokio::spawn(async move {
        tokio::select! {
            _ = watch => {}
            _ = stopped => {}
        }
    });
}

/// The Namespaces the default key's selector grants it to (metadata only), watched so that no
/// pass asks the API server.
fn watch_granted_namespaces(
    ctx: &Context,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let Some(selector) = granted_selector(&ctx.config) else {
        return;
    };
    let Some(writer) = ctx.take_granted_writer() else {
        return;
    };
    // Metadata only: the Namespaces' labels are all a grant reads.
    let namespaces: Api<PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
    let config = watcher::Config::default().any_semantic().labels(selector);
    let watch = reflector(writer, watcher(namespaces, config));
    fill_cache(watch, "the Namespaces granted the default API key", stopped);
}

/// The keeper of the credentials Secrets. Only the leader keeps them, as it alone reconciles.
fn start_keeper(
    ctx: &ImportContext,
    imports: reflector::Store<ModelImport>,
    namespace: Option<String>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let pass = &ctx.pass;
    let Some(inbox) = pass.take_keeper_inbox() else {
        return;
    };
    let caches = Caches {
        imports,
        deployments: ctx
            .deployments_watched()
            .then(|| ctx.model_deployments.clone()),
        secrets: pass.secrets.clone(),
    };
    let sweep_interval = pass.config.poll_interval;
    let keeper = CredentialsKeeper::new(pass.client.clone(), namespace, sweep_interval, inbox)
        .with_caches(caches);
    tokio::spawn(keeper.run(stopped));
}

/// Runs the controllers until they end, the shutdown deadline passes (in-flight reconciles get
/// `shutdown_timeout` after the signal to finish) or the lease is lost.
async fn run_until_stopped(
    running: impl std::future::Future<Output = ((), ())>,
    stopped: impl std::future::Future<Output = ()>,
    shutdown_timeout: std::time::Duration,
    elector: Option<&mut Elector>,
) -> Result<(), StartError> {
    let deadline = async {
        stopped.await;
        tokio::time::sleep(shutdown_timeout).await;
    };
    let lost_leadership = async {
        match elector {
            Some(elector) => elector.hold().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = running => Ok(()),
        _ = deadline => {
            warn!(timeout = ?shutdown_timeout, "reconciles still running at the shutdown deadline; stopping them");
            Ok(())
        }
        _ = lost_leadership => Err(StartError::LostLeadership),
    }
}

/// The ModelDeployment controller, when its CRD is installed: it runs beside the import
/// controller, on the same shared context (client, quota, Secrets cache, events), and fills the
/// deployments' cache that import deletions consult. Without the CRD (an install that predates
/// it), imports are reconciled alone.
async fn deployment_controller(
    import_ctx: &ImportContext,
    deployments: Arc<dyn Deployments>,
    imports: reflector::Store<ModelImport>,
    namespace: Option<&str>,
    stopped: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> futures::future::BoxFuture<'static, ()> {
    use futures::FutureExt;
    use kube::runtime::reflector::ObjectRef;
    let ctx = import_ctx.pass.clone();
    let client = ctx.client.clone();
    let api: Api<ModelDeployment> = scoped(&client, namespace);
    match api.list_metadata(&ListParams::default().limit(1)).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {
            warn!("the ModelDeployment CustomResourceDefinition (modeldeployments.modelstudio.io) is not installed: ModelDeployments are not reconciled; install crds/modeldeployment.yaml to deploy models");
            return futures::future::ready(()).boxed();
        }
        Err(e) => {
            warn!(error = %e, "cannot list ModelDeployments (check the controller's RBAC): ModelDeployments are not reconciled");
            return futures::future::ready(()).boxed();
        }
    }
    let Some(writer) = import_ctx.take_deployments_writer() else {
        return futures::future::ready(()).boxed();
    };
    let store = writer.as_reader();
    ctx.metrics.deployments.watch(store.clone());
    // Watched untyped, as the imports are.
    let watched = scoped_untyped::<ModelDeployment>(&client, namespace);
    let (unreadable_tx, unreadable) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(report_unreadable::<ModelDeployment>(
        unreadable,
        ctx.clone(),
    ));
    let typed = watcher(watched, watch_config(ctx.config.selector.as_deref()))
        .modify(trim_cached)
        .filter_map(move |event| {
            std::future::ready(event.map(|e| typed_event(e, &unreadable_tx)).transpose())
        });
    // The watch event of the controller's own status write wakes no reconcile when the pass that
    // wrote it scheduled the next look, as for imports.
    let own = ctx.clone();
    let objects = reflector(writer, typed)
        .applied_objects()
        .try_filter(move |obj| std::future::ready(!own.is_own_write(&obj.metadata)));
    // A change of a ModelImport wakes the deployments that name it.
    let import_api: Api<kube::core::PartialObjectMeta<ModelImport>> = scoped(&client, namespace);
    let waiting = store.clone();
    let import_changes =
        watcher(import_api, watcher::Config::default().any_semantic()).touched_objects();
    let mapper = move |import: kube::core::PartialObjectMeta<ModelImport>| {
        let namespace = import.metadata.namespace.clone();
        let name = import.metadata.name.clone();
        waiting
            .state()
            .into_iter()
            .filter(|d| {
                d.metadata.namespace == namespace
                    && d.spec.model_import_ref.as_ref().map(|r| Some(&r.name))
                        == Some(name.as_ref())
            })
            .map(|d| ObjectRef::from_obj(&*d))
            .collect::<Vec<_>>()
    };
    let concurrency = ctx.config.concurrency;
    let wakes = ctx.wakes.of_kind(store.clone(), |d: &ModelDeployment| {
        d.spec.api_key_secret_ref.as_ref()
    });
    let dctx = Arc::new(DeploymentContext {
        pass: ctx,
        deployments,
        imports,
    });
    info!("reconciling ModelDeployments");
    Controller::for_stream(objects, store)
        .with_config(controller::Config::default().concurrency(concurrency))
        .watches_stream(import_changes, mapper)
        .reconcile_on(wakes)
        .graceful_shutdown_on(stopped)
        .run(deployment::reconcile, deployment::error_policy, dctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                match e {
                    controller::Error::ObjectNotFound(_) => {}
                    e => warn!(error = %e, "deployment controller event"),
                }
            }
        })
        .boxed()
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
}

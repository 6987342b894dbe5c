#![forbid(unsafe_code)]
//! An in-memory Kubernetes API server for local demos and end-to-end tests.
//!
//! [`ApiServer`] is the state (cheap to clone); [`RunningApiServer`] serves it over plain
//! HTTP on 127.0.0.1 and has the knobs robustness tests need (cut watches, compact
//! history, restart the listener on the same port).

pub mod crd;
pub mod discovery;
pub mod events;
pub mod http;
pub mod openapi;
pub mod openapi_proto;
pub mod ops;
pub mod patch;
pub mod protobuf;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;
pub mod validation;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// Cheap-clone handle on the in-memory API state.
#[derive(Clone)]
pub struct ApiServer {
    state: Arc<Mutex<ops::State>>,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiServer {
    pub fn new() -> Self {
        Self::with_history_limit(store::DEFAULT_HISTORY_LIMIT)
    }

    /// A server that keeps at most `limit` events of history (older resourceVersions answer 410).
    pub fn with_history_limit(limit: usize) -> Self {
        ApiServer {
            state: Arc::new(Mutex::new(ops::State::new(limit))),
        }
    }

    pub fn router(&self) -> axum::Router {
        http::router(self.clone())
    }

    /// Lock the state; a panic elsewhere never wedges the server (the poison is ignored).
    pub(crate) fn lock(&self) -> MutexGuard<'_, ops::State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Close every open watch stream.
    pub fn drop_watches(&self) {
        self.lock().store.drop_watches();
    }

    /// Number of open watch streams.
    pub fn watch_count(&self) -> usize {
        self.lock().store.watch_count()
    }

    /// Forget event history: any older resourceVersion now answers 410.
    pub fn compact(&self) {
        self.lock().store.compact();
    }

    pub fn current_resource_version(&self) -> u64 {
        self.lock().store.current_rv()
    }

    /// A stored object as JSON (namespace "" for cluster-scoped), for assertions in tests.
    pub fn get_object(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        self.lock()
            .store
            .get(&store::gr(group, resource), namespace, name)
            .cloned()
    }
}

struct Listener {
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// An [`ApiServer`] listening on a TCP address.
pub struct RunningApiServer {
    pub addr: SocketAddr,
    pub server: ApiServer,
    listener: Option<Listener>,
}

async fn listen(server: &ApiServer, addr: SocketAddr) -> std::io::Result<(SocketAddr, Listener)> {
    let tcp = tokio::net::TcpListener::bind(addr).await?;
    let local = tcp.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = server.router();
    let task = tokio::spawn(async move {
        let served = axum::serve(tcp, app).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = served.await {
            tracing::warn!("sandbox apiserver stopped: {e}");
        }
    });
    Ok((local, Listener { shutdown: tx, task }))
}

impl RunningApiServer {
    /// Serve a fresh state on `addr` (port 0 picks a free port).
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        Self::serve(ApiServer::new(), addr).await
    }

    /// Serve an existing state on `addr`.
    pub async fn serve(server: ApiServer, addr: SocketAddr) -> std::io::Result<Self> {
        let (addr, l) = listen(&server, addr).await?;
        Ok(RunningApiServer {
            addr,
            server,
            listener: Some(l),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn kubeconfig_yaml(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster:\n    server: {}\nusers:\n- name: sandbox\n  user: {{}}\ncontexts:\n- name: sandbox\n  context:\n    cluster: sandbox\n    user: sandbox\n    namespace: {}\ncurrent-context: sandbox\npreferences: {{}}\n",
            self.base_url(),
            namespace
        )
    }

    pub async fn write_kubeconfig(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        tokio::fs::write(path, self.kubeconfig_yaml(namespace)).await
    }

    /// Cut all open watches (clients see their streams end).
    pub fn drop_watches(&self) {
        self.server.drop_watches();
    }

    /// Forget history so old resourceVersions answer 410 Gone.
    pub fn compact(&self) {
        self.server.compact();
    }

    async fn stop_listener(&mut self) {
        if let Some(l) = self.listener.take() {
            // Open watches would hold graceful shutdown forever.
            self.server.drop_watches();
            let _ = l.shutdown.send(());
            let mut task = l.task;
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
                let _ = task.await;
            }
        }
    }

    /// Stop the HTTP listener (state kept; requests fail until [`RunningApiServer::resume`]).
    pub async fn pause(&mut self) {
        self.stop_listener().await;
    }

    /// Listen again on the same address after [`RunningApiServer::pause`].
    pub async fn resume(&mut self) -> std::io::Result<()> {
        if self.listener.is_none() {
            let mut last = None;
            // The port may linger briefly after close; retry a bounded number of times.
            for _ in 0..50 {
                match listen(&self.server, self.addr).await {
                    Ok((_, l)) => {
                        self.listener = Some(l);
                        return Ok(());
                    }
                    Err(e) => {
                        last = Some(e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            return Err(last.unwrap_or_else(|| std::io::Error::other("could not listen")));
        }
        Ok(())
    }

    /// Stop and restart the HTTP listener on the same port, keeping the state.
    pub async fn restart(&mut self) -> std::io::Result<()> {
        self.stop_listener().await;
        self.resume().await
    }

    pub async fn shutdown(mut self) {
        self.stop_listener().await;
    }
}

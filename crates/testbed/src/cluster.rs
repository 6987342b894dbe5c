//! The Kubernetes API a test runs on: the real control plane (kube-apiserver 1.37, etcd,
//! kube-controller-manager), the judge of Kubernetes behaviour. The embedded API server is the
//! demo's engine; it starts here only where a test asks for it by name (the differential suite,
//! the sandbox's, the benchmark), never as a fallback.

use crate::control_plane::{ControlPlane, StartError};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, ResourceExt};
use sandbox_apiserver::RunningApiServer;
use std::path::Path;
use std::time::Duration;

/// Field manager of what a test bed applies.
pub const FIELD_MANAGER: &str = "modelstudio-testbed";
/// Time allowed for one request of the test bed itself.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a CRD may take to become Established.
const CRD_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a test bed could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BedError {
    #[error("the real control plane did not start: {0}")]
    ControlPlane(#[from] StartError),
    #[error("the embedded API server did not start: {0}")]
    Embedded(#[source] std::io::Error),
    #[error("the kubeconfig is not usable: {0}")]
    Kubeconfig(String),
    #[error("could not read {path}: {source}")]
    ReadCrd {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a CustomResourceDefinition: {detail}")]
    ParseCrd { path: String, detail: String },
    #[error("could not install the CRD {name}: {detail}")]
    InstallCrd { name: String, detail: String },
}

/// Which API server a [`Cluster`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Real,
    Embedded,
}

/// A running Kubernetes API; its processes or tasks stop when it is dropped.
pub enum Cluster {
    Real(Box<ControlPlane>),
    Embedded(RunningApiServer),
}

impl Cluster {
    /// The real control plane; an error saying how to build it when it is not built
    /// (`scripts/test.sh` builds it).
    pub async fn start() -> Result<Self, BedError> {
        crate::control_plane::bin_dir()?;
        Self::start_real().await
    }

    /// The real control plane (kube-apiserver 1.37, etcd, kube-controller-manager).
    pub async fn start_real() -> Result<Self, BedError> {
        let plane = tokio::task::spawn_blocking(ControlPlane::start)
            .await
            .map_err(|e| BedError::ControlPlane(StartError::Io(std::io::Error::other(e))))??;
        Ok(Cluster::Real(Box::new(plane)))
    }

    /// The embedded in-memory API server on a free port of 127.0.0.1.
    pub async fn start_embedded() -> Result<Self, BedError> {
        RunningApiServer::start(([127, 0, 0, 1], 0).into())
            .await
            .map(Cluster::Embedded)
            .map_err(BedError::Embedded)
    }

    pub fn flavor(&self) -> Flavor {
        match self {
            Cluster::Real(_) => Flavor::Real,
            Cluster::Embedded(_) => Flavor::Embedded,
        }
    }

    /// The real control plane, if this is it.
    pub fn plane(&self) -> Option<&ControlPlane> {
        match self {
            Cluster::Real(p) => Some(p),
            Cluster::Embedded(_) => None,
        }
    }

    /// The embedded API server, if this is it.
    pub fn embedded(&self) -> Option<&RunningApiServer> {
        match self {
            Cluster::Real(_) => None,
            Cluster::Embedded(s) => Some(s),
        }
    }

    pub fn base_url(&self) -> String {
        match self {
            Cluster::Real(p) => p.base_url(),
            Cluster::Embedded(s) => s.base_url(),
        }
    }

    /// An admin kubeconfig whose context is on `namespace`.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        match self {
            Cluster::Real(p) => p.admin_kubeconfig(namespace),
            Cluster::Embedded(s) => s.kubeconfig_yaml(namespace),
        }
    }

    /// Writes the admin kubeconfig to `path`.
    pub fn write_kubeconfig(&self, path: &Path, namespace: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(namespace))
    }

    /// An admin kube client, its default namespace `namespace`.
    pub async fn client(&self, namespace: &str) -> Result<Client, BedError> {
        client_for(&self.kubeconfig(namespace)).await
    }

    /// Cuts every open watch: the real kube-apiserver is restarted on its port (keeping etcd's
    /// data), the embedded one drops its watch streams.
    pub async fn cut_watches(&mut self) -> Result<(), BedError> {
        match self {
            Cluster::Real(p) => tokio::task::block_in_place(|| p.restart_apiserver())?,
            Cluster::Embedded(s) => s.drop_watches(),
        }
        Ok(())
    }

    /// Stops the API server and starts it again on the same port with the same data.
    pub async fn restart(&mut self) -> Result<(), BedError> {
        match self {
            Cluster::Real(p) => tokio::task::block_in_place(|| p.restart_apiserver())?,
            Cluster::Embedded(s) => s.restart().await.map_err(BedError::Embedded)?,
        }
        Ok(())
    }
}

/// A kube client for a kubeconfig's text.
pub async fn client_for(kubeconfig: &str) -> Result<Client, BedError> {
    let kc = Kubeconfig::from_yaml(kubeconfig).map_err(|e| BedError::Kubeconfig(e.to_string()))?;
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| BedError::Kubeconfig(e.to_string()))?;
    config.connect_timeout = Some(REQUEST_TIMEOUT);
    config.read_timeout = Some(Duration::from_secs(300));
    Client::try_from(config).map_err(|e| BedError::Kubeconfig(e.to_string()))
}

/// Installs the CRD in the YAML file `path` by server-side apply and waits until it is
/// Established.
pub async fn install_crd(client: &Client, path: &Path) -> Result<(), BedError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| BedError::ReadCrd {
        path: shown.clone(),
        source,
    })?;
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&text).map_err(|e| BedError::ParseCrd {
            path: shown,
            detail: e.to_string(),
        })?;
    apply_crd(client, &crd).await
}

/// Installs `crd` by server-side apply and waits until it is Established.
pub async fn apply_crd(client: &Client, crd: &CustomResourceDefinition) -> Result<(), BedError> {
    let name = crd.name_any();
    let fail = |detail: String| BedError::InstallCrd {
        name: name.clone(),
        detail,
    };
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(crd),
        ),
    )
    .await
    .map_err(|_| fail("the API server did not answer in time".into()))?
    .map_err(|e| fail(e.to_string()))?;
    tokio::time::timeout(
        CRD_TIMEOUT,
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .map_err(|_| fail(format!("not Established within {CRD_TIMEOUT:?}")))?
    .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

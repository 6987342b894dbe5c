//! The test PKI of a control plane (one CA, serving and client certificates, the ServiceAccount
//! key pair), made with the openssl command, and kubeconfigs that carry its certificates.

use crate::process::run_bounded;
use base64::Engine as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Longest one openssl command may run.
const OPENSSL_LIMIT: Duration = Duration::from_secs(30);

/// An openssl step failed.
#[derive(Debug, thiserror::Error)]
#[error("could not make the PKI ({step}): {detail}")]
pub struct PkiError {
    pub step: &'static str,
    pub detail: String,
}

/// What a certificate is for.
pub(crate) enum Usage {
    /// A TLS server, valid for these subject alternative names (`DNS:name`, `IP:address`).
    Server(Vec<String>),
    /// A client of the API server; its subject's O is its group, its CN its user.
    Client,
}

/// One certificate signed by the CA: `<name>.key` and `<name>.crt` in the PKI's folder.
pub(crate) struct Cert<'a> {
    pub name: &'a str,
    pub subject: &'a str,
    pub usage: Usage,
}

/// Makes `ca.key`/`ca.crt`, every certificate of `certs`, and the ServiceAccount signing key
/// pair `sa.key`/`sa.pub` in `dir`. Keys are P-256, certificates valid for two days.
pub(crate) fn make_pki(dir: &Path, certs: &[Cert<'_>]) -> Result<(), PkiError> {
    let openssl = |step: &'static str, args: &[&str]| openssl(dir, step, args);
    ec_key(dir, "ca.key")?;
    openssl(
        "CA",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=testbed-ca",
            "-days",
            "2",
            "-out",
            "ca.crt",
        ],
    )?;
    for cert in certs {
        sign(dir, cert)?;
    }
    ec_key(dir, "sa.key")?;
    openssl("sa", &["ec", "-in", "sa.key", "-pubout", "-out", "sa.pub"])
}

/// A kubeconfig with the CA and the client certificate `<user>.crt`/`<user>.key` of `dir`
/// inlined, for `server`, its context on `namespace`. A missing file is left empty (the client
/// then fails to authenticate, saying so).
pub(crate) fn kubeconfig(dir: &Path, server: &str, user: &str, namespace: &str) -> String {
    let read = |f: &str| base64(&std::fs::read(dir.join(f)).unwrap_or_default());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testbed\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: testbed\n  context:\n    cluster: testbed\n    user: {user}\n    namespace: {namespace}\ncurrent-context: testbed\n",
        read("ca.crt"),
        read(&format!("{user}.crt")),
        read(&format!("{user}.key")),
    )
}

/// A kubeconfig for `server` that authenticates with a bearer `token` only.
pub(crate) fn token_kubeconfig(dir: &Path, server: &str, token: &str, namespace: &str) -> String {
    let ca = base64(&std::fs::read(dir.join("ca.crt")).unwrap_or_default());
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: testbed\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: token\n  user:\n    token: {token}\ncontexts:\n- name: testbed\n  context:\n    cluster: testbed\n    user: token\n    namespace: {namespace}\ncurrent-context: testbed\n",
    )
}

/// A key (PKCS#8, which every client reads), a request and the CA's signature for `cert`.
fn sign(dir: &Path, cert: &Cert<'_>) -> Result<(), PkiError> {
    let openssl = |step: &'static str, args: &[&str]| openssl(dir, step, args);
    let ext = format!("{}.ext", cert.name);
    let usage = match &cert.usage {
        Usage::Server(sans) => format!(
            "subjectAltName={}\nextendedKeyUsage=serverAuth\n",
            sans.join(",")
        ),
        Usage::Client => "extendedKeyUsage=clientAuth\n".to_string(),
    };
    std::fs::write(
        dir.join(&ext),
        format!("{usage}keyUsage=digitalSignature,keyEncipherment\n"),
    )
    .map_err(|e| PkiError {
        step: "extensions",
        detail: e.to_string(),
    })?;
    let key = format!("{}.key", cert.name);
    let csr = format!("{}.csr", cert.name);
    let crt = format!("{}.crt", cert.name);
    openssl(
        "key",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key,
        ],
    )?;
    openssl(
        "csr",
        &[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            cert.subject,
            "-out",
            &csr,
        ],
    )?;
    openssl(
        "sign",
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ],
    )
}

fn ec_key(dir: &Path, file: &str) -> Result<(), PkiError> {
    openssl(
        dir,
        "key",
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            file,
        ],
    )
}

fn openssl(dir: &Path, step: &'static str, args: &[&str]) -> Result<(), PkiError> {
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir).args(args);
    let out = run_bounded(cmd, OPENSSL_LIMIT);
    if out.ok() {
        Ok(())
    } else {
        Err(PkiError {
            step,
            detail: out.stderr,
        })
    }
}

pub(crate) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

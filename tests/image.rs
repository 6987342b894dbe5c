//! The container images as users get them (docs/image.md): scripts/build-image.sh builds the
//! Dockerfile with buildah, with no daemon, into an OCI archive, and these tests read the archive
//! as a registry and a node do: its name, its config (user 65532, entrypoint, OCI labels) and
//! every file of its layers (the binary, its libraries and their loader, the CA bundle, passwd;
//! no shell, no package manager, nothing else), then run the binary from the unpacked layers as
//! 65532. The chart's and deploy/'s default image is the name the script gives.
//!
//! The image is built from the binary `cargo test` built (no release build in CI: that takes 5 to
//! 15 minutes on 2 cores); MODELSTUDIO_IMAGE_RELEASE=1 builds it as users do, from the release
//! binary of `cargo auditable build`, and checks that the binary carries its crate list. Outside
//! CI the tests skip when buildah is missing and cannot be installed (not root).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use modelstudio_testbed::{kustomize, run_bounded, TempDir};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// One run of the script: the first also installs buildah and downloads a few .debs; a release
/// build, when asked for, takes most of it.
const BUILD_LIMIT: Duration = Duration::from_secs(1800);
const TOOL_LIMIT: Duration = Duration::from_secs(120);
/// The source label the tests ask for (this checkout may have no remote to take it from).
const SOURCE: &str = "https://git.invalid/modelstudio-controller";

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

fn run(program: &str, args: &[&str]) -> modelstudio_testbed::Output {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(ROOT);
    run_bounded(cmd, TOOL_LIMIT)
}

/// True when the script can build here: buildah is there, or it can install it (as root).
/// Outside CI a machine without either skips; CI fails.
fn can_build() -> bool {
    if run("buildah", &["--version"]).ok() || run("id", &["-u"]).stdout.trim() == "0" {
        return true;
    }
    let why = "buildah is missing and installing it needs root (apt-get install buildah)";
    assert!(!ci(), "{why}; CI=true requires the image tests");
    println!("SKIPPED: {why}");
    false
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path)).expect(path);
    serde_saphyr::from_str(&text).expect(path)
}

/// The chart's default image of `binary` (values.yaml's registry and the binary's name), tagged
/// with `version`: the reference the script names the archive with when given no --tag.
fn default_reference(binary: &str, version: &str) -> String {
    let repository = yaml("charts/modelstudio-controller/values.yaml")["image"]["repository"]
        .as_str()
        .expect("image.repository")
        .to_string();
    let registry = repository
        .strip_suffix("/modelstudio-controller")
        .expect("the chart's repository ends in /modelstudio-controller");
    format!("{registry}/{binary}:{version}")
}

/// A workspace package's version, and whether it has a binary target `binary`.
fn package(name: &str, binary: &str) -> (String, bool) {
    let out = run(
        env!("CARGO"),
        &["metadata", "--no-deps", "--locked", "--format-version", "1"],
    );
    assert!(out.ok(), "cargo metadata: {}", out.stderr);
    let meta: Value = serde_json::from_str(&out.stdout).expect("cargo metadata's JSON");
    let package = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no package {name}"));
    let has_binary =
        package["targets"].as_array().unwrap().iter().any(|t| {
            t["name"] == binary && t["kind"].as_array().unwrap().iter().any(|k| k == "bin")
        });
    (package["version"].as_str().unwrap().to_string(), has_binary)
}

/// An image archive unpacked: the OCI layout's documents and the layers applied in order.
struct Image {
    index: Value,
    manifest: Value,
    config: Value,
    rootfs: PathBuf,
    /// Every path of the root filesystem, relative, folders included.
    paths: BTreeSet<String>,
}

impl Image {
    fn unpack(archive: &Path, dir: &Path) -> Image {
        let layout = dir.join("layout");
        let rootfs = dir.join("rootfs");
        std::fs::create_dir_all(&layout).unwrap();
        std::fs::create_dir_all(&rootfs).unwrap();
        let layout_arg = layout.to_str().unwrap();
        let out = run("tar", &["-xf", archive.to_str().unwrap(), "-C", layout_arg]);
        assert!(out.ok(), "unpack {}: {}", archive.display(), out.stderr);
        let blob = |digest: &Value| {
            layout
                .join("blobs")
                .join(digest.as_str().unwrap().replace(':', "/"))
        };
        let json = |path: PathBuf| -> Value {
            serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("an OCI document")
        };
        let index = json(layout.join("index.json"));
        assert_eq!(
            json(layout.join("oci-layout"))["imageLayoutVersion"],
            "1.0.0"
        );
        let manifest = json(blob(&index["manifests"][0]["digest"]));
        let config = json(blob(&manifest["config"]["digest"]));
        for layer in manifest["layers"].as_array().unwrap() {
            let media = layer["mediaType"].as_str().unwrap();
            assert_eq!(media, "application/vnd.oci.image.layer.v1.tar+gzip");
            let path = blob(&layer["digest"]);
            let out = run(
                "tar",
                &[
                    "-xzf",
                    path.to_str().unwrap(),
                    "-C",
                    rootfs.to_str().unwrap(),
                ],
            );
            assert!(out.ok(), "unpack layer {}: {}", path.display(), out.stderr);
        }
        let mut paths = BTreeSet::new();
        walk(&rootfs, &rootfs, &mut paths);
        Image {
            index,
            manifest,
            config,
            rootfs,
            paths,
        }
    }

    fn label(&self, name: &str) -> &str {
        self.config["config"]["Labels"][format!("org.opencontainers.image.{name}")]
            .as_str()
            .unwrap_or_else(|| panic!("no label {name}: {}", self.config["config"]["Labels"]))
    }

    fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.rootfs.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
    }
}

fn walk(root: &Path, dir: &Path, paths: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let relative = path
            .strip_prefix(root)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        paths.insert(relative);
        if std::fs::symlink_metadata(&path).unwrap().is_dir() {
            walk(root, &path, paths);
        }
    }
}

/// What an image may hold besides its binary: the Debian files the script stages.
fn staged_file(path: &str) -> bool {
    let in_folder = |folder: &str| {
        path.strip_prefix(folder)
            .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'))
    };
    matches!(
        path,
        "etc"
            | "etc/passwd"
            | "etc/group"
            | "etc/nsswitch.conf"
            | "etc/ssl"
            | "etc/ssl/certs"
            | "etc/ssl/certs/ca-certificates.crt"
            | "lib"
            | "lib64"
            | "tmp"
            | "usr"
            | "usr/share"
            | "usr/share/doc"
    ) || path.starts_with("lib/") && path.ends_with("-linux-gnu")
        || path.starts_with("lib/") && path.contains("-linux-gnu/") && path.contains(".so")
        || path.starts_with("lib64/ld-linux-") && path.contains(".so")
        || in_folder("usr/share/doc/")
        || path.starts_with("usr/share/doc/") && path.ends_with("/copyright")
}

/// Runs scripts/build-image.sh; answers the archive (its last line of stdout) and its stdout.
fn build_image(which: &str, binary: Option<&Path>, out: &Path) -> (PathBuf, String) {
    let mut cmd = Command::new("bash");
    cmd.current_dir(ROOT)
        .arg(Path::new(ROOT).join("scripts/build-image.sh"))
        .args([which, "--source", SOURCE, "--out"])
        .arg(out)
        .env_remove("IMAGE_SOURCE");
    if let Some(binary) = binary {
        cmd.arg("--binary").arg(binary);
    }
    let run = run_bounded(cmd, BUILD_LIMIT);
    assert!(
        run.ok(),
        "scripts/build-image.sh {which} failed ({:?}):\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    let last = run.stdout.lines().last().unwrap_or_default().trim();
    assert_eq!(Path::new(last), out, "the last line is the archive");
    assert!(
        run.stdout.contains(" compressed, ") && run.stdout.contains(" uncompressed"),
        "the image's size is printed:\n{}",
        run.stdout
    );
    (out.to_path_buf(), run.stdout)
}

/// What every image of the script holds, whichever binary.
fn check_image(image: &Image, binary: &str, reference: &str, version: &str) {
    assert_eq!(image.index["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        image.index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], reference,
        "containerd names an imported archive by this: the full reference"
    );
    // The shared base (libraries, certificates, users) and the binary, each a layer.
    assert_eq!(image.manifest["layers"].as_array().unwrap().len(), 2);
    let config = &image.config["config"];
    assert_eq!(image.config["os"], "linux");
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!([format!("/{binary}")])
    );

    assert_eq!(image.label("title"), binary);
    assert_eq!(image.label("version"), version);
    assert_eq!(image.label("licenses"), env!("CARGO_PKG_LICENSE"));
    assert_eq!(image.label("source"), SOURCE);
    let head = run("git", &["rev-parse", "HEAD"]);
    if head.ok() {
        assert_eq!(image.label("revision"), head.stdout.trim());
    }
    image
        .label("created")
        .parse::<jiff::Timestamp>()
        .expect("created is an RFC 3339 time");
    assert!(!image.label("description").is_empty());

    // Nothing but the binary and the staged Debian files: no shell, no package manager.
    let others: Vec<&String> = image
        .paths
        .iter()
        .filter(|p| p.as_str() != binary && !staged_file(p))
        .collect();
    assert!(
        others.is_empty(),
        "unexpected files in the image: {others:?}"
    );
    for path in &image.paths {
        let name = path.rsplit('/').next().unwrap();
        assert!(
            !["sh", "bash", "dash", "busybox", "apt", "apt-get", "dpkg"].contains(&name),
            "{path} is in the image"
        );
    }
    for path in [
        binary,
        "etc/ssl/certs/ca-certificates.crt",
        "lib64/ld-linux-x86-64.so.2",
        "lib/x86_64-linux-gnu/libc.so.6",
        "usr/share/doc/libc6/copyright",
        "tmp",
    ] {
        assert!(image.paths.contains(path), "{path} is missing");
    }
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(image.rootfs.join(binary))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "the binary's mode");
    }
    assert!(image
        .read("etc/passwd")
        .lines()
        .any(|l| l.starts_with("nonroot:x:65532:65532:")));
    assert!(image
        .read("etc/group")
        .lines()
        .any(|l| l == "nonroot:x:65532:"));
    let certificates = image
        .read("etc/ssl/certs/ca-certificates.crt")
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    assert!(certificates > 100, "{certificates} CA certificates");
}

/// Runs the image's binary from its unpacked layers as 65532, with only the image's libraries
/// (chroot needs root: elsewhere this part is left out, saying so).
fn run_in_image(image: &Image, binary: &str, arg: &str) -> Option<String> {
    if run("id", &["-u"]).stdout.trim() != "0" {
        println!("not root: the binary is not run from the image");
        return None;
    }
    let out = run(
        "chroot",
        &[
            "--userspec=65532:65532",
            image.rootfs.to_str().unwrap(),
            &format!("/{binary}"),
            arg,
        ],
    );
    assert!(
        out.ok(),
        "/{binary} {arg} in the image failed: {:?}\n{}",
        out.status,
        out.stderr
    );
    Some(out.stdout)
}

#[test]
fn the_default_image_is_the_one_the_script_builds() {
    let version = env!("CARGO_PKG_VERSION");
    let reference = default_reference("modelstudio-controller", version);
    assert!(!reference.contains("example"), "{reference}");
    // deploy/ (kustomize) deploys that image.
    let docs = kustomize(&Path::new(ROOT).join("deploy"));
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("deploy/ has a Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        reference.as_str()
    );
    // The script names its archive so by default: the image tests check that.
}

#[test]
fn controller_image_holds_the_binary_its_libraries_and_nothing_else() {
    if !can_build() {
        return;
    }
    let dir = TempDir::new("image-controller");
    let release = std::env::var("MODELSTUDIO_IMAGE_RELEASE").is_ok_and(|v| v == "1");
    let test_binary = Path::new(env!("CARGO_BIN_EXE_modelstudio-controller"));
    let (archive, _) = build_image(
        "controller",
        (!release).then_some(test_binary),
        &dir.0.join("controller.oci.tar"),
    );
    let image = Image::unpack(&archive, &dir.0.join("unpacked"));
    let version = env!("CARGO_PKG_VERSION");
    let binary = "modelstudio-controller";
    check_image(&image, binary, &default_reference(binary, version), version);

    let config = &image.config["config"];
    assert_eq!(config["Cmd"], serde_json::json!(["run"]));
    assert!(config["ExposedPorts"]["8080/tcp"].is_object());
    let in_image = std::fs::read(image.rootfs.join(binary)).unwrap();
    if release {
        // cargo-auditable's section: the crate list image scanners read.
        assert!(
            in_image.windows(7).any(|w| w == b".dep-v0"),
            "the release binary has no .dep-v0 section (cargo auditable build)"
        );
    } else {
        assert!(
            in_image == std::fs::read(test_binary).unwrap(),
            "the image's binary is not the one staged"
        );
    }
    // Not the simulator: a test tool is never in the controller's image.
    assert!(!image.paths.contains("modelstudio-simulator"));
    if let Some(out) = run_in_image(&image, binary, "--version") {
        assert!(out.contains(version), "{out}");
    }
}

#[test]
fn simulator_image_holds_the_simulator_only() {
    let binary = "modelstudio-simulator";
    let (version, has_binary) = package("modelstudio-simulator", binary);
    if !has_binary {
        println!("SKIPPED: crates/simulator has no binary {binary}");
        return;
    }
    if !can_build() {
        return;
    }
    let dir = TempDir::new("image-simulator");
    let release = std::env::var("MODELSTUDIO_IMAGE_RELEASE").is_ok_and(|v| v == "1");
    let staged = if release {
        None
    } else {
        // The simulator's binary of this profile (cargo test builds the controller's only).
        let out = run_bounded(
            {
                let mut cmd = Command::new(env!("CARGO"));
                cmd.current_dir(ROOT).args([
                    "build",
                    "--locked",
                    "-p",
                    "modelstudio-simulator",
                    "--bin",
                    binary,
                    "--message-format",
                    "json-render-diagnostics",
                ]);
                cmd
            },
            BUILD_LIMIT,
        );
        assert!(out.ok(), "cargo build {binary}: {}", out.stderr);
        let executable = out
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .expect("cargo built an executable");
        Some(executable)
    };
    let (archive, _) = build_image(
        "simulator",
        staged.as_deref(),
        &dir.0.join("simulator.oci.tar"),
    );
    let image = Image::unpack(&archive, &dir.0.join("unpacked"));
    check_image(
        &image,
        binary,
        &default_reference(binary, &version),
        &version,
    );
    assert!(!image.paths.contains("modelstudio-controller"));
    // It serves beyond the pod's loopback.
    let config = &image.config["config"];
    assert!(config["Env"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e == "SIMULATOR_ADDR=0.0.0.0:8089"));
    assert!(config["ExposedPorts"]["8089/tcp"].is_object());
    if let Some(out) = run_in_image(&image, binary, "--version") {
        assert!(out.contains(&version), "{out}");
    }
}

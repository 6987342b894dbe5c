//! Images for the node without a container engine: the pause image made from our pause program,
//! and OCI archives pushed, both with crane into the node's registry.

use crate::process::{run_bounded, Output};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Longest one crane or tar command may run (an archive of a few hundred MB pushes in seconds).
const IMAGE_LIMIT: Duration = Duration::from_secs(120);

/// A step of making or pushing an image failed.
#[derive(Debug, thiserror::Error)]
#[error("image: {step} failed: {detail}")]
pub struct ImageError {
    pub step: String,
    pub detail: String,
}

/// Makes the one-layer pause image (the `pause` program at /pause, user 65535) and pushes it to
/// `registry/repository:tag` (`reference`).
pub fn push_pause(
    crane: &Path,
    pause: &Path,
    work: &Path,
    reference: &str,
) -> Result<(), ImageError> {
    let layer_dir = work.join("pause-layer");
    std::fs::create_dir_all(&layer_dir).map_err(|e| fail("pause layer folder", e))?;
    std::fs::copy(pause, layer_dir.join("pause")).map_err(|e| fail("copy pause", e))?;
    let layer = work.join("pause-layer.tar");
    let mut tar = Command::new("tar");
    tar.args([
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        "--mtime=@0",
        "-C",
    ])
    .arg(&layer_dir)
    .arg("-cf")
    .arg(&layer)
    .arg("pause");
    checked("tar of the pause layer", run_bounded(tar, IMAGE_LIMIT))?;
    let mut append = Command::new(crane);
    append
        .args(["append", "--insecure", "--oci-empty-base", "-f"])
        .arg(&layer)
        .args(["-t", reference]);
    checked("crane append (pause)", run_bounded(append, IMAGE_LIMIT))?;
    let mut mutate = Command::new(crane);
    mutate.args([
        "mutate",
        "--insecure",
        reference,
        "--entrypoint=/pause",
        "--user=65535:65535",
        "-t",
        reference,
    ]);
    checked("crane mutate (pause)", run_bounded(mutate, IMAGE_LIMIT))?;
    Ok(())
}

/// Pushes an image to `reference`: an OCI image layout folder, an OCI archive (a tar of such a
/// folder, unpacked into `work` first) or a docker-style tarball. Returns the pushed digest
/// reference crane prints.
pub fn push_archive(
    crane: &Path,
    path: &Path,
    work: &Path,
    reference: &str,
) -> Result<String, ImageError> {
    let source = if path.is_file() && is_oci_archive(path)? {
        let unpacked = work.join(format!("oci-{}", reference.replace(['/', ':', '@'], "_")));
        let _ = std::fs::remove_dir_all(&unpacked);
        std::fs::create_dir_all(&unpacked).map_err(|e| fail("unpack folder", e))?;
        let mut tar = Command::new("tar");
        tar.arg("-xf").arg(path).arg("-C").arg(&unpacked);
        checked("unpack the OCI archive", run_bounded(tar, IMAGE_LIMIT))?;
        unpacked
    } else {
        path.to_path_buf()
    };
    let mut push = Command::new(crane);
    push.args(["push", "--insecure"])
        .arg(&source)
        .arg(reference);
    let out = checked("crane push", run_bounded(push, IMAGE_LIMIT))?;
    Ok(out.stdout.trim().to_string())
}

/// True when the tar holds an `oci-layout` file at its top.
fn is_oci_archive(path: &Path) -> Result<bool, ImageError> {
    let mut list = Command::new("tar");
    list.arg("-tf").arg(path);
    let out = checked("list the archive", run_bounded(list, IMAGE_LIMIT))?;
    Ok(out
        .stdout
        .lines()
        .any(|l| l.trim_start_matches("./") == "oci-layout"))
}

fn checked(step: &str, out: Output) -> Result<Output, ImageError> {
    if out.ok() {
        Ok(out)
    } else {
        Err(ImageError {
            step: step.into(),
            detail: format!("{:?}: {}", out.status, out.stderr),
        })
    }
}

fn fail(step: &str, e: std::io::Error) -> ImageError {
    ImageError {
        step: step.into(),
        detail: e.to_string(),
    }
}

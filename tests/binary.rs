//! The shipped binary holds the controller and nothing of the test beds: `run` and `crd` are its
//! only commands, and neither the simulator nor the embedded API server is linked in.

use modelstudio_testbed::run_bounded;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const LIMIT: Duration = Duration::from_secs(60);

/// The subcommand names of a clap `--help`: the first word of each line of its Commands section.
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn the_binary_has_only_run_crd_and_orphan() {
    let mut cmd = Command::new(BIN);
    cmd.arg("--help");
    let out = run_bounded(cmd, LIMIT);
    assert!(out.ok(), "{out:?}");
    assert_eq!(
        commands(&out.stdout),
        ["run", "crd", "orphan", "help"],
        "{}",
        out.stdout
    );
    for word in ["sandbox", "apiserver", "simulator"] {
        assert!(
            !out.stdout.to_lowercase().contains(word),
            "--help mentions {word}:\n{}",
            out.stdout
        );
    }

    for gone in ["sandbox", "apiserver", "simulator"] {
        let mut cmd = Command::new(BIN);
        cmd.arg(gone);
        let out = run_bounded(cmd, LIMIT);
        assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{out:?}");
        assert!(
            out.stderr
                .contains(&format!("unrecognized subcommand '{gone}'")),
            "{}",
            out.stderr
        );
    }

    let mut cmd = Command::new(BIN);
    cmd.arg("crd");
    let out = run_bounded(cmd, LIMIT);
    assert!(out.ok(), "{out:?}");
    assert!(
        out.stdout.contains("name: modelimports.modelstudio.io"),
        "{}",
        out.stdout
    );

    // `crd modeldeployment` prints the committed ModelDeployment CRD; another word is refused
    // with the words that exist.
    let mut cmd = Command::new(BIN);
    cmd.args(["crd", "modeldeployment"]);
    let out = run_bounded(cmd, LIMIT);
    assert!(out.ok(), "{out:?}");
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/modeldeployment.yaml"
    ))
    .unwrap();
    assert!(out.stdout == committed, "{}", out.stdout);
    let mut cmd = Command::new(BIN);
    cmd.args(["crd", "deployment"]);
    let out = run_bounded(cmd, LIMIT);
    assert_eq!(out.status.and_then(|s| s.code()), Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("[possible values: modelimport, modeldeployment]"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_controller_links_none_of_the_test_beds() {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).args([
        "tree",
        "--locked",
        "--offline",
        "-p",
        "modelstudio-controller",
        "-e",
        "normal,build",
        "--prefix",
        "none",
    ]);
    let out = run_bounded(cmd, LIMIT);
    assert!(out.ok(), "{out:?}");
    let crates: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"kube"), "{}", out.stdout);
    for bed in [
        "sandbox-apiserver",
        "modelstudio-simulator",
        "modelstudio-testbed",
        "modelstudio-sandbox",
    ] {
        assert!(!crates.contains(&bed), "{bed} is linked:\n{}", out.stdout);
    }
}

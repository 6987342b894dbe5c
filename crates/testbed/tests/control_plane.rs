//! The real control plane starts, serves, restarts keeping its data, and stops.

use modelstudio_testbed::ControlPlane;
use std::time::Duration;

fn kubectl(plane: &ControlPlane, args: &[&str]) -> modelstudio_testbed::Output {
    plane.kubectl(args, Duration::from_secs(90))
}

#[test]
fn starts_serves_restarts_with_its_data_and_deletes_namespaces() {
    let mut plane = ControlPlane::start().expect("start the control plane");
    let v = kubectl(&plane, &["version", "-o", "json"]);
    assert!(v.ok(), "{v:?}");
    assert!(
        v.stdout.contains("\"gitVersion\": \"v1.37.2\""),
        "{}",
        v.stdout
    );
    let made = kubectl(&plane, &["create", "namespace", "kept"]);
    assert!(made.ok(), "{made:?}");

    plane.restart_apiserver().expect("restart kube-apiserver");
    let got = kubectl(&plane, &["get", "namespace", "kept", "-o", "name"]);
    assert_eq!(got.stdout.trim(), "namespace/kept", "{got:?}");

    // The namespace controller of kube-controller-manager finishes a namespace deletion.
    let del = kubectl(&plane, &["delete", "namespace", "kept", "--timeout=60s"]);
    assert!(del.ok(), "{del:?}");
}

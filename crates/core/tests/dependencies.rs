//! The core stays pure by construction: it may depend only on crates that carry no Kubernetes,
//! HTTP or wire-format types. Adding kube, k8s-openapi, reqwest, serde or the like fails here,
//! and so does any dependency not named below, which must then be justified in this list.

const ALLOWED: &[&str] = &[
    "thiserror",
    "jiff",
    "async-trait",
    // Tests only: generates plain values for the property tests; no Kubernetes, HTTP or serde.
    "proptest",
];
const FORBIDDEN: &[&str] = &[
    "kube",
    "k8s-openapi",
    "reqwest",
    "serde",
    "serde_json",
    "hyper",
    "http",
    "axum",
    "tokio",
];

/// The names under `[dependencies]`, `[dev-dependencies]` and `[build-dependencies]`.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut names = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = matches!(
                line,
                "[dependencies]" | "[dev-dependencies]" | "[build-dependencies]"
            ) || line.starts_with("[target.");
            continue;
        }
        if in_deps && !line.is_empty() && !line.starts_with('#') {
            if let Some((name, _)) = line.split_once('=') {
                names.push(name.trim().trim_matches('"').to_string());
            }
        }
    }
    names
}

#[test]
fn the_core_names_no_kubernetes_http_or_wire_crate() {
    let manifest = include_str!("../Cargo.toml");
    let deps = dependencies(manifest);
    assert!(
        !deps.is_empty(),
        "no dependency found: the parser is broken"
    );
    for dep in &deps {
        assert!(
            !FORBIDDEN.contains(&dep.as_str()),
            "modelstudio-core must not depend on {dep}: keep Kubernetes, HTTP and wire types in the controller crate"
        );
        assert!(
            ALLOWED.contains(&dep.as_str()),
            "modelstudio-core gained the dependency {dep}: add it to ALLOWED only if it carries no Kubernetes, HTTP or wire type"
        );
    }
}

#[test]
fn the_parser_sees_a_forbidden_dependency() {
    let deps = dependencies(
        "[package]\nname = \"x\"\n[dependencies]\nkube = \"5\"\n[lints]\nworkspace = true\n",
    );
    assert_eq!(deps, ["kube"]);
}

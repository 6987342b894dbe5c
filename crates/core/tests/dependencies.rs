//! The core stays pure by construction: it may depend only on crates that carry no Kubernetes,
//! HTTP or wire-format types. Adding kube, k8s-openapi, reqwest, serde or the like fails here,
//! and so does any dependency not named below, which must then be justified in this list.
//!
//! Its modules import each other in one direction only: a module that two others share imports
//! neither of them. A circle (`decision -> step -> decision`) fails here, printed with the line
//! that makes each step of it. A folder counts as one module, and each kind has its folder
//! (`import/`, `deployment/`): the shared modules beside them import no kind, and neither kind
//! imports the other, which fails here too.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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

// ---------------------------------------------------------------------------------------------
// The core's modules import each other in one direction only
// ---------------------------------------------------------------------------------------------

/// The modules a module names, each with the first place (`file:line`) that names it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

/// Every `.rs` file under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The module path of a file under `src/` (`decision.rs` is `["decision"]`, `import/step.rs` is
/// `["import", "step"]`, `import/mod.rs` is `["import"]`; `lib.rs` is the crate root, `[]`).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let file = parts.pop().unwrap_or_default();
    match file.trim_end_matches(".rs") {
        "lib" | "mod" => {}
        name => parts.push(name.to_string()),
    }
    parts
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The identifier that `text` starts with, if any.
fn ident(text: &str) -> Option<&str> {
    let end = text.find(|c: char| !is_ident_char(c)).unwrap_or(text.len());
    let name = &text[..end];
    (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
}

/// The top-level names in a `{ ... }` group that `text` starts with: `{a, b::c, d::{e, f}}`
/// names `a`, `b` and `d`.
fn group_heads(text: &str) -> Vec<&str> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expect_head = false;
    for (i, c) in text.char_indices() {
        match c {
            '{' => {
                depth += 1;
                expect_head = depth == 1;
            }
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    break;
                }
            }
            ',' if depth == 1 => expect_head = true,
            c if c.is_whitespace() => {}
            _ if expect_head => {
                expect_head = false;
                if let Some(name) = ident(&text[i..]) {
                    heads.push(name);
                }
            }
            _ => {}
        }
    }
    heads
}

/// The top-level modules of the crate that `source` (the file of module `path`) names through
/// `crate::` (a `use`, a path in code, or an intra-doc link: anywhere in the file) or through
/// `super::` chains that climb to the crate root, each with the line it is named on.
fn named_modules(source: &str, path: &[String]) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some((start, keyword)) = next_keyword(source, at) {
        at = start + keyword.len();
        // `pub(crate)` is no path, and `foo::crate::` or `my_crate::` is not this crate.
        let before = source[..start].chars().next_back();
        if before.is_some_and(|c| is_ident_char(c) || c == ':') {
            continue;
        }
        let mut after = &source[at..];
        if keyword == "super::" {
            // Each `super::` climbs one module; only a climb to the crate root leaves the
            // top-level module the file belongs to.
            let mut climb = 1;
            while let Some(more) = after.strip_prefix("super::") {
                climb += 1;
                after = more;
            }
            at = source.len() - after.len();
            if climb < path.len() {
                continue;
            }
        }
        let line = source[..start].matches('\n').count() + 1;
        // A group (`crate::{a::X, b::{Y, Z}}`) may run over several lines.
        let names = if after.starts_with('{') {
            group_heads(after)
        } else {
            ident(after).into_iter().collect()
        };
        for name in names {
            if !matches!(name, "self" | "super" | "crate") {
                found.push((name.to_string(), line));
            }
        }
    }
    found
}

/// The first `crate::` or `super::` in `text` from byte `from`, with which of the two it is.
fn next_keyword(text: &str, from: usize) -> Option<(usize, &'static str)> {
    ["crate::", "super::"]
        .into_iter()
        .filter_map(|keyword| text[from..].find(keyword).map(|i| (from + i, keyword)))
        .min()
}

/// The graph of the crate's top-level modules (a folder counts as one module) as the files
/// under `src` name each other; the crate root (`lib.rs`) is left out.
fn module_graph(src: &Path) -> Graph {
    let files = rust_files(src);
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_path(f.strip_prefix(src).unwrap()).first().cloned())
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let relative = file.strip_prefix(src).unwrap();
        let path = module_path(relative);
        let Some(module) = path.first() else {
            continue;
        };
        let source = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let edges = graph.entry(module.clone()).or_default();
        for (name, line) in named_modules(&source, &path) {
            if &name != module && modules.contains(&name) {
                edges
                    .entry(name)
                    .or_insert_with(|| format!("{}:{line}", relative.display()));
            }
        }
    }
    graph
}

/// Every elementary cycle of `graph`, each from its smallest module, in a stable order.
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    fn walk(graph: &Graph, start: &str, path: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
        let here = path.last().expect("a path starts at its start").clone();
        for next in graph.get(&here).into_iter().flat_map(|edges| edges.keys()) {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                found.push(cycle);
            } else if next.as_str() > start && !path.contains(next) {
                path.push(next.clone());
                walk(graph, start, path, found);
                path.pop();
            }
        }
    }
    let mut found = Vec::new();
    for start in graph.keys() {
        walk(graph, start, &mut vec![start.clone()], &mut found);
    }
    found
}

/// The cycles, one a line, each step with where it is named.
fn describe(graph: &Graph, cycles: &[Vec<String>]) -> String {
    cycles
        .iter()
        .map(|cycle| {
            let places: Vec<String> = cycle
                .windows(2)
                .map(|pair| format!("{} -> {}: {}", pair[0], pair[1], graph[&pair[0]][&pair[1]]))
                .collect();
            format!("  {}\n      ({})", cycle.join(" -> "), places.join("; "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_core_modules_import_each_other_in_one_direction_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 1 && graph.values().any(|edges| !edges.is_empty()),
        "no module or no import found under {}: the reader is broken",
        src.display()
    );
    let found = cycles(&graph);
    let summary: Vec<String> = graph
        .iter()
        .map(|(module, edges)| {
            let names: Vec<&str> = edges.keys().map(String::as_str).collect();
            format!("  {module} -> {}", names.join(", "))
        })
        .collect();
    assert!(
        found.is_empty(),
        "the core's modules import each other in a circle ({} found); what two modules share \
         belongs in a module that imports neither of them:\n{}\n\nthe module graph:\n{}",
        found.len(),
        describe(&graph, &found),
        summary.join("\n")
    );
}

/// The kinds' folders; every other top-level module is shared by both.
const KINDS: &[&str] = &["import", "deployment"];

#[test]
fn the_shared_modules_import_no_kind_and_no_kind_imports_another() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    for kind in KINDS {
        assert!(
            graph.contains_key(*kind),
            "no module {kind} under {}: the kinds' folders moved, update KINDS",
            src.display()
        );
    }
    let wrong: Vec<String> = graph
        .iter()
        .flat_map(|(module, edges)| {
            edges
                .iter()
                .filter(|(to, _)| KINDS.contains(&to.as_str()))
                .map(move |(to, place)| format!("  {module} -> {to}: {place}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "a kind is named by a shared module or by the other kind; what both use belongs in a \
         shared module:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_sees_every_way_a_module_is_named() {
    let path = ["import".to_string(), "step".to_string()];
    let source = "use crate::reason::{Code, Reason};\n\
                  use crate::{events::Event, requeue::{Requeue, Timing}};\n\
                  //! As [`crate::step`] is.\n\
                  pub(crate) fn f() -> crate::status::Update { super::super::conditions::x() }\n\
                  use super::decision;\n\
                  let s = modelstudio_crate::nope;\n\
                  use crate::{\n    credentials::KeySource,\n    remote::{ApiError, Job},\n};\n";
    let names: Vec<(String, usize)> = named_modules(source, &path);
    let names: Vec<(&str, usize)> = names.iter().map(|(n, l)| (n.as_str(), *l)).collect();
    assert_eq!(
        names,
        [
            ("reason", 1),
            ("events", 2),
            ("requeue", 2),
            ("step", 3),
            ("status", 4),
            ("conditions", 4),
            ("credentials", 7),
            ("remote", 7),
        ]
    );
    assert_eq!(module_path(Path::new("import/mod.rs")), ["import"]);
    assert_eq!(module_path(Path::new("lib.rs")), Vec::<String>::new());
}

#[test]
fn the_cycle_finder_sees_a_circle() {
    let mut graph = Graph::new();
    for (from, to) in [
        ("a", "b"),
        ("b", "c"),
        ("c", "a"),
        ("c", "d"),
        ("d", "c"),
        ("e", "a"),
    ] {
        graph
            .entry(from.to_string())
            .or_default()
            .insert(to.to_string(), "x.rs:1".to_string());
    }
    assert_eq!(
        cycles(&graph),
        [vec!["a", "b", "c", "a"], vec!["c", "d", "c"]]
    );
    graph.get_mut("c").unwrap().clear();
    assert!(cycles(&graph).is_empty());
}

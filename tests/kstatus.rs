//! What Flux sees: kstatus (sigs.k8s.io/cli-utils' `status.Compute`, the library behind Flux's
//! health checks, run by the Go tool `kstatus` of testbed/gitops) over ModelImports as the API
//! server serves them, on the real control plane.
//!
//! First every condition reason, its status built by the controller's status builder and written
//! by server-side apply as the controller's field manager; then the controller binary itself
//! against the simulator: a new object before it looks, a queued, running, succeeded and failed
//! import, a missing Secret, a rejected key, a base model that cannot be imported, a job to adopt
//! that does not exist, a deletion blocked while the job runs, and a spec change it has not seen
//! yet.

mod samples;

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::Client;
use modelstudio_controller::config::MANAGER;
use modelstudio_controller::crd::{definition, ModelImport, FINALIZER};
use modelstudio_controller::import::resource::model_import_status;
use modelstudio_core::conditions::Meaning;
use modelstudio_core::import::reason::Code;
use modelstudio_simulator::{OutcomeRequest, RunningSimulator, SimulatorConfig};
use modelstudio_testbed::{
    api_key_secret, apply_crd, go_tool, run_bounded, ControllerCommand, ImportBuilder, ProcessBed,
};
use samples::{sample, status_of};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const NS: &str = "default";
/// The controller reconciles only the objects with this label; the others carry written
/// statuses it must leave alone.
const LIVE: (&str, &str) = ("kstatus", "live");
const WAIT: Duration = Duration::from_secs(30);

/// One line of the kstatus tool.
#[derive(Debug, Deserialize)]
struct KStatus {
    name: String,
    status: String,
    message: String,
}

/// kstatus of each object, in order.
fn kstatus(dir: &Path, objects: &[Value]) -> Vec<KStatus> {
    let tool = go_tool("gitops", "kstatus").unwrap_or_else(|e| panic!("{e}"));
    let input = dir.join("objects.json");
    let lines: Vec<String> = objects.iter().map(Value::to_string).collect();
    std::fs::write(&input, lines.join("\n")).expect("write the objects");
    let mut command = Command::new(tool);
    command.arg(&input);
    let out = run_bounded(command, Duration::from_secs(60));
    assert!(out.ok(), "kstatus failed: {}{}", out.stdout, out.stderr);
    let results: Vec<KStatus> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(results.len(), objects.len(), "{}", out.stdout);
    results
}

struct Server<'a> {
    rt: &'a Runtime,
    raw: Api<DynamicObject>,
    typed: Api<ModelImport>,
}

impl<'a> Server<'a> {
    fn new(rt: &'a Runtime, client: &Client) -> Self {
        Server {
            rt,
            raw: Api::namespaced_with(client.clone(), NS, &ApiResource::erase::<ModelImport>(&())),
            typed: Api::namespaced(client.clone(), NS),
        }
    }

    fn create(&self, object: Value) {
        let object: DynamicObject = serde_json::from_value(object).expect("a ModelImport");
        self.rt
            .block_on(self.raw.create(&PostParams::default(), &object))
            .expect("created");
    }

    /// The object as the API server serves it, as JSON.
    fn get(&self, name: &str) -> Value {
        let obj = self.rt.block_on(self.raw.get(name)).expect("read");
        serde_json::to_value(obj).expect("JSON")
    }

    fn delete(&self, name: &str) {
        self.rt
            .block_on(self.raw.delete(name, &DeleteParams::default()))
            .expect("deleted");
    }

    /// Waits until the Ready, Reconciling or Stalled condition that is True has `reason`.
    fn wait_for_reason(&self, name: &str, reason: &str, log: impl Fn() -> String) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let obj = self.get(name);
            if true_condition(&obj).is_some_and(|c| c["reason"] == reason) {
                return obj;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never reached {reason}: {}\n{}",
                obj["status"],
                log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn job_id(&self, name: &str) -> String {
        let obj = self.rt.block_on(self.typed.get(name)).expect("read");
        obj.status.and_then(|s| s.job_id).expect("a recorded job")
    }
}

/// The condition among Ready, Reconciling and Stalled that is True.
fn true_condition(obj: &Value) -> Option<&Value> {
    obj["status"]["conditions"].as_array()?.iter().find(|c| {
        ["Ready", "Reconciling", "Stalled"].contains(&c["type"].as_str().unwrap_or_default())
            && c["status"] == "True"
    })
}

fn import(name: &str) -> ImportBuilder {
    ImportBuilder::new(name).secret("dashscope")
}

/// The object, labelled for the controller to reconcile it.
fn live(import: ImportBuilder) -> Value {
    let mut value = import.json();
    value["metadata"]["labels"] = json!({ LIVE.0: LIVE.1 });
    value
}

/// What kstatus must say of a status with this reason, from the README's condition table.
fn expected_of(meaning: Meaning, message: &str) -> (&'static str, String) {
    match meaning {
        Meaning::Ready => ("Current", "Resource is Ready".into()),
        Meaning::Reconciling => ("InProgress", message.into()),
        Meaning::Stalled => ("Failed", message.into()),
    }
}

/// Every reason's status, written as the controller writes it (server-side apply of the whole
/// status as its field manager), read back from the API server.
fn every_reason_as_written(server: &Server<'_>, dir: &Path) -> usize {
    let mut objects = Vec::new();
    let mut expected = Vec::new();
    for code in Code::ALL {
        let s = sample(*code);
        let name = format!("written-{}", code.as_str().to_ascii_lowercase());
        let mut object = import(&name).json();
        object["metadata"]["finalizers"] = json!([FINALIZER]);
        server.create(object);
        let mut generation = 1;
        if s.deleting {
            // The API server marks it deleted (and bumps the generation); the finalizer keeps it.
            server.delete(&name);
            generation = server.get(&name)["metadata"]["generation"]
                .as_i64()
                .expect("a generation");
        }
        let status = model_import_status(&status_of(&s, generation));
        let apply = json!({
            "apiVersion": "modelstudio.io/v1alpha1",
            "kind": "ModelImport",
            "status": status,
        });
        server
            .rt
            .block_on(server.typed.patch_status(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&apply),
            ))
            .expect("the status is written");
        objects.push(server.get(&name));
        expected.push(if s.deleting {
            ("Terminating", "Resource scheduled for deletion".to_string())
        } else {
            expected_of(s.reason.meaning(), &s.reason.message())
        });
    }
    let results = kstatus(dir, &objects);
    for ((code, got), (status, message)) in Code::ALL.iter().zip(&results).zip(&expected) {
        assert_eq!(
            (got.status.as_str(), &got.message),
            (*status, message),
            "{code:?} ({})",
            got.name
        );
    }
    results.len()
}

#[test]
fn flux_reads_every_state_the_controller_writes() {
    let bed = ProcessBed::start("kstatus", NS);
    let (rt, client, dir) = (&bed.rt, &bed.client, &bed.dir.0);
    rt.block_on(apply_crd(client, &definition()))
        .expect("the CRD");
    let server = Server::new(rt, client);
    let started = Instant::now();

    let written = every_reason_as_written(&server, dir);
    println!(
        "{:?}: {written} written statuses read as the condition table says",
        bed.cluster.flavor()
    );

    // Jobs stay queued 3 s, then run until the test ends them.
    let sim = rt
        .block_on(RunningSimulator::start(SimulatorConfig {
            pending_duration: Duration::from_secs(3),
            running_duration: Duration::from_secs(600),
            api_keys: vec!["sk-kstatus".into()],
            ..SimulatorConfig::default()
        }))
        .expect("the simulator");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), NS);
    for (name, key) in [
        ("dashscope", "sk-kstatus"),
        ("dashscope-rotated", "sk-kstatus"),
        ("revoked", "sk-revoked"),
    ] {
        rt.block_on(secrets.create(
            &PostParams::default(),
            &serde_json::from_value(api_key_secret(name, key)).unwrap(),
        ))
        .expect("the Secret");
    }
    server.create(live(import("importing")));
    server.create(live(import("failing").spec(
        "storage",
        json!({"bucketName": "bucket", "objectKey": "models/simulate-failure/"}),
    )));
    server.create(live(import("blocked-delete")));
    server.create(live(
        import("no-secret").spec("apiKeySecretRef", json!({"name": "missing"})),
    ));
    server.create(live(
        import("bad-base-model").spec("baseModel", json!("qwen-nope")),
    ));
    server.create(live(import("revoked-key").secret("revoked")));
    server.create(live(
        import("adopt-missing").spec("jobId", json!("ft-does-not-exist")),
    ));
    let fresh = server.get("importing");

    let controller = ControllerCommand::new(BIN, &bed.kubeconfig, &sim.base_url())
        .flags(&["--selector", &format!("{}={}", LIVE.0, LIVE.1)]);
    let mut process = controller.spawn("controller", dir).expect("the controller");
    let log = || process_log(dir);

    let mut seen: Vec<(&str, Value)> = vec![("fresh", fresh)];
    seen.push((
        "pending",
        server.wait_for_reason("importing", "JobPending", log),
    ));
    seen.push((
        "no-secret",
        server.wait_for_reason("no-secret", "CredentialsMissing", log),
    ));
    seen.push((
        "bad-base-model",
        server.wait_for_reason("bad-base-model", "BaseModelNotFound", log),
    ));
    seen.push((
        "revoked-key",
        server.wait_for_reason("revoked-key", "InvalidApiKey", log),
    ));
    seen.push((
        "adopt-missing",
        server.wait_for_reason("adopt-missing", "JobNotFound", log),
    ));
    seen.push((
        "running",
        server.wait_for_reason("importing", "JobRunning", log),
    ));
    server.wait_for_reason("blocked-delete", "JobRunning", log);
    server.delete("blocked-delete");
    seen.push((
        "deleting",
        server.wait_for_reason("blocked-delete", "DeletionBlocked", log),
    ));

    let finish = |name: &str, status: Option<&str>| {
        sim.simulator
            .set_outcome(
                &server.job_id(name),
                OutcomeRequest {
                    status: status.map(str::to_string),
                    error_code: None,
                    finish_now: true,
                },
            )
            .expect("the job ends");
    };
    finish("importing", Some("SUCCESSED"));
    server.wait_for_reason("failing", "JobRunning", log);
    finish("failing", None);
    seen.push((
        "succeeded",
        server.wait_for_reason("importing", "JobSucceeded", log),
    ));
    seen.push((
        "failed",
        server.wait_for_reason("failing", "JobFailed", log),
    ));

    // A spec change the controller has not seen: stopped, then the Secret moves.
    process.stop(Duration::from_secs(10));
    let moved =
        json!({"spec": {"apiKeySecretRef": {"name": "dashscope-rotated", "key": "api-key"}}});
    rt.block_on(
        server
            .typed
            .patch("importing", &PatchParams::default(), &Patch::Merge(&moved)),
    )
    .expect("the spec changes");
    seen.push(("spec-changed", server.get("importing")));

    let objects: Vec<Value> = seen.iter().map(|(_, o)| o.clone()).collect();
    let results = kstatus(dir, &objects);
    let mut table = Vec::new();
    for ((state, obj), got) in seen.iter().zip(&results) {
        let condition = true_condition(obj);
        let message = condition
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default();
        let (status, want): (&str, String) = match *state {
            "fresh" => (
                "InProgress",
                "ModelImport generation is 1, but latest observed generation is -1".into(),
            ),
            "spec-changed" => (
                "InProgress",
                "ModelImport generation is 2, but latest observed generation is 1".into(),
            ),
            "deleting" => ("Terminating", "Resource scheduled for deletion".into()),
            "succeeded" => ("Current", "Resource is Ready".into()),
            "failed" | "bad-base-model" | "adopt-missing" => ("Failed", message.into()),
            _ => ("InProgress", message.into()),
        };
        assert_eq!(
            (got.status.as_str(), &got.message),
            (status, &want),
            "{state}: {}",
            obj["status"]
        );
        let reason = condition.and_then(|c| c["reason"].as_str()).unwrap_or("-");
        table.push(format!("{state:>15}: {reason} -> {status}"));
    }

    // Back, the controller observes the new generation and the import reads Current again.
    let mut process = controller
        .spawn("controller-again", dir)
        .expect("the controller");
    let deadline = Instant::now() + WAIT;
    loop {
        let obj = server.get("importing");
        let got = &kstatus(dir, std::slice::from_ref(&obj))[0];
        if got.status == "Current" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the changed import never read Current again: {got:?}\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The blocked deletion ends once its job has finished, and the object goes.
    finish("blocked-delete", Some("SUCCESSED"));
    let deadline = Instant::now() + WAIT;
    while rt
        .block_on(server.raw.get_opt("blocked-delete"))
        .ok()
        .flatten()
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "the deleted import stayed\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    process.stop(Duration::from_secs(10));
    println!("{}", table.join("\n"));
    println!(
        "{:?}: every state read as documented in {:?}",
        bed.cluster.flavor(),
        started.elapsed()
    );
}

fn process_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("controller.log")).unwrap_or_default()
}

/// A ModelDeployment of every reason, with the conditions the deployment reconcile writes: what
/// Flux shows for it is the README's condition table.
#[test]
fn flux_reads_every_deployment_reason() {
    use modelstudio_core::deployment::reason::DeploymentCode;
    use samples::deployments::{deployment_case, deployment_sample};
    let dir = modelstudio_testbed::TempDir::new("kstatus-deployments");
    let mut objects = Vec::new();
    let mut expected = Vec::new();
    for code in DeploymentCode::ALL {
        let s = deployment_sample(*code);
        let name = code.as_str().to_ascii_lowercase();
        objects.push(serde_json::to_value(deployment_case(&name, &s)).expect("JSON"));
        expected.push(if s.deleting {
            ("Terminating", "Resource scheduled for deletion".to_string())
        } else {
            expected_of(s.reason.meaning(), &s.reason.message())
        });
    }
    let results = kstatus(&dir.0, &objects);
    for ((code, got), (status, message)) in DeploymentCode::ALL.iter().zip(&results).zip(&expected)
    {
        assert_eq!(
            (got.status.as_str(), &got.message),
            (*status, message),
            "{code:?} ({})",
            got.name
        );
    }
}

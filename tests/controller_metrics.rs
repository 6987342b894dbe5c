//! The controller binary's /metrics as Prometheus scrapes it, with two replicas under leader
//! election: the ModelImport gauges (by phase, by reason, blocked deletions and the age of the
//! oldest), time to Ready, deletion duration, the quota wait by class, the leader gauge and the
//! build info. On the real control plane; jobs run until the test lets them finish.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use modelstudio_controller::crd::{definition, ModelImport};
use modelstudio_simulator::{OutcomeRequest, RunningSimulator, SimulatorConfig};
use modelstudio_testbed::metrics::{samples, scrape, sum, Sample};
use modelstudio_testbed::{
    api_key_secret, apply_crd, free_port, ControllerCommand, ImportBuilder, Proc, ProcessBed,
};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_modelstudio-controller");
const NS: &str = "default";
const KEY: &str = "sk-metrics-test-key";

fn ready_reason(import: &ModelImport) -> Option<(String, String)> {
    let ready = import
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((ready.status.clone(), ready.reason.clone()))
}

/// Polls `check` every 100 ms until it gives a value, for at most `limit`.
fn until<T>(
    what: &str,
    limit: Duration,
    logs: &[&Proc],
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = logs.iter().map(|p| p.log()).collect();
            panic!("{what}: not within {limit:?}\n{}", logs.join("\n----\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn value(all: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    sum(all, name, labels)
}

#[test]
fn the_controller_exports_imports_deletions_the_quota_the_leader_and_its_version() {
    let bed = ProcessBed::start("controller-metrics", NS);
    let (rt, client) = (&bed.rt, &bed.client);
    rt.block_on(apply_crd(client, &definition()))
        .expect("the CRD");
    let sim = rt
        .block_on(RunningSimulator::start(SimulatorConfig {
            pending_duration: Duration::from_millis(200),
            running_duration: Duration::from_secs(600),
            ..SimulatorConfig::default()
        }))
        .expect("the simulator");
    let finish = |job_id: &str| {
        sim.simulator
            .set_outcome(
                job_id,
                OutcomeRequest {
                    status: Some("SUCCESSED".into()),
                    error_code: None,
                    finish_now: true,
                },
            )
            .expect("the job finishes");
    };
    let scraped = |addr: &str| rt.block_on(scrape(addr)).ok();

    // Two replicas; the first one started takes the Lease.
    let addrs: Vec<String> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port().expect("a free port")))
        .collect();
    let replica = |name: &str, addr: &str| {
        ControllerCommand::new(BIN, &bed.kubeconfig, &sim.base_url())
            .flags(&[
                "--metrics-addr",
                addr,
                "--leader-election",
                "--lease-namespace",
                NS,
                "--lease-name",
                "metrics-test",
            ])
            .env("POD_NAME", name)
            .spawn(name, &bed.dir.0)
            .expect("the controller starts")
    };
    let mut leader = replica("replica-a", &addrs[0]);
    until(
        "replica-a leads",
        Duration::from_secs(30),
        &[&leader],
        || {
            let all = samples(&scraped(&addrs[0])?);
            (value(&all, "modelstudio_leader", &[]) == 1.0).then_some(())
        },
    );
    let mut standby = replica("replica-b", &addrs[1]);
    let standby_text = until(
        "replica-b serves",
        Duration::from_secs(30),
        &[&standby],
        || scraped(&addrs[1]),
    );

    let imports: Api<ModelImport> = Api::namespaced(client.clone(), NS);
    rt.block_on(async {
        let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
        let secret = serde_json::from_value(api_key_secret("dashscope", KEY)).unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
        for (name, secret) in [
            ("ready", "dashscope"),
            ("blocked", "dashscope"),
            ("no-key", "absent"),
        ] {
            let import: ModelImport = ImportBuilder::new(name).secret(secret).build();
            imports
                .create(&PostParams::default(), &import)
                .await
                .unwrap();
        }
    });
    let get = |name: &str| rt.block_on(imports.get_opt(name)).expect("a read");
    let job_of = |name: &str| {
        until(
            &format!("{name} has a job"),
            Duration::from_secs(30),
            &[&leader],
            || get(name)?.status?.job_id,
        )
    };
    let ready_job = job_of("ready");
    let blocked_job = job_of("blocked");
    until(
        "no-key lacks credentials",
        Duration::from_secs(30),
        &[&leader],
        || {
            let reason = ready_reason(&get("no-key")?)?.1;
            (reason == "CredentialsMissing").then_some(())
        },
    );

    // One import becomes Ready; the other is deleted while its job runs.
    finish(&ready_job);
    until(
        "ready is Ready",
        Duration::from_secs(30),
        &[&leader],
        || (ready_reason(&get("ready")?)?.0 == "True").then_some(()),
    );
    rt.block_on(imports.delete("blocked", &DeleteParams::default()))
        .expect("the delete");
    until(
        "blocked is blocked",
        Duration::from_secs(30),
        &[&leader],
        || (ready_reason(&get("blocked")?)?.1 == "DeletionBlocked").then_some(()),
    );

    // The cache catches up with the last status write within a moment.
    let all = until(
        "the gauges show it",
        Duration::from_secs(10),
        &[&leader],
        || {
            let all = samples(&scraped(&addrs[0])?);
            let blocked = value(
                &all,
                "modelstudio_deletions_blocked",
                &[("reason", "DeletionBlocked")],
            );
            (blocked == 1.0).then_some(all)
        },
    );
    let imports_in = |phase| value(&all, "modelstudio_imports", &[("phase", phase)]);
    assert_eq!(value(&all, "modelstudio_imports", &[]), 3.0);
    assert_eq!(imports_in("Succeeded"), 1.0);
    assert_eq!(imports_in("Deleting"), 1.0);
    assert_eq!(imports_in("Pending"), 1.0, "the import without a key");
    let by_reason = |reason, condition| {
        value(
            &all,
            "modelstudio_imports_by_reason",
            &[("reason", reason), ("condition", condition)],
        )
    };
    assert_eq!(by_reason("JobSucceeded", "Ready"), 1.0);
    assert_eq!(by_reason("CredentialsMissing", "Reconciling"), 1.0);
    assert_eq!(by_reason("DeletionBlocked", "Reconciling"), 1.0);
    assert_eq!(
        by_reason("JobFailed", "Stalled"),
        0.0,
        "zeros are exported too"
    );
    let oldest = value(&all, "modelstudio_deletion_blocked_oldest_seconds", &[]);
    assert!(
        oldest > 0.0 && oldest < 60.0,
        "oldest blocked deletion: {oldest}"
    );
    assert_eq!(
        value(&all, "modelstudio_time_to_ready_seconds_count", &[]),
        1.0
    );
    let to_ready = value(&all, "modelstudio_time_to_ready_seconds_sum", &[]);
    assert!(
        to_ready > 0.0 && to_ready < 60.0,
        "time to Ready: {to_ready}"
    );
    // Two creates and at least one refused delete took a token among the mutations.
    let waits = |priority| {
        value(
            &all,
            "modelstudio_api_rate_limit_wait_seconds_count",
            &[("priority", priority)],
        )
    };
    assert!(waits("mutation") >= 3.0, "mutations: {}", waits("mutation"));
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value(&all, "modelstudio_build_info", &version), 1.0);
    assert_eq!(value(&all, "modelstudio_leader", &[]), 1.0);

    // The standby does not reconcile: no cache to count, and it says it does not lead.
    let standby_all = samples(&scraped(&addrs[1]).expect("the standby's metrics"));
    assert_eq!(value(&standby_all, "modelstudio_leader", &[]), 0.0);
    assert_eq!(value(&standby_all, "modelstudio_build_info", &version), 1.0);
    assert!(
        !standby_all
            .iter()
            .any(|s| s.name.starts_with("modelstudio_imports")),
        "{standby_text}"
    );

    // The job finishes: the deletion goes through and is timed.
    finish(&blocked_job);
    until(
        "blocked is gone",
        Duration::from_secs(30),
        &[&leader],
        || get("blocked").is_none().then_some(()),
    );
    let all = until(
        "the deletion is counted",
        Duration::from_secs(10),
        &[&leader],
        || {
            let all = samples(&scraped(&addrs[0])?);
            let imports = value(&all, "modelstudio_imports", &[]);
            (imports == 2.0).then_some(all)
        },
    );
    let deletions = [("policy", "Delete")];
    assert_eq!(
        value(
            &all,
            "modelstudio_deletion_duration_seconds_count",
            &deletions
        ),
        1.0
    );
    let took = value(
        &all,
        "modelstudio_deletion_duration_seconds_sum",
        &deletions,
    );
    assert!(took > 0.0 && took < 60.0, "deletion took {took}");
    assert_eq!(value(&all, "modelstudio_deletions_blocked", &[]), 0.0);
    assert_eq!(
        value(&all, "modelstudio_deletion_blocked_oldest_seconds", &[]),
        0.0
    );

    eprintln!(
        "{:?}: time to Ready {to_ready:.1} s, blocked deletion {oldest:.1} s old when scraped, deletion took {took:.1} s",
        bed.cluster.flavor()
    );
    let text = scraped(&addrs[0]).expect("the metrics");
    assert!(!text.contains(KEY), "the API key in /metrics");
    standby.stop(Duration::from_secs(5));
    leader.stop(Duration::from_secs(5));
}

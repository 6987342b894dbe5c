//! The reqwest client's deployment API against the simulator over real HTTP (127.0.0.1, a free
//! port): the lifecycle, Conflict, scaling, limits, deletion, bad input, faults and the layers.
//! Every wait is bounded in iterations and time.

use modelstudio_controller::metrics::Metrics;
use modelstudio_controller::modelstudio::{
    ApiError, ApiKey, Deployment, DeploymentState, Deployments, HttpClient, HttpClientConfig,
    ImportJobs, JobState, Limits, Metered, NewDeployment, NewJob, PageRequest, Plan, PtuCapacity,
    RateLimited, Source, Storage, WeightType,
};
use modelstudio_simulator::{
    DeploymentStateRequest, Faults, OutcomeRequest, RunningSimulator, SimulatorConfig,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

const KEY: &str = "sk-deployment-client-test";

fn quick() -> SimulatorConfig {
    SimulatorConfig {
        pending_duration: Duration::from_millis(50),
        running_duration: Duration::from_millis(50),
        deployment_pending_duration: Duration::from_millis(300),
        deployment_updating_duration: Duration::from_millis(300),
        deployment_deleting_duration: Duration::from_millis(300),
        api_keys: vec![KEY.into()],
        ..Default::default()
    }
}

async fn simulator(config: SimulatorConfig) -> (RunningSimulator, HttpClient) {
    let sim = RunningSimulator::start(config)
        .await
        .expect("simulator starts");
    let client = HttpClient::new(HttpClientConfig {
        endpoint: sim.base_url(),
        timeout: Duration::from_secs(5),
        user_agent: "deployment-client-test".into(),
    })
    .unwrap();
    (sim, client)
}

fn key() -> ApiKey {
    ApiKey::new(KEY).unwrap()
}

/// A deployment of a configured model (`qwen-turbo`, base capacity 2).
fn turbo(plan: Plan, capacity: u32) -> NewDeployment {
    NewDeployment {
        model_name: "qwen-turbo".into(),
        capacity: Some(capacity),
        deploy_spec: (plan == Plan::Mu).then(|| "MU1".into()),
        plan: Some(plan),
        ..Default::default()
    }
}

/// Polls until the deployment reaches `want` (or 10 s / 200 polls pass); returns the last answer.
async fn wait_for(
    client: &HttpClient,
    deployed_model: &str,
    want: DeploymentState,
) -> Result<Deployment, ApiError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = Deployments::get(client, &key(), deployed_model).await;
    for _ in 0..200 {
        if matches!(&last, Ok(d) if d.status == want) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        last = Deployments::get(client, &key(), deployed_model).await;
    }
    last
}

/// Polls until GET answers NotFound (bounded likewise); returns the last error.
async fn wait_gone(client: &HttpClient, deployed_model: &str) -> Option<ApiError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..200 {
        match Deployments::get(client, &key(), deployed_model).await {
            Err(e @ ApiError::NotFound(_)) => return Some(e),
            _ if Instant::now() > deadline => return None,
            _ => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    None
}

fn id_of(sim: &RunningSimulator, deployed_model: &str) -> String {
    sim.simulator
        .deployments()
        .into_iter()
        .rev()
        .find(|d| d.deployed_model == deployed_model)
        .expect("the simulator has the deployment")
        .id
}

#[tokio::test]
async fn an_imported_model_deploys_pending_then_running_at_its_capacity() {
    let (sim, client) = simulator(quick()).await;
    // Both traits are in scope: the import's calls are named by trait.
    let job = ImportJobs::create(
        &client,
        &key(),
        &NewJob {
            base_model: "qwen3-8b".into(),
            display_name: None,
            source: Source::Oss,
            weight_type: WeightType::Lora,
            storage: Storage {
                bucket_name: "b".into(),
                object_key: "models/a/".into(),
            },
        },
    )
    .await
    .unwrap();
    let model_name = job.model_name.clone().unwrap();
    let request = NewDeployment {
        model_name: model_name.clone(),
        capacity: Some(1),
        plan: Some(Plan::Lora),
        name: Some("my-lora".into()),
        ..Default::default()
    };
    // Not deployable before the import succeeded.
    let e = Deployments::create(&client, &key(), &request)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");
    assert!(e.to_string().contains("not found"), "{e}");
    sim.simulator
        .set_outcome(
            &job.id,
            OutcomeRequest {
                finish_now: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        ImportJobs::get(&client, &key(), &job.id)
            .await
            .unwrap()
            .state,
        JobState::Succeeded
    );

    let started = Instant::now();
    let d = Deployments::create(&client, &key(), &request)
        .await
        .unwrap();
    assert_eq!(d.deployed_model, model_name, "no suffix: the model's name");
    assert_eq!(d.status, DeploymentState::Pending);
    assert_eq!(d.status_text, "PENDING");
    assert_eq!((d.capacity, d.ready_capacity), (Some(1), Some(0)));
    assert_eq!(d.base_model.as_deref(), Some("qwen3-8b"));
    assert_eq!(d.name.as_deref(), Some("my-lora"));
    assert_eq!(d.plan, Some(Plan::Lora));
    let created = d.gmt_create.clone().unwrap();
    assert_eq!(created.len(), "2025-06-17T11:00:38.680".len(), "{created}");
    assert!(!d.is_ready_at(1));

    let running = wait_for(&client, &model_name, DeploymentState::Running)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(running.ready_capacity, Some(1));
    assert!(running.is_ready_at(1));

    let page = Deployments::list(&client, &key(), &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].deployed_model, model_name);
    let stats = sim.simulator.stats();
    assert_eq!(stats.deployment_create.total, 2);
    assert_eq!(stats.deployment_create.code("NotFound"), 1);
    assert_eq!(stats.deployment_list.total, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_same_model_again_conflicts_until_it_has_a_new_suffix() {
    let (sim, client) = simulator(quick()).await;
    Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap();
    let e = Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Conflict(_)), "{e}");
    let remote = e.remote().unwrap();
    assert_eq!(
        (remote.code.as_str(), remote.http_status),
        ("Conflict", 409)
    );
    assert_eq!(
        remote.message,
        "Deployed model qwen-turbo already exists, please specify a suffix."
    );
    assert!(e.create_certainly_not_applied() && !e.is_transient());
    let again = NewDeployment {
        suffix: Some("v2".into()),
        ..turbo(Plan::Lora, 2)
    };
    let d = Deployments::create(&client, &key(), &again).await.unwrap();
    assert_eq!(d.deployed_model, "qwen-turbo-v2");
    assert_eq!(d.deployed_model, again.deployed_model());
    // Another workspace has its own names.
    let other = ApiKey::new("sk-other-workspace").unwrap();
    let (sim2, client2) = simulator(SimulatorConfig {
        api_keys: vec![],
        ..quick()
    })
    .await;
    Deployments::create(&client2, &other, &turbo(Plan::Lora, 2))
        .await
        .unwrap();
    let e = Deployments::get(&client2, &ApiKey::new("sk-third").unwrap(), "qwen-turbo")
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");
    let stats = sim.simulator.stats();
    assert_eq!(
        (
            stats.deployment_create.total,
            stats.deployment_create.status(409)
        ),
        (3, 1)
    );
    sim.shutdown().await;
    sim2.shutdown().await;
}

#[tokio::test]
async fn scaling_goes_through_updating_to_the_new_capacity() {
    let (sim, client) = simulator(quick()).await;
    let d = Deployments::create(&client, &key(), &turbo(Plan::Mu, 2))
        .await
        .unwrap();
    let name = d.deployed_model;
    // Still PENDING: not now.
    let e = client.scale(&key(), &name, 4).await.unwrap_err();
    assert!(matches!(e, ApiError::OperationDenied(_)), "{e}");
    assert!(e.to_string().contains("PENDING"), "{e}");
    wait_for(&client, &name, DeploymentState::Running)
        .await
        .unwrap();
    let e = client.scale(&key(), &name, 3).await.unwrap_err();
    assert!(matches!(e, ApiError::InvalidParameter(_)), "{e}");
    assert!(
        e.to_string()
            .contains("multiple of the model's base_capacity 2"),
        "{e}"
    );
    let e = client.scale(&key(), &name, 1000).await.unwrap_err();
    assert!(e.to_string().contains("less than 1000"), "{e}");

    let updating = client.scale(&key(), &name, 4).await.unwrap();
    assert_eq!(updating.status, DeploymentState::Updating);
    assert_eq!(
        (updating.capacity, updating.ready_capacity),
        (Some(4), Some(2)),
        "it serves its former capacity meanwhile"
    );
    assert!(!updating.is_ready_at(4));
    let done = wait_for(&client, &name, DeploymentState::Running)
        .await
        .unwrap();
    assert!(done.is_ready_at(4), "{done:?}");
    let e = client.scale(&key(), "nope", 2).await.unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");
    assert_eq!(sim.simulator.stats().deployment_scale.total, 5);
    assert_eq!(sim.simulator.stats().deployment_scale.status(200), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_lora_deployment_cannot_be_scaled() {
    let (sim, client) = simulator(quick()).await;
    let d = Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap();
    sim.simulator
        .set_deployment_state(
            &id_of(&sim, &d.deployed_model),
            DeploymentStateRequest {
                finish_now: true,
                ..Default::default()
            },
        )
        .unwrap();
    let e = client
        .scale(&key(), &d.deployed_model, 4)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Unsupported(_)), "{e}");
    assert!(!e.is_transient() && e.create_certainly_not_applied());
    assert_eq!(e.remote().unwrap().code, "UnsupportedOperation");
    assert!(e.to_string().contains("plan lora"), "{e}");
    assert_eq!(
        sim.simulator
            .stats()
            .deployment_scale
            .code("UnsupportedOperation"),
        1
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn limits_change_at_once_and_an_empty_update_is_refused() {
    let (sim, client) = simulator(quick()).await;
    let mu = Deployments::create(&client, &key(), &turbo(Plan::Mu, 2))
        .await
        .unwrap();
    let lora = Deployments::create(
        &client,
        &key(),
        &NewDeployment {
            suffix: Some("l".into()),
            ..turbo(Plan::Lora, 2)
        },
    )
    .await
    .unwrap();
    for d in [&mu, &lora] {
        sim.simulator
            .set_deployment_state(
                &id_of(&sim, &d.deployed_model),
                DeploymentStateRequest {
                    finish_now: true,
                    ..Default::default()
                },
            )
            .unwrap();
    }
    // The client cannot even build an empty update.
    assert_eq!(Limits::new(None, None), None);
    let d = client
        .update_limits(
            &key(),
            &mu.deployed_model,
            &Limits::new(Some(60), None).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!((d.rpm_limit, d.tpm_limit), (Some(60), None));
    assert_eq!(d.status, DeploymentState::Running);
    let d = client
        .update_limits(
            &key(),
            &mu.deployed_model,
            &Limits::new(None, Some(5000)).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!((d.rpm_limit, d.tpm_limit), (Some(60), Some(5000)));
    let e = client
        .update_limits(
            &key(),
            &lora.deployed_model,
            &Limits::new(Some(1), None).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("plan mu"), "{e}");

    // What the simulator says to a client that sends an empty one anyway.
    let url = format!(
        "{}/api/v1/deployments/{}/update",
        sim.base_url(),
        mu.deployed_model
    );
    let answer = reqwest::Client::new()
        .put(url)
        .bearer_auth(KEY)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "InvalidParameter");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("at least one of rpm_limit and tpm_limit"),
        "{body}"
    );
    assert_eq!(sim.simulator.stats().deployment_update.total, 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn delete_is_deleting_then_not_found() {
    let (sim, client) = simulator(quick()).await;
    let d = Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap();
    wait_for(&client, &d.deployed_model, DeploymentState::Running)
        .await
        .unwrap();
    // The documentation's example deletes a live deployment: so does the simulator by default.
    let deleting = Deployments::delete(&client, &key(), &d.deployed_model)
        .await
        .unwrap();
    assert_eq!(deleting, DeploymentState::Deleting);
    let again = Deployments::delete(&client, &key(), &d.deployed_model)
        .await
        .unwrap();
    assert_eq!(again, DeploymentState::Deleting, "a repeat is harmless");
    let gone = wait_gone(&client, &d.deployed_model).await;
    assert!(gone.is_some(), "still found after 10 s");
    let e = Deployments::delete(&client, &key(), &d.deployed_model)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");
    // The name is free again.
    Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap();
    let stats = sim.simulator.stats();
    assert_eq!(stats.deployment_delete.status(200), 2);
    assert_eq!(stats.deployment_delete.code("NotFound"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn the_clis_rule_deletes_only_stopped_or_failed_deployments() {
    let (sim, client) = simulator(SimulatorConfig {
        deployment_delete_rule: "stopped-or-failed".into(),
        operation_denied_status: 409,
        ..quick()
    })
    .await;
    let d = Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap();
    let e = Deployments::delete(&client, &key(), &d.deployed_model)
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::OperationDenied(_)), "{e}");
    assert_eq!(e.remote().unwrap().http_status, 409);
    assert!(e.to_string().contains("STOPPED or FAILED"), "{e}");
    sim.simulator
        .set_deployment_state(
            &id_of(&sim, &d.deployed_model),
            DeploymentStateRequest {
                status: Some("STOPPED".into()),
                finish_now: false,
            },
        )
        .unwrap();
    let stopped = Deployments::get(&client, &key(), &d.deployed_model)
        .await
        .unwrap();
    assert_eq!(
        (stopped.status, stopped.ready_capacity),
        (DeploymentState::Stopped, Some(0))
    );
    let deleting = Deployments::delete(&client, &key(), &d.deployed_model)
        .await
        .unwrap();
    assert_eq!(deleting, DeploymentState::Deleting);
    sim.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_what_to_fix() {
    let (sim, client) = simulator(quick()).await;
    let cases = [
        (turbo(Plan::Lora, 1000), "less than 1000"),
        (
            turbo(Plan::Mu, 3),
            "multiple of the model's base_capacity 2",
        ),
        (
            NewDeployment {
                deploy_spec: None,
                ..turbo(Plan::Mu, 2)
            },
            "deploy_spec",
        ),
        (
            NewDeployment {
                capacity: None,
                ..turbo(Plan::Ptu, 2)
            },
            "ptu_capacity",
        ),
        (
            NewDeployment {
                capacity: None,
                ..turbo(Plan::Lora, 2)
            },
            "capacity",
        ),
        (
            NewDeployment {
                suffix: Some("123456789".into()),
                ..turbo(Plan::Lora, 2)
            },
            "at most 8",
        ),
        (
            NewDeployment {
                plan: Some(Plan::Unknown("gold".into())),
                ..turbo(Plan::Lora, 2)
            },
            "ptu, mu, lora, cu",
        ),
    ];
    for (request, words) in &cases {
        let e = Deployments::create(&client, &key(), request)
            .await
            .unwrap_err();
        assert!(matches!(e, ApiError::InvalidParameter(_)), "{e}");
        assert!(e.to_string().contains(words), "{e} lacks {words}");
        assert!(e.request_id().is_some());
    }
    let ptu = NewDeployment {
        capacity: None,
        ptu_capacity: Some(PtuCapacity {
            input_tpm: 10_000,
            output_tpm: 1_000,
        }),
        ..turbo(Plan::Ptu, 0)
    };
    Deployments::create(&client, &key(), &ptu).await.unwrap();
    let e = Deployments::create(
        &client,
        &key(),
        &NewDeployment {
            model_name: "no-such-model".into(),
            ..turbo(Plan::Lora, 1)
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");
    assert!(
        e.to_string().contains("Model: no-such-model not found!"),
        "{e}"
    );
    let stats = sim.simulator.stats();
    assert_eq!(
        stats.deployment_create.code("InvalidParameter"),
        cases.len() as u64
    );
    assert_eq!(stats.deployment_create.status(200), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn faults_are_typed_by_code_and_the_key_never_shows() {
    let (sim, client) = simulator(quick()).await;
    sim.simulator.set_faults(Faults {
        throttle_rate: 1.0,
        retry_after_seconds: 4,
        ..Default::default()
    });
    let e = client.scale(&key(), "x", 2).await.unwrap_err();
    assert!(matches!(e, ApiError::Throttled { .. }), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(4)));
    assert!(e.is_transient());
    sim.simulator.set_faults(Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let e = Deployments::list(&client, &key(), &PageRequest::default())
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Server(_)), "{e}");
    assert!(e.is_transient());

    // A create whose answer is lost made its deployment: the retry meets Conflict, and the
    // listing finds it.
    sim.simulator.set_faults(Faults {
        lost_create_rate: 1.0,
        ..Default::default()
    });
    let e = Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap_err();
    assert!(!e.create_certainly_not_applied(), "{e}");
    sim.simulator.set_faults(Faults::default());
    let e = Deployments::create(&client, &key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::Conflict(_)), "{e}");
    let page = Deployments::list(
        &client,
        &key(),
        &PageRequest {
            page_no: Some(1),
            page_size: Some(100),
        },
    )
    .await
    .unwrap();
    assert_eq!(page.items[0].deployed_model, "qwen-turbo");
    assert!(sim.simulator.deployments()[0].lost_answer);
    assert_eq!(sim.simulator.stats().lost_creates, 1);

    let canary = "sk-canary-deployment-key-0001";
    let wrong = ApiKey::new(canary).unwrap();
    for e in [
        Deployments::get(&client, &wrong, "qwen-turbo")
            .await
            .unwrap_err(),
        Deployments::create(&client, &wrong, &turbo(Plan::Lora, 2))
            .await
            .unwrap_err(),
        client
            .update_limits(&wrong, "qwen-turbo", &Limits::new(Some(1), None).unwrap())
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, ApiError::InvalidApiKey(_)), "{e}");
        assert!(
            !format!("{e} {e:?}").contains("sk-canary"),
            "the key leaked"
        );
    }
    let records = serde_json::to_string(&sim.simulator.requests()).unwrap();
    assert!(!records.contains("sk-canary") && !records.contains(KEY));
    sim.shutdown().await;
}

/// The layers wrap deployments as they wrap imports: the metrics count each deployment call
/// under its own operation, and both APIs draw on one quota.
#[tokio::test]
async fn the_layers_count_and_pace_deployment_calls() {
    let (sim, client) = simulator(quick()).await;
    let metrics = Arc::new(Metrics::default());
    let layered = Arc::new(RateLimited::new(
        Metered::new(client, metrics.clone()),
        20.0,
        2,
        metrics.clone(),
    ));
    let deployments: Arc<dyn Deployments> = layered.clone();
    let imports: Arc<dyn ImportJobs> = layered;
    let started = Instant::now();
    deployments
        .create(&key(), &turbo(Plan::Lora, 2))
        .await
        .unwrap();
    deployments.get(&key(), "qwen-turbo").await.unwrap();
    // Plan lora cannot scale, whatever its state.
    assert!(matches!(
        deployments.scale(&key(), "qwen-turbo", 4).await,
        Err(ApiError::Unsupported(_))
    ));
    assert!(imports.get(&key(), "no-such-job").await.is_err());
    // Four calls on a bucket of 2 at 20 a second: at least 2 tokens' wait.
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "{:?}",
        started.elapsed()
    );
    let text = metrics.encode();
    for series in [
        r#"operation="deployment_create",result="ok""#,
        r#"operation="deployment_get",result="ok""#,
        r#"operation="deployment_scale",result="Unsupported""#,
        r#"operation="get",result="NotFound""#,
    ] {
        assert!(text.contains(series), "{series} missing from\n{text}");
    }
    assert!(!text.contains(KEY));
    sim.shutdown().await;
}

/// The routes the client does not call, over raw HTTP: the deployable models (configured ones,
/// then the workspace's SUCCESSED imports) and the control endpoints.
#[tokio::test]
async fn deployable_models_and_the_control_endpoints() {
    let (sim, client) = simulator(quick()).await;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", sim.base_url()))
            .bearer_auth(KEY)
            .send()
    };
    let body: serde_json::Value = get("/api/v1/deployments/models")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["output"]["total"], 3, "{body}");
    assert_eq!(body["output"]["page_size"], 50);
    assert_eq!(body["output"]["models"][0]["model_name"], "qwen-plus");
    assert_eq!(body["output"]["models"][0]["base_capacity"], 8);
    assert!(body.get("code").is_none(), "no code on success: {body}");

    let job = ImportJobs::create(
        &client,
        &key(),
        &NewJob {
            base_model: "qwen3-8b".into(),
            display_name: None,
            source: Source::Oss,
            weight_type: WeightType::Lora,
            storage: Storage {
                bucket_name: "b".into(),
                object_key: "models/m/".into(),
            },
        },
    )
    .await
    .unwrap();
    sim.simulator
        .set_outcome(
            &job.id,
            OutcomeRequest {
                finish_now: true,
                ..Default::default()
            },
        )
        .unwrap();
    let body: serde_json::Value = get("/api/v1/deployments/models?model_source=custom")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["output"]["total"], 1, "{body}");
    assert_eq!(
        body["output"]["models"][0]["model_name"].as_str(),
        job.model_name.as_deref()
    );
    assert_eq!(body["output"]["models"][0]["base_capacity"], 1);
    let answer = get("/api/v1/deployments/models?page_size=201")
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["code"], "InvalidParameter");
    assert!(
        body["message"].as_str().unwrap().contains("page_size"),
        "{body}"
    );

    // The control API: records, and forcing a state over HTTP.
    let d = Deployments::create(&client, &key(), &turbo(Plan::Mu, 2))
        .await
        .unwrap();
    let records: Vec<modelstudio_simulator::DeploymentRecord> = http
        .get(format!("{}/_simulator/deployments", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].deployed_model, d.deployed_model);
    assert!(records[0].workspace_id.starts_with("llm-sim"));
    let answer = http
        .post(format!(
            "{}/_simulator/deployments/{}/state",
            sim.base_url(),
            records[0].id
        ))
        .json(&serde_json::json!({"status": "FAILED"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let failed = Deployments::get(&client, &key(), &d.deployed_model)
        .await
        .unwrap();
    assert_eq!(failed.status, DeploymentState::Failed);
    let answer = http
        .post(format!(
            "{}/_simulator/deployments/nope/state",
            sim.base_url()
        ))
        .json(&serde_json::json!({"finish_now": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    let stats = sim.simulator.stats();
    assert_eq!(stats.deployable_models.total, 3);
    assert_eq!(stats.deployment_get.total, 1);
    assert_eq!(stats.other.total, 0, "control calls are not counted");
    // The request log names the deployment a call concerned.
    let last = sim.simulator.requests().pop().unwrap();
    assert_eq!(
        last.deployed_model.as_deref(),
        Some(d.deployed_model.as_str())
    );
    assert_eq!(last.job_id, None);
    sim.shutdown().await;
}

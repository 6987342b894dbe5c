//! The reqwest client against the simulator over real HTTP: every endpoint and every error.

use modelstudio_controller::modelstudio::{
    ApiError, ApiKey, HttpClient, HttpClientConfig, ImportJobs, JobState, ListQuery, NewJob,
    Source, Storage, WeightType,
};
use modelstudio_simulator::{Faults, OutcomeRequest, RunningSimulator, SimulatorConfig};
use std::time::{Duration, Instant};

const KEY: &str = "sk-client-test";

async fn simulator(config: SimulatorConfig) -> (RunningSimulator, HttpClient) {
    let sim = RunningSimulator::start(config)
        .await
        .expect("simulator starts");
    let client = HttpClient::new(HttpClientConfig {
        endpoint: sim.base_url(),
        timeout: Duration::from_secs(5),
        user_agent: "client-test".into(),
    })
    .unwrap();
    (sim, client)
}

fn quick() -> SimulatorConfig {
    SimulatorConfig {
        pending_duration: Duration::from_millis(100),
        running_duration: Duration::from_millis(200),
        api_keys: vec![KEY.into()],
        ..Default::default()
    }
}

fn key() -> ApiKey {
    ApiKey::new(KEY).unwrap()
}

fn request(object_key: &str) -> NewJob {
    NewJob {
        base_model: "qwen3-32b".into(),
        display_name: Some("client-test".into()),
        source: Source::Oss,
        weight_type: WeightType::Lora,
        storage: Storage {
            bucket_name: "bucket".into(),
            object_key: object_key.into(),
        },
    }
}

async fn wait_for(client: &HttpClient, job_id: &str, want: JobState) -> JobState {
    let deadline = Instant::now() + Duration::from_secs(10);
    for _ in 0..200 {
        let s = client.get(&key(), job_id).await.unwrap().state;
        if s == want || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    client.get(&key(), job_id).await.unwrap().state
}

#[tokio::test]
async fn create_get_list_delete_lifecycle() {
    let (sim, client) = simulator(quick()).await;
    let job = client.create(&key(), &request("models/a/")).await.unwrap();
    assert_eq!(job.state, JobState::Pending);
    assert_eq!(job.display_name.as_deref(), Some("client-test"));
    let model_name = job.model_name.clone().unwrap();
    assert!(model_name.starts_with("qwen3-32b-offline-"), "{model_name}");

    // Deleting a job in progress is refused with OperationDenied.
    let e = client.delete(&key(), &job.id).await.unwrap_err();
    assert!(matches!(e, ApiError::OperationDenied(_)), "{e}");

    let got = client.get(&key(), &job.id).await.unwrap();
    assert_eq!(got.id, job.id);
    assert_eq!(got.model_name, job.model_name);
    assert_eq!(
        wait_for(&client, &job.id, JobState::Succeeded).await,
        JobState::Succeeded
    );

    let page = client
        .list(
            &key(),
            &ListQuery {
                model_name: Some(model_name.clone()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);
    assert_eq!(page.items[0].id, job.id);
    let page = client
        .list(
            &key(),
            &ListQuery {
                state: Some(JobState::Succeeded),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total, 1);

    let deleted = client.delete(&key(), &job.id).await.unwrap();
    assert_eq!(deleted.id, job.id);
    let e = client.delete(&key(), &job.id).await.unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");
    let e = client.get(&key(), &job.id).await.unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");

    let stats = sim.simulator.stats();
    assert_eq!(stats.create.total, 1);
    assert_eq!(stats.delete.status(200), 1);
    assert_eq!(stats.delete.code("OperationDenied"), 1);
    assert_eq!(stats.delete.code("NotFound"), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn failed_job_carries_its_reason() {
    let (sim, client) = simulator(quick()).await;
    let job = client
        .create(&key(), &request("models/simulate-failure/"))
        .await
        .unwrap();
    assert_eq!(
        wait_for(&client, &job.id, JobState::Failed).await,
        JobState::Failed
    );
    let got = client.get(&key(), &job.id).await.unwrap();
    assert!(got.error_code.unwrap().contains("OSS"));
    // A finished job, failed or not, can be deleted.
    client.delete(&key(), &job.id).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn paging_walks_every_job() {
    let (sim, client) = simulator(quick()).await;
    for i in 0..25 {
        client
            .create(&key(), &request(&format!("models/{i}/")))
            .await
            .unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    let mut page_no = 1;
    for _ in 0..10 {
        let page = client
            .list(
                &key(),
                &ListQuery {
                    page_no: Some(page_no),
                    page_size: Some(10),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 25);
        seen.extend(page.items.iter().map(|j| j.id.clone()));
        if !page.has_more() {
            break;
        }
        page_no += 1;
    }
    assert_eq!(page_no, 3);
    assert_eq!(seen.len(), 25);
    let e = client
        .list(
            &key(),
            &ListQuery {
                page_size: Some(101),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ApiError::InvalidParameter(_)), "{e}");
    sim.shutdown().await;
}

#[tokio::test]
async fn every_error_is_typed_and_keeps_the_request_id() {
    let (sim, client) = simulator(quick()).await;
    let mut bad = request("models/a");
    let e = client.create(&key(), &bad).await.unwrap_err();
    assert!(matches!(e, ApiError::InvalidParameter(_)), "{e}");
    assert!(e.request_id().is_some());
    bad.storage.object_key = "models/a/".into();
    bad.base_model = "not-a-base-model".into();
    let e = client.create(&key(), &bad).await.unwrap_err();
    assert!(matches!(e, ApiError::NotFound(_)), "{e}");

    let wrong = ApiKey::new("sk-canary-wrong-key-0001").unwrap();
    let e = client.get(&wrong, "anything").await.unwrap_err();
    assert!(matches!(e, ApiError::InvalidApiKey(_)), "{e}");
    assert!(
        !format!("{e} {e:?}").contains("sk-canary"),
        "the key leaked into the error"
    );

    sim.simulator.set_faults(Faults {
        throttle_rate: 1.0,
        retry_after_seconds: 7,
        ..Default::default()
    });
    let e = client.get(&key(), "x").await.unwrap_err();
    assert!(matches!(e, ApiError::Throttled { .. }), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

    sim.simulator.set_faults(Faults {
        error_rate: 1.0,
        ..Default::default()
    });
    let e = client.get(&key(), "x").await.unwrap_err();
    assert!(matches!(e, ApiError::Server(_)), "{e}");
    assert!(e.is_transient());
    sim.shutdown().await;
}

#[tokio::test]
async fn lost_create_answer_is_ambiguous_and_the_job_exists() {
    let (sim, client) = simulator(quick()).await;
    sim.simulator.set_faults(Faults {
        lost_create_rate: 1.0,
        ..Default::default()
    });
    let e = client
        .create(&key(), &request("models/lost/"))
        .await
        .unwrap_err();
    assert!(!e.create_certainly_not_applied(), "{e}");
    assert_eq!(sim.simulator.jobs().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn timeouts_and_unreachable_endpoints() {
    let (sim, _) = simulator(quick()).await;
    sim.simulator.set_faults(Faults {
        latency_ms: 2_000,
        ..Default::default()
    });
    let client = HttpClient::new(HttpClientConfig {
        endpoint: sim.base_url(),
        timeout: Duration::from_millis(200),
        user_agent: "t".into(),
    })
    .unwrap();
    let e = client.get(&key(), "x").await.unwrap_err();
    assert!(matches!(e, ApiError::Timeout(_)), "{e}");
    sim.shutdown().await;

    // Nothing listens on a port we just freed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = HttpClient::new(HttpClientConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        timeout: Duration::from_secs(2),
        user_agent: "t".into(),
    })
    .unwrap();
    let e = client.get(&key(), "x").await.unwrap_err();
    assert!(matches!(e, ApiError::Connect(_)), "{e}");
    assert!(e.create_certainly_not_applied());
}

#[tokio::test]
async fn success_spelled_succeeded_is_success() {
    let (sim, client) = simulator(SimulatorConfig {
        success_spelling: "SUCCEEDED".into(),
        ..quick()
    })
    .await;
    let job = client.create(&key(), &request("models/x/")).await.unwrap();
    sim.simulator
        .set_outcome(
            &job.id,
            OutcomeRequest {
                status: None,
                error_code: None,
                finish_now: true,
            },
        )
        .unwrap();
    let got = client.get(&key(), &job.id).await.unwrap();
    assert_eq!(got.status_text, "SUCCEEDED");
    assert_eq!(got.state, JobState::Succeeded);
    sim.shutdown().await;
}

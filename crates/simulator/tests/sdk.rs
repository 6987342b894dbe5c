//! The official Python SDK (dashscope 2.0.2, both deployment clients) against the simulator: runs
//! the pytest suite in `tests/sdk` with `$MODELSTUDIO_SDK_PYTHON` (a venv holding dashscope 2.0.2
//! and pytest; scripts/test.sh makes one) and fails with pytest's output when it fails.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use modelstudio_simulator::{RunningSimulator, SimulatorConfig};

const PYTHON_VAR: &str = "MODELSTUDIO_SDK_PYTHON";
const SDK_VERSION: &str = "2.0.2";
/// pytest is killed after this long (the suite takes seconds).
const TIMEOUT: Duration = Duration::from_secs(300);
const SUITE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/sdk");
/// The keys and the workspaces they are fixed to, as tests/sdk/sim.py expects them.
const KEYS: [(&str, &str, &str, &str); 2] = [
    (
        "MODELSTUDIO_SIM_KEY",
        "sk-sdk-a",
        "MODELSTUDIO_SIM_WORKSPACE",
        "llm-sdka",
    ),
    (
        "MODELSTUDIO_SIM_OTHER_KEY",
        "sk-sdk-b",
        "MODELSTUDIO_SIM_OTHER_WORKSPACE",
        "llm-sdkb",
    ),
];

fn setup_hint() -> String {
    format!(
        "set {PYTHON_VAR} to a Python with dashscope=={SDK_VERSION} and pytest, e.g. \
         `python3 -m venv /tmp/sdk-venv && /tmp/sdk-venv/bin/pip install dashscope=={SDK_VERSION} pytest` \
         then {PYTHON_VAR}=/tmp/sdk-venv/bin/python (scripts/test.sh does this)"
    )
}

/// Short creates, so that one test sees PENDING → DEPLOYING → RUNNING by itself; scales and
/// deletes last long enough to be seen on a slow machine, and the tests end them through the
/// control API.
fn config() -> SimulatorConfig {
    SimulatorConfig {
        api_keys: KEYS
            .iter()
            .map(|(_, key, _, workspace)| format!("{key}={workspace}"))
            .collect(),
        pending_duration: Duration::from_millis(500),
        running_duration: Duration::from_millis(500),
        deployment_pending_duration: Duration::from_secs(1),
        deployment_deploying_duration: Duration::from_secs(1),
        deployment_updating_duration: Duration::from_secs(10),
        deployment_deleting_duration: Duration::from_secs(10),
        ..SimulatorConfig::default()
    }
}

/// The Python to use, or None (after saying SKIPPED) when none is set outside CI.
fn sdk_python() -> Option<String> {
    match std::env::var(PYTHON_VAR) {
        Ok(python) if !python.trim().is_empty() => Some(python),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!(
                "{PYTHON_VAR} is not set, and CI=true requires the SDK suite: {}",
                setup_hint()
            )
        }
        _ => {
            println!("SKIPPED: {PYTHON_VAR} is not set; {}", setup_hint());
            None
        }
    }
}

/// Drains a pipe on a thread, so a chatty child never blocks on a full pipe.
fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error keeps what was read: the output is for a human.
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` at most `TIMEOUT`, killing it (by its own handle) when it overruns.
/// Answers whether it exited successfully, and its stdout followed by its stderr.
fn wait_bounded(mut child: Child) -> Result<(bool, String), String> {
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(100)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Err(e) => return Err(format!("could not wait for pytest: {e}")),
        }
    };
    let output = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    match status {
        Some(status) => Ok((status.success(), output)),
        None => Err(format!(
            "pytest ran longer than {} s and was killed; its output so far:\n{output}",
            TIMEOUT.as_secs()
        )),
    }
}

/// A command of `python` with an environment free of DashScope settings and proxies.
fn python_command(python: &str) -> Command {
    let mut command = Command::new(python);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let proxy = name.to_ascii_lowercase().ends_with("_proxy");
        if name.starts_with("DASHSCOPE_") || proxy {
            command.env_remove(&name);
        }
    }
    command
        .env("NO_PROXY", "127.0.0.1,localhost")
        // No __pycache__ in the checkout.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn start(mut command: Command, python: &str) -> Result<Child, String> {
    command.spawn().map_err(|e| {
        format!(
            "{PYTHON_VAR}={python} could not be started ({e}); {}",
            setup_hint()
        )
    })
}

/// Refuses a Python whose dashscope is missing or not the version the suite was written for.
fn check_sdk(python: &str) -> Result<(), String> {
    let mut command = python_command(python);
    command.args([
        "-c",
        "import importlib.metadata as m, pytest; print(m.version('dashscope'))",
    ]);
    let (ok, output) = wait_bounded(start(command, python)?)?;
    let version = output.lines().next().unwrap_or_default().trim();
    if ok && version == SDK_VERSION {
        Ok(())
    } else {
        Err(format!(
            "{PYTHON_VAR}={python} lacks dashscope {SDK_VERSION} or pytest (it says: {}); {}",
            output.trim(),
            setup_hint()
        ))
    }
}

fn run_pytest(python: &str, sim_url: &str) -> Result<String, String> {
    check_sdk(python)?;
    let mut command = python_command(python);
    command
        // No .pytest_cache in the checkout.
        .args([
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rfE",
            SUITE,
        ])
        .current_dir(SUITE)
        .env("MODELSTUDIO_SIM_URL", sim_url);
    for (key_var, key, workspace_var, workspace) in KEYS {
        command.env(key_var, key).env(workspace_var, workspace);
    }
    let (ok, output) = wait_bounded(start(command, python)?)?;
    // Exit 0 with no test passed (all skipped, none collected) proves nothing.
    if ok && output.contains(" passed") {
        Ok(output)
    } else {
        Err(format!("the SDK suite failed:\n{output}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_sdk_drives_the_deployment_api() {
    let Some(python) = sdk_python() else {
        return;
    };
    let sim = RunningSimulator::start(config())
        .await
        .expect("the simulator starts on 127.0.0.1");
    let url = sim.base_url();
    let result = tokio::task::spawn_blocking(move || run_pytest(&python, &url))
        .await
        .expect("the pytest runner thread");
    sim.shutdown().await;
    match result {
        Ok(output) => println!("{output}"),
        Err(message) => panic!("{message}"),
    }
}

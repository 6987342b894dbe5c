//! `modelstudio-simulator`: the Model Studio simulator alone, as the simulator's image runs it (a
//! test tool; `modelstudio-sandbox simulator` serves the same with the sandbox's other commands).
//! It stops on SIGTERM or Ctrl-C: as a container's PID 1 it would otherwise ignore SIGTERM.

use clap::Parser;
use modelstudio_simulator::{serve, Simulator, SimulatorConfig};
use std::net::SocketAddr;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "modelstudio-simulator",
    version,
    about = "A local simulator of the Alibaba Cloud Model Studio import and deployment APIs, with \
             its control API under /_simulator/ (for tests)",
    long_about = None
)]
struct Cli {
    /// Address to serve on (0.0.0.0:8089 in a pod).
    #[arg(long, env = "SIMULATOR_ADDR", default_value = "127.0.0.1:8089")]
    addr: SocketAddr,

    #[command(flatten)]
    config: SimulatorConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let listener = match tokio::net::TcpListener::bind(cli.addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("modelstudio-simulator: cannot listen on {}: {e}", cli.addr);
            return ExitCode::FAILURE;
        }
    };
    eprintln!("modelstudio-simulator: listening on {}", cli.addr);
    match serve(listener, Simulator::new(cli.config), stopped()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("modelstudio-simulator: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn stopped() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

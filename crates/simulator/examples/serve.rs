//! Serves the simulator for manual use:
//! `cargo run -p modelstudio-simulator --example serve -- --listen 127.0.0.1:8089 --pending-duration 5s`
//! (every flag also reads its `SIMULATOR_*` variable). Stops on Ctrl-C.

use clap::Parser;
use modelstudio_simulator::{serve, Simulator, SimulatorConfig};

#[derive(Parser)]
struct Cli {
    /// Address to listen on.
    #[arg(long, env = "SIMULATOR_LISTEN", default_value = "127.0.0.1:8089")]
    listen: std::net::SocketAddr,
    #[command(flatten)]
    simulator: SimulatorConfig,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let cli = Cli::parse();
    let listener = tokio::net::TcpListener::bind(cli.listen).await?;
    println!("simulator listening on http://{}", listener.local_addr()?);
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(listener, Simulator::new(cli.simulator), shutdown).await
}

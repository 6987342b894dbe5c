//! Run the sandbox API server by hand: `cargo run -p sandbox-apiserver --example serve -- [ADDR] [KUBECONFIG]`.
use sandbox_apiserver::RunningApiServer;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let addr = addr
        .parse()
        .map_err(|e| std::io::Error::other(format!("bad address {addr}: {e}")))?;
    let server = RunningApiServer::start(addr).await?;
    if let Some(path) = args.next() {
        server
            .write_kubeconfig(std::path::Path::new(&path), "default")
            .await?;
    }
    println!("listening on {}", server.base_url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await;
    Ok(())
}

#![forbid(unsafe_code)]
use clap::Parser;
use modelstudio_controller::app;
use modelstudio_controller::cli::{Cli, Command};
use modelstudio_controller::config::{Config, Environment};
use std::process::ExitCode;

/// jemalloc keeps the footprint of a controller with thousands of cached objects low.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd(args) => {
            print!(
                "{}",
                modelstudio_controller::crd::Kind::from(args.kind).yaml()
            );
            ExitCode::SUCCESS
        }
        Command::Orphan(args) => {
            app::init_logging(modelstudio_controller::cli::LogFormat::Text);
            match modelstudio_controller::orphan::run(&args).await {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run(args) => {
            app::init_logging(args.log_format);
            let result = match Config::from_args(&args, &Environment::from_process()) {
                Ok(config) => app::run(config).await,
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

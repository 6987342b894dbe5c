#![forbid(unsafe_code)]
use clap::Parser;
use modelstudio_controller::cli::{Cli, Command, LogFormat};
use modelstudio_controller::{app, sandbox};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), Box<dyn std::fmt::Display>> = match cli.command {
        Command::Crd => {
            print!("{}", modelstudio_controller::crd::crd_yaml());
            Ok(())
        }
        Command::Run(args) => {
            app::init_logging(args.log_format);
            app::run(args).await.map_err(boxed)
        }
        Command::Simulator(args) => {
            app::init_logging(LogFormat::Text);
            app::serve_simulator(args).await.map_err(boxed)
        }
        Command::Sandbox(args) => {
            sandbox::init_logging();
            sandbox::sandbox(args).await.map_err(boxed)
        }
        Command::Apiserver(args) => {
            app::init_logging(LogFormat::Text);
            sandbox::apiserver(args).await.map_err(boxed)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn boxed<E: std::fmt::Display + 'static>(e: E) -> Box<dyn std::fmt::Display> {
    Box::new(e)
}

#![forbid(unsafe_code)]
use clap::Parser;
use modelstudio_controller::app;
use modelstudio_controller::cli::{Cli, Command};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", modelstudio_controller::crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Run(args) => {
            app::init_logging(args.log_format);
            match app::run(args).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

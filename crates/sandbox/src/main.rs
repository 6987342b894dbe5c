#![forbid(unsafe_code)]
//! `modelstudio-sandbox`: the local demo of modelstudio-controller and its test beds, kept out of
//! the shipped controller binary.

mod cli;
mod sandbox;

use clap::Parser;
use cli::{Cli, Command};
use modelstudio_controller::app;
use modelstudio_controller::cli::LogFormat;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Sandbox(args) => {
            sandbox::init_logging();
            sandbox::sandbox(args).await
        }
        Command::Apiserver(args) => {
            app::init_logging(LogFormat::Text);
            sandbox::apiserver(args).await
        }
        Command::Simulator(args) => {
            app::init_logging(LogFormat::Text);
            sandbox::simulator(args).await
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

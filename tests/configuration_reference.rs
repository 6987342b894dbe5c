//! The README's configuration reference is generated from the command-line definition.

use clap::CommandFactory;
use modelstudio_controller::cli::{configuration_reference, Cli};

const BEGIN: &str = "<!-- BEGIN configuration reference: generated from src/cli.rs (tests/configuration_reference.rs) -->\n";
const END: &str = "<!-- END configuration reference -->";
/// Set to rewrite the README's section instead of comparing it.
const WRITE: &str = "MODELSTUDIO_WRITE_DOCS";

#[test]
fn readme_carries_the_reference_the_command_line_defines() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).expect("README.md");
    let start = readme.find(BEGIN).expect("README.md has the BEGIN marker") + BEGIN.len();
    let end = start
        + readme[start..]
            .find(END)
            .expect("README.md has the END marker");
    let generated = configuration_reference();
    if std::env::var_os(WRITE).is_some() {
        let updated = format!("{}{generated}{}", &readme[..start], &readme[end..]);
        std::fs::write(path, updated).expect("README.md written");
        return;
    }
    assert!(
        readme[start..end] == generated,
        "README.md's configuration reference is out of date: run \
         `{WRITE}=1 cargo test --test configuration_reference`"
    );
}

#[test]
fn every_run_flag_has_an_environment_variable_and_a_meaning() {
    let cli = Cli::command();
    let run = cli.find_subcommand("run").expect("run");
    for arg in run.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if long == "help" {
            continue;
        }
        assert!(
            arg.get_env().is_some(),
            "--{long} has no environment variable"
        );
        assert!(arg.get_help().is_some(), "--{long} has no help text");
    }
    let reference = configuration_reference();
    assert!(reference.contains("| `--poll-interval` | `MODELSTUDIO_POLL_INTERVAL` | `30s` |"));
    assert!(reference.contains("| `--leader-election` | `MODELSTUDIO_LEADER_ELECTION` | off |"));
    assert!(reference.contains("| `DASHSCOPE_API_KEY` |"));
}

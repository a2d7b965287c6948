//! `p2p-gui`: the p2p-chat desktop app. See the crate documentation of `p2p_gui`.

use std::process::ExitCode;

use clap::Parser;
use p2p_gui::cli::Cli;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // Bad arguments: one line on stderr and status 2; --help and --version: stdout and 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("invalid arguments"));
            return ExitCode::from(2);
        }
    };
    match p2p_gui::app::run(cli.options()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2p-gui: cannot open the window: {e}");
            ExitCode::FAILURE
        }
    }
}

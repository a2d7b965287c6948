//! `p2p-gui`: the p2p-chat desktop app. See the crate documentation of `p2p_gui`.

use std::process::ExitCode;

use clap::Parser;
use p2p_gui::cli::Cli;

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = Cli::parse();
    match p2p_gui::app::run(cli.options()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2p-gui: cannot open the window: {e}");
            ExitCode::FAILURE
        }
    }
}

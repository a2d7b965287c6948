//! `p2p-gui`: the p2p-chat desktop app. See the crate documentation of `p2p_gui`.

use std::process::ExitCode;

use clap::Parser;
use p2p_gui::cli::Cli;
use p2p_gui::notify::Notifier;
use p2p_gui::signals::Listener;
use p2p_gui::store::Store;

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
    // SIGINT and SIGTERM leave as closing the window does; without the listener they
    // would end the process on the spot, without a goodbye.
    let signals = match Listener::start() {
        Ok(listener) => Some(listener),
        Err(e) => {
            log::warn!("cannot listen for SIGINT and SIGTERM: {e}");
            None
        }
    };
    let mut options = cli.options();
    options.signals = signals.as_ref().map(Listener::inbox);
    // The history of the data directory; without it the app runs, and says so.
    if let Some(dir) = &options.data_dir {
        match Store::open(dir) {
            Ok(store) => options.store = Some(store),
            Err(e) => {
                log::warn!("history: {e}");
                options.store_problem = Some(e.to_string());
            }
        }
    }
    options.notifier = match Notifier::start() {
        Ok(notifier) => Some(notifier),
        Err(e) => {
            log::warn!("cannot start the notification thread: {e}");
            None
        }
    };
    let (store, notifier) = (options.store.clone(), options.notifier.clone());
    let result = p2p_gui::app::run(options);
    // Every thread the app started is joined before the process ends.
    if let Some(store) = store {
        store.close();
    }
    if let Some(notifier) = notifier {
        notifier.stop();
    }
    if let Some(signals) = signals {
        signals.stop();
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p2p-gui: cannot open the window: {e}");
            ExitCode::FAILURE
        }
    }
}

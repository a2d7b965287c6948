//! Secure rooms and discovery in the app, driven through `iced_test` with real peers on
//! 127.0.0.1: the identity key of the data directory (a damaged one shown, never replaced).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use p2p_core::secure::Identity;
use p2p_core::secure::identity::IDENTITY_FILE;
use p2p_gui::app::{App, Message, Options, Screen};
use p2p_gui::data::form::Form;
use p2p_gui::network::StartError;
use p2p_gui::screen::connect;

mod support;

use support::ui::{chat, run_task, shows, update};

/// The app of `username`, with its data directory `dir`, started alone at once.
fn alone_in(username: &str, dir: &Path) -> App {
    let (mut app, task) = App::new(Options {
        form: Form {
            username: username.into(),
            alone: true,
            ..Form::default()
        },
        connect: true,
        data_dir: Some(dir.to_path_buf()),
        ..Options::default()
    });
    for m in run_task(task) {
        update(&mut app, m);
    }
    app
}

fn close(app: &mut App) {
    update(app, Message::CloseRequested(iced::window::Id::unique()));
}

#[test]
fn the_identity_key_of_the_data_directory_is_used_and_a_damaged_one_is_shown_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    // The first start creates the key in the data directory; the next uses it again.
    let mut app = alone_in("alice", dir.path());
    let _ = chat(&app);
    let first = app.session().unwrap().peer().fingerprint();
    let kept = Identity::load(&dir.path().join(IDENTITY_FILE)).expect("the key file");
    assert_eq!(first, kept.fingerprint());
    close(&mut app);
    let mut app = alone_in("alice", dir.path());
    assert_eq!(app.session().unwrap().peer().fingerprint(), first);
    close(&mut app);

    // A damaged key file: the start fails on the connect screen, saying so and naming the
    // file, and the file is left byte for byte.
    let damaged = tempfile::tempdir().unwrap();
    let path = damaged.path().join(IDENTITY_FILE);
    let garbage = b"not a key at all\n\x00\x01".to_vec();
    std::fs::write(&path, &garbage).unwrap();
    let app = alone_in("alice", damaged.path());
    let Screen::Connect(screen) = app.screen() else {
        panic!("started with a damaged key file");
    };
    let connect::Status::Failed(StartError::Identity(why)) = screen.status() else {
        panic!("not an identity failure: {:?}", screen.status());
    };
    assert!(why.contains(&path.display().to_string()), "{why}");
    assert!(why.contains("damaged identity key file"), "{why}");
    let shown = format!("Your identity key cannot be used: {why}");
    assert!(shows(&app, &shown), "the failure is in the window");
    assert_eq!(std::fs::read(&path).unwrap(), garbage, "never replaced");
}

//! The app as one people keep open, driven through `iced_test` with its history and
//! settings in temporary directories: a reopened room shows its past and pages back
//! through the database, the search finds old lines, a room's history can be cleared, the
//! unread count and the divider, the settings remembered at a connect (and a damaged file
//! reported), multi-line messages, Copy, Add a peer, Cancel while connecting, language
//! and theme switched and remembered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use p2p_core::{Event, Peer, PeerConfig, PeerInfo, Text};
use p2p_gui::app::{App, Message, Options, Screen};
use p2p_gui::cli::Cli;
use p2p_gui::data::form::{Form, Tab};
use p2p_gui::data::history::EntryKind;
use p2p_gui::data::settings::{Problem, Settings, ThemeChoice};
use p2p_gui::i18n::{Lang, fill};
use p2p_gui::screen::{chat, connect};
use p2p_gui::store::{Kind, Line, Store};

use clap::Parser;

mod support;

use support::ui::{actions, chat, click, enter_in, run_task, shows, type_into, update};
use support::{DEADLINE, wait_until};

fn alone_form() -> Form {
    Form {
        username: "alice".into(),
        alone: true,
        ..Form::default()
    }
}

/// Alice's app with her history and settings in `dir`, connected alone.
fn alice_in(dir: &std::path::Path, store: &Store) -> App {
    let (mut app, task) = App::new(Options {
        form: alone_form(),
        connect: true,
        data_dir: Some(dir.to_path_buf()),
        store: Some(store.clone()),
        ..Options::default()
    });
    for m in run_task(task) {
        update(&mut app, m);
    }
    let _ = chat(&app);
    app
}

fn bob() -> std::sync::Arc<PeerInfo> {
    std::sync::Arc::new(PeerInfo {
        username: "bob".into(),
        addr: "127.0.0.1:7001".parse().unwrap(),
        fingerprint: p2p_core::secure::PublicKey::from_bytes([7; 32]).fingerprint(),
    })
}

fn said(text: &str) -> Event {
    Event::Message {
        from: bob(),
        text: Text::from(text.to_owned()),
    }
}

fn other_texts(app: &App) -> Vec<String> {
    chat(app)
        .history()
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Other { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

/// `n` earlier messages from bob in the conversation `alone`, as a former session left them.
fn past(store: &Store, n: usize) {
    let lines: Vec<Line> = (0..n)
        .map(|i| Line {
            at_ms: 1_700_000_000_000 + i as i64,
            kind: Kind::Other,
            sender: "bob".into(),
            text: format!("old message {i}"),
        })
        .collect();
    for chunk in lines.chunks(1000) {
        store.append_blocking("alone", chunk.to_vec()).unwrap();
    }
}

#[test]
fn a_reopened_room_shows_its_latest_lines_and_pages_back_through_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    past(&store, 1000);
    let mut app = alice_in(dir.path(), &store);
    let texts = other_texts(&app);
    assert_eq!(texts.len(), p2p_gui::network::PAGE, "one page in memory");
    assert_eq!(texts.last().unwrap(), "old message 999");
    assert!(shows(&app, "old message 999"));
    assert!(!shows(&app, "old message 0"));

    // "Show earlier messages" reads the page before from the database.
    click(&mut app, "Show earlier messages");
    let texts = other_texts(&app);
    assert_eq!(texts.len(), 2 * p2p_gui::network::PAGE);
    assert_eq!(
        texts[0],
        format!("old message {}", 1000 - 2 * p2p_gui::network::PAGE)
    );
    while shows(&app, "Show earlier messages") {
        click(&mut app, "Show earlier messages");
    }
    let texts = other_texts(&app);
    let all: Vec<String> = (0..1000).map(|i| format!("old message {i}")).collect();
    assert_eq!(texts, all, "every line once, in order");
    assert!(shows(&app, "old message 0"));

    // What alice says now is saved too: reopened, the room ends with it.
    update(
        &mut app,
        Message::Chat(chat::Message::Draft("a new line\nand a second one".into())),
    );
    click(&mut app, "Send");
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    let app = alice_in(dir.path(), &store);
    let last = chat(&app)
        .history()
        .entries()
        .iter()
        .rev()
        .find(|e| matches!(e.kind, EntryKind::Own { .. }))
        .expect("the own message was kept");
    assert_eq!(
        last.text(),
        "a new line\nand a second one",
        "multi-line, as typed"
    );
    assert!(shows(&app, "a new line\nand a second one"));
    // The welcome notice of the first session was saved as well.
    let notices = chat(&app)
        .history()
        .entries()
        .iter()
        .filter(|e| matches!(&e.kind, EntryKind::Notice(n) if n.starts_with("You are alice")))
        .count();
    assert_eq!(notices, 2);
    store.close();
}

#[test]
fn the_search_finds_past_lines_and_the_history_can_be_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    past(&store, 500);
    store
        .append_blocking(
            "alone",
            vec![Line {
                at_ms: 1_700_000_100_000,
                kind: Kind::Other,
                sender: "carol".into(),
                text: "Shall we meet at five?".into(),
            }],
        )
        .unwrap();
    past(&store, 500);
    let mut app = alice_in(dir.path(), &store);
    type_into(&mut app, chat::SEARCH_BOX, "meet");
    enter_in(&mut app, chat::SEARCH_BOX);
    assert!(shows(&app, "1 messages found for “meet” (newest first)"));
    assert!(shows(&app, "[carol] : Shall we meet at five?"));
    type_into(&mut app, chat::SEARCH_BOX, " nowhere");
    enter_in(&mut app, chat::SEARCH_BOX);
    assert!(shows(
        &app,
        "0 messages found for “meet nowhere” (newest first)"
    ));
    click(&mut app, "Back to the conversation");
    assert!(shows(&app, "old message 499"));

    // Clearing asks first, then empties the room here and on disk.
    click(&mut app, "Clear this room's history");
    assert!(shows(&app, "Clear this room's history?"));
    click(&mut app, "Cancel");
    assert!(shows(&app, "old message 499"));
    click(&mut app, "Clear this room's history");
    click(&mut app, "Clear the history");
    assert!(chat(&app).history().entries().is_empty());
    assert!(!shows(&app, "old message 499"));
    assert!(store.latest_blocking("alone", 10).unwrap().rows.is_empty());
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    store.close();
}

#[test]
fn messages_while_away_are_counted_in_the_title_with_a_divider_until_focus_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut app = alice_in(dir.path(), &store);
    update(&mut app, Message::Focus(true));
    update(
        &mut app,
        Message::Network(vec![said("seen at once")].into()),
    );
    assert!(
        app.title().starts_with("P2P Messenger — alice"),
        "{}",
        app.title()
    );
    assert!(!shows(&app, "New messages"));

    update(&mut app, Message::Focus(false));
    update(
        &mut app,
        Message::Network(vec![said("one"), said("two"), said("three")].into()),
    );
    assert!(
        app.title().starts_with("(3) P2P Messenger — alice"),
        "{}",
        app.title()
    );
    assert!(shows(&app, "New messages"));
    let divider = chat(&app).attention().divider().unwrap();
    assert_eq!(chat(&app).history().get(divider).unwrap().text(), "one");

    // Back to the window: the count goes, the divider stays where the user left off.
    update(&mut app, Message::Focus(true));
    assert!(app.title().starts_with("P2P Messenger"), "{}", app.title());
    assert!(shows(&app, "New messages"));
    // Sending means the user caught up: the divider goes.
    update(&mut app, Message::Chat(chat::Message::Draft("back".into())));
    click(&mut app, "Send");
    assert!(!shows(&app, "New messages"));
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    store.close();
}

#[test]
fn the_form_is_remembered_at_a_connect_and_connect_alone_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let bob = {
        let mut config = PeerConfig::new("bob");
        config.bind_addr = "127.0.0.1:0".parse().unwrap();
        Peer::start(config).unwrap()
    };
    let peers = bob.local_addr().to_string();
    // First run: flags fill the form; connecting saves it.
    let options = Cli::parse_from([
        "p2p-gui",
        "--data-dir",
        data,
        "--username",
        "carol",
        "--peers",
        &peers,
        "--lang",
        "pt",
    ])
    .options();
    let (mut app, _) = App::new(options);
    click(&mut app, "Ligar");
    let _ = chat(&app);
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    let (saved, problem) = Settings::load(dir.path(), "x");
    assert_eq!(problem, None);
    assert_eq!(saved.form.username, "carol");
    assert_eq!(saved.form.tab, Tab::Manual);
    assert_eq!(saved.form.peers, peers);
    assert_eq!(saved.language, Some(Lang::Pt));

    // Second run: `--data-dir DIR --connect` alone connects with the saved form.
    let options = Cli::parse_from(["p2p-gui", "--data-dir", data, "--connect"]).options();
    assert_eq!(options.form, saved.form);
    let (mut app, task) = App::new(options);
    for m in run_task(task) {
        update(&mut app, m);
    }
    assert!(
        app.title().starts_with("P2P Messenger — carol"),
        "{}",
        app.title()
    );
    assert_eq!(app.lang(), Lang::Pt);
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
}

#[test]
fn a_damaged_settings_file_is_reported_on_the_connect_screen_and_kept_aside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("settings.toml"), "version = 1\nform = [").unwrap();
    let options =
        Cli::parse_from(["p2p-gui", "--data-dir", dir.path().to_str().unwrap()]).options();
    assert_eq!(options.form, Form::default());
    let (app, _) = App::new(Options {
        lang: Lang::En,
        ..options
    });
    let Some(Problem::Damaged {
        reason,
        kept_as: Some(kept_as),
    }) = app.settings_problem()
    else {
        panic!("not reported: {:?}", app.settings_problem());
    };
    let notice = fill(
        Lang::En.strings().settings_damaged,
        &[&kept_as.display(), reason],
    );
    assert!(notice.starts_with("The saved settings were damaged ("));
    assert!(shows(&app, &notice), "the notice is on the connect screen");
    let kept: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        kept.iter()
            .any(|name| name.starts_with("settings.toml.damaged-")),
        "{kept:?}"
    );
}

#[test]
fn language_and_theme_switch_in_the_app_and_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = App::new(Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    });
    assert!(shows(&app, "Connect"));
    update(&mut app, Message::Lang(Lang::Pt));
    assert!(shows(&app, "Ligar") && !shows(&app, "Connect"));
    assert_eq!(app.theme(), None, "follows the system by default");
    update(&mut app, Message::Theme(ThemeChoice::Dark));
    assert_eq!(app.theme(), Some(iced::Theme::Dark));
    let (saved, _) = Settings::load(dir.path(), "x");
    assert_eq!(saved.language, Some(Lang::Pt));
    assert_eq!(saved.theme, ThemeChoice::Dark);
}

#[test]
fn a_selected_line_can_be_copied() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut app = alice_in(dir.path(), &store);
    update(
        &mut app,
        Message::Network(vec![said("copy me\nall of me")].into()),
    );
    click(&mut app, "copy me\nall of me");
    assert!(shows(&app, "Copy"));
    let copy = app.update(Message::Chat(chat::Message::Copy));
    let written: Vec<String> = actions(copy)
        .into_iter()
        .filter_map(|a| match a {
            iced_runtime::Action::Clipboard(iced_runtime::clipboard::Action::Write {
                contents,
                ..
            }) => Some(contents),
            _ => None,
        })
        .collect();
    assert_eq!(written, ["copy me\nall of me"]);
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    store.close();
}

#[test]
fn add_a_peer_from_the_chat_screen() {
    let bob = {
        let mut config = PeerConfig::new("bob");
        config.bind_addr = "127.0.0.1:0".parse().unwrap();
        Peer::start(config).unwrap()
    };
    let (mut app, task) = App::new(Options {
        form: alone_form(),
        connect: true,
        ..Options::default()
    });
    for m in run_task(task) {
        update(&mut app, m);
    }
    type_into(&mut app, chat::ADD_PEER_BOX, &bob.local_addr().to_string());
    click(&mut app, "Add");
    // The connector thread connected; its event says so.
    let deadline = Instant::now() + DEADLINE;
    while chat(&app).listening_to().is_empty() {
        let event = app
            .session()
            .unwrap()
            .peer()
            .events()
            .recv_deadline(deadline)
            .expect("an event");
        update(&mut app, Message::Network(vec![event].into()));
    }
    assert!(shows(&app, "Listening to (1)"));
    // A bad address says why, and nothing is tried.
    type_into(&mut app, chat::ADD_PEER_BOX, "nonsense");
    click(&mut app, "Add");
    assert!(shows(&app, "“nonsense” is not host:port"));
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
}

#[test]
fn cancel_while_connecting_frees_the_form_and_the_late_session_is_closed() {
    let bob = {
        let mut config = PeerConfig::new("bob");
        config.bind_addr = "127.0.0.1:0".parse().unwrap();
        Peer::start(config).unwrap()
    };
    let mut app = App::new(Options {
        form: Form {
            username: "alice".into(),
            tab: Tab::Manual,
            peers: bob.local_addr().to_string(),
            ..Form::default()
        },
        ..Options::default()
    })
    .0;
    let start = app.update(Message::Connect(connect::Message::Connect));
    assert!(shows(&app, "Cancel"));
    click(&mut app, "Cancel");
    assert!(shows(&app, "Connect"), "the form is back");
    // The start answers after all: its session is closed, and the app stays on the form.
    for m in run_task(start) {
        update(&mut app, m);
    }
    assert!(matches!(app.screen(), Screen::Connect(_)));
    wait_until(|| {
        bob.events()
            .try_iter()
            .any(|e| matches!(e, Event::ListenerLeft { peer, .. } if peer.username == "alice"))
            || bob.listeners().is_empty()
    });
}

/// The connect form's IP is automatic unless one is typed or picked, and the third tab,
/// Local network, needs nothing typed: its request joins by LAN discovery.
#[test]
fn the_local_network_tab_needs_no_address_and_the_ip_is_automatic() {
    let (mut app, _) = App::new(Options::default());
    type_into(&mut app, "username", "alice");
    click(&mut app, "Local network");
    assert!(shows(&app, "Room"));
    assert!(shows(
        &app,
        "The room's peers on this network are found automatically (multicast DNS): no address to type."
    ));
    let Screen::Connect(screen) = app.screen() else {
        panic!("not the connect screen");
    };
    assert_eq!(screen.form().tab, p2p_gui::data::form::Tab::Lan);
    let request = screen.form().check().request.expect("a valid form");
    assert_eq!(request.join, p2p_gui::data::form::Join::Lan);
    assert_eq!(request.ip, None, "automatic");
    assert_eq!(request.room, p2p_core::RoomName::lobby());
}

/// A peer behind NAT that cannot be punched to is named in the conversation, plainly.
#[test]
fn an_unreachable_peer_is_said_plainly_in_the_chat() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut app = alice_in(dir.path(), &store);
    update(
        &mut app,
        Message::Network(
            vec![Event::Unreachable {
                addr: "192.0.2.7:7100".parse().unwrap(),
                reason: "no connection through the NAT routers".into(),
            }]
            .into(),
        ),
    );
    assert!(shows(
        &app,
        "Cannot reach 192.0.2.7:7100 through the NAT routers, so you will not hear each other: no connection through the NAT routers"
    ));
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    store.close();
}

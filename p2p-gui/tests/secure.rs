//! Secure rooms and discovery in the app, driven through `iced_test` with real peers on
//! 127.0.0.1: the identity key of the data directory (a damaged one shown, never replaced),
//! the masked passphrase field (never saved, never in `Debug` output) and a wrong passphrase
//! said plainly, fingerprints in the title and the peers panel, two peers of one name told
//! apart, and the warning when a known name comes with another key; discovery through a
//! private DHT (its own tab, or beside a tracker), how each peer was found, the DHT's
//! notices.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use p2p_core::secure::identity::IDENTITY_FILE;
use p2p_core::secure::{Identity, Passphrase};
use p2p_core::{Event, Peer, PeerConfig, RoomName};
use p2p_gui::app::{App, Message, Options, Screen};
use p2p_gui::data::form::{Form, Tab};
use p2p_gui::data::history::EntryKind;
use p2p_gui::data::secret::Secret;
use p2p_gui::data::settings::Settings;
use p2p_gui::i18n::{Lang, fill};
use p2p_gui::network::StartError;
use p2p_gui::screen::{chat, connect};

mod support;

use support::peers::recv_message;
use support::ui::{
    app as app_of, chat, click, enter_in, has_message, history, pump, run_task, shows, type_into,
    update,
};

/// A peer of p2p-core on 127.0.0.1 in room `room`, with this passphrase, alone.
fn peer_in(name: &str, room: &str, passphrase: Option<&str>) -> Peer {
    let mut config = PeerConfig::new(name);
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    config.room = RoomName::new(room).unwrap();
    config.passphrase = passphrase.map(|p| Passphrase::new(p).unwrap());
    Peer::start(config).expect("peer starts")
}

/// Alice's app with data directory `dir`, the Manual tab towards `peer` and the room
/// `attic` typed in; the passphrase is left to the test.
fn alice_towards(peer: &Peer, dir: &Path) -> App {
    let (mut app, _) = App::new(Options {
        lang: Lang::En,
        form: Form {
            username: "alice".into(),
            tab: Tab::Manual,
            peers: peer.local_addr().to_string(),
            ..Form::default()
        },
        data_dir: Some(dir.to_path_buf()),
        ..Options::default()
    });
    update(
        &mut app,
        Message::Connect(connect::Message::Room(String::new())),
    );
    type_into(&mut app, "room", "attic");
    app
}

const SECRET: &str = "correct horse battery staple";

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

#[test]
fn the_masked_passphrase_joins_a_closed_room_and_is_never_saved_or_shown_in_debug_output() {
    let dir = tempfile::tempdir().unwrap();
    let bob = peer_in("bob", "attic", Some(SECRET));
    let mut app = alice_towards(&bob, dir.path());
    type_into(&mut app, "passphrase", SECRET);
    let Screen::Connect(screen) = app.screen() else {
        panic!("not the connect screen");
    };
    assert_eq!(
        screen.form().passphrase.as_str(),
        SECRET,
        "typed in the field"
    );
    assert!(!format!("{:?}", screen.form()).contains(SECRET));
    assert!(!format!("{app:?}").contains(SECRET));
    let typed = connect::Message::Passphrase(Secret::new(SECRET.into()));
    assert!(!format!("{typed:?}").contains(SECRET));
    let request = screen.form().check().request.expect("a valid form");
    assert!(!format!("{request:?}").contains(SECRET));
    assert_eq!(request.passphrase, Some(Passphrase::new(SECRET).unwrap()));

    // Enter in the passphrase field connects; the room is closed and alice is in it.
    enter_in(&mut app, "passphrase");
    pump(&mut app, |a| !chat(a).listening_to().is_empty());
    bob.send("only for the attic").unwrap();
    pump(&mut app, |a| has_message(a, "bob", "only for the attic"));
    let addr = app.session().unwrap().peer().local_addr();
    bob.connect(&addr.to_string())
        .expect("bob listens to alice");
    type_into(&mut app, chat::MESSAGE_BOX, "hello bob");
    enter_in(&mut app, chat::MESSAGE_BOX);
    assert_eq!(recv_message(&bob), ("alice".into(), "hello bob".into()));
    assert!(!format!("{app:?}").contains(SECRET), "nor while chatting");

    // The settings remember the room, not the passphrase, on disk and in memory.
    let file = std::fs::read_to_string(dir.path().join("settings.toml")).unwrap();
    assert!(file.contains("room = \"attic\""), "{file}");
    assert!(
        !file.contains(SECRET) && !file.contains("passphrase"),
        "{file}"
    );
    assert!(app.settings().form.passphrase.is_empty());
    let (saved, _) = Settings::load(dir.path(), "x");
    assert!(saved.form.passphrase.is_empty());
    assert!(!format!("{saved:?}").contains(SECRET));
    close(&mut app);
}

#[test]
fn a_wrong_or_missing_passphrase_is_a_visible_error_and_links_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bob = peer_in("bob", "attic", Some(SECRET));
    for typed in ["not the passphrase", ""] {
        let mut app = alice_towards(&bob, dir.path());
        type_into(&mut app, "passphrase", typed);
        click(&mut app, "Connect");
        let Screen::Connect(screen) = app.screen() else {
            panic!("joined with the passphrase {typed:?}");
        };
        assert!(
            matches!(
                screen.status(),
                connect::Status::Failed(StartError::Peer(_))
            ),
            "{:?}",
            screen.status()
        );
        let shown = fill(
            Lang::En.strings().fail_wrong_passphrase,
            &[&"attic", &bob.local_addr()],
        );
        assert!(
            shown.starts_with("Wrong passphrase for room attic: 127.0.0.1:"),
            "{shown}"
        );
        assert!(shows(&app, &shown), "{typed:?}: {:?}", screen.status());
    }
    assert!(bob.listeners().is_empty() && bob.listening_to().is_empty());
}

#[test]
fn a_peer_met_in_the_background_with_another_passphrase_is_a_warning_in_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = alone_in("alice", dir.path());
    update(
        &mut app,
        Message::Network(
            vec![Event::WrongPassphrase {
                addr: "127.0.0.1:7009".into(),
            }]
            .into(),
        ),
    );
    let warning = "Wrong passphrase for room lobby: 127.0.0.1:7009 is in another room or has \
                   another passphrase; nothing was exchanged with it";
    assert!(shows(&app, warning));
    assert!(
        history(&app)
            .entries()
            .iter()
            .any(|e| matches!(&e.kind, EntryKind::Warning(w) if w == warning))
    );
    close(&mut app);
}

#[test]
fn the_own_fingerprint_is_in_the_title_and_the_unread_count_goes_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let bob = peer_in("bob", "attic", Some(SECRET));
    let mut app = alice_towards(&bob, dir.path());
    type_into(&mut app, "passphrase", SECRET);
    click(&mut app, "Connect");
    let peer = app.session().unwrap().peer();
    let (fingerprint, addr) = (peer.fingerprint(), peer.local_addr());
    let kept = Identity::load(&dir.path().join(IDENTITY_FILE)).unwrap();
    assert_eq!(fingerprint, kept.fingerprint(), "the data directory's key");
    let title = format!("P2P Messenger — alice ({fingerprint}) — attic — {addr}");
    assert_eq!(app.title(), title);
    pump(&mut app, |a| !chat(a).listening_to().is_empty());
    update(&mut app, Message::Focus(false));
    bob.send("one").unwrap();
    bob.send("two").unwrap();
    pump(&mut app, |a| has_message(a, "bob", "two"));
    assert_eq!(app.title(), format!("(2) {title}"));
    close(&mut app);
}

#[test]
fn two_peers_of_one_name_are_told_apart_by_fingerprint_and_the_second_key_is_a_warning() {
    let first = peer_in("bob", "lobby", None);
    let second = peer_in("bob", "lobby", None);
    let (one, two) = (first.fingerprint(), second.fingerprint());
    assert_ne!(one, two, "two installations, two keys");
    let mut app = app_of(Form {
        username: "alice".into(),
        tab: Tab::Manual,
        peers: format!("{} {}", first.local_addr(), second.local_addr()),
        ..Form::default()
    });
    click(&mut app, "Connect");
    pump(&mut app, |a| chat(a).listening_to().len() == 2);

    // The peers panel shows each one's full fingerprint under the same name.
    assert!(shows(&app, &one.to_string()) && shows(&app, &two.to_string()));
    // Whichever came second arrived with a key other than the one "bob" was first seen
    // with: a warning line names bob and shows both.
    let warnings: Vec<String> = history(&app)
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let expected = |new: &p2p_core::secure::Fingerprint, old, addr| {
        format!(
            "bob ({addr}) arrived with identity {new}, not {old} as first seen: another \
             person using the name, or the same one on another installation"
        )
    };
    assert!(
        warnings[0] == expected(&two, one, second.local_addr())
            || warnings[0] == expected(&one, two, first.local_addr()),
        "{warnings:?}"
    );
    assert!(shows(&app, &warnings[0]), "the warning is on screen");

    // Their messages carry the start of each fingerprint beside the name.
    first.send("from the first bob").unwrap();
    second.send("from the second bob").unwrap();
    let label = |f: &p2p_core::secure::Fingerprint| format!("bob ({}…)", &f.to_string()[..9]);
    pump(&mut app, |a| {
        has_message(a, &label(&one), "from the first bob")
            && has_message(a, &label(&two), "from the second bob")
    });
    assert!(shows(&app, &format!("[{}] :", label(&one))));
    close(&mut app);
}

/// A tracker on 127.0.0.1 with a DHT node: the private DHT's bootstrap node.
fn tracker_with_dht() -> tracker::Tracker {
    tracker::Tracker::start(tracker::TrackerConfig {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        dht_port: Some(0),
        ..tracker::TrackerConfig::default()
    })
    .expect("tracker with a DHT node")
}

/// A p2p-core peer that finds the others through the private DHT at `node` only.
fn dht_peer(name: &str, node: std::net::SocketAddr) -> Peer {
    let mut config = PeerConfig::new(name);
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    config.mode = p2p_core::Mode::dht(p2p_core::dht::DhtConfig {
        bootstrap: vec![node.to_string()],
        lookup_interval: std::time::Duration::from_secs(2),
        ..p2p_core::dht::DhtConfig::default()
    });
    Peer::start(config).expect("DHT peer starts")
}

/// How alice's window says `other` was found, once they are linked: through the DHT, or,
/// when `other`'s own lookup found alice first (both look the room up), by its call, which
/// `other`'s events then show came from the DHT. Either way alice's DHT settings worked.
fn dht_label(app: &App, other: &Peer) -> &'static str {
    match chat(app).source(&other.local_addr()) {
        Some(p2p_core::Source::Dht) => "DHT",
        Some(p2p_core::Source::Hello) => {
            let port = app.session().unwrap().peer().local_addr().port();
            assert!(
                other.events().try_iter().any(|e| matches!(e,
                    Event::Discovered { addr, via: p2p_core::Source::Dht } if addr.port() == port)),
                "{} called alice without finding her through the DHT",
                other.username()
            );
            "it called us"
        }
        how => panic!("found {how:?}"),
    }
}

#[test]
fn the_internet_tab_finds_the_room_through_a_private_dht_and_is_remembered() {
    let tracker = tracker_with_dht();
    let node = tracker.dht_addr().expect("the DHT node");
    let bob = dht_peer("bob", node);
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = App::new(Options {
        lang: Lang::En,
        form: Form {
            username: "alice".into(),
            ..Form::default()
        },
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    });
    click(&mut app, "Internet (DHT)");
    assert!(shows(
        &app,
        "The room's peers anywhere on the Internet are found through BitTorrent's DHT (UDP), \
         under an id that reveals neither the room's name nor its passphrase."
    ));
    type_into(&mut app, "dht-bootstrap", "nonsense");
    assert!(shows(&app, "“nonsense” is not host:port"));
    update(
        &mut app,
        Message::Connect(connect::Message::DhtBootstrap(String::new())),
    );
    type_into(&mut app, "dht-bootstrap", &node.to_string());
    click(&mut app, "Connect");
    let request = app.session().expect("started").request().clone();
    assert_eq!(request.join, p2p_gui::data::form::Join::Dht);
    assert_eq!(request.dht, Some(vec![node.to_string()]));

    // Bob is found through the DHT: the panel says so beside his address.
    pump(&mut app, |a| !chat(a).listening_to().is_empty());
    let how = dht_label(&app, &bob);
    assert!(shows(&app, &format!("{} · {how}", bob.local_addr())));
    bob.send("found you").unwrap();
    pump(&mut app, |a| has_message(a, "bob", "found you"));

    // The tab and the nodes are remembered.
    let (saved, _) = Settings::load(dir.path(), "x");
    assert_eq!(saved.form.tab, Tab::Dht);
    assert_eq!(saved.form.dht_bootstrap, node.to_string());
    close(&mut app);
}

#[test]
fn the_dht_searched_beside_a_tracker_finds_a_peer_the_tracker_does_not_know() {
    let tracker = tracker_with_dht();
    let node = tracker.dht_addr().expect("the DHT node");
    // Bob uses the DHT only; carol the tracker only; alice both.
    let bob = dht_peer("bob", node);
    let carol = {
        let mut config = PeerConfig::new("carol");
        config.bind_addr = "127.0.0.1:0".parse().unwrap();
        config.mode = p2p_core::Mode::tracker(tracker.local_addr().to_string());
        Peer::start(config).expect("carol starts")
    };
    let mut app = app_of(Form {
        username: "alice".into(),
        ip: "127.0.0.1".into(),
        tracker_port: tracker.local_addr().port().to_string(),
        ..Form::default()
    });
    click(&mut app, "Also search the Internet (DHT)");
    type_into(&mut app, "dht-bootstrap", &node.to_string());
    click(&mut app, "Connect");
    let request = app.session().expect("started").request().clone();
    assert_eq!(request.dht, Some(vec![node.to_string()]));
    pump(&mut app, |a| chat(a).listening_to().len() == 2);
    let how = dht_label(&app, &bob);
    assert_eq!(
        chat(&app).source(&carol.local_addr()),
        Some(p2p_core::Source::Tracker)
    );
    assert!(shows(&app, &format!("{} · {how}", bob.local_addr())));
    assert!(shows(&app, &format!("{} · tracker", carol.local_addr())));
    close(&mut app);
}

#[test]
fn the_dht_s_troubles_are_warnings_in_the_conversation() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = alone_in("alice", dir.path());
    update(
        &mut app,
        Message::Network(
            vec![
                Event::DhtUnreachable {
                    reason: "no bootstrap node answered".into(),
                },
                Event::DhtBehindNat {
                    public_ip: "203.0.113.9".parse().unwrap(),
                },
            ]
            .into(),
        ),
    );
    assert!(shows(
        &app,
        "The DHT is not answering: no bootstrap node answered (UDP may be blocked on this \
         network: a tracker or the local network work over TCP)"
    ));
    assert!(shows(
        &app,
        "You are behind a NAT router (the DHT sees you at 203.0.113.9): peers that accept \
         connections are reached, peers behind NAT routers too are not (a tracker can \
         introduce them)"
    ));
    close(&mut app);
}

/// Alice alone in `room`, her history in `store`.
fn alone_in_room(room: &str, dir: &Path, store: &p2p_gui::store::Store) -> App {
    let (mut app, task) = App::new(Options {
        form: Form {
            username: "alice".into(),
            room: room.into(),
            alone: true,
            ..Form::default()
        },
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

#[test]
fn history_is_kept_per_room() {
    let dir = tempfile::tempdir().unwrap();
    let store = p2p_gui::store::Store::open(dir.path()).unwrap();
    let mut attic = alone_in_room("attic", dir.path(), &store);
    assert_eq!(attic.session().unwrap().conversation(), "alone room attic");
    update(
        &mut attic,
        Message::Chat(chat::Message::Draft("said in the attic".into())),
    );
    click(&mut attic, "Send");
    close(&mut attic);

    // Another room does not show it; the attic, reopened, does.
    let mut cellar = alone_in_room("cellar", dir.path(), &store);
    assert!(!shows(&cellar, "said in the attic"));
    close(&mut cellar);
    let mut attic = alone_in_room("attic", dir.path(), &store);
    assert!(shows(&attic, "said in the attic"));
    close(&mut attic);
    let rows = store.latest_blocking("alone room attic", 10).unwrap().rows;
    assert!(rows.iter().any(|r| r.line.text == "said in the attic"));
    store.close();
}

//! The real app driven through `iced_test`: forms filled by typing and clicking, peers and
//! trackers started for real on 127.0.0.1, tasks run to completion, and events pumped from
//! the peer into `update` as the subscription would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;

use iced_test::selector::id;
use iced_test::simulator;
use p2p_core::{Event, Peer, PeerConfig};
use p2p_gui::app::{App, Message, Options, Screen};
use p2p_gui::data::form::{Form, Tab};
use p2p_gui::data::history::{Delivery, EntryKind, MAX_BYTES, MAX_ENTRIES as HISTORY, WINDOW};
use p2p_gui::i18n::Lang;
use p2p_gui::screen::chat;
use p2p_gui::screen::connect::{self, describe_start_error};

mod support;

use support::peers::{alone_peer, free_port, recv_message, sees_goodbye};
use support::ui::{
    app, chat, click, enter_in, exits, has_message, history, interact, pump, run_task, shows,
    type_into, update,
};
use support::wait_threads;

/// Empties a connect-form field (through its message, as select-all + delete would) and
/// types `text` into it.
fn retype(app: &mut App, field: &str, clear: connect::Message, text: &str) {
    update(app, Message::Connect(clear));
    type_into(app, field, text);
}

/// Alice's app, connected by hand to `peer` (the Manual tab, prefilled).
fn listening_to(peer: &Peer) -> App {
    listening_as("alice", peer)
}

/// Alice's app listening to `peer`, and `peer` listening to her.
fn both_ways(peer: &Peer) -> App {
    let mut app = listening_to(peer);
    let addr = app.session().expect("session").peer().local_addr();
    peer.connect(&addr.to_string())
        .expect("the peer listens to alice");
    pump(&mut app, |a| !chat(a).listeners().is_empty());
    app
}

/// The app of `username`, connected by hand to `peer`.
fn listening_as(username: &str, peer: &Peer) -> App {
    let mut app = app(Form {
        username: username.into(),
        tab: Tab::Manual,
        peers: peer.local_addr().to_string(),
        ..Form::default()
    });
    click(&mut app, "Connect");
    app
}

#[test]
fn every_invalid_field_says_why_and_connect_stays_disabled() {
    let mut app = app(Form::default());
    assert!(shows(&app, "Required"), "empty username");
    type_into(&mut app, "username", &"x".repeat(33));
    assert!(shows(&app, "At most 32 characters"));

    retype(
        &mut app,
        "port",
        connect::Message::Port(String::new()),
        "abc",
    );
    assert!(shows(&app, "Not a number"));
    retype(
        &mut app,
        "port",
        connect::Message::Port(String::new()),
        "70000",
    );
    assert!(shows(&app, "Port out of range (0–65535)"));
    retype(&mut app, "ip", connect::Message::Ip(String::new()), "1.2.3");
    assert!(shows(&app, "Not an IP address"));

    click(&mut app, "Manual");
    type_into(&mut app, "peers", "localhost:7001 nonsense");
    assert!(shows(&app, "“nonsense” is not host:port"));

    // Connect is disabled: clicking it produces nothing.
    let mut ui = simulator(app.view());
    ui.click("Connect").expect("the button is there");
    assert_eq!(ui.into_messages().count(), 0);
}

#[test]
fn a_failed_start_is_shown_and_the_form_is_kept() {
    // The tracker's port is closed: nobody listens there.
    let closed = free_port();
    let form = Form {
        tracker_port: closed.to_string(),
        ..Form::default()
    };
    let mut app = app(form);
    type_into(&mut app, "username", "alice");
    click(&mut app, "Connect");
    let Screen::Connect(screen) = app.screen() else {
        panic!("connected to a closed port");
    };
    let connect::Status::Failed(error) = screen.status() else {
        panic!("no failure shown: {:?}", screen.status());
    };
    let shown = describe_start_error(error, Lang::En.strings());
    assert!(
        shown.starts_with("Tracker unreachable at 127.0.0.1:"),
        "{shown}"
    );
    assert!(shows(&app, &shown), "the failure is in the window");
    assert_eq!(screen.form().username, "alice", "the form is kept");

    // A port in use is reported the same way.
    let busy = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let mut app = self::app(Form {
        username: "bob".into(),
        port: port.to_string(),
        alone: true,
        ..Form::default()
    });
    click(&mut app, "Connect");
    assert!(
        shows(&app, "Start without connecting to anyone?"),
        "asks first"
    );
    click(&mut app, "Start alone");
    let Screen::Connect(screen) = app.screen() else {
        panic!("started on a port in use");
    };
    let connect::Status::Failed(error) = screen.status() else {
        panic!("no failure shown");
    };
    let shown = describe_start_error(error, Lang::En.strings());
    assert!(
        shown.starts_with(&format!("Cannot listen on 0.0.0.0:{port}")),
        "{shown}"
    );
    assert!(shows(&app, &shown));
}

#[test]
fn closing_the_window_while_connecting_waits_for_the_start_then_exits() {
    for reachable in [true, false] {
        let bob = alone_peer("bob");
        let peers = if reachable {
            bob.local_addr().to_string()
        } else {
            format!("127.0.0.1:{}", free_port())
        };
        let mut app = app(Form {
            username: "alice".into(),
            tab: Tab::Manual,
            peers,
            ..Form::default()
        });
        // Connect, and close the window before the start has answered.
        let start = app.update(Message::Connect(connect::Message::Connect));
        let close = app.update(Message::CloseRequested(iced::window::Id::unique()));
        assert!(!exits(close), "the app waits for the start under way");
        let answer = run_task(start);
        assert_eq!(answer.len(), 1);
        let after = app.update(answer.into_iter().next().expect("an answer"));
        if reachable {
            // The peer that did start leaves at once, then the app exits.
            let closed = run_task(after);
            assert!(matches!(closed.as_slice(), [Message::Closed]));
            assert!(exits(app.update(Message::Closed)));
            assert!(app.session().is_none());
        } else {
            assert!(exits(after), "a failed start while closing ends the app");
        }
    }
}

#[test]
fn manual_connect_to_a_real_peer_then_chat_both_ways() {
    let bob = alone_peer("bob");
    let mut app = app(Form::default());
    type_into(&mut app, "username", "alice");
    click(&mut app, "Manual");
    type_into(&mut app, "peers", &bob.local_addr().to_string());
    click(&mut app, "Connect");

    let alice_addr = chat(&app).title(Lang::En);
    // No IP typed (automatic) and nobody has told alice her address yet: the bound one.
    let fingerprint = app.session().expect("session").peer().fingerprint();
    assert!(
        alice_addr.starts_with(&format!(
            "P2P Messenger — alice ({fingerprint}) — lobby — 0.0.0.0:"
        )),
        "{alice_addr}"
    );
    assert_eq!(app.title(), alice_addr);
    pump(&mut app, |a| !chat(a).listening_to().is_empty());
    assert!(shows(&app, "Listening to (1)"));
    assert!(shows(&app, "Listening to me (0)"));

    // Bob speaks: alice hears it, shown as in the original.
    bob.send("hi alice").expect("send");
    pump(&mut app, |a| has_message(a, "bob", "hi alice"));
    assert!(shows(&app, "[bob] :"));
    assert!(shows(&app, "hi alice"));

    // Manual mode: bob hears alice only once he connects to her.
    let addr = app.session().expect("session").peer().local_addr();
    bob.connect(&addr.to_string()).expect("bob connects back");
    pump(&mut app, |a| !chat(a).listeners().is_empty());
    assert!(shows(&app, "Listening to me (1)"));

    // Send is disabled while the box is empty.
    let mut ui = simulator(app.view());
    ui.click("Send").expect("button");
    assert_eq!(ui.into_messages().count(), 0);

    type_into(&mut app, chat::MESSAGE_BOX, "hello bob");
    enter_in(&mut app, chat::MESSAGE_BOX);
    assert_eq!(recv_message(&bob), ("alice".into(), "hello bob".into()));
    assert!(
        history(&app)
            .entries()
            .iter()
            .any(|e| matches!(&e.kind, EntryKind::Own { text, delivery: Delivery::Sent(1) } if text == "hello bob"))
    );
    // The Send button works too, and the box is empty after sending.
    type_into(&mut app, chat::MESSAGE_BOX, "and again");
    click(&mut app, "Send");
    assert_eq!(recv_message(&bob), ("alice".into(), "and again".into()));
    assert!(shows(&app, "and again"));

    // Closing the window leaves the network: bob sees alice go at once.
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    assert!(app.session().is_none());
    sees_goodbye(&bob, "alice");
}

#[test]
fn two_apps_meet_through_a_tracker_hosted_in_one_of_them() {
    let port = free_port();
    let mut alice = app(Form {
        username: "alice".into(),
        tracker_port: port.to_string(),
        host_tracker: true,
        ..Form::default()
    });
    click(&mut alice, "Connect");
    assert_eq!(
        alice
            .session()
            .expect("alice started")
            .hosted_tracker_port(),
        Some(port)
    );
    assert!(shows(
        &alice,
        &format!("Hosting the tracker on port {port}")
    ));

    let mut bob = app(Form {
        username: "bob".into(),
        tracker_port: port.to_string(),
        ..Form::default()
    });
    click(&mut bob, "Connect");
    pump(&mut bob, |b| {
        chat(b).listening_to().len() == 1 && chat(b).listeners().len() == 1
    });
    pump(&mut alice, |a| {
        chat(a).listening_to().len() == 1 && chat(a).listeners().len() == 1
    });
    assert!(history(&alice).entries().iter().any(
        |e| matches!(&e.kind, EntryKind::Notice(n) if n.starts_with("bob joined (127.0.0.1:"))
    ));

    type_into(&mut alice, chat::MESSAGE_BOX, "Olá, bob!");
    enter_in(&mut alice, chat::MESSAGE_BOX);
    pump(&mut bob, |b| has_message(b, "alice", "Olá, bob!"));
    assert!(shows(&bob, "[alice] :") && shows(&bob, "Olá, bob!"));

    type_into(&mut bob, chat::MESSAGE_BOX, "hey alice");
    enter_in(&mut bob, chat::MESSAGE_BOX);
    pump(&mut alice, |a| has_message(a, "bob", "hey alice"));

    // Bob closes his window: alice is told at once.
    update(
        &mut bob,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    pump(&mut alice, |a| {
        chat(a).listening_to().is_empty() && chat(a).listeners().is_empty()
    });
    assert!(
        history(&alice)
            .entries()
            .iter()
            .any(|e| matches!(&e.kind, EntryKind::Notice(n) if n == "bob left (said goodbye)"))
    );
    update(
        &mut alice,
        Message::CloseRequested(iced::window::Id::unique()),
    );
}

#[test]
fn a_long_conversation_lays_out_only_its_latest_window() {
    let bob = alone_peer("bob");
    let mut app = listening_to(&bob);
    pump(&mut app, |a| !chat(a).listening_to().is_empty());
    for i in 0..10_000 {
        bob.send(&format!("message {i}")).expect("send");
    }
    pump(&mut app, |a| has_message(a, "bob", "message 9999"));
    let chat = history(&app);
    assert!(chat.entries().len() > 10_000);
    assert!(
        chat.shown().len() <= WINDOW + WINDOW / 4,
        "{}",
        chat.shown().len()
    );
    assert!(shows(&app, "message 9999"));
    assert!(!shows(&app, "message 0"), "old messages are not laid out");
    let earlier = format!("Show {WINDOW} earlier messages");
    assert!(shows(&app, &earlier));
    click(&mut app, earlier.as_str());
    assert!(self::history(&app).shown().len() > WINDOW + 100);
    // Every message arrived once and in order.
    let texts: Vec<&str> = history(&app)
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Other { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let expected: Vec<String> = (0..10_000).map(|i| format!("message {i}")).collect();
    assert_eq!(texts, expected);
}

/// Scrolls the conversation by `lines` (positive: towards older entries).
fn scroll(app: &mut App, lines: f32) {
    use iced::mouse::{Event as Mouse, ScrollDelta};
    interact(app, |ui| {
        ui.point_at((300.0, 300.0));
        let _ = ui.simulate([iced::Event::Mouse(Mouse::WheelScrolled {
            delta: ScrollDelta::Lines { x: 0.0, y: lines },
        })]);
    });
}

#[test]
fn the_view_follows_new_messages_only_while_at_the_bottom() {
    let bob = alone_peer("bob");
    let mut app = listening_to(&bob);
    for i in 0..(WINDOW + 50) {
        bob.send(&format!("line {i}")).expect("send");
    }
    let last = format!("line {}", WINDOW + 49);
    pump(&mut app, |a| has_message(a, "bob", &last));
    assert!(history(&app).following());

    // The user scrolls up to read: the view stops following, and what is laid out
    // no longer slides as messages arrive.
    scroll(&mut app, 20.0);
    assert!(!history(&app).following());
    let first_shown = history(&app).shown().next().cloned();
    let shown_before = history(&app).shown().len();
    for i in 0..WINDOW {
        bob.send(&format!("more {i}")).expect("send");
    }
    let last = format!("more {}", WINDOW - 1);
    pump(&mut app, |a| has_message(a, "bob", &last));
    assert_eq!(
        history(&app).shown().next().cloned(),
        first_shown,
        "what the user reads stays put"
    );
    assert_eq!(
        history(&app).shown().len(),
        shown_before,
        "and what is laid out does not grow"
    );
    let new = format!("{WINDOW} new messages — show the latest");
    assert!(shows(&app, &new));

    // Back at the bottom, it takes in what came and follows again.
    scroll(&mut app, -100_000.0);
    assert!(history(&app).following());
    assert_eq!(history(&app).unseen(), 0);
    assert!(history(&app).shown().len() <= WINDOW + WINDOW / 4);
    assert!(shows(&app, &last) && !shows(&app, &new));
    // Sending always brings the view back to the newest message.
    scroll(&mut app, 20.0);
    type_into(&mut app, chat::MESSAGE_BOX, "done reading");
    enter_in(&mut app, chat::MESSAGE_BOX);
    assert!(history(&app).following());
}

/// Alice's app on the chat screen, started alone (the form, then the confirmation).
fn alone_app() -> App {
    let mut app = app(Form {
        username: "alice".into(),
        alone: true,
        ..Form::default()
    });
    click(&mut app, "Connect");
    click(&mut app, "Start alone");
    let _ = chat(&app);
    app
}

/// Delivers bob's messages "message N" for N in `range` to the app, as the subscription
/// would, in batches, without going through sockets (the network paths are tested above).
fn deliver(app: &mut App, range: std::ops::Range<usize>) {
    deliver_texts(app, range.map(|i| format!("message {i}")));
}

/// Delivers bob's messages with these texts, in batches of 1,000.
fn deliver_texts(app: &mut App, texts: impl Iterator<Item = String>) {
    let bob = std::sync::Arc::new(p2p_core::PeerInfo {
        username: "bob".into(),
        addr: "127.0.0.1:7001".parse().unwrap(),
        fingerprint: p2p_core::secure::PublicKey::from_bytes([7; 32]).fingerprint(),
    });
    let all: Vec<String> = texts.collect();
    for batch in all.chunks(1_000) {
        let events = batch
            .iter()
            .map(|text| Event::Message {
                from: std::sync::Arc::clone(&bob),
                text: p2p_core::Text::from(text.clone()),
            })
            .collect();
        update(app, Message::Network(Vec::<Event>::into(events)));
    }
}

/// The texts of the messages the conversation holds, oldest first.
fn texts(app: &App) -> Vec<String> {
    history(app)
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Other { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_flood_keeps_only_the_latest_history_and_says_so() {
    let dropped_note = format!(
        "Older messages are no longer kept here: only the latest {HISTORY} messages or {} MiB of text",
        MAX_BYTES / (1024 * 1024)
    );
    let mut app = alone_app();
    // The welcome notice and HISTORY - 1 messages: all kept, nothing to say.
    deliver(&mut app, 0..HISTORY - 1);
    assert_eq!(history(&app).entries().len(), HISTORY);
    assert_eq!(history(&app).dropped(), 0);
    assert!(!shows(&app, &dropped_note));

    // 501 more: the notice and the first 500 messages go.
    let total = HISTORY + 500;
    deliver(&mut app, HISTORY - 1..total);
    assert_eq!(history(&app).entries().len(), HISTORY);
    assert_eq!(history(&app).dropped(), 501);
    let expected: Vec<String> = (500..total).map(|i| format!("message {i}")).collect();
    assert_eq!(texts(&app), expected, "the newest are kept, in order");

    // The view still follows the newest, with the latest window laid out, and its top
    // says that older messages are gone.
    let last = format!("message {}", total - 1);
    assert!(history(&app).following());
    assert!(history(&app).shown().len() <= WINDOW + WINDOW / 4);
    assert!(
        matches!(&history(&app).shown().next_back().unwrap().kind, EntryKind::Other { text, .. } if *text == last)
    );
    let earlier = format!("Show {WINDOW} earlier messages");
    let mut ui = simulator(app.view());
    assert!(ui.find(last.as_str()).is_ok());
    assert!(ui.find(earlier.as_str()).is_ok());
    assert!(ui.find(dropped_note.as_str()).is_ok());
    drop(ui);

    // The user scrolls up to read: what is laid out stays put while the oldest entries
    // are dropped underneath it, and what arrives is counted, not laid out.
    click(&mut app, earlier.as_str());
    scroll(&mut app, 20.0);
    assert!(!history(&app).following());
    let first_shown = history(&app).shown().next().cloned().unwrap();
    let shown_before = history(&app).shown().len();
    deliver(&mut app, total..total + 100);
    assert_eq!(history(&app).entries().len(), HISTORY);
    assert_eq!(history(&app).shown().next(), Some(&first_shown));
    assert_eq!(
        history(&app).shown().len(),
        shown_before,
        "the laid-out window does not grow while the user reads"
    );
    assert_eq!(history(&app).unseen(), 100);
    assert!(shows(&app, &earlier), "still more than a window above");
    let new = "100 new messages — show the latest";
    assert!(shows(&app, new));

    // The button brings the newest back, followed.
    click(&mut app, new);
    assert!(history(&app).following());
    assert_eq!(history(&app).unseen(), 0);
    assert_eq!(history(&app).shown().len(), WINDOW);
    let last = format!("message {}", total + 99);
    assert!(shows(&app, &last) && !shows(&app, new));

    // With every kept entry laid out, the oldest laid-out one goes when a new one comes,
    // and the new one waits below.
    while history(&app).earlier() > 0 {
        update(&mut app, Message::Chat(chat::Message::ShowEarlier));
    }
    assert_eq!(history(&app).shown().len(), HISTORY);
    assert_eq!(texts(&app)[0], "message 600");
    deliver(&mut app, total + 100..total + 101);
    assert_eq!(history(&app).entries().len(), HISTORY);
    assert_eq!(history(&app).shown().len(), HISTORY - 1);
    assert_eq!(history(&app).unseen(), 1);
    assert_eq!(texts(&app)[0], "message 601");
    assert_eq!(history(&app).dropped(), 602);
}

#[test]
fn a_flood_of_long_messages_is_bounded_by_bytes_and_says_so() {
    let mut app = alone_app();
    // 600 messages of 64 KiB: 37.5 MiB, far fewer than HISTORY entries.
    let long = "x".repeat(64 * 1024 - 8);
    deliver_texts(&mut app, (0..600).map(|i| format!("{i:07} {long}")));
    let h = history(&app);
    assert!(h.bytes() <= MAX_BYTES, "{} bytes kept", h.bytes());
    assert!(h.bytes() > MAX_BYTES - 64 * 1024, "only what must go goes");
    assert!(h.dropped() > 0);
    let kept = texts(&app);
    assert_eq!(kept.len(), h.entries().len());
    let first = 600 - kept.len();
    for (i, text) in kept.iter().enumerate() {
        assert!(text.starts_with(&format!("{:07} ", first + i)), "in order");
    }
    // Short lines after them: the window laid out holds only those, and its top still
    // says that older messages are gone.
    deliver(&mut app, 0..400);
    let dropped_note = format!(
        "Older messages are no longer kept here: only the latest {HISTORY} messages or {} MiB of text",
        MAX_BYTES / (1024 * 1024)
    );
    assert!(shows(&app, &dropped_note));
    assert!(history(&app).bytes() <= MAX_BYTES);
}

#[test]
fn a_message_over_the_limit_is_refused_with_a_visible_error() {
    let bob = alone_peer("bob");
    let mut app = listening_to(&bob);
    let long = "x".repeat(64 * 1024 + 1);
    update(&mut app, Message::Chat(chat::Message::Draft(long.clone())));
    click(&mut app, "Send");
    assert!(shows(&app, "Message too long: 65537 bytes, at most 65536"));
    // Nothing was sent, and the draft is kept for the user to shorten.
    assert!(
        !history(&app)
            .entries()
            .iter()
            .any(|e| matches!(e.kind, EntryKind::Own { .. }))
    );
    // Typing clears the error.
    type_into(&mut app, chat::MESSAGE_BOX, "!");
    assert!(!shows(&app, "Message too long: 65537 bytes, at most 65536"));
}

#[test]
fn the_window_speaks_portuguese() {
    let (app, _) = App::new(Options {
        lang: Lang::Pt,
        ..Options::default()
    });
    for text in [
        "Dados pessoais",
        "Nome de utilizador",
        "Ligar",
        "Automático",
        "Obrigatório",
    ] {
        assert!(shows(&app, text), "{text}");
    }
}

#[test]
fn connect_flag_starts_at_once() {
    let bob = alone_peer("bob");
    let (mut app, task) = App::new(Options {
        form: Form {
            username: "carol".into(),
            tab: Tab::Manual,
            peers: bob.local_addr().to_string(),
            ..Form::default()
        },
        connect: true,
        ..Options::default()
    });
    for m in run_task(task) {
        update(&mut app, m);
    }
    assert_eq!(chat(&app).title(Lang::En), app.title());
}

#[test]
fn a_username_that_looks_like_a_placeholder_is_shown_as_typed() {
    // Each template is filled in one pass: a value that contains `{1}` is not expanded again.
    let bob = alone_peer("{0}{1}");
    let mut app = listening_as("{1}", &bob);
    let addr = app.session().expect("session").peer().local_addr();
    let fingerprint = app.session().expect("session").peer().fingerprint();
    assert_eq!(
        app.title(),
        format!("P2P Messenger — {{1}} ({fingerprint}) — lobby — {addr}")
    );
    assert!(shows(&app, &format!("You are {{1}} at {addr}.")));
    pump(&mut app, |a| !chat(a).listening_to().is_empty());
    let joined = format!("{{0}}{{1}} joined ({})", bob.local_addr());
    assert!(shows(&app, &joined), "{:?}", history(&app).entries());
}

/// The deliveries of alice's own messages, oldest first.
fn deliveries(app: &App) -> Vec<(String, Delivery)> {
    history(app)
        .entries()
        .iter()
        .filter_map(|e| match &e.kind {
            EntryKind::Own { text, delivery } => Some((text.clone(), delivery.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_message_nobody_receives_says_so_beside_it() {
    for (lang, unheard) in [
        (Lang::En, "nobody received this: no one is listening to you"),
        (
            Lang::Pt,
            "ninguém recebeu esta mensagem: ninguém o está a ouvir",
        ),
    ] {
        let (mut app, _) = App::new(Options {
            lang,
            form: Form {
                username: "alice".into(),
                alone: true,
                ..Form::default()
            },
            ..Options::default()
        });
        update(&mut app, Message::Connect(connect::Message::Connect));
        update(&mut app, Message::Connect(connect::Message::ConfirmAlone));
        type_into(&mut app, chat::MESSAGE_BOX, "anyone there?");
        enter_in(&mut app, chat::MESSAGE_BOX);
        assert!(shows(&app, "anyone there?"));
        assert!(shows(&app, unheard), "{lang}: {:?}", deliveries(&app));

        // Once bob listens, a message reaches him and says nothing more.
        let bob = alone_peer("bob");
        let addr = app.session().expect("session").peer().local_addr();
        bob.connect(&addr.to_string())
            .expect("bob listens to alice");
        pump(&mut app, |a| !chat(a).listeners().is_empty());
        type_into(&mut app, chat::MESSAGE_BOX, "hi bob");
        enter_in(&mut app, chat::MESSAGE_BOX);
        assert_eq!(recv_message(&bob), ("alice".into(), "hi bob".into()));
        assert_eq!(
            deliveries(&app),
            [
                ("anyone there?".into(), Delivery::Sent(0)),
                ("hi bob".into(), Delivery::Sent(1))
            ]
        );
        update(
            &mut app,
            Message::CloseRequested(iced::window::Id::unique()),
        );
    }
}

#[test]
fn messages_are_sent_by_the_session_s_own_thread_in_order_and_it_is_joined_at_close() {
    let bob = alone_peer("bob");
    let mut app = both_ways(&bob);
    let addr = app.session().expect("session").peer().local_addr();
    let sender = format!("gui-send-{}", addr.port());
    wait_threads(&sender, 1);

    // Ten messages from the UI, none waiting for the network: each is shown at once and
    // its result comes back later, as a message.
    let mut results = Vec::new();
    for i in 0..10 {
        update(
            &mut app,
            Message::Chat(chat::Message::Draft(format!("m{i}"))),
        );
        results.push(app.update(Message::Chat(chat::Message::Send)));
    }
    let sending: Vec<(String, Delivery)> = (0..10)
        .map(|i| (format!("m{i}"), Delivery::Sending))
        .collect();
    assert_eq!(deliveries(&app), sending);
    for i in 0..10 {
        assert_eq!(
            recv_message(&bob),
            ("alice".into(), format!("m{i}")),
            "in order"
        );
    }
    for task in results {
        for message in run_task(task) {
            assert!(matches!(message, Message::Chat(chat::Message::Sent { .. })));
            update(&mut app, message);
        }
    }
    let sent: Vec<(String, Delivery)> = (0..10)
        .map(|i| (format!("m{i}"), Delivery::Sent(1)))
        .collect();
    assert_eq!(deliveries(&app), sent);

    // Closing the window joins the sender thread, and bob sees alice leave.
    update(
        &mut app,
        Message::CloseRequested(iced::window::Id::unique()),
    );
    wait_threads(&sender, 0);
    sees_goodbye(&bob, "alice");
}

#[test]
fn the_signal_message_leaves_as_a_close_request_does() {
    use p2p_gui::signals::Signal;
    // On the connect screen: the app ends at once.
    let mut app = app(Form::default());
    assert!(exits(app.update(Message::Signal(Signal::Terminate))));

    // Chatting: the peer leaves (bob is told it said goodbye), then the app ends; a second
    // signal meanwhile asks nothing more of the app.
    let bob = alone_peer("bob");
    let mut app = both_ways(&bob);
    let leaving = app.update(Message::Signal(Signal::Interrupt));
    assert!(app.session().is_none(), "the session is being closed");
    assert!(run_task(app.update(Message::Signal(Signal::Interrupt))).is_empty());
    assert!(matches!(run_task(leaving).as_slice(), [Message::Closed]));
    assert!(exits(app.update(Message::Closed)));
    sees_goodbye(&bob, "alice");
}

/// The events of Shift+Enter, as a keyboard sends them: Shift held, Enter tapped.
fn shift_enter() -> Vec<iced::Event> {
    use iced::keyboard::{self, Key, Location, Modifiers, key};
    let enter = Key::Named(key::Named::Enter);
    let unidentified = key::Physical::Unidentified(key::NativeCode::Unidentified);
    vec![
        iced::Event::Keyboard(keyboard::Event::ModifiersChanged(Modifiers::SHIFT)),
        iced::Event::Keyboard(keyboard::Event::KeyPressed {
            key: enter.clone(),
            modified_key: enter.clone(),
            physical_key: unidentified,
            location: Location::Standard,
            modifiers: Modifiers::SHIFT,
            repeat: false,
            text: Some("\n".into()),
        }),
        iced::Event::Keyboard(keyboard::Event::KeyReleased {
            key: enter.clone(),
            modified_key: enter,
            physical_key: unidentified,
            location: Location::Standard,
            modifiers: Modifiers::SHIFT,
        }),
        iced::Event::Keyboard(keyboard::Event::ModifiersChanged(Modifiers::empty())),
    ]
}

#[test]
fn shift_enter_breaks_the_line_and_enter_sends_the_message() {
    let bob = alone_peer("bob");
    let mut app = both_ways(&bob);
    interact(&mut app, |ui| {
        ui.click(id(chat::MESSAGE_BOX)).expect("the message box");
        let _ = ui.typewrite("first line");
        let _ = ui.simulate(shift_enter());
        let _ = ui.typewrite("second line");
    });
    assert_eq!(chat(&app).draft(), "first line\nsecond line");
    assert!(
        deliveries(&app).is_empty(),
        "Shift+Enter sends nothing: {:?}",
        deliveries(&app)
    );

    enter_in(&mut app, chat::MESSAGE_BOX);
    assert_eq!(
        recv_message(&bob),
        ("alice".into(), "first line\nsecond line".into())
    );
    assert_eq!(chat(&app).draft(), "", "the box is emptied once sent");
    assert_eq!(deliveries(&app).len(), 1);
}

/// A tracker on 127.0.0.1:`port`.
fn tracker_on(port: u16) -> tracker::Tracker {
    tracker::Tracker::start(tracker::TrackerConfig {
        bind_addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        ..tracker::TrackerConfig::default()
    })
    .expect("the tracker starts")
}

#[test]
fn reconnect_brings_the_chat_back_after_the_tracker_connection_dropped() {
    let port = free_port();
    let tracker = tracker_on(port);
    let mut config = PeerConfig::new("bob");
    config.bind_addr = "127.0.0.1:0".parse().expect("addr");
    config.mode = p2p_core::Mode::tracker(format!("127.0.0.1:{port}"));
    let bob = Peer::start(config).expect("bob starts");
    let mut alice = app(Form {
        username: "alice".into(),
        ip: "127.0.0.1".into(),
        tracker_port: port.to_string(),
        ..Form::default()
    });
    click(&mut alice, "Connect");
    pump(&mut alice, |a| {
        chat(a).listening_to().len() == 1 && chat(a).listeners().len() == 1
    });
    assert!(!shows(&alice, "Reconnect to the tracker"));

    // The tracker goes away: its connection drops, the window says so and offers to
    // reconnect.
    tracker.shutdown();
    pump(&mut alice, |a| shows(a, "Reconnect to the tracker"));
    assert!(shows(&alice, "The tracker is not answering."));
    let before = alice.session().expect("session").peer().local_addr();

    // It is back; Reconnect starts over on the same port and meets bob again.
    let _tracker = tracker_on(port);
    click(&mut alice, "Reconnect to the tracker");
    assert!(!shows(&alice, "Reconnect to the tracker"));
    assert_eq!(
        alice.session().expect("a new session").peer().local_addr(),
        before,
        "the same address, where bob knew alice"
    );
    pump(&mut alice, |a| {
        chat(a).listening_to().len() == 1 && chat(a).listeners().len() == 1
    });
    bob.send("welcome back").expect("bob sends");
    pump(&mut alice, |a| has_message(a, "bob", "welcome back"));
    type_into(&mut alice, chat::MESSAGE_BOX, "glad to be back");
    enter_in(&mut alice, chat::MESSAGE_BOX);
    assert_eq!(
        recv_message(&bob),
        ("alice".into(), "glad to be back".into())
    );
    update(
        &mut alice,
        Message::CloseRequested(iced::window::Id::unique()),
    );
}

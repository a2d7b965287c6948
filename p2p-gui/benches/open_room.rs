//! Opening a room with a long past: the time from asking for a session to the chat screen
//! laid out with the room's latest page (start the peer, read the page from the history,
//! build the screen, `view` + layout), for a room with 100,000 stored messages against an
//! empty one, interleaved in the same run.
//!
//! ```text
//! ICED_TEST_BACKEND=tiny-skia cargo bench -p p2p-gui --bench open_room
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use iced_test::simulator;
use p2p_gui::app::{App, Message, Options, Screen};
use p2p_gui::data::form::{Join, Request};
use p2p_gui::network::{self, Session};
use p2p_gui::store::{Kind, Line, Store};

const STORED: usize = 100_000;
const ROUNDS: usize = 15;

fn request() -> Request {
    Request {
        username: "alice".into(),
        ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        room: p2p_core::protocol::Room::lobby(),
        port: 0,
        join: Join::Alone,
    }
}

/// One opening: session, screen, layout. The session is closed afterwards, untimed.
fn open(store: &Store) -> (Duration, usize) {
    let started = Instant::now();
    let session = Session::start_blocking(request(), Some(store.clone())).expect("starts");
    let (mut app, _) = App::new(Options::default());
    let _ = app.update(Message::Started(0, Ok(session)));
    drop(simulator(app.view()));
    let took = started.elapsed();
    let lines = match app.screen() {
        Screen::Chat(chat) => chat.history().entries().len(),
        Screen::Connect(_) => 0,
    };
    let Screen::Chat(_) = app.screen() else {
        panic!("not on the chat screen");
    };
    if let Some(session) = app.session().cloned() {
        session.close();
    }
    (took, lines)
}

fn main() {
    let empty_dir = tempfile::tempdir().unwrap();
    let full_dir = tempfile::tempdir().unwrap();
    let empty = Store::open(empty_dir.path()).unwrap();
    let full = Store::open(full_dir.path()).unwrap();
    let conversation = request().conversation_key();
    for chunk in 0..STORED / 1000 {
        let lines = (0..1000)
            .map(|i| Line {
                at_ms: 1_700_000_000_000 + (chunk * 1000 + i) as i64,
                kind: Kind::Other,
                sender: "bob".into(),
                text: format!(
                    "message number {}, a line of ordinary chat text",
                    chunk * 1000 + i
                ),
            })
            .collect();
        full.append_blocking(&conversation, lines).unwrap();
    }
    let (mut e, mut f) = (Vec::new(), Vec::new());
    let (mut e_lines, mut f_lines) = (0, 0);
    // Each opening adds a welcome notice to the room; negligible against 100,000.
    for _ in 0..ROUNDS {
        let (t, n) = open(&empty);
        e.push(t);
        e_lines = n;
        let (t, n) = open(&full);
        f.push(t);
        f_lines = n;
    }
    e.sort();
    f.sort();
    let (e, f) = (e[ROUNDS / 2], f[ROUNDS / 2]);
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "| room | lines in memory | open: session + latest page + layout (median of {ROUNDS}) |"
    );
    println!("|---|---:|---:|");
    println!("| empty | {e_lines} | {} |", ms(e));
    println!("| 100,000 stored messages | {f_lines} | {} |", ms(f));
    println!(
        "\nratio 100,000 / empty: **{:.2}** (page of {} lines)",
        f.as_secs_f64() / e.as_secs_f64(),
        network::PAGE
    );
    empty.close();
    full.close();
}

//! Opening a room with a long past: the time from asking for a session to the chat screen
//! laid out with the room's latest page (start the peer, read the page from the history,
//! build the screen, `view` + layout), for a room with 100,000 stored messages against an
//! empty one and against a room that holds exactly one page, interleaved in the same run. The
//! one-page room separates what a long past costs (nothing, if the two match) from what
//! laying out a page of lines costs.
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
        room: p2p_core::RoomName::lobby(),
        passphrase: None,
        port: 0,
        join: Join::Alone,
        dht: None,
    }
}

/// One opening: session, screen, layout. The session is closed afterwards, untimed.
fn open(store: &Store) -> (Duration, usize) {
    let started = Instant::now();
    let session = Session::start_blocking(request(), Some(store.clone()), None).expect("starts");
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

/// Stores `count` lines of ordinary chat in the conversation, a thousand per transaction.
fn fill(store: &Store, conversation: &str, count: usize) {
    for chunk in 0..count.div_ceil(1000) {
        let lines = (0..1000.min(count - chunk * 1000))
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
        store.append_blocking(conversation, lines).unwrap();
    }
}

fn main() {
    let dirs = [(); 3].map(|()| tempfile::tempdir().unwrap());
    let stores = dirs.each_ref().map(|d| Store::open(d.path()).unwrap());
    let conversation = request().conversation_key();
    let rooms = ["empty", "one page (300 stored)", "100,000 stored messages"];
    fill(&stores[1], &conversation, network::PAGE);
    fill(&stores[2], &conversation, STORED);
    let mut times = [(); 3].map(|()| Vec::new());
    let mut lines = [0; 3];
    // Each opening adds a welcome notice to the room; negligible against a page.
    for _ in 0..ROUNDS {
        for (i, store) in stores.iter().enumerate() {
            let (t, n) = open(store);
            times[i].push(t);
            lines[i] = n;
        }
    }
    let medians = times.map(|mut t| {
        t.sort();
        t[ROUNDS / 2]
    });
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    println!(
        "| room | lines in memory | open: session + latest page + layout (median of {ROUNDS}) |"
    );
    println!("|---|---:|---:|");
    for i in 0..3 {
        println!("| {} | {} | {} |", rooms[i], lines[i], ms(medians[i]));
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "\nratio 100,000 / empty: **{:.2}**; 100,000 / one page: **{:.2}** (page of {} lines)",
        ratio(medians[2], medians[0]),
        ratio(medians[2], medians[1]),
        network::PAGE
    );
    for store in stores {
        store.close();
    }
}

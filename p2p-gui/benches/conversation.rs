//! How the chat screen's cost grows with the conversation: the time to take in one new
//! message and lay the window out again (`update` + `view` + layout, as Iced does after
//! each event), with 100 entries, with 10,000 entries (only the latest window laid out,
//! as the app does), and with the same 10,000 entries all laid out (the baseline: what a
//! plain scrollable column would cost).
//!
//! ```text
//! ICED_TEST_BACKEND=tiny-skia cargo bench -p p2p-gui --bench conversation
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iced_test::simulator;
use p2p_core::{Event, PeerInfo, Text};
use p2p_gui::app::{App, Message, Options, Screen};
use p2p_gui::data::form::{Join, Request};
use p2p_gui::network::Session;
use p2p_gui::screen::chat;

const ROUNDS: usize = 60;

fn message(from: &Arc<PeerInfo>, i: usize) -> Event {
    Event::Message {
        from: Arc::clone(from),
        text: Text::from(format!("message number {i}, a line of ordinary chat text")),
    }
}

/// An app on the chat screen holding `entries` messages.
fn app_with(entries: usize, from: &Arc<PeerInfo>) -> App {
    let session = Session::start_blocking(
        Request {
            username: "alice".into(),
            ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            room: p2p_core::RoomName::lobby(),
            passphrase: None,
            port: 0,
            join: Join::Alone,
            dht: None,
        },
        None,
        None,
    )
    .expect("peer starts");
    let (mut app, _) = App::new(Options::default());
    let _ = app.update(Message::Started(0, Ok(session)));
    for chunk in (0..entries).collect::<Vec<_>>().chunks(256) {
        let events: Vec<Event> = chunk.iter().map(|&i| message(from, i)).collect();
        let _ = app.update(Message::Network(events.into()));
    }
    app
}

fn shown(app: &App) -> usize {
    match app.screen() {
        Screen::Chat(chat) => chat.history().shown().len(),
        Screen::Connect(_) => 0,
    }
}

/// Median time to take in one message and lay the screen out again.
fn median_frame(app: &mut App, from: &Arc<PeerInfo>, next: &mut usize) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let _ = app.update(Message::Network(vec![message(from, *next)].into()));
            *next += 1;
            let ui = simulator(app.view());
            drop(ui);
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    if std::env::var_os("ICED_TEST_BACKEND").is_none() {
        eprintln!("note: set ICED_TEST_BACKEND=tiny-skia to render in software");
    }
    let from = Arc::new(PeerInfo {
        username: "bob".into(),
        addr: "127.0.0.1:7001".parse().unwrap(),
        fingerprint: p2p_core::secure::PublicKey::from_bytes([7; 32]).fingerprint(),
    });
    let mut small = app_with(100, &from);
    let mut large = app_with(10_000, &from);
    let mut baseline = app_with(10_000, &from);
    while shown(&baseline) < 10_000 {
        let _ = baseline.update(Message::Chat(chat::Message::ShowEarlier));
    }

    // Interleave the three so that a noisy moment on the machine hits all of them.
    let (mut s, mut l, mut b) = (Vec::new(), Vec::new(), Vec::new());
    let mut next = 1_000_000;
    for _ in 0..5 {
        s.push(median_frame(&mut small, &from, &mut next));
        l.push(median_frame(&mut large, &from, &mut next));
        b.push(median_frame(&mut baseline, &from, &mut next));
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (s, l, b) = (median(&mut s), median(&mut l), median(&mut b));
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    println!("| conversation | entries laid out | one message: update + view + layout (median) |");
    println!("|---|---:|---:|");
    println!(
        "| 100 entries (400 by the end) | {} | {} |",
        shown(&small),
        ms(s)
    );
    println!(
        "| 10,000 entries, latest window (the app) | {} | {} |",
        shown(&large),
        ms(l)
    );
    println!(
        "| 10,000 entries, all laid out (baseline) | {} | {} |",
        shown(&baseline),
        ms(b)
    );
    println!(
        "\nratio 10,000 / 100 entries: **{:.2}**; baseline / app at 10,000: **{:.1}**",
        l.as_secs_f64() / s.as_secs_f64(),
        b.as_secs_f64() / l.as_secs_f64()
    );
}

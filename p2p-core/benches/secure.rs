//! The cost of secure rooms, each beside its plaintext baseline in the same run:
//!
//! - `derive`: one room key derivation (argon2id, m = 19 MiB, t = 2, p = 1), which a peer
//!   pays once per start.
//! - `handshake`: link set-up over real TCP connections on 127.0.0.1: a plaintext connect and
//!   one small frame each way (what a link cost before secure rooms), against a connect and
//!   the Noise handshake, a connect, the handshake and one small frame each way over
//!   records, and the full set-up with a running `Peer` (connect, the Noise handshake, a
//!   hello sealed as a record, and the peer's welcome: its accept thread, link thread and
//!   listener registration included). Interleaved round by round; medians and ratios.
//! - `stream`: one TCP connection carrying batches of 64-byte chat frames, read back through
//!   the frame reader, in plaintext against sealed as records (a whole batch sealed at once,
//!   as the links will do); medians of MB/s and their ratio.
//!
//! ```text
//! cargo bench -p p2p-core --bench secure                  # all, about half a minute
//! cargo bench -p p2p-core --bench secure -- handshake     # some: derive handshake stream
//! ```
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Instant;

use std::sync::atomic::{AtomicU64, Ordering};

use p2p_core::protocol::{Frame, FrameReader, Handshake, PROTOCOL_VERSION, ReadError, encode_chat};
use p2p_core::secure::room::{ARGON2_LANES, ARGON2_MEMORY_KIB, ARGON2_PASSES};
use p2p_core::secure::{Identity, Passphrase, RecordWriter, RoomKey, Secured, initiate, respond};
use p2p_core::{Peer, PeerConfig};

const MAX_FRAME: usize = 1 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn quantile(v: &[f64], q: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(seconds: f64) -> String {
    format!("{:.3} ms", seconds * 1e3)
}

// ---------------------------------------------------------------------------------------
// Room key derivation.

fn derive() {
    const RUNS: usize = 11;
    let passphrase = Passphrase::new("correct horse battery staple").unwrap();
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let key = RoomKey::derive("lobby", Some(&passphrase)).unwrap();
        times.push(started.elapsed().as_secs_f64());
        std::hint::black_box(key.room_id());
    }
    println!(
        "\n### Room key derivation: argon2id, m = {} MiB, t = {ARGON2_PASSES}, p = {ARGON2_LANES}\n",
        ARGON2_MEMORY_KIB / 1024
    );
    println!("| runs | median | quartiles | fastest | slowest |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {RUNS} | {} | {} – {} | {} | {} |",
        ms(median(times.clone())),
        ms(quantile(&times, 0.25)),
        ms(quantile(&times, 0.75)),
        ms(quantile(&times, 0.0)),
        ms(quantile(&times, 1.0)),
    );
}

// ---------------------------------------------------------------------------------------
// Link set-up.

#[derive(Clone, Copy, PartialEq)]
enum SetUp {
    /// Connect, one small frame each way in plaintext.
    Plain,
    /// Connect and the Noise handshake.
    Handshake,
    /// Connect, the handshake, one small frame each way over records.
    Secured,
    /// Connect to a running `Peer`, the handshake, a hello, the peer's welcome.
    Peer,
}

impl SetUp {
    const ALL: [SetUp; 4] = [SetUp::Plain, SetUp::Handshake, SetUp::Secured, SetUp::Peer];

    fn name(self) -> &'static str {
        match self {
            SetUp::Plain => "plaintext: connect + a frame each way",
            SetUp::Handshake => "connect + Noise handshake",
            SetUp::Secured => "connect + handshake + a frame each way over records",
            SetUp::Peer => "a p2p-core Peer: connect + handshake + hello + welcome",
        }
    }
}

/// A frame the size of a hello.
fn hello() -> Vec<u8> {
    encode_chat("alice 127.0.0.1:40000 connect-back v2")
        .unwrap()
        .to_vec()
}

/// The server side of one set-up on an accepted connection.
fn serve_one(mut stream: TcpStream, how: SetUp, identity: &Identity, key: &RoomKey) {
    stream.set_nodelay(true).unwrap();
    match how {
        SetUp::Plain => {
            let mut frames = FrameReader::new(MAX_FRAME);
            frames.read_frame(&mut stream).unwrap();
            stream.write_all(&hello()).unwrap();
        }
        SetUp::Handshake => {
            respond(&mut stream, identity, key).unwrap();
        }
        SetUp::Peer => unreachable!("a Peer serves itself"),
        SetUp::Secured => {
            let secured = respond(&mut stream, identity, key).unwrap();
            let (mut reader, mut writer) = secured.into_records(stream.try_clone().unwrap());
            FrameReader::new(MAX_FRAME).read_frame(&mut reader).unwrap();
            writer
                .write_sealed(&mut stream, &hello(), &mut Vec::new())
                .unwrap();
        }
    }
    // Wait for the client to close, so that the next connection finds the server free.
    let _ = stream.read(&mut [0u8; 1]);
}

/// The client side: returns the seconds from the connect to the end of the set-up.
fn client_one(addr: SocketAddr, how: SetUp, identity: &Identity, key: &RoomKey) -> f64 {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    match how {
        SetUp::Plain => {
            stream.write_all(&hello()).unwrap();
            FrameReader::new(MAX_FRAME).read_frame(&mut stream).unwrap();
        }
        SetUp::Handshake => {
            initiate(&mut stream, identity, key).unwrap();
        }
        SetUp::Secured => {
            let secured = initiate(&mut stream, identity, key).unwrap();
            let (mut reader, mut writer) = secured.into_records(stream.try_clone().unwrap());
            writer
                .write_sealed(&mut stream, &hello(), &mut Vec::new())
                .unwrap();
            FrameReader::new(MAX_FRAME).read_frame(&mut reader).unwrap();
        }
        SetUp::Peer => {
            // A fresh peer id each time: the peer refuses a second link from one peer.
            static NEXT_ID: AtomicU64 = AtomicU64::new(1);
            let secured = initiate(&mut stream, identity, key).unwrap();
            let (mut reader, mut writer) = secured.into_records(stream.try_clone().unwrap());
            let hello = Frame::Handshake(Handshake {
                version: PROTOCOL_VERSION,
                peer_id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                username: "bench".into(),
                listen_ip: Some(addr.ip()),
                listen_port: 9,
                connect_back: false,
                duplex: false,
            });
            writer
                .write_sealed(&mut stream, &hello.encode().unwrap(), &mut Vec::new())
                .unwrap();
            let welcome = FrameReader::new(MAX_FRAME).read_frame(&mut reader).unwrap();
            assert!(matches!(welcome, Frame::Welcome(_)), "{welcome:?}");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    stream.shutdown(Shutdown::Both).unwrap();
    elapsed
}

fn handshake() {
    const ROUNDS: usize = 5;
    const PER_ROUND: usize = 200;
    let key = RoomKey::derive("lobby", None).unwrap();
    let (client_id, server_id) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); SetUp::ALL.len()];
    // The running peer (open room `lobby`, the same key), whose events a thread drains so
    // that its link threads never wait on the embedder.
    let mut config = PeerConfig::new("alice");
    config.bind_addr = "127.0.0.1:0".parse().unwrap();
    let peer = Peer::start(config).unwrap();
    thread::scope(|s| {
        let events = peer.events().clone();
        s.spawn(move || while events.recv().is_ok() {});
        for _ in 0..ROUNDS {
            for (i, how) in SetUp::ALL.into_iter().enumerate() {
                if how == SetUp::Peer {
                    for _ in 0..PER_ROUND {
                        samples[i].push(client_one(peer.local_addr(), how, &client_id, &key));
                    }
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = listener.local_addr().unwrap();
                let (key, server_id) = (&key, &server_id);
                let server = s.spawn(move || {
                    for _ in 0..PER_ROUND {
                        let (stream, _) = listener.accept().unwrap();
                        serve_one(stream, how, server_id, key);
                    }
                });
                for _ in 0..PER_ROUND {
                    samples[i].push(client_one(addr, how, &client_id, key));
                }
                server.join().unwrap();
            }
        }
        // Dropped, so that its event channel disconnects and the drain ends.
        drop(peer);
    });
    println!(
        "\n### Link set-up on 127.0.0.1: {} set-ups of each kind, interleaved in {ROUNDS} rounds\n",
        ROUNDS * PER_ROUND
    );
    println!("| set-up | median | p90 | median / plaintext |");
    println!("| --- | ---: | ---: | ---: |");
    let plain = median(samples[0].clone());
    for (how, times) in SetUp::ALL.into_iter().zip(&samples) {
        let m = median(times.clone());
        println!(
            "| {} | {} | {} | {:.2} |",
            how.name(),
            ms(m),
            ms(quantile(times, 0.9)),
            m / plain
        );
    }
    let full = median(samples[3].clone());
    println!(
        "\nfull set-up with a Peer: median **{}** (goal ≤ 2 ms), {} more than plaintext",
        ms(full),
        ms(full - plain)
    );
}

// ---------------------------------------------------------------------------------------
// Streaming.

/// Bytes of chat frames per batch (what a listener's writer gathers in one go under load).
const BATCH_BYTES: usize = 64 * 1024;

fn batch() -> Vec<u8> {
    let frame = encode_chat(&"m".repeat(64)).unwrap();
    let mut batch = Vec::with_capacity(BATCH_BYTES + frame.len());
    while batch.len() + frame.len() <= BATCH_BYTES {
        batch.extend_from_slice(&frame);
    }
    batch
}

/// Streams `batches` batches over one loopback connection and reads them back as frames;
/// returns plaintext MB/s.
fn stream_once(secure: bool, batches: usize, ids: &(Identity, Identity), key: &RoomKey) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let batch = batch();
    let frames_per_batch = batch.len() / encode_chat(&"m".repeat(64)).unwrap().len();
    let expected = batches * frames_per_batch;
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            let (mut stream, _) = listener.accept().unwrap();
            let mut frames = FrameReader::new(MAX_FRAME);
            let count = |frames: &mut FrameReader, src: &mut dyn Read| {
                let mut n = 0;
                loop {
                    match frames.read_frame(src) {
                        Ok(_) => n += 1,
                        Err(ReadError::Closed) => return n,
                        Err(e) => panic!("{e}"),
                    }
                }
            };
            if secure {
                let secured = respond(&mut stream, &ids.1, key).unwrap();
                let (mut reader, _) = secured.into_records(stream);
                count(&mut frames, &mut reader)
            } else {
                count(&mut frames, &mut stream)
            }
        });
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut writer = if secure {
            let secured = initiate(&mut stream, &ids.0, key).unwrap();
            Some(secured.into_records(io::empty()).1)
        } else {
            None
        };
        let started = Instant::now();
        let mut scratch = Vec::with_capacity(BATCH_BYTES + 1024);
        for _ in 0..batches {
            match writer.as_mut() {
                Some(w) => w.write_sealed(&mut stream, &batch, &mut scratch).unwrap(),
                None => stream.write_all(&batch).unwrap(),
            }
        }
        stream.shutdown(Shutdown::Write).unwrap();
        let got = receiver.join().unwrap();
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(got, expected, "every frame arrived");
        (batches * batch.len()) as f64 / seconds / 1e6
    })
}

fn stream() {
    const ROUNDS: usize = 7;
    const BATCHES: usize = 1024; // 64 MiB a run
    let key = RoomKey::derive("lobby", None).unwrap();
    let ids = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        plain.push(stream_once(false, BATCHES, &ids, &key));
        sealed.push(stream_once(true, BATCHES, &ids, &key));
    }
    println!(
        "\n### One connection, 64 MiB of 64-byte chat frames in 64 KiB batches, {ROUNDS} runs each, interleaved\n"
    );
    println!("| stream | MB/s of frames (median) | slowest | fastest |");
    println!("| --- | ---: | ---: | ---: |");
    for (name, v) in [("plaintext", &plain), ("sealed as records", &sealed)] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} |",
            median(v.clone()),
            quantile(v, 0.0),
            quantile(v, 1.0)
        );
    }
    println!(
        "\nratio sealed / plaintext: **{:.2}**",
        median(sealed) / median(plain)
    );
}

// ---------------------------------------------------------------------------------------
// The cipher alone.

/// Seals and opens 64 MiB in memory, one thread: MB/s of each, against copying the same
/// bytes (the least any layer costs).
fn cipher() {
    const ROUNDS: usize = 7;
    const BATCHES: usize = 1024;
    let key = RoomKey::derive("lobby", None).unwrap();
    let ids = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let batch = batch();
    let total = (BATCHES * batch.len()) as f64;
    let (mut copy, mut seal, mut open) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (a, b) = Secured::pair((&ids.0, &key), (&ids.1, &key)).unwrap();
        let (_, mut writer) = a.into_records(io::empty());
        let mut wire = Vec::with_capacity(RecordWriter::sealed_len(BATCHES * batch.len()));
        let started = Instant::now();
        for _ in 0..BATCHES {
            writer.seal(&batch, &mut wire).unwrap();
        }
        seal.push(total / started.elapsed().as_secs_f64() / 1e6);

        let mut copied = Vec::with_capacity(BATCHES * batch.len());
        let started = Instant::now();
        for _ in 0..BATCHES {
            copied.extend_from_slice(std::hint::black_box(&batch));
        }
        copy.push(total / started.elapsed().as_secs_f64() / 1e6);

        let (mut reader, _) = b.into_records(&wire[..]);
        let mut buf = vec![0u8; BATCH_BYTES];
        let started = Instant::now();
        let mut read = 0;
        loop {
            match reader.read(&mut buf).unwrap() {
                0 => break,
                n => read += n,
            }
        }
        open.push(total / started.elapsed().as_secs_f64() / 1e6);
        assert_eq!(read as f64, total);
    }
    println!("\n### The cipher alone: 64 MiB in 64 KiB batches, one thread, {ROUNDS} runs\n");
    println!("| operation | MB/s (median) | / copy |");
    println!("| --- | ---: | ---: |");
    let base = median(copy.clone());
    for (name, v) in [
        ("copy (baseline)", &copy),
        ("seal", &seal),
        ("open (through io::Read)", &open),
    ] {
        let m = median(v.clone());
        println!("| {name} | {m:.0} | {:.2} |", m / base);
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    if wants("derive") {
        derive();
    }
    if wants("handshake") {
        handshake();
    }
    if wants("cipher") {
        cipher();
    }
    if wants("stream") {
        stream();
    }
}

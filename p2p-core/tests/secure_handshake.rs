//! The Noise handshake (`p2p_core::secure::handshake`) over real TCP connections on
//! 127.0.0.1: the same room key gives both sides each other's identity and a working session
//! (one reader thread and one writer thread per side); another passphrase fails on both
//! sides, and the initiator is told plainly; a relay that records every byte finds none of
//! the plaintext; what a stranger without the passphrase learns is exactly what
//! `docs/security.md` says; simultaneous open picks complementary roles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use p2p_core::protocol::{DEFAULT_MAX_FRAME_BYTES, Frame, FrameReader, ReadError, encode_chat};
use p2p_core::secure::handshake::{NOISE_PATTERN, ROOM_KEY_MISMATCH};
use p2p_core::secure::{
    Identity, Passphrase, PublicKey, RoomKey, SecureError, Secured, handshake::Role, initiate,
    respond,
};

/// Deadline for every socket read and write: generous, the machine is shared.
const DEADLINE: Duration = Duration::from_secs(20);

fn room(passphrase: Option<&str>) -> RoomKey {
    let passphrase = passphrase.map(|p| Passphrase::new(p).unwrap());
    RoomKey::derive("secure handshake tests", passphrase.as_ref()).unwrap()
}

/// The room key with passphrase "correct horse", derived once.
fn shared_room() -> &'static RoomKey {
    static KEY: OnceLock<RoomKey> = OnceLock::new();
    KEY.get_or_init(|| room(Some("correct horse")))
}

fn with_deadlines(stream: TcpStream) -> TcpStream {
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_write_timeout(Some(DEADLINE)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// A listener on 127.0.0.1 whose first accepted connection runs `server` on a thread.
fn serve<T: Send + 'static>(
    server: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        server(with_deadlines(stream))
    });
    (addr, handle)
}

fn connect(addr: SocketAddr) -> TcpStream {
    with_deadlines(TcpStream::connect(addr).unwrap())
}

#[test]
fn the_same_room_key_gives_each_side_the_others_identity() {
    let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let bob_for_server = bob.clone();
    let (addr, server) = serve(move |mut stream| {
        let secured = respond(&mut stream, &bob_for_server, shared_room()).unwrap();
        (secured.remote_key(), secured.remote_fingerprint())
    });
    let mut stream = connect(addr);
    let secured = initiate(&mut stream, &alice, shared_room()).unwrap();
    assert_eq!(secured.remote_key(), bob.public_key());
    assert_eq!(secured.remote_fingerprint(), bob.fingerprint());
    let (seen_by_bob, fingerprint) = server.join().unwrap();
    assert_eq!(seen_by_bob, alice.public_key());
    assert_eq!(fingerprint, alice.fingerprint());
}

/// The shape of a link: per side, one thread reads frames through the record reader (with a
/// read timeout, as the link threads use for keep-alives) while another seals batches.
#[test]
fn a_secured_link_carries_frames_both_ways_at_once() {
    const BATCHES: usize = 200;
    fn run_side(stream: TcpStream, secured: Secured, name: &'static str) -> Vec<String> {
        let reading = stream.try_clone().unwrap();
        reading
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (mut reader, mut writer) = secured.into_records(reading);
        let mut out = stream;
        let sender = thread::spawn(move || {
            let mut scratch = Vec::new();
            for batch in 0..BATCHES {
                let mut plaintext = Vec::new();
                for i in 0..5 {
                    let text = format!("{name} {batch}.{i} {}", "z".repeat(batch * 97 % 3000));
                    plaintext.extend_from_slice(&encode_chat(&text).unwrap());
                }
                writer
                    .write_sealed(&mut out, &plaintext, &mut scratch)
                    .unwrap();
            }
            out.write_all(&{
                let mut bye = Vec::new();
                writer
                    .seal(&Frame::Goodbye.encode().unwrap(), &mut bye)
                    .unwrap();
                bye
            })
            .unwrap();
            out
        });
        let mut frames = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        let mut texts = Vec::new();
        let mut timeouts = 0;
        let deadline = Instant::now() + DEADLINE;
        loop {
            match frames.read_frame(&mut reader) {
                Ok(Frame::Chat { text }) => texts.push(text),
                Ok(Frame::Goodbye) => break,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) if e.is_timeout() => {
                    timeouts += 1;
                    assert!(
                        Instant::now() < deadline,
                        "no goodbye after {timeouts} timeouts"
                    );
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        let out = sender.join().unwrap();
        out.shutdown(Shutdown::Both).unwrap();
        texts
    }

    let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let (addr, server) = serve(move |mut stream| {
        let secured = respond(&mut stream, &bob, shared_room()).unwrap();
        run_side(stream, secured, "bob")
    });
    let mut stream = connect(addr);
    let secured = initiate(&mut stream, &alice, shared_room()).unwrap();
    let heard_by_alice = run_side(stream, secured, "alice");
    let heard_by_bob = server.join().unwrap();
    for (heard, from) in [(heard_by_alice, "bob"), (heard_by_bob, "alice")] {
        assert_eq!(heard.len(), BATCHES * 5);
        for (n, text) in heard.iter().enumerate() {
            let (batch, i) = (n / 5, n % 5);
            assert!(
                text.starts_with(&format!("{from} {batch}.{i} ")),
                "{text:.40}"
            );
        }
    }
}

#[test]
fn another_passphrase_fails_on_both_sides_and_the_initiator_is_told() {
    let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let (addr, server) = serve(move |mut stream| {
        let result = respond(&mut stream, &bob, shared_room());
        // The responder closes after its notice; nothing else was sent.
        drop(stream);
        result
    });
    let mut stream = connect(addr);
    let wrong = room(Some("wrong horse"));
    let result = initiate(&mut stream, &alice, &wrong);
    assert!(
        matches!(result, Err(SecureError::WrongRoomKey)),
        "initiator: {result:?}"
    );
    let served = server.join().unwrap();
    assert!(
        matches!(served, Err(SecureError::WrongRoomKey)),
        "responder: {served:?}"
    );
    // After the notice the responder closed: the initiator receives nothing more.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");

    // An open room and a closed room of the same name do not meet either.
    let bob = Identity::generate().unwrap();
    let (addr, server) = serve(move |mut stream| respond(&mut stream, &bob, shared_room()));
    let result = initiate(&mut connect(addr), &alice, &room(None));
    assert!(
        matches!(result, Err(SecureError::WrongRoomKey)),
        "{result:?}"
    );
    assert!(matches!(
        server.join().unwrap(),
        Err(SecureError::WrongRoomKey)
    ));
}

/// A relay between the two peers that forwards and records every byte, both ways.
struct Relay {
    addr: SocketAddr,
    thread: thread::JoinHandle<()>,
    seen: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    fn start(to: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Arc::clone(&seen);
        let thread = thread::spawn(move || {
            let (client, _) = listener.accept().unwrap();
            let server = TcpStream::connect(to).unwrap();
            let pump = |mut from: TcpStream, mut to: TcpStream, seen: Arc<Mutex<Vec<u8>>>| {
                thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                seen.lock().unwrap().extend_from_slice(&buf[..n]);
                                if to.write_all(&buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                })
            };
            let up = pump(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                Arc::clone(&recorder),
            );
            let down = pump(server, client, recorder);
            up.join().unwrap();
            down.join().unwrap();
        });
        Relay { addr, thread, seen }
    }

    fn finish(self) -> Vec<u8> {
        self.thread.join().unwrap();
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_relay_that_records_everything_finds_no_plaintext() {
    const USERNAME: &str = "alice-of-wonderland";
    const SECRET: &str = "the eagle lands at midnight";
    let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let bob_key = bob.public_key();
    let (addr, server) = serve(move |mut stream| {
        let secured = respond(&mut stream, &bob, shared_room()).unwrap();
        let (mut reader, mut writer) = secured.into_records(stream.try_clone().unwrap());
        // The hello would come as frames: read them all, answer with a welcome.
        let mut frames = FrameReader::new(DEFAULT_MAX_FRAME_BYTES);
        let mut heard = Vec::new();
        loop {
            match frames.read_frame(&mut reader) {
                Ok(Frame::Chat { text }) => heard.push(text),
                Ok(Frame::Goodbye) => break,
                Ok(other) => panic!("{other:?}"),
                Err(e) => panic!("{e}"),
            }
        }
        let mut scratch = Vec::new();
        let reply = encode_chat(&format!("welcome {USERNAME}")).unwrap();
        writer
            .write_sealed(&mut stream, &reply, &mut scratch)
            .unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        heard
    });
    let relay = Relay::start(addr);
    let mut stream = connect(relay.addr);
    let secured = initiate(&mut stream, &alice, shared_room()).unwrap();
    // Through the relay, each side still sees the other's real identity.
    assert_eq!(secured.remote_key(), bob_key);
    let (mut reader, mut writer) = secured.into_records(stream.try_clone().unwrap());
    let mut plaintext = Vec::new();
    for text in [format!("hello, I am {USERNAME}"), SECRET.to_string()] {
        plaintext.extend_from_slice(&encode_chat(&text).unwrap());
    }
    plaintext.extend_from_slice(&Frame::Goodbye.encode().unwrap());
    let mut scratch = Vec::new();
    writer
        .write_sealed(&mut stream, &plaintext, &mut scratch)
        .unwrap();
    let mut reply = Vec::new();
    reader.read_to_end(&mut reply).unwrap();
    assert!(contains(&reply, format!("welcome {USERNAME}").as_bytes()));
    stream.shutdown(Shutdown::Both).unwrap();
    let heard = server.join().unwrap();
    assert_eq!(heard[1], SECRET);

    let seen = relay.finish();
    assert!(
        seen.len() > 200,
        "the relay saw the handshake and the records"
    );
    for needle in [
        USERNAME.as_bytes(),
        SECRET.as_bytes(),
        b"eagle",
        b"welcome",
        b"correct horse",
        alice.public_key().as_bytes(),
        bob_key.as_bytes(),
        alice.fingerprint().to_string().as_bytes(),
    ] {
        assert!(
            !contains(&seen, needle),
            "the relay saw {:?}",
            String::from_utf8_lossy(needle)
        );
    }
}

/// What a stranger without the passphrase learns, checked with snow driven by hand: the
/// static public key of whoever it talks to (message 2 when it initiates, message 3 when it
/// answers), and nothing after that. `docs/security.md` states exactly this.
#[test]
fn a_stranger_learns_the_static_key_of_the_peer_it_talks_to_and_nothing_more() {
    fn stranger(role: Role) -> snow::HandshakeState {
        let params = NOISE_PATTERN.parse().unwrap();
        let wrong_psk = [7u8; 32];
        let key = snow::Builder::new(params).generate_keypair().unwrap();
        let builder = snow::Builder::new(NOISE_PATTERN.parse().unwrap())
            .local_private_key(&key.private)
            .unwrap()
            .psk(3, &wrong_psk)
            .unwrap()
            .prologue(b"p2p-chat secure link v1")
            .unwrap();
        match role {
            Role::Initiator => builder.build_initiator().unwrap(),
            Role::Responder => builder.build_responder().unwrap(),
        }
    }
    fn send(stream: &mut TcpStream, message: &[u8]) {
        stream
            .write_all(&(message.len() as u16).to_be_bytes())
            .unwrap();
        stream.write_all(message).unwrap();
    }
    fn receive(stream: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut message).unwrap();
        message
    }
    let mut buf = [0u8; 1024];

    // The stranger connects to a member: it gets the member's key from message 2...
    let member = Identity::generate().unwrap();
    let member_key = member.public_key();
    let (addr, server) = serve(move |mut stream| respond(&mut stream, &member, shared_room()));
    let mut stream = connect(addr);
    let mut noise = stranger(Role::Initiator);
    let n = noise.write_message(&[], &mut buf).unwrap();
    send(&mut stream, &buf[..n]);
    noise.read_message(&receive(&mut stream), &mut buf).unwrap();
    let learned: [u8; 32] = noise.get_remote_static().unwrap().try_into().unwrap();
    assert_eq!(PublicKey::from_bytes(learned), member_key);
    // ...then its message 3 is refused, and it receives only the plain notice.
    let n = noise.write_message(&[], &mut buf).unwrap();
    send(&mut stream, &buf[..n]);
    assert_eq!(receive(&mut stream), ROOM_KEY_MISMATCH);
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(matches!(
        server.join().unwrap(),
        Err(SecureError::WrongRoomKey)
    ));

    // A member connects to a stranger (a poisoned address list): the stranger reads the
    // member's key out of message 3, although the message as a whole fails.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let trap = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut stream = with_deadlines(stream);
        let mut noise = stranger(Role::Responder);
        let mut buf = [0u8; 1024];
        noise.read_message(&receive(&mut stream), &mut buf).unwrap();
        let n = noise.write_message(&[], &mut buf).unwrap();
        send(&mut stream, &buf[..n]);
        let failed = noise.read_message(&receive(&mut stream), &mut buf).is_err();
        let learned: [u8; 32] = noise.get_remote_static().unwrap().try_into().unwrap();
        send(&mut stream, ROOM_KEY_MISMATCH);
        (failed, PublicKey::from_bytes(learned))
    });
    let member = Identity::generate().unwrap();
    let result = initiate(&mut connect(addr), &member, shared_room());
    assert!(
        matches!(result, Err(SecureError::WrongRoomKey)),
        "{result:?}"
    );
    let (failed, learned) = trap.join().unwrap();
    assert!(failed, "the stranger cannot read message 3's payload");
    assert_eq!(learned, member.public_key());
}

#[test]
fn what_is_not_a_p2p_chat_peer_fails_the_handshake_plainly() {
    let me = Identity::generate().unwrap();
    // A version-1 peer's plaintext hello (a 4-byte frame length, then the frame).
    let (addr, server) = serve(move |mut stream| respond(&mut stream, &me, shared_room()));
    let mut old = connect(addr);
    old.write_all(&Frame::Ping.encode().unwrap()).unwrap();
    old.write_all(&[0u8; 64]).unwrap();
    let served = server.join().unwrap();
    assert!(
        matches!(served, Err(SecureError::Handshake(_))),
        "{served:?}"
    );

    // A server that answers with something else, then closes.
    let (addr, server) = serve(|mut stream| {
        let mut first = [0u8; 50];
        stream.read_exact(&mut first).unwrap();
        stream
            .write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            .unwrap();
    });
    let me = Identity::generate().unwrap();
    let result = initiate(&mut connect(addr), &me, shared_room());
    assert!(
        matches!(result, Err(SecureError::Handshake(_))),
        "{result:?}"
    );
    server.join().unwrap();
}

#[test]
fn a_silent_peer_times_out_on_the_callers_deadline() {
    let me = Identity::generate().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (stream, _) = listener.accept().unwrap();
    let mut stream = with_deadlines(stream);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let result = respond(&mut stream, &me, shared_room());
    match result {
        Err(SecureError::Io(e)) => assert!(
            matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < DEADLINE);
    drop(silent);
}

/// Both ends of one TCP connection compute their role from the two addresses alone and the
/// handshake succeeds. (Through NAT routers the addresses are the external ones the
/// rendezvous reported; on loopback each side's local address is what the other sees.)
#[test]
fn simultaneous_open_roles_agree_over_a_real_connection() {
    fn by_role(mut stream: TcpStream, me: &Identity) -> Result<PublicKey, SecureError> {
        let own = stream.local_addr().unwrap();
        let peer = stream.peer_addr().unwrap();
        let secured = match Role::for_simultaneous_open(own, peer).unwrap() {
            Role::Initiator => initiate(&mut stream, me, shared_room())?,
            Role::Responder => respond(&mut stream, me, shared_room())?,
        };
        Ok(secured.remote_key())
    }
    let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let b_for_server = b.clone();
    let (addr, server) = serve(move |stream| by_role(stream, &b_for_server));
    let seen_by_a = by_role(connect(addr), &a).unwrap();
    assert_eq!(seen_by_a, b.public_key());
    assert_eq!(server.join().unwrap().unwrap(), a.public_key());
}

#[test]
fn frame_reader_errors_pass_through_the_record_layer() {
    // A record reader's failure reaches the frame reader as an I/O error the link can log.
    let (alice, bob) = (Identity::generate().unwrap(), Identity::generate().unwrap());
    let (a, b) = Secured::pair((&alice, shared_room()), (&bob, shared_room())).unwrap();
    let (_, mut writer) = a.into_records(io::empty());
    let mut wire = Vec::new();
    writer
        .seal(&encode_chat("intact").unwrap(), &mut wire)
        .unwrap();
    let last = wire.len() - 1;
    wire[last] ^= 0x80;
    let (mut reader, _) = b.into_records(&wire[..]);
    match FrameReader::new(DEFAULT_MAX_FRAME_BYTES).read_frame(&mut reader) {
        Err(ReadError::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            assert_eq!(
                e.to_string(),
                "record 0 was tampered with (it fails authentication)"
            );
        }
        other => panic!("{other:?}"),
    }
}

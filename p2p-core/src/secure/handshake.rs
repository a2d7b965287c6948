//! The Noise handshake that secures a link: `Noise_XXpsk3_25519_AESGCM_BLAKE2s` over any
//! `Read + Write` stream (the caller sets the socket's deadlines).
//!
//! ```text
//! initiator                                   responder
//!   -> e                                (message 1, 48 bytes)
//!   <- e, ee, s, es                     (message 2, 96 bytes: the responder's static key)
//!   -> s, se, psk                       (message 3, 64 bytes: the initiator's static key;
//!                                        the room key is mixed in last)
//!   <- confirmation                     (an empty transport record, 16 bytes), or
//!   <- "p2p-chat: room key mismatch"    (plain bytes, then the responder closes)
//! ```
//!
//! Each message travels as a record (a 2-byte big-endian length, then the message). All
//! handshake payloads are empty: nothing that names the user travels here. The hello and
//! welcome go afterwards as frames over the record layer, once the room key is mixed in.
//!
//! Only the responder can tell whether the room keys match (it is the first to read a message
//! that depends on the PSK), so it answers message 3: with the confirmation, which is the
//! first record of its direction (nonce 0) and proves it holds the same room key, or with the
//! fixed notice. The notice is not authenticated (a party without the room key cannot
//! authenticate anything to us); an attacker who forges it can only make a handshake fail,
//! which an attacker on the path can do anyway by cutting the connection.

use std::cmp::Ordering;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use snow::{Builder, HandshakeState, StatelessTransportState};

use super::error::SecureError;
use super::fingerprint::Fingerprint;
use super::identity::{Identity, PublicKey};
use super::record::{RECORD_HEADER_BYTES, RecordReader, RecordWriter, TAG_BYTES};
use super::room::RoomKey;

/// The Noise protocol name. AES-256-GCM rather than ChaCha20-Poly1305: the same Noise
/// properties, and ring runs it on the processor's AES and carry-less multiply instructions
/// (x86-64, ARMv8), which seals and opens a link's records faster (`docs/security.md`,
/// "Why AES-256-GCM").
pub const NOISE_PATTERN: &str = "Noise_XXpsk3_25519_AESGCM_BLAKE2s";

/// Bound into the handshake hash: a handshake succeeds only between peers of this version
/// of the secure link.
const PROLOGUE: &[u8] = b"p2p-chat secure link v1";

/// What a responder sends, in the clear, when message 3 does not decrypt (the initiator has
/// another room key), just before closing.
pub const ROOM_KEY_MISMATCH: &[u8] = b"p2p-chat: room key mismatch";

/// Longest handshake message accepted (the real ones are 48, 96 and 64 bytes): a longer
/// length prefix is not a p2p-chat peer, and is refused before anything is allocated.
const MAX_HANDSHAKE_MESSAGE: usize = 256;

/// Which end of the handshake a peer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends message 1 ([`initiate`]).
    Initiator,
    /// Answers it ([`respond`]).
    Responder,
}

impl Role {
    /// The role of a peer on a connection that both sides opened at once (TCP simultaneous
    /// open through NAT routers: both connected, neither accepted), computed by each side
    /// alone from the two endpoints' **external** addresses, the ones the rendezvous (the
    /// tracker) reported: `own` is this peer's own as the rendezvous saw it, `peer` the
    /// other's. The side with the lower address initiates: the other side, holding the same
    /// two addresses the other way round, computes the opposite role.
    ///
    /// Addresses compare as IPv6 (an IPv4 address as its IPv4-mapped form), then by port.
    /// `None` when the two are equal (a connection to oneself).
    pub fn for_simultaneous_open(own: SocketAddr, peer: SocketAddr) -> Option<Role> {
        let key = |a: SocketAddr| {
            let ip = match a.ip().to_canonical() {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            (ip.octets(), a.port())
        };
        match key(own).cmp(&key(peer)) {
            Ordering::Less => Some(Role::Initiator),
            Ordering::Greater => Some(Role::Responder),
            Ordering::Equal => None,
        }
    }
}

/// A link whose handshake succeeded: the other side's identity and the session the record
/// layer runs on.
pub struct Secured {
    session: Arc<StatelessTransportState>,
    remote: PublicKey,
    send_nonce: u64,
    receive_nonce: u64,
}

impl Secured {
    /// The other side's static public key: its identity, proved by the handshake.
    pub fn remote_key(&self) -> PublicKey {
        self.remote
    }

    /// The fingerprint of [`Secured::remote_key`].
    pub fn remote_fingerprint(&self) -> Fingerprint {
        self.remote.fingerprint()
    }

    /// Splits the session into the reader of the records that arrive on `reader` (typically
    /// a clone of the stream) and the writer of those this side sends: one of each, see
    /// [the one-writer rule](super::record#one-writer-per-direction).
    pub fn into_records<R: Read>(self, reader: R) -> (RecordReader<R>, RecordWriter) {
        let reader = RecordReader::new(reader, Arc::clone(&self.session), self.receive_nonce);
        (reader, RecordWriter::new(self.session, self.send_nonce))
    }

    /// Both ends of one session, handshaken in memory (no stream): for tests, benchmarks and
    /// fuzzing of the record layer. `.0` is the initiator's end, `.1` the responder's.
    ///
    /// # Errors
    ///
    /// [`SecureError::Crypto`] if the Noise library refuses (a bug), and
    /// [`SecureError::WrongRoomKey`] if the two room keys differ.
    pub fn pair(
        initiator: (&Identity, &RoomKey),
        responder: (&Identity, &RoomKey),
    ) -> Result<(Secured, Secured), SecureError> {
        let mut i = start(initiator.0, initiator.1, Role::Initiator)?;
        let mut r = start(responder.0, responder.1, Role::Responder)?;
        let mut message = [0u8; MAX_HANDSHAKE_MESSAGE];
        let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];
        let n = i.write_message(&[], &mut message).map_err(crypto)?;
        r.read_message(&message[..n], &mut payload)
            .map_err(crypto)?;
        let n = r.write_message(&[], &mut message).map_err(crypto)?;
        i.read_message(&message[..n], &mut payload)
            .map_err(crypto)?;
        let n = i.write_message(&[], &mut message).map_err(crypto)?;
        if r.read_message(&message[..n], &mut payload).is_err() {
            return Err(SecureError::WrongRoomKey);
        }
        // The confirmation (nonce 0 of the responder's direction) is taken as sent and read.
        Ok((finish(i, 0, 1)?, finish(r, 1, 0)?))
    }
}

impl std::fmt::Debug for Secured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secured")
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}

/// Runs the initiator's side of the handshake on `stream` (a connection this peer opened).
/// Returns once the responder has confirmed that it holds the same room key.
///
/// # Errors
///
/// [`SecureError::WrongRoomKey`] when the responder says the room keys differ;
/// [`SecureError::Handshake`] when the other side is not a p2p-chat peer, closes early or
/// sends altered messages; [`SecureError::Io`] when the stream fails or times out.
pub fn initiate<S: Read + Write + ?Sized>(
    stream: &mut S,
    identity: &Identity,
    room: &RoomKey,
) -> Result<Secured, SecureError> {
    let mut noise = start(identity, room, Role::Initiator)?;
    let mut message = [0u8; MAX_HANDSHAKE_MESSAGE];
    let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];

    let n = noise.write_message(&[], &mut message).map_err(crypto)?;
    send(stream, &message[..n])?;

    let n = receive(stream, &mut message)?;
    noise
        .read_message(&message[..n], &mut payload)
        .map_err(|_| {
            SecureError::Handshake(
                "message 2 does not decrypt: not a p2p-chat peer, or altered on the way",
            )
        })?;

    let n = noise.write_message(&[], &mut message).map_err(crypto)?;
    send(stream, &message[..n])?;

    let n = receive(stream, &mut message)?;
    if &message[..n] == ROOM_KEY_MISMATCH {
        return Err(SecureError::WrongRoomKey);
    }
    let secured = finish(noise, 0, 1)?;
    match secured.session.read_message(0, &message[..n], &mut payload) {
        Ok(0) => Ok(secured),
        _ => Err(SecureError::Handshake(
            "the confirmation does not decrypt: altered on the way",
        )),
    }
}

/// Runs the responder's side of the handshake on `stream` (a connection this peer accepted).
/// When the initiator holds another room key, sends it [`ROOM_KEY_MISMATCH`] and returns
/// [`SecureError::WrongRoomKey`]: close the connection then.
///
/// # Errors
///
/// As [`initiate`].
pub fn respond<S: Read + Write + ?Sized>(
    stream: &mut S,
    identity: &Identity,
    room: &RoomKey,
) -> Result<Secured, SecureError> {
    let mut noise = start(identity, room, Role::Responder)?;
    let mut message = [0u8; MAX_HANDSHAKE_MESSAGE];
    let mut payload = [0u8; MAX_HANDSHAKE_MESSAGE];

    let n = receive(stream, &mut message)?;
    noise
        .read_message(&message[..n], &mut payload)
        .map_err(|_| SecureError::Handshake("message 1 is not a Noise handshake"))?;

    let n = noise.write_message(&[], &mut message).map_err(crypto)?;
    send(stream, &message[..n])?;

    let n = receive(stream, &mut message)?;
    if noise.read_message(&message[..n], &mut payload).is_err() {
        // Best effort: the initiator learns why; the link closes either way.
        let _ = send(stream, ROOM_KEY_MISMATCH);
        return Err(SecureError::WrongRoomKey);
    }
    let secured = finish(noise, 1, 0)?;
    let mut confirmation = [0u8; TAG_BYTES];
    secured
        .session
        .write_message(0, &[], &mut confirmation)
        .map_err(crypto)?;
    send(stream, &confirmation)?;
    Ok(secured)
}

fn start(identity: &Identity, room: &RoomKey, role: Role) -> Result<HandshakeState, SecureError> {
    let params = NOISE_PATTERN.parse().map_err(crypto)?;
    let builder = Builder::new(params)
        .local_private_key(identity.private_key())
        .and_then(|b| b.psk(3, room.psk()))
        .and_then(|b| b.prologue(PROLOGUE))
        .map_err(crypto)?;
    match role {
        Role::Initiator => builder.build_initiator(),
        Role::Responder => builder.build_responder(),
    }
    .map_err(crypto)
}

fn finish(
    noise: HandshakeState,
    send_nonce: u64,
    receive_nonce: u64,
) -> Result<Secured, SecureError> {
    let mut remote = [0u8; 32];
    match noise.get_remote_static() {
        Some(key) if key.len() == 32 => remote.copy_from_slice(key),
        _ => {
            return Err(SecureError::Crypto(
                "no remote static key after the handshake",
            ));
        }
    }
    let session = noise.into_stateless_transport_mode().map_err(crypto)?;
    Ok(Secured {
        session: Arc::new(session),
        remote: PublicKey::from_bytes(remote),
        send_nonce,
        receive_nonce,
    })
}

fn crypto(_: snow::Error) -> SecureError {
    SecureError::Crypto("the Noise library refused its input")
}

/// Writes one handshake message as a record.
fn send<S: Write + ?Sized>(stream: &mut S, message: &[u8]) -> io::Result<()> {
    let mut record = [0u8; RECORD_HEADER_BYTES + MAX_HANDSHAKE_MESSAGE];
    let len = message.len().min(MAX_HANDSHAKE_MESSAGE);
    record[..RECORD_HEADER_BYTES].copy_from_slice(&(len as u16).to_be_bytes());
    record[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len].copy_from_slice(&message[..len]);
    stream.write_all(&record[..RECORD_HEADER_BYTES + len])?;
    stream.flush()
}

/// Reads one handshake message into `message`; returns its length.
fn receive<S: Read + ?Sized>(stream: &mut S, message: &mut [u8]) -> Result<usize, SecureError> {
    let closed = |e: io::Error| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            SecureError::Handshake("the other side closed the connection during the handshake")
        }
        _ => SecureError::Io(e),
    };
    let mut header = [0u8; RECORD_HEADER_BYTES];
    stream.read_exact(&mut header).map_err(closed)?;
    let len = usize::from(u16::from_be_bytes(header));
    if len > message.len() {
        return Err(SecureError::Handshake(
            "handshake message too long: not a p2p-chat peer",
        ));
    }
    stream.read_exact(&mut message[..len]).map_err(closed)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn simultaneous_open_gives_each_side_the_other_role() {
        let pairs = [
            ("10.0.0.1:4000", "10.0.0.2:4000"),
            ("10.0.0.1:5000", "10.0.0.1:4000"),
            ("203.0.113.9:1", "[2001:db8::1]:1"),
            ("[::ffff:10.0.0.1]:4000", "10.0.0.1:4001"),
            ("[2001:db8::2]:9", "[2001:db8::1]:9"),
        ];
        for (a, b) in pairs {
            let (a, b) = (addr(a), addr(b));
            let ra = Role::for_simultaneous_open(a, b).unwrap();
            let rb = Role::for_simultaneous_open(b, a).unwrap();
            assert_ne!(ra, rb, "{a} {b}");
        }
        assert_eq!(
            Role::for_simultaneous_open(addr("10.0.0.1:4000"), addr("10.0.0.2:1")),
            Some(Role::Initiator)
        );
        assert_eq!(
            Role::for_simultaneous_open(addr("10.0.0.1:4000"), addr("10.0.0.1:4000")),
            None
        );
        // An IPv4 address and its IPv4-mapped IPv6 form are one endpoint.
        let v4 = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1), 4000));
        let mapped = SocketAddr::from((Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped(), 4000));
        assert_eq!(Role::for_simultaneous_open(v4, mapped), None);
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 4000));
        assert!(Role::for_simultaneous_open(v4, v6).is_some());
    }

    #[test]
    fn an_in_memory_pair_shares_one_session() {
        let key = RoomKey::derive("pair test", None).unwrap();
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        let (sa, sb) = Secured::pair((&a, &key), (&b, &key)).unwrap();
        assert_eq!(sa.remote_key(), b.public_key());
        assert_eq!(sb.remote_key(), a.public_key());
        let (_, mut writer) = sa.into_records(io::empty());
        let mut wire = Vec::new();
        writer.seal(b"hello", &mut wire).unwrap();
        let (mut reader, _) = sb.into_records(&wire[..]);
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "hello");
    }

    #[test]
    fn an_in_memory_pair_with_two_room_keys_fails() {
        let key = RoomKey::derive("pair test", None).unwrap();
        let other = RoomKey::derive("another room", None).unwrap();
        let (a, b) = (Identity::generate().unwrap(), Identity::generate().unwrap());
        assert!(matches!(
            Secured::pair((&a, &key), (&b, &other)),
            Err(SecureError::WrongRoomKey)
        ));
    }

    #[test]
    fn oversized_or_cut_handshake_messages_are_refused() {
        let key = RoomKey::derive("pair test", None).unwrap();
        let me = Identity::generate().unwrap();
        // A plaintext p2p-chat v1 hello starts with a 4-byte frame length: 0x0000 then more.
        let mut long = io::Cursor::new(vec![0xff, 0xff, 1, 2, 3]);
        let mut sink = Vec::new();
        let mut stream = Duplex(&mut long, &mut sink);
        assert!(matches!(
            respond(&mut stream, &me, &key),
            Err(SecureError::Handshake(_))
        ));
        let mut cut = io::Cursor::new(vec![0, 48, 1, 2]);
        let mut stream = Duplex(&mut cut, &mut sink);
        assert!(matches!(
            respond(&mut stream, &me, &key),
            Err(SecureError::Handshake(_))
        ));
        let mut empty = io::Cursor::new(vec![0, 0]);
        let mut stream = Duplex(&mut empty, &mut sink);
        assert!(matches!(
            respond(&mut stream, &me, &key),
            Err(SecureError::Handshake(_))
        ));
        assert!(sink.is_empty(), "nothing is answered to a bad message 1");
    }

    /// Reads from one side, writes to another.
    struct Duplex<'a>(&'a mut io::Cursor<Vec<u8>>, &'a mut Vec<u8>);

    impl Read for Duplex<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
    }

    impl Write for Duplex<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
}

//! Link set-up, in one place: opening a TCP connection to a peer (socket options, binding to
//! the listening port), the handshake exchange on either side, and who plays which side of
//! a connection that both peers opened at once (TCP simultaneous open).
//!
//! Every peer link goes through here: one-way links, duplex links and punched links, on the
//! side that connects ([`initiate`]) and on the side that accepts ([`read_handshake`], then
//! [`welcome`] or [`refuse`]). Each runs the Noise handshake right after the TCP connection
//! (the connecting side initiates; on a punched connection the role rule decides), which
//! proves both sides hold the room's key and gives each the other's identity key; then the
//! hello and its welcome travel as the first frames over the record layer. After these
//! functions a link is a stream, its two halves ([`Inbound`], [`Outbound`]) and the other
//! peer's identity.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::channel::{self, Deadline, Inbound, Outbound};
use crate::node::Node;
use crate::protocol::{
    Frame, Handshake, MAX_HANDSHAKE_FRAME_BYTES, PROTOCOL_VERSION, ReadError, Welcome,
    validate_username,
};
use crate::secure::{self, PublicKey, Role, SecureError, Secured};
use crate::threads::{Role as SocketRole, SocketGuard};
use crate::{Error, Result};

/// Which local port an outgoing connection is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalPort {
    /// Any free port (the operating system's choice).
    Any,
    /// The listening port, so that a port-preserving NAT router keeps one external port for
    /// this peer; an ephemeral one if that port is taken for this destination (a connection
    /// to the same address still in TIME_WAIT, say).
    Listening,
    /// The listening port and no other: a punch is pointless from any other port.
    ListeningOnly,
}

/// A connection being made or made, registered with the peer's threads.
pub(crate) type Connection = (Arc<TcpStream>, SocketGuard);

/// Connects to `addr` with a socket registered with the peer's threads before it connects,
/// so that a shutdown cuts the attempt short instead of waiting out `timeout`, and later
/// cuts a read the thread is blocked in. Fails once shutdown has begun.
pub(crate) fn dial(
    node: &Node,
    addr: SocketAddr,
    timeout: Duration,
    from: LocalPort,
) -> io::Result<Connection> {
    let role = SocketRole::Reader;
    match from {
        LocalPort::Any => dial_from(node, addr, timeout, false, role),
        LocalPort::ListeningOnly => dial_from(node, addr, timeout, true, role),
        LocalPort::Listening => match dial_from(node, addr, timeout, true, role) {
            Err(e) if is_port_clash(&e) => {
                debug!("cannot connect to {addr} from the listening port ({e}): from another");
                dial_from(node, addr, timeout, false, role)
            }
            other => other,
        },
    }
}

/// The errors that say "this local port cannot be used for this destination now".
fn is_port_clash(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::AddrInUse | io::ErrorKind::AddrNotAvailable
    )
}

fn dial_from(
    node: &Node,
    addr: SocketAddr,
    timeout: Duration,
    listen_port: bool,
    role: SocketRole,
) -> io::Result<Connection> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if listen_port {
        let bound = node.bound_addr;
        let ip = match (bound.ip(), addr) {
            (ip, SocketAddr::V4(_)) if ip.is_ipv4() => ip,
            (ip, SocketAddr::V6(_)) if ip.is_ipv6() => ip,
            (_, SocketAddr::V4(_)) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            (_, SocketAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        };
        socket.set_reuse_address(true)?;
        #[cfg(unix)]
        socket.set_reuse_port(true)?;
        socket.bind(&SocketAddr::new(ip, bound.port()).into())?;
    }
    let stream = Arc::new(TcpStream::from(socket));
    let guard = node
        .threads
        .register(&stream, role)
        .ok_or_else(|| io::Error::other("shutting down"))?;
    SockRef::from(&*stream).connect_timeout(&addr.into(), timeout)?;
    // A shutdown between `register` and the connect marks the socket's read side shut,
    // which the connect's poll takes for a completed connection: make sure it is one.
    if node.stop.is_set() {
        return Err(io::Error::other("shutting down"));
    }
    stream.peer_addr()?;
    let _ = stream.set_nodelay(true);
    Ok((stream, guard))
}

/// Which side of the handshake a peer plays on a connection both peers opened (a punch):
/// the one whose external address is the lower initiates the Noise handshake
/// ([`Role::for_simultaneous_open`]) and then sends the hello.
/// `None` when the two addresses are one (a peer punching itself).
pub(crate) fn punch_role(own: SocketAddr, peer: SocketAddr) -> Option<Role> {
    Role::for_simultaneous_open(own, peer)
}

/// How long a punched connection's responder waits for the other side's handshake before
/// it sends its own. The other side may not know it is punching yet (its introduction is
/// still on its way): our attempt then reached its listener, which waits for a handshake,
/// like any accepted connection. In a true simultaneous open the other side's handshake
/// comes within a round trip.
pub(crate) const PUNCH_RESPONDER_WAIT: Duration = Duration::from_secs(1);

/// The role this peer plays on a connection its punch made: the one
/// [`punch_role`] gave, except that a responder whose other side sends nothing within
/// [`PUNCH_RESPONDER_WAIT`] initiates (nothing was sent either way, so either role is still
/// open; the other side is then a listener waiting for the first handshake message).
pub(crate) fn settle_punch_role(stream: &TcpStream, role: Role) -> Role {
    if role == Role::Initiator {
        return role;
    }
    let _ = stream.set_read_timeout(Some(PUNCH_RESPONDER_WAIT));
    match stream.peek(&mut [0u8; 1]) {
        Ok(n) if n > 0 => Role::Responder,
        Ok(_) => Role::Responder, // closed: the handshake read reports it
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            debug!("punched connection: the other side waits; this one sends the handshake");
            Role::Initiator
        }
        Err(_) => Role::Responder,
    }
}

/// What the connecting side asks for in its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ask {
    /// Ask to be listened to in return (a hello).
    pub(crate) hello: bool,
    /// This connection carries both directions.
    pub(crate) duplex: bool,
}

/// The other peer of a link that completed its handshake.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) peer_id: u64,
    pub(crate) username: String,
    /// Its identity key, proved by the Noise handshake.
    pub(crate) key: PublicKey,
}

/// A link whose handshake is done, on the connecting side.
pub(crate) struct Opened {
    pub(crate) remote: Remote,
    /// Reads what follows the welcome, with the configured frame limit.
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Outbound,
}

/// The handshake this peer sends.
fn our_handshake(node: &Node, ask: Ask) -> Frame {
    Frame::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        peer_id: node.peer_id,
        username: node.config.username.clone(),
        listen_ip: node.config.advertise_ip,
        listen_port: node.bound_addr.port(),
        connect_back: ask.hello,
        duplex: ask.duplex,
    })
}

/// Runs the Noise handshake on `stream` in `role`, all of it before `deadline`.
fn secure(
    node: &Node,
    stream: &TcpStream,
    role: Role,
    deadline: Instant,
) -> std::result::Result<Secured, SecureError> {
    let mut io = Deadline::new(stream, deadline);
    match role {
        Role::Initiator => secure::initiate(&mut io, &node.identity, &node.room_key),
        Role::Responder => secure::respond(&mut io, &node.identity, &node.room_key),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The connecting side's handshake: the Noise handshake as its initiator, then our hello
/// and the welcome (or refusal) over the records, checked; all within the handshake
/// timeout. The frames after the welcome get the configured frame limit.
pub(crate) fn initiate(
    node: &Node,
    stream: &Arc<TcpStream>,
    target: &str,
    ask: Ask,
) -> Result<Opened> {
    let refused = |reason: String| Error::Refused {
        addr: target.to_owned(),
        reason,
    };
    let deadline = Instant::now() + node.config.timeouts.handshake;
    let secured = match secure(node, stream, Role::Initiator, deadline) {
        Ok(secured) => secured,
        Err(_) if node.stop.is_set() => return Err(Error::Shutdown),
        Err(SecureError::WrongRoomKey) => {
            return Err(Error::WrongPassphrase {
                room: node.config.room.to_string(),
                addr: target.to_owned(),
            });
        }
        Err(SecureError::Io(e)) if is_timeout(&e) => {
            return Err(refused("no answer to the handshake".into()));
        }
        Err(e) => return Err(refused(e.to_string())),
    };
    if secured.remote_key() == node.identity.public_key() {
        return Err(Error::SelfConnection(target.to_owned()));
    }
    let key = secured.remote_key();
    // The other side has proved it holds the room key, but not yet who it is: its answer
    // gets the handshake's small limit, and the frames after it the configured one.
    let max_frame = node.config.limits.max_frame_bytes;
    let (mut inbound, mut outbound) =
        channel::halves(stream, secured, MAX_HANDSHAKE_FRAME_BYTES.min(max_frame));
    let mut io = Deadline::new(stream, deadline);
    let hello = our_handshake(node, ask).encode()?;
    outbound.push(&hello);
    outbound.flush_to(&mut io)?;
    let welcome = match inbound.read_frame_before(deadline) {
        Ok(Frame::Welcome(w)) => w,
        Ok(Frame::Refuse { reason }) => return Err(refused(reason)),
        Ok(other) => return Err(refused(format!("answered with a {} frame", other.name()))),
        Err(e) if e.is_timeout() => return Err(refused("no answer to the handshake".into())),
        Err(ReadError::Closed | ReadError::Truncated) if node.stop.is_set() => {
            return Err(Error::Shutdown);
        }
        Err(e) => return Err(refused(e.to_string())),
    };
    validate_username(&welcome.username).map_err(|e| refused(format!("invalid username: {e}")))?;
    inbound.set_max_frame(max_frame);
    Ok(Opened {
        remote: Remote {
            peer_id: welcome.peer_id,
            username: welcome.username,
            key,
        },
        inbound,
        outbound,
    })
}

/// A connection whose handshake was read and taken, on the accepting side.
pub(crate) struct Accepted {
    pub(crate) hs: Handshake,
    /// The other peer's identity key, proved by the Noise handshake.
    pub(crate) key: PublicKey,
    /// Reads what follows the handshake; the caller sets its frame limit.
    pub(crate) inbound: Inbound,
    pub(crate) outbound: Outbound,
}

/// Why an accepted connection gets no link.
pub(crate) enum Refusal {
    /// Answer with a `Refuse` giving this reason (over the records), then close.
    Refuse(String, Outbound),
    /// Close without a word: the connection failed, it is not a p2p-chat peer, or it is
    /// this peer itself.
    Close(String),
    /// Close without a word: a peer with another room key, already reported (in a log
    /// whose lines about such peers are rate-limited).
    Stranger,
}

/// The accepting side's first step: the Noise handshake as its responder, then the hello
/// read over the records (with the handshake's small frame limit) and checked: version,
/// username, and that it is not this peer itself. All within the handshake timeout.
pub(crate) fn read_handshake(
    node: &Node,
    stream: &Arc<TcpStream>,
) -> std::result::Result<Accepted, Refusal> {
    let deadline = Instant::now() + node.config.timeouts.handshake;
    let secured = match secure(node, stream, Role::Responder, deadline) {
        Ok(secured) => secured,
        Err(SecureError::WrongRoomKey) => {
            node.stranger_with_another_key(stream.peer_addr().ok());
            return Err(Refusal::Stranger);
        }
        Err(SecureError::Io(e)) if is_timeout(&e) => {
            return Err(Refusal::Close(
                "no handshake within the handshake timeout".into(),
            ));
        }
        Err(e) => return Err(Refusal::Close(e.to_string())),
    };
    if secured.remote_key() == node.identity.public_key() {
        // Our own ClientSide reached us; it sees the same key and gives up.
        return Err(Refusal::Close("this peer itself".into()));
    }
    let key = secured.remote_key();
    // A peer of the room may send a hello and nothing larger before it is linked: what it
    // can make this thread buffer is small whatever length it announces.
    let max_frame = node.config.limits.max_frame_bytes;
    let (mut inbound, outbound) =
        channel::halves(stream, secured, MAX_HANDSHAKE_FRAME_BYTES.min(max_frame));
    let hs = match inbound.read_frame_before(deadline) {
        Ok(Frame::Handshake(hs)) => hs,
        Ok(other) => {
            let reason = format!("expected a handshake, got a {} frame", other.name());
            return Err(Refusal::Refuse(reason, outbound));
        }
        Err(e) if e.is_timeout() => {
            let reason = "no handshake within the handshake timeout".to_owned();
            return Err(Refusal::Refuse(reason, outbound));
        }
        Err(ReadError::Protocol(e)) => return Err(Refusal::Refuse(e.to_string(), outbound)),
        Err(e) => return Err(Refusal::Close(e.to_string())),
    };
    if let Err(e) = validate_username(&hs.username) {
        return Err(Refusal::Refuse(format!("invalid username: {e}"), outbound));
    }
    Ok(Accepted {
        hs,
        key,
        inbound,
        outbound,
    })
}

/// The accepting side's answer to a handshake it takes.
pub(crate) fn welcome(node: &Node, stream: &TcpStream, out: &mut Outbound) -> io::Result<()> {
    let _ = stream.set_write_timeout(Some(node.config.timeouts.handshake));
    out.send(
        stream,
        &Frame::Welcome(Welcome {
            version: PROTOCOL_VERSION,
            peer_id: node.peer_id,
            username: node.config.username.clone(),
        }),
    )
}

/// The accepting side's refusal: one `Refuse` frame (within half a second), then the
/// caller closes.
pub(crate) fn refuse(stream: &TcpStream, out: &mut Outbound, reason: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let _ = out.send(
        stream,
        &Frame::Refuse {
            reason: reason.to_owned(),
        },
    );
}

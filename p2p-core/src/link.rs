//! Link set-up, in one place: opening a TCP connection to a peer (socket options, binding to
//! the listening port), the handshake exchange on either side, and who plays which side of
//! a connection that both peers opened at once (TCP simultaneous open).
//!
//! Every peer link goes through here: one-way links, duplex links and punched links, on the
//! side that connects ([`initiate`]) and on the side that accepts ([`read_handshake`], then
//! [`welcome`] or [`refuse`]). Wrapping every link (an encrypted handshake, a record layer)
//! means changing these functions and nothing else: after them a link is a stream, a
//! [`FrameReader`] holding what was read past the handshake, and the other peer's identity.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::debug;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::net::{read_frame_before, write_frame};
use crate::node::Node;
use crate::protocol::{
    Frame, FrameReader, Handshake, MAX_HANDSHAKE_FRAME_BYTES, PROTOCOL_VERSION, ReadError, Welcome,
    validate_username,
};
use crate::secure::Role;
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
/// the one whose external address is the lower sends the handshake
/// ([`Role::for_simultaneous_open`], which the encrypted handshake uses the same way).
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
/// open; the other side is then a listener waiting for a handshake).
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
}

/// The handshake this peer sends.
fn our_handshake(node: &Node, ask: Ask) -> Frame {
    Frame::Handshake(Handshake {
        version: PROTOCOL_VERSION,
        peer_id: node.peer_id,
        username: node.config.username.clone(),
        room: node.config.room.clone(),
        listen_ip: node.config.advertise_ip,
        listen_port: node.bound_addr.port(),
        connect_back: ask.hello,
        duplex: ask.duplex,
    })
}

/// The connecting side's handshake: sends ours, reads the welcome (or refusal), checks it.
/// Returns the other peer and a reader holding anything read past the welcome, whose limit
/// is the configured frame limit.
pub(crate) fn initiate(
    node: &Node,
    stream: &TcpStream,
    target: &str,
    ask: Ask,
) -> Result<(Remote, FrameReader)> {
    let refused = |reason: String| Error::Refused {
        addr: target.to_owned(),
        reason,
    };
    let timeouts = &node.config.timeouts;
    stream.set_write_timeout(Some(timeouts.handshake))?;
    write_frame(stream, &our_handshake(node, ask))?;
    // The other side has proved nothing yet: its answer gets the handshake's small limit,
    // and the frames after it the configured one.
    let max_frame = node.config.limits.max_frame_bytes;
    let mut reader = FrameReader::new(MAX_HANDSHAKE_FRAME_BYTES.min(max_frame));
    let deadline = Instant::now() + timeouts.handshake;
    let welcome = match read_frame_before(stream, &mut reader, deadline) {
        Ok(Frame::Welcome(w)) => w,
        Ok(Frame::Refuse { reason }) => return Err(refused(reason)),
        Ok(other) => return Err(refused(format!("answered with a {} frame", other.name()))),
        Err(e) if e.is_timeout() => return Err(refused("no answer to the handshake".into())),
        Err(ReadError::Closed | ReadError::Truncated) if node.stop.is_set() => {
            return Err(Error::Shutdown);
        }
        Err(e) => return Err(refused(e.to_string())),
    };
    if welcome.peer_id == node.peer_id {
        return Err(Error::SelfConnection(target.to_owned()));
    }
    validate_username(&welcome.username).map_err(|e| refused(format!("invalid username: {e}")))?;
    reader.set_max_frame(max_frame);
    Ok((
        Remote {
            peer_id: welcome.peer_id,
            username: welcome.username,
        },
        reader,
    ))
}

/// Why an accepted connection gets no link.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// Answer with a `Refuse` giving this reason, then close.
    Refuse(String),
    /// Close without a word (the connection failed, or it is this peer itself, which was
    /// sent a welcome so that it sees its own id).
    Close(String),
}

/// The accepting side's first step: reads the handshake within the handshake timeout (with
/// the handshake's small frame limit) and checks it: version, username, room, and that it
/// is not this peer itself. Returns it with the reader, whose limit the caller sets for
/// what follows.
pub(crate) fn read_handshake(
    node: &Node,
    stream: &TcpStream,
) -> std::result::Result<(Handshake, FrameReader), Refusal> {
    // A stranger may send a handshake and nothing larger: what it can make this thread
    // buffer is small whatever length it announces (and only what it actually sends).
    let max_frame = node.config.limits.max_frame_bytes;
    let mut reader = FrameReader::new(MAX_HANDSHAKE_FRAME_BYTES.min(max_frame));
    let deadline = Instant::now() + node.config.timeouts.handshake;
    let hs = match read_frame_before(stream, &mut reader, deadline) {
        Ok(Frame::Handshake(hs)) => hs,
        Ok(other) => {
            return Err(Refusal::Refuse(format!(
                "expected a handshake, got a {} frame",
                other.name()
            )));
        }
        Err(e) if e.is_timeout() => {
            return Err(Refusal::Refuse(
                "no handshake within the handshake timeout".into(),
            ));
        }
        Err(ReadError::Protocol(e)) => return Err(Refusal::Refuse(e.to_string())),
        Err(e) => return Err(Refusal::Close(e.to_string())),
    };
    if let Err(e) = validate_username(&hs.username) {
        return Err(Refusal::Refuse(format!("invalid username: {e}")));
    }
    if hs.room != node.config.room {
        return Err(Refusal::Refuse(format!(
            "another room: this peer is in room {}, not {}",
            node.config.room, hs.room
        )));
    }
    if hs.peer_id == node.peer_id {
        // Our own ClientSide reached us: let it see our id and close.
        let _ = welcome(node, stream);
        return Err(Refusal::Close("this peer itself".into()));
    }
    Ok((hs, reader))
}

/// The accepting side's answer to a handshake it takes.
pub(crate) fn welcome(node: &Node, stream: &TcpStream) -> io::Result<()> {
    write_frame(
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
pub(crate) fn refuse(stream: &TcpStream, reason: &str) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
    let _ = write_frame(
        stream,
        &Frame::Refuse {
            reason: reason.to_owned(),
        },
    );
}

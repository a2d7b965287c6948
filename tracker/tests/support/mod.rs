//! What the tracker's integration tests share: a tracker on every loopback address, client
//! sockets bound to a chosen 127.x.y.z (on Linux all of 127.0.0.0/8 is this machine, so
//! the tracker sees each as another host), and waiting for a condition to a deadline.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use p2p_core::net::{read_frame_before, write_frame};
use p2p_core::protocol::{Announce, Frame, FrameReader, Room};
use socket2::{Domain, Protocol, Socket, Type};
use tracker::{Tracker, TrackerConfig};

/// How long a test waits for anything that should happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The room the tests announce in (any 16 bytes: a tracker sees only rooms' opaque ids).
pub const ROOM: Room = Room::from_bytes([7; 16]);

/// Starts a tracker bound to every address (so that requests from any 127.x.y.z reach it)
/// and returns it with its address on 127.0.0.1.
pub fn start(config: TrackerConfig) -> (Tracker, SocketAddr) {
    let tracker = Tracker::start(TrackerConfig {
        bind_addr: "0.0.0.0:0".parse().unwrap(),
        ..config
    })
    .unwrap();
    let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), tracker.local_addr().port());
    (tracker, addr)
}

/// A TCP connection to `to` from a socket bound to `from`.
pub fn connect_from(from: Ipv4Addr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(IpAddr::V4(from), 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    Ok(socket.into())
}

/// An announce of `listen_addr`.
pub fn announce(listen_addr: SocketAddr) -> Frame {
    Frame::Announce(Announce::explicit(ROOM, listen_addr))
}

/// Sends `request` on `stream` and reads the answer.
pub fn exchange(stream: &TcpStream, request: &Frame) -> io::Result<Frame> {
    write_frame(stream, request)?;
    let deadline = Instant::now() + PATIENCE;
    read_frame_before(stream, &mut FrameReader::new(1 << 20), deadline)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// `true` once the other side has closed `stream` (end of stream or reset); never blocks.
pub fn closed_by_peer(stream: &TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match (&*stream).read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// Polls `cond` until it holds, failing the test after [`PATIENCE`].
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

//! Blocking one-frame exchanges over a `TcpStream`, with deadlines.
//!
//! The peer's link threads, the tracker client and the `tracker` crate all use these to
//! read a frame within a time limit (so a connection that sends nothing, or one byte every
//! few seconds, cannot hold a thread) and to write one frame.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::protocol::{Frame, FrameReader, ReadError};
use crate::{Error, Result};

/// Reads one frame, giving up with a `TimedOut` error at `deadline`.
///
/// Frames already buffered in `reader` are returned first. The stream's read timeout is
/// changed; set it again afterwards if the stream goes on being used.
pub fn read_frame_before(
    stream: &TcpStream,
    reader: &mut FrameReader,
    deadline: Instant,
) -> Result<Frame, ReadError> {
    loop {
        if let Some(frame) = reader.next_buffered()? {
            return Ok(frame);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Io(io::ErrorKind::TimedOut.into()));
        }
        stream.set_read_timeout(Some(left))?;
        let mut src = stream;
        reader.fill(&mut src)?;
    }
}

/// Encodes and writes one frame.
pub fn write_frame(stream: &TcpStream, frame: &Frame) -> io::Result<()> {
    let bytes = frame.encode().map_err(io::Error::other)?;
    let mut dst = stream;
    dst.write_all(&bytes)
}

/// Binds a listening socket with room for `backlog` connections waiting to be accepted
/// (std's `TcpListener::bind` allows 128; a burst of connections past that is dropped by the
/// kernel, so an honest peer that arrives during a flood waits a second for its SYN to be
/// retried). The kernel caps it at `net.core.somaxconn` (4096 on current Linux).
pub fn listen(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As std does on Unix: a restarted peer can bind its port while old connections linger.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Binds a peer's listening socket: like [`listen`], and shareable with the peer's own
/// outgoing connections (`SO_REUSEPORT`), so that those can be made from the listening
/// port (one external port per peer behind a NAT router, and TCP simultaneous open).
///
/// `SO_REUSEPORT` would also let a second program of the same user listen on the same port
/// and take half its connections, so the port is first bound without it, which fails as
/// usual if anything listens there ("port in use"); with port 0, that first bind picks the
/// port.
pub fn listen_shared(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())?;
    let port = probe
        .local_addr()?
        .as_socket()
        .map_or(addr.port(), |a| a.port());
    drop(probe);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    {
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
    }
    socket.bind(&SocketAddr::new(addr.ip(), port).into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// A listening socket whose waiting for connections another thread can end at once
/// ([`AcceptWaker::wake`]), without connecting to it: a thread blocked in a plain
/// `accept()` can only be woken by a connection, which a full accept queue, a firewall or a
/// closed loopback can stop from arriving.
///
/// It waits with the operating system's readiness API (epoll, kqueue, IOCP, through
/// `mio`) on the socket and on a waker.
#[derive(Debug)]
pub struct Acceptor {
    listener: mio::net::TcpListener,
    poll: mio::Poll,
    events: mio::Events,
}

/// Ends an [`Acceptor`]'s wait from any thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AcceptWaker(std::sync::Arc<mio::Waker>);

const LISTENER: mio::Token = mio::Token(0);
const WAKER: mio::Token = mio::Token(1);

impl Acceptor {
    /// Takes over `listener` (made non-blocking) and returns the acceptor and its waker.
    pub fn new(listener: TcpListener) -> io::Result<(Acceptor, AcceptWaker)> {
        listener.set_nonblocking(true)?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        let poll = mio::Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, mio::Interest::READABLE)?;
        let waker = mio::Waker::new(poll.registry(), WAKER)?;
        let acceptor = Acceptor {
            listener,
            poll,
            events: mio::Events::with_capacity(8),
        };
        Ok((acceptor, AcceptWaker(std::sync::Arc::new(waker))))
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Waits for the next connection and returns it as a blocking `TcpStream`, or `None`
    /// once the waker was used (the caller then checks why it was woken). An error is the
    /// accept's own (out of file descriptors, say): the caller may back off and call again.
    pub fn accept(&mut self) -> io::Result<Option<(TcpStream, SocketAddr)>> {
        loop {
            // The queue is drained before each wait: readiness is reported on changes.
            match self.listener.accept() {
                Ok((stream, remote)) => {
                    let stream = TcpStream::from(stream);
                    stream.set_nonblocking(false)?;
                    return Ok(Some((stream, remote)));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            match self.poll.poll(&mut self.events, None) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            if self.events.iter().any(|event| event.token() == WAKER) {
                return Ok(None);
            }
        }
    }
}

impl AcceptWaker {
    /// Ends the acceptor's current or next wait.
    pub fn wake(&self) {
        if let Err(e) = self.0.wake() {
            log::warn!("cannot wake the accept thread: {e}");
        }
    }
}

/// Checks that `addr`, given as its listening address by a host connecting from `source`,
/// is one that other peers can connect to. Returns why not: port 0, an unspecified,
/// multicast or broadcast address, or a loopback address given by another host. The
/// tracker applies it to announces, and a peer to the hellos it answers by connecting back.
pub fn check_listen_addr(
    addr: SocketAddr,
    source: IpAddr,
) -> std::result::Result<(), &'static str> {
    let ip = addr.ip();
    if addr.port() == 0 {
        Err("port 0")
    } else if ip.is_unspecified() {
        Err("unspecified address")
    } else if ip.is_multicast() {
        Err("multicast address")
    } else if matches!(ip, IpAddr::V4(v4) if v4.is_broadcast()) {
        Err("broadcast address")
    } else if ip.is_loopback() && !source.is_loopback() {
        Err("loopback address given by another host")
    } else {
        Ok(())
    }
}

/// Resolves `host:port` (host names included) to its socket addresses.
pub fn resolve(addr: &str) -> Result<Vec<SocketAddr>> {
    let resolved: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Error::Resolve {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if resolved.is_empty() {
        return Err(Error::Resolve {
            addr: addr.to_owned(),
            reason: "no address found".into(),
        });
    }
    Ok(resolved)
}

/// Resolves `addr` and connects to the first of its addresses that answers, with a time
/// limit per attempt. Returns the stream and the address it reached.
pub fn connect(addr: &str, timeout: Duration) -> Result<(TcpStream, SocketAddr)> {
    let mut last = None;
    for target in resolve(addr)? {
        match TcpStream::connect_timeout(&target, timeout) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok((stream, target));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::Connect {
        addr: addr.to_owned(),
        source: last.unwrap_or_else(|| io::ErrorKind::NotFound.into()),
    })
}

//! # p2p-core
//!
//! The networking half of p2p-chat: a peer-to-peer chat where every peer runs a
//! **ServerSide** (a TCP listener that fans its user's messages out to every peer listening
//! to it) and one **ClientSide** link per peer it listens to. A tracker, or addresses given
//! by hand, tell a peer whom to connect to.
//!
//! Everything is synchronous: std::net sockets, one thread per link, crossbeam channels.
//! Everything a peer hears arrives as an [`Event`] on one channel; reading it blocks, so an
//! embedder never polls.
//!
//! ```
//! use p2p_core::{Event, Mode, Peer, PeerConfig};
//!
//! # fn main() -> Result<(), p2p_core::Error> {
//! // Alice starts alone; Bob listens to her by hand.
//! let alice = Peer::start(PeerConfig::new("alice"))?;
//! let mut config = PeerConfig::new("bob");
//! config.mode = Mode::Manual(vec![alice.local_addr().to_string()]);
//! let bob = Peer::start(config)?;
//!
//! // Once Alice sees Bob as a listener, what she sends reaches him.
//! while !matches!(alice.events().recv(), Ok(Event::ListenerJoined(_))) {}
//! alice.send("hello, Bob")?;
//! loop {
//!     if let Ok(Event::Message { from, text }) = bob.events().recv() {
//!         assert_eq!((from.username.as_str(), text.as_str()), ("alice", "hello, Bob"));
//!         break;
//!     }
//! }
//! bob.shutdown();
//! alice.shutdown();
//! # Ok(())
//! # }
//! ```
//!
//! The modules: [`protocol`] (frames and the codec, no sockets), [`net`] (one-frame
//! exchanges with deadlines, an accept that can be woken), [`tracker_client`] (the tracker
//! session, one-shot announce and leave), [`dht`] (the Mainline DHT engine), and, private,
//! `mesh` (the one module every discovery source feeds; [`Peer::offer`] is its public
//! door), `lan` (discovery by multicast DNS), `dht_source` (the DHT engine as a source of a
//! peer), `node` (what every thread of
//! a peer shares), `link` (link set-up: connecting, the handshake on either side, the roles
//! on a punched connection), `server_side`, `client_side`, `duplex` (one connection both
//! ways), `peer` (the one place that wires them together) and `threads`.
//!
//! Peers reach each other without anyone typing an address: through a tracker, which tells
//! each peer the address it sees it at and introduces peers behind NAT routers to each
//! other (duplex links, hole punching), on a LAN by multicast DNS ([`Mode::lan`]), or
//! through BitTorrent's Mainline DHT ([`Mode::dht`], the [`dht`] module), several of them
//! at once ([`Discovery`]).
//! `docs/networking.md` in the repository tells what works on which network.
//! `docs/architecture.md` and `docs/protocol.md` in the repository tell the rest.
//!
//! Sending never blocks a user interface if it uses [`Peer::try_send`]; [`Peer::send`] waits
//! (boundedly) for slow listeners. [`Peer::close`] returns within two seconds whatever the
//! network does.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client_side;
mod config;
pub mod dht;
mod dht_source;
mod discovery;
mod duplex;
mod error;
mod event;
mod fanout;
mod lan;
mod link;
mod mesh;
pub mod net;
mod node;
mod peer;
pub mod protocol;
pub mod secure;
mod server_side;
mod threads;
pub mod tracker_client;

pub use config::{Limits, Mode, PeerConfig, Resolver, Timeouts};
pub use discovery::{Discovery, Source};
pub use error::{Error, Result};
pub use event::{Batch, BatchEvents, Departure, Event, Events, Messages, PeerInfo, Text};
pub use peer::Peer;

/// The README's examples, compiled and run as doc tests so that they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

//! # tracker
//!
//! The p2p-chat tracker: peers announce the address their ServerSide listens on and get
//! back the addresses of the other peers. Entries are unique per address, expire when a
//! peer stops re-announcing (every answer tells the peer how often to re-announce), and
//! are removed at once when a peer leaves cleanly. The registry, each answer and the
//! connections are all bounded, and a bad request only closes its own connection.
//!
//! ```
//! use std::time::Duration;
//! use tracker::{Tracker, TrackerConfig};
//! use p2p_core::tracker_client;
//!
//! let tracker = Tracker::start(TrackerConfig {
//!     bind_addr: "127.0.0.1:0".parse().unwrap(),
//!     ..TrackerConfig::default()
//! })?;
//! let me = "127.0.0.1:7001".parse().unwrap();
//! // Peers announce their room's opaque id (`Peer::room`); any 16 bytes will do here.
//! let room = p2p_core::protocol::Room::from_bytes([7; 16]);
//! let answer = tracker_client::announce(
//!     &tracker.local_addr().to_string(), room, me, &Default::default())?;
//! assert!(answer.peers.is_empty());
//! assert_eq!(tracker.peers(), vec![me]);
//! tracker.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Serving: one thread runs an event loop over non-blocking sockets. A connection waiting
//! for its request costs a socket and a small entry in a table, so thousands can be open
//! at once while every host is served; each source address holds at most
//! [`TrackerConfig::max_connections_per_source`] of them, all of them at most
//! [`TrackerConfig::max_connections`], and each has [`TrackerConfig::request_timeout`] to
//! send its request and take its answer. [`Tracker::shutdown`] (and Drop) wakes the loop,
//! which closes everything, and joins its thread.
//!
//! Watching: a one-line summary at `info` every [`TrackerConfig::summary_interval`], and
//! the same figures in the Prometheus text format at `http://STATS_ADDR/metrics` when
//! [`TrackerConfig::stats_addr`] is set.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod connections;
mod error;
mod event_loop;
mod log_budget;
pub mod registry;
mod request;
mod serve;
mod server;
mod stats;
mod stats_http;

pub use config::{DEFAULT_PORT, MIN_TTL, TrackerConfig};
pub use error::Error;
pub use registry::{Announced, Refusal, Registry, RegistryLimits};
pub use server::Tracker;

/// The operations guide's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/tracker.md")]
struct TrackerDocDoctests;

//! # tracker
//!
//! The p2p-chat tracker: peers announce the address their ServerSide listens on and get
//! back the addresses of the other peers. Entries are unique per address, expire when a
//! peer stops re-announcing (every answer tells the peer how often to re-announce), and
//! are removed at once when a peer leaves cleanly. The registry, each answer and the
//! queue of waiting connections are all bounded, and a bad request only closes its own
//! connection.
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
//! let answer = tracker_client::announce(
//!     &tracker.local_addr().to_string(), me, &Default::default())?;
//! assert!(answer.peers.is_empty());
//! assert_eq!(tracker.peers(), vec![me]);
//! tracker.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Threads: one accept thread hands connections through a bounded queue to a fixed pool of
//! workers; each worker answers one request per connection. [`Tracker::shutdown`] (and
//! Drop) stops and joins them all.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod registry;
mod server;

pub use registry::{Announced, Refusal, Registry, RegistryLimits};
pub use server::{DEFAULT_PORT, Error, MIN_TTL, Tracker, TrackerConfig};

/// The operations guide's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/tracker.md")]
struct TrackerDocDoctests;

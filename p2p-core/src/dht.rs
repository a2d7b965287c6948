//! Finding a room's peers through BitTorrent's Mainline DHT (BEP 5), with the `mainline`
//! crate: no server of ours, millions of nodes.
//!
//! A [`DhtEngine`] announces this peer's listening port under the room's [`InfoHash`]
//! (`announce_peer`) and looks up the others (`get_peers`) at start and then every
//! [`DhtConfig::lookup_interval`]. Every address a lookup finds is handed over as a
//! [`DhtEvent::Found`] on a bounded channel: the embedder greets each one (hellos), as in
//! tracker mode. Peers that left stay listed in the DHT for a while (a node keeps up to a
//! few hundred per infohash), so every lookup reports them again: the embedder bounds its
//! retries per address (see "The DHT" in `docs/networking.md`).
//!
//! Threads: the engine runs one thread of its own (`dht-engine`) and `mainline` runs one per
//! node (`Mainline Dht actor thread`). [`DhtEngine::close`] (and Drop) stops both and waits
//! for both to end, within [`CLOSE_BOUND`] whatever the network does.
//!
//! A [`DhtNode`] alone, in server mode with no bootstrap node, is the first node of a
//! private DHT: `tracker --dht UDP_PORT` runs one, so that a group running a tracker also
//! has a bootstrap node, and tests need no network.
//!
//! Nothing here blocks on the network outside the engine's thread, except resolving the
//! bootstrap host names in [`DhtEngine::start`].

mod config;
mod engine;
mod lookup;
mod node;
mod schedule;

pub use config::{DEFAULT_BOOTSTRAP, DhtConfig, InfoHash, parse_bootstrap};
pub use engine::{CLOSE_BOUND, DhtEngine, DhtEvent};
pub(crate) use engine::{Prepared, prepare, run};
pub use node::{BOOTSTRAP_MAX_INFOHASHES, BOOTSTRAP_MAX_PEERS_PER_INFOHASH, DhtNode};

//! How a peer finds the others of its room: the set of discovery sources it uses at once
//! ([`Discovery`]), and which source led to each peer ([`Source`]).

use std::fmt;

use crate::dht::DhtConfig;
use crate::{Error, Result};

/// The discovery sources of a peer in [`Mode::Discover`](crate::Mode::Discover): any of a
/// tracker, the local network and the Mainline DHT, at once. Whatever each finds goes to
/// the same mesh, so a peer found by two of them is linked once.
///
/// ```
/// use p2p_core::dht::DhtConfig;
/// use p2p_core::{Discovery, Mode};
/// // A tracker, and the DHT for when the tracker is down.
/// let mode = Mode::Discover(Discovery {
///     tracker: Some("tracker.example.org:7000".into()),
///     dht: Some(DhtConfig::default()), // the public bootstrap nodes
///     ..Discovery::default()
/// });
/// assert!(mode.discovery().is_some_and(|d| d.lan == false));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// The tracker at this `host:port`: the peer keeps a session with it (announces,
    /// re-announces, takes its introductions). Starting fails if it cannot be reached.
    pub tracker: Option<String>,
    /// Find the room's peers on the local network by multicast DNS (DNS-SD service
    /// `_p2pchat._tcp`).
    pub lan: bool,
    /// Find the room's peers through BitTorrent's Mainline DHT: announce this peer's port
    /// under the room's infohash and look the others up. The default configuration joins
    /// the public DHT through its usual bootstrap nodes; set
    /// [`DhtConfig::bootstrap`] for a private one (a `tracker --dht` node).
    pub dht: Option<DhtConfig>,
}

impl Discovery {
    /// `true` if no source is set.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_none() && !self.lan && self.dht.is_none()
    }

    /// Checks that at least one source is set and that the DHT's configuration is valid.
    pub fn validate(&self) -> Result<()> {
        if self.is_empty() {
            return Err(Error::Config(
                "discovery needs at least one source: a tracker, the LAN or the DHT".into(),
            ));
        }
        if self.tracker.as_deref().is_some_and(str::is_empty) {
            return Err(Error::Config("the tracker's address is empty".into()));
        }
        self.dht.as_ref().map_or(Ok(()), DhtConfig::validate)
    }
}

/// How this peer came to link with another: carried by
/// [`Event::Discovered`](crate::Event::Discovered), which comes before the link's
/// [`Event::ListeningTo`](crate::Event::ListeningTo).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Source {
    /// Listed or introduced by the tracker.
    Tracker,
    /// Found on the local network (multicast DNS).
    Lan,
    /// Found through the Mainline DHT.
    Dht,
    /// Given by hand ([`Mode::Manual`](crate::Mode::Manual),
    /// [`Peer::connect`](crate::Peer::connect)).
    Manual,
    /// It greeted this peer (a hello, or a duplex link it opened), which answers by
    /// listening back.
    Hello,
    /// Offered by the embedder ([`Peer::offer`](crate::Peer::offer)).
    Offered,
}

impl fmt::Display for Source {
    /// Lower-case words for a notice: "found through {source}".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Tracker => "the tracker",
            Source::Lan => "the local network",
            Source::Dht => "the DHT",
            Source::Manual => "an address given by hand",
            Source::Hello => "its hello",
            Source::Offered => "the application",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_needs_a_source_and_a_valid_dht_configuration() {
        assert!(matches!(
            Discovery::default().validate(),
            Err(Error::Config(_))
        ));
        let tracker = Discovery {
            tracker: Some(String::new()),
            ..Discovery::default()
        };
        assert!(matches!(tracker.validate(), Err(Error::Config(_))));
        let bad_dht = Discovery {
            dht: Some(DhtConfig {
                bootstrap: Vec::new(),
                ..DhtConfig::default()
            }),
            ..Discovery::default()
        };
        assert!(matches!(bad_dht.validate(), Err(Error::Config(_))));
        let all = Discovery {
            tracker: Some("127.0.0.1:7000".into()),
            lan: true,
            dht: Some(DhtConfig::default()),
        };
        assert!(all.validate().is_ok());
    }

    #[test]
    fn the_default_dht_source_uses_the_public_bootstrap_nodes() {
        // The only place the public list is exercised: nothing here resolves or sends.
        let mode = crate::Mode::dht(DhtConfig::default());
        let dht = mode.discovery().and_then(|d| d.dht.as_ref());
        assert_eq!(
            dht.map(|c| c.bootstrap.clone()),
            Some(crate::dht::DEFAULT_BOOTSTRAP.map(String::from).to_vec())
        );
    }
}

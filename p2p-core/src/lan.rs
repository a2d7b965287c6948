//! LAN discovery ([`Discovery::lan`](crate::Discovery::lan)): peers of one room find each other on the
//! local network by multicast DNS service discovery (DNS-SD), with the `mdns-sd` crate.
//!
//! Each peer registers one instance of the service [`SERVICE_TYPE`]: its name is the peer's
//! id in hex, its port the listening port, its addresses those of the host's interfaces,
//! and its TXT record holds `room=` (the room's bytes in hex) and `v=` (the protocol
//! version). It browses the same type; every resolved instance of its room and version that
//! is not its own goes to the peer's [`Mesh`] (a hello, then the full mesh, as in tracker
//! mode), again every [`REOFFER`] so that failed attempts are retried with back-off. A peer
//! that leaves withdraws its record; one that vanishes is dropped by the links' keep-alive.
//!
//! `mdns-sd` runs its daemon on a thread of its own; the `p2p-lan` thread (in the peer's
//! `ThreadSet`) reads its events and, at close, withdraws the record and waits (bounded) for
//! the daemon to shut down, within the two seconds a close may take.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use mdns_sd::{ServiceDaemon, ServiceEvent, ServiceInfo};

use crate::discovery::Source;
use crate::mesh::{Candidate, Mesh, Retry};
use crate::node::Node;
use crate::protocol::PROTOCOL_VERSION;
use crate::{Error, Result};

/// The DNS-SD service type of p2p-chat peers.
pub const SERVICE_TYPE: &str = "_p2pchat._tcp.local.";

/// How often the peers found are offered to the mesh again (the retry period of those that
/// could not be joined).
pub const REOFFER: Duration = Duration::from_secs(2);

/// How often the discovery thread looks up from the daemon's events to see whether the
/// peer is closing.
const POLL: Duration = Duration::from_millis(200);

/// How long a close waits for the record's withdrawal, and then for the daemon's shutdown.
const GOODBYE_WAIT: Duration = Duration::from_millis(300);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fail(e: impl std::fmt::Display) -> Error {
    Error::Discovery(e.to_string())
}

/// Registers this peer's record, starts browsing, and starts the discovery thread.
pub(crate) fn spawn(node: &Arc<Node>, mesh: Arc<Mesh>) -> Result<()> {
    let daemon = ServiceDaemon::new().map_err(fail)?;
    let instance = format!("{:016x}", node.peer_id);
    let host = format!("p2pchat-{instance}.local.");
    let room = hex(node.config.room.as_bytes());
    let version = PROTOCOL_VERSION.to_string();
    let properties = [("room", room.as_str()), ("v", version.as_str())];
    let registered = ServiceInfo::new(
        SERVICE_TYPE,
        &instance,
        &host,
        "",
        node.bound_addr.port(),
        &properties[..],
    )
    .map(ServiceInfo::enable_addr_auto)
    .and_then(|info| {
        let fullname = info.get_fullname().to_owned();
        daemon.register(info).map(|()| fullname)
    })
    .and_then(|fullname| daemon.browse(SERVICE_TYPE).map(|rx| (fullname, rx)));
    let (fullname, browse) = match registered {
        Ok(ok) => ok,
        Err(e) => {
            let _ = daemon.shutdown();
            return Err(fail(e));
        }
    };
    let lan = Lan {
        node: Arc::clone(node),
        mesh,
        daemon,
        fullname,
        room,
        version,
    };
    node.threads
        .spawn("p2p-lan", move || lan.run(&browse))
        .map_err(|_| Error::Shutdown)
}

struct Lan {
    node: Arc<Node>,
    mesh: Arc<Mesh>,
    daemon: ServiceDaemon,
    fullname: String,
    room: String,
    version: String,
}

impl Lan {
    fn run(self, browse: &mdns_sd::Receiver<ServiceEvent>) {
        let mut found: HashMap<String, SocketAddr> = HashMap::new();
        let mut next_offer = Instant::now();
        while !self.node.stop.is_set() {
            let mut changed = false;
            match browse.recv_timeout(POLL) {
                Ok(ServiceEvent::ServiceResolved(service)) => {
                    if let Some(addr) = self.candidate(&service) {
                        changed = found.insert(service.fullname.clone(), addr) != Some(addr);
                    }
                }
                Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                    if found.remove(&fullname).is_some() {
                        debug!("LAN: {fullname} withdrew its record");
                    }
                }
                Ok(_) => {}
                Err(mdns_sd::RecvTimeoutError::Timeout) => {}
                Err(e) => {
                    warn!("LAN discovery stopped: {e}");
                    break;
                }
            }
            let now = Instant::now();
            if changed || now >= next_offer {
                let candidates: Vec<Candidate> =
                    found.values().copied().map(Candidate::open).collect();
                self.mesh
                    .offer(Source::Lan, &candidates, Retry::every(REOFFER), false);
                next_offer = now + REOFFER;
            }
        }
        self.leave();
    }

    /// The address to join a resolved instance at, if it is another peer of our room:
    /// an IPv4 address if it has one (link-local IPv6 would need its interface).
    fn candidate(&self, service: &mdns_sd::ResolvedService) -> Option<SocketAddr> {
        if service.fullname == self.fullname {
            return None;
        }
        let room = service.get_property_val_str("room");
        let version = service.get_property_val_str("v");
        if room != Some(self.room.as_str()) || version != Some(self.version.as_str()) {
            debug!("LAN: {} is of another room or version", service.fullname);
            return None;
        }
        let mut v4: Vec<IpAddr> = service
            .get_addresses_v4()
            .into_iter()
            .map(IpAddr::V4)
            .collect();
        v4.sort();
        let ip = v4.into_iter().find(|ip| !ip.is_loopback())?;
        let addr = SocketAddr::new(ip, service.port);
        debug!("LAN: found {} at {addr}", service.fullname);
        Some(addr)
    }

    /// Withdraws the record (others drop us at once) and stops the daemon, each within
    /// [`GOODBYE_WAIT`].
    fn leave(&self) {
        match self.daemon.unregister(&self.fullname) {
            Ok(rx) => {
                if rx.recv_timeout(GOODBYE_WAIT).is_err() {
                    info!("LAN: the record's withdrawal was not confirmed in time");
                }
            }
            Err(e) => info!("LAN: cannot withdraw the record: {e}"),
        }
        if let Ok(rx) = self.daemon.shutdown() {
            let _ = rx.recv_timeout(GOODBYE_WAIT);
        }
    }
}

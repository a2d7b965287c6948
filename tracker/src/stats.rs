//! What an operator watches: counters of requests and refusals, the periodic summary line
//! and the Prometheus text the stats endpoint serves. Pure data and text; the event loop
//! owns the counters and reads the gauges.

use std::fmt::Write as _;
use std::time::Duration;

/// Counters since the tracker started. Only the event loop changes them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    /// Announces taken (registrations and refreshes).
    pub announces: u64,
    /// Leaves taken.
    pub leaves: u64,
    /// Announces and leaves the registry refused (answered with a refusal).
    pub refused_requests: u64,
    /// Connections closed for a request that was not one: malformed, too large, a frame a
    /// tracker does not take, or closed half-way.
    pub bad_requests: u64,
    /// Connections closed at their deadline (idle, too slow to send or to take the answer).
    pub timed_out: u64,
    /// Connections closed at once: their source held its share of connections already.
    pub over_source_cap: u64,
    /// Connections closed at once: the tracker held its most connections and none could
    /// give its place.
    pub over_total_cap: u64,
    /// Connections that gave their place to a newcomer from a less busy source.
    pub evicted: u64,
}

impl Counters {
    /// Everything the tracker said no to: refused requests and closed connections.
    pub(crate) fn refusals(&self) -> u64 {
        self.refused_requests
            + self.bad_requests
            + self.timed_out
            + self.over_source_cap
            + self.over_total_cap
            + self.evicted
    }
}

/// Figures read at the moment they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gauges {
    /// Live registered peers.
    pub peers: usize,
    // Rooms (secure-rooms issue): `pub rooms: usize`, reported beside `peers` in the
    // summary and as `tracker_rooms` once the registry is keyed by room.
    /// Connections open now.
    pub open_connections: usize,
    /// The process's resident memory, where the OS tells it.
    pub resident_bytes: Option<u64>,
}

/// The summary line: gauges now, and rates over `elapsed` since `before`.
pub(crate) fn summary_line(
    before: &Counters,
    now: &Counters,
    elapsed: Duration,
    gauges: &Gauges,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let rate = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
    let mut line = format!(
        "summary: {} peers, {:.1} announces/s, {:.1} leaves/s, {:.1} refusals/s, {} connections open",
        gauges.peers,
        rate(before.announces, now.announces),
        rate(before.leaves, now.leaves),
        rate(before.refusals(), now.refusals()),
        gauges.open_connections,
    );
    if let Some(bytes) = gauges.resident_bytes {
        let _ = write!(
            line,
            ", {:.1} MiB resident",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
    line
}

/// The figures in the Prometheus text exposition format (version 0.0.4).
pub(crate) fn prometheus(counters: &Counters, gauges: &Gauges) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    metric(
        "tracker_peers",
        "gauge",
        "Peers registered now.",
        &[("", gauges.peers as u64)],
    );
    metric(
        "tracker_announces_total",
        "counter",
        "Announces taken (registrations and refreshes).",
        &[("", counters.announces)],
    );
    metric(
        "tracker_leaves_total",
        "counter",
        "Leaves taken.",
        &[("", counters.leaves)],
    );
    metric(
        "tracker_refusals_total",
        "counter",
        "Requests refused and connections closed without an answer, by reason.",
        &[
            ("{reason=\"registry\"}", counters.refused_requests),
            ("{reason=\"bad_request\"}", counters.bad_requests),
            ("{reason=\"timed_out\"}", counters.timed_out),
            ("{reason=\"source_connections\"}", counters.over_source_cap),
            ("{reason=\"total_connections\"}", counters.over_total_cap),
            ("{reason=\"evicted\"}", counters.evicted),
        ],
    );
    metric(
        "tracker_open_connections",
        "gauge",
        "Connections open now.",
        &[("", gauges.open_connections as u64)],
    );
    if let Some(bytes) = gauges.resident_bytes {
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            &[("", bytes)],
        );
    }
    out
}

/// The process's resident memory in bytes, from `/proc/self/status` (Linux); `None`
/// elsewhere.
pub(crate) fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            peers: 3,
            open_connections: 2,
            resident_bytes: Some(6 * 1024 * 1024),
        }
    }

    #[test]
    fn the_summary_gives_rates_since_the_last_line() {
        let before = Counters {
            announces: 10,
            timed_out: 1,
            ..Counters::default()
        };
        let now = Counters {
            announces: 130,
            leaves: 6,
            timed_out: 31,
            over_source_cap: 30,
            ..Counters::default()
        };
        assert_eq!(
            summary_line(&before, &now, Duration::from_secs(60), &gauges()),
            "summary: 3 peers, 2.0 announces/s, 0.1 leaves/s, 1.0 refusals/s, \
             2 connections open, 6.0 MiB resident"
        );
    }

    #[test]
    fn the_prometheus_text_has_a_type_and_a_sample_for_every_figure() {
        let counters = Counters {
            announces: 7,
            over_source_cap: 2,
            ..Counters::default()
        };
        let text = prometheus(&counters, &gauges());
        for line in [
            "# TYPE tracker_peers gauge",
            "tracker_peers 3",
            "# TYPE tracker_announces_total counter",
            "tracker_announces_total 7",
            "tracker_refusals_total{reason=\"source_connections\"} 2",
            "tracker_open_connections 2",
            "process_resident_memory_bytes 6291456",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 1024 * 1024));
        }
    }
}

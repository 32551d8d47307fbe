//! `convene_turn_*` metrics: live allocations, relayed bytes, TURN connections over TCP and TLS,
//! refused credentials, and whether the external TURN server answers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    /// `to_peer` (client to media port) or `from_peer`.
    pub direction: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Transport {
    /// `tcp` or `tls` (TURN over TLS on the HTTPS port).
    pub transport: &'static str,
}

/// Cheap to clone: every field is a shared handle.
#[derive(Clone, Default)]
pub struct TurnMetrics {
    pub allocations: Gauge,
    pub relayed_bytes: Family<Direction, Counter>,
    pub connections: Family<Transport, Gauge>,
    pub refused: Counter,
    pub external_up: Gauge,
}

impl TurnMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "allocations",
            "Embedded TURN allocations alive (each holds one relay port)",
            m.allocations.clone(),
        );
        registry.register(
            "relayed_bytes",
            "Bytes the embedded TURN server relayed between clients and the media port",
            m.relayed_bytes.clone(),
        );
        registry.register(
            "connections",
            "TURN client connections open over a stream (TCP, or TLS on the HTTPS port)",
            m.connections.clone(),
        );
        registry.register(
            "refused_credentials",
            "TURN requests refused because the username was malformed or expired",
            m.refused.clone(),
        );
        registry.register(
            "external_up",
            "1 while the external TURN server answers probes (then clients are offered it), else 0",
            m.external_up.clone(),
        );
        m
    }

    pub fn relayed(&self, direction: &'static str, bytes: usize) {
        self.relayed_bytes
            .get_or_create(&Direction { direction })
            .inc_by(bytes as u64);
    }
}

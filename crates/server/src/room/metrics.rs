//! Conference metrics, registered as `convene_conference_*`.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

/// Counters and gauges shared by room tasks and connections.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub rooms: Gauge,
    pub participants: Gauge,
    pub knockers: Gauge,
    pub connections: Gauge,
    pub messages: Counter,
    pub errors: Family<CodeLabels, Counter>,
    pub closed_for_abuse: Counter,
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register("rooms", "Rooms with state on this server", m.rooms.clone());
        registry.register(
            "participants",
            "Admitted participants, including those waiting to resume",
            m.participants.clone(),
        );
        registry.register(
            "knockers",
            "Participants waiting in a lobby",
            m.knockers.clone(),
        );
        registry.register(
            "connections",
            "Open signaling WebSockets",
            m.connections.clone(),
        );
        registry.register("messages", "Client messages received", m.messages.clone());
        registry.register(
            "errors",
            "Error replies sent to clients, by code",
            m.errors.clone(),
        );
        registry.register(
            "closed_for_abuse",
            "Connections closed for floods or oversized frames",
            m.closed_for_abuse.clone(),
        );
        m
    }

    pub fn error(&self, code: convene_proto::ErrorCode) {
        let code = serde_json::to_value(code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        self.errors.get_or_create(&CodeLabels { code }).inc();
    }
}

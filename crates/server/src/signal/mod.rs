//! The participant WebSocket endpoint `/api/v1/rooms/{room}/ws?jwt=&name=`: checks the room name and the
//! token, then hands the socket to a connection task that speaks `convene-proto` with the room's task.

mod connection;

use std::sync::Arc;

use axum::{
    Extension, Router,
    extract::{Path, Query, State, WebSocketUpgrade},
    response::Response,
    routing::get,
};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    room::{MediaLink, Metrics, RecordingLink, Rooms},
    tls::ClientInfo,
    token::{AuthMode, Verifier},
};

/// What every connection needs.
#[derive(Clone)]
pub struct Signal {
    rooms: Rooms,
    verifier: Arc<Verifier>,
    mode: AuthMode,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// Mints the TURN credentials each `welcome` carries; `None` when TURN is off.
    turn: Option<crate::turn::TurnService>,
}

/// Query parameters of the WebSocket URL, as Jitsi passes them.
#[derive(Debug, Default, Deserialize)]
pub struct WsQuery {
    pub jwt: Option<String>,
    pub name: Option<String>,
}

impl Signal {
    /// Builds the room registry and the endpoint. Fails on config values that make no sense.
    pub fn new(
        conference: &convene_conference::Config,
        auth: &crate::token::Config,
        registry: &mut Registry,
        media: MediaLink,
        recording: RecordingLink,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Self, crate::Error> {
        if let Some((key, problem)) = conference.problems().into_iter().next() {
            return Err(crate::Error::Startup(format!(
                "[conference] {key}: {problem}"
            )));
        }
        let verifier = Verifier::new(auth).map_err(crate::Error::Startup)?;
        let access = match auth.mode {
            AuthMode::Open => convene_conference::Access::Open,
            AuthMode::Token => convene_conference::Access::Token,
            AuthMode::GuestsAfterModerator => convene_conference::Access::GuestsAfterModerator,
        };
        let metrics = Metrics::register(registry);
        let rooms = Rooms::new(
            conference.clone(),
            access,
            media,
            recording,
            metrics,
            tasks.clone(),
            shutdown.clone(),
        );
        Ok(Self {
            rooms,
            verifier: Arc::new(verifier),
            mode: auth.mode,
            shutdown,
            tasks,
            turn: None,
        })
    }

    /// Offers TURN in every `welcome` (`None`: TURN is off).
    pub fn with_turn(mut self, turn: Option<crate::turn::TurnService>) -> Self {
        self.turn = turn;
        self
    }

    pub fn rooms(&self) -> &Rooms {
        &self.rooms
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/api/v1/rooms/{room}/ws", get(upgrade))
            .with_state(self.clone())
    }
}

async fn upgrade(
    ws: WebSocketUpgrade,
    Path(room): Path<String>,
    Query(query): Query<WsQuery>,
    State(signal): State<Signal>,
    client: Option<Extension<ClientInfo>>,
) -> Response {
    // TURN URLs name the host the browser reached us by, so they work through the same DNS name.
    let host = client.and_then(|Extension(c)| c.host);
    // axum's own cap is twice ours so frames just over our cap get a proper 1009 close from us;
    // anything larger still ends the connection (at the protocol layer).
    let cap = signal.rooms.config().max_frame_bytes * 2;
    let tasks = signal.tasks.clone();
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| {
            tasks.track_future(connection::run(socket, room, query, host, signal))
        })
}

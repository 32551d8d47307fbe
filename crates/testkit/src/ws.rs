//! A test participant that joins through the real signaling WebSocket
//! (`/api/v1/rooms/{room}/ws`): it sends `join`, waits for `welcome`, then runs a [`UdpPeer`]
//! whose SDP messages travel over the same WebSocket, as a browser's would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use convene_proto::{ClientMessage, MediaSource, PROTOCOL_VERSION, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

use crate::udp::UdpPeer;

pub struct WsPeer {
    /// The participant id from `welcome`.
    pub id: String,
    pub peer: UdpPeer,
    /// Every non-media message the server sent after `welcome`.
    pub messages: Arc<Mutex<Vec<ServerMessage>>>,
    task: JoinHandle<()>,
    out: mpsc::UnboundedSender<ClientMessage>,
}

impl WsPeer {
    /// Connects to the server at `http`, joins `room` as `name` and starts publishing `tracks`.
    pub async fn join(
        http: SocketAddr,
        room: &str,
        name: &str,
        tracks: &[MediaSource],
    ) -> Result<Self, String> {
        let url = format!("ws://{http}/api/v1/rooms/{room}/ws");
        let (ws, _) = tokio::time::timeout(Duration::from_secs(5), connect_async(url))
            .await
            .map_err(|_| "connect timed out".to_owned())?
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sink, mut stream) = ws.split();
        let join = ClientMessage::Join {
            protocol_version: PROTOCOL_VERSION,
            display_name: Some(name.to_owned()),
            password: None,
        };
        let text = serde_json::to_string(&join).map_err(|e| e.to_string())?;
        sink.send(Message::Text(text.into()))
            .await
            .map_err(|e| format!("send join: {e}"))?;
        let id = loop {
            let msg = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .map_err(|_| "no welcome".to_owned())?
                .ok_or("closed before welcome")?
                .map_err(|e| format!("receive: {e}"))?;
            if let Message::Text(t) = msg
                && let Ok(ServerMessage::Welcome { you, .. }) = serde_json::from_str(&t)
            {
                break you;
            }
        };

        let (to_server, mut from_client) = mpsc::unbounded_channel::<ClientMessage>();
        let (to_client, from_server) = mpsc::unbounded_channel::<ServerMessage>();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let seen = messages.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = from_client.recv() => {
                        let Some(out) = out else { return };
                        let Ok(text) = serde_json::to_string(&out) else { continue };
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    incoming = stream.next() => {
                        let Some(Ok(msg)) = incoming else { return };
                        let Message::Text(t) = msg else { continue };
                        let Ok(msg) = serde_json::from_str::<ServerMessage>(&t) else { continue };
                        match msg {
                            ServerMessage::SdpAnswer { .. }
                            | ServerMessage::SdpOffer { .. }
                            | ServerMessage::Tracks { .. }
                            | ServerMessage::MediaError { .. } => {
                                let _ = to_client.send(msg);
                            }
                            other => seen.lock().unwrap_or_else(|e| e.into_inner()).push(other),
                        }
                    }
                }
            }
        });
        let peer = UdpPeer::start(name, tracks, to_server.clone(), from_server)
            .await
            .map_err(|e| format!("peer socket: {e}"))?;
        Ok(Self {
            id,
            peer,
            messages,
            task,
            out: to_server,
        })
    }

    /// Sends a message on the WebSocket (for tests of non-media behaviour).
    pub fn send(&self, msg: ClientMessage) {
        let _ = self.out.send(msg);
    }

    /// Closes the WebSocket and the media socket at once, like a closed tab.
    pub fn close(self) {
        self.task.abort();
        self.peer.abort();
    }
}

impl Drop for WsPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

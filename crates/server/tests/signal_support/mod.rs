//! Harness for the signaling tests: starts the real server on 127.0.0.1:0 and drives real WebSocket
//! clients (tokio-tungstenite) and plain HTTP/1.1 requests against it.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use convene::{config::Config, serve, shutdown::Lifecycle};
use convene_proto::{ErrorCode, ParticipantId, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Message, protocol::frame::coding::CloseCode},
};

/// How long a test waits for any single expected message.
const WAIT: Duration = Duration::from_secs(5);

pub struct Server {
    pub addr: SocketAddr,
    running: Option<serve::Running>,
}

impl Server {
    /// Starts the full server with `toml` as its config file, on free ports (HTTP and media UDP).
    pub async fn start(toml: &str) -> Server {
        // Tests run in parallel: the media socket must not take the fixed default port.
        let mut toml = format!("{toml}\n[media]\nport = 0\nbind = \"127.0.0.1\"\n");
        if !toml.contains("[recording]") {
            // A moderator's start_recording really records: never into the source tree.
            let dir = std::env::temp_dir().join("convene-signal-test-recordings");
            toml.push_str(&format!(
                "[recording]\nrecordings_dir = {:?}\ncompose = false\n",
                dir.to_string_lossy()
            ));
        }
        let config = Config::parse(&toml).unwrap_or_else(|p| panic!("test config: {p:?}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve::start(config, serve::Mode::Full, listener, Lifecycle::new())
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Server {
            addr: running.addr,
            running: Some(running),
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop().await;
        }
    }

    pub async fn client(&self, room: &str, query: &str) -> Client {
        Client::connect(self.addr, room, query).await
    }

    /// Connects and joins as `name`; returns the client and its participant id.
    pub async fn join(&self, room: &str, name: &str) -> (Client, ParticipantId) {
        let mut c = self.client(room, "").await;
        let you = c.join(name).await;
        (c, you)
    }

    /// A plain HTTP request; returns status and body.
    pub async fn http(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(WAIT, stream.read_to_end(&mut response))
            .await
            .unwrap()
            .unwrap();
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        // Bodies may be chunked; ours are small JSON, so strip chunk-size lines.
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            body.split("\r\n").skip(1).step_by(2).collect::<String>()
        } else {
            body.to_owned()
        };
        (status, body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(r) = &self.running {
            r.lifecycle.shutdown.cancel();
        }
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum Ended {
    Closed(Option<CloseCode>),
    Dropped,
}

impl Client {
    pub async fn connect(addr: SocketAddr, room: &str, query: &str) -> Client {
        let q = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        let url = format!("ws://{addr}/api/v1/rooms/{room}/ws{q}");
        let (ws, _) = tokio::time::timeout(WAIT, connect_async(url))
            .await
            .unwrap()
            .unwrap();
        Client { ws }
    }

    pub async fn send(&mut self, msg: Value) {
        self.send_raw(&msg.to_string()).await;
    }

    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// Sends without unwrapping: floods may find the socket closed.
    pub async fn try_send_raw(&mut self, text: &str) -> bool {
        self.ws.send(Message::Text(text.into())).await.is_ok()
    }

    /// The next server message (pings are skipped). Panics on timeout or close.
    pub async fn recv(&mut self) -> ServerMessage {
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("timed out waiting for a message")
                .expect("connection ended")
                .expect("websocket error");
            match frame {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str())
                        .unwrap_or_else(|e| panic!("server sent an unknown message {text}: {e}"));
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a message, got {other:?}"),
            }
        }
    }

    /// The next server message, waiting as long as it takes; `None` once the connection ends.
    pub async fn next_message(&mut self) -> Option<ServerMessage> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Skips messages until one matches.
    pub async fn recv_until(&mut self, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            let m = self.recv().await;
            if pred(&m) {
                return m;
            }
        }
    }

    /// Expects the next message to be an error with `code`.
    pub async fn expect_error(&mut self, code: ErrorCode) -> String {
        match self.recv().await {
            ServerMessage::Error {
                code: c, message, ..
            } if c == code => message,
            other => panic!("expected error {code:?}, got {other:?}"),
        }
    }

    /// Reads until the connection ends; returns how.
    pub async fn ended(&mut self) -> Ended {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("connection stayed open")
            {
                Some(Ok(Message::Close(frame))) => return Ended::Closed(frame.map(|f| f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ended::Dropped,
            }
        }
    }

    /// No message arrives within `d`.
    pub async fn quiet_for(&mut self, d: Duration) {
        if let Ok(Some(Ok(m))) = tokio::time::timeout(d, self.ws.next()).await
            && !matches!(m, Message::Ping(_) | Message::Pong(_))
        {
            panic!("expected silence, got {m:?}");
        }
    }

    /// Sends `join` and waits for `welcome`; returns our id.
    pub async fn join(&mut self, name: &str) -> ParticipantId {
        self.send(json!({"type": "join", "protocol_version": 1, "display_name": name}))
            .await;
        match self.recv().await {
            ServerMessage::Welcome { you, .. } => you,
            other => panic!("expected welcome, got {other:?}"),
        }
    }

    /// Ends the TCP connection without a close handshake (a dropped network).
    pub async fn drop_connection(self) {
        let stream = self.ws.into_inner();
        drop(stream);
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

pub fn welcome_token(m: &ServerMessage) -> String {
    match m {
        ServerMessage::Welcome { resume_token, .. } => resume_token.clone(),
        other => panic!("expected welcome, got {other:?}"),
    }
}

/// Polls `cond` every 50 ms until it holds or `limit` passes; returns its last value.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < end {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// A joined client's WebSocket split for a media test peer (`convene_testkit`): what the peer
/// sends goes to the server, the server's messages that `for_peer` picks go to the peer, the
/// others to `rest`, and `to_ws` sends raw JSON (malformed input tests).
pub struct Bridge {
    pub to_server: tokio::sync::mpsc::UnboundedSender<convene_proto::ClientMessage>,
    pub from_server: tokio::sync::mpsc::UnboundedReceiver<ServerMessage>,
    pub rest: tokio::sync::mpsc::UnboundedReceiver<ServerMessage>,
    pub to_ws: tokio::sync::mpsc::UnboundedSender<Value>,
}

/// The messages a media peer negotiates with.
pub fn is_media(m: &ServerMessage) -> bool {
    matches!(
        m,
        ServerMessage::SdpAnswer { .. }
            | ServerMessage::SdpOffer { .. }
            | ServerMessage::Tracks { .. }
            | ServerMessage::MediaError { .. }
    )
}

/// Runs `ws` on a task of its own until the server closes it (see [`Bridge`]).
pub fn bridge(mut ws: Client, for_peer: fn(&ServerMessage) -> bool) -> Bridge {
    use tokio::sync::mpsc::unbounded_channel;
    let (to_server, mut from_peer) = unbounded_channel::<convene_proto::ClientMessage>();
    let (to_peer, from_server) = unbounded_channel();
    let (rest_tx, rest) = unbounded_channel();
    let (to_ws, mut outgoing) = unbounded_channel::<Value>();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(msg) = from_peer.recv() => ws.send(serde_json::to_value(&msg).unwrap()).await,
                Some(msg) = outgoing.recv() => ws.send(msg).await,
                msg = ws.next_message() => match msg {
                    Some(m) if for_peer(&m) => {
                        let _ = to_peer.send(m);
                    }
                    Some(m) => {
                        let _ = rest_tx.send(m);
                    }
                    None => break,
                },
            }
        }
    });
    Bridge {
        to_server,
        from_server,
        rest,
        to_ws,
    }
}

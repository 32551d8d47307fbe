//! The signaling side of a load client: connect the room's WebSocket, `join`, wait for
//! `welcome`, then exchange JSON messages of `convene-proto`.

use std::time::Duration;

use anyhow::{Context, bail};
use convene_proto::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The signaling URL of `room` on the server at `base` (`http://host:port`).
pub fn room_url(base: &str, room: &str, jwt: Option<&str>) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        bail!("server URL must start with http:// or https:// (got {base})");
    };
    let query = jwt.map(|t| format!("?jwt={t}")).unwrap_or_default();
    Ok(format!("{ws}/api/v1/rooms/{room}/ws{query}"))
}

/// Connects, joins as `name` and waits for `welcome`; returns the socket and our participant id.
pub async fn join(url: &str, name: &str, limit: Duration) -> anyhow::Result<(Ws, String)> {
    tokio::time::timeout(limit, async {
        let (mut ws, _) = connect_async(url)
            .await
            .with_context(|| format!("connecting {url}"))?;
        send(
            &mut ws,
            &ClientMessage::Join {
                protocol_version: PROTOCOL_VERSION,
                display_name: Some(name.to_owned()),
                password: None,
            },
        )
        .await?;
        loop {
            match recv(&mut ws).await? {
                Some(ServerMessage::Welcome { you, .. }) => return Ok((ws, you.to_string())),
                Some(ServerMessage::Error { code, message, .. }) => {
                    bail!("join refused: {code:?}: {message}")
                }
                Some(_) => continue,
                None => bail!("signaling closed before welcome"),
            }
        }
    })
    .await
    .context("join timed out")?
}

pub async fn send(ws: &mut Ws, msg: &ClientMessage) -> anyhow::Result<()> {
    let text = serde_json::to_string(msg)?;
    ws.send(Message::Text(text.into())).await?;
    Ok(())
}

/// The next server message; `None` when the connection ended. Messages this client does not
/// know are skipped.
pub async fn recv(ws: &mut Ws) -> anyhow::Result<Option<ServerMessage>> {
    loop {
        match ws.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(text))) => {
                if let Some(m) = parse(text.as_str()) {
                    return Ok(Some(m));
                }
            }
            Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Ok(_)) => continue,
        }
    }
}

/// Parses a server frame. Conference chatter (hundreds of `participant_joined` in a large room)
/// is most of what arrives; it is parsed like the rest, because the media messages are few.
pub fn parse(text: &str) -> Option<ServerMessage> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_urls() {
        assert_eq!(
            room_url("http://127.0.0.1:8080/", "load-0", None).unwrap(),
            "ws://127.0.0.1:8080/api/v1/rooms/load-0/ws"
        );
        assert_eq!(
            room_url("https://meet.example", "r", Some("abc")).unwrap(),
            "wss://meet.example/api/v1/rooms/r/ws?jwt=abc"
        );
        assert!(room_url("meet.example", "r", None).is_err());
    }

    #[test]
    fn media_messages_parse_and_unknown_ones_do_not() {
        assert!(matches!(
            parse(r#"{"type":"sdp_answer","sdp":"v=0"}"#),
            Some(ServerMessage::SdpAnswer { .. })
        ));
        assert!(parse(r#"{"type":"from_the_future"}"#).is_none());
    }
}

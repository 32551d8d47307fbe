//! The crate's public API as the server uses it: `Relay::new`, `router()` served on a real port,
//! metrics in the caller's registry, and `close_all()` ending every connection.

use std::time::Duration;

use convene_whiteboard::{Config, Relay};
use futures_util::{SinkExt, StreamExt};
use prometheus_client::registry::Registry;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a frame within 5 s")
            .expect("stream open")
            .expect("no error");
        if let Message::Text(t) = msg {
            return t.to_string();
        }
    }
}

fn metrics(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[tokio::test]
async fn serves_socketio_and_close_all_disconnects_everyone() {
    let mut registry = Registry::with_prefix("convene");
    let relay = Relay::new(
        Config::default(),
        registry.sub_registry_with_prefix("whiteboard"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, relay.router()).into_future());

    let mut clients = Vec::new();
    for eio in [3, 4] {
        let url = format!("ws://{addr}/socket.io/?EIO={eio}&transport=websocket");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let open = next_text(&mut ws).await;
        assert!(open.starts_with("0{\"sid\":"), "{open}");
        if eio == 4 {
            ws.send(Message::text("40")).await.unwrap();
            assert!(next_text(&mut ws).await.starts_with("40{\"sid\":"));
        } else {
            assert_eq!(next_text(&mut ws).await, "40");
        }
        assert_eq!(next_text(&mut ws).await, "42[\"init-room\"]");
        ws.send(Message::text("42[\"join-room\",\"r\"]"))
            .await
            .unwrap();
        clients.push(ws);
    }
    // The second joiner's room-user-change lists both sockets.
    let change = loop {
        let text = next_text(&mut clients[1]).await;
        if text.contains("room-user-change") {
            break text;
        }
    };
    assert_eq!(change.matches(',').count(), 2, "{change}");
    let text = metrics(&registry);
    assert!(text.contains("convene_whiteboard_rooms 1"), "{text}");
    assert!(
        text.contains("convene_whiteboard_room_memberships 2"),
        "{text}"
    );

    relay.close_all().await;
    for ws in &mut clients {
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(msg)) = ws.next().await {
                if let Message::Close(_) = msg {
                    return true;
                }
            }
            true
        })
        .await;
        assert_eq!(end, Ok(true), "connection ended after close_all");
    }
    let text = metrics(&registry);
    assert!(text.contains("convene_whiteboard_rooms 0"), "{text}");
    assert!(
        text.contains("convene_whiteboard_room_memberships 0"),
        "{text}"
    );
    assert!(
        text.contains("convene_whiteboard_disconnects_total{reason=\"server_shutdown\"} 2"),
        "{text}"
    );

    // New sessions are refused once closing.
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn rejects_bad_handshakes_with_engineio_errors() {
    let mut registry = Registry::default();
    let relay = Relay::new(Config::default(), &mut registry);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, relay.router()).into_future());
    for (query, code) in [
        ("EIO=5&transport=polling", 5),
        ("EIO=4&transport=carrier-pigeon", 0),
        ("EIO=4&transport=polling&sid=nope", 1),
    ] {
        let url = format!("ws://{addr}/socket.io/?{query}");
        let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
        let tokio_tungstenite::tungstenite::Error::Http(response) = err else {
            panic!("{query}: expected an HTTP error, got {err:?}");
        };
        assert_eq!(response.status(), 400, "{query}");
        let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
        assert!(
            body.contains(&format!("\"code\":{code}")),
            "{query}: {body}"
        );
    }
}

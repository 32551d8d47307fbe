//! The WebSocket handshake, done here rather than by axum's extractor so that the connection's
//! IO can be wrapped in [`LazyBuf`] before tungstenite gets it.
//!
//! Why: tungstenite reads at most its read-buffer size per system call and allocates that
//! buffer up front. A 4 KiB buffer costs every idle connection 4 KiB; a 512-byte one costs three
//! `recvfrom` calls for each 1 KiB broadcast. [`LazyBuf`] gives both: tungstenite keeps a small
//! buffer, and reads from the socket go through an 8 KiB buffer that exists only while it holds
//! unread bytes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::{Buf, BytesMut};
use hyper_util::rt::TokioIo;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// An accepted WebSocket.
pub type Socket = WebSocketStream<LazyBuf<TokioIo<hyper::upgrade::Upgraded>>>;

/// Answers a WebSocket upgrade request with 101 and runs `serve` on the socket once the
/// connection is handed over; any other request gets `None`.
pub fn upgrade<F, Fut>(mut req: Request, config: WebSocketConfig, serve: F) -> Option<Response>
where
    F: FnOnce(Socket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let accept = accept_key(req.headers())?;
    let on_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>()?;
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let io = LazyBuf::new(TokioIo::new(upgraded));
        serve(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await).await;
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Some(response)
}

/// Checks the RFC 6455 request headers and derives `Sec-WebSocket-Accept`.
fn accept_key(headers: &HeaderMap) -> Option<HeaderValue> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return None;
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION)? != "13" {
        return None;
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let mut sha = Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(sha.finalize());
    HeaderValue::from_str(&accept).ok()
}

const CHUNK: usize = 8 * 1024;

/// Read buffering whose buffer lives only while it holds unread bytes.
pub struct LazyBuf<T> {
    inner: T,
    buf: BytesMut,
}

impl<T> LazyBuf<T> {
    pub fn new(inner: T) -> Self {
        LazyBuf {
            inner,
            buf: BytesMut::new(),
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for LazyBuf<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_empty() {
            if dst.remaining() >= CHUNK {
                return Pin::new(&mut this.inner).poll_read(cx, dst);
            }
            this.buf.reserve(CHUNK);
            // Reads into the spare capacity without zeroing it first.
            match tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf) {
                Poll::Ready(Ok(_)) => {}
                other => {
                    // Nothing to read (the idle case) or an error: hold no buffer meanwhile.
                    this.buf = BytesMut::new();
                    return other.map_ok(drop);
                }
            }
        }
        let n = dst.remaining().min(this.buf.len());
        dst.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        if this.buf.is_empty() {
            // Drained: give the memory back, so an idle connection holds no read buffer.
            this.buf = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for LazyBuf<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn small_reads_are_served_from_one_big_read_and_the_buffer_is_freed() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let mut lazy = LazyBuf::new(server);
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        client.write_all(&data).await.unwrap();
        let mut got = Vec::new();
        let mut small = [0u8; 512];
        while got.len() < data.len() {
            let n = lazy.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
            if got.len() < data.len() {
                assert!(!lazy.buf.is_empty(), "the rest waits in the buffer");
            }
        }
        assert_eq!(got, data);
        assert_eq!(lazy.buf.capacity(), 0, "drained buffer is released");
        drop(client);
        assert_eq!(
            lazy.read(&mut small).await.unwrap(),
            0,
            "end of stream passes through"
        );
    }

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="),
        );
        assert_eq!(
            accept_key(&headers).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        headers.remove(header::UPGRADE);
        assert!(accept_key(&headers).is_none());
    }
}

//! A TLS listener for `axum::serve`: TCP accepts feed concurrent handshakes (so one slow client cannot
//! hold up others), and finished TLS streams come out of `accept` in the order they completed.
//!
//! With TURN over TLS on the same port, a connection that negotiated the `stun.turn` ALPN, or none
//! and then starts with a STUN message, is handed to the TURN server instead. Browsers always
//! negotiate `http/1.1`, so HTTPS never waits for that first-byte check.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;

use super::store::ACME_TLS_ALPN;
use crate::turn::Accepted;

/// A client that has not finished its handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client without ALPN that sends nothing for this long after its handshake is dropped.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; beyond it TCP accepts wait, like a full backlog.
const MAX_HANDSHAKES: usize = 256;
/// ALPN for TURN over TLS (RFC 7443).
const TURN_ALPN: &[u8] = b"stun.turn";

/// A TLS stream, with the byte read to tell TURN from HTTP put back in front.
pub struct Stream {
    first: Option<u8>,
    tls: TlsStream<TcpStream>,
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(b) = self.first
            && buf.remaining() > 0
        {
            buf.put_slice(&[b]);
            self.first = None;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.tls).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.tls).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tls).poll_shutdown(cx)
    }
}

pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(Stream, SocketAddr)>,
}

/// Where a finished handshake goes.
enum Route {
    Http(Stream),
    Turn(Stream),
}

/// Tells TURN from HTTP. Without a TURN server everything is HTTP and nothing is read.
async fn route(mut tls: TlsStream<TcpStream>, turn: bool) -> std::io::Result<Route> {
    let alpn = tls.get_ref().1.alpn_protocol();
    if !turn || alpn.is_some_and(|p| p != TURN_ALPN) {
        return Ok(Route::Http(Stream { first: None, tls }));
    }
    if alpn == Some(TURN_ALPN) {
        return Ok(Route::Turn(Stream { first: None, tls }));
    }
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(FIRST_BYTE_TIMEOUT, tls.read(&mut first))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    if n == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let stream = Stream {
        first: Some(first[0]),
        tls,
    };
    // STUN messages start with two zero bits (RFC 5389 section 6); HTTP starts with a method name.
    Ok(if first[0] >> 6 == 0 {
        Route::Turn(stream)
    } else {
        Route::Http(stream)
    })
}

impl TlsListener {
    /// Starts accepting on `tcp`. The accept task ends with `shutdown`. With `turn`, connections that
    /// speak TURN are sent there.
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        shutdown: CancellationToken,
        turn: Option<mpsc::Sender<Accepted>>,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let config = match &turn {
            Some(_) => {
                let mut with_turn = (*config).clone();
                // First: rustls picks in the server's order, and TURN clients such as coturn's
                // offer `http/1.1` too. Browsers never offer `stun.turn`.
                with_turn.alpn_protocols.insert(0, TURN_ALPN.to_vec());
                Arc::new(with_turn)
            }
            None => config,
        };
        let acceptor = TlsAcceptor::from(config);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (stream, peer) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = tcp.accept() => match accepted {
                        Ok(pair) => pair,
                        Err(e) => {
                            // Out of file descriptors and similar: back off instead of spinning.
                            tracing::warn!("https accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                // Without TCP_NODELAY small WebSocket frames wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let turn = turn.clone();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => return tracing::debug!(%peer, "tls handshake failed: {e}"),
                        Err(_) => return tracing::debug!(%peer, "tls handshake timed out"),
                    };
                    // The handshake is done; waiting for a first byte must not hold a slot.
                    drop(permit);
                    // A tls-alpn-01 validation only needs the handshake; it never speaks HTTP.
                    if tls.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
                        tracing::debug!(%peer, "answered an ACME tls-alpn-01 validation");
                        return;
                    }
                    match route(tls, turn.is_some()).await {
                        Ok(Route::Http(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Route::Turn(stream)) => {
                            if let Some(turn) = turn {
                                let accepted = Accepted {
                                    stream: Box::new(stream),
                                    local,
                                    peer,
                                };
                                let _ = turn.send(accepted).await;
                            }
                        }
                        Err(e) => tracing::debug!(%peer, "tls connection sent nothing usable: {e}"),
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = Stream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(pair) => pair,
            // The accept task is gone (shutdown): never yield another connection; graceful shutdown
            // stops polling us.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

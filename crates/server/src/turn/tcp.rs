//! TURN over a byte stream (RFC 5766 section 2.1: TCP, or TLS on the HTTPS port): STUN messages and
//! ChannelData framed on the stream, presented to the `turn` crate as a datagram socket so its server
//! logic runs unchanged, one server instance per connection (allocations are per 5-tuple anyway).

use std::{net::SocketAddr, sync::Arc};

use async_trait::async_trait;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf},
    sync::Mutex,
};
use tokio_util::sync::CancellationToken;
use webrtc_util::Conn;

/// Largest frame accepted: a STUN message or ChannelData never needs more than a UDP datagram.
const MAX_FRAME: usize = 1500;

/// Any connected byte stream: a TCP socket, or a TLS stream handed over by the HTTPS listener.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

/// A client connection for TURN over a stream, with its addresses.
pub struct Accepted {
    pub stream: Box<dyn ByteStream>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

pub struct StreamConn {
    reader: Mutex<ReadHalf<Box<dyn ByteStream>>>,
    writer: Mutex<WriteHalf<Box<dyn ByteStream>>>,
    local: SocketAddr,
    peer: SocketAddr,
    /// Cancelled when the client goes away or sends something that is not TURN.
    pub closed: CancellationToken,
}

impl StreamConn {
    pub fn new(accepted: Accepted) -> Arc<StreamConn> {
        let (r, w) = tokio::io::split(accepted.stream);
        Arc::new(StreamConn {
            reader: Mutex::new(r),
            writer: Mutex::new(w),
            local: accepted.local,
            peer: accepted.peer,
            closed: CancellationToken::new(),
        })
    }

    async fn read_frame(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut reader = self.reader.lock().await;
        let mut header = [0u8; 4];
        reader.read_exact(&mut header).await?;
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let total = match header[0] >> 6 {
            // STUN: a 20-byte header whose length field counts the attributes after it.
            0b00 => 20 + length,
            // ChannelData (channel numbers 0x4000-0x7FFF): padded to 4 bytes on streams.
            0b01 => 4 + length.div_ceil(4) * 4,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not a STUN message or ChannelData",
                ));
            }
        };
        if total > MAX_FRAME.min(buf.len()) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("frame of {total} bytes is too large"),
            ));
        }
        buf[..4].copy_from_slice(&header);
        reader.read_exact(&mut buf[4..total]).await?;
        Ok(total)
    }
}

#[async_trait]
impl Conn for StreamConn {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("already connected".to_owned()))
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let read = tokio::select! {
            r = self.read_frame(buf) => r,
            _ = self.closed.cancelled() => Err(std::io::ErrorKind::ConnectionAborted.into()),
        };
        match read {
            Ok(n) => Ok((n, self.peer)),
            Err(e) => {
                if e.kind() != std::io::ErrorKind::UnexpectedEof {
                    tracing::debug!(peer = %self.peer, "turn tcp connection ended: {e}");
                }
                self.closed.cancel();
                Err(e.into())
            }
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.send_to(buf, self.peer).await
    }

    async fn send_to(&self, buf: &[u8], _target: SocketAddr) -> webrtc_util::Result<usize> {
        let mut writer = self.writer.lock().await;
        // TLS buffers records until flushed; a plain socket's flush does nothing.
        let written = async {
            writer.write_all(buf).await?;
            writer.flush().await
        };
        match written.await {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.closed.cancel();
                Err(e.into())
            }
        }
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        Some(self.peer)
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.closed.cancel();
        let _ = self.writer.lock().await.shutdown().await;
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

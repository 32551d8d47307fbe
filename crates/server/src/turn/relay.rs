//! Relay sockets for the embedded TURN server: taken from the configured port range, and, unless
//! `relay_to_any_peer`, only exchanging packets with the media port, so credentials handed to any
//! participant cannot be used to reach other services through the relay.

use std::{net::SocketAddr, sync::Arc};

use async_trait::async_trait;
use turn::relay::{RelayAddressGenerator, relay_range::RelayAddressGeneratorRanges};
use webrtc_util::Conn;

pub struct Relays {
    pub ranges: RelayAddressGeneratorRanges,
    /// Some(port): the only peer port allowed.
    pub peer_port: Option<u16>,
}

#[async_trait]
impl RelayAddressGenerator for Relays {
    fn validate(&self) -> Result<(), turn::Error> {
        self.ranges.validate()
    }

    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let (conn, addr) = self.ranges.allocate_conn(use_ipv4, requested_port).await?;
        match self.peer_port {
            None => Ok((conn, addr)),
            Some(port) => Ok((Arc::new(PeerFilter { inner: conn, port }), addr)),
        }
    }
}

/// A relay socket that drops traffic to and from any port but `port`.
struct PeerFilter {
    inner: Arc<dyn Conn + Send + Sync>,
    port: u16,
}

#[async_trait]
impl Conn for PeerFilter {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        if addr.port() != self.port {
            return Err(webrtc_util::Error::Other(format!(
                "peer {addr} not allowed"
            )));
        }
        self.inner.connect(addr).await
    }

    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.recv_from(buf).await.map(|(n, _)| n)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            if from.port() == self.port {
                return Ok((n, from));
            }
            tracing::trace!(%from, "turn relay: dropped a packet from a peer that is not the media port");
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if target.port() != self.port {
            tracing::debug!(%target, "turn relay: refused to send to a peer that is not the media port");
            // Reported as sent: TURN has no way to tell the client, and an error would end the relay loop.
            return Ok(buf.len());
        }
        self.inner.send_to(buf, target).await
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.inner.close().await
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

//! Relay sockets for the embedded TURN server: taken from the configured port range, and, unless
//! `relay_to_any_peer`, only exchanging packets with the media port, so credentials handed to any
//! participant cannot be used to reach other services through the relay. Every relay socket counts
//! the allocation and the bytes it carries.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use async_trait::async_trait;
use turn::relay::{RelayAddressGenerator, relay_range::RelayAddressGeneratorRanges};
use webrtc_util::Conn;

use super::metrics::TurnMetrics;

pub struct Relays {
    pub ranges: RelayAddressGeneratorRanges,
    /// Some(port): the only peer port allowed.
    pub peer_port: Option<u16>,
    pub metrics: TurnMetrics,
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
        self.metrics.allocations.inc();
        let relay = RelayConn {
            inner: conn,
            peer_port: self.peer_port,
            metrics: self.metrics.clone(),
            counted: AtomicBool::new(true),
        };
        Ok((Arc::new(relay), addr))
    }
}

/// A relay socket: drops traffic to and from any port but `peer_port` (when set) and counts.
struct RelayConn {
    inner: Arc<dyn Conn + Send + Sync>,
    peer_port: Option<u16>,
    metrics: TurnMetrics,
    /// Still counted in the allocations gauge (until closed or dropped, whichever comes first).
    counted: AtomicBool,
}

impl RelayConn {
    fn allowed(&self, addr: SocketAddr) -> bool {
        self.peer_port.is_none_or(|p| addr.port() == p)
    }

    fn uncount(&self) {
        if self.counted.swap(false, Ordering::Relaxed) {
            self.metrics.allocations.dec();
        }
    }
}

impl Drop for RelayConn {
    fn drop(&mut self) {
        self.uncount();
    }
}

#[async_trait]
impl Conn for RelayConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        if !self.allowed(addr) {
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
            if self.allowed(from) {
                self.metrics.relayed("from_peer", n);
                return Ok((n, from));
            }
            tracing::trace!(%from, "turn relay: dropped a packet from a peer that is not the media port");
        }
    }

    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        let n = self.inner.send(buf).await?;
        self.metrics.relayed("to_peer", n);
        Ok(n)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.allowed(target) {
            tracing::debug!(%target, "turn relay: refused to send to a peer that is not the media port");
            // Reported as sent: TURN has no way to tell the client, and an error would end the relay loop.
            return Ok(buf.len());
        }
        let n = self.inner.send_to(buf, target).await?;
        self.metrics.relayed("to_peer", n);
        Ok(n)
    }

    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }

    async fn close(&self) -> webrtc_util::Result<()> {
        self.uncount();
        self.inner.close().await
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

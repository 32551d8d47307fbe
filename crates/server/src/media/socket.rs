//! The media UDP socket: tokio readiness plus quinn-udp for the destination address of each
//! datagram (which candidate the browser used), the source address of each send, GRO-batched
//! receives and GSO sends (see `batch`).

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use tokio::io::Interest;

pub struct MediaSocket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
    local: SocketAddr,
    /// Addresses of this machine, when bound to the unspecified address: a send from one of
    /// them names it as source so the browser sees the reply come from the address it used.
    local_ips: Vec<IpAddr>,
}

impl MediaSocket {
    /// Binds `addr`. Must run inside the tokio runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        let std = std::net::UdpSocket::bind(addr)?;
        std.set_nonblocking(true)?;
        let state = UdpSocketState::new((&std).into())?;
        // Room for bursts of video from many participants between two reads.
        let _ = state.set_recv_buffer_size((&std).into(), 4 << 20);
        let _ = state.set_send_buffer_size((&std).into(), 4 << 20);
        let local = std.local_addr()?;
        let io = tokio::net::UdpSocket::from_std(std)?;
        let local_ips = if addr.ip().is_unspecified() {
            if_addrs::get_if_addrs()
                .map(|v| v.into_iter().map(|i| i.ip()).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        Ok(Self {
            io,
            state,
            local,
            local_ips,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// How many datagrams one receive buffer may hold (GRO); size buffers accordingly.
    pub fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    pub async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    pub async fn writable(&self) -> io::Result<()> {
        self.io.writable().await
    }

    /// Reads what is queued without waiting; `WouldBlock` when nothing is.
    pub fn try_recv(
        &self,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> io::Result<usize> {
        self.io.try_io(Interest::READABLE, || {
            self.state.recv((&self.io).into(), bufs, meta)
        })
    }

    /// Most datagrams one send may carry (UDP GSO); 1 without GSO.
    pub fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    /// Sends from candidate `source`: one datagram, or with `segment` several of that size laid
    /// end to end in `contents` (GSO; the last may be shorter). `WouldBlock` when the send buffer
    /// is full.
    pub fn try_send(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
        segment: Option<usize>,
    ) -> io::Result<()> {
        let src_ip = self.local_ips.contains(&source.ip()).then_some(source.ip());
        let transmit = Transmit {
            destination,
            ecn: None,
            contents,
            segment_size: segment,
            src_ip,
        };
        self.io.try_io(Interest::WRITABLE, || {
            self.state.send((&self.io).into(), &transmit)
        })
    }
}

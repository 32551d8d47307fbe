//! ICE over TCP (RFC 6544): the server's passive TCP host candidates. The server never opens a
//! connection itself; a client whose UDP is blocked connects to one of these and sends ICE,
//! DTLS and SRTP as RFC 4571 frames, which the IO layer hands in like datagrams with
//! `Protocol::Tcp`.

use std::net::{IpAddr, SocketAddr};

use str0m::net::TcpType;
use str0m::{Candidate, Rtc};

use super::Sfu;

/// Adds a passive TCP host candidate for each address. str0m gives them a lower priority than
/// UDP host candidates, so a client that can use UDP still does.
pub(super) fn add_candidates(rtc: &mut Rtc, addrs: &[SocketAddr]) {
    for addr in addrs {
        match Candidate::builder()
            .tcp()
            .host(*addr)
            .tcptype(TcpType::Passive)
            .build()
        {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => tracing::warn!(%addr, error = %e, "unusable media TCP candidate"),
        }
    }
}

impl Sfu {
    /// The TCP candidate a connection accepted on local address `local` reached: the one with
    /// that IP, else (behind NAT, where the public address is announced) the first one. None
    /// when ICE-TCP is off.
    pub fn tcp_candidate_for(&self, local: IpAddr) -> Option<SocketAddr> {
        let c = &self.config.tcp_candidates;
        c.iter()
            .find(|a| a.ip() == local)
            .or_else(|| c.first())
            .copied()
    }
}

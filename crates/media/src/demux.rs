//! Routing of datagrams on the shared media ports (UDP, and ICE-TCP frames) to sessions.
//!
//! A STUN request names the session by the server's ICE ufrag in its USERNAME. Once a session
//! accepted a STUN request from a source address, DTLS, RTP and RTCP from that address go to the
//! same session, so the per-packet lookup is one hash of a socket address. Addresses are kept
//! per transport: a TCP peer and a UDP peer can have the same IP and port number and still be
//! two different clients.

use std::collections::HashMap;
use std::net::SocketAddr;

use str0m::net::Protocol;

/// Where a datagram should go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<K> {
    /// A STUN request for this session (the caller still asks the session whether it accepts it).
    Stun(K),
    /// Any datagram from an address this session has accepted before.
    Known(K),
    /// Nobody claims it; drop it.
    Unknown,
}

/// Ufrag and address tables. `K` is the caller's session key.
#[derive(Debug)]
pub struct Demux<K> {
    by_ufrag: HashMap<String, K>,
    by_addr: HashMap<(Protocol, SocketAddr), K>,
}

impl<K> Default for Demux<K> {
    fn default() -> Self {
        Self {
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
        }
    }
}

impl<K: Copy + PartialEq> Demux<K> {
    /// Routes one datagram that arrived over `proto` from `source`.
    pub fn route(&self, proto: Protocol, source: SocketAddr, datagram: &[u8]) -> Route<K> {
        if let Some(ufrag) = crate::stun::local_ufrag(datagram)
            && let Some(k) = self.by_ufrag.get(ufrag)
        {
            return Route::Stun(*k);
        }
        match self.by_addr.get(&(proto, source)) {
            Some(k) => Route::Known(*k),
            None => Route::Unknown,
        }
    }

    /// Registers the server ufrag of a session.
    pub fn add_ufrag(&mut self, ufrag: &str, key: K) {
        self.by_ufrag.insert(ufrag.to_owned(), key);
    }

    /// Records that `key` accepted traffic over `proto` from `source`. A later session that
    /// proves the same address (a client port reused after a leave) takes it over.
    pub fn learn_addr(&mut self, proto: Protocol, source: SocketAddr, key: K) {
        self.by_addr.insert((proto, source), key);
    }

    /// Forgets everything that points at `key`.
    pub fn remove(&mut self, key: K) {
        self.by_ufrag.retain(|_, k| *k != key);
        self.by_addr.retain(|_, k| *k != key);
    }

    /// Number of learned source addresses (for tests and metrics).
    pub fn addr_count(&self) -> usize {
        self.by_addr.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stun_with_username(username: &str) -> Vec<u8> {
        let mut body = vec![0x00, 0x06];
        body.extend_from_slice(&(username.len() as u16).to_be_bytes());
        body.extend_from_slice(username.as_bytes());
        while body.len() % 4 != 0 {
            body.push(0);
        }
        let mut msg = vec![0x00, 0x01];
        msg.extend_from_slice(&(body.len() as u16).to_be_bytes());
        msg.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        msg.extend_from_slice(&[1; 12]);
        msg.extend_from_slice(&body);
        msg
    }

    #[test]
    fn stun_routes_by_ufrag_then_address_takes_over() {
        let mut d = Demux::default();
        d.add_ufrag("aaaa", 1u32);
        d.add_ufrag("bbbb", 2u32);
        let src: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let udp = Protocol::Udp;
        assert_eq!(
            d.route(udp, src, &stun_with_username("bbbb:x")),
            Route::Stun(2)
        );
        assert_eq!(d.route(udp, src, &[0x80, 0x60, 0, 1]), Route::Unknown);
        d.learn_addr(udp, src, 2);
        assert_eq!(d.route(udp, src, &[0x80, 0x60, 0, 1]), Route::Known(2));
        // An unknown ufrag from a known address still goes to the known session.
        assert_eq!(
            d.route(udp, src, &stun_with_username("zzzz:x")),
            Route::Known(2)
        );
        d.remove(2);
        assert_eq!(d.route(udp, src, &[0x80, 0x60, 0, 1]), Route::Unknown);
        assert_eq!(
            d.route(udp, src, &stun_with_username("bbbb:x")),
            Route::Unknown
        );
        assert_eq!(
            d.route(udp, src, &stun_with_username("aaaa:x")),
            Route::Stun(1)
        );
    }

    #[test]
    fn tcp_and_udp_peers_with_equal_addresses_stay_apart() {
        let mut d = Demux::default();
        let src: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        d.learn_addr(Protocol::Udp, src, 1u32);
        assert_eq!(
            d.route(Protocol::Tcp, src, &[0x80, 0x60, 0, 1]),
            Route::Unknown
        );
        d.learn_addr(Protocol::Tcp, src, 2u32);
        assert_eq!(
            d.route(Protocol::Udp, src, &[0x80, 0x60, 0, 1]),
            Route::Known(1)
        );
        assert_eq!(
            d.route(Protocol::Tcp, src, &[0x80, 0x60, 0, 1]),
            Route::Known(2)
        );
        d.remove(2);
        assert_eq!(
            d.route(Protocol::Tcp, src, &[0x80, 0x60, 0, 1]),
            Route::Unknown
        );
        assert_eq!(
            d.route(Protocol::Udp, src, &[0x80, 0x60, 0, 1]),
            Route::Known(1)
        );
        assert_eq!(d.addr_count(), 1);
    }
}

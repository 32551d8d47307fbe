//! SDP negotiation: the client's offers and answers, and the server's own offers.
//!
//! A client's first offer creates the session's `Rtc` (`new_rtc`, with a downlink estimate only
//! when the room has simulcast layers to choose from); every client offer is answered at once,
//! and wins glare over a pending server offer. The server offers what changed for a session (the
//! send-only m-lines of tracks to open and of those to stop) from `negotiate`, which `settle` runs
//! for each session queued in `to_negotiate`; the client's answer opens those subscriptions.

use std::collections::BTreeMap;
use std::time::Instant;

use convene_proto::{MediaSource, ServerMessage};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, KeyframeRequestKind};
use str0m::{Candidate, IceCreds, Rtc, RtcError};

use super::forwarding::Subscription;
use super::{MAX_MID_LEN, Output, Sfu, downlink, slot_mut, tcp};
use crate::error::MediaError;
use crate::session::{OutState, SessionKey};

/// Video packets each leg keeps for retransmission. str0m keeps up to 1000 packets of the last
/// 3 s by default: at 1.5 Mbit/s that is every packet of 3 s, 1.5 MB per leg in memory, most of
/// a subscriber's cost. A lost packet is asked for within a round trip and a few retries, so
/// 300 packets (2 s at 1.5 Mbit/s, 0.75 s at 4 Mbit/s) still cover every useful retransmission.
const VIDEO_RTX_PACKETS: usize = 300;

/// Largest SDP accepted from a client. Chromium's offers with a dozen m-lines stay far below.
pub const MAX_SDP_BYTES: usize = 64 * 1024;
/// Most entries in an offer's `sources` map.
const MAX_SOURCES: usize = 64;

impl Sfu {
    /// A client's `sdp_offer`.
    pub fn client_offer(
        &mut self,
        now: Instant,
        participant: &str,
        sdp: &str,
        sources: BTreeMap<String, MediaSource>,
    ) -> Result<(), MediaError> {
        self.now = now;
        let result = self.accept_client_offer(participant, sdp, sources);
        if result.is_err() {
            self.counters.client_errors += 1;
        }
        self.settle();
        result
    }

    /// A client's `sdp_answer` to a server offer.
    pub fn client_answer(
        &mut self,
        now: Instant,
        participant: &str,
        sdp: &str,
    ) -> Result<(), MediaError> {
        self.now = now;
        let result = self.accept_client_answer(participant, sdp);
        if result.is_err() {
            self.counters.client_errors += 1;
        }
        self.settle();
        result
    }

    fn accept_client_offer(
        &mut self,
        participant: &str,
        sdp: &str,
        sources: BTreeMap<String, MediaSource>,
    ) -> Result<(), MediaError> {
        let key = self.joined(participant)?;
        if sdp.len() > MAX_SDP_BYTES {
            return Err(MediaError::MalformedSdp("SDP too large".into()));
        }
        if sources.len() > MAX_SOURCES
            || sources
                .keys()
                .any(|m| m.is_empty() || m.len() > MAX_MID_LEN)
        {
            return Err(MediaError::InvalidSources(format!(
                "at most {MAX_SOURCES} entries with mids of 1 to {MAX_MID_LEN} characters"
            )));
        }
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| MediaError::MalformedSdp(e.to_string()))?;
        let first = self.session(key).is_some_and(|s| s.rtc.is_none());
        if crate::sdp_scan::has_simulcast(sdp)
            && let Some(s) = self.session_mut(key)
        {
            s.sends_simulcast = true;
        }
        if first {
            let estimate = self.config.bandwidth_estimation && self.layers_to_choose(key);
            let (rtc, ufrag) = self.new_rtc(sdp, estimate);
            self.demux.add_ufrag(&ufrag, key);
            if let Some(s) = self.session_mut(key) {
                s.rtc = Some(rtc);
            }
        }
        let connect_timeout = self.config.connect_timeout;
        let now = self.now;
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return Err(MediaError::NotJoined);
        };
        session.sources = sources;
        // Glare: the client's offer wins. What the dropped server offer carried is offered
        // again right after this answer.
        session.drop_pending_offer();
        let Some(rtc) = session.rtc.as_mut() else {
            return Err(MediaError::NotJoined);
        };
        match rtc.sdp_api().accept_offer(offer) {
            Ok(answer) => {
                if first {
                    session.connect_deadline = Some(now + connect_timeout);
                }
                tracing::debug!(participant = %session.participant, first, "client offer answered");
                let answer = answer.to_sdp_string();
                // A client-initiated ICE restart gives the session new local credentials; STUN
                // from the client's new address will name the new ufrag.
                if let Some(ufrag) = crate::sdp_scan::ice_ufrag(&answer) {
                    self.demux.add_ufrag(ufrag, key);
                }
                let rejected: Vec<String> = crate::sdp_scan::rejected(sdp, &answer)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                self.outputs.push_back(Output::Signal {
                    participant: participant.to_owned(),
                    message: ServerMessage::SdpAnswer { sdp: answer },
                });
                // The answer stands for the other m-lines; the client learns why these failed.
                for mid in rejected {
                    self.counters.client_errors += 1;
                    let e = MediaError::NoUsableCodec(mid);
                    self.outputs.push_back(Output::Signal {
                        participant: participant.to_owned(),
                        message: ServerMessage::MediaError {
                            code: e.code().into(),
                            message: e.to_string(),
                        },
                    });
                }
                self.drain(key);
                self.to_negotiate.push(key);
                Ok(())
            }
            Err(e) => {
                let dead = !rtc.is_alive();
                if first {
                    // Nothing was established: start over with the next offer.
                    session.rtc = None;
                    self.demux.remove(key);
                } else if dead {
                    self.to_close
                        .push((key, format!("offer broke the session: {e}")));
                } else {
                    self.to_negotiate.push(key);
                }
                Err(MediaError::SdpRejected(e.to_string()))
            }
        }
    }

    fn accept_client_answer(&mut self, participant: &str, sdp: &str) -> Result<(), MediaError> {
        let key = self.joined(participant)?;
        if sdp.len() > MAX_SDP_BYTES {
            return Err(MediaError::MalformedSdp("SDP too large".into()));
        }
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| MediaError::MalformedSdp(e.to_string()))?;
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return Err(MediaError::NotJoined);
        };
        let Some(pending) = session.pending.take() else {
            return Err(MediaError::UnexpectedAnswer);
        };
        let Some(rtc) = session.rtc.as_mut() else {
            return Err(MediaError::UnexpectedAnswer);
        };
        if let Err(e) = rtc.sdp_api().accept_answer(pending, answer) {
            let dead = !rtc.is_alive();
            session.drop_pending_offer();
            if dead {
                self.to_close
                    .push((key, format!("answer broke the session: {e}")));
            } else {
                self.to_negotiate.push(key);
            }
            return Err(match e {
                RtcError::ChangesOutOfOrder => MediaError::UnexpectedAnswer,
                e => MediaError::SdpRejected(e.to_string()),
            });
        }
        let connected = session.connected;
        tracing::debug!(participant = %session.participant, connected, "server offer answered");
        let mut opened = Vec::new();
        session.tracks_out.retain_mut(|t| match t.state {
            OutState::Negotiating(m) => {
                t.state = OutState::Open(m);
                opened.push((t.track, m));
                true
            }
            OutState::Stopping(_) => false,
            _ => true,
        });
        self.drain(key);
        for &(track, mid) in &opened {
            if let Some(t) = self.tracks.get_mut(&track) {
                t.subscribers.push(Subscription::new(key, mid));
            }
        }
        // The new subscriptions get their layers (and keyframe requests for them).
        self.reallocate(key);
        if connected {
            for (track, _) in opened {
                self.request_keyframe_for(track, key, KeyframeRequestKind::Pli);
            }
        }
        self.apply_last_n(key);
        self.to_negotiate.push(key);
        Ok(())
    }

    /// Whether the session `key` will have simulcast layers to choose from: someone in its room
    /// (itself included) offered simulcast (in a meeting of browsers, everyone: the web app
    /// always offers a simulcast camera). Only then is a downlink estimate of use, and without
    /// layers it does harm: str0m's pacer holds every leg to 1.1 times the estimate, which starts
    /// at `INITIAL_ESTIMATE`, below a single-layer camera's rate, so those legs queued
    /// (BENCHMARKS.md). A receive-only session that joins before any simulcast publisher goes
    /// without one: its layers then follow its tile sizes only.
    fn layers_to_choose(&self, key: SessionKey) -> bool {
        let Some(room) = self.session(key).map(|s| s.room.clone()) else {
            return false;
        };
        self.rooms
            .get(&room)
            .into_iter()
            .flatten()
            .any(|&member| self.session(member).is_some_and(|s| s.sends_simulcast))
    }

    fn new_rtc(&self, first_offer: &str, estimate: bool) -> (Rtc, String) {
        let creds = IceCreds::new();
        let ufrag = creds.ufrag.clone();
        let mut builder = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .set_extension_map(crate::extmap::from_offer(first_offer))
            .set_stats_interval(Some(self.config.stats_interval))
            .set_send_buffer_video(VIDEO_RTX_PACKETS)
            // The downlink estimate picks simulcast layers (see `downlink`).
            .enable_bwe(estimate.then_some(downlink::INITIAL_ESTIMATE))
            // VP8 first: every browser encodes and decodes it, so publishers pick a codec all
            // subscribers can take. H.265 stays off: browsers decode it only with hardware.
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_vp9(true)
            .enable_h264(true)
            .enable_av1(true);
        if let Some(cert) = &self.cert {
            builder = builder.set_dtls_cert(cert.clone());
        }
        let mut rtc = builder.build(self.now);
        for addr in &self.config.candidates {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => tracing::warn!(%addr, error = %e, "unusable media candidate"),
            }
        }
        tcp::add_candidates(&mut rtc, &self.config.tcp_candidates);
        (rtc, ufrag)
    }

    /// Sends a server offer with what changed for this session, if anything did and no offer is
    /// outstanding. Also sends the `tracks` map (before the offer, so the client can name the
    /// tracks when they arrive).
    pub(super) fn negotiate(&mut self, key: SessionKey) {
        let Some(session) = slot_mut(&mut self.slots, key) else {
            return;
        };
        if session.pending.is_some() {
            return;
        }
        let Some(rtc) = session.rtc.as_mut() else {
            return;
        };
        session
            .tracks_out
            .retain(|t| !(t.removed && t.state == OutState::ToOpen));
        let mut api = rtc.sdp_api();
        for t in &mut session.tracks_out {
            match (t.state, t.removed) {
                (OutState::ToOpen, false) => {
                    let mid = api.add_media(
                        t.kind,
                        Direction::SendOnly,
                        Some(t.participant.to_string()),
                        Some(format!("t{}", t.track.0)),
                        None,
                    );
                    t.state = OutState::Negotiating(mid);
                }
                (OutState::Open(m), true) => {
                    api.stop_media(m);
                    t.state = OutState::Stopping(m);
                }
                _ => {}
            }
        }
        let offer = if api.has_changes() { api.apply() } else { None };
        let participant = session.participant.to_string();
        if let Some(tracks) = session.tracks_message_if_changed() {
            self.outputs.push_back(Output::Signal {
                participant: participant.clone(),
                message: ServerMessage::Tracks { tracks },
            });
        }
        if let Some((offer, pending)) = offer {
            session.pending = Some(pending);
            self.outputs.push_back(Output::Signal {
                participant,
                message: ServerMessage::SdpOffer {
                    sdp: offer.to_sdp_string(),
                },
            });
            self.drain(key);
        }
    }
}

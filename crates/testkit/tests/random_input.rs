//! Randomized input for everything the media path parses: the project's own STUN, extmap and
//! SDP scans, and str0m's SDP parser behind `client_offer`/`client_answer`, fed with mutated
//! real offers and answers. Nothing may panic, and a healthy session next to it keeps working.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use convene_media::{extmap, sdp_scan, stun};
use convene_proto::{ClientMessage, MediaSource};
use convene_testkit::harness::kind_of;
use convene_testkit::rng::Rng;
use convene_testkit::{Harness, TestClient};

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for _ in 0..=rng.below(4) {
        if lines.is_empty() {
            break;
        }
        let i = rng.below(lines.len() as u64) as usize;
        match rng.below(7) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let cut = rng.below(lines[i].len() as u64 + 1) as usize;
                let cut = (0..=cut)
                    .rev()
                    .find(|c| lines[i].is_char_boundary(*c))
                    .unwrap_or(0);
                lines[i].truncate(cut);
            }
            3 => lines[i] = lines[i].replace(|c: char| c.is_ascii_digit(), "9"),
            4 => lines[i].push_str(&" 4294967296".repeat(rng.below(3) as usize + 1)),
            5 => {
                let j = rng.below(lines.len() as u64) as usize;
                lines.swap(i, j);
            }
            _ => {
                let n = rng.below(12) as usize;
                let bytes = rng.bytes(n);
                lines[i].push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    lines.join("\r\n")
}

#[test]
fn own_parsers_take_random_bytes() {
    let mut rng = Rng::new(21);
    for _ in 0..20_000 {
        let len = rng.below(200) as usize;
        let mut data = rng.bytes(len);
        if len >= 20 && rng.below(2) == 0 {
            data[0] = 0;
            data[4..8].copy_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
            if len >= 24 {
                data[20..22].copy_from_slice(&[0, 6]);
            }
        }
        let _ = stun::local_ufrag(&data);
        let text = String::from_utf8_lossy(&data);
        let _ = extmap::from_offer(&text);
        let _ = sdp_scan::rejected(&text, &text);
    }
}

#[test]
fn mutated_offers_and_answers_never_break_the_core() {
    let mut rng = Rng::new(22);
    let mut h = Harness::new(23);
    h.join(
        "room",
        "alice",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.join(
        "room",
        "bob",
        &[MediaSource::Microphone, MediaSource::Camera],
    );
    h.run(Duration::from_secs(2));

    // Real offers to mutate: a fresh client's first offer and a renegotiation.
    let mut sample = TestClient::new("sample", "127.0.0.1:30000".parse().unwrap(), Instant::now());
    sample.offer(
        Instant::now(),
        &[
            (kind_of(MediaSource::Microphone), MediaSource::Microphone),
            (kind_of(MediaSource::Camera), MediaSource::Camera),
        ],
    );
    let Some(ClientMessage::SdpOffer {
        sdp: first_offer, ..
    }) = sample.poll_signal()
    else {
        panic!("sample offer");
    };

    for round in 0..200 {
        // A fresh participant each round, so first-offer handling is exercised every time.
        let who = format!("m{round}");
        h.sfu.join(h.now, "room", &who).unwrap();
        for _ in 0..3 {
            let sdp = mutate(&mut rng, &first_offer);
            let mut sources = BTreeMap::new();
            sources.insert(rng.below(4).to_string(), MediaSource::Camera);
            h.signal_from(
                &who,
                ClientMessage::SdpOffer {
                    sdp: sdp.clone(),
                    sources,
                },
            );
            h.signal_from(
                &who,
                ClientMessage::SdpAnswer {
                    sdp: mutate(&mut rng, &sdp),
                },
            );
        }
        h.run(Duration::from_millis(5));
        h.sfu.leave(h.now, &who);
    }
    h.run(Duration::from_secs(2));

    let bob = h.client("bob");
    let video = bob.received_from("alice", MediaSource::Camera).unwrap();
    // About 5 s of virtual time at 20 fps, all of it delivered.
    assert!(video.frames > 90, "{video:?}");
    assert_eq!(video.damaged, 0);
    assert!(
        h.closed.iter().all(|(who, _)| who.starts_with('m')),
        "{:?}",
        h.closed
    );
    assert_eq!(h.sfu.session_count(), 2);
    assert!(
        h.client("alice").tracks.len() == 2,
        "{:?}",
        h.client("alice").tracks
    );
}

//! Fuzz target: the media core's own parsers (STUN USERNAME for demultiplexing, `a=extmap` lines,
//! rejected m-lines) never panic, and a datagram or SDP from a client never panics the `Sfu`.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = convene_media::stun::local_ufrag(data);
    let text = String::from_utf8_lossy(data);
    let _ = convene_media::extmap::from_offer(&text);
    let _ = convene_media::sdp_scan::rejected(&text, &text);

    let server = "127.0.0.1:10000".parse().unwrap();
    let now = Instant::now();
    let mut sfu = convene_media::Sfu::new(convene_media::SfuConfig::with_candidates(vec![server]), now);
    sfu.join(now, "room", "p").unwrap();
    let _ = sfu.client_offer(now, "p", &text, Default::default());
    let _ = sfu.client_answer(now, "p", &text);
    sfu.handle_datagram(now, "127.0.0.1:5000".parse().unwrap(), server, data);
    while sfu.poll_output().is_some() {}
});

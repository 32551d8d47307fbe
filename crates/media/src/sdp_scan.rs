//! Read-only scans of SDP text for what str0m's API does not expose: which m-lines an answer
//! rejected (port 0) although the offer wanted them, and whether an offer sends simulcast
//! before str0m parsed it into a session.

/// `(mid, port is zero)` of every m-line, in order. An m-line without `a=mid` is skipped.
pub fn mids(sdp: &str) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    let mut current: Option<bool> = None;
    for line in sdp.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("m=") {
            let port = rest.split_ascii_whitespace().nth(1).unwrap_or("");
            current = Some(port == "0");
        } else if let (Some(rest), Some(zero)) = (line.strip_prefix("a=mid:"), current) {
            out.push((rest.trim(), zero));
            current = None;
        }
    }
    out
}

/// Mids the offer opened (non-zero port) and the answer rejected (port 0): nothing usable in
/// them, typically no common codec.
pub fn rejected<'a>(offer: &str, answer: &'a str) -> Vec<&'a str> {
    let offered = mids(offer);
    mids(answer)
        .into_iter()
        .filter(|(mid, zero)| *zero && offered.iter().any(|(m, z)| m == mid && !z))
        .map(|(mid, _)| mid)
        .collect()
}

/// The first `a=ice-ufrag:` value: after an ICE restart the answer carries the server's new one.
pub fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix("a=ice-ufrag:"))
        .map(str::trim)
        .filter(|u| !u.is_empty())
}

/// Whether an m-line sends simulcast (`a=simulcast:send ...`, RFC 8853).
pub fn has_simulcast(sdp: &str) -> bool {
    sdp.lines()
        .any(|l| l.trim_start().starts_with("a=simulcast:send"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_ufrag() {
        assert_eq!(
            ice_ufrag("v=0\r\na=ice-ufrag:abcd\r\na=ice-ufrag:efgh\r\n"),
            Some("abcd")
        );
        assert_eq!(ice_ufrag("a=ice-ufrag:\r\n"), None);
        assert_eq!(ice_ufrag(""), None);
    }

    #[test]
    fn finds_sending_simulcast() {
        assert!(has_simulcast(
            "m=video 9 X 96\r\na=rid:q send\r\na=simulcast:send q;h;f\r\n"
        ));
        assert!(!has_simulcast(
            "m=video 9 X 96\r\na=simulcast:recv q;h;f\r\n"
        ));
        assert!(!has_simulcast("m=video 9 X 96\r\na=sendrecv\r\n"));
    }

    #[test]
    fn finds_rejected_lines() {
        let offer = "m=audio 9 X 0\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\nm=video 0 X 96\r\na=mid:2\r\n";
        let answer = "m=audio 0 X 0\r\na=mid:0\r\nm=video 9 X 96\r\na=mid:1\r\nm=video 0 X 96\r\na=mid:2\r\n";
        assert_eq!(rejected(offer, answer), vec!["0"]);
        assert_eq!(mids("m=audio\na=mid:z\n"), vec![("z", false)]);
        assert!(rejected("garbage", "m=\na=mid:\n").is_empty());
    }
}

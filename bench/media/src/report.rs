//! The result of one run and how it is printed: a human summary, a JSON line, and medians over
//! several runs (the machine is shared and noisy, so one run proves little).

use serde_json::{Value, json};

use crate::recording::Check;
use crate::recv_stats::Window;

/// Everything measured in one run's window.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub scenario: String,
    pub clients: usize,
    pub connected: usize,
    /// The first few failures, with their client names.
    pub failures: Vec<String>,
    pub failed: usize,
    /// Clients that should receive something, and those that received every expected stream.
    pub receivers: usize,
    pub receiving: usize,
    /// From the first join until everyone received (or the wait ended).
    pub ramp_secs: f64,
    pub window_secs: f64,
    pub server_cpu_secs: Option<f64>,
    /// The part of it spent in the kernel.
    pub server_sys_secs: Option<f64>,
    /// Time the server's and the generator's threads were runnable but waited for a CPU
    /// (other work on the machine, or each other).
    pub server_wait_secs: Option<f64>,
    pub generator_wait_secs: Option<f64>,
    pub server_idle_rss: Option<u64>,
    pub server_rss: Option<u64>,
    pub server_peak_rss: Option<u64>,
    /// Differences of the server's `convene_media_` counters over the window.
    pub packets_sent: Option<f64>,
    /// Send system calls of the media socket (absent from servers without the counter).
    pub send_calls: Option<f64>,
    pub packets_received: Option<f64>,
    pub bytes_sent: Option<f64>,
    pub frames_forwarded: Option<f64>,
    pub nacks_received: Option<f64>,
    pub keyframe_requests_received: Option<f64>,
    pub generator_cpu_secs: Option<f64>,
    /// RTP packets the generator's clients sent and received in the window.
    pub generator_sent: u64,
    pub generator_received: u64,
    /// Video frames the publishers skipped because they woke up too late (generator overload).
    pub generator_frames_skipped: u64,
    /// Datagrams dropped by full receive buffers: of the generator's sockets, and of the
    /// server's media socket (only known when this tool started the server).
    pub generator_drops: u64,
    pub server_drops: Option<u64>,
    /// Per receiving client, over the window.
    pub windows: Vec<Window>,
    /// With `--record`: the same measurements over a second window while every room was
    /// recorded, and what the recordings' files hold.
    pub recorded: Option<Box<Outcome>>,
    pub record_check: Option<Check>,
}

/// Order statistics of a list of numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
    pub mean: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Self::default();
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Self {
            min: v[0],
            median: at(0.5),
            p95: at(0.95),
            max: v[v.len() - 1],
            mean: v.iter().sum::<f64>() / v.len() as f64,
        }
    }
}

/// The median of some numbers (`None` if there are none).
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

impl Outcome {
    pub fn server_cpu_percent(&self) -> Option<f64> {
        Some(self.server_cpu_secs? * 100.0 / self.window_secs)
    }

    pub fn generator_cpu_percent(&self) -> Option<f64> {
        Some(self.generator_cpu_secs? * 100.0 / self.window_secs)
    }

    /// Server CPU microseconds per datagram the media socket sent.
    pub fn us_per_packet(&self) -> Option<f64> {
        let packets = self.packets_sent?;
        (packets > 0.0).then(|| self.server_cpu_secs.unwrap_or(f64::NAN) * 1e6 / packets)
    }

    /// Server CPU microseconds per RTP packet the receivers counted: needs no server metrics,
    /// and is higher than [`Outcome::us_per_packet`] because RTCP and STUN are not counted.
    pub fn us_per_delivered_packet(&self) -> Option<f64> {
        let cpu = self.server_cpu_secs?;
        (self.generator_received > 0).then(|| cpu * 1e6 / self.generator_received as f64)
    }

    /// Datagrams per send system call: above 1 when the server batches (UDP GSO).
    pub fn datagrams_per_send(&self) -> Option<f64> {
        let calls = self.send_calls?;
        (calls > 0.0).then(|| self.packets_sent.unwrap_or(f64::NAN) / calls)
    }

    pub fn forwarded_per_second(&self) -> Option<f64> {
        Some(self.packets_sent? / self.window_secs)
    }

    pub fn kbps(&self) -> Spread {
        Spread::of(self.windows.iter().map(|w| w.kbps))
    }

    /// Loss in percent.
    pub fn loss(&self) -> Spread {
        Spread::of(self.windows.iter().map(|w| w.loss * 100.0))
    }

    pub fn jitter(&self) -> Spread {
        Spread::of(self.windows.iter().map(|w| w.video_jitter_ms))
    }

    /// Frames the publishers sent that a receiver never got, in percent.
    pub fn frames_missing(&self) -> Spread {
        Spread::of(self.windows.iter().map(|w| w.frames_missing * 100.0))
    }

    /// Mean audio latency per receiver, ms.
    pub fn latency(&self) -> Spread {
        Spread::of(self.windows.iter().map(|w| w.latency_ms))
    }

    /// Receivers that lost more than 1 % of their packets.
    pub fn over_one_percent(&self) -> usize {
        self.windows.iter().filter(|w| w.loss > 0.01).count()
    }

    /// Receivers that missed more than 1 % of the frames sent to them.
    pub fn frames_over_one_percent(&self) -> usize {
        self.windows
            .iter()
            .filter(|w| w.frames_missing > 0.01)
            .count()
    }

    pub fn to_json(&self) -> Value {
        let (kbps, loss, jitter) = (self.kbps(), self.loss(), self.jitter());
        json!({
            "scenario": self.scenario,
            "clients": self.clients,
            "connected": self.connected,
            "failed": self.failed,
            "receivers": self.receivers,
            "receiving": self.receiving,
            "ramp_s": self.ramp_secs,
            "window_s": self.window_secs,
            "server_cpu_s": self.server_cpu_secs,
            "server_sys_s": self.server_sys_secs,
            "server_cpu_pct": self.server_cpu_percent(),
            "server_wait_s": self.server_wait_secs,
            "generator_wait_s": self.generator_wait_secs,
            "server_idle_rss": self.server_idle_rss,
            "server_rss": self.server_rss,
            "server_peak_rss": self.server_peak_rss,
            "packets_sent": self.packets_sent,
            "send_calls": self.send_calls,
            "datagrams_per_send": self.datagrams_per_send(),
            "packets_received": self.packets_received,
            "bytes_sent": self.bytes_sent,
            "frames_forwarded": self.frames_forwarded,
            "nacks_received": self.nacks_received,
            "keyframe_requests_received": self.keyframe_requests_received,
            "forwarded_per_s": self.forwarded_per_second(),
            "us_per_packet": self.us_per_packet(),
            "us_per_delivered_packet": self.us_per_delivered_packet(),
            "generator_cpu_pct": self.generator_cpu_percent(),
            "generator_sent": self.generator_sent,
            "generator_received": self.generator_received,
            "generator_frames_skipped": self.generator_frames_skipped,
            "generator_drops": self.generator_drops,
            "server_drops": self.server_drops,
            "kbps": spread_json(&kbps),
            "loss_pct": spread_json(&loss),
            "over_1pct": self.over_one_percent(),
            "frames_missing_pct": spread_json(&self.frames_missing()),
            "frames_missing_over_1pct": self.frames_over_one_percent(),
            "video_jitter_ms": spread_json(&jitter),
            "audio_latency_ms": spread_json(&self.latency()),
            "failures": self.failures,
            "recorded": self.recorded.as_ref().map(|o| o.to_json()),
            "record_check": self.record_check.as_ref().map(Check::to_json),
        })
    }

    /// Server CPU while recording minus without, in % of one core (same server and clients).
    pub fn recording_cpu_percent(&self) -> Option<f64> {
        Some(self.recorded.as_ref()?.server_cpu_percent()? - self.server_cpu_percent()?)
    }

    /// The recorder's share per recorded stream (published track), in % of one core.
    pub fn recording_cpu_per_stream(&self) -> Option<f64> {
        let files = self.record_check.as_ref()?.files;
        (files > 0).then(|| self.recording_cpu_percent().map(|p| p / files as f64))?
    }

    pub fn print(&self) {
        println!("scenario: {}", self.scenario);
        println!(
            "clients: {} started, {} connected, {} failed; {}/{} receivers got every stream; ramp {:.1} s",
            self.clients,
            self.connected,
            self.failed,
            self.receiving,
            self.receivers,
            self.ramp_secs
        );
        for f in &self.failures {
            println!("  failure: {f}");
        }
        println!("window: {:.1} s", self.window_secs);
        println!(
            "server: cpu {} ({} s, {} s of it in the kernel; waited {} s for a CPU); rss idle {}, end {}, peak {}",
            pct(self.server_cpu_percent()),
            num(self.server_cpu_secs, 2),
            num(self.server_sys_secs, 2),
            num(self.server_wait_secs, 2),
            mb(self.server_idle_rss),
            mb(self.server_rss),
            mb(self.server_peak_rss),
        );
        println!(
            "server media: {} datagrams sent ({}/s), {} received, {} frames forwarded, {} NACKs and {} keyframe requests from subscribers",
            num(self.packets_sent, 0),
            num(self.forwarded_per_second(), 0),
            num(self.packets_received, 0),
            num(self.frames_forwarded, 0),
            num(self.nacks_received, 0),
            num(self.keyframe_requests_received, 0),
        );
        println!(
            "server cpu per forwarded packet: {} us (per RTP packet received by the clients: {} us); {} datagrams per send call",
            num(self.us_per_packet(), 2),
            num(self.us_per_delivered_packet(), 2),
            num(self.datagrams_per_send(), 2)
        );
        let (k, l, j) = (self.kbps(), self.loss(), self.jitter());
        println!(
            "per receiver: kbps min {:.0} median {:.0} max {:.0}; loss % mean {:.3} median {:.3} p95 {:.3} max {:.3}; {} over 1 %; video jitter ms median {:.2} p95 {:.2} max {:.2}",
            k.min,
            k.median,
            k.max,
            l.mean,
            l.median,
            l.p95,
            l.max,
            self.over_one_percent(),
            j.median,
            j.p95,
            j.max
        );
        let f = self.frames_missing();
        println!(
            "frames published but not received, %: mean {:.3} median {:.3} p95 {:.3} max {:.3}; {} receivers over 1 %",
            f.mean,
            f.median,
            f.p95,
            f.max,
            self.frames_over_one_percent()
        );
        let l = self.latency();
        println!(
            "audio latency publisher to receiver, ms (mean per receiver): min {:.1} median {:.1} p95 {:.1} max {:.1}",
            l.min, l.median, l.p95, l.max
        );
        println!(
            "generator: cpu {} (waited {} s for a CPU); sent {} RTP packets ({} video frames skipped), received {}; receive-buffer drops: generator {}, server {}",
            pct(self.generator_cpu_percent()),
            num(self.generator_wait_secs, 2),
            self.generator_sent,
            self.generator_frames_skipped,
            self.generator_received,
            self.generator_drops,
            self.server_drops
                .map_or_else(|| "unknown".to_owned(), |d| d.to_string()),
        );
        if let Some(with) = &self.recorded {
            println!("--- the same clients while every room is recorded:");
            with.print();
        }
        if let Some(check) = &self.record_check {
            check.print();
            println!(
                "recording cost: server cpu {} without, {} with, difference {} ({} per recorded stream)",
                pct(self.server_cpu_percent()),
                pct(self.recorded.as_ref().and_then(|o| o.server_cpu_percent())),
                pct(self.recording_cpu_percent()),
                self.recording_cpu_per_stream()
                    .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3} %")),
            );
        }
    }
}

fn spread_json(s: &Spread) -> Value {
    json!({"min": s.min, "median": s.median, "p95": s.p95, "max": s.max, "mean": s.mean})
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} % of one core"))
}

fn mb(v: Option<u64>) -> String {
    v.map_or_else(
        || "n/a".to_owned(),
        |v| format!("{:.1} MB", v as f64 / 1_048_576.0),
    )
}

/// One line of medians over several runs of the same scenario.
pub fn print_medians(outcomes: &[Outcome]) {
    let m = |f: &dyn Fn(&Outcome) -> Option<f64>| median(outcomes.iter().filter_map(f));
    println!(
        "median of {} runs: server cpu {}, {} forwarded packets/s, {} us per forwarded packet ({} datagrams per send call); \
         receiver loss % mean {} p95 {} max {}; frames missing % mean {} max {}; \
         receive kbps median {}; video jitter ms median {}; audio latency ms median {} max {}; server rss idle {} end {}; generator cpu {}",
        outcomes.len(),
        pct(m(&|o| o.server_cpu_percent())),
        num(m(&|o| o.forwarded_per_second()), 0),
        num(m(&|o| o.us_per_packet()), 2),
        num(m(&|o| o.datagrams_per_send()), 2),
        num(m(&|o| Some(o.loss().mean)), 3),
        num(m(&|o| Some(o.loss().p95)), 3),
        num(m(&|o| Some(o.loss().max)), 3),
        num(m(&|o| Some(o.frames_missing().mean)), 3),
        num(m(&|o| Some(o.frames_missing().max)), 3),
        num(m(&|o| Some(o.kbps().median)), 0),
        num(m(&|o| Some(o.jitter().median)), 2),
        num(m(&|o| Some(o.latency().median)), 1),
        num(m(&|o| Some(o.latency().max)), 1),
        mb(m(&|o| o.server_idle_rss.map(|v| v as f64)).map(|v| v as u64)),
        mb(m(&|o| o.server_rss.map(|v| v as f64)).map(|v| v as u64)),
        pct(m(&|o| o.generator_cpu_percent())),
    );
    if outcomes.iter().any(|o| o.record_check.is_some()) {
        let rec = |f: &dyn Fn(&Outcome) -> Option<f64>| {
            median(outcomes.iter().filter_map(|o| f(o.recorded.as_deref()?)))
        };
        let check = |f: &dyn Fn(&Check) -> f64| {
            median(
                outcomes
                    .iter()
                    .filter_map(|o| o.record_check.as_ref().map(f)),
            )
        };
        println!(
            "median of {} runs while recording: server cpu {} (without {}, difference {}, {} per recorded stream); \
             receiver loss % mean {} max {}; frames missing % mean {} max {}; audio latency ms median {}; \
             missing in the files: audio {} (worst file {}), video {} (worst file {}); recorder queue drops {}; ffprobe problems {}",
            outcomes.len(),
            pct(rec(&|o| o.server_cpu_percent())),
            pct(m(&|o| o.server_cpu_percent())),
            pct(m(&|o| o.recording_cpu_percent())),
            num(m(&|o| o.recording_cpu_per_stream()), 3) + " %",
            num(rec(&|o| Some(o.loss().mean)), 3),
            num(rec(&|o| Some(o.loss().max)), 3),
            num(rec(&|o| Some(o.frames_missing().mean)), 3),
            num(rec(&|o| Some(o.frames_missing().max)), 3),
            num(rec(&|o| Some(o.latency().median)), 1),
            num(check(&|c| c.missing_audio() as f64), 0),
            num(check(&|c| c.worst_audio_missing as f64), 0),
            num(check(&|c| c.missing_video() as f64), 0),
            num(check(&|c| c.worst_video_missing as f64), 0),
            num(check(&|c| c.frames_dropped.unwrap_or(f64::NAN)), 0),
            num(check(&|c| c.probe_problems.len() as f64), 0),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_and_median() {
        let s = Spread::of([3.0, 1.0, 2.0, f64::NAN, 10.0]);
        assert_eq!((s.min, s.max), (1.0, 10.0));
        assert_eq!(s.median, 3.0);
        assert_eq!(s.p95, 10.0);
        assert_eq!(s.mean, 4.0);
        assert_eq!(Spread::of([]), Spread::default());
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([5.0]), Some(5.0));
        assert_eq!(median([]), None);
    }

    #[test]
    fn cost_per_packet_is_cpu_over_datagrams_sent() {
        let o = Outcome {
            window_secs: 20.0,
            server_cpu_secs: Some(4.0),
            packets_sent: Some(1_000_000.0),
            send_calls: Some(250_000.0),
            windows: vec![
                Window {
                    kbps: 1500.0,
                    packets_per_s: 150.0,
                    loss: 0.0,
                    frames_missing: 0.0,
                    video_jitter_ms: 1.0,
                    audio_jitter_ms: 0.5,
                    latency_ms: 2.0,
                },
                Window {
                    kbps: 1400.0,
                    packets_per_s: 140.0,
                    loss: 0.02,
                    frames_missing: 0.03,
                    video_jitter_ms: 3.0,
                    audio_jitter_ms: 0.5,
                    latency_ms: 2.0,
                },
            ],
            ..Outcome::default()
        };
        assert_eq!(o.us_per_packet(), Some(4.0));
        assert_eq!(o.server_cpu_percent(), Some(20.0));
        assert_eq!(o.forwarded_per_second(), Some(50_000.0));
        assert_eq!(o.over_one_percent(), 1);
        assert_eq!(o.frames_over_one_percent(), 1);
        assert!((o.frames_missing().max - 3.0).abs() < 1e-9);
        assert!((o.loss().mean - 1.0).abs() < 1e-9);
        let j = o.to_json();
        assert_eq!(j["us_per_packet"], 4.0);
        assert_eq!(o.datagrams_per_send(), Some(4.0));
        assert_eq!(j["over_1pct"], 1);
        // Without the server's counters there is no cost figure, rather than a wrong one.
        let blind = Outcome {
            packets_sent: None,
            ..o
        };
        assert_eq!(blind.us_per_packet(), None);
    }
}

//! The load generator against the real server (started in-process on 127.0.0.1): small
//! scenarios must connect every client, deliver media at the configured rate without loss,
//! and read the server's `convene_media_` counters.

use std::path::Path;
use std::time::Duration;

use convene::{config::Config, serve, shutdown::Lifecycle};
use convene_load::{Outcome, Scenario, Target, scenario, target};

struct Server {
    running: serve::Running,
    dir: std::path::PathBuf,
    record: bool,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(false).await
    }

    async fn start_with(record: bool) -> Server {
        let media_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("convene-load-test-{media_port}"));
        let _ = std::fs::remove_dir_all(&dir);
        // No free-space floor: the test machine's disk may be fuller than a server's.
        let extra = record.then_some("[recording]\nmin_free_space_mb = 0\n");
        let text = target::config_toml(&dir, media_port, 50, extra, record).unwrap();
        let config = Config::parse(&text).unwrap_or_else(|p| panic!("config: {p:?}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve::start(config, serve::Mode::Full, listener, Lifecycle::new())
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Server {
            running,
            dir,
            record,
        }
    }

    fn target(&self) -> Target {
        // No pid: the server shares this process, so its CPU time is not separable here.
        let mut t = Target::attach(&format!("http://{}", self.running.addr), None, None).unwrap();
        if self.record {
            t.recordings_dir = Some(self.dir.join("recordings"));
            t.admin_token = Some(target::ADMIN_TOKEN.to_owned());
        }
        t
    }
}

fn scenario(rooms: usize, publishers: usize, subscribers: usize) -> Scenario {
    Scenario {
        rooms,
        publishers,
        subscribers,
        video_kbps: 300,
        fps: 20,
        audio_kbps: 32,
        simulcast: false,
        join_rate: 20.0,
        max_joining: 10,
        connect_timeout: Duration::from_secs(15),
        ready_timeout: Duration::from_secs(15),
        ramp_timeout: Duration::from_secs(30),
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        local_ip: "127.0.0.1".parse().unwrap(),
        rcvbuf: 1 << 20,
        room_prefix: "smoke".into(),
        jwt: None,
        record: false,
    }
}

fn check_delivery(o: &Outcome, receivers: usize, kbps: f64) {
    assert_eq!(o.failed, 0, "failures: {:?}", o.failures);
    assert_eq!(o.connected, o.clients);
    assert_eq!(o.receivers, receivers);
    assert_eq!(o.receiving, receivers, "{o:?}");
    let rate = o.kbps();
    // Debug builds on a loaded machine are slow: generous bounds, but a receiver that got a
    // fraction of the stream, or nothing, fails.
    assert!(
        rate.min > kbps * 0.8 && rate.max < kbps * 1.2,
        "receive kbps {rate:?}, expected about {kbps}"
    );
    assert!(o.loss().max < 5.0, "loss {:?}", o.loss());
    assert!(
        o.frames_missing().max < 5.0,
        "frames missing {:?}",
        o.frames_missing()
    );
    let latency = o.latency();
    // Stamped audio came through, quickly (loopback; generous for debug builds).
    assert!(
        latency.min > 0.0 && latency.max < 500.0,
        "latency {latency:?}"
    );
    let sent = o.packets_sent.expect("metrics scraped");
    // Every packet a receiver counted left the server's media socket.
    assert!(
        sent >= o.generator_received as f64 * 0.9,
        "{sent} sent < {} received",
        o.generator_received
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_reaches_every_subscriber_at_its_bitrate() {
    let server = Server::start().await;
    let target = server.target();
    let o = scenario::run(&scenario(1, 1, 3), &target).await.unwrap();
    // 300 kbps of video frames (plus a few keyframes) and 32 kbps of audio, payload bytes.
    check_delivery(&o, 3, 332.0);
    assert!(o.frames_forwarded.unwrap() > 0.0);
    server.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_in_several_rooms_receive_each_other_only() {
    let server = Server::start().await;
    let target = server.target();
    let o = scenario::run(&scenario(2, 3, 0), &target).await.unwrap();
    // Each publisher receives the two others of its room, never the other room's three.
    check_delivery(&o, 6, 2.0 * 332.0);
    server.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_publisher_is_forwarded() {
    let server = Server::start().await;
    let target = server.target();
    let mut s = scenario(1, 1, 2);
    s.simulcast = true;
    let o = scenario::run(&s, &target).await.unwrap();
    assert_eq!(o.failed, 0, "failures: {:?}", o.failures);
    assert_eq!(o.receiving, 2, "{o:?}");
    // Whatever layer the server picks, video arrives (the lowest is 30 kbps) with audio.
    let rate = o.kbps();
    assert!(rate.min > 50.0, "{rate:?}");
    assert!(o.loss().max < 5.0, "loss {:?}", o.loss());
    // The publisher sent all three layers.
    assert!(o.generator_sent > 0);
    server.running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_rooms_hold_every_frame_their_publishers_sent() {
    let server = Server::start_with(true).await;
    let target = server.target();
    let mut s = scenario(2, 2, 0);
    s.record = true;
    let o = scenario::run(&s, &target).await.unwrap();
    check_delivery(&o, 4, 332.0);
    let with = o.recorded.as_deref().expect("a window while recording");
    check_delivery(with, 4, 332.0);
    let c = o
        .record_check
        .as_ref()
        .expect("the recordings were checked");
    assert_eq!(c.recordings, 2, "{c:?}");
    // Two rooms of two publishers, each with audio and video.
    assert_eq!(c.files, 8, "{c:?}");
    assert!(
        c.problems.is_empty() && c.probe_problems.is_empty(),
        "{c:?}"
    );
    // Audio starts with the recording: every packet sent between the start's answer and the
    // stop's request is in the file, give or take the one in flight at the stop. Video starts
    // at the keyframe the recorder asks for, a frame or two after the start.
    assert!(c.audio_sent > 0 && c.video_sent > 0, "{c:?}");
    assert!(c.worst_audio_missing <= 1, "{c:?}");
    assert!(c.worst_video_missing <= 3, "{c:?}");
    assert!(
        c.audio_written <= c.audio_sent + 5 * c.files as u64
            && c.video_written <= c.video_sent + 5 * c.files as u64,
        "files hold more than was sent while recording: {c:?}"
    );
    assert_eq!(c.frames_dropped, Some(0.0), "{c:?}");
    server.running.stop().await;
}

#[test]
fn missing_server_binary_is_a_clear_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt
        .block_on(Target::start(&convene_load::Launch {
            binary: Path::new("/nonexistent/convene").into(),
            cpus: None,
            capacity: 1,
            extra_config: None,
            record: false,
        }))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("cargo build --release -p convene"),
        "{err}"
    );
}

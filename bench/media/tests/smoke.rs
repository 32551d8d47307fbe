//! The load generator against the real server (started in-process on 127.0.0.1): small
//! scenarios must connect every client, deliver media at the configured rate without loss,
//! and read the server's `convene_media_` counters.

use std::path::Path;
use std::time::Duration;

use convene::{config::Config, serve, shutdown::Lifecycle};
use convene_load::{Outcome, Scenario, Target, scenario, target};

struct Server {
    running: serve::Running,
}

impl Server {
    async fn start() -> Server {
        let media_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("convene-load-test-{media_port}"));
        let text = target::config_toml(&dir, media_port, 50, None).unwrap();
        let config = Config::parse(&text).unwrap_or_else(|p| panic!("config: {p:?}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let running = serve::start(config, serve::Mode::Full, listener, Lifecycle::new())
            .await
            .unwrap_or_else(|e| panic!("server did not start: {e}"));
        Server { running }
    }

    fn target(&self) -> Target {
        // No pid: the server shares this process, so its CPU time is not separable here.
        Target::attach(&format!("http://{}", self.running.addr), None, None).unwrap()
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
        }))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("cargo build --release -p convene"),
        "{err}"
    );
}

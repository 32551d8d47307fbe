//! The server under load: either a `convene serve` this tool starts on 127.0.0.1 with a
//! temporary config (optionally pinned to CPUs with taskset), or any server given by URL,
//! optionally with the pid of its process for CPU and memory readings.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::procfs::{self, Memory};
use crate::scrape::MetricsUrl;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub binary: PathBuf,
    /// taskset CPU list for the server, e.g. "0".
    pub cpus: Option<String>,
    /// Participants the config must admit (per room and in total).
    pub capacity: usize,
    /// Extra TOML appended to the generated config.
    pub extra_config: Option<String>,
    /// Enable the recorder and the admin API (a recording benchmark starts recordings through it).
    pub record: bool,
}

/// The admin API token of a server this tool starts for a recording benchmark.
pub const ADMIN_TOKEN: &str = "convene-load-admin";

pub struct Target {
    /// `http://host:port` of the server.
    pub base_url: String,
    pub metrics: Option<MetricsUrl>,
    /// The server process, for CPU and memory.
    pub pid: Option<u32>,
    /// The server's media UDP port on this machine, for its socket's drop counter.
    pub media_port: Option<u16>,
    /// Memory right after start, before any client joined.
    pub idle: Option<Memory>,
    /// Where the server writes recordings and the token its admin API takes (known when this
    /// tool started the server with recording on).
    pub recordings_dir: Option<PathBuf>,
    pub admin_token: Option<String>,
    child: Option<Child>,
    dir: Option<PathBuf>,
}

impl Target {
    /// A server somewhere else.
    pub fn attach(url: &str, pid: Option<u32>, metrics: Option<&str>) -> anyhow::Result<Self> {
        let base_url = url.trim_end_matches('/').to_owned();
        let metrics = match metrics {
            Some(m) => Some(MetricsUrl::parse(m)?),
            None => MetricsUrl::parse(&format!("{base_url}/metrics")).ok(),
        };
        let idle = pid.and_then(procfs::memory);
        Ok(Self {
            base_url,
            metrics,
            pid,
            media_port: None,
            idle,
            recordings_dir: None,
            admin_token: None,
            child: None,
            dir: None,
        })
    }

    /// Starts `convene serve` on 127.0.0.1 (HTTP on a free port, media on another), waits until
    /// it listens, then a second for its memory to settle, and reads its idle memory.
    pub async fn start(launch: &Launch) -> anyhow::Result<Self> {
        if !launch.binary.exists() {
            bail!(
                "server binary {} not found: build it with `cargo build --release -p convene` \
                 or pass --convene-bin / --url",
                launch.binary.display()
            );
        }
        static RUNS: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "convene-load-{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)?;
        let media_port = free_udp_port()?;
        let config = config_toml(
            &dir,
            media_port,
            launch.capacity,
            launch.extra_config.as_deref(),
            launch.record,
        )?;
        let config_path = dir.join("convene.toml");
        std::fs::write(&config_path, config)?;
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = match &launch.cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&launch.binary);
                c
            }
            None => Command::new(&launch.binary),
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // The benchmark's server never outlives the tool.
            .kill_on_drop(true);
        let mut child = cmd.spawn().context("starting the server")?;
        // taskset execs the server, so the child's pid is the server's.
        let pid = child.id();
        let addr = wait_listening(&mut child, &log_path).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = pid.and_then(procfs::memory);
        let base_url = format!("http://{addr}");
        Ok(Self {
            metrics: Some(MetricsUrl::parse(&format!("{base_url}/metrics"))?),
            base_url,
            pid,
            media_port: Some(media_port),
            idle,
            recordings_dir: launch.record.then(|| dir.join("recordings")),
            admin_token: launch.record.then(|| ADMIN_TOKEN.to_owned()),
            child: Some(child),
            dir: Some(dir),
        })
    }

    /// Stops a server this tool started (SIGTERM, then SIGKILL after 10 s) and removes its
    /// temporary directory. A server given by URL is left alone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// The server's log, when this tool started it.
    pub fn log_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("server.log"))
    }
}

/// A UDP port that is free right now on 127.0.0.1.
fn free_udp_port() -> anyhow::Result<u16> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    Ok(s.local_addr()?.port())
}

/// The server config for a benchmark: everything on 127.0.0.1, room and session limits above
/// the load, logs quiet except the line that tells the HTTP port. `extra` is a TOML document
/// underneath: its keys stay unless the benchmark must set them. Recordings are off, or with
/// `record` on (into `dir/recordings`, without the composed file, which is made after the
/// stop and is not what a live recording costs) with the admin API at [`ADMIN_TOKEN`].
pub fn config_toml(
    dir: &Path,
    media_port: u16,
    capacity: usize,
    extra: Option<&str>,
    record: bool,
) -> anyhow::Result<String> {
    let capacity = (capacity + 16) as i64;
    let mut root: toml::Table = match extra {
        Some(text) => toml::from_str(text).context("--server-config is not TOML")?,
        None => toml::Table::new(),
    };
    let mut set = |section: &str, key: &str, value: toml::Value| {
        let table = root
            .entry(section)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let toml::Value::Table(t) = table {
            t.insert(key.to_owned(), value);
        }
    };
    set("server", "listen", "127.0.0.1:0".into());
    set("log", "level", "warn,convene::serve=info".into());
    set("log", "format", "json".into());
    set("conference", "max_participants", capacity.into());
    set("media", "port", i64::from(media_port).into());
    set("media", "bind", "127.0.0.1".into());
    set(
        "media",
        "candidates",
        toml::Value::Array(vec!["127.0.0.1".into()]),
    );
    set("media", "max_sessions", capacity.into());
    set("recording", "enabled", record.into());
    if record {
        set("recording", "compose", false.into());
        set("auth", "admin_token", ADMIN_TOKEN.into());
    }
    let rec = dir.join("recordings").display().to_string();
    set("recording", "recordings_dir", rec.into());
    Ok(toml::to_string(&root)?)
}

/// Waits for the "http listening on ADDR" log line; fails if the server exits first.
async fn wait_listening(child: &mut Child, log: &Path) -> anyhow::Result<String> {
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = listening_addr(&text) {
            return Ok(addr);
        }
        if let Some(status) = child.try_wait()? {
            bail!("server exited ({status}) before listening:\n{text}");
        }
        if Instant::now() > end {
            bail!("server did not report its HTTP address within 20 s:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn listening_addr(log: &str) -> Option<String> {
    const MARK: &str = "http listening on ";
    let at = log.find(MARK)? + MARK.len();
    let addr: String = log[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '"' && *c != '\x1b')
        .collect();
    (!addr.is_empty()).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line_in_json_and_human_logs() {
        let json = r#"{"timestamp":"x","level":"INFO","fields":{"message":"http listening on 127.0.0.1:40123"},"target":"convene::serve"}"#;
        assert_eq!(listening_addr(json).as_deref(), Some("127.0.0.1:40123"));
        let human = "2025 INFO convene::serve: http listening on 127.0.0.1:8080\n";
        assert_eq!(listening_addr(human).as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(listening_addr("starting"), None);
    }

    #[test]
    fn generated_config_is_accepted_by_the_server() {
        let text = config_toml(Path::new("/tmp/x"), 12345, 500, None, false).unwrap();
        let config = convene::config::Config::parse(&text)
            .unwrap_or_else(|e| panic!("config refused: {e:?}\n{text}"));
        assert_eq!(config.media.port, 12345);
        assert_eq!(config.media.max_sessions, 516);
        assert_eq!(config.conference.max_participants, 516);
        assert!(!config.recording.enabled);
        let text = config_toml(Path::new("/tmp/x"), 12345, 10, None, true).unwrap();
        let config = convene::config::Config::parse(&text)
            .unwrap_or_else(|e| panic!("config refused: {e:?}\n{text}"));
        assert!(config.recording.enabled && !config.recording.compose);
        assert_eq!(config.auth.admin_token, ADMIN_TOKEN);
    }

    #[test]
    fn extra_config_keeps_its_keys_but_not_the_ports() {
        let extra = "[media]\nport = 9\nstats_interval = \"1s\"\n[conference]\nchat_history = 5\n";
        let text = config_toml(Path::new("/tmp/x"), 4000, 10, Some(extra), false).unwrap();
        let config = convene::config::Config::parse(&text).unwrap();
        assert_eq!(config.media.port, 4000);
        assert_eq!(config.media.stats_interval, Duration::from_secs(1));
        assert_eq!(config.conference.chat_history, 5);
        // A typo underneath is the server's to refuse.
        let bad = config_toml(
            Path::new("/tmp/x"),
            1,
            1,
            Some("[media]\nprot = 1\n"),
            false,
        )
        .unwrap();
        assert!(convene::config::Config::parse(&bad).is_err());
        assert!(config_toml(Path::new("/tmp/x"), 1, 1, Some("[["), false).is_err());
    }
}

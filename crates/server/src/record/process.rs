//! Child processes after a recording: the ffmpeg composer and the finalize command, with their
//! output in the log and a time limit.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use convene_record::compose::Plan;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// How a child process ended.
#[derive(Debug)]
pub enum Ended {
    Exited {
        success: bool,
        code: Option<i32>,
        output: String,
    },
    TimedOut,
    NotStarted(std::io::Error),
}

/// Longest child output kept for the log.
const OUTPUT_LIMIT: usize = 16 * 1024;

/// Runs the composer in `dir`, logging progress from ffmpeg's `-progress` lines about every 10 %.
pub async fn compose(ffmpeg: &Path, dir: &Path, plan: &Plan, timeout: Duration) -> Ended {
    let mut child = match Command::new(ffmpeg)
        .args(&plan.args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Ended::NotStarted(e),
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let dir_shown = dir.display().to_string();
    let total = plan.duration_ms.max(1);
    let progress = async move {
        let Some(stdout) = stdout else { return };
        let mut lines = BufReader::new(stdout).lines();
        let mut next_report = 10;
        while let Ok(Some(line)) = lines.next_line().await {
            // out_time_us is microseconds of output written so far (out_time_ms is too, despite its name).
            if let Some(us) = line
                .strip_prefix("out_time_us=")
                .and_then(|v| v.trim().parse::<u64>().ok())
            {
                let percent = (us / 1000).saturating_mul(100) / total;
                if percent >= next_report {
                    tracing::info!(dir = %dir_shown, percent = percent.min(100), "composing");
                    next_report = (percent / 10 + 1) * 10;
                }
            }
        }
    };
    let errors = read_limited(stderr);
    let run = async {
        let (_, errors, status) = tokio::join!(progress, errors, child.wait());
        (errors, status)
    };
    match tokio::time::timeout(timeout, run).await {
        Ok((output, Ok(status))) => Ended::Exited {
            success: status.success(),
            code: status.code(),
            output,
        },
        Ok((_, Err(e))) => Ended::NotStarted(e),
        Err(_) => Ended::TimedOut,
    }
}

/// Runs the finalize command with the recording directory as its only argument.
pub async fn finalize(command: &Path, dir: &Path, timeout: Duration) -> (Ended, Duration) {
    let started = Instant::now();
    let child = Command::new(command)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (Ended::NotStarted(e), started.elapsed()),
    };
    let stdout = read_limited(child.stdout.take());
    let stderr = read_limited(child.stderr.take());
    let run = async {
        let (out, err, status) = tokio::join!(stdout, stderr, child.wait());
        (format!("{out}{err}"), status)
    };
    let ended = match tokio::time::timeout(timeout, run).await {
        Ok((output, Ok(status))) => Ended::Exited {
            success: status.success(),
            code: status.code(),
            output,
        },
        Ok((_, Err(e))) => Ended::NotStarted(e),
        Err(_) => Ended::TimedOut,
    };
    (ended, started.elapsed())
}

async fn read_limited(stream: Option<impl tokio::io::AsyncRead + Unpin>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    // Keep reading to the end so the child never blocks on a full pipe, but keep only the start.
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = OUTPUT_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).trim_end().to_owned()
}

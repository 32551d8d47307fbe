//! Readings from Linux /proc: a process's CPU time and memory, and UDP receive-buffer drops per
//! local port (which tell whether loss happened in a client's socket because the load
//! generator fell behind, or before it).

use std::collections::HashSet;
use std::time::Duration;

/// Clock ticks per second of `utime`/`stime` in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const USER_HZ: u64 = 100;

/// CPU time of a process, threads included: in user space and in the kernel (system calls,
/// and on loopback also the delivery of what it sends).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub user: Duration,
    pub system: Duration,
}

impl CpuTime {
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// CPU time of process `pid` from /proc/<pid>/stat.
pub fn cpu_time(pid: u32) -> Option<CpuTime> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_cpu_time(&text)
}

/// CPU time of this process.
pub fn own_cpu_time() -> Option<CpuTime> {
    cpu_time(std::process::id())
}

fn parse_cpu_time(stat: &str) -> Option<CpuTime> {
    // The command name (field 2) may contain spaces and parentheses: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are 11 and 12 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = |t: u64| Duration::from_millis(t * 1000 / USER_HZ);
    Some(CpuTime {
        user: ticks(utime),
        system: ticks(stime),
    })
}

/// Time the threads of process `pid` spent waiting for a CPU while runnable (sum of the second
/// field of /proc/<pid>/task/*/schedstat). On a shared machine this shows whether a process was
/// slow because it was starved rather than busy.
pub fn runqueue_wait(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut ns = 0u64;
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) {
            ns += parse_schedstat_wait(&text).unwrap_or(0);
        }
    }
    Some(Duration::from_nanos(ns))
}

fn parse_schedstat_wait(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of process `pid`: current and peak, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
}

pub fn memory(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_memory(&text)
}

fn parse_memory(status: &str) -> Option<Memory> {
    let kb = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].split_whitespace().next()?.parse().ok()
    };
    Some(Memory {
        rss: kb("VmRSS:")? * 1024,
        peak: kb("VmHWM:")? * 1024,
    })
}

/// Datagrams the kernel dropped because the receive buffer of a UDP socket bound to one of
/// `ports` was full, summed (IPv4 and IPv6 tables of this network namespace).
pub fn udp_drops(ports: &HashSet<u16>) -> u64 {
    ["/proc/net/udp", "/proc/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|t| parse_udp_drops(&t, ports))
        .sum()
}

fn parse_udp_drops(table: &str, ports: &HashSet<u16>) -> u64 {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields.get(1)?.rsplit(':').next()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            if !ports.contains(&port) {
                return None;
            }
            fields.last()?.parse::<u64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_skips_a_name_with_spaces() {
        let line = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 66 0 0 20 0 9 0 100 0 0";
        let t = parse_cpu_time(line).unwrap();
        assert_eq!(t.user, Duration::from_millis(12_340));
        assert_eq!(t.system, Duration::from_millis(660));
        assert_eq!(t.total(), Duration::from_millis(13_000));
        assert_eq!(parse_cpu_time("garbage"), None);
    }

    #[test]
    fn own_process_is_readable() {
        assert!(own_cpu_time().is_some());
        let m = memory(std::process::id()).unwrap();
        assert!(m.rss > 0 && m.peak >= m.rss);
    }

    #[test]
    fn runqueue_wait_reads_the_second_schedstat_field() {
        assert_eq!(
            parse_schedstat_wait("1012659 13278213 6\n"),
            Some(13_278_213)
        );
        assert_eq!(parse_schedstat_wait(""), None);
        assert!(runqueue_wait(std::process::id()).is_some());
    }

    #[test]
    fn memory_reads_rss_and_peak() {
        let status = "Name:\tconvene\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            parse_memory(status),
            Some(Memory {
                rss: 10 << 20,
                peak: 20 << 20
            })
        );
    }

    #[test]
    fn drops_are_summed_for_the_given_ports_only() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
  1: 0100007F:2710 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 1 2 0000000000000000 5\n\
  2: 0100007F:9C41 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 2 2 0000000000000000 7\n\
  3: 0100007F:9C42 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0000000000000000 11\n";
        let ports: HashSet<u16> = [0x9c41, 0x9c42].into();
        assert_eq!(parse_udp_drops(table, &ports), 18);
        assert_eq!(parse_udp_drops(table, &[10000].into()), 5);
    }
}

//! CPU time the processes of a run spend, from Linux's `/proc/<pid>/stat`: what a request costs
//! the server, its Redis and the load generator, where the three share the machine's cores.
//!
//! Throughput moves with the machine's hour (one build measured 4,400 and 6,400 requests/s of
//! the HTTP mix on one day, its `/health/live` ceiling 40,500 and 64,600); the CPU a request
//! costs moves much less, so it is the figure that tells whether a change made the server
//! cheaper. Without `/proc` (not Linux) the figures are left out.
//!
//! On a virtual machine the hypervisor may also take the cores away: `stolen_cpu_us_per_request`
//! is the machine's steal time (`/proc/stat`) over the run, per request. Runs of one build that
//! differ by several times in latency differed that much in steal.

use serde_json::{Map, Value};
use std::path::Path;

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on the architectures Linux
/// runs Ordo on).
const TICKS_PER_SECOND: f64 = 100.0;

/// The processes whose CPU a run reads: the bench itself, and the server and its private Redis
/// when the bench started them.
pub(super) struct Processes {
    pids: Vec<(&'static str, u32)>,
}

/// CPU seconds each process had used at one moment.
pub(super) struct Sample(Vec<(&'static str, f64)>);

impl Processes {
    pub(super) fn of(server: Option<u32>, data_dir: Option<&Path>) -> Self {
        let mut pids = vec![("bench", std::process::id())];
        pids.extend(server.map(|pid| ("server", pid)));
        pids.extend(data_dir.and_then(private_redis_pid).map(|pid| ("redis", pid)));
        Self { pids }
    }

    pub(super) fn sample(&self) -> Sample {
        let read = |(name, pid): &(&'static str, u32)| Some((*name, cpu_seconds(*pid)?));
        let mut sample: Vec<_> = self.pids.iter().filter_map(read).collect();
        let stat = std::fs::read_to_string("/proc/stat").ok();
        sample.extend(stat.as_deref().and_then(stolen_seconds_in).map(|s| ("stolen", s)));
        Sample(sample)
    }
}

impl Sample {
    /// `<process>_cpu_us_per_request` for each process read both times: microseconds of CPU
    /// it used between `self` and `later`, per request of the `requests` answered.
    pub(super) fn per_request(&self, later: &Sample, requests: usize) -> Map<String, Value> {
        let mut figures = Map::new();
        for (name, before) in &self.0 {
            let Some((_, after)) = later.0.iter().find(|(n, _)| n == name) else { continue };
            let micros = (after - before) * 1e6 / requests.max(1) as f64;
            figures.insert(format!("{name}_cpu_us_per_request"), Value::from(micros.round()));
        }
        figures
    }
}

/// CPU seconds (user and system) process `pid` has used.
fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_in(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime plus stime of one `/proc/<pid>/stat` line, in seconds.
fn cpu_seconds_in(stat: &str) -> Option<f64> {
    // The command name (the second field) may hold spaces and parentheses: the fields are
    // counted from its last closing parenthesis. utime and stime are the line's 14th and 15th.
    let after_name: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |field: usize| after_name.get(field - 3)?.parse::<f64>().ok();
    Some((ticks(14)? + ticks(15)?) / TICKS_PER_SECOND)
}

/// CPU seconds the hypervisor took from every core (the `steal` column of the first line of
/// `/proc/stat`).
fn stolen_seconds_in(stat: &str) -> Option<f64> {
    let total = stat.lines().next()?.strip_prefix("cpu ")?;
    let steal = total.split_whitespace().nth(7)?.parse::<f64>().ok()?;
    Some(steal / TICKS_PER_SECOND)
}

/// The process id of the Redis answering on the data directory's private socket.
fn private_redis_pid(data: &Path) -> Option<u32> {
    ordo_projections::redis_server::pid_on(&data.join("redis").join("redis.sock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_fields_are_counted_after_a_name_with_spaces_and_parentheses() {
        let stat = "4242 (ordo (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 1234 56 0 0 20 0 3";
        assert_eq!(cpu_seconds_in(stat), Some(12.9));
    }

    #[test]
    fn the_stolen_time_is_the_eighth_figure_of_the_machine_wide_line() {
        let stat =
            "cpu  5518083 2713 1025391 3365367 177293 0 83881 144140 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0";
        assert_eq!(stolen_seconds_in(stat), Some(1441.4));
        assert_eq!(stolen_seconds_in("cpu0 1 2 3"), None);
    }

    #[test]
    fn this_process_cpu_time_is_read_from_proc() {
        assert!(cpu_seconds(std::process::id()).is_some(), "/proc/self/stat parsed");
    }
}

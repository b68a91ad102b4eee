//! Progress display for long commands: a bar on a terminal, a log line a second otherwise.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// A progress bar on a terminal, a log line a second otherwise.
pub struct Progress {
    bar: Option<ProgressBar>,
    name: &'static str,
    total: Option<u64>,
    started: Instant,
    last_line: std::sync::Mutex<Instant>,
}

impl Progress {
    /// A display for `name`, counting up to `total` if known.
    pub fn new(name: &'static str, total: Option<u64>) -> Self {
        Self::among(None, name, total)
    }

    /// Like [`Progress::new`], one of several shown at once: on a terminal, each bar on a line
    /// of its own in `bars`.
    pub fn among(bars: Option<&MultiProgress>, name: &'static str, total: Option<u64>) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
            let style = ProgressStyle::with_template(
                "{prefix:>10} [{bar:40}] {pos}/{len} events, {rate}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0} events/s", state.per_sec());
            })
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name);
            match bars {
                Some(bars) => bars.add(bar),
                None => bar,
            }
        });
        Self {
            bar,
            name,
            total,
            started: Instant::now(),
            last_line: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// `done` events so far.
    pub fn update(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                {
                    let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
                    if last.elapsed() < Duration::from_secs(1) {
                        return;
                    }
                    *last = Instant::now();
                }
                let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                let total = self.total.map_or(String::new(), |t| format!("/{t}"));
                eprintln!("{}: {done}{total} events ({rate:.0} events/s)", self.name);
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

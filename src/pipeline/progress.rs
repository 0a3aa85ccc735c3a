//! Progress on stderr, in one of four forms ([`ProgressMode`]): a bar redrawn in place on a
//! terminal; for logs (a Slurm job's output file, `kubectl logs`), where a redrawn bar is noise
//! and nothing at all looks like a hang, a plain line or a JSON object every few seconds; or
//! nothing.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// indicatif's bar, on a terminal.
    Bar,
    /// A line of text every [`interval`].
    Plain,
    /// A JSON object on a line every [`interval`], for log collectors.
    Json,
    Hidden,
}

impl ProgressMode {
    /// The bar on a terminal, plain lines elsewhere; nothing when `quiet`.
    pub fn auto(quiet: bool) -> Self {
        if quiet {
            Self::Hidden
        } else if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Plain
        }
    }
}

/// How often the plain and JSON forms report: every 10 s, often enough that a log shows the run
/// is alive and how long it has left, rarely enough that a day's run writes a few thousand
/// lines. `TARJAMA_PROGRESS_INTERVAL_MS` changes it, so that tests need not wait 10 s; it is
/// not a documented setting.
pub fn interval() -> Duration {
    std::env::var("TARJAMA_PROGRESS_INTERVAL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(10), |ms| {
            Duration::from_millis(ms.max(1))
        })
}

/// The counts, shared with the thread that writes the log lines.
struct Counts {
    /// What the bar counts: sentences, or input bytes.
    done: AtomicU64,
    total: Option<u64>,
    unit: &'static str,
    /// Runs over many inputs count files and sentences besides the bytes.
    files: Option<u64>,
    files_done: AtomicU64,
    sentences: AtomicU64,
    verb: String,
    started: Instant,
}

/// One report: the numbers a log line or JSON object shows.
struct Report {
    done: u64,
    total: Option<u64>,
    elapsed: f64,
    rate: f64,
    eta: Option<f64>,
    files_done: u64,
    sentences: u64,
}

impl Counts {
    fn report(&self) -> Report {
        let done = self.done.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-3);
        let eta = self
            .total
            .filter(|_| rate > 0.0)
            .map(|total| total.saturating_sub(done) as f64 / rate);
        Report {
            done,
            total: self.total,
            elapsed,
            rate,
            eta,
            files_done: self.files_done.load(Ordering::Relaxed),
            sentences: self.sentences.load(Ordering::Relaxed),
        }
    }

    /// `tarjama: translating: 3/14 files, 120 sentences, 12.3 sentences/s, 45% of 1.2 MB, eta
    /// 40s, 10s elapsed`.
    fn plain(&self, finished: bool) -> String {
        let r = self.report();
        let mut parts = Vec::new();
        let sentence_rate = r.sentences as f64 / r.elapsed.max(1e-3);
        match self.files {
            Some(files) => {
                parts.push(format!("{}/{files} files", r.files_done));
                parts.push(format!("{} sentences", r.sentences));
                parts.push(format!("{sentence_rate:.1} sentences/s"));
                if let Some(total) = r.total {
                    let percent = 100.0 * r.done as f64 / (total.max(1) as f64);
                    parts.push(format!("{percent:.0}% of {}", bytes(total)));
                }
            }
            None => {
                match r.total {
                    Some(total) => parts.push(format!("{}/{total} {}", r.done, self.unit)),
                    None => parts.push(format!("{} {}", r.done, self.unit)),
                }
                parts.push(format!("{:.1} {}/s", r.rate, self.unit));
            }
        }
        if let (Some(eta), false) = (r.eta, finished) {
            parts.push(format!("eta {}", duration(eta)));
        }
        parts.push(format!("{} elapsed", duration(r.elapsed)));
        let verb = if finished { "finished" } else { &self.verb };
        format!("tarjama: {verb}: {}", parts.join(", "))
    }

    /// One JSON object: `done`, `total` (null when unknown) and `unit` of what is counted, its
    /// `rate` per second, `eta_s` (null when unknown), `elapsed_s`; with many inputs also
    /// `files_done`, `files`, `sentences` and `sentences_per_s`.
    fn json(&self, finished: bool) -> String {
        let r = self.report();
        let round = |x: f64| (x * 100.0).round() / 100.0;
        let mut object = serde_json::json!({
            "event": if finished { "finished" } else { "progress" },
            "task": self.verb,
            "done": r.done,
            "total": r.total,
            "unit": self.unit,
            "rate": round(r.rate),
            "eta_s": if finished { Some(0.0) } else { r.eta.map(round) },
            "elapsed_s": round(r.elapsed),
        });
        if let Some(files) = self.files {
            object["files_done"] = r.files_done.into();
            object["files"] = files.into();
            object["sentences"] = r.sentences.into();
            object["sentences_per_s"] = round(r.sentences as f64 / r.elapsed.max(1e-3)).into();
        }
        object.to_string()
    }
}

/// `1.2 MB`.
fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.1} GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.1} MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1} kB", n / 1e3)
    } else {
        format!("{n} B")
    }
}

/// `2h05m`, `3m07s`, `42s`.
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// The thread that writes a plain or JSON line every [`interval`].
struct Ticker {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<bool>,
}

impl Ticker {
    fn start(counts: Arc<Counts>, json: bool) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let every = interval();
        let thread = std::thread::spawn(move || {
            let mut wrote = false;
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                let line = if json {
                    counts.json(false)
                } else {
                    counts.plain(false)
                };
                eprintln!("{line}");
                wrote = true;
            }
            wrote
        });
        Self { stop, thread }
    }

    /// Stops the thread; whether it wrote any line.
    fn stop(self) -> bool {
        let _ = self.stop.send(());
        self.thread.join().unwrap_or(false)
    }
}

pub struct Progress {
    bar: ProgressBar,
    counts: Arc<Counts>,
    mode: ProgressMode,
    ticker: std::sync::Mutex<Option<Ticker>>,
}

impl Progress {
    /// Progress over `total` sentences; hidden for short inputs.
    pub fn sentences(total: usize, mode: ProgressMode) -> Self {
        let mode = if total > 8 {
            mode
        } else {
            ProgressMode::Hidden
        };
        let bar = if mode == ProgressMode::Bar {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} translating [{bar:30}] {pos}/{len} sentences, {per_sec}, eta {eta}",
                )
                .expect("valid progress template")
                .progress_chars("=> "),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Self::start(
            bar,
            mode,
            Counts {
                done: AtomicU64::new(0),
                total: Some(total as u64),
                unit: "sentences",
                files: None,
                files_done: AtomicU64::new(0),
                sentences: AtomicU64::new(0),
                verb: "translating".to_string(),
                started: Instant::now(),
            },
        )
    }

    /// Progress over the bytes of `files` inputs (`bytes` unknown for standard input), with the
    /// files and sentences done and the sentence rate besides.
    pub fn inputs(files: usize, bytes: Option<u64>, verb: &str, mode: ProgressMode) -> Self {
        let bar = if mode == ProgressMode::Bar {
            let bar = ProgressBar::with_draw_target(bytes, ProgressDrawTarget::stderr());
            let template = if bytes.is_some() {
                format!("{{spinner}} {verb} [{{bar:30}}] {{msg}}, eta {{eta}}")
            } else {
                format!("{{spinner}} {verb} {{msg}}")
            };
            bar.set_style(
                ProgressStyle::with_template(&template)
                    .expect("valid progress template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        let progress = Self::start(
            bar,
            mode,
            Counts {
                done: AtomicU64::new(0),
                total: bytes,
                unit: "bytes",
                files: Some(files as u64),
                files_done: AtomicU64::new(0),
                sentences: AtomicU64::new(0),
                verb: verb.to_string(),
                started: Instant::now(),
            },
        );
        progress.refresh();
        progress
    }

    pub fn hidden() -> Self {
        Self::sentences(0, ProgressMode::Hidden)
    }

    fn start(bar: ProgressBar, mode: ProgressMode, counts: Counts) -> Self {
        let counts = Arc::new(counts);
        let ticker = match mode {
            ProgressMode::Plain => Some(Ticker::start(counts.clone(), false)),
            ProgressMode::Json => Some(Ticker::start(counts.clone(), true)),
            ProgressMode::Bar | ProgressMode::Hidden => None,
        };
        Self {
            bar,
            counts,
            mode,
            ticker: std::sync::Mutex::new(ticker),
        }
    }

    /// `n` more sentences translated.
    pub fn advance(&self, n: usize) {
        if self.counts.files.is_some() {
            self.counts.sentences.fetch_add(n as u64, Ordering::Relaxed);
            self.refresh();
        } else {
            self.counts.done.fetch_add(n as u64, Ordering::Relaxed);
            self.bar.inc(n as u64);
        }
    }

    /// `n` more input bytes read and processed.
    pub fn advance_bytes(&self, n: usize) {
        if self.counts.files.is_some() {
            self.counts.done.fetch_add(n as u64, Ordering::Relaxed);
        }
        self.bar.inc(n as u64);
    }

    /// One more input finished (or skipped, or failed).
    pub fn file_done(&self) {
        self.counts.files_done.fetch_add(1, Ordering::Relaxed);
        self.refresh();
    }

    fn refresh(&self) {
        if self.mode != ProgressMode::Bar {
            return;
        }
        if let Some(files) = self.counts.files {
            let sentences = self.counts.sentences.load(Ordering::Relaxed);
            let rate = sentences as f64 / self.counts.started.elapsed().as_secs_f64().max(1e-3);
            self.bar.set_message(format!(
                "{}/{files} files, {sentences} sentences, {rate:.1} sentences/s",
                self.counts.files_done.load(Ordering::Relaxed)
            ));
        }
    }

    /// Prints a line above the bar (or plainly when there is none).
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Clears the bar, or stops the log lines with a last one (only after some: a run shorter
    /// than the interval leaves its log as it was).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
        let ticker = self.ticker.lock().ok().and_then(|mut t| t.take());
        if let Some(ticker) = ticker {
            if ticker.stop() {
                let line = if self.mode == ProgressMode::Json {
                    self.counts.json(true)
                } else {
                    self.counts.plain(true)
                };
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // A run that ends in an error skips `finish`; its ticker must not outlive it.
        if let Some(ticker) = self.ticker.get_mut().ok().and_then(Option::take) {
            ticker.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_say_what_is_done_and_what_is_left() {
        let counts = Counts {
            done: AtomicU64::new(500),
            total: Some(2000),
            unit: "bytes",
            files: Some(4),
            files_done: AtomicU64::new(1),
            sentences: AtomicU64::new(30),
            verb: "translating".to_string(),
            started: Instant::now() - Duration::from_secs(10),
        };
        let line = counts.plain(false);
        assert!(
            line.starts_with("tarjama: translating: 1/4 files, 30 sentences, 3.0 sentences/s, 25% of 2.0 kB, eta 30s, 10s elapsed"),
            "{line}"
        );
        let json: serde_json::Value = serde_json::from_str(&counts.json(false)).unwrap();
        assert_eq!(json["done"], 500);
        assert_eq!(json["total"], 2000);
        assert_eq!(json["unit"], "bytes");
        assert!(
            (json["rate"].as_f64().unwrap() - 50.0).abs() < 1.0,
            "{json}"
        );
        assert!(
            (json["eta_s"].as_f64().unwrap() - 30.0).abs() < 1.0,
            "{json}"
        );
        assert_eq!(json["files"], 4);
        assert_eq!(duration(3725.0), "1h02m");
        assert_eq!(duration(187.0), "3m07s");
    }
}

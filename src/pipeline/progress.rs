//! Progress on stderr: drawn only when stderr is a terminal and the user did not ask for quiet,
//! so logs and pipes stay clean.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    /// Runs over many inputs count files and sentences in the message; the bar counts bytes.
    files: Option<u64>,
    files_done: AtomicU64,
    sentences: AtomicU64,
    started: Instant,
}

impl Progress {
    /// A bar over `total` sentences; hidden for short inputs, when quiet, or off a terminal.
    pub fn sentences(total: usize, quiet: bool) -> Self {
        let visible = !quiet && total > 8 && std::io::stderr().is_terminal();
        let bar = if visible {
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
        Self::with_bar(bar, None)
    }

    /// A bar over the bytes of `files` inputs (`bytes` unknown for standard input), with the
    /// files and sentences done and the sentence rate in its message.
    pub fn inputs(files: usize, bytes: Option<u64>, verb: &str, quiet: bool) -> Self {
        let bar = if !quiet && std::io::stderr().is_terminal() {
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
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        let progress = Self::with_bar(bar, Some(files as u64));
        progress.refresh();
        progress
    }

    pub fn hidden() -> Self {
        Self::with_bar(ProgressBar::hidden(), None)
    }

    fn with_bar(bar: ProgressBar, files: Option<u64>) -> Self {
        Self {
            bar,
            files,
            files_done: AtomicU64::new(0),
            sentences: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// `n` more sentences translated.
    pub fn advance(&self, n: usize) {
        if self.files.is_some() {
            self.sentences.fetch_add(n as u64, Ordering::Relaxed);
            self.refresh();
        } else {
            self.bar.inc(n as u64);
        }
    }

    /// `n` more input bytes read and processed.
    pub fn advance_bytes(&self, n: usize) {
        self.bar.inc(n as u64);
    }

    /// One more input finished (or skipped, or failed).
    pub fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        self.refresh();
    }

    fn refresh(&self) {
        if let Some(files) = self.files {
            let sentences = self.sentences.load(Ordering::Relaxed);
            let rate = sentences as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            self.bar.set_message(format!(
                "{}/{files} files, {sentences} sentences, {rate:.1} sentences/s",
                self.files_done.load(Ordering::Relaxed)
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

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

//! A progress bar on stderr for long inputs: drawn only when stderr is a terminal and the user
//! did not ask for quiet, so logs and pipes stay clean.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
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
        Self { bar }
    }

    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    pub fn advance(&self, n: usize) {
        self.bar.inc(n as u64);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

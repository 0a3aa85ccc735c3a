//! The error type of the library. Every variant renders as one line that says what is wrong and
//! how to fix it; `main` prints it and exits with [`Error::exit_code`].

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED_EXIT_CODE: u8 = 130;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line asked for something impossible (bad flag combination, unknown value).
    #[error("{0}")]
    Usage(String),

    /// An input document cannot be used (missing, not UTF-8, empty, a directory).
    #[error("{0}")]
    Input(String),

    /// A model cannot be found, downloaded or loaded.
    #[error("{0}")]
    Model(String),

    /// The output cannot be written.
    #[error("cannot write {path}: {source}. Check that the directory exists and is writable")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Standard output was closed by its reader (`| head -1`): the run ends quietly, with exit
    /// code 0, as `head` users expect of any command.
    #[error("standard output was closed")]
    StdoutClosed,

    /// Ctrl-C, SIGTERM or SIGHUP stopped the run; the exit status is 128 + the signal's number.
    #[error(
        "interrupted: outputs already finished are kept; run the same command again to resume"
    )]
    Interrupted(u8),

    /// A tensor operation failed; this is a bug or an unsupported model shape.
    #[error("model computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// candle's message without the backtrace it attaches whenever `RUST_BACKTRACE` is set.
fn candle_message(e: &candle_core::Error) -> String {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::Context { inner, context } => {
            format!("{context}\n{}", candle_message(inner))
        }
        other => other.to_string(),
    }
}

impl Error {
    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
    pub fn input(msg: impl Into<String>) -> Self {
        Error::Input(msg.into())
    }
    pub fn model(msg: impl Into<String>) -> Self {
        Error::Model(msg.into())
    }

    /// Exit codes: 1 an input failed, 2 usage error, 3 model error, 130 interrupted by Ctrl-C,
    /// 143 by SIGTERM, 129 by SIGHUP (0 is success).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::Output { .. } => 1,
            Error::Usage(_) => 2,
            Error::Model(_) | Error::Candle(_) => 3,
            Error::Interrupted(code) => *code,
            Error::StdoutClosed => 0,
        }
    }

    /// The message on one line, as `main` prints it: candle's errors put a context and its
    /// cause on lines of their own, and those are joined with ": ".
    ///
    /// candle attaches a backtrace to its errors whenever `RUST_BACKTRACE` is set: it is left
    /// out here (`to_string` keeps it, for `--verbose` and bug reports).
    pub fn one_line(&self) -> String {
        let message = match self {
            Error::Candle(e) => format!("model computation failed: {}", candle_message(e)),
            other => other.to_string(),
        };
        let lines: Vec<&str> = message
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        lines.join(": ")
    }

    /// Whether the error concerns one input (or its output) only, so a run over many inputs
    /// can report it and go on with the others.
    pub fn is_per_input(&self) -> bool {
        matches!(self, Error::Input(_) | Error::Output { .. })
    }
}

/// candle's errors carry a backtrace in their text when RUST_BACKTRACE is set, and contexts on
/// lines of their own; a tarjama error is one line, so keep only the messages.
pub(crate) fn candle_one_line(e: &candle_core::Error) -> String {
    use candle_core::Error as E;
    match e {
        E::WithBacktrace { inner, .. } => candle_one_line(inner),
        E::Context { inner, context } => format!("{context}: {}", candle_one_line(inner)),
        E::WithPath { inner, path } => format!("{}: {}", path.display(), candle_one_line(inner)),
        other => other.to_string().lines().collect::<Vec<_>>().join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candle_errors_with_a_context_print_on_one_line() {
        let inner = candle_core::Error::Msg("shape mismatch".to_string());
        let err = Error::from(inner.context("loading encoder.layers.0"));
        assert!(err.to_string().contains('\n'));
        assert_eq!(
            err.one_line(),
            "model computation failed: loading encoder.layers.0: shape mismatch"
        );
    }

    #[test]
    fn candle_backtraces_are_left_out_of_the_one_line_message() {
        let traced = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg("shape mismatch".to_string())),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        let err = Error::from(traced.context("loading shared.weight"));
        assert_eq!(
            err.one_line(),
            "model computation failed: loading shared.weight: shape mismatch"
        );
        assert!(err.to_string().lines().count() > 3, "kept for --verbose");
    }
}

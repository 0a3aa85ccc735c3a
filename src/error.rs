//! The error type of the library. Every variant renders as one line that says what is wrong and
//! how to fix it; `main` prints it and exits with [`Error::exit_code`].

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

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

    /// The user pressed Ctrl-C.
    #[error(
        "interrupted: outputs already finished are kept; run the same command again to resume"
    )]
    Interrupted,

    /// A tensor operation failed; this is a bug or an unsupported model shape.
    #[error("model computation failed: {0}")]
    Candle(candle_core::Error),
}

impl From<candle_core::Error> for Error {
    fn from(e: candle_core::Error) -> Self {
        Error::Candle(without_backtrace(e))
    }
}

/// candle attaches a backtrace to its errors whenever `RUST_BACKTRACE` is set, and prints it as
/// part of the message: a user's one-line error became 70 lines. The backtrace is dropped here;
/// `--verbose` still shows where a panic happened.
fn without_backtrace(e: candle_core::Error) -> candle_core::Error {
    match e {
        candle_core::Error::WithBacktrace { inner, .. } => without_backtrace(*inner),
        candle_core::Error::Context { inner, context } => candle_core::Error::Context {
            inner: Box::new(without_backtrace(*inner)),
            context,
        },
        other => other,
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

    /// Exit codes: 1 an input failed, 2 usage error, 3 model error, 130 interrupted (0 is
    /// success).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) | Error::Output { .. } => 1,
            Error::Usage(_) => 2,
            Error::Model(_) | Error::Candle(_) => 3,
            Error::Interrupted => crate::interrupt::EXIT_CODE,
        }
    }

    /// The message on one line, as `main` prints it: candle's errors put a context and its
    /// cause on lines of their own, and those are joined with ": ".
    pub fn one_line(&self) -> String {
        let message = self.to_string();
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
    fn candle_backtraces_are_not_part_of_the_message() {
        let traced = candle_core::Error::WithBacktrace {
            inner: Box::new(candle_core::Error::Msg("shape mismatch".to_string())),
            backtrace: Box::new(std::backtrace::Backtrace::force_capture()),
        };
        let err = Error::from(traced.context("loading shared.weight"));
        assert_eq!(
            err.one_line(),
            "model computation failed: loading shared.weight: shape mismatch"
        );
    }
}

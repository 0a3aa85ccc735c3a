//! Ctrl-C (SIGINT), and the SIGTERM and SIGHUP that schedulers (Slurm, Kubernetes, `docker
//! stop`) and closed terminals send: the first stops the run at the next batch, keeping every
//! output already finished and discarding the one in progress; the second exits at once, still
//! removing unfinished files. The exit status is 128 + the first signal's number, as shells
//! report a process ended by it, so a scheduler sees the usual code.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::{Error, Result};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// The exit status of the first signal, 0 before any.
static FIRST: AtomicU8 = AtomicU8::new(0);

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT).
pub const EXIT_CODE: u8 = crate::error::INTERRUPTED_EXIT_CODE;

/// Exit status of a run stopped by SIGTERM (128 + 15).
pub const TERMINATED_EXIT_CODE: u8 = 143;

/// Exit status of a run stopped by SIGHUP (128 + 1).
pub const HANGUP_EXIT_CODE: u8 = 129;

/// What the handler does with a signal whose exit status is `code`.
fn received(code: u8, what: &str) {
    if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
        FIRST.store(code, Ordering::SeqCst);
        eprintln!(
            "\ntarjama: {what}: stopping after the current batch (a second signal stops at once)"
        );
    } else {
        crate::output::remove_pending();
        let first = FIRST.load(Ordering::SeqCst);
        std::process::exit(if first == 0 { code } else { first }.into());
    }
}

/// Installs the handler. Without it (library use) the signals end the process the default way.
#[cfg(unix)]
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("tarjama-signals".to_string())
        .spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGTERM => received(TERMINATED_EXIT_CODE, "terminated (SIGTERM)"),
                    SIGHUP => received(HANGUP_EXIT_CODE, "hung up (SIGHUP)"),
                    _ => received(EXIT_CODE, "interrupted"),
                }
            }
        });
}

/// Installs the handler. Without it (library use) Ctrl-C ends the process the default way.
#[cfg(not(unix))]
pub fn install() {
    let _ = ctrlc::set_handler(|| received(EXIT_CODE, "interrupted"));
}

/// Whether a stopping signal came.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// `Err(Error::Interrupted)` once a stopping signal came: long loops call this between batches.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::Interrupted(FIRST.load(Ordering::SeqCst).max(1)))
    } else {
        Ok(())
    }
}

//! Ctrl-C: the first stops the run at the next batch, keeping every output already finished and
//! discarding the one in progress; the second exits at once, still removing unfinished files.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Error, Result};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_CODE: u8 = crate::error::INTERRUPTED_EXIT_CODE;

/// Installs the handler. Without it (library use) Ctrl-C ends the process the default way.
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) == 0 {
            eprintln!(
                "\ntarjama: interrupted: stopping after the current batch (Ctrl-C again stops at once)"
            );
        } else {
            crate::output::remove_pending();
            std::process::exit(EXIT_CODE.into());
        }
    });
}

/// Whether Ctrl-C was pressed.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// `Err(Error::Interrupted)` once Ctrl-C was pressed: long loops call this between batches.
pub fn check() -> Result<()> {
    if requested() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

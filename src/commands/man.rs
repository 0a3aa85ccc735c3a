//! `tarjama man`: manual pages rendered by clap_mangen from the same clap definitions as
//! `--help`, so the two cannot disagree.

use std::io::Write;
use std::path::Path;

use clap::CommandFactory;

use super::batch::Outcome;
use crate::cli::{Cli, ENVIRONMENT, EXIT_CODES};
use crate::output::OutputTarget;
use crate::{Error, Result};

pub fn run(output: Option<&Path>) -> Result<Outcome> {
    match output {
        None => {
            let page = top_page()
                .map_err(|e| Error::input(format!("cannot render the manual page: {e}")))?;
            OutputTarget::Stdout.finish(&String::from_utf8_lossy(&page))?;
        }
        Some(dir) => {
            let failed = |source| Error::Output {
                path: dir.to_path_buf(),
                source,
            };
            std::fs::create_dir_all(dir).map_err(failed)?;
            // One page per command and subcommand (tarjama-models-list.1, ...); the top page is
            // then written again with its own sections.
            clap_mangen::generate_to(Cli::command(), dir).map_err(failed)?;
            let page = top_page().map_err(failed)?;
            std::fs::write(dir.join("tarjama.1"), page).map_err(failed)?;
        }
    }
    Ok(Outcome::Success)
}

/// tarjama(1): clap_mangen's sections, with the exit codes and the environment as the
/// EXIT STATUS and ENVIRONMENT sections man pages have, instead of the top-level help's
/// epilogue as one block.
fn top_page() -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(Cli::command());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_subcommands_section(&mut page)?;
    writeln!(page, ".SH \"EXIT STATUS\"\n{}", roff_text(EXIT_CODES))?;
    writeln!(page, ".SH ENVIRONMENT")?;
    for (name, what) in ENVIRONMENT {
        writeln!(
            page,
            ".TP\n\\fB{}\\fR\n{}",
            roff_text(name),
            roff_text(what)
        )?;
    }
    man.render_version_section(&mut page)?;
    Ok(page)
}

/// Text as roff shows it literally: backslashes escaped, and a line never starting with the
/// control characters `.` or `'`.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

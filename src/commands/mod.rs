//! The subcommands: what `main` runs once the command line is parsed.

pub mod batch;
mod eval;
mod models;
mod summarize;
mod translate;

pub use batch::Outcome;

use crate::cli::{Cli, Command, GenerationArgs};
use crate::pipeline::GenerationOverrides;
use crate::Result;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    crate::device::configure_threads(cli.threads.map(usize::from))?;
    match cli.command {
        Command::Translate(args) => translate::run(args),
        Command::Summarize(args) => summarize::run(args),
        Command::Models { action } => models::run(action),
        Command::Eval(args) => eval::run(args),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "tarjama", &mut std::io::stdout());
            Ok(Outcome::Success)
        }
    }
}

fn generation_overrides(g: &GenerationArgs) -> GenerationOverrides {
    GenerationOverrides {
        num_beams: g.beams.map(|v| v as usize),
        max_length: g.max_length.map(|v| v as usize),
        min_length: g.min_length.map(|v| v as usize),
        length_penalty: g.length_penalty,
        no_repeat_ngram_size: g.no_repeat_ngram_size.map(|v| v as usize),
        repetition_penalty: g.repetition_penalty,
    }
}

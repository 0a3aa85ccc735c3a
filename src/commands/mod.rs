//! The subcommands: what `main` runs once the command line is parsed.

pub mod batch;
mod eval;
mod models;
mod outputs;
mod summarize;
mod translate;

pub use batch::Outcome;

use candle_core::{DType, Device};

use crate::cli::{Cli, Command, GenerationArgs, ModelArgs};
use crate::device::{self, Precision};
use crate::hub::{self, ModelFiles};
use crate::pipeline::{GenerationOverrides, Translator};
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

/// Loads the encoder-decoder translator `--model` names, with the batch limits and generation
/// settings of the command line.
fn load_translator(
    m: &ModelArgs,
    generation: &GenerationArgs,
    device: &Device,
) -> Result<(Translator, ModelFiles, DType)> {
    let dtype = device::select_dtype(m.dtype, device);
    let files = hub::resolve(&m.model, &hub::HubOptions::from_env(m.offline, !m.quiet))?;
    let precision = Precision {
        dtype,
        quantize: m.quantize.map(|q| q.format()),
    };
    let mut translator = Translator::load(&files, device, precision)?;
    if let Some(n) = m.batch_size {
        translator.batch.sentences = n as usize;
    }
    if let Some(n) = m.batch_tokens {
        translator.batch.tokens = n as usize;
    }
    generation_overrides(generation).apply(&mut translator.generation);
    Ok((translator, files, dtype))
}

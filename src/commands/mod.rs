//! The subcommands: what `main` runs once the command line is parsed.

pub mod batch;
mod eval;
mod man;
mod models;
mod quantize;
mod records;
mod serve;
mod shard;
mod sink;
mod summarize;
mod translate;

pub use batch::Outcome;

use crate::cli::{ChatArgs, Cli, Command, GenerationArgs, ModelArgs, ProgressChoice, RuntimeArgs};
use crate::pipeline::{ChatOptions, EngineOptions, GenerationOverrides, ProgressMode, Runtime};
use crate::{device, hub, Result};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    crate::device::configure_threads(cli.threads.map(usize::from).filter(|&n| n > 0))?;
    crate::document::stop_reading_when(crate::interrupt::requested);
    match cli.command {
        Command::Translate(args) => translate::run(args),
        Command::Summarize(args) => summarize::run(args),
        Command::Models { action } => models::run(action),
        Command::Eval(args) => eval::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Man { output } => man::run(output.as_deref()),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "tarjama", &mut std::io::stdout());
            Ok(Outcome::Success)
        }
    }
}

/// The device, weight types and Hub access every command's model runs with.
fn runtime(args: &RuntimeArgs) -> Result<Runtime> {
    Ok(Runtime {
        device: device::select_device(args.device)?,
        dtype: args.dtype,
        quantize: args.quantize,
        hub: hub::HubOptions::from_env(args.offline, !args.quiet),
    })
}

/// How progress is shown: `--quiet` means none, whatever `--progress` says.
fn progress_mode(args: &RuntimeArgs) -> ProgressMode {
    match args.progress {
        _ if args.quiet => ProgressMode::Hidden,
        ProgressChoice::Auto => ProgressMode::auto(false),
        ProgressChoice::Bar => ProgressMode::Bar,
        ProgressChoice::Plain => ProgressMode::Plain,
        ProgressChoice::Json => ProgressMode::Json,
        ProgressChoice::None => ProgressMode::Hidden,
    }
}

/// The settings given on the command line, for the engine to apply or refuse.
fn engine_options(
    model: Option<&ModelArgs>,
    generation: &GenerationArgs,
    chat: Option<&ChatArgs>,
) -> EngineOptions {
    let g = generation;
    EngineOptions {
        generation: GenerationOverrides {
            num_beams: g.beams.map(|v| v as usize),
            max_length: g.max_length.map(|v| v as usize),
            min_length: g.min_length.map(|v| v as usize),
            length_penalty: g.length_penalty,
            no_repeat_ngram_size: g.no_repeat_ngram_size.map(|v| v as usize),
            repetition_penalty: g.repetition_penalty,
        },
        batch_sentences: model.and_then(|m| m.batch_size).map(|n| n as usize),
        batch_tokens: model.and_then(|m| m.batch_tokens).map(|n| n as usize),
        chat: chat.map_or_else(ChatOptions::default, |c| ChatOptions {
            temperature: c.temperature,
            top_p: c.top_p,
            seed: c.seed,
            max_tokens: c.max_tokens,
        }),
    }
}

//! `tarjama serve`: the command line turned into the server's settings and model loaders; the
//! server itself is [`crate::serve`].

use std::time::{Duration, Instant};

use super::batch::Outcome;
use crate::cli::ServeArgs;
use crate::pipeline::{Engine, EngineSpec, Purpose};
use crate::serve::{self, Config, Loader};
use crate::{hub, Result};

/// Sentences per engine call on CPU unless `--batch-size` says otherwise.
const SERVE_CPU_BATCH: usize = 64;

pub fn run(args: ServeArgs) -> Result<Outcome> {
    let rt = &args.runtime;
    let config = Config {
        host: args.host.clone(),
        port: args.port,
        api_keys: args
            .api_keys
            .as_deref()
            .map(serve::read_api_keys)
            .transpose()?,
        max_queue: args.max_queue as usize,
        max_chars: args.max_chars as usize,
        timeout: Duration::from_secs_f64(args.timeout),
        verbose: rt.verbose,
        check_summaries: !args.no_check,
    };
    let runtime = super::runtime(rt)?;
    let mut options = super::engine_options(Some(&args.model), &args.generation, None);
    // Concurrent requests fill batches that one command-line run over a file rarely would, and
    // on CPU larger calls then pay: with an opus-mt-sized model, 64 clients got 3.6x the
    // throughput of one at 64 sentences a call and 2.4x at the command line's 16, and the p99
    // latency under that load fell (scripts/bench-serve). Chat models take no batch size.
    if runtime.device.is_cpu() && !hub::is_gguf(&args.model.model) {
        options.batch_sentences = options.batch_sentences.or(Some(SERVE_CPU_BATCH));
    }
    let translator = EngineSpec {
        model: args.model.model.clone(),
        purpose: Purpose::Translate,
    };
    let summarizer = args.summarizer.as_ref().map(|model| EngineSpec {
        model: model.clone(),
        purpose: Purpose::Summarize {
            // An encoder-decoder summarizer works through the server's translator; a chat model
            // reads the Arabic itself.
            translator: (!hub::is_gguf(model)).then(|| args.model.model.clone()),
            reads: None,
            with_translation: false,
        },
    });
    // A summarizer takes the generation settings of its own model's config: --beams and the
    // like are the translator's.
    let summarizer_options = crate::pipeline::EngineOptions {
        batch_sentences: options.batch_sentences,
        batch_tokens: options.batch_tokens,
        ..Default::default()
    };
    let verbose = rt.verbose;
    let loader = move |spec: EngineSpec, options, runtime| -> Loader {
        Box::new(move || {
            let started = Instant::now();
            let engine = Engine::load(&spec, &options, &runtime)?;
            if verbose {
                eprintln!(
                    "tarjama: {}, loaded in {:.2}s",
                    engine.describe(),
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(engine)
        })
    };
    let summarizer = match summarizer {
        Some(spec) => Some(loader(spec, summarizer_options, super::runtime(rt)?)),
        None => None,
    };
    serve::run(config, loader(translator, options, runtime), summarizer)?;
    Ok(Outcome::Success)
}

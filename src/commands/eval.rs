//! `tarjama eval`: BLEU and chrF of translations, ROUGE of summaries, against references, with
//! the reference tools' definitions (see [`crate::eval`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::batch::Outcome;
use super::sink::Sink;
use crate::cli::{EvalArgs, EvalTask, ListFormat};
use crate::document::{self, Document};
use crate::output::OutputTarget;
use crate::pipeline::{Engine, EngineSpec, Progress, Purpose};
use crate::{eval, Error, Result};

/// A file's lines, one segment each (a final newline ends the last line, it adds none).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = document::read_input(Some(path))?;
    Ok(text.lines().map(str::to_string).collect())
}

pub fn run(args: EvalArgs) -> Result<Outcome> {
    let streams = args
        .reference
        .iter()
        .map(|path| read_lines(path))
        .collect::<Result<Vec<_>>>()?;
    let references = &streams[0];
    let hypotheses = match (&args.hyp, &args.src) {
        (Some(hyp), _) => read_lines(hyp)?,
        (None, Some(src)) => {
            if args.task == EvalTask::Summarize {
                return Err(Error::usage(
                    "eval --task summarize scores existing summaries: write them with `tarjama summarize --format jsonl` and give them with --hyp, one per line",
                ));
            }
            // Opened (and locked) before the model loads, so a bad path costs nothing.
            let mut save = match &args.save_hyp {
                Some(path) => Some(Sink::single_file(
                    path,
                    &[&[src.as_path()], &refs_paths(&args)[..]].concat(),
                    "--save-hyp",
                )?),
                None => None,
            };
            let translations = translate_lines(&args, src, references.len())?;
            if let Some(sink) = &mut save {
                sink.take_single()
                    .finish(&(translations.join("\n") + "\n"))?;
            }
            if let Some(sink) = save {
                sink.close(true)?;
            }
            translations
        }
        (None, None) => return Err(Error::usage("give --hyp FILE, or --src FILE to translate")),
    };
    let (text, json) = match args.task {
        EvalTask::Translate => {
            let scores =
                eval::score_translation_multi(&hypotheses, &streams, args.chrf_word_order.into())?;
            (scores.to_string(), serde_json::to_value(scores))
        }
        EvalTask::Summarize => {
            if streams.len() > 1 {
                return Err(Error::usage(
                    "eval --task summarize takes one --ref: ROUGE as rouge-score computes it has one reference per summary",
                ));
            }
            let scores = eval::score_summaries(&hypotheses, references)?;
            (scores.to_string(), serde_json::to_value(scores))
        }
    };
    let out = match args.format {
        ListFormat::Text => text + "\n",
        ListFormat::Json => {
            json.map_err(|e| Error::input(format!("cannot write the scores as JSON: {e}")))?
                .to_string()
                + "\n"
        }
    };
    OutputTarget::Stdout.finish(&out)?;
    Ok(Outcome::Success)
}

fn refs_paths(args: &EvalArgs) -> Vec<&Path> {
    args.reference.iter().map(PathBuf::as_path).collect()
}

/// Translates every line of `src` on its own (a line's sentences together), as a test set's
/// segments are.
fn translate_lines(args: &EvalArgs, src: &Path, expected: usize) -> Result<Vec<String>> {
    let m = &args.model;
    let text = document::read_input(Some(src))?;
    let doc = Document::parse(&text);
    if doc.paragraphs.len() != expected {
        return Err(Error::input(format!(
            "{} has {} lines but {} has {expected}: the source and reference must be line-aligned",
            src.display(),
            doc.paragraphs.len(),
            args.reference[0].display()
        )));
    }
    let rt = &args.runtime;
    let started = Instant::now();
    let spec = EngineSpec {
        model: m.model.clone(),
        purpose: Purpose::Translate,
    };
    let options = super::engine_options(Some(m), &args.generation, None);
    let mut engine = Engine::load(&spec, &options, &super::runtime(rt)?)?;
    if rt.verbose {
        eprintln!(
            "tarjama: {}, loaded in {:.2}s",
            engine.describe(),
            started.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    let progress = Progress::sentences(doc.sentences().count(), super::progress_mode(rt));
    let english = engine.translate_document(&doc, &progress)?;
    progress.finish();
    if rt.verbose {
        eprintln!(
            "tarjama: translated {expected} lines, {}",
            engine.report(started.elapsed().as_secs_f64())
        );
    }
    let mut lines: Vec<String> = english.split('\n').map(str::to_string).collect();
    lines.truncate(expected);
    Ok(lines)
}

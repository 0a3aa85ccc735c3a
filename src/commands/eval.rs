//! `tarjama eval`: BLEU and chrF of translations, ROUGE of summaries, against references, with
//! the reference tools' definitions (see [`crate::eval`]).

use std::path::Path;
use std::time::Instant;

use super::batch::Outcome;
use crate::cli::{EvalArgs, EvalTask, ListFormat};
use crate::device;
use crate::document::{self, Document};
use crate::hub;
use crate::output::OutputTarget;
use crate::pipeline::Progress;
use crate::{eval, Error, Result};

/// A file's lines, one segment each (a final newline ends the last line, it adds none).
fn read_lines(path: &Path) -> Result<Vec<String>> {
    let text = document::read_input(Some(path))?;
    Ok(text.lines().map(str::to_string).collect())
}

pub fn run(args: EvalArgs) -> Result<Outcome> {
    let references = read_lines(&args.reference)?;
    let hypotheses = match (&args.hyp, &args.src) {
        (Some(hyp), _) => read_lines(hyp)?,
        (None, Some(src)) => {
            if args.task == EvalTask::Summarize {
                return Err(Error::usage(
                    "eval --task summarize scores existing summaries: write them with `tarjama summarize --format jsonl` and give them with --hyp, one per line",
                ));
            }
            let translations = translate_lines(&args, src, references.len())?;
            if let Some(path) = &args.save_hyp {
                OutputTarget::open(Some(path))?.finish(&(translations.join("\n") + "\n"))?;
            }
            translations
        }
        (None, None) => return Err(Error::usage("give --hyp FILE, or --src FILE to translate")),
    };
    let (text, json) = match args.task {
        EvalTask::Translate => {
            let scores = eval::score_translation(&hypotheses, &references)?;
            (scores.to_string(), serde_json::to_value(scores))
        }
        EvalTask::Summarize => {
            let scores = eval::score_summaries(&hypotheses, &references)?;
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
            args.reference.display()
        )));
    }
    if hub::is_gguf(&m.model) {
        return Err(Error::usage(
            "eval translates with encoder-decoder models; for a chat model, translate the file with `tarjama translate` and pass --hyp",
        ));
    }
    let started = Instant::now();
    let device = device::select_device(m.device)?;
    let (translator, files, _) = super::load_translator(m, &args.generation, &device)?;
    if m.verbose {
        eprintln!(
            "tarjama: model {} ({}) loaded in {:.2}s",
            files.name,
            files.source,
            started.elapsed().as_secs_f64()
        );
    }
    let started = Instant::now();
    let sentences: Vec<&str> = doc.sentences().collect();
    let progress = Progress::sentences(sentences.len(), m.quiet);
    let translated = translator.translate_sentences(&sentences, &progress)?;
    progress.finish();
    if m.verbose {
        let times = translator.stage_times();
        eprintln!(
            "tarjama: translated {} lines in {:.2}s: encode {:.2}s, decode {:.2}s",
            expected,
            started.elapsed().as_secs_f64(),
            times.encode.as_secs_f64(),
            times.decode.as_secs_f64()
        );
    }
    let english = doc.reassemble(&translated);
    let mut lines: Vec<String> = english.split('\n').map(str::to_string).collect();
    lines.truncate(expected);
    Ok(lines)
}

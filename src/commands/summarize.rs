//! `tarjama summarize`: short English summaries of one article or a whole archive, with a chat
//! model (GGUF) or an encoder-decoder summarizer and a translator.

use std::io::IsTerminal;
use std::time::Instant;

use super::batch::{self, Destination, Next, Outcome, Plan, RunLog, Sink};
use crate::cli::{OutputFormat, ProgressChoice, SummarizeArgs};
use crate::document;
use crate::pipeline::{
    self, Engine, EngineSpec, OutputRecord, Progress, ProgressMode, Purpose, Summary, SummaryLength,
};
use crate::{interrupt, Error, Result};

pub fn run(args: SummarizeArgs) -> Result<Outcome> {
    let length = match (args.sentences, args.words) {
        (0, _) => return Err(Error::usage("--sentences must be at least 1")),
        (_, Some(0)) => return Err(Error::usage("--words must be at least 1")),
        (_, Some(words)) => SummaryLength::Words(words as usize),
        (n, None) => SummaryLength::Sentences(n as usize),
    };
    let plan = Plan::new(&args.batch, ".summary.txt")?;
    // Settled before the model loads, so a bad or busy output path fails at once.
    let (mut sink, done_ids) = Sink::open(&plan, args.batch.force)?;

    let mut records = batch::Records::new(&plan, &args.batch, &done_ids);
    let first = batch::read_single_ahead(&plan, &mut records)?;
    let rt = &args.runtime;
    if plan.inputs.is_empty() {
        // A shard given none of the files: nothing to load a model for.
        sink.close(true)?;
        return Ok(RunLog::new(&plan).finish("summarized", rt.quiet));
    }
    let started = Instant::now();
    let spec = EngineSpec {
        model: args.model.clone(),
        purpose: Purpose::Summarize {
            translator: args.translator.clone(),
            reads: args.summarizer_reads.clone(),
            with_translation: args.show_translation,
        },
    };
    let options = super::engine_options(None, &args.generation, Some(&args.chat));
    let mut engine = Engine::load(&spec, &options, &super::runtime(rt)?)?;
    if rt.verbose {
        eprintln!(
            "tarjama: {}, loaded in {:.2}s",
            engine.describe(),
            started.elapsed().as_secs_f64()
        );
    }

    let progress = Progress::inputs(
        plan.inputs.len(),
        plan.total_bytes(),
        "summarizing",
        // One article streams its summary instead, unless the logs were asked for.
        if plan.many || !matches!(rt.progress, ProgressChoice::Auto | ProgressChoice::Bar) {
            super::progress_mode(rt)
        } else {
            ProgressMode::Hidden
        },
    );
    let json = plan.format == OutputFormat::Jsonl;
    // One article to a terminal: print the summary's sentences as they are written.
    let live = !json
        && !plan.many
        && plan.destination == Destination::Stdout
        && (args.stream || (!args.no_stream && std::io::stdout().is_terminal()));
    let mut log = RunLog::new(&plan);
    let started = Instant::now();
    let result = (|| -> Result<()> {
        for next in first.into_iter().chain(records) {
            interrupt::check()?;
            let mut record = match next {
                Next::Done(_) => {
                    log.skipped(&progress);
                    continue;
                }
                Next::OtherShard(bytes) => {
                    log.other_shard(bytes, &progress);
                    continue;
                }
                Next::Failed(name, e) => {
                    log.failed(&name, e, &progress)?;
                    continue;
                }
                Next::Record(record) => record,
            };
            let mut summarize_one = || -> Result<Summary> {
                let mut text = String::new();
                while let Some(chunk) = record.reader.next_chunk()? {
                    progress.advance_bytes(chunk.len());
                    text.push_str(&chunk);
                }
                let paragraphs = pipeline::article_paragraphs(&text, args.keep_boilerplate)?;
                if !document::contains_arabic(&text) && !rt.quiet {
                    progress.println(&format!(
                        "tarjama: note: {} contains no Arabic text; summarizing it anyway",
                        record.name
                    ));
                }
                summarize(&mut engine, &args, &paragraphs, length, live)
            };
            let summary = match summarize_one() {
                Ok(s) => s,
                Err(e) if e.is_per_input() => {
                    // Standard input that ended early because of a signal is no bad input.
                    interrupt::check()?;
                    log.failed(&record.name, e, &progress)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(report) = &summary.check {
                if report.short_by > 0 && !rt.quiet {
                    progress.println(&format!(
                        "tarjama: note: {}: {}",
                        record.name,
                        report.tally()
                    ));
                } else if rt.verbose {
                    progress.println(&format!("tarjama: {}: {}", record.name, report.tally()));
                }
            }
            let written = if json {
                let mut line = OutputRecord::new(record.id.clone(), "summarize", &engine);
                line.summary = Some(summary.text.clone());
                line.english = summary.translation.clone();
                line.check = summary.check.clone();
                if let Some(g) = &summary.tokens {
                    line.prompt_tokens = Some(g.prompt_tokens);
                    line.cached_prompt_tokens = Some(g.cached_prompt_tokens);
                    line.generated_tokens = Some(g.generated_tokens);
                }
                sink.write_record(&line.with_fields(std::mem::take(&mut record.fields)))
            } else {
                let out = if live {
                    "\n".to_string()
                } else {
                    match &summary.translation {
                        Some(t) => format!("{}\n\n{}\n", t.join("\n\n"), summary.text),
                        None => format!("{}\n", summary.text),
                    }
                };
                match &record.output {
                    Some(path) => sink.open_per_input(path).and_then(|t| t.finish(&out)),
                    None => sink.take_single().finish(&out),
                }
            };
            match written.and_then(|()| sink.sync()) {
                Ok(()) => log.done(&progress),
                Err(e) => log.failed(&record.name, e, &progress)?,
            }
        }
        // A pipe's input ends early when a signal came while waiting on its writer.
        interrupt::check()
    })();
    progress.finish();
    let closed = sink.close(result.is_ok());
    result?;
    closed?;
    if rt.verbose {
        eprintln!(
            "tarjama: summarized: {}",
            engine.report(started.elapsed().as_secs_f64())
        );
    }
    Ok(log.finish("summarized", rt.quiet))
}

fn summarize(
    engine: &mut Engine,
    args: &SummarizeArgs,
    paragraphs: &[String],
    length: SummaryLength,
    live: bool,
) -> Result<Summary> {
    let mut on_part = part_progress(args.runtime.quiet);
    let mut stdout = std::io::stdout().lock();
    let mut first = true;
    let mut on_text = |sentence: &str| {
        if live {
            use std::io::Write;
            let sep = if std::mem::take(&mut first) { "" } else { " " };
            let _ = write!(stdout, "{sep}{sentence}");
            let _ = stdout.flush();
        }
    };
    engine.summarize(
        paragraphs,
        length,
        !args.no_check,
        &mut on_text,
        &mut on_part,
    )
}

/// Reports the parts of a long article as they are summarized, on a terminal only.
fn part_progress(quiet: bool) -> impl FnMut(usize, usize) {
    let show = !quiet && std::io::stderr().is_terminal();
    move |done, total| {
        if show {
            eprint!(
                "\rtarjama: long article, summarizing part {}/{total}",
                (done + 1).min(total)
            );
            if done == total {
                eprintln!();
            }
        }
    }
}

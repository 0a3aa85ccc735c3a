//! `tarjama summarize`: short English summaries of one article or a whole archive, with a chat
//! model (GGUF) or an encoder-decoder summarizer and a translator.

use std::io::IsTerminal;
use std::time::Instant;

use super::batch::{self, Destination, Next, Outcome, Outputs, Plan, RunLog};
use crate::cli::{OutputFormat, SummarizeArgs};
use crate::device::{self, Precision};
use crate::document::{self, Document};
use crate::generate::llm::Generation;
use crate::hub::{self, ModelFiles};
use crate::pipeline::{
    ArticleSummary, ChatPipeline, Progress, Seq2Seq, Summarizer, SummaryLength, Task, Translator,
};
use crate::{interrupt, Error, Result};

enum Engine {
    Chat(Box<ChatPipeline>),
    Seq2Seq {
        summarizer: Box<Summarizer>,
        translator: Box<Translator>,
        translator_files: Box<ModelFiles>,
    },
}

/// One article's summary.
struct Summary {
    text: String,
    translation: Option<Vec<String>>,
    usage: Option<Generation>,
}

pub fn run(args: SummarizeArgs) -> Result<Outcome> {
    let length = match (args.sentences, args.words) {
        (Some(0), _) => return Err(Error::usage("--sentences must be at least 1")),
        (_, Some(0)) => return Err(Error::usage("--words must be at least 1")),
        (_, Some(words)) => SummaryLength::Words(words as usize),
        (Some(n), None) => SummaryLength::Sentences(n as usize),
        (None, None) => SummaryLength::Sentences(3),
    };
    let plan = Plan::new(&args.batch, ".summary.txt")?;
    // Settled before the model loads, so a bad or busy output path fails at once.
    let (mut outputs, done_ids) = Outputs::open(&plan, args.batch.force)?;

    let mut records = batch::Records::new(&plan, &args.batch, &done_ids);
    let first = batch::read_single_ahead(&plan, &mut records)?;
    let started = Instant::now();
    let (mut engine, files) = load(&args)?;
    if args.verbose {
        eprintln!(
            "tarjama: {} ({}) on {}{}, loaded in {:.2}s",
            files.name,
            files.source,
            device::describe(&device::select_device(args.device)?),
            match &engine {
                Engine::Chat(chat) => format!(", {}", chat.architecture()),
                Engine::Seq2Seq {
                    translator_files, ..
                } => format!(", with translator {}", translator_files.name),
            },
            started.elapsed().as_secs_f64()
        );
    }

    let progress = Progress::inputs(
        plan.inputs.len(),
        plan.total_bytes(),
        "summarizing",
        args.quiet || !plan.many,
    );
    let json = plan.format == OutputFormat::Jsonl;
    // One article to a terminal: print the summary's sentences as they are written.
    let live = !json
        && !plan.many
        && plan.destination == Destination::Stdout
        && (args.stream || (!args.no_stream && std::io::stdout().is_terminal()));
    let mut log = RunLog::new(plan.many);
    let mut usage = Generation::default();
    let started = Instant::now();
    let result = (|| -> Result<()> {
        for next in first.into_iter().chain(records) {
            interrupt::check()?;
            let mut record = match next {
                Next::Done(_) => {
                    log.skipped(&progress);
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
                let paragraphs = paragraphs_of(&text, args.keep_boilerplate)?;
                if !document::contains_arabic(&text) && !args.quiet {
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
                    log.failed(&record.name, e, &progress)?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let Some(u) = &summary.usage {
                usage.add_counts(u);
            }
            let written = if json {
                let mut line = serde_json::json!({
                    "id": record.id,
                    "summary": summary.text,
                    "model": files.name,
                    "source": files.source,
                    "revision": files.revision(),
                });
                if let Engine::Seq2Seq {
                    translator_files, ..
                } = &engine
                {
                    line["translator"] = serde_json::json!(translator_files.name);
                }
                if let Some(t) = &summary.translation {
                    line["translation"] = serde_json::json!(t.join("\n\n"));
                }
                if let Some(u) = &summary.usage {
                    line["prompt_tokens"] = u.prompt_tokens.into();
                    line["cached_prompt_tokens"] = u.cached_prompt_tokens.into();
                    line["generated_tokens"] = u.generated_tokens.into();
                }
                outputs.write_record(&line)
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
                    Some(path) => outputs.open_per_input(path).and_then(|t| t.finish(&out)),
                    None => outputs.take_single().finish(&out),
                }
            };
            match written {
                Ok(()) => log.done(&progress),
                Err(e) => log.failed(&record.name, e, &progress)?,
            }
        }
        Ok(())
    })();
    progress.finish();
    let closed = outputs.close(result.is_ok());
    result?;
    closed?;
    if args.verbose {
        let seconds = started.elapsed().as_secs_f64();
        match &engine {
            Engine::Chat(_) => eprintln!(
                "tarjama: {} prompt tokens ({} of them cached) and {} generated tokens in {seconds:.2}s",
                usage.prompt_tokens, usage.cached_prompt_tokens, usage.generated_tokens
            ),
            Engine::Seq2Seq {
                summarizer,
                translator,
                ..
            } => {
                let (s, t) = (summarizer.core().stage_times(), translator.stage_times());
                eprintln!(
                    "tarjama: summarized in {seconds:.2}s: encode {:.2}s, decode {:.2}s",
                    (s.encode + t.encode).as_secs_f64(),
                    (s.decode + t.decode).as_secs_f64()
                );
            }
        }
    }
    Ok(log.finish("summarized", args.quiet))
}

/// The article's paragraphs, with the site furniture removed unless asked to keep it.
fn paragraphs_of(text: &str, keep_boilerplate: bool) -> Result<Vec<String>> {
    let mut doc = Document::parse(text);
    if !keep_boilerplate {
        doc.strip_boilerplate();
    }
    let paragraphs: Vec<String> = doc
        .paragraphs
        .iter()
        .filter(|p| !p.source().trim().is_empty())
        .map(|p| match p.sentences() {
            [] => p.source().trim().to_string(),
            sentences => sentences.join(" "),
        })
        .collect();
    if paragraphs.is_empty() {
        return Err(Error::input("the input has nothing to summarize once site furniture is removed: pass --keep-boilerplate or check the file"));
    }
    Ok(paragraphs)
}

fn load(args: &SummarizeArgs) -> Result<(Engine, ModelFiles)> {
    let device = device::select_device(args.device)?;
    let hub_opts = hub::HubOptions::from_env(args.offline, !args.quiet);
    if hub::is_gguf(&args.model) {
        let files = hub::resolve_gguf(&args.model, &hub_opts)?;
        let mut chat = ChatPipeline::load(&files.weights, &device)?;
        let c = &args.chat;
        chat.settings.temperature = c.temperature;
        chat.settings.top_p = c.top_p;
        chat.settings.seed = c.seed;
        chat.settings.max_new_tokens = c.max_tokens;
        chat.settings.repetition_penalty = args
            .generation
            .repetition_penalty
            .unwrap_or(crate::cli::CHAT_REPETITION_PENALTY);
        return Ok((Engine::Chat(Box::new(chat)), files));
    }
    let dtype = device::select_dtype(args.dtype, &device);
    let files = hub::resolve(&args.model, &hub_opts)?;
    let precision = Precision {
        dtype,
        quantize: args.quantize.map(|q| q.format()),
    };
    let mut core = Seq2Seq::load(&files, &device, precision)?;
    if let (Some(lang), Task::Summarization { .. }) = (&args.summarizer_reads, core.task) {
        core.task = Task::Summarization {
            source_english: lang == "en",
        };
    }
    let mut summarizer = Summarizer::new(core, usize::MAX)?;
    super::generation_overrides(&args.generation).apply(&mut summarizer.core_mut().generation);
    let translator_files = hub::resolve(&args.translator, &hub_opts)?;
    let translator =
        Translator::load(&translator_files, &device, precision).map_err(|e| match e {
            Error::Usage(msg) => Error::usage(format!("--translator: {msg}")),
            other => other,
        })?;
    Ok((
        Engine::Seq2Seq {
            summarizer: Box::new(summarizer),
            translator: Box::new(translator),
            translator_files: Box::new(translator_files),
        },
        files,
    ))
}

fn summarize(
    engine: &mut Engine,
    args: &SummarizeArgs,
    paragraphs: &[String],
    length: SummaryLength,
    live: bool,
) -> Result<Summary> {
    let mut on_part = part_progress(args.quiet);
    match engine {
        Engine::Chat(chat) => {
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
            let g = chat.summarize(paragraphs, length, &mut on_text, &mut on_part)?;
            Ok(Summary {
                text: g.text.clone(),
                translation: None,
                usage: Some(g),
            })
        }
        Engine::Seq2Seq {
            summarizer,
            translator,
            ..
        } => {
            let ArticleSummary {
                summary,
                translation,
            } = summarizer.summarize_article(
                translator,
                paragraphs,
                length,
                args.show_translation,
                &mut on_part,
            )?;
            Ok(Summary {
                text: summary,
                translation,
                usage: None,
            })
        }
    }
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

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use std::io::{IsTerminal, Write};

use tarjama::cli::{Cli, Command, GenerationArgs, SummarizeArgs, TranslateArgs};
use tarjama::device::Precision;
use tarjama::document::{self, Document};
use tarjama::output::OutputTarget;
use tarjama::pipeline::{
    ArticleSummary, ChatPipeline, GenerationOverrides, Seq2Seq, Summarizer, SummaryLength,
    Translator,
};
use tarjama::{device, hub, Error, Result};

// The decoding loop allocates and frees large logits and cache buffers every step; glibc's
// allocator returns them to the OS and faults them back in, mimalloc reuses them (beam search
// measured 1.25x faster on the benchmark model).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result =
        device::configure_threads(cli.threads.map(usize::from)).and_then(|_| match cli.command {
            Command::Translate(args) => translate(args),
            Command::Summarize(args) => summarize(args),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tarjama: error: {err}");
            ExitCode::from(err.exit_code() as u8)
        }
    }
}

fn translate(args: TranslateArgs) -> Result<()> {
    let text = document::read_input(args.input.as_deref())?;
    let output = OutputTarget::open(args.output.as_deref())?;
    let mut doc = Document::parse(&text);
    if args.strip_boilerplate {
        doc.strip_boilerplate();
    }

    let m = &args.model;
    if hub::is_gguf(&m.model) {
        return translate_with_chat(&args, &doc, output);
    }
    let started = Instant::now();
    let device = device::select_device(m.device)?;
    let dtype = device::select_dtype(m.dtype, &device);
    let hub_opts = hub::HubOptions::from_env(m.offline, !m.quiet);
    let files = hub::resolve(&m.model, &hub_opts)?;
    let precision = Precision {
        dtype,
        quantize: m.quantize.map(|q| q.format()),
    };
    let mut translator = Translator::load(&files, &device, precision)?;
    if let Some(n) = m.batch_size {
        translator.batch.sentences = n as usize;
    }
    if let Some(n) = m.batch_tokens {
        translator.batch.tokens = n as usize;
    }
    generation_overrides(&args.generation).apply(&mut translator.generation);
    if m.verbose {
        eprintln!(
            "tarjama: model {} ({}) on {} as {:?}, loaded in {:.2}s",
            files.name,
            files.source,
            device::describe(&device),
            dtype,
            started.elapsed().as_secs_f64()
        );
    }

    let started = Instant::now();
    let english = translator.translate_document(&doc, m.quiet)?;
    if m.verbose {
        eprintln!(
            "tarjama: translated {} sentences in {:.2}s",
            doc.sentence_count(),
            started.elapsed().as_secs_f64()
        );
    }
    output.finish(&english)
}

/// Translation with a chat model, a paragraph at a time; to stdout each paragraph is printed
/// as soon as it is translated.
fn translate_with_chat(args: &TranslateArgs, doc: &Document, output: OutputTarget) -> Result<()> {
    use tarjama::document::Paragraph;
    let m = &args.model;
    let device = device::select_device(m.device)?;
    let files = hub::resolve_gguf(&m.model, &hub::HubOptions::from_env(m.offline, !m.quiet))?;
    let mut chat = ChatPipeline::load(&files.weights, &device)?;
    let streaming = matches!(output, OutputTarget::Stdout);
    let mut stdout = std::io::stdout().lock();
    let mut english = String::new();
    let mut usage = tarjama::generate::llm::Generation::default();
    let started = Instant::now();
    for (i, paragraph) in doc.paragraphs.iter().enumerate() {
        let line = match paragraph {
            Paragraph::Blank => String::new(),
            Paragraph::Verbatim(text) => text.clone(),
            Paragraph::Text { sentences, .. } => {
                let g = chat.translate_paragraph(&sentences.join(" "), &mut |_| {})?;
                usage.add_counts(&g);
                g.text.replace('\n', " ")
            }
        };
        let last = i + 1 == doc.paragraphs.len();
        let newline = if !last || doc.trailing_newline {
            "\n"
        } else {
            ""
        };
        if streaming {
            write!(stdout, "{line}{newline}")
                .and_then(|_| stdout.flush())
                .map_err(|source| Error::Output {
                    path: "<stdout>".into(),
                    source,
                })?;
        }
        english.push_str(&line);
        english.push_str(newline);
    }
    if m.verbose {
        eprintln!(
            "tarjama: {} prompt tokens ({} of them cached from the previous paragraph) and {} generated tokens in {:.2}s",
            usage.prompt_tokens,
            usage.cached_prompt_tokens,
            usage.generated_tokens,
            started.elapsed().as_secs_f64()
        );
    }
    if streaming {
        Ok(())
    } else {
        output.finish(&english)
    }
}

fn summarize(args: SummarizeArgs) -> Result<()> {
    let length = match (args.sentences, args.words) {
        (Some(0), _) => return Err(Error::usage("--sentences must be at least 1")),
        (_, Some(0)) => return Err(Error::usage("--words must be at least 1")),
        (_, Some(words)) => SummaryLength::Words(words as usize),
        (Some(n), None) => SummaryLength::Sentences(n as usize),
        (None, None) => SummaryLength::Sentences(3),
    };
    let text = document::read_input(args.input.as_deref())?;
    let mut doc = Document::parse(&text);
    if !args.keep_boilerplate {
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
    if !document::contains_arabic(&text) && !args.quiet {
        eprintln!("tarjama: note: the input contains no Arabic text; summarizing it anyway");
    }

    if !hub::is_gguf(&args.model) {
        return summarize_with_seq2seq(&args, &paragraphs, length);
    }
    let started = Instant::now();
    let device = device::select_device(args.device)?;
    let hub_opts = hub::HubOptions::from_env(args.offline, !args.quiet);
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
        .unwrap_or(tarjama::cli::CHAT_REPETITION_PENALTY);
    if args.verbose {
        eprintln!(
            "tarjama: model {} ({}, {}) on {}, loaded in {:.2}s",
            files.name,
            files.source,
            chat.architecture(),
            device::describe(&device),
            started.elapsed().as_secs_f64()
        );
    }

    let json = args.format == "json";
    let stream = !json && (args.stream || (!args.no_stream && std::io::stdout().is_terminal()));
    let mut stdout = std::io::stdout().lock();
    let mut first = true;
    let mut on_text = |sentence: &str| {
        if stream {
            let sep = if std::mem::take(&mut first) { "" } else { " " };
            let _ = write!(stdout, "{sep}{sentence}");
            let _ = stdout.flush();
        }
    };
    let mut on_part = part_progress(args.quiet);
    let started = Instant::now();
    let summary = chat.summarize(&paragraphs, length, &mut on_text, &mut on_part)?;
    if args.verbose {
        eprintln!(
            "tarjama: {} prompt tokens ({} of them cached) and {} generated tokens in {:.2}s",
            summary.prompt_tokens,
            summary.cached_prompt_tokens,
            summary.generated_tokens,
            started.elapsed().as_secs_f64()
        );
    }
    let out = if json {
        serde_json::json!({
            "summary": summary.text,
            "model": files.name,
            "source": files.source,
            "prompt_tokens": summary.prompt_tokens,
            "cached_prompt_tokens": summary.cached_prompt_tokens,
            "generated_tokens": summary.generated_tokens,
        })
        .to_string()
            + "\n"
    } else if stream {
        "\n".to_string()
    } else {
        format!("{}\n", summary.text)
    };
    OutputTarget::Stdout.finish(&out)
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

/// Summaries with an encoder-decoder summarizer and a translator: an English summarizer reads
/// the translation, an Arabic one's summary is translated.
fn summarize_with_seq2seq(
    args: &SummarizeArgs,
    paragraphs: &[String],
    length: SummaryLength,
) -> Result<()> {
    let started = Instant::now();
    let device = device::select_device(args.device)?;
    let dtype = device::select_dtype(args.dtype, &device);
    let hub_opts = hub::HubOptions::from_env(args.offline, !args.quiet);
    let files = hub::resolve(&args.model, &hub_opts)?;
    let precision = Precision {
        dtype,
        quantize: args.quantize.map(|q| q.format()),
    };
    let mut core = Seq2Seq::load(&files, &device, precision)?;
    if let (Some(lang), tarjama::pipeline::Task::Summarization { .. }) =
        (&args.summarizer_reads, core.task)
    {
        core.task = tarjama::pipeline::Task::Summarization {
            source_english: lang == "en",
        };
    }
    let mut summarizer = Summarizer::new(core, usize::MAX)?;
    generation_overrides(&args.generation).apply(&mut summarizer.core_mut().generation);
    let translator_files = hub::resolve(&args.translator, &hub_opts)?;
    let translator =
        Translator::load(&translator_files, &device, precision).map_err(|e| match e {
            Error::Usage(msg) => Error::usage(format!("--translator: {msg}")),
            other => other,
        })?;
    if args.verbose {
        eprintln!(
            "tarjama: summarizer {} and translator {} on {}, loaded in {:.2}s",
            files.name,
            translator_files.name,
            device::describe(&device),
            started.elapsed().as_secs_f64()
        );
    }
    let mut on_part = part_progress(args.quiet);
    let started = Instant::now();
    let ArticleSummary {
        summary,
        translation,
    } = summarizer.summarize_article(
        &translator,
        paragraphs,
        length,
        args.show_translation,
        &mut on_part,
    )?;
    if args.verbose {
        eprintln!(
            "tarjama: summarized in {:.2}s",
            started.elapsed().as_secs_f64()
        );
    }
    let out = if args.format == "json" {
        let mut record = serde_json::json!({
            "summary": summary,
            "model": files.name,
            "source": files.source,
            "translator": translator_files.name,
        });
        if let Some(t) = &translation {
            record["translation"] = serde_json::json!(t.join("\n\n"));
        }
        record.to_string() + "\n"
    } else {
        match &translation {
            Some(t) => format!("{}\n\n{summary}\n", t.join("\n\n")),
            None => format!("{summary}\n"),
        }
    };
    OutputTarget::Stdout.finish(&out)
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

//! `tarjama translate`: one article or a whole archive, in text or JSON Lines.
//!
//! Inputs are read a chunk of lines at a time, so a 100 MB file is translated in bounded memory.
//! The sentences of consecutive chunks (of one file or of several small ones) are translated
//! together, which keeps batches full when an archive holds many short articles; results are
//! still written in input order.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use super::batch::{self, Destination, Next, Outcome, Outputs, Plan, Record, RunLog};
use crate::cli::{OutputFormat, TranslateArgs};
use crate::device;
use crate::document::Document;
use crate::generate::llm::Generation;
use crate::hub::{self, ModelFiles};
use crate::output::OutputTarget;
use crate::pipeline::{ChatPipeline, Progress, Translator};
use crate::{interrupt, Result};

/// Sentences gathered before a translation call, in batches: a few batches' worth lets the
/// batcher group sentences of similar length across chunks and small files, while little work is
/// lost to an interruption (files are written as their window completes).
const WINDOW_BATCHES: usize = 4;

/// Text held in the window at most, whatever its sentence count: lines without Arabic have no
/// sentences, and a long run of them must not pile up in memory.
const WINDOW_BYTES: usize = 1 << 20;

enum Engine {
    Seq2Seq(Box<Translator>),
    Chat(Box<ChatPipeline>, Generation),
}

pub fn run(args: TranslateArgs) -> Result<Outcome> {
    let plan = Plan::new(&args.batch, ".en.txt")?;
    let m = &args.model;
    // The outputs and what a resumed stream already holds are settled before the model loads,
    // so a bad or busy path fails at once.
    let (mut outputs, done_ids) = Outputs::open(&plan, args.batch.force)?;
    let mut records = batch::Records::new(&plan, &args.batch, &done_ids);
    let first = batch::read_single_ahead(&plan, &mut records)?;
    let mut log = RunLog::new(plan.many);
    if plan.destination == Destination::PerInput && !args.batch.force {
        let pending = plan
            .inputs
            .iter()
            .filter(|i| !i.output.as_ref().is_some_and(|o| o.exists()))
            .count();
        if pending == 0 {
            let quiet = Progress::hidden();
            plan.inputs.iter().for_each(|_| log.skipped(&quiet));
            return Ok(log.finish("translated", m.quiet));
        }
    }

    let started = Instant::now();
    let device = device::select_device(m.device)?;
    let (engine, files, kind) = if hub::is_gguf(&m.model) {
        let files = hub::resolve_gguf(&m.model, &hub::HubOptions::from_env(m.offline, !m.quiet))?;
        let chat = ChatPipeline::load(&files.weights, &device)?;
        let kind = chat.architecture().to_string();
        (
            Engine::Chat(Box::new(chat), Generation::default()),
            files,
            kind,
        )
    } else {
        let (translator, files, dtype) = super::load_translator(m, &args.generation, &device)?;
        (
            Engine::Seq2Seq(Box::new(translator)),
            files,
            format!("{dtype:?}"),
        )
    };
    if m.verbose {
        eprintln!(
            "tarjama: model {} ({}) on {} as {kind}, loaded in {:.2}s",
            files.name,
            files.source,
            device::describe(&device),
            started.elapsed().as_secs_f64()
        );
    }

    let progress = Progress::inputs(
        plan.inputs.len(),
        plan.total_bytes(),
        "translating",
        m.quiet,
    );
    let started = Instant::now();
    let mut run = Run {
        engine,
        files: &files,
        format: plan.format,
        strip_boilerplate: args.strip_boilerplate,
        outputs: &mut outputs,
        open: VecDeque::new(),
        window: Vec::new(),
        window_sentences: 0,
        sentences: 0,
        progress: &progress,
        log: &mut log,
    };
    let result = run.all(first.into_iter().chain(records));
    let (engine, sentences) = (run.engine, run.sentences);
    progress.finish();
    let closed = outputs.close(result.is_ok());
    result?;
    closed?;
    if m.verbose {
        report_times(&engine, sentences, started.elapsed().as_secs_f64());
    }
    Ok(log.finish("translated", m.quiet))
}

fn report_times(engine: &Engine, sentences: usize, seconds: f64) {
    match engine {
        Engine::Seq2Seq(t) => {
            let times = t.stage_times();
            eprintln!(
                "tarjama: translated {sentences} sentences in {seconds:.2}s: encode {:.2}s, decode {:.2}s",
                times.encode.as_secs_f64(),
                times.decode.as_secs_f64()
            );
        }
        Engine::Chat(_, usage) => eprintln!(
            "tarjama: {} prompt tokens ({} of them cached from the previous paragraph) and {} generated tokens in {seconds:.2}s",
            usage.prompt_tokens, usage.cached_prompt_tokens, usage.generated_tokens
        ),
    }
}

/// A record being translated: where its text goes, and its paragraphs for a JSON record.
struct OpenRecord {
    id: serde_json::Value,
    name: String,
    /// Its own file or stdout (text format); `None` when it goes to the JSON Lines stream.
    target: Option<OutputTarget>,
    source: Vec<String>,
    translation: Vec<String>,
    /// Set when reading it failed: its translated chunks are dropped.
    failed: bool,
    /// All its chunks are in the window.
    complete: bool,
}

/// A chunk of a record waiting in the window.
struct Chunk {
    record: usize,
    doc: Document,
    bytes: usize,
}

struct Run<'a> {
    engine: Engine,
    files: &'a ModelFiles,
    format: OutputFormat,
    strip_boilerplate: bool,
    outputs: &'a mut Outputs,
    /// Records with chunks still to write, in input order; the index in `Chunk::record` counts
    /// from the first record ever opened.
    open: VecDeque<(usize, OpenRecord)>,
    window: Vec<Chunk>,
    window_sentences: usize,
    sentences: usize,
    progress: &'a Progress,
    log: &'a mut RunLog,
}

impl Run<'_> {
    fn all(&mut self, records: impl Iterator<Item = Next>) -> Result<()> {
        let mut opened = 0;
        for next in records {
            interrupt::check()?;
            match next {
                Next::Done(_) => self.log.skipped(self.progress),
                Next::Failed(name, e) => self.log.failed(&name, e, self.progress)?,
                Next::Record(record) => {
                    self.read(opened, record)?;
                    opened += 1;
                }
            }
        }
        self.flush()
    }

    /// Reads a record's chunks into the window, translating whenever the window is full.
    fn read(&mut self, index: usize, mut record: Record) -> Result<()> {
        let target = match (&record.output, self.format) {
            (Some(path), _) => self.outputs.open_per_input(path).map(Some),
            (None, OutputFormat::Text) => Ok(Some(self.outputs.take_single())),
            (None, _) => Ok(None),
        };
        let target = match target {
            Ok(t) => t,
            Err(e) => return self.log.failed(&record.name, e, self.progress),
        };
        self.open.push_back((
            index,
            OpenRecord {
                id: record.id,
                name: record.name,
                target,
                source: Vec::new(),
                translation: Vec::new(),
                failed: false,
                complete: false,
            },
        ));
        loop {
            match record.reader.next_chunk() {
                Ok(Some(text)) => {
                    let mut doc = Document::parse(&text);
                    if self.strip_boilerplate {
                        doc.strip_boilerplate();
                    }
                    self.window_sentences += doc.sentence_count();
                    self.window.push(Chunk {
                        record: index,
                        doc,
                        bytes: text.len(),
                    });
                    // A chat model writes paragraph by paragraph, so it gets no window.
                    let window = match &self.engine {
                        Engine::Seq2Seq(t) => t.batch.sentences * WINDOW_BATCHES,
                        Engine::Chat(..) => 0,
                    };
                    let bytes: usize = self.window.iter().map(|c| c.bytes).sum();
                    if self.window_sentences >= window || bytes >= WINDOW_BYTES {
                        self.flush()?;
                    }
                }
                Ok(None) => {
                    self.record_mut(index).complete = true;
                    break;
                }
                Err(e) => {
                    let open = self.record_mut(index);
                    open.failed = true;
                    open.complete = true;
                    // Dropping the target deletes its temporary file.
                    open.target = None;
                    let name = open.name.clone();
                    self.log.failed(&name, e, self.progress)?;
                    break;
                }
            }
        }
        self.finish_records()
    }

    fn record_mut(&mut self, index: usize) -> &mut OpenRecord {
        let (_, record) = self
            .open
            .iter_mut()
            .find(|(i, _)| *i == index)
            .expect("chunks belong to open records");
        record
    }

    /// Translates every chunk in the window and writes the results.
    fn flush(&mut self) -> Result<()> {
        let window = std::mem::take(&mut self.window);
        self.window_sentences = 0;
        if window.is_empty() {
            return self.finish_records();
        }
        let failed: HashSet<usize> = self
            .open
            .iter()
            .filter(|(_, r)| r.failed)
            .map(|(i, _)| *i)
            .collect();
        match &self.engine {
            Engine::Seq2Seq(translator) => {
                let sentences: Vec<&str> = window
                    .iter()
                    .filter(|c| !failed.contains(&c.record))
                    .flat_map(|c| c.doc.sentences())
                    .collect();
                let mut translated = translator
                    .translate_sentences(&sentences, self.progress)?
                    .into_iter();
                self.sentences += sentences.len();
                for chunk in window {
                    let record = self.record_mut(chunk.record);
                    if record.failed {
                        continue;
                    }
                    let mine: Vec<String> = translated
                        .by_ref()
                        .take(chunk.doc.sentence_count())
                        .collect();
                    let text = chunk.doc.reassemble(&mine);
                    write_chunk(record, &chunk.doc, &text)?;
                    self.progress.advance_bytes(chunk.bytes);
                }
            }
            Engine::Chat(..) => {
                for chunk in window {
                    if failed.contains(&chunk.record) {
                        continue;
                    }
                    self.translate_chunk_with_chat(&chunk)?;
                    self.progress.advance_bytes(chunk.bytes);
                }
            }
        }
        self.finish_records()
    }

    /// A chat model translates a paragraph at a time; each is written as soon as it is done, so
    /// on stdout the translation appears as it is made.
    fn translate_chunk_with_chat(&mut self, chunk: &Chunk) -> Result<()> {
        let Engine::Chat(chat, usage) = &mut self.engine else {
            unreachable!("called for chat models only")
        };
        let paragraphs = &chunk.doc.paragraphs;
        let (_, record) = self
            .open
            .iter_mut()
            .find(|(i, _)| *i == chunk.record)
            .expect("chunks belong to open records");
        for (i, paragraph) in paragraphs.iter().enumerate() {
            interrupt::check()?;
            let sentences = paragraph.sentences();
            let line = if sentences.is_empty() {
                paragraph.source().to_string()
            } else {
                let g = chat.translate_paragraph(&sentences.join(" "), &mut |_| {})?;
                usage.add_counts(&g);
                self.progress.advance(sentences.len());
                self.sentences += sentences.len();
                g.text.replace('\n', " ")
            };
            let last = i + 1 == paragraphs.len();
            let newline = if !last || chunk.doc.trailing_newline {
                "\n"
            } else {
                ""
            };
            let one = Document {
                paragraphs: vec![paragraph.clone()],
                trailing_newline: !newline.is_empty(),
            };
            write_chunk(record, &one, &format!("{line}{newline}"))?;
        }
        Ok(())
    }

    /// Commits the records at the front whose chunks are all written, in input order. A failed
    /// record stays open until its chunks have left the window too: `flush` looks each chunk's
    /// record up and keeps the translated sentences aligned by skipping failed ones.
    fn finish_records(&mut self) -> Result<()> {
        while self
            .open
            .front()
            .is_some_and(|(index, r)| r.complete && !self.window.iter().any(|c| c.record == *index))
        {
            let (_, record) = self.open.pop_front().expect("checked above");
            if record.failed {
                continue;
            }
            match record.target {
                Some(target) => {
                    if let Err(e) = target.commit() {
                        self.log.failed(&record.name, e, self.progress)?;
                        continue;
                    }
                }
                None => {
                    let line = serde_json::json!({
                        "id": record.id,
                        "source": record.source,
                        "target": record.translation,
                        "model": self.files.name,
                        "revision": self.files.revision(),
                    });
                    self.outputs.write_record(&line)?;
                }
            }
            self.log.done(self.progress);
        }
        Ok(())
    }
}

/// Writes a translated chunk to its record's file, or keeps its paragraphs for the JSON record.
fn write_chunk(record: &mut OpenRecord, doc: &Document, text: &str) -> Result<()> {
    match &mut record.target {
        Some(target) => target.write(text),
        None => {
            // `reassemble` writes one line per paragraph, so lines pair up with paragraphs.
            for (paragraph, line) in doc.paragraphs.iter().zip(text.split('\n')) {
                if !paragraph.source().trim().is_empty() {
                    record.source.push(paragraph.source().to_string());
                    record.translation.push(line.to_string());
                }
            }
            Ok(())
        }
    }
}

//! `tarjama translate`: one article or a whole archive, in text or JSON Lines.
//!
//! Inputs are read a chunk of lines at a time, so a 100 MB file is translated in bounded memory.
//! The sentences of consecutive chunks (of one file or of several small ones) are translated
//! together, which keeps batches full when an archive holds many short articles; results are
//! still written in input order. From a pipe, what has arrived is translated as soon as the
//! writer pauses (see `document::Source`), so each record or paragraph comes out when it is done.

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use super::batch::{self, Destination, Next, Outcome, Plan, Record, RunLog, Sink};
use crate::cli::{OutputFormat, TranslateArgs};
use crate::document::Document;
use crate::output::OutputTarget;
use crate::pipeline::{Engine, EngineSpec, OutputRecord, Progress, Purpose};
use crate::{interrupt, Result};

/// Sentences gathered before a translation call, in batches: a few batches' worth lets the
/// batcher group sentences of similar length across chunks and small files, while little work is
/// lost to an interruption (files are written as their window completes).
const WINDOW_BATCHES: usize = 4;

/// Text held in the window at most, whatever its sentence count: lines without Arabic have no
/// sentences, and a long run of them must not pile up in memory.
const WINDOW_BYTES: usize = 1 << 20;

pub fn run(args: TranslateArgs) -> Result<Outcome> {
    let plan = Plan::new(&args.batch, ".en.txt")?;
    let rt = &args.runtime;
    // The outputs and what a resumed stream already holds are settled before the model loads,
    // so a bad or busy path fails at once.
    let (mut sink, done_ids) = Sink::open(&plan, args.batch.force)?;
    let mut records = batch::Records::new(&plan, &args.batch, &done_ids);
    let first = batch::read_single_ahead(&plan, &mut records)?;
    let mut log = RunLog::new(&plan);
    if plan.inputs.is_empty() {
        // A shard given none of the files: nothing to load a model for.
        sink.close(true)?;
        return Ok(log.finish("translated", rt.quiet));
    }
    if plan.destination == Destination::PerInput && !args.batch.force {
        let pending = plan
            .inputs
            .iter()
            .filter(|i| !i.output.as_ref().is_some_and(|o| o.exists()))
            .count();
        if pending == 0 {
            let quiet = Progress::hidden();
            plan.inputs.iter().for_each(|_| log.skipped(&quiet));
            return Ok(log.finish("translated", rt.quiet));
        }
    }

    let started = Instant::now();
    let spec = EngineSpec {
        model: args.model.model.clone(),
        purpose: Purpose::Translate,
    };
    let engine = Engine::load(
        &spec,
        &super::engine_options(Some(&args.model), &args.generation, None),
        &super::runtime(rt)?,
    )?;
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
        "translating",
        rt.quiet,
    );
    let started = Instant::now();
    let mut run = Run {
        engine,
        format: plan.format,
        strip_boilerplate: args.strip_boilerplate,
        sink: &mut sink,
        open: VecDeque::new(),
        window: Vec::new(),
        window_sentences: 0,
        progress: &progress,
        log: &mut log,
    };
    let result = run.all(first, &mut records);
    let engine = run.engine;
    progress.finish();
    let closed = sink.close(result.is_ok());
    result?;
    closed?;
    if rt.verbose {
        eprintln!(
            "tarjama: translated {}",
            engine.report(started.elapsed().as_secs_f64())
        );
    }
    Ok(log.finish("translated", rt.quiet))
}

/// A record being translated: where its text goes, and its paragraphs for a JSON record.
struct OpenRecord {
    id: serde_json::Value,
    name: String,
    /// Its own file or stdout (text format); `None` when it goes to the JSON Lines stream.
    target: Option<OutputTarget>,
    /// Input fields passed through to its JSON record.
    fields: serde_json::Map<String, serde_json::Value>,
    arabic: Vec<String>,
    english: Vec<String>,
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
    format: OutputFormat,
    strip_boilerplate: bool,
    sink: &'a mut Sink,
    /// Records with chunks still to write, in input order; the index in `Chunk::record` counts
    /// from the first record ever opened.
    open: VecDeque<(usize, OpenRecord)>,
    window: Vec<Chunk>,
    window_sentences: usize,
    progress: &'a Progress,
    log: &'a mut RunLog,
}

impl Run<'_> {
    fn all(&mut self, first: Option<Next>, records: &mut batch::Records) -> Result<()> {
        let mut opened = 0;
        let mut first = first;
        loop {
            // Records from a pipe that has sent no more yet are translated now, not when the
            // window fills: a co-process waits for them.
            if !self.window.is_empty() && first.is_none() && !records.ready() {
                self.flush()?;
            }
            let Some(next) = first.take().or_else(|| records.next()) else {
                break;
            };
            interrupt::check()?;
            match next {
                Next::Done(_) => self.log.skipped(self.progress),
                Next::OtherShard(bytes) => self.log.other_shard(bytes, self.progress),
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
            (Some(path), _) => self.sink.open_per_input(path).map(Some),
            (None, OutputFormat::Text) => Ok(Some(self.sink.take_single())),
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
                fields: record.fields,
                target,
                arabic: Vec::new(),
                english: Vec::new(),
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
                    let window = self.engine.batch_sentences() * WINDOW_BATCHES;
                    let bytes: usize = self.window.iter().map(|c| c.bytes).sum();
                    // From a pipe, each paragraph is translated once no more has come.
                    if self.window_sentences >= window
                        || bytes >= WINDOW_BYTES
                        || !record.reader.ready()
                    {
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
        let live: Vec<&Chunk> = window
            .iter()
            .filter(|c| !failed.contains(&c.record))
            .collect();
        let docs: Vec<&Document> = live.iter().map(|c| &c.doc).collect();
        let (open, progress) = (&mut self.open, self.progress);
        self.engine.translate(&docs, progress, &mut |t| {
            let chunk = live[t.doc];
            let (_, record) = open
                .iter_mut()
                .find(|(i, _)| *i == chunk.record)
                .expect("chunks belong to open records");
            write_chunk(record, t.part, t.text)?;
            if t.last {
                progress.advance_bytes(chunk.bytes);
            }
            Ok(())
        })?;
        self.finish_records()?;
        self.sink.sync()
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
                    let mut line = OutputRecord::new(record.id, "translate", &self.engine);
                    line.arabic = Some(record.arabic);
                    line.english = Some(record.english);
                    self.sink.write_record(&line.with_fields(record.fields))?;
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
                    record.arabic.push(paragraph.source().to_string());
                    record.english.push(line.to_string());
                }
            }
            Ok(())
        }
    }
}

//! The queue in front of the model, and the one thread that owns it.
//!
//! Requests are cut into pieces of at most a batch's sentences (runs of whole paragraphs, or
//! part of one long paragraph) and the worker fills each [`Engine::translate`] call with pieces
//! taken in turn from every waiting request, one piece per request per round: requests that
//! arrive together are decoded together, and a long request shares each call with the short
//! ones that came after it instead of holding them back until it is done. A piece's English is
//! put back in its place, so each request's answer is the same text the command line makes of it.
//!
//! The engine is `&mut` and CPU-bound, so it lives on a thread of its own, never on the async
//! executor; requests reach it through a channel and their answers come back on a oneshot.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::metrics::Metrics;
use crate::document::{Document, Paragraph};
use crate::pipeline::{Engine, Progress, SummaryLength};

/// How long an idle worker waits, once a request arrives, for others on their way to join its
/// batch. It waits only while another request is being read: a lone client pays nothing.
const GATHER: Duration = Duration::from_millis(5);

/// What the worker threads share with the handlers.
pub struct Shared {
    pub metrics: Arc<Metrics>,
    /// Translation requests being read and checked, not yet in the queue.
    pub arriving: Arc<AtomicUsize>,
    /// Summaries are checked against their articles.
    pub check_summaries: bool,
}

/// Counts a translation request as arriving until it is dropped (once it is queued, or
/// refused).
pub struct Arriving(Arc<AtomicUsize>);

impl Arriving {
    pub fn new(counter: &Arc<AtomicUsize>) -> Arriving {
        counter.fetch_add(1, Ordering::SeqCst);
        Arriving(counter.clone())
    }
}

impl Drop for Arriving {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a job's sender gets: one result per text, or why they failed.
pub type Reply<T> = Result<Vec<T>, String>;

/// Texts to translate, one [`Document`] each.
pub struct TranslateJob {
    pub docs: Vec<Document>,
    pub reply: oneshot::Sender<Reply<String>>,
    /// The request's place in the queue, given back when the job is done or dropped.
    pub permit: OwnedSemaphorePermit,
}

/// Articles to summarize, each as its paragraphs.
pub struct SummarizeJob {
    pub articles: Vec<Vec<String>>,
    pub length: SummaryLength,
    pub reply: oneshot::Sender<Reply<String>>,
    pub permit: OwnedSemaphorePermit,
}

/// How a piece of a text follows the piece before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// On a new line: it starts with a paragraph.
    Line,
    /// On the same line, after a space: it continues a paragraph cut between sentences.
    Space,
}

/// Cuts `doc` into pieces of at most `max` sentences: runs of whole paragraphs, and a paragraph
/// of more sentences cut between sentences when `cut_paragraphs` (a chat model translates a
/// paragraph in one prompt, so its paragraphs stay whole). Pieces have no trailing newline.
fn pieces(doc: &Document, max: usize, cut_paragraphs: bool) -> Vec<(Join, Document)> {
    let mut out: Vec<(Join, Document)> = Vec::new();
    let mut current: Vec<Paragraph> = Vec::new();
    let mut sentences = 0;
    let piece = |paragraphs: Vec<Paragraph>| Document {
        paragraphs,
        trailing_newline: false,
    };
    for paragraph in &doc.paragraphs {
        let n = paragraph.sentences().len();
        if !current.is_empty() && sentences + n > max {
            out.push((Join::Line, piece(std::mem::take(&mut current))));
            sentences = 0;
        }
        if n > max && cut_paragraphs {
            for (i, part) in paragraph.sentences().chunks(max).enumerate() {
                let text = Paragraph::Text {
                    source: part.join(" "),
                    sentences: part.to_vec(),
                };
                let join = if i == 0 { Join::Line } else { Join::Space };
                out.push((join, piece(vec![text])));
            }
            continue;
        }
        current.push(paragraph.clone());
        sentences += n;
    }
    if !current.is_empty() {
        out.push((Join::Line, piece(current)));
    }
    out
}

/// Puts a text's translated pieces back together, as [`Document::reassemble`] joins lines and
/// sentences.
fn assemble(parts: &[(Join, String)], trailing_newline: bool) -> String {
    let mut out = String::new();
    for (i, (join, text)) in parts.iter().enumerate() {
        match join {
            _ if i == 0 => {}
            Join::Line => out.push('\n'),
            Join::Space if out.is_empty() || out.ends_with('\n') || text.is_empty() => {}
            Join::Space => out.push(' '),
        }
        out.push_str(text);
    }
    if trailing_newline {
        out.push('\n');
    }
    out
}

/// A request the worker is translating.
struct Active {
    /// Pieces not yet translated: (text, piece index, piece).
    todo: VecDeque<(usize, usize, Document)>,
    /// Each text's pieces: how it joins the one before, and its English once made.
    parts: Vec<Vec<(Join, Option<String>)>>,
    trailing: Vec<bool>,
    /// Pieces sent to the engine and not yet back.
    pending: usize,
    reply: Option<oneshot::Sender<Reply<String>>>,
    /// Given back before the answer is sent, so that a client that has its answer finds its
    /// place free.
    permit: Option<OwnedSemaphorePermit>,
}

impl Active {
    fn new(job: TranslateJob, max: usize, cut_paragraphs: bool) -> Active {
        let mut active = Active {
            todo: VecDeque::new(),
            parts: Vec::with_capacity(job.docs.len()),
            trailing: job.docs.iter().map(|d| d.trailing_newline).collect(),
            pending: 0,
            reply: Some(job.reply),
            permit: Some(job.permit),
        };
        for (t, doc) in job.docs.iter().enumerate() {
            let mut parts = Vec::new();
            for (p, (join, piece)) in pieces(doc, max, cut_paragraphs).into_iter().enumerate() {
                if piece.sentence_count() == 0 {
                    // Blank and verbatim lines need no model.
                    parts.push((join, Some(piece.reassemble(&[]))));
                } else {
                    parts.push((join, None));
                    active.todo.push_back((t, p, piece));
                }
            }
            active.parts.push(parts);
        }
        active
    }

    fn abandoned(&self) -> bool {
        self.reply.as_ref().is_none_or(|r| r.is_closed())
    }

    fn done(&self) -> bool {
        self.todo.is_empty() && self.pending == 0
    }

    /// Sends the answer once every piece is back.
    fn finish(&mut self) {
        let texts = self
            .parts
            .iter()
            .zip(&self.trailing)
            .map(|(parts, &trailing)| {
                let parts: Vec<(Join, String)> = parts
                    .iter()
                    .map(|(j, t)| (*j, t.clone().unwrap_or_default()))
                    .collect();
                assemble(&parts, trailing)
            })
            .collect();
        self.permit.take();
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Ok(texts));
        }
    }

    fn fail(&mut self, why: &str) {
        self.permit.take();
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(Err(why.to_string()));
        }
    }
}

/// Runs the translation worker until every sender of `jobs` is gone and the queue is empty.
pub fn translate_worker(mut engine: Engine, jobs: Receiver<TranslateJob>, shared: Shared) {
    let metrics = shared.metrics;
    // A chat model gains nothing from batching: it gets one piece (a paragraph) per call, so
    // requests take turns a paragraph at a time.
    let chat = engine.batch_sentences() == 0;
    let cap = engine.batch_sentences().max(1);
    let mut active: VecDeque<Active> = VecDeque::new();
    let admit = |active: &mut VecDeque<Active>, job: TranslateJob| {
        active.push_back(Active::new(job, cap, !chat));
    };
    loop {
        if active.is_empty() {
            let Ok(job) = jobs.recv() else { return };
            admit(&mut active, job);
            // Requests sent together arrive a little apart: while others are being read, wait
            // a moment for them to join.
            let until = Instant::now() + GATHER;
            while active.iter().map(|a| a.todo.len()).sum::<usize>() < cap {
                let left = until.saturating_duration_since(Instant::now());
                if shared.arriving.load(Ordering::SeqCst) == 0 || left.is_zero() {
                    break;
                }
                match jobs.recv_timeout(left.min(Duration::from_micros(500))) {
                    Ok(job) => admit(&mut active, job),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        while let Ok(job) = jobs.try_recv() {
            admit(&mut active, job);
        }
        // Requests whose client gave up (timed out, disconnected) are not translated.
        active.retain(|a| !a.abandoned());
        for a in active.iter_mut().filter(|a| a.done()) {
            a.finish();
        }
        active.retain(|a| !a.done());
        if active.is_empty() {
            continue;
        }

        // One piece from each request in turn, while they fit.
        let mut batch: Vec<(usize, usize, usize, Document)> = Vec::new();
        let mut sentences = 0;
        'fill: loop {
            let mut took = false;
            for (j, a) in active.iter_mut().enumerate() {
                let Some((_, _, piece)) = a.todo.front() else {
                    continue;
                };
                let n = piece.sentence_count();
                if !batch.is_empty() && sentences + n > cap {
                    break 'fill;
                }
                let (t, p, piece) = a.todo.pop_front().expect("checked above");
                a.pending += 1;
                sentences += n;
                batch.push((j, t, p, piece));
                took = true;
            }
            if !took {
                break;
            }
        }
        let requests = {
            let mut js: Vec<usize> = batch.iter().map(|b| b.0).collect();
            js.sort_unstable();
            js.dedup();
            js.len()
        };

        let docs: Vec<&Document> = batch.iter().map(|b| &b.3).collect();
        let mut english: Vec<String> = vec![String::new(); docs.len()];
        let started = Instant::now();
        let result = guarded("translate", || {
            engine.translate(&docs, &Progress::hidden(), &mut |t| {
                english[t.doc].push_str(t.text);
                Ok(())
            })
        });
        metrics.batch(sentences, requests, started.elapsed());
        let failure = result.err();
        for ((j, t, p, _), text) in batch.into_iter().zip(english) {
            let a = &mut active[j];
            a.pending -= 1;
            match &failure {
                Some(why) => a.fail(why),
                None => a.parts[t][p].1 = Some(text),
            }
        }
        if let Some(why) = &failure {
            metrics.engine_error();
            eprintln!("tarjama: {why}");
        }
        active.retain(|a| a.reply.is_some());
        // The next batch starts with the next request, so none is always first.
        active.rotate_left(1.min(active.len()));
    }
}

/// Runs the summarization worker: one article at a time, in order of arrival.
pub fn summarize_worker(mut engine: Engine, jobs: Receiver<SummarizeJob>, shared: Shared) {
    let metrics = shared.metrics;
    while let Ok(job) = jobs.recv() {
        if job.reply.is_closed() {
            continue;
        }
        let started = Instant::now();
        let reply = guarded("summarize", || {
            job.articles
                .iter()
                .map(|paragraphs| {
                    engine
                        .summarize(
                            paragraphs,
                            job.length,
                            shared.check_summaries,
                            &mut |_| {},
                            &mut |_, _| {},
                        )
                        .map(|s| s.text)
                })
                .collect::<crate::Result<Vec<String>>>()
        });
        metrics.summaries(job.articles.len(), started.elapsed());
        if let Err(why) = &reply {
            metrics.engine_error();
            eprintln!("tarjama: {why}");
        }
        drop(job.permit);
        let _ = job.reply.send(reply);
    }
}

/// Runs an engine call for the workers: an error becomes the client's one-line message, and a
/// panic inside the model is caught, so that one bad request cannot stop the worker.
fn guarded<T>(task: &str, call: impl FnOnce() -> crate::Result<T>) -> Result<T, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("Cannot {task} text: {}", e.one_line())),
        Err(_) => Err(format!(
            "Cannot {task} text: the model failed (a bug: see the server's log)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces translated as the identity: sentences come back as they are.
    fn roundtrip(text: &str, max: usize) -> String {
        let doc = Document::parse(text);
        let parts: Vec<(Join, String)> = pieces(&doc, max, true)
            .into_iter()
            .map(|(j, piece)| {
                let same: Vec<String> = piece.sentences().map(str::to_string).collect();
                (j, piece.reassemble(&same))
            })
            .collect();
        assemble(&parts, doc.trailing_newline)
    }

    #[test]
    fn pieces_put_back_together_are_the_document_reassembled() {
        let text = "قال الرئيس. ثم غادر. وعاد!\n\n2024\nمرحبا بكم. شكرا.\n";
        let doc = Document::parse(text);
        let same: Vec<String> = doc.sentences().map(str::to_string).collect();
        let whole = doc.reassemble(&same);
        for max in 1..6 {
            assert_eq!(roundtrip(text, max), whole, "max {max}");
        }
        assert_eq!(roundtrip("", 2), "");
        assert_eq!(roundtrip("\n", 2), Document::parse("\n").reassemble(&[]));
    }

    #[test]
    fn a_long_paragraph_is_cut_between_sentences() {
        let doc = Document::parse(
            "قال الرئيس كلاما. ثم غادر القاعة. وعاد بعد ساعة. وتحدث مجددا. ثم انتهى الاجتماع.",
        );
        assert_eq!(doc.sentence_count(), 5);
        let cut = pieces(&doc, 2, true);
        let joins: Vec<Join> = cut.iter().map(|p| p.0).collect();
        assert_eq!(joins, [Join::Line, Join::Space, Join::Space]);
        assert_eq!(
            pieces(&doc, 2, false).len(),
            1,
            "a chat model's paragraph stays whole"
        );
        assert_eq!(
            assemble(
                &[
                    (Join::Line, "a".into()),
                    (Join::Space, String::new()),
                    (Join::Space, "b".into())
                ],
                false
            ),
            "a b"
        );
    }
}

//! One engine for every surface: loads "a model" (an encoder-decoder translator, an
//! encoder-decoder summarizer with its translator, or a GGUF chat model) and translates or
//! summarizes with it. Commands (and later the service and cluster workers) hold an [`Engine`]
//! and never branch on the kind of model; a setting the loaded model cannot honour is refused
//! at load, naming its flag, instead of being dropped.

use std::time::Duration;

use candle_core::Device;

use super::{
    ChatPipeline, GenerationOverrides, Progress, Seq2Seq, Summarizer, SummaryLength, Task,
    Translator,
};
use crate::device::{self, DTypeChoice, Precision, QuantizeChoice};
use crate::document::Document;
use crate::faithful::CheckReport;
use crate::generate::llm::Generation;
use crate::hub::{self, HubOptions, ModelFiles, DEFAULT_TRANSLATOR};
use crate::{interrupt, Error, Result};

/// Where and how models run: what every command shares.
pub struct Runtime {
    pub device: Device,
    pub dtype: DTypeChoice,
    pub quantize: Option<QuantizeChoice>,
    pub hub: HubOptions,
}

/// What to load.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    /// A preset, Hub repo id, local directory, or GGUF file / `owner/repo:file.gguf`.
    pub model: String,
    pub purpose: Purpose,
}

#[derive(Debug, Clone)]
pub enum Purpose {
    Translate,
    /// An encoder-decoder summarizer also loads a translator (`None`: the default one), reads
    /// English or Arabic (`None`: what its preset or architecture says), and can keep the
    /// English translation of the article it summarizes.
    Summarize {
        translator: Option<String>,
        reads: Option<String>,
        with_translation: bool,
    },
}

/// Settings given by the user; `None` keeps the model's own. Each names the command-line flag
/// that sets it, which is what an error about it names.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    pub generation: GenerationOverrides,
    pub batch_sentences: Option<usize>,
    pub batch_tokens: Option<usize>,
    pub chat: ChatOptions,
}

/// Decoding settings of chat models.
#[derive(Debug, Clone, Default)]
pub struct ChatOptions {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
    pub max_tokens: Option<usize>,
}

/// What an engine has done so far: sentences, the chat models' token counts, and the
/// encoder-decoders' stage times.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub sentences: usize,
    pub prompt_tokens: usize,
    pub cached_prompt_tokens: usize,
    pub generated_tokens: usize,
    pub encode: Duration,
    pub decode: Duration,
}

/// One article's summary.
pub struct Summary {
    pub text: String,
    /// The English translation of the article's paragraphs, when asked for and made.
    pub translation: Option<Vec<String>>,
    /// A chat model's token counts for this summary.
    pub tokens: Option<Generation>,
    /// The support check of the summary's sentences, when it ran.
    pub check: Option<CheckReport>,
}

/// A piece of translated output: `text` is the English of `part` (one line per paragraph),
/// which belongs to document `doc` of the call; `last` says the document is complete.
pub struct Translated<'a> {
    pub doc: usize,
    pub part: &'a Document,
    pub text: &'a str,
    pub last: bool,
}

enum Loaded {
    Translator(Box<Translator>),
    Summarizer {
        summarizer: Box<Summarizer>,
        translator: Box<Translator>,
        translator_files: Box<ModelFiles>,
    },
    Chat(Box<ChatPipeline>),
}

/// A loaded model, ready to translate or summarize.
pub struct Engine {
    loaded: Loaded,
    files: ModelFiles,
    device: Device,
    /// The weights' type (encoder-decoders) or the architecture (chat models).
    kind: String,
    /// Summaries keep the English translation an encoder-decoder summarizer works from.
    with_translation: bool,
    usage: Usage,
}

impl Engine {
    /// Resolves the model (cache, Hub or local files) and loads it. Settings the model cannot
    /// honour are usage errors naming their flag.
    pub fn load(spec: &EngineSpec, options: &EngineOptions, runtime: &Runtime) -> Result<Engine> {
        if hub::is_gguf(&spec.model) {
            return Self::load_chat(spec, options, runtime);
        }
        refuse_chat_options(&options.chat, &spec.model)?;
        let dtype = device::select_dtype(runtime.dtype, &runtime.device);
        let precision = Precision {
            dtype,
            quantize: runtime.quantize.map(|q| q.format()),
        };
        let files = hub::resolve(&spec.model, &runtime.hub)?;
        let loaded = match &spec.purpose {
            Purpose::Translate => {
                let mut translator = Translator::load(&files, &runtime.device, precision)?;
                apply_batch_limits(&mut translator, options);
                options.generation.apply(&mut translator.generation);
                Loaded::Translator(Box::new(translator))
            }
            Purpose::Summarize {
                translator, reads, ..
            } => {
                let mut core = Seq2Seq::load(&files, &runtime.device, precision)?;
                if let (Some(lang), Task::Summarization { .. }) = (reads, core.task) {
                    core.task = Task::Summarization {
                        source_english: lang == "en",
                    };
                }
                let mut summarizer = Summarizer::new(core, usize::MAX)?;
                options
                    .generation
                    .apply(&mut summarizer.core_mut().generation);
                let spec = translator.as_deref().unwrap_or(DEFAULT_TRANSLATOR);
                let translator_files = hub::resolve(spec, &runtime.hub)?;
                let mut translator =
                    Translator::load(&translator_files, &runtime.device, precision).map_err(
                        |e| match e {
                            Error::Usage(msg) => Error::usage(format!("--translator: {msg}")),
                            other => other,
                        },
                    )?;
                apply_batch_limits(&mut translator, options);
                Loaded::Summarizer {
                    summarizer: Box::new(summarizer),
                    translator: Box::new(translator),
                    translator_files: Box::new(translator_files),
                }
            }
        };
        let with_translation = matches!(
            spec.purpose,
            Purpose::Summarize {
                with_translation: true,
                ..
            }
        );
        let int8 = match &loaded {
            Loaded::Translator(t) => t.int8_origin(),
            Loaded::Summarizer { summarizer, .. } => summarizer.core().int8_origin(),
            Loaded::Chat(_) => None,
        };
        let kind = match int8 {
            Some(int8) => format!("{dtype:?}, {int8}"),
            None => format!("{dtype:?}"),
        };
        Ok(Engine {
            with_translation,
            loaded,
            files,
            device: runtime.device.clone(),
            kind,
            usage: Usage::default(),
        })
    }

    fn load_chat(spec: &EngineSpec, options: &EngineOptions, runtime: &Runtime) -> Result<Engine> {
        let model = &spec.model;
        let g = &options.generation;
        let ignored = [
            ("--beams", g.num_beams.is_some()),
            ("--max-length", g.max_length.is_some()),
            ("--min-length", g.min_length.is_some()),
            ("--length-penalty", g.length_penalty.is_some()),
            ("--no-repeat-ngram-size", g.no_repeat_ngram_size.is_some()),
            ("--batch-size", options.batch_sentences.is_some()),
            ("--batch-tokens", options.batch_tokens.is_some()),
            ("--dtype", runtime.dtype != DTypeChoice::Auto),
            ("--quantize", runtime.quantize.is_some()),
        ];
        if let Some((flag, _)) = ignored.iter().find(|(_, given)| *given) {
            return Err(Error::usage(format!(
                "{flag} applies to encoder-decoder models, and {model} is a GGUF chat model \
                 (already quantized, one paragraph at a time, greedy unless --temperature): remove {flag}"
            )));
        }
        if let Purpose::Summarize {
            translator,
            reads,
            with_translation,
        } = &spec.purpose
        {
            let given = [
                ("--translator", translator.is_some()),
                ("--summarizer-reads", reads.is_some()),
                ("--show-translation", *with_translation),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                return Err(Error::usage(format!(
                    "{flag} applies to encoder-decoder summarizers, which work through a translation; \
                     the chat model {model} reads the Arabic itself: remove {flag}"
                )));
            }
        }
        let files = hub::resolve_gguf(model, &runtime.hub)?;
        let mut chat = ChatPipeline::load(&files.weights, &runtime.device)?;
        let c = &options.chat;
        let s = &mut chat.settings;
        s.temperature = c.temperature.unwrap_or(s.temperature);
        s.top_p = c.top_p.or(s.top_p);
        s.seed = c.seed.unwrap_or(s.seed);
        s.max_new_tokens = c.max_tokens.unwrap_or(s.max_new_tokens);
        if let Some(p) = g.repetition_penalty {
            s.repetition_penalty = p;
        }
        let kind = match chat.in_place_bytes() {
            0 => chat.architecture().to_string(),
            bytes => format!(
                "{}, {} MB of weights read where the file is mapped",
                chat.architecture(),
                bytes.div_ceil(1 << 20)
            ),
        };
        Ok(Engine {
            with_translation: false,
            loaded: Loaded::Chat(Box::new(chat)),
            files,
            device: runtime.device.clone(),
            kind,
            usage: Usage::default(),
        })
    }

    /// The model's files: its name, where it came from, its revision.
    pub fn files(&self) -> &ModelFiles {
        &self.files
    }

    /// The translator an encoder-decoder summarizer uses.
    pub fn translator_files(&self) -> Option<&ModelFiles> {
        match &self.loaded {
            Loaded::Summarizer {
                translator_files, ..
            } => Some(translator_files),
            _ => None,
        }
    }

    /// Whether this is a GGUF chat model.
    pub fn is_chat(&self) -> bool {
        matches!(self.loaded, Loaded::Chat(_))
    }

    /// One line: the model, where it came from, the device and the weights' type or
    /// architecture (and the translator of an encoder-decoder summarizer).
    pub fn describe(&self) -> String {
        let mut line = format!(
            "model {} ({}) on {} as {}",
            self.files.name,
            self.files.source,
            device::describe(&self.device),
            self.kind
        );
        if let Some(t) = self.translator_files() {
            line.push_str(&format!(", with translator {}", t.name));
        }
        line
    }

    /// What the engine has done since it was loaded.
    pub fn usage(&self) -> Usage {
        let mut usage = self.usage.clone();
        let stages = match &self.loaded {
            Loaded::Translator(t) => vec![t.stage_times()],
            Loaded::Summarizer {
                summarizer,
                translator,
                ..
            } => vec![summarizer.core().stage_times(), translator.stage_times()],
            Loaded::Chat(_) => vec![],
        };
        for s in stages {
            usage.encode += s.encode;
            usage.decode += s.decode;
        }
        usage
    }

    /// One line of timings or token counts for `--verbose`, after `seconds` of work.
    pub fn report(&self, seconds: f64) -> String {
        let u = self.usage();
        if self.is_chat() {
            // A chat summarizer reads whole articles: it has no sentences to count.
            let sentences = match u.sentences {
                0 => String::new(),
                n => format!("{n} sentences, "),
            };
            format!(
                "{sentences}{} prompt tokens ({} of them cached from an earlier prompt) and {} generated tokens in {seconds:.2}s",
                u.prompt_tokens, u.cached_prompt_tokens, u.generated_tokens
            )
        } else {
            format!(
                "{} sentences in {seconds:.2}s: encode {:.2}s, decode {:.2}s",
                u.sentences,
                u.encode.as_secs_f64(),
                u.decode.as_secs_f64()
            )
        }
    }

    /// Sentences worth gathering from many documents before [`Engine::translate`]: batches
    /// then hold sentences of similar length. 0 for a chat model, which goes paragraph by
    /// paragraph and gains nothing from waiting.
    pub fn batch_sentences(&self) -> usize {
        match &self.loaded {
            Loaded::Translator(t) => t.batch.sentences,
            Loaded::Summarizer { translator, .. } => translator.batch.sentences,
            Loaded::Chat(_) => 0,
        }
    }

    /// Translates documents. `emit` gets the English as it is made: a whole document at a time
    /// from an encoder-decoder (its sentences are batched across all documents), a paragraph at
    /// a time from a chat model. Paragraphs without sentences are passed through as they are.
    pub fn translate(
        &mut self,
        docs: &[&Document],
        progress: &Progress,
        emit: &mut dyn FnMut(Translated) -> Result<()>,
    ) -> Result<()> {
        let translator = match &self.loaded {
            Loaded::Translator(t) => Some(&**t),
            Loaded::Summarizer { translator, .. } => Some(&**translator),
            Loaded::Chat(_) => None,
        };
        if let Some(translator) = translator {
            let sentences: Vec<&str> = docs.iter().flat_map(|d| d.sentences()).collect();
            let mut translated = translator
                .translate_sentences(&sentences, progress)?
                .into_iter();
            self.usage.sentences += sentences.len();
            for (i, doc) in docs.iter().enumerate() {
                let mine: Vec<String> = translated.by_ref().take(doc.sentence_count()).collect();
                emit(Translated {
                    doc: i,
                    part: doc,
                    text: &doc.reassemble(&mine),
                    last: true,
                })?;
            }
            return Ok(());
        }
        let Loaded::Chat(chat) = &mut self.loaded else {
            unreachable!("the other engines have a translator")
        };
        for (i, doc) in docs.iter().enumerate() {
            for (p, paragraph) in doc.paragraphs.iter().enumerate() {
                interrupt::check()?;
                let sentences = paragraph.sentences();
                let line = if sentences.is_empty() {
                    paragraph.source().to_string()
                } else {
                    let g = chat.translate_paragraph(&sentences.join(" "), &mut |_| {})?;
                    add_tokens(&mut self.usage, &g);
                    self.usage.sentences += sentences.len();
                    progress.advance(sentences.len());
                    g.text.replace('\n', " ")
                };
                let last = p + 1 == doc.paragraphs.len();
                let newline = !last || doc.trailing_newline;
                let part = Document {
                    paragraphs: vec![paragraph.clone()],
                    trailing_newline: newline,
                };
                let text = if newline { line + "\n" } else { line };
                emit(Translated {
                    doc: i,
                    part: &part,
                    text: &text,
                    last,
                })?;
            }
            if doc.paragraphs.is_empty() {
                emit(Translated {
                    doc: i,
                    part: doc,
                    text: if doc.trailing_newline { "\n" } else { "" },
                    last: true,
                })?;
            }
        }
        Ok(())
    }

    /// Translates one document and returns its English, one line per paragraph.
    pub fn translate_document(&mut self, doc: &Document, progress: &Progress) -> Result<String> {
        let mut english = String::new();
        self.translate(&[doc], progress, &mut |t| {
            english.push_str(t.text);
            Ok(())
        })?;
        Ok(english)
    }

    /// Summarizes an article given as paragraphs. `on_text` gets a chat model's summary
    /// sentence by sentence as it is written (with `check`, once checked); `on_part` reports
    /// the parts of an article too long for the model at once. With `check`, every sentence's
    /// names, numbers and dates must be supported by the article ([`crate::faithful`]).
    pub fn summarize(
        &mut self,
        paragraphs: &[String],
        length: SummaryLength,
        check: bool,
        on_text: &mut dyn FnMut(&str),
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<Summary> {
        match &mut self.loaded {
            Loaded::Chat(chat) => {
                let (g, report) = if check {
                    let (g, report) = chat.summarize_checked(paragraphs, length, on_text, on_part)?;
                    (g, Some(report))
                } else {
                    (chat.summarize(paragraphs, length, on_text, on_part)?, None)
                };
                add_tokens(&mut self.usage, &g);
                Ok(Summary {
                    text: g.text.clone(),
                    translation: None,
                    tokens: Some(g),
                    check: report,
                })
            }
            Loaded::Summarizer {
                summarizer,
                translator,
                ..
            } => {
                let (summary, report) = summarizer.summarize_article_checked(
                    translator,
                    paragraphs,
                    length,
                    self.with_translation,
                    check,
                    on_part,
                )?;
                Ok(Summary {
                    text: summary.summary,
                    translation: summary.translation,
                    tokens: None,
                    check: report,
                })
            }
            Loaded::Translator(_) => Err(Error::usage(format!(
                "{} is a translator; summaries need a summarizer or a chat model (see `tarjama models list`)",
                self.files.name
            ))),
        }
    }
}

fn add_tokens(usage: &mut Usage, g: &Generation) {
    usage.prompt_tokens += g.prompt_tokens;
    usage.cached_prompt_tokens += g.cached_prompt_tokens;
    usage.generated_tokens += g.generated_tokens;
}

fn apply_batch_limits(translator: &mut Translator, options: &EngineOptions) {
    if let Some(n) = options.batch_sentences {
        translator.batch.sentences = n;
    }
    if let Some(n) = options.batch_tokens {
        translator.batch.tokens = n;
    }
}

/// Chat sampling settings given for an encoder-decoder model are refused, naming the flag.
fn refuse_chat_options(chat: &ChatOptions, model: &str) -> Result<()> {
    let given = [
        ("--temperature", chat.temperature.is_some()),
        ("--top-p", chat.top_p.is_some()),
        ("--seed", chat.seed.is_some()),
        ("--max-tokens", chat.max_tokens.is_some()),
    ];
    match given.iter().find(|(_, g)| *g) {
        Some((flag, _)) => Err(Error::usage(format!(
            "{flag} applies to GGUF chat models, and {model} is an encoder-decoder model \
             (it decodes by beam search; see --beams and --max-length): remove {flag}"
        ))),
        None => Ok(()),
    }
}

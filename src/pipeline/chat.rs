//! Chat models in the pipeline: the model's own chat template rendered the way transformers
//! renders it, the prompts, and summaries and translations built on them.

use std::path::Path;

use candle_core::Device;
use minijinja::{context, Environment, Error as JinjaError, ErrorKind};
use serde::Serialize;

use super::prompts;
use super::reply::ReplyText;
use crate::generate::llm::{self, Generation, LlmSettings, TurnTokens};
use crate::models::gguf::{self, ChatModel};
use crate::tokenizer::gguf::GgufTokenizer;
use crate::{Error, Result};

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub role: &'static str,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system",
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }
}

/// A Jinja chat template with transformers' settings: `trim_blocks`, `lstrip_blocks`,
/// `raise_exception` and Python-style string methods.
pub struct ChatTemplate {
    env: Environment<'static>,
}

impl ChatTemplate {
    pub fn new(source: &str) -> Result<Self> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("default delimiters are valid"),
        );
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> std::result::Result<String, JinjaError> {
                Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template_owned("chat", source.to_string())
            .map_err(|e| Error::model(format!("the model's chat template does not parse: {e}")))?;
        Ok(Self { env })
    }

    pub fn render(&self, messages: &[Message]) -> Result<String> {
        let template = self.env.get_template("chat").expect("added in new()");
        template
            .render(context! {
                messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                add_generation_prompt => true,
            })
            .map_err(|e| Error::model(format!("cannot render the model's chat template: {e}")))
    }
}

/// How long a summary should be.
#[derive(Debug, Clone, Copy)]
pub enum SummaryLength {
    Sentences(usize),
    Words(usize),
}

/// The tokenizer and the weights of the GGUF chat model at `path`, built at the same time from
/// one reading of the header (the tokenizer takes a few tenths of a second to build from a large
/// vocabulary, about as long as the weights take to read).
pub fn load_model(path: &Path, device: &Device) -> Result<(GgufTokenizer, ChatModel)> {
    let (tokenizer, model) =
        crate::allocator::without_huge_pages(|| load_model_with(path, device))?;
    // Faulted in now, the weights read in place would be small pages for good while another
    // load (a service's translator) keeps huge pages off: then they fault in when first read.
    if !crate::allocator::loading() {
        model.fault_in_weights();
    }
    Ok((tokenizer, model))
}

fn load_model_with(path: &Path, device: &Device) -> Result<(GgufTokenizer, ChatModel)> {
    let (content, mut file) = gguf::read_header(path)?;
    gguf::check_supported(&content)?;
    // On the CPU the weights GGUF lays out as the kernels read them (the output projection and
    // the embeddings, half a small model) are used where a mapping of the file puts them, on the
    // page cache's huge pages (`kernels::mmap::ModelMap`). The rest (Q5_0 weights in tarjama's
    // layout, candle's repacked K-quants) is fresh memory, on normal pages as for the
    // encoder-decoders (see `allocator`): faulting fresh huge pages in costs seconds on VMs whose
    // host reclaims freed memory, more than the generation speed normal pages cost (README,
    // "Performance").
    let (tokenizer, model) = std::thread::scope(|s| {
        let tokenizer = s.spawn(|| GgufTokenizer::from_content(&content));
        let model = ChatModel::load(&content, &mut file, device);
        let tokenizer = tokenizer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (tokenizer, model)
    });
    Ok((tokenizer?, model?))
}

/// A loaded GGUF chat model with its tokenizer and template.
pub struct ChatPipeline {
    model: ChatModel,
    pub(super) tokenizer: GgufTokenizer,
    template: ChatTemplate,
    pub settings: LlmSettings,
    /// Tokens a prompt plus its reply may use; longer articles are summarised in parts.
    pub context_budget: usize,
}

impl ChatPipeline {
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let (tokenizer, model) = load_model(path, device)?;
        let template = ChatTemplate::new(tokenizer.chat_template().ok_or_else(|| {
            Error::model(format!("{} has no tokenizer.chat_template", path.display()))
        })?)?;
        let context_budget = model.context_length.min(4096);
        Ok(Self {
            model,
            tokenizer,
            template,
            settings: LlmSettings::default(),
            context_budget,
        })
    }

    pub fn architecture(&self) -> &str {
        &self.model.architecture
    }

    /// Bytes of weights read where the mapped GGUF file lies (see `kernels::mmap::ModelMap`).
    pub fn in_place_bytes(&self) -> usize {
        self.model.in_place_bytes()
    }

    pub(super) fn prompt_tokens(&self, messages: &[Message]) -> Result<Vec<u32>> {
        self.tokenizer
            .encode(&self.template.render(messages)?, false)
    }

    /// Generates a reply to `prompt`, streamed to `on_text` and stopped once it has `length`.
    /// `banned` token sequences are never written.
    pub(super) fn run_tokens(
        &mut self,
        prompt: &[u32],
        settings: &LlmSettings,
        length: Option<SummaryLength>,
        banned: &[Vec<u32>],
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let tokens = TurnTokens {
            stops: self.tokenizer.eos_ids(),
            special: self.tokenizer.special_ids(),
            banned,
        };
        let mut reply = ReplyText::new(&self.tokenizer, length, on_text);
        llm::generate(&mut self.model, tokens, prompt, settings, &mut reply)
    }

    /// Summarises an article, in parts when it does not fit the context (map-reduce).
    pub fn summarize(
        &mut self,
        paragraphs: &[String],
        length: SummaryLength,
        on_text: &mut dyn FnMut(&str),
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<Generation> {
        let (messages, parts) = self.summary_messages(paragraphs, length, on_part)?;
        let prompt = self.prompt_tokens(&messages)?;
        let settings = self.settings.clone();
        let mut g = self.run_tokens(&prompt, &settings, Some(length), &[], on_text)?;
        g.add_counts(&parts);
        Ok(g)
    }

    /// The messages that ask for the article's summary: the article itself when it fits the
    /// context, else the summaries of its parts (map-reduce), with the token counts of the
    /// parts' summaries.
    pub(super) fn summary_messages(
        &mut self,
        paragraphs: &[String],
        length: SummaryLength,
        on_part: &mut dyn FnMut(usize, usize),
    ) -> Result<(Vec<Message>, Generation)> {
        let settings = self.settings.clone();
        let article = paragraphs.join("\n\n");
        let room = self.context_budget.saturating_sub(settings.max_new_tokens);
        let messages = prompts::summary(&article, length);
        if self.prompt_tokens(&messages)?.len() <= room {
            return Ok((messages, Generation::default()));
        }
        // Map: summarise consecutive parts that fit; reduce: summarise the summaries.
        let parts = self.split_to_fit(paragraphs, room)?;
        let part_length = Some(SummaryLength::Sentences(3));
        let mut summaries = Vec::new();
        let mut parts_total = Generation::default();
        for (i, part) in parts.iter().enumerate() {
            on_part(i, parts.len());
            let prompt = self.prompt_tokens(&prompts::part_summary(part))?;
            let g = self.run_tokens(&prompt, &settings, part_length, &[], &mut |_| {})?;
            parts_total.add_counts(&g);
            summaries.push(g.text);
        }
        on_part(parts.len(), parts.len());
        Ok((prompts::combine(&summaries, length), parts_total))
    }

    /// Groups paragraphs into parts whose part-summary prompt fits in `room` tokens; a single
    /// paragraph that is too long is cut at sentence boundaries.
    fn split_to_fit(&self, paragraphs: &[String], room: usize) -> Result<Vec<String>> {
        let fits = |text: &str| -> Result<bool> {
            Ok(self.prompt_tokens(&prompts::part_summary(text))?.len() <= room)
        };
        // A sentence is the smallest part: chat contexts are far longer than sentences.
        crate::document::pack_windows(paragraphs, "\n\n", &fits, &|s| vec![s.to_string()])
    }

    /// Translates one paragraph, streaming the text as it is written.
    pub fn translate_paragraph(
        &mut self,
        paragraph: &str,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let settings = LlmSettings {
            repetition_penalty: 1.0,
            ..self.settings.clone()
        };
        let prompt = self.prompt_tokens(&prompts::translation(paragraph))?;
        self.run_tokens(&prompt, &settings, None, &[], on_text)
    }
}

//! Translation of sentences and documents with an encoder-decoder model.

use candle_core::{Device, Tensor};

use super::checkpoint;
use super::Progress;
use crate::device::Precision;
use crate::document::{self, Document};
use crate::generate::{self, GenerationConfig, Seq2SeqModel, StageTimes};
use crate::hub::ModelFiles;
use crate::models;
use crate::tokenizer::Seq2SeqTokenizer;
use crate::{Error, Result};

/// Generation settings given on the command line; `None` keeps the model's own.
#[derive(Debug, Clone, Default)]
pub struct GenerationOverrides {
    pub num_beams: Option<usize>,
    pub max_length: Option<usize>,
    pub min_length: Option<usize>,
    pub length_penalty: Option<f32>,
    pub no_repeat_ngram_size: Option<usize>,
    pub repetition_penalty: Option<f32>,
}

impl GenerationOverrides {
    pub fn apply(&self, cfg: &mut GenerationConfig) {
        if let Some(v) = self.num_beams {
            cfg.num_beams = v.max(1);
        }
        if let Some(v) = self.max_length {
            cfg.max_length = v;
        }
        if let Some(v) = self.min_length {
            cfg.min_length = v;
        }
        if let Some(v) = self.length_penalty {
            cfg.length_penalty = v;
        }
        if let Some(v) = self.no_repeat_ngram_size {
            cfg.no_repeat_ngram_size = v;
        }
        if let Some(v) = self.repetition_penalty {
            cfg.repetition_penalty = v;
        }
    }
}

/// What a loaded encoder-decoder model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Translation,
    /// Summaries in English of text in the given language (`"en"`, `"ar"`).
    Summarization {
        source_english: bool,
    },
}

impl Task {
    /// The preset's task, else what the architecture is normally trained for.
    fn of(files: &ModelFiles, model_type: &str) -> Task {
        let (task, source) = match &files.preset {
            Some(p) => (
                p.task.as_str(),
                p.source_language.as_deref().unwrap_or("en"),
            ),
            None => match model_type {
                "bart" | "t5" | "mt5" => ("summarization", "en"),
                _ => ("translation", "ar"),
            },
        };
        if task == "summarization" {
            Task::Summarization {
                source_english: source == "en",
            }
        } else {
            Task::Translation
        }
    }
}

/// A loaded encoder-decoder model (any family) with its tokenizer and generation settings.
pub struct Seq2Seq {
    model: Box<dyn Seq2SeqModel>,
    tokenizer: Seq2SeqTokenizer,
    pub generation: GenerationConfig,
    pub task: Task,
    pub name: String,
    device: Device,
    times: std::sync::Mutex<StageTimes>,
    /// Where the int8 weights of `--quantize` came from.
    int8: Option<String>,
}

impl Seq2Seq {
    pub fn load(
        files: &ModelFiles,
        device: &Device,
        precision: impl Into<Precision>,
    ) -> Result<Self> {
        let precision = precision.into();
        // Weights on normal pages: faulting huge ones in can cost seconds (see `allocator`).
        crate::allocator::without_huge_pages(|| {
            let (quantize, int8) = super::int8::quantization(files, precision, device)?;
            Self::load_with(files, device, precision, quantize, int8)
        })
    }

    /// [`Seq2Seq::load`] with the linear layers quantized as `quantize` says.
    pub(super) fn load_with(
        files: &ModelFiles,
        device: &Device,
        precision: Precision,
        quantize: Option<models::Quantize>,
        int8: Option<String>,
    ) -> Result<Self> {
        let config = files.read_json("config.json")?;
        let model_type = config
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("marian")
            .to_string();
        let task = Task::of(files, &model_type);
        let mut tokenizer = Seq2SeqTokenizer::from_dir(&files.dir, &model_type, &config)?;
        let vb = checkpoint::open_weights(files, precision.dtype, device)?;
        let loaded = models::load_seq2seq(&model_type, &config, vb, quantize).map_err(|e| match e {
            Error::Candle(e) => Error::model(format!(
                "weights file {} does not match config.json ({e}): the download may be corrupt or incomplete",
                files.weights.display()
            )),
            other => other,
        })?;
        let prefix = match task {
            Task::Translation => loaded
                .translation_prefix
                .clone()
                .or_else(|| tokenizer.target_language_tag()),
            Task::Summarization { .. } => loaded.summarization_prefix.clone(),
        };
        if let Some(prefix) = prefix {
            tokenizer.set_text_prefix(&prefix);
        }
        let pad = tokenizer.pad_id();
        // transformers falls back to `bos_token_id` when no decoder start is given (and raises
        // without either); T5 and Marian conventionally start from the pad token.
        let bos = config
            .get("bos_token_id")
            .and_then(|v| v.as_u64())
            .map(|v| v as u32);
        let start = loaded.decoder_start_token_id.or(bos).unwrap_or(pad);
        let mut generation =
            checkpoint::generation_config(files, &config, start, tokenizer.eos_id(), pad)?;
        if let Some(code) = tokenizer.english_code() {
            generation.forced_bos_token_id = Some(code);
        }
        // The decoder has no positions past this; the reference would fail there.
        generation.max_length = generation.max_length.min(loaded.model.max_positions());
        Ok(Self {
            model: loaded.model,
            tokenizer,
            generation,
            task,
            name: files.name.clone(),
            device: device.clone(),
            times: Default::default(),
            int8,
        })
    }

    /// Where the int8 weights of `--quantize` came from, for `--verbose`.
    pub fn int8_origin(&self) -> Option<&str> {
        self.int8.as_deref()
    }

    pub fn tokenizer(&self) -> &Seq2SeqTokenizer {
        &self.tokenizer
    }

    pub fn tokenizer_mut(&mut self) -> &mut Seq2SeqTokenizer {
        &mut self.tokenizer
    }

    pub fn model(&self) -> &dyn Seq2SeqModel {
        self.model.as_ref()
    }

    /// Tokenizes `texts` and returns a right-padded `(input_ids, attention_mask)` batch.
    pub fn encode_batch(&self, texts: &[&str]) -> Result<(Tensor, Tensor)> {
        let ids: Vec<Vec<u32>> = texts.iter().map(|t| self.tokenizer.encode(t)).collect();
        Ok(pad_batch(&ids, self.tokenizer.pad_id(), &self.device)?)
    }

    /// Generates token ids for one batch of texts (no splitting, no reordering).
    pub fn generate_ids(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let (ids, mask) = self.encode_batch(texts)?;
        let mut times = StageTimes::default();
        let out = generate::generate_timed(
            self.model.as_ref(),
            &ids,
            &mask,
            &self.generation,
            &mut times,
        )?;
        if let Ok(mut total) = self.times.lock() {
            *total += times;
        }
        Ok(out)
    }

    /// Time spent encoding and decoding since the model was loaded.
    pub fn stage_times(&self) -> StageTimes {
        self.times.lock().map(|t| *t).unwrap_or_default()
    }
}

/// How many sentences are translated together: at most `sentences` per batch, and at most
/// `tokens` source tokens counting padding (rows × longest row), so that a batch of long
/// sentences holds fewer of them and a batch's memory stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub sentences: usize,
    pub tokens: usize,
}

impl BatchLimits {
    /// On CPU, 16 sentences: larger batches gained little there while a step streams all the
    /// weights anyway. A GPU computes a batch's rows in parallel and gains up to much larger
    /// batches, so 128 sentences or 16384 tokens there.
    pub fn for_device(device: &Device) -> Self {
        if device.is_cpu() {
            Self {
                sentences: 16,
                tokens: 4096,
            }
        } else {
            Self {
                sentences: 128,
                tokens: 16384,
            }
        }
    }

    /// Cuts `order`, piece indices sorted by decreasing token count, into consecutive batches
    /// within the limits. Every batch holds at least one piece, however long.
    fn split<'a>(&self, order: &'a [usize], lengths: &[usize]) -> Vec<&'a [usize]> {
        let mut batches = Vec::new();
        let mut rest = order;
        while !rest.is_empty() {
            // The first piece is the longest, so it sets the padded width of the batch.
            let width = lengths[rest[0]].max(1);
            let fit = (self.tokens / width).clamp(1, self.sentences.max(1));
            let (batch, tail) = rest.split_at(fit.min(rest.len()));
            batches.push(batch);
            rest = tail;
        }
        batches
    }
}

/// Translation, a sentence at a time, with an encoder-decoder model.
pub struct Translator {
    core: Seq2Seq,
    pub batch: BatchLimits,
}

impl std::ops::Deref for Translator {
    type Target = Seq2Seq;
    fn deref(&self) -> &Seq2Seq {
        &self.core
    }
}

impl std::ops::DerefMut for Translator {
    fn deref_mut(&mut self) -> &mut Seq2Seq {
        &mut self.core
    }
}

impl Translator {
    /// Loads a translation model; a summarization model is refused with a pointer to
    /// `summarize`.
    pub fn load(
        files: &ModelFiles,
        device: &Device,
        precision: impl Into<Precision>,
    ) -> Result<Self> {
        let core = Seq2Seq::load(files, device, precision)?;
        if core.task != Task::Translation {
            return Err(Error::usage(format!(
                "{} is a summarization model, not a translator: use it with `tarjama summarize --model {}`",
                files.name, files.name
            )));
        }
        Ok(Self {
            batch: BatchLimits::for_device(device),
            core,
        })
    }

    /// Translates independent sentences. A sentence longer than the model's positions (or than
    /// its maximum output length) is split into parts that are translated in order and joined;
    /// a part whose translation still hits the maximum length is split again, so no text is
    /// dropped silently. Batches are formed from sentences of similar length so little work is
    /// spent on padding, within [`BatchLimits`].
    pub fn translate_sentences(
        &self,
        sentences: &[&str],
        progress: &Progress,
    ) -> Result<Vec<String>> {
        let limit = self.model().max_positions().min(self.generation.max_length);
        let count = |s: &str| self.tokenizer().count_tokens(s);
        // (sentence index, text) for every piece that goes through the model.
        let mut pieces: Vec<(usize, String)> = Vec::new();
        for (i, sentence) in sentences.iter().enumerate() {
            if count(sentence) > limit {
                for part in document::split_long(sentence, limit, &count) {
                    pieces.push((i, part));
                }
            } else {
                pieces.push((i, sentence.to_string()));
            }
        }
        let lengths: Vec<usize> = pieces.iter().map(|(_, p)| count(p)).collect();
        let mut order: Vec<usize> = (0..pieces.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));

        let mut translated: Vec<String> = vec![String::new(); pieces.len()];
        let mut cut_short: Vec<usize> = Vec::new();
        for chunk in self.batch.split(&order, &lengths) {
            crate::interrupt::check()?;
            let texts: Vec<&str> = chunk.iter().map(|&i| pieces[i].1.as_str()).collect();
            for (&i, ids) in chunk.iter().zip(self.generate_ids(&texts)?) {
                if ids.last() != Some(&self.generation.eos_token_id) && lengths[i] > 2 {
                    cut_short.push(i);
                }
                translated[i] = self.tokenizer().decode(&ids);
            }
            progress.advance(chunk.len());
        }
        for i in cut_short {
            let parts = document::split_long(&pieces[i].1, lengths[i] / 2, &count);
            if parts.len() > 1 {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                translated[i] = self
                    .translate_sentences(&parts, &Progress::hidden())?
                    .join(" ");
            }
        }
        let mut out = vec![String::new(); sentences.len()];
        for ((sentence, _), text) in pieces.iter().zip(translated) {
            let slot = &mut out[*sentence];
            if !slot.is_empty() && !text.is_empty() {
                slot.push(' ');
            }
            slot.push_str(&text);
        }
        Ok(out)
    }

    /// Translates a document sentence by sentence and rebuilds its paragraphs.
    pub fn translate_document(&self, doc: &Document, quiet: bool) -> Result<String> {
        let sentences: Vec<&str> = doc.sentences().collect();
        let progress = Progress::sentences(sentences.len(), super::ProgressMode::auto(quiet));
        let translated = self.translate_sentences(&sentences, &progress)?;
        progress.finish();
        Ok(doc.reassemble(&translated))
    }
}

/// Pads token sequences on the right into `[batch, max_len]` ids and a 0/1 mask.
pub fn pad_batch(
    ids: &[Vec<u32>],
    pad: u32,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let width = ids.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let mut flat = Vec::with_capacity(ids.len() * width);
    let mut mask = Vec::with_capacity(ids.len() * width);
    for seq in ids {
        flat.extend_from_slice(seq);
        flat.extend(std::iter::repeat_n(pad, width - seq.len()));
        mask.extend(std::iter::repeat_n(1u32, seq.len()));
        mask.extend(std::iter::repeat_n(0u32, width - seq.len()));
    }
    let shape = (ids.len(), width);
    Ok((
        Tensor::from_vec(flat, shape, device)?,
        Tensor::from_vec(mask, shape, device)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::BatchLimits;

    #[test]
    fn batches_are_cut_by_sentences_and_by_padded_tokens() {
        let limits = BatchLimits {
            sentences: 4,
            tokens: 100,
        };
        // Pieces 0..10 with these token counts, sorted by decreasing length.
        let lengths = [60, 40, 30, 30, 20, 10, 10, 10, 10, 10];
        let order: Vec<usize> = (0..lengths.len()).collect();
        let batches = limits.split(&order, &lengths);
        // 60 alone (a second row would pad to 120 tokens); 40, 30 (3 × 40 > 100); 30, 20, 10
        // (4 × 30 > 100); then the sentence limit, 4.
        let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 2, 3, 4]);
        assert_eq!(batches.concat(), order, "every piece once, in order");
        // A piece longer than the whole budget still forms a batch of its own.
        let long = BatchLimits {
            sentences: 16,
            tokens: 8,
        };
        assert_eq!(long.split(&[0, 1], &[50, 50]), vec![&[0][..], &[1][..]]);
    }
}

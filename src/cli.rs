//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::device::{DTypeChoice, DeviceChoice, QuantizeChoice};
use crate::hub::{DEFAULT_SUMMARIZER, DEFAULT_TRANSLATOR};

#[derive(Debug, Parser)]
#[command(
    name = "tarjama",
    version,
    about = "Translate Arabic news articles into English with open models, offline-capable, on CPU or GPU",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// CPU threads for the model's arithmetic (default: the physical cores this process may run
    /// on).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate an Arabic article (file or stdin) into English, paragraph by paragraph.
    #[command(after_help = "Examples:
  tarjama translate article-ar.txt -o article-en.txt
  cat article-ar.txt | tarjama translate --model opus-mt-ar-en
  tarjama translate --strip-boilerplate --beams 1 scraped.txt")]
    Translate(TranslateArgs),

    /// Write a short English summary of an Arabic article: with a chat model (GGUF), or with an
    /// encoder-decoder summarizer (BART, flan-t5: the article is translated first; mT5-XLSum:
    /// the Arabic summary is translated).
    #[command(after_help = "Examples:
  tarjama summarize article-ar.txt
  tarjama summarize --sentences 5 --format json article-ar.txt
  tarjama summarize --model ./qwen2.5-0.5b-instruct-q4_k_m.gguf --words 60 article-ar.txt
  tarjama summarize --model distilbart-cnn-12-6 --show-translation article-ar.txt")]
    Summarize(SummarizeArgs),
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Input file with UTF-8 Arabic text; `-` or nothing reads stdin.
    pub input: Option<PathBuf>,

    /// A GGUF chat model (preset, `owner/repo:file.gguf[@revision]` or local .gguf file), or an
    /// encoder-decoder summarizer (preset, Hub repo id or local directory).
    #[arg(short, long, default_value = DEFAULT_SUMMARIZER, value_name = "MODEL")]
    pub model: String,

    /// The translator encoder-decoder summarizers use (before an English summarizer, after an
    /// Arabic one).
    #[arg(long, default_value = DEFAULT_TRANSLATOR, value_name = "MODEL")]
    pub translator: String,

    /// Print the full English translation before the summary (encoder-decoder summarizers).
    #[arg(long)]
    pub show_translation: bool,

    /// The language an encoder-decoder summarizer reads, for models without a preset: `en`
    /// (the article is translated first) or `ar` (the Arabic summary is translated).
    #[arg(long, value_name = "LANG", value_parser = ["en", "ar"])]
    pub summarizer_reads: Option<String>,

    /// Length of the summary in sentences.
    #[arg(long, value_name = "N", conflicts_with = "words")]
    pub sentences: Option<u32>,

    /// Length of the summary in words (ends at a sentence boundary).
    #[arg(long, value_name = "N")]
    pub words: Option<u32>,

    /// text or json (the summary, the model and token counts).
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,

    /// Print sentences as they are written (default when stdout is a terminal).
    #[arg(long, overrides_with = "no_stream")]
    pub stream: bool,

    /// Print the summary only when it is complete.
    #[arg(long)]
    pub no_stream: bool,

    /// Keep site furniture (related articles, comment forms), which is dropped by default.
    #[arg(long)]
    pub keep_boilerplate: bool,

    #[command(flatten)]
    pub chat: ChatArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    /// Use only files already in the Hugging Face cache (also: HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,

    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,

    /// auto (f32 on CPU, bf16 on GPU), f32, f16 or bf16 (encoder-decoder models).
    #[arg(long, default_value = "auto", value_name = "DTYPE")]
    pub dtype: DTypeChoice,

    /// Quantize the linear layers of encoder-decoder models at load time: q8_0 (int8 weights,
    /// about 4x smaller, faster on CPU). GGUF chat models are quantized already.
    #[arg(long, value_name = "FORMAT")]
    pub quantize: Option<QuantizeChoice>,

    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,

    /// Report the model and timings on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Decoding settings of chat models.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Sampling temperature; 0 is greedy (the default, reproducible).
    #[arg(long, default_value_t = 0.0, value_name = "T")]
    pub temperature: f64,

    /// Nucleus sampling threshold (with --temperature).
    #[arg(long, value_name = "P")]
    pub top_p: Option<f64>,

    /// Random seed for sampling.
    #[arg(long, default_value_t = 299792458, value_name = "N")]
    pub seed: u64,

    /// Most tokens to generate per reply.
    #[arg(long, default_value_t = 512, value_name = "N")]
    pub max_tokens: usize,
}

/// A chat model's penalty on recently generated tokens unless `--repetition-penalty` is given.
pub const CHAT_REPETITION_PENALTY: f32 = 1.1;

#[derive(Debug, Args)]
pub struct TranslateArgs {
    /// Input file with UTF-8 Arabic text; `-` or nothing reads stdin.
    pub input: Option<PathBuf>,

    /// Output file (written atomically); stdout when absent or `-`.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Drop site furniture of scraped pages (related articles, comment forms, share buttons).
    #[arg(long)]
    pub strip_boilerplate: bool,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A preset name, a Hub repo id (`owner/name[@revision]`) or a local model directory.
    #[arg(short, long, default_value = DEFAULT_TRANSLATOR, value_name = "MODEL")]
    pub model: String,

    /// Use only files already in the Hugging Face cache (also: HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,

    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,

    /// auto (f32 on CPU, bf16 on GPU), f32, f16 or bf16.
    #[arg(long, default_value = "auto", value_name = "DTYPE")]
    pub dtype: DTypeChoice,

    /// Quantize the linear layers of encoder-decoder models at load time: q8_0 (int8 weights,
    /// about 4x smaller, faster on CPU). GGUF chat models are quantized already.
    #[arg(long, value_name = "FORMAT")]
    pub quantize: Option<QuantizeChoice>,

    /// Most sentences translated together in one batch [default: 16 on CPU, 128 on GPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: Option<u32>,

    /// Most source tokens in one batch, padding included: long sentences go in smaller batches
    /// [default: 4096 on CPU, 16384 on GPU].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_tokens: Option<u32>,

    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,

    /// Report the device, model and timings on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct GenerationArgs {
    /// Beam width (1 = greedy); defaults to the model's setting.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub beams: Option<u32>,

    /// Maximum output length in tokens, counting the start token as the reference does.
    #[arg(long, value_name = "N")]
    pub max_length: Option<u32>,

    /// Minimum output length in tokens, counting the start token.
    #[arg(long, value_name = "N")]
    pub min_length: Option<u32>,

    /// Exponent of the length normalisation of beam scores (>1 favours longer outputs).
    #[arg(long, value_name = "F")]
    pub length_penalty: Option<f32>,

    /// Never repeat an n-gram of this size.
    #[arg(long, value_name = "N")]
    pub no_repeat_ngram_size: Option<u32>,

    /// Penalise tokens already generated (1.0 = off; chat models default to 1.1 over the
    /// last 64 tokens).
    #[arg(long, value_name = "F")]
    pub repetition_penalty: Option<f32>,
}

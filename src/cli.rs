//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::device::{DTypeChoice, DeviceChoice, QuantizeChoice};
use crate::hub::{DEFAULT_SUMMARIZER, DEFAULT_TRANSLATOR};

/// Printed under every command's `--help`.
pub const EXIT_CODES: &str =
    "Exit codes: 0 ok, 1 some inputs failed (the others were written), 2 usage error, \
3 model error, 130 interrupted (finished outputs are kept; rerun to resume).";

#[derive(Debug, Parser)]
#[command(
    name = "tarjama",
    version,
    about = "Translate Arabic news articles into English with open models, offline-capable, on CPU or GPU",
    propagate_version = true,
    after_help = EXIT_CODES
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
    /// Translate Arabic articles (files, directories or stdin) into English, paragraph by
    /// paragraph.
    #[command(after_help = "Examples:
  tarjama translate article-ar.txt -o article-en.txt
  cat article-ar.txt | tarjama translate --model opus-mt-ar-en
  tarjama translate --strip-boilerplate --beams 1 scraped.txt
  tarjama translate archive/ -o english/          # mirrors the tree: a.ar.txt -> a.en.txt
  tarjama translate --format jsonl archive/ > translations.jsonl
  tarjama translate --input-format jsonl --text-field body --id-field url scraped.jsonl -o out.jsonl

Files already translated are skipped (rerun an interrupted run to resume; --force redoes them).
A file that cannot be read is reported and skipped; the run goes on and exits with 1.
Exit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 model error, 130 interrupted.")]
    Translate(TranslateArgs),

    /// Write a short English summary of an Arabic article: with a chat model (GGUF), or with an
    /// encoder-decoder summarizer (BART, flan-t5: the article is translated first; mT5-XLSum:
    /// the Arabic summary is translated).
    #[command(after_help = "Examples:
  tarjama summarize article-ar.txt
  tarjama summarize --sentences 5 --format json article-ar.txt
  tarjama summarize --model ./qwen2.5-0.5b-instruct-q4_k_m.gguf --words 60 article-ar.txt
  tarjama summarize --model distilbart-cnn-12-6 --show-translation article-ar.txt
  tarjama summarize archive/ -o summaries/         # a.ar.txt -> a.summary.txt
  tarjama summarize --format jsonl archive/ > summaries.jsonl

Exit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 model error, 130 interrupted.")]
    Summarize(SummarizeArgs),

    /// List, download, inspect, verify and remove the preset models in the Hugging Face cache.
    #[command(after_help = "Examples:
  tarjama models list
  tarjama models download opus-mt-ar-en      # prefetch for offline use
  tarjama models info nllb-200-distilled-600m
  tarjama models verify opus-mt-ar-en        # hashes of the cached files
  tarjama models rm opus-mt-ar-en

Exit codes: 0 ok, 1 verification failed, 2 usage error, 3 model error.")]
    Models {
        #[command(subcommand)]
        action: ModelsCommand,
    },

    /// Score translations (BLEU, chrF, as sacrebleu) or summaries (ROUGE, as rouge-score)
    /// against references, translating the source first unless --hyp is given.
    #[command(after_help = "Examples:
  tarjama eval --src test.ar.txt --ref test.en.txt --model opus-mt-ar-en
  tarjama eval --hyp system.en.txt --ref test.en.txt
  tarjama eval --task summarize --hyp summaries.txt --ref highlights.txt --format json

Files hold one segment per line; hypotheses and references must have the same number of lines.
Exit codes: 0 ok, 1 unreadable input, 2 usage error, 3 model error.")]
    Eval(EvalArgs),

    /// Print a shell completion script.
    #[command(after_help = "Examples:
  tarjama completions bash > ~/.local/share/bash-completion/completions/tarjama
  tarjama completions zsh > ~/.zfunc/_tarjama
  tarjama completions fish > ~/.config/fish/completions/tarjama.fish")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The presets, which of them are cached locally, and their size.
    List {
        /// text or json (one object per preset).
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Download a preset's files into the cache, for offline use.
    Download {
        /// A preset name (see `tarjama models list`).
        name: String,
    },
    /// A preset's family, repository, files, license and published scores.
    Info {
        /// A preset name (see `tarjama models list`).
        name: String,
    },
    /// Check a cached preset's files against the hashes the Hub recorded for them, and that the
    /// model loads.
    Verify {
        /// A preset name (see `tarjama models list`).
        name: String,
    },
    /// Remove a preset's files from the cache.
    Rm {
        /// A preset name (see `tarjama models list`).
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// The English text (translate), or the summary (summarize).
    Text,
    /// One JSON object per input, on one line (the same as jsonl).
    Json,
    /// One JSON object per input per line: id, source and target paragraphs (or the summary),
    /// model and revision.
    Jsonl,
}

/// How inputs are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// Each file is one article.
    Text,
    /// Each line of each file is a JSON object holding one article (see --text-field).
    Jsonl,
}

/// Inputs and outputs of a run over one or many articles.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Input files or directories (searched recursively for *.txt, or *.jsonl with
    /// --input-format jsonl); `-` or nothing reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Output file for one input or a JSON Lines stream (written atomically); for several inputs
    /// in text format, a directory that mirrors the input tree. Default: stdout for one input,
    /// beside each input for several.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Follow symbolic links to directories inside input directories (loops are reported and
    /// skipped). Links named on the command line are always followed.
    #[arg(long)]
    pub follow_symlinks: bool,

    /// Redo inputs whose output already exists (they are skipped by default, so an interrupted
    /// run resumes where it stopped).
    #[arg(long)]
    pub force: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Input format.
    #[arg(long, value_enum, default_value_t = InputFormat::Text)]
    pub input_format: InputFormat,

    /// With --input-format jsonl: the field holding the article's text.
    #[arg(long, default_value = "text", value_name = "FIELD")]
    pub text_field: String,

    /// With --input-format jsonl: the field holding the record's id (default: its line number).
    #[arg(long, default_value = "id", value_name = "FIELD")]
    pub id_field: String,

    /// Input names end with this; it is replaced by the output suffix [default: .ar.txt].
    #[arg(long, value_name = "SUFFIX")]
    pub input_suffix: Option<String>,

    /// Output names end with this [default: .en.txt for translate, .summary.txt for summarize].
    #[arg(long, value_name = "SUFFIX")]
    pub output_suffix: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// References, one segment per line.
    #[arg(long = "ref", value_name = "FILE")]
    pub reference: PathBuf,

    /// Hypotheses to score, one per line.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "src",
        required_unless_present = "src"
    )]
    pub hyp: Option<PathBuf>,

    /// Arabic sources, one per line, translated with --model and then scored.
    #[arg(long, value_name = "FILE")]
    pub src: Option<PathBuf>,

    /// translate (BLEU and chrF) or summarize (ROUGE-1/2/L).
    #[arg(long, value_enum, default_value_t = EvalTask::Translate)]
    pub task: EvalTask,

    /// text or json.
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    pub format: ListFormat,

    /// Write the translations made from --src here (one per line).
    #[arg(long, value_name = "FILE", requires = "src")]
    pub save_hyp: Option<PathBuf>,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EvalTask {
    Translate,
    Summarize,
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    #[command(flatten)]
    pub batch: BatchArgs,

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

    /// Report the model and timings (load, encode, decode) on stderr.
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
    #[command(flatten)]
    pub batch: BatchArgs,

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

    /// Report the device, model and timings (load, encode, decode) on stderr.
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

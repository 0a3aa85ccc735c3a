//! The argument groups several commands share, flattened into each (`RuntimeArgs`,
//! `ModelArgs`, `GenerationArgs`, `ChatArgs`, `BatchArgs`), and the value parsers that check
//! numbers before anything runs.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::device::{DTypeChoice, DeviceChoice, QuantizeChoice};
use crate::hub::DEFAULT_TRANSLATOR;

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
    /// in text format, a directory that mirrors the input tree [default: stdout for one input,
    /// beside each input for several].
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

    /// Process every input as Arabic. By default an input whose text is Persian, Urdu, English
    /// or another language (detected on its first paragraphs) is reported and skipped.
    #[arg(long)]
    pub assume_arabic: bool,

    /// Input names end with this; it is replaced by the output suffix [default: .ar.txt].
    #[arg(long, value_name = "SUFFIX")]
    pub input_suffix: Option<String>,

    /// Output names end with this [default: .en.txt for translate, .summary.txt for summarize].
    #[arg(long, value_name = "SUFFIX")]
    pub output_suffix: Option<String>,

    /// Do only part I of N of the inputs (files, or records with --input-format jsonl), counted
    /// from 0 as SLURM_ARRAY_TASK_ID and JOB_COMPLETION_INDEX are: the N parts are disjoint,
    /// together they are the whole input, and a rerun picks the same part. `auto` takes I and N
    /// from a Slurm job array, or I from a Kubernetes Indexed Job and N from --shards [default:
    /// all of the input].
    #[arg(long, value_name = "I/N|auto", value_parser = shard_arg)]
    pub shard: Option<ShardArg>,

    /// With --shard auto in a Kubernetes Indexed Job: the number of shards (the Job's
    /// completions), which Kubernetes does not put in the environment.
    #[arg(long, value_name = "N", requires = "shard",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
}

/// What `--shard` says: a part, or where to find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// From the scheduler's environment.
    Auto,
    /// Part `index` (from 0) of `count`.
    Part { index: u32, count: u32 },
}

pub(super) fn shard_arg(s: &str) -> Result<ShardArg, String> {
    if s == "auto" {
        return Ok(ShardArg::Auto);
    }
    let why = "must be I/N, part I of N counted from 0 (such as 0/4 .. 3/4), or auto";
    let (i, n) = s.split_once('/').ok_or(why)?;
    let (index, count) = match (i.trim().parse::<u32>(), n.trim().parse::<u32>()) {
        (Ok(i), Ok(n)) => (i, n),
        _ => return Err(why.to_string()),
    };
    if count == 0 {
        return Err("has 0 parts: N must be at least 1".to_string());
    }
    if index >= count {
        return Err(format!(
            "asks for part {index} of {count}, but parts count from 0: the last is {}/{count}",
            count - 1
        ));
    }
    Ok(ShardArg::Part { index, count })
}

/// Decoding settings of chat models.
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Sampling temperature; 0 is greedy, reproducible [default: 0].
    #[arg(long, value_name = "T", allow_negative_numbers = true, value_parser = temperature)]
    pub temperature: Option<f64>,

    /// Nucleus sampling threshold (with --temperature), above 0 and at most 1 [default: 1, all
    /// tokens].
    #[arg(long, value_name = "P", allow_negative_numbers = true, value_parser = top_p)]
    pub top_p: Option<f64>,

    /// Random seed for sampling [default: 299792458].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Most tokens to generate per reply [default: 512].
    #[arg(long, value_name = "N", value_parser = at_least(1usize, ""))]
    pub max_tokens: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A preset name, a Hub repo id (`owner/name[@revision]`), a local model directory, or a GGUF
    /// chat model (`owner/repo:file.gguf[@revision]` or a local .gguf file).
    #[arg(short, long, default_value = DEFAULT_TRANSLATOR, value_name = "MODEL")]
    pub model: String,

    /// Most sentences translated together in one batch [default: 16 on CPU (64 for serve), 128
    /// on GPU]
    /// (encoder-decoder models).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch_size: Option<u32>,

    /// Most source tokens in one batch, padding included: long sentences go in smaller batches
    /// [default: 4096 on CPU, 16384 on GPU] (encoder-decoder models).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub batch_tokens: Option<u32>,
}

/// Where and how the model runs, and what is reported: the same for every command that loads a
/// model. (`--threads` is global: it may come before the command too.)
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Use only files already in the Hugging Face cache, never the network.
    #[arg(long, env = "HF_HUB_OFFLINE", value_parser = hf_boolean)]
    pub offline: bool,

    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    pub device: DeviceChoice,

    /// auto (f32 on CPU, bf16 on GPU), f32, f16 or bf16 (encoder-decoder models; a chat model
    /// keeps its file's types).
    #[arg(long, default_value = "auto", value_name = "DTYPE")]
    pub dtype: DTypeChoice,

    /// Quantize the linear layers of encoder-decoder models at load time: q8_0 (int8 weights,
    /// about 4x smaller, faster on CPU). On CPU the int8 weights `tarjama models quantize` saved
    /// beside the model's weights are read instead when they are up to date. GGUF chat models are
    /// quantized already [default: none, the weights' own type].
    #[arg(long, value_name = "FORMAT")]
    pub quantize: Option<QuantizeChoice>,

    /// No progress output (the same as --progress none), and no summary of a run over many
    /// inputs unless some failed.
    #[arg(short, long)]
    pub quiet: bool,

    /// How progress is shown on stderr: auto (a bar on a terminal, else plain), bar, plain (a
    /// line every 10 s: done, rate, ETA, for logs), json (an object a line every 10 s, for log
    /// collectors) or none.
    #[arg(long, value_enum, default_value_t = ProgressChoice::Auto, value_name = "MODE")]
    pub progress: ProgressChoice,

    /// Report the device, model and timings (load, encode, decode) on stderr.
    #[arg(short, long)]
    pub verbose: bool,
}

/// What `--progress` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressChoice {
    Auto,
    Bar,
    Plain,
    Json,
    None,
}

#[derive(Debug, Args)]
pub struct GenerationArgs {
    /// Beam width (1 = greedy) [default: the model's setting].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub beams: Option<u32>,

    /// Maximum output length in tokens, counting the start token as the reference does (and
    /// the end token, which most models force): at least 3 [default: the model's setting].
    #[arg(long, value_name = "N", value_parser = at_least(3u32, MAX_LENGTH_WHY))]
    pub max_length: Option<u32>,

    /// Minimum output length in tokens, counting the start token; less than --max-length
    /// [default: the model's setting].
    #[arg(long, value_name = "N")]
    pub min_length: Option<u32>,

    /// Exponent of the length normalisation of beam scores (>1 favours longer outputs, <0
    /// shorter ones) [default: the model's setting].
    #[arg(long, value_name = "F", allow_negative_numbers = true, value_parser = finite)]
    pub length_penalty: Option<f32>,

    /// Never repeat an n-gram of this size [default: the model's setting].
    #[arg(long, value_name = "N")]
    pub no_repeat_ngram_size: Option<u32>,

    /// Penalise tokens already generated (1.0 = off), above 0 [default: the model's setting;
    /// 1.1 over the last 64 tokens for chat models].
    #[arg(long, value_name = "F", allow_negative_numbers = true,
          value_parser = repetition_penalty)]
    pub repetition_penalty: Option<f32>,
}

impl GenerationArgs {
    /// Checks what clap cannot: that the settings leave the output a way to end.
    pub fn check(&self) -> crate::Result<()> {
        if let (Some(min), Some(max)) = (self.min_length, self.max_length) {
            if min >= max {
                // The end token is blocked below --min-length and forced at --max-length.
                return Err(crate::Error::usage(format!(
                    "--min-length {min} must be less than --max-length {max}: the output could not end; \
                     lower --min-length or raise --max-length"
                )));
            }
        }
        Ok(())
    }
}

/// A Hugging Face boolean variable as `huggingface_hub` reads one: `1`, `true`, `yes` or `on`
/// in any case is true, anything else false (so `HF_HUB_OFFLINE=0` is online, never an error).
pub(super) fn hf_boolean(s: &str) -> Result<bool, String> {
    Ok(matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    ))
}

/// `--threads` (or `RAYON_NUM_THREADS`): a count of threads, where 0, like an empty variable,
/// means the default, as it does to rayon.
pub(super) fn threads(s: &str) -> Result<u16, String> {
    match s.trim() {
        "" => Ok(0),
        n => n
            .parse::<u16>()
            .map_err(|_| format!("`{n}` is not a number of threads (0 for the default)")),
    }
}

/// Why `--max-length` starts at 3: it counts the start token, and Marian and BART models force
/// the end token at the last position, so 1 or 2 left no room for a word and the output was
/// empty.
pub(super) const MAX_LENGTH_WHY: &str =
    " (it counts the start and end tokens, so less leaves no room for a word)";

/// A whole number of at least `min`, `why` said after the bound in the error.
pub(super) fn at_least<T>(
    min: T,
    why: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy + Send + Sync + 'static,
{
    move |s: &str| match s.parse::<T>() {
        Ok(n) if n >= min => Ok(n),
        Ok(_) => Err(format!("must be at least {min}{why}")),
        Err(_) => Err(format!("must be a whole number, at least {min}")),
    }
}

/// A number that is not NaN or infinite, which `f32::from_str` accepts ("NaN", "inf") and
/// which would make every score NaN.
pub(super) fn finite_number<T: std::str::FromStr + Into<f64> + Copy>(s: &str) -> Result<T, String> {
    match s.parse::<T>() {
        Ok(x) if x.into().is_finite() => Ok(x),
        Ok(_) => Err("must be a finite number".to_string()),
        Err(_) => Err(format!("`{s}` is not a number")),
    }
}

pub(super) fn finite(s: &str) -> Result<f32, String> {
    finite_number(s).map_err(|e| format!("{e}, such as 1.0"))
}

pub(super) fn repetition_penalty(s: &str) -> Result<f32, String> {
    match finite_number::<f32>(s) {
        Ok(x) if x > 0.0 => Ok(x),
        _ => {
            Err("must be a number above 0 (1 is no penalty, above 1 penalises repeats)".to_string())
        }
    }
}

pub(super) fn positive_seconds(s: &str) -> Result<f64, String> {
    match finite_number::<f64>(s) {
        Ok(x) if x > 0.0 => Ok(x),
        _ => Err("must be a number of seconds above 0 (such as 30 or 0.5)".to_string()),
    }
}

pub(super) fn temperature(s: &str) -> Result<f64, String> {
    match finite_number::<f64>(s) {
        Ok(x) if x >= 0.0 => Ok(x),
        _ => Err("must be 0 (greedy) or a positive number (such as 0.7)".to_string()),
    }
}

pub(super) fn top_p(s: &str) -> Result<f64, String> {
    match finite_number::<f64>(s) {
        Ok(x) if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err("must be above 0 and at most 1 (such as 0.9)".to_string()),
    }
}

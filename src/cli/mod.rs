//! Command-line definitions: the commands and their own flags here, the flag groups they share
//! in [`args`].

mod args;

pub use args::*;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::hub::DEFAULT_SUMMARIZER;

/// The exit codes, printed under the top-level `--help` (each command's help has its own line)
/// and in the man page.
pub const EXIT_CODES: &str =
    "Exit codes: 0 ok, 1 some inputs failed (the others were written), 2 usage error, \
3 model error, 130 interrupted by Ctrl-C, 143 by SIGTERM, 129 by SIGHUP (finished outputs are \
kept; rerun to resume).";

/// The environment variables tarjama reads, and what for: printed under the top-level `--help`
/// and in the man page. The Hugging Face ones mean what they mean to Python's `huggingface_hub`.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        "HF_TOKEN",
        "Hugging Face access token, sent for gated and private repos",
    ),
    (
        "HF_HOME",
        "the cache is $HF_HOME/hub [default: ~/.cache/huggingface]",
    ),
    (
        "HF_HUB_CACHE",
        "the model cache itself [default: $HF_HOME/hub]",
    ),
    (
        "HF_ENDPOINT",
        "the Hub's address, for a mirror [default: https://huggingface.co]",
    ),
    (
        "HF_HUB_OFFLINE",
        "1, true, yes or on: use the cache only, as --offline",
    ),
    ("RAYON_NUM_THREADS", "CPU threads, as --threads"),
    (
        "TARJAMA_ISA",
        "cap the CPU kernels at portable, avx2, avx512, avx512-vnni or amx",
    ),
    (
        "TARJAMA_NO_MMAP",
        "1, true, yes or on: read GGUF files into memory instead of mapping them",
    ),
    (
        "NO_COLOR",
        "set and not empty: no colour in help and error messages",
    ),
    (
        "SLURM_ARRAY_TASK_*",
        "with --shard auto: the task's ID, COUNT, MIN and STEP in a Slurm job array",
    ),
    (
        "JOB_COMPLETION_INDEX",
        "with --shard auto: the pod's index in a Kubernetes Indexed Job",
    ),
];

/// The top-level help's epilogue: the exit codes and the environment.
fn after_help() -> String {
    let mut text = format!("{EXIT_CODES}\n\nEnvironment:");
    for (name, what) in ENVIRONMENT {
        text.push_str(&format!("\n  {name:21} {what}"));
    }
    text
}

#[derive(Debug, Parser)]
#[command(
    name = "tarjama",
    version,
    about = "Translate Arabic news articles into English with open models, offline-capable, on CPU or GPU",
    propagate_version = true,
    after_help = after_help()
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// CPU threads for the model's arithmetic [default: the physical cores this process may run
    /// on; so does 0].
    #[arg(long, global = true, value_name = "N", env = "RAYON_NUM_THREADS",
          value_parser = threads)]
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
  tarjama translate --shard auto archive/ -o english/   # one part per Slurm array task

Files already translated are skipped (rerun an interrupted run to resume; --force redoes them).
A file that cannot be read is reported and skipped; the run goes on and exits with 1.
Exit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 model error, 130 interrupted (143 SIGTERM, 129 SIGHUP).")]
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

Exit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 model error, 130 interrupted (143 SIGTERM, 129 SIGHUP).")]
    Summarize(SummarizeArgs),

    /// Serve translations (and summaries) over HTTP with the LibreTranslate API: the model loads
    /// once and concurrent requests are decoded together in batches.
    #[command(after_help = "Examples:
  tarjama serve                                   # http://127.0.0.1:5000, opus-mt-tc-big-ar-en
  tarjama serve --host 0.0.0.0 --port 8080 --api-keys keys.txt
  tarjama serve --model opus-mt-ar-en --summarizer distilbart-cnn-12-6
  curl -s localhost:5000/translate -H 'Content-Type: application/json' \\
       -d '{\"q\": \"مرحبا بالعالم\", \"source\": \"ar\", \"target\": \"en\"}'

Endpoints: POST /translate, GET /languages, POST /detect (LibreTranslate's), POST /summarize,
GET /health (503 until the model is loaded), GET /metrics (Prometheus).
On CPU the server decodes up to 64 sentences a call (--batch-size), the command line 16.
SIGTERM or Ctrl-C stops accepting connections, answers the requests in flight, and exits 0.
Exit codes: 0 stopped by a signal after draining, 2 usage error, 3 model error.")]
    Serve(ServeArgs),

    /// List, download, inspect, verify and remove the preset models in the Hugging Face cache, and
    /// save a model's int8 weights once (quantize).
    #[command(after_help = "Examples:
  tarjama models list
  tarjama models download opus-mt-ar-en      # prefetch for offline use
  tarjama models info nllb-200-distilled-600m
  tarjama models verify opus-mt-ar-en        # hashes of the cached files
  tarjama models rm opus-mt-ar-en
  tarjama models quantize opus-mt-tc-big-ar-en   # int8 weights saved once, for --quantize q8_0

Exit codes: 0 ok, 1 verification failed or the int8 weights cannot be written, 2 usage error,
3 model error.")]
    Models {
        #[command(subcommand)]
        action: ModelsCommand,
    },

    /// Score translations (BLEU, chrF, chrF++, as sacrebleu) or summaries (ROUGE, as
    /// rouge-score) against references, translating the source first unless --hyp is given.
    #[command(after_help = "Examples:
  tarjama eval --src test.ar.txt --ref test.en.txt --model opus-mt-ar-en
  tarjama eval --hyp system.en.txt --ref test.en.txt
  tarjama eval --hyp system.en.txt --ref ref1.en.txt --ref ref2.en.txt --chrf-word-order 2
  tarjama eval --task summarize --hyp summaries.txt --ref highlights.txt --format json

Files hold one segment per line; hypotheses and references must have the same number of lines.
Scores are sacrebleu 2.6.0's, bit for bit, and carry its signature (version:2.6.0, the release
they are tested against), so they can be cited as sacrebleu scores.
Exit codes: 0 ok, 1 unreadable input, 2 usage error, 3 model error.")]
    Eval(EvalArgs),

    /// Write the manual pages, made from these definitions: tarjama(1) to stdout, or with -o
    /// one page per command (tarjama.1, tarjama-translate.1, ...) into a directory.
    #[command(after_help = "Examples:
  tarjama man | man -l -
  tarjama man -o ~/.local/share/man/man1")]
    Man {
        /// Directory to write the pages into, created if missing [default: tarjama(1) to stdout].
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },

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
    /// Quantize an encoder-decoder model's linear layers to int8 once and save them beside its
    /// weights (tarjama-q8_0.safetensors, in the layout the CPU kernel reads), so that
    /// `--quantize q8_0` loads them as fast as f32 weights instead of quantizing at every load.
    /// The file records the weights it was made from (size and modification time) and the
    /// kernel's layout: when either changes it is not read (a warning says so) until this
    /// command is run again. Up-to-date weights are left as they are. x86-64 CPUs with AVX2 and
    /// FMA or AVX-512 only: elsewhere `--quantize` always quantizes at load.
    #[command(after_help = "Examples:
  tarjama models quantize opus-mt-tc-big-ar-en
  tarjama models quantize ./my-marian-model
  tarjama translate --quantize q8_0 --model opus-mt-tc-big-ar-en article.txt

Exit codes: 0 saved or up to date, 1 the model's directory is not writable, 2 a GGUF chat model
or a CPU without the int8 kernel, 3 model error.")]
    Quantize {
        /// A preset, Hub repo id or local directory, as `--model` takes.
        #[arg(value_name = "MODEL")]
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// References, one segment per line; repeat for several references per segment (BLEU and
    /// chrF then score as sacrebleu does with several reference files).
    #[arg(long = "ref", value_name = "FILE", required = true)]
    pub reference: Vec<PathBuf>,

    /// Word n-gram order of chrF: 0 is chrF (sacrebleu's default), 2 is chrF++ (NLLB's
    /// published metric).
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u8).range(0..=2))]
    pub chrf_word_order: u8,

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

    #[command(flatten)]
    pub runtime: RuntimeArgs,
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
    /// Arabic one) [default: opus-mt-tc-big-ar-en].
    #[arg(long, value_name = "MODEL")]
    pub translator: Option<String>,

    /// Print the full English translation before the summary (encoder-decoder summarizers).
    #[arg(long)]
    pub show_translation: bool,

    /// The language an encoder-decoder summarizer reads, for models without a preset: `en`
    /// (the article is translated first) or `ar` (the Arabic summary is translated) [default:
    /// the preset's, else en].
    #[arg(long, value_name = "LANG", value_parser = ["en", "ar"])]
    pub summarizer_reads: Option<String>,

    /// Length of the summary in sentences.
    #[arg(long, value_name = "N", conflicts_with = "words", default_value_t = 3)]
    pub sentences: u32,

    /// Length of the summary in words, ending at a sentence boundary (instead of --sentences).
    #[arg(long, value_name = "N")]
    pub words: Option<u32>,

    /// Do not check the summary against the article. By default every summary sentence's
    /// names, numbers and dates must appear in the article (its translation, or the Arabic for
    /// numbers, dates and transliterated names); a sentence that fails is written again with
    /// those words banned, and dropped if it still fails.
    #[arg(long)]
    pub no_check: bool,

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

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,

    /// A summarizer for POST /summarize: a GGUF chat model, or an encoder-decoder summarizer
    /// (which works through --model's translations). Without it, /summarize answers 404.
    #[arg(long, value_name = "MODEL")]
    pub summarizer: Option<String>,

    /// Do not check /summarize's summaries against their articles (see `summarize --help`).
    #[arg(long)]
    pub no_check: bool,

    /// The address to listen on; 0.0.0.0 for every interface (in a container).
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    pub host: String,

    /// The port to listen on; 0 picks a free one (the address is printed at startup).
    #[arg(long, default_value_t = 5000, value_name = "PORT")]
    pub port: u16,

    /// A file of API keys, one a line (blank lines and lines starting with # are skipped): when
    /// given, every request but /languages, /health and /metrics needs a valid `api_key`.
    #[arg(long, value_name = "FILE")]
    pub api_keys: Option<PathBuf>,

    /// Requests admitted at once, waiting or being translated; one more is refused with 429
    /// and Retry-After.
    #[arg(long, default_value_t = 256, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_queue: u32,

    /// Characters of text (all of `q`) one request may send; more is refused with 413.
    #[arg(long, default_value_t = 100_000, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_chars: u32,

    /// Seconds a request may wait and be translated before it is answered with 504.
    #[arg(long, default_value_t = 120.0, value_name = "SECONDS", value_parser = positive_seconds)]
    pub timeout: f64,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

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

    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl Cli {
    /// Checks the settings that depend on each other, before anything is read or loaded.
    pub fn check(&self) -> crate::Result<()> {
        match &self.command {
            Command::Translate(args) => args.generation.check(),
            Command::Summarize(args) => args.generation.check(),
            Command::Eval(args) => args.generation.check(),
            Command::Serve(args) => args.generation.check(),
            Command::Models { .. } | Command::Completions { .. } | Command::Man { .. } => Ok(()),
        }
    }

    /// Whether `--verbose` was given, for how errors are printed.
    pub fn verbose(&self) -> bool {
        match &self.command {
            Command::Translate(args) => args.runtime.verbose,
            Command::Summarize(args) => args.runtime.verbose,
            Command::Eval(args) => args.runtime.verbose,
            Command::Serve(args) => args.runtime.verbose,
            Command::Models { .. } | Command::Completions { .. } | Command::Man { .. } => false,
        }
    }

    /// Whether the command handles SIGINT and SIGTERM itself instead of through
    /// [`crate::interrupt`]: the server drains its requests and exits 0, where a batch run stops
    /// at the next batch with 130 or 143.
    pub fn handles_signals(&self) -> bool {
        matches!(self.command, Command::Serve(_))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["tarjama"].iter().chain(args))
    }

    #[test]
    fn the_edges_of_each_range_are_accepted() {
        let cli = parse(&[
            "summarize",
            "--temperature",
            "0",
            "--top-p",
            "1",
            "--max-tokens",
            "1",
            "--max-length",
            "3",
            "--min-length",
            "2",
            "--length-penalty",
            "-0.5",
            "--repetition-penalty",
            "0.01",
        ])
        .unwrap();
        assert!(cli.check().is_ok());
        let Command::Summarize(args) = cli.command else {
            panic!("summarize")
        };
        assert_eq!(args.chat.top_p, Some(1.0));
        assert_eq!(args.generation.length_penalty, Some(-0.5));
    }

    #[test]
    fn values_outside_the_ranges_are_value_errors() {
        for args in [
            ["--temperature", "-0.1"],
            ["--top-p", "1.01"],
            ["--top-p", "-0"],
            ["--max-tokens", "0"],
            ["--length-penalty", "inf"],
            ["--repetition-penalty", "nan"],
            ["--max-length", "x"],
        ] {
            let err = parse(&["summarize", args[0], args[1]]).err();
            assert_eq!(
                err.map(|e| e.kind()),
                Some(clap::error::ErrorKind::ValueValidation),
                "{args:?}"
            );
        }
    }
}

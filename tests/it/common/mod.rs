//! Helpers shared by the integration tests: where the fixtures are, tensor comparison, the
//! generation settings the fixture scripts record, and running a test in a process of its own.
//! examples/gpu_check.rs includes this file too, without the submodules only tests use.

use std::path::PathBuf;

use candle_core::Tensor;
use serde::Deserialize;
use tarjama::generate::{EarlyStopping, GenerationConfig};

#[cfg(test)]
mod cli;
#[cfg(test)]
pub mod metrics;

#[cfg(test)]
pub use cli::{ntrex, ntrex_lines, stderr_of, stdout_of, succeeded, tarjama, translate_cmd};

/// `TARJAMA_FIXTURES` points the tests at another fixture set (the GPU check copies them).
pub fn fixtures() -> PathBuf {
    std::env::var_os("TARJAMA_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"))
}

/// The shared data directory (NTREX, the example article) next to the repository.
pub fn shared_data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// `path` in the shared data directory.
pub fn shared(path: &str) -> PathBuf {
    shared_data().join(path)
}

/// Where the real test model is (Qwen2.5-Coder-0.5B-Instruct Q4_K_M), present or not: the same
/// lookup as scripts/fetch-test-model, where an empty variable counts as unset, as `:-` does.
pub fn test_model_path() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let dir = var("TARJAMA_TEST_MODELS").unwrap_or_else(|| {
        let cache =
            var("XDG_CACHE_HOME").unwrap_or_else(|| var("HOME").unwrap_or_default().join(".cache"));
        cache.join("tarjama/test-models")
    });
    dir.join("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
}

/// The real test model, or `None` after saying why the calling test is skipped.
#[cfg(test)]
pub fn real_test_model() -> Option<PathBuf> {
    let path = test_model_path();
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipped: real test model not found at {}; run scripts/fetch-test-model",
            path.display()
        );
        None
    }
}

/// The files below `dir` (none if it does not exist), by path relative to it, and their
/// contents (empty where a file is not UTF-8 text).
#[cfg(test)]
pub fn tree(dir: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    out
}

/// The largest difference over the real positions of `[rows, len, ..]` outputs: the first
/// `mask` row's count of ones in each row (padding is at the end). Padded positions are never
/// attended to, and tarjama computes them differently (or not at all).
pub fn max_abs_diff_real(ours: &Tensor, theirs: &Tensor, mask: &Tensor) -> f32 {
    let rows: Vec<Vec<u32>> = mask
        .to_dtype(candle_core::DType::U32)
        .unwrap()
        .to_vec2()
        .unwrap();
    let mut worst = 0f32;
    for (r, row) in rows.iter().enumerate() {
        let n = row.iter().filter(|&&v| v == 1).count();
        let real = |t: &Tensor| t.get(r).unwrap().narrow(0, 0, n).unwrap();
        worst = worst.max(max_abs_diff(&real(ours), &real(theirs)));
    }
    worst
}

pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

/// The effective generation settings of a recorded case.
#[derive(Deserialize)]
pub struct Params {
    pub num_beams: usize,
    pub length_penalty: f32,
    pub early_stopping: serde_json::Value,
    pub no_repeat_ngram_size: usize,
    pub repetition_penalty: f32,
    pub max_length: usize,
    pub min_length: usize,
    pub batch_size: usize,
    pub renormalize_logits: bool,
    #[serde(default)]
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<u32>,
    pub bad_words_ids: Vec<Vec<u32>>,
}

impl Params {
    pub fn apply(&self, g: &mut GenerationConfig) {
        g.num_beams = self.num_beams;
        g.length_penalty = self.length_penalty;
        g.early_stopping = match &self.early_stopping {
            serde_json::Value::Bool(true) => EarlyStopping::Yes,
            serde_json::Value::String(s) if s == "never" => EarlyStopping::Never,
            _ => EarlyStopping::Heuristic,
        };
        g.no_repeat_ngram_size = self.no_repeat_ngram_size;
        g.repetition_penalty = self.repetition_penalty;
        g.max_length = self.max_length;
        g.min_length = self.min_length;
        g.renormalize_logits = self.renormalize_logits;
        g.forced_bos_token_id = self.forced_bos_token_id;
        g.forced_eos_token_id = self.forced_eos_token_id;
        g.bad_words_ids = self.bad_words_ids.clone();
    }
}

/// Every added token has the id and the special flag transformers gave it, and the special
/// ones, in order, are the tokenizer's special ids.
pub fn assert_added_tokens(tok: &tarjama::tokenizer::GgufTokenizer, added: &[(&str, u32, bool)]) {
    for &(content, id, special) in added {
        assert_eq!(tok.token_id(content), Some(id), "{content}");
        assert_eq!(tok.is_special(id), special, "{content} special");
    }
    let want: Vec<u32> = added.iter().filter(|a| a.2).map(|a| a.1).collect();
    assert_eq!(tok.special_ids(), want);
}

/// Whether the calling test should run its body here: `true` in a process of its own, `false`
/// after it has run the test in one (and asserted that it passed).
///
/// A test that measures the peak memory of the processes it starts needs a process to itself:
/// `RUSAGE_CHILDREN` is the largest of all the children a process has waited for, and a child's
/// peak starts from its parent's, which the other tests of this one binary raise.
/// `module` is `module_path!()` and `test` the test function's name.
#[cfg(test)]
pub fn alone_in_a_process(module: &str, test: &str) -> bool {
    const ALONE: &str = "TARJAMA_TEST_ALONE";
    if std::env::var_os(ALONE).is_some() {
        return true;
    }
    // The harness names tests by their path below the crate root.
    let module = module.split_once("::").map_or("", |(_, rest)| rest);
    let name = format!("{module}::{test}");
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(ALONE, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed in its own process:\n{stdout}{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run:\n{stdout}{stderr}"
    );
    eprint!("{stderr}");
    false
}

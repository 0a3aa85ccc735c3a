//! Model presets and resolution of `--model` to a directory of files: a local directory, a preset
//! name, or a Hub repo id (`owner/name[@revision]`) fetched into the standard Hugging Face cache,
//! so files a user already downloaded with Python are reused.

mod files;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use serde::Deserialize;

use crate::{Error, Result};

pub use files::{shard_names, ModelFiles};

/// The default translation model: the best published Arabic→English OPUS-MT figures.
pub const DEFAULT_TRANSLATOR: &str = "opus-mt-tc-big-ar-en";

/// Preset files, compiled in so the binary works from any directory.
const PRESET_SOURCES: &[&str] = &[
    include_str!("../../models/opus-mt-ar-en.toml"),
    include_str!("../../models/opus-mt-tc-big-ar-en.toml"),
    include_str!("../../models/qwen2.5-0.5b-instruct.toml"),
    include_str!("../../models/qwen2.5-1.5b-instruct.toml"),
    include_str!("../../models/distilbart-cnn-12-6.toml"),
    include_str!("../../models/bart-large-cnn.toml"),
    include_str!("../../models/nllb-200-distilled-600m.toml"),
    include_str!("../../models/nllb-200-distilled-1.3b.toml"),
    include_str!("../../models/flan-t5-base.toml"),
    include_str!("../../models/flan-t5-large.toml"),
    include_str!("../../models/mt5-xlsum.toml"),
    include_str!("../../models/madlad400-3b.toml"),
];

/// The default chat model for summaries.
pub const DEFAULT_SUMMARIZER: &str = "qwen2.5-1.5b-instruct";

/// What an encoder-decoder model needs besides weights: its config and a tokenizer, either a
/// `tokenizer.json` (BART, NLLB, T5), T5's `spiece.model` alone, or Marian's SentencePiece files.
const REQUIRED_FILES: &[&str] = &["config.json"];
const MARIAN_TOKENIZER_FILES: &[&str] = &["source.spm", "target.spm", "vocab.json"];
const OPTIONAL_FILES: &[&str] = &[
    "generation_config.json",
    "tokenizer_config.json",
    "tokenizer.json",
    "special_tokens_map.json",
    "spiece.model",
    "source.spm",
    "target.spm",
    "vocab.json",
];
/// Weights in order of preference; the index names the shards of a large checkpoint.
const WEIGHT_FILES: &[&str] = &["model.safetensors", SHARD_INDEX, "pytorch_model.bin"];
/// The file that maps tensors to the shards of a checkpoint split over several files.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

#[derive(Debug, Clone, Deserialize)]
pub struct Score {
    pub benchmark: String,
    pub metric: String,
    pub value: f64,
    pub source: String,
}

/// One `models/*.toml` file.
#[derive(Debug, Clone, Deserialize)]
pub struct Preset {
    pub name: String,
    pub family: String,
    pub task: String,
    pub repo: String,
    pub revision: String,
    /// The single model file of a GGUF preset.
    #[serde(default)]
    pub file: Option<String>,
    /// Summarizers: the language they read (`en` or `ar`); translation presets read Arabic.
    #[serde(default)]
    pub source_language: Option<String>,
    pub license: String,
    pub description: String,
    pub files: Vec<String>,
    #[serde(default)]
    pub optional_files: Vec<String>,
    pub weights: Vec<String>,
    /// Generation settings applied over the checkpoint's own.
    #[serde(default)]
    pub generation: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub scores: Vec<Score>,
    /// Why a preset lists no published score.
    #[serde(default)]
    pub scores_note: Option<String>,
}

impl Preset {
    /// Whether the model's licence forbids commercial use (Creative Commons `-NC-` licences:
    /// NLLB-200, mT5-XLSum), which `models list` and `models info` say.
    pub fn non_commercial(&self) -> bool {
        self.license.split('-').any(|part| part == "NC")
    }

    /// The licence as `models` prints it: its SPDX id, and what a non-commercial one means.
    pub fn license_summary(&self) -> String {
        if self.non_commercial() {
            format!("{} (non-commercial use only)", self.license)
        } else {
            self.license.clone()
        }
    }

    /// The preset's generation settings as JSON, the form checkpoints store them in.
    pub fn generation_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.generation).unwrap_or_default()
    }
}

pub fn presets() -> Vec<Preset> {
    PRESET_SOURCES
        .iter()
        .map(|src| toml::from_str(src).expect("presets under models/ are valid TOML"))
        .collect()
}

pub fn find_preset(name: &str) -> Option<Preset> {
    presets().into_iter().find(|p| p.name == name)
}

/// How model files may be obtained.
#[derive(Debug, Clone, Default)]
pub struct HubOptions {
    /// Never touch the network; only the cache is used (`--offline` or `HF_HUB_OFFLINE=1`).
    pub offline: bool,
    /// Show download progress bars.
    pub progress: bool,
}

impl HubOptions {
    pub fn from_env(offline_flag: bool, progress: bool) -> Self {
        let env_offline = std::env::var("HF_HUB_OFFLINE")
            .map(|v| {
                matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "1" | "true" | "yes" | "on"
                )
            })
            .unwrap_or(false);
        Self {
            offline: offline_flag || env_offline,
            progress,
        }
    }
}

/// Resolves `--model`: an existing directory, a preset name, or `owner/name[@revision]`.
pub fn resolve(spec: &str, opts: &HubOptions) -> Result<ModelFiles> {
    let path = Path::new(spec);
    if path.is_dir() {
        return resolve_local(path);
    }
    if let Some(preset) = find_preset(spec) {
        let files: Vec<&str> = preset.files.iter().map(String::as_str).collect();
        let optional: Vec<&str> = preset.optional_files.iter().map(String::as_str).collect();
        let weights: Vec<&str> = preset.weights.iter().map(String::as_str).collect();
        let mut resolved = fetch(
            &preset.repo,
            &preset.revision,
            &files,
            &optional,
            &weights,
            opts,
        )?;
        resolved.name = preset.name.clone();
        resolved.preset = Some(preset);
        return Ok(resolved);
    }
    if spec.contains('/') && !spec.starts_with('.') && !path.is_absolute() {
        let (repo, revision) = spec.split_once('@').unwrap_or((spec, "main"));
        check_repo_path(spec, "revision", revision)?;
        let resolved = fetch(
            repo,
            revision,
            REQUIRED_FILES,
            OPTIONAL_FILES,
            WEIGHT_FILES,
            opts,
        )?;
        check_tokenizer_files(&resolved.dir, &resolved.name)?;
        return Ok(resolved);
    }
    if path.exists() {
        return Err(Error::model(format!(
            "--model {spec} is a file, not a model directory: point it at the directory holding config.json"
        )));
    }
    let names: Vec<String> = presets().into_iter().map(|p| p.name).collect();
    Err(Error::model(format!(
        "unknown model {spec:?}: use a preset ({}), a Hub repo id such as Helsinki-NLP/opus-mt-ar-en, or a local directory",
        names.join(", ")
    )))
}

/// Refuses a revision or file name given in `--model` that is not a plain relative path. The Hub
/// cache joins both to its directories (`refs/<revision>`, `snapshots/<commit>/<file>`), so `..`
/// or a leading `/` would read a model from anywhere on disk and record the string as its
/// revision, and a download would create refs and links outside the cache.
fn check_repo_path(spec: &str, what: &str, value: &str) -> Result<()> {
    let parts_ok = value
        .split('/')
        .all(|part| !part.is_empty() && part != "." && part != "..");
    let chars_ok = !value.chars().any(|c| c == '\\' || c.is_control());
    if parts_ok && chars_ok {
        return Ok(());
    }
    Err(Error::usage(format!(
        "--model {spec:?} has the {what} {value:?}, which is not allowed: a revision is a \
         branch, tag or commit and a file a path in the repo, both in parts separated by `/`, \
         none empty, `.` or `..`, without `\\` or control characters"
    )))
}

/// Whether a file the cache gives lies inside it. The commit a ref names is read from the
/// cache's `refs` files and joined to `snapshots/` as it is, so a ref holding `../..` (or an
/// absolute path) would lead anywhere; such an entry is treated as absent.
fn in_cache(path: &Path, cache: &Cache) -> bool {
    path.strip_prefix(cache.path()).is_ok_and(|rest| {
        rest.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    })
}

/// A model needs `tokenizer.json`, T5's `spiece.model`, or the complete set of Marian tokenizer
/// files.
fn check_tokenizer_files(dir: &Path, name: &str) -> Result<()> {
    if dir.join("tokenizer.json").is_file() || dir.join("spiece.model").is_file() {
        return Ok(());
    }
    match MARIAN_TOKENIZER_FILES
        .iter()
        .find(|file| !dir.join(file).is_file())
    {
        Some(file) => Err(Error::model(format!(
            "model {name} has no tokenizer.json or spiece.model and is missing {file}: download the complete model or point --model at a directory that has its tokenizer"
        ))),
        None => Ok(()),
    }
}

fn resolve_local(dir: &Path) -> Result<ModelFiles> {
    for file in REQUIRED_FILES {
        if !dir.join(file).is_file() {
            return Err(Error::model(format!(
                "model directory {} is missing {file}: download the complete model or point --model at a directory that has it",
                dir.display()
            )));
        }
    }
    check_tokenizer_files(dir, &dir.display().to_string())?;
    let weights = WEIGHT_FILES
        .iter()
        .map(|w| dir.join(w))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::model(format!(
                "model directory {} has no weights: it needs model.safetensors (or its shards with model.safetensors.index.json) or pytorch_model.bin",
                dir.display()
            ))
        })?;
    Ok(ModelFiles {
        name: dir.display().to_string(),
        dir: dir.to_path_buf(),
        weights,
        preset: None,
        source: dir.display().to_string(),
    })
}

/// The Hugging Face cache: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn cache() -> Cache {
    match std::env::var_os("HF_HUB_CACHE") {
        Some(dir) if !dir.is_empty() => Cache::new(PathBuf::from(dir)),
        _ => Cache::from_env(),
    }
}

fn fetch(
    repo_id: &str,
    revision: &str,
    files: &[&str],
    optional: &[&str],
    weights: &[&str],
    opts: &HubOptions,
) -> Result<ModelFiles> {
    let repo = Repo::with_revision(repo_id.to_string(), RepoType::Model, revision.to_string());
    let cache = cache();
    let cached = cache.repo(repo.clone());
    let source = format!("{repo_id}@{revision}");

    let api = if opts.offline {
        None
    } else {
        let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.is_empty());
        let mut builder = ApiBuilder::from_cache(cache.clone()).with_progress(opts.progress);
        if token.is_some() {
            builder = builder.with_token(token);
        }
        if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
            builder = builder.with_endpoint(endpoint);
        }
        Some(
            builder
                .build()
                .map_err(|e| Error::model(format!("cannot set up Hub access for {source}: {e}")))?,
        )
    };
    let get = |file: &str| -> std::result::Result<PathBuf, String> {
        if let Some(path) = cached.get(file).filter(|path| in_cache(path, &cache)) {
            return Ok(path);
        }
        match &api {
            None => Err("not in the cache".into()),
            Some(api) => api.repo(repo.clone()).get(file).map_err(|e| e.to_string()),
        }
    };
    let offline_hint = |file: &str| {
        format!(
            "{file} of {source} is not in the Hugging Face cache ({}) and --offline/HF_HUB_OFFLINE forbids downloading: run once online, or `hf download {repo_id}`",
            cache.path().display()
        )
    };

    let mut dir = None;
    for file in files {
        let path = get(file).map_err(|e| {
            if opts.offline {
                Error::model(offline_hint(file))
            } else {
                Error::model(format!(
                    "cannot download {file} from {source}: {e}. Check the repo id and your connection (HF_TOKEN for gated repos)"
                ))
            }
        })?;
        dir.get_or_insert_with(|| path.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    for file in optional {
        let _ = get(file);
    }
    let mut weight_errors = Vec::new();
    let weights_path = weights.iter().find_map(|w| match get(w) {
        Ok(path) => Some(path),
        Err(e) => {
            weight_errors.push(format!("{w}: {e}"));
            None
        }
    });
    let weights_path = weights_path.ok_or_else(|| {
        if opts.offline {
            Error::model(offline_hint(&weights.join(" or ")))
        } else {
            Error::model(format!(
                "cannot get the weights of {source} ({})",
                weight_errors.join("; ")
            ))
        }
    })?;
    if weights_path.ends_with(SHARD_INDEX) {
        for shard in shard_names(&weights_path)? {
            get(&shard).map_err(|e| {
                if opts.offline {
                    Error::model(offline_hint(&shard))
                } else {
                    Error::model(format!("cannot download {shard} from {source}: {e}"))
                }
            })?;
        }
    }
    let dir = dir.unwrap_or_else(|| {
        weights_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    });
    Ok(ModelFiles {
        name: repo_id.to_string(),
        dir,
        weights: weights_path,
        preset: None,
        source,
    })
}

/// Whether `--model` names a GGUF chat model: a `.gguf` path, a GGUF preset, or
/// `owner/name:file.gguf`.
pub fn is_gguf(spec: &str) -> bool {
    spec.ends_with(".gguf")
        || find_preset(spec).is_some_and(|p| p.family == "gguf")
        || spec.split('@').next().is_some_and(|s| s.ends_with(".gguf"))
}

/// Resolves a GGUF chat model to a local file: a path, a preset, or `owner/name:file.gguf[@rev]`.
pub fn resolve_gguf(spec: &str, opts: &HubOptions) -> Result<ModelFiles> {
    let path = Path::new(spec);
    if path.is_file() {
        return Ok(ModelFiles {
            name: spec.to_string(),
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            weights: path.to_path_buf(),
            preset: None,
            source: spec.to_string(),
        });
    }
    let (repo, revision, file, preset) = if let Some(preset) = find_preset(spec) {
        let file = preset
            .file
            .clone()
            .ok_or_else(|| Error::model(format!("preset {spec} names no GGUF file")))?;
        (
            preset.repo.clone(),
            preset.revision.clone(),
            file,
            Some(preset),
        )
    } else {
        let (spec_no_rev, revision) = spec.split_once('@').unwrap_or((spec, "main"));
        match spec_no_rev.split_once(':') {
            Some((repo, file)) if repo.contains('/') => {
                check_repo_path(spec, "revision", revision)?;
                check_repo_path(spec, "file name", file)?;
                (repo.to_string(), revision.to_string(), file.to_string(), None)
            }
            _ => {
                return Err(Error::model(format!(
                    "GGUF model {spec:?} not found: give a local .gguf file, a preset, or owner/repo:file.gguf"
                )))
            }
        }
    };
    let mut resolved = fetch(&repo, &revision, &[], &[], &[file.as_str()], opts)?;
    resolved.name = preset
        .as_ref()
        .map_or_else(|| repo.clone(), |p| p.name.clone());
    resolved.preset = preset;
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_default_exists() {
        let all = presets();
        assert!(all.len() >= 2);
        assert!(find_preset(DEFAULT_TRANSLATOR).is_some());
        assert!(find_preset(DEFAULT_SUMMARIZER).is_some_and(|p| p.file.is_some()));
        for p in &all {
            assert!(
                !p.scores.is_empty() || p.scores_note.is_some(),
                "{} has no published scores and no note saying why",
                p.name
            );
            if p.family == "marian" {
                assert_eq!(p.generation_json()["num_beams"], 4);
            }
        }
        assert!(
            is_gguf(DEFAULT_SUMMARIZER) && is_gguf("x/y:model.gguf") && !is_gguf("opus-mt-ar-en")
        );
    }

    #[test]
    fn unknown_name_lists_presets() {
        let err = resolve("no-such-model", &HubOptions::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("opus-mt-ar-en"), "{msg}");
        assert_eq!(err.exit_code(), 3);
    }
}

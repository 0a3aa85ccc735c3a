//! `tarjama models`: the presets and their files in the Hugging Face cache.
//!
//! The cache is hf-hub's (and Python's `huggingface_hub`'s) layout:
//! `models--owner--name/refs/<revision>` holds a commit, `snapshots/<commit>/<file>` links to
//! `blobs/<etag>`. The Hub's etag of a file stored with Git LFS (all weights) is the SHA-256 of its
//! content, and of any other file its Git blob SHA-1, so the cache itself records the hash each
//! file must have: `verify` needs no network.

use std::io::Read;
use std::path::{Path, PathBuf};

use hf_hub::{Repo, RepoType};
use sha1::Digest;

use super::batch::Outcome;
use super::quantize;
use crate::cli::{ListFormat, ModelsCommand};
use crate::hub::{self, HubOptions, Preset};
use crate::{Error, Result};

pub fn run(command: ModelsCommand) -> Result<Outcome> {
    match command {
        ModelsCommand::List { format } => list(format),
        ModelsCommand::Download { name } => download(&name),
        ModelsCommand::Info { name } => info(&name),
        ModelsCommand::Verify { name } => verify(&name),
        ModelsCommand::Rm { name } => remove(&name),
        ModelsCommand::Quantize { name } => quantize::quantize(&name),
    }
}

fn preset(name: &str) -> Result<Preset> {
    hub::find_preset(name).ok_or_else(|| {
        let names: Vec<String> = hub::presets().into_iter().map(|p| p.name).collect();
        Error::model(format!(
            "unknown preset {name:?}: the presets are {}",
            names.join(", ")
        ))
    })
}

/// The preset's folder in the cache.
fn repo_dir(preset: &Preset) -> PathBuf {
    let repo = Repo::with_revision(
        preset.repo.clone(),
        RepoType::Model,
        preset.revision.clone(),
    );
    hub::cache().path().join(repo.folder_name())
}

/// The snapshot of the preset's revision, if its ref is cached.
fn snapshot_dir(preset: &Preset) -> Option<PathBuf> {
    let dir = repo_dir(preset);
    let commit = std::fs::read_to_string(dir.join("refs").join(&preset.revision)).ok()?;
    Some(dir.join("snapshots").join(commit.trim())).filter(|d| d.is_dir())
}

/// What of a preset is cached: the files it needs that are there, the ones missing, and the size
/// of what is there.
struct CacheState {
    present: Vec<PathBuf>,
    missing: Vec<String>,
    bytes: u64,
}

fn cache_state(preset: &Preset) -> CacheState {
    let snapshot = snapshot_dir(preset);
    let in_snapshot = |file: &str| {
        snapshot
            .as_ref()
            .map(|d| d.join(file))
            .filter(|p| p.is_file())
    };
    let mut present = Vec::new();
    let mut missing = Vec::new();
    let mut required: Vec<&str> = preset.files.iter().map(String::as_str).collect();
    required.extend(preset.file.as_deref());
    for file in required {
        match in_snapshot(file) {
            Some(p) => present.push(p),
            None => missing.push(file.to_string()),
        }
    }
    if !preset.weights.is_empty() {
        match preset.weights.iter().find_map(|w| in_snapshot(w)) {
            Some(p) => present.push(p),
            None => missing.push(preset.weights.join(" or ")),
        }
    }
    present.extend(preset.optional_files.iter().filter_map(|f| in_snapshot(f)));
    // Shards of a split checkpoint are listed in its index.
    if let Some(index) = present
        .iter()
        .find(|p| p.ends_with(hub::SHARD_INDEX))
        .cloned()
    {
        for shard in hub::shard_names(&index).unwrap_or_default() {
            match in_snapshot(&shard) {
                Some(p) => present.push(p),
                None => missing.push(shard),
            }
        }
    }
    // `metadata` follows the snapshot's links to the blobs.
    let bytes = present
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    CacheState {
        present,
        missing,
        bytes,
    }
}

fn status(state: &CacheState) -> &'static str {
    match (state.present.is_empty(), state.missing.is_empty()) {
        (true, _) => "no",
        (false, true) => "yes",
        (false, false) => "partial",
    }
}

/// `1234567` → `1.2 MB`.
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn list(format: ListFormat) -> Result<Outcome> {
    let presets = hub::presets();
    if format == ListFormat::Json {
        for p in &presets {
            let state = cache_state(p);
            let line = serde_json::json!({
                "name": p.name,
                "family": p.family,
                "task": p.task,
                "repo": p.repo,
                "revision": p.revision,
                "license": p.license,
                "commercial_use": !p.non_commercial(),
                "cached": status(&state),
                "cached_bytes": state.bytes,
                "description": p.description,
            });
            println!("{line}");
        }
        return Ok(Outcome::Success);
    }
    let width = presets.iter().map(|p| p.name.len()).max().unwrap_or(4);
    let licenses: Vec<String> = presets.iter().map(Preset::license_summary).collect();
    let lwidth = licenses.iter().map(String::len).max().unwrap_or(7);
    println!(
        "{:width$}  {:13}  {:7}  {:>9}  {:lwidth$}  DESCRIPTION",
        "NAME", "TASK", "CACHED", "SIZE", "LICENSE"
    );
    for (p, license) in presets.iter().zip(&licenses) {
        let state = cache_state(p);
        let size = if state.present.is_empty() {
            "-".to_string()
        } else {
            human_size(state.bytes)
        };
        println!(
            "{:width$}  {:13}  {:7}  {:>9}  {license:lwidth$}  {}",
            p.name,
            p.task,
            status(&state),
            size,
            p.description
        );
    }
    println!("cache: {}", hub::cache().path().display());
    Ok(Outcome::Success)
}

fn download(name: &str) -> Result<Outcome> {
    let preset = preset(name)?;
    let opts = HubOptions::from_env(false, true);
    let files = if preset.family == "gguf" {
        hub::resolve_gguf(name, &opts)?
    } else {
        hub::resolve(name, &opts)?
    };
    let state = cache_state(&preset);
    println!(
        "{name}: {} in {} (revision {})",
        human_size(state.bytes),
        files.dir.display(),
        files.revision()
    );
    Ok(Outcome::Success)
}

fn info(name: &str) -> Result<Outcome> {
    let p = preset(name)?;
    let state = cache_state(&p);
    println!("name:        {}", p.name);
    println!("description: {}", p.description);
    println!("family:      {}", p.family);
    println!("task:        {}", p.task);
    println!(
        "repository:  https://huggingface.co/{} ({})",
        p.repo, p.revision
    );
    println!("license:     {}", p.license_summary());
    let mut files: Vec<String> = p.files.clone();
    files.extend(p.file.clone());
    if !p.weights.is_empty() {
        files.push(format!("weights: {}", p.weights.join(" or ")));
    }
    if !p.optional_files.is_empty() {
        files.push(format!("optional: {}", p.optional_files.join(", ")));
    }
    println!("files:       {}", files.join(", "));
    if !p.generation.is_empty() {
        let settings: Vec<String> = p
            .generation
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        println!("generation:  {}", settings.join(", "));
    }
    match status(&state) {
        "no" => println!("cached:      no (`tarjama models download {}`)", p.name),
        s => println!(
            "cached:      {s}, {} in {}{}",
            human_size(state.bytes),
            repo_dir(&p).display(),
            if state.missing.is_empty() {
                String::new()
            } else {
                format!("; missing {}", state.missing.join(", "))
            }
        ),
    }
    if state.missing.is_empty() && p.family != "gguf" {
        println!("int8:        {}", quantize::int8_status(name));
    }
    if p.scores.is_empty() {
        if let Some(note) = &p.scores_note {
            println!("scores:      none published ({note})");
        }
    } else {
        println!("published scores:");
        for s in &p.scores {
            println!("  {} {}: {} ({})", s.benchmark, s.metric, s.value, s.source);
        }
    }
    Ok(Outcome::Success)
}

/// What checking one cached file found.
enum FileCheck {
    Ok(&'static str),
    Mismatch { expected: String, actual: String },
    NoHash,
}

fn check_file(path: &Path) -> Result<FileCheck> {
    let blob = std::fs::read_link(path)
        .ok()
        .and_then(|target| target.file_name().map(|n| n.to_string_lossy().to_string()));
    let Some(etag) = blob.filter(|b| b.chars().all(|c| c.is_ascii_hexdigit())) else {
        return Ok(FileCheck::NoHash);
    };
    let read_error = |e: std::io::Error| {
        Error::input(format!(
            "cannot read {}: {e}; remove the model with `tarjama models rm` and download it again",
            path.display()
        ))
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let (actual, kind) = match etag.len() {
        64 => {
            let mut hasher = sha2::Sha256::new();
            hash_reader(&mut file, |b| hasher.update(b)).map_err(read_error)?;
            (hex(&hasher.finalize()), "SHA-256")
        }
        40 => {
            // A Git blob's id: SHA-1 over a "blob <size>\0" header and the content.
            let size = file.metadata().map_err(read_error)?.len();
            let mut hasher = sha1::Sha1::new();
            hasher.update(format!("blob {size}\0").as_bytes());
            hash_reader(&mut file, |b| hasher.update(b)).map_err(read_error)?;
            (hex(&hasher.finalize()), "Git SHA-1")
        }
        _ => return Ok(FileCheck::NoHash),
    };
    Ok(if actual == etag.to_ascii_lowercase() {
        FileCheck::Ok(kind)
    } else {
        FileCheck::Mismatch {
            expected: etag,
            actual,
        }
    })
}

fn hash_reader(reader: &mut impl Read, mut update: impl FnMut(&[u8])) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        update(&buf[..n]);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn verify(name: &str) -> Result<Outcome> {
    let p = preset(name)?;
    let state = cache_state(&p);
    if state.present.is_empty() {
        return Err(Error::model(format!(
            "{name} is not in the cache ({}): run `tarjama models download {name}` first",
            hub::cache().path().display()
        )));
    }
    let mut bad = 0;
    for path in &state.present {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        match check_file(path)? {
            FileCheck::Ok(kind) => println!("ok        {file} ({kind} matches the Hub's)"),
            FileCheck::NoHash => println!("unhashed  {file} (the cache records no hash for it)"),
            FileCheck::Mismatch { expected, actual } => {
                bad += 1;
                println!("CORRUPT   {file}: hash {actual}, the Hub recorded {expected}");
            }
        }
    }
    for file in &state.missing {
        bad += 1;
        println!("MISSING   {file}");
    }
    if bad > 0 {
        eprintln!(
            "tarjama: error: {name}: {bad} file(s) missing or corrupt: run `tarjama models rm {name}` and `tarjama models download {name}`"
        );
        return Ok(Outcome::SomeFailed);
    }
    // The hashes say the bytes are the Hub's; loading says tarjama can use them.
    let opts = HubOptions::from_env(true, false);
    let device = candle_core::Device::Cpu;
    let loaded = if p.family == "gguf" {
        hub::resolve_gguf(name, &opts)
            .and_then(|f| crate::pipeline::ChatPipeline::load(&f.weights, &device).map(drop))
    } else {
        hub::resolve(name, &opts).and_then(|f| {
            crate::pipeline::Seq2Seq::load(&f, &device, candle_core::DType::F32).map(drop)
        })
    };
    match loaded {
        Ok(()) => {
            println!("loads     {name}");
            Ok(Outcome::Success)
        }
        Err(e) => {
            eprintln!("tarjama: error: {name}: the files match but do not load: {e}");
            Ok(Outcome::SomeFailed)
        }
    }
}

fn remove(name: &str) -> Result<Outcome> {
    let p = preset(name)?;
    let dir = repo_dir(&p);
    if !dir.exists() {
        println!("{name} is not in the cache ({})", dir.display());
        return Ok(Outcome::Success);
    }
    let bytes = dir_size(&dir);
    std::fs::remove_dir_all(&dir).map_err(|source| Error::Output {
        path: dir.clone(),
        source,
    })?;
    println!(
        "removed {name}: {} freed ({})",
        human_size(bytes),
        dir.display()
    );
    Ok(Outcome::Success)
}

/// The bytes of the regular files below `dir`, links not followed (the blobs are counted once).
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_du() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1_234_567), "1.2 MB");
        assert_eq!(human_size(3_100_000_000), "3.1 GB");
    }
}

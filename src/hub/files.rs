//! A model resolved to local files, and the shards of a checkpoint split over several.

use std::path::{Path, PathBuf};

use super::{Preset, SHARD_INDEX};
use crate::{Error, Result};

/// A model resolved to local files.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// A human-readable name: the preset, repo id or directory.
    pub name: String,
    /// Where each file lives. Files from the Hub cache sit in a snapshot directory; local models
    /// in their own directory.
    pub dir: PathBuf,
    /// The weights file found (safetensors preferred), or the index of a sharded checkpoint;
    /// [`ModelFiles::weight_files`] lists the files to open.
    pub weights: PathBuf,
    pub preset: Option<Preset>,
    /// `repo@revision` for Hub models, for provenance in structured output.
    pub source: String,
}

impl ModelFiles {
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The revision the files are from: the commit of the Hub cache's snapshot they sit in (so a
    /// moving branch such as `main` is pinned down), else the revision asked for, else the local
    /// path.
    pub fn revision(&self) -> String {
        let snapshot = self
            .weights
            .parent()
            .filter(|dir| dir.parent().and_then(|p| p.file_name()) == Some("snapshots".as_ref()))
            .and_then(|dir| dir.file_name())
            .map(|name| name.to_string_lossy().to_string());
        snapshot.unwrap_or_else(|| {
            self.source
                .split_once('@')
                .map_or_else(|| self.source.clone(), |(_, rev)| rev.to_string())
        })
    }

    /// Reads a JSON file of the model directory.
    pub fn read_json(&self, name: &str) -> Result<serde_json::Value> {
        let path = self.file(name);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::model(format!(
                "cannot read {} of model {}: {e}",
                path.display(),
                self.name
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            Error::model(format!(
                "{} of model {} is not valid JSON ({e}): download the model again",
                path.display(),
                self.name
            ))
        })
    }

    /// The weights files to open: the one found, or the shards its index names, each checked
    /// to be present.
    pub fn weight_files(&self) -> Result<Vec<PathBuf>> {
        if !self.weights.ends_with(SHARD_INDEX) {
            return Ok(vec![self.weights.clone()]);
        }
        let dir = self.weights.parent().unwrap_or(Path::new("."));
        let shards: Vec<PathBuf> = shard_names(&self.weights)?
            .iter()
            .map(|name| dir.join(name))
            .collect();
        if let Some(missing) = shards.iter().find(|p| !p.is_file()) {
            return Err(Error::model(format!(
                "{} names the shard {}, which is missing: download the complete model",
                self.weights.display(),
                missing.display()
            )));
        }
        Ok(shards)
    }
}

/// The shard files a `model.safetensors.index.json` maps tensors to, each once, in order.
pub fn shard_names(index: &Path) -> Result<Vec<String>> {
    let bad = |why: String| {
        Error::model(format!(
            "{} is not a valid shard index ({why}): download the model again",
            index.display()
        ))
    };
    let text = std::fs::read_to_string(index).map_err(|e| bad(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| bad("no weight_map".into()))?;
    let mut names: Vec<String> = Vec::new();
    for file in map.values() {
        let file = file
            .as_str()
            .ok_or_else(|| bad("a shard name is not a string".into()))?;
        // Shard names are plain file names; anything else could reach outside the model.
        if file.contains('/') || file.contains('\\') || file.starts_with('.') {
            return Err(bad(format!("shard name {file:?}")));
        }
        if !names.iter().any(|n| n == file) {
            names.push(file.to_string());
        }
    }
    if names.is_empty() {
        return Err(bad("no shards".into()));
    }
    Ok(names)
}

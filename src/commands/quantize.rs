//! `tarjama models quantize`: a model's int8 weights saved once beside its weights, for
//! `--quantize q8_0` to read instead of quantizing at every load (see `pipeline::int8`).

use super::batch::Outcome;
use super::models::human_size;
use crate::hub::{self, HubOptions};
use crate::output::{self, OutputTarget};
use crate::pipeline::int8::{self, Existing};
use crate::{Error, Result};

/// Saves the int8 weights of `model` beside its weights, unless they are there and up to date.
pub(super) fn quantize(model: &str) -> Result<Outcome> {
    if hub::is_gguf(model) {
        return Err(Error::usage(format!(
            "{model} is a GGUF chat model, quantized already: `models quantize` saves the int8 weights of encoder-decoder models"
        )));
    }
    let files = hub::resolve(model, &HubOptions::from_env(false, true))?;
    let path = match int8::existing(&files)? {
        Existing::UpToDate(path) => {
            println!(
                "{}: the int8 weights in {} are up to date",
                files.name,
                path.display()
            );
            return Ok(Outcome::Success);
        }
        Existing::Missing(path) => path,
        Existing::Unusable(path, why) => {
            println!("{}: replacing {} ({why})", files.name, path.display());
            path
        }
    };
    if path.is_dir() {
        return Err(Error::Output {
            path,
            source: std::io::Error::other("a directory of that name is in the way"),
        });
    }
    if let Some(dir) = path.parent() {
        output::remove_stale_temps(dir);
    }
    // Created now, so a directory that is not writable fails before the model is loaded.
    let mut target = OutputTarget::open(Some(&path))?;
    let started = std::time::Instant::now();
    let made = int8::make(&files)?;
    target.write_bytes(&made.bytes)?;
    target.commit()?;
    println!(
        "{}: int8 weights of {} layers saved to {} ({}, {:.1}s); `--quantize q8_0` reads them from now on",
        files.name,
        made.layers,
        made.path.display(),
        human_size(made.bytes.len() as u64),
        started.elapsed().as_secs_f64()
    );
    Ok(Outcome::Success)
}

/// Whether a cached preset's int8 weights are saved (`models quantize`) and up to date.
pub(super) fn int8_status(name: &str) -> String {
    let existing = hub::resolve(name, &HubOptions::from_env(true, false))
        .and_then(|files| int8::existing(&files));
    match existing {
        Ok(Existing::UpToDate(path)) => {
            let size = std::fs::metadata(&path).map_or(0, |m| m.len());
            format!("saved, {} ({})", human_size(size), path.display())
        }
        Ok(Existing::Missing(_)) => {
            format!("not saved (`tarjama models quantize {name}` saves it for --quantize q8_0)")
        }
        Ok(Existing::Unusable(path, why)) => format!(
            "{why} ({}): `tarjama models quantize {name}` rewrites it",
            path.display()
        ),
        Err(e) => e.one_line(),
    }
}

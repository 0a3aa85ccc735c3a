//! The layering the crate documentation declares (its `# Layers` list), checked against the
//! source: every `crate::` path, `use crate::{a, b}` groups included, and every `super::` path
//! that climbs to the crate root, in code (comments and string literals are skipped), must
//! name the module's own top-level module or one its entry in the list allows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The modules each top-level module may use.
#[derive(Debug)]
struct Layers {
    allowed: BTreeMap<String, BTreeSet<String>>,
    /// Names the crate root re-exports (`pub use error::{Error, Result}`), with their module.
    reexports: BTreeMap<String, String>,
}

impl Layers {
    /// Reads the `# Layers` list of `lib.rs`: lines `//! - `a`, `b`: `c`, `d`` say that `a`
    /// and `b` may use `c` and `d`, each of which an earlier line must name.
    fn declared(lib_rs: &str) -> Result<Self, String> {
        let mut allowed = BTreeMap::new();
        let section = lib_rs
            .lines()
            .skip_while(|l| l.trim() != "//! # Layers")
            .take_while(|l| l.starts_with("//!"));
        for line in section.filter_map(|l| l.strip_prefix("//! - ")) {
            let (modules, uses) = line
                .split_once(':')
                .ok_or_else(|| format!("no `:` in the layer line {line:?}"))?;
            let uses: BTreeSet<String> = backticked(uses).into_iter().collect();
            for used in &uses {
                if !allowed.contains_key(used) {
                    return Err(format!(
                        "`{used}` is used in {line:?} but not listed above it"
                    ));
                }
            }
            for module in backticked(modules) {
                if allowed.insert(module.clone(), uses.clone()).is_some() {
                    return Err(format!("`{module}` is listed twice"));
                }
            }
        }
        let tokens = lex(lib_rs);
        let mut declared = BTreeSet::new();
        let mut reexports = BTreeMap::new();
        for (i, (tok, _)) in tokens.iter().enumerate() {
            match (tok, tokens.get(i + 1).map(|t| &t.0)) {
                (Tok::Ident(kw), Some(Tok::Ident(name))) if kw == "mod" => {
                    declared.insert(name.clone());
                }
                (Tok::Ident(kw), Some(_)) if kw == "use" => {
                    for path in use_tree(&tokens, i + 1) {
                        if let (Some(module), Some(leaf)) = (path.first(), path.last()) {
                            reexports.insert(leaf.clone(), module.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        let listed: BTreeSet<String> = allowed.keys().cloned().collect();
        if listed != declared {
            return Err(format!(
                "the layer list names {listed:?} but lib.rs declares the modules {declared:?}"
            ));
        }
        Ok(Self { allowed, reexports })
    }

    /// The uses of `source` (the file at `file`, relative to `src/`) its module may not make.
    fn violations(&self, file: &Path, source: &str) -> Vec<String> {
        let module = module_path(file);
        let Some(top) = module.first() else {
            return Vec::new(); // lib.rs declares the modules; main.rs is the binary
        };
        let Some(may_use) = self.allowed.get(top) else {
            return vec![format!(
                "{}: `{top}` is not in the layer list",
                file.display()
            )];
        };
        let mut found = Vec::new();
        for (line, name) in root_uses(&module, source) {
            let used = self.reexports.get(&name).unwrap_or(&name);
            if used == top || used == "self" || may_use.contains(used) {
                continue;
            }
            let why = if self.allowed.contains_key(used) {
                format!("`{top}` may not use `{used}`")
            } else {
                format!("`{used}` is neither a module nor a re-export of the crate root")
            };
            found.push(format!("src/{}:{line}: {why}", file.display()));
        }
        found
    }
}

/// The names in backticks in `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// The module a file under `src/` holds: `models/gguf/mod.rs` is `models::gguf`.
fn module_path(file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    PathSep,
    Open,
    Close,
    Comma,
    Other,
}

/// Rust tokens enough to follow paths and braces, each with its line; comments, strings and
/// character literals are dropped.
fn lex(source: &str) -> Vec<(Tok, usize)> {
    let c: Vec<char> = source.chars().collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    // Skips to just past the `"` closing a string whose body starts at `i`.
    let string_end = |mut i: usize, line: &mut usize, hashes: usize, escapes: bool| {
        while i < c.len() {
            match c[i] {
                '\\' if escapes => i += 1,
                '\n' => *line += 1,
                '"' if (1..=hashes).all(|h| at(i + h) == '#') => return i + 1 + hashes,
                _ => {}
            }
            i += 1;
        }
        i
    };
    while i < c.len() {
        let ch = c[i];
        if ch == '\n' {
            line += 1;
            i += 1;
        } else if ch.is_whitespace() {
            i += 1;
        } else if ch == '/' && at(i + 1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
            }
        } else if ch == '/' && at(i + 1) == '*' {
            let (mut depth, mut j) = (1, i + 2);
            while j < c.len() && depth > 0 {
                match (c[j], at(j + 1)) {
                    ('/', '*') => (depth, j) = (depth + 1, j + 2),
                    ('*', '/') => (depth, j) = (depth - 1, j + 2),
                    (n, _) => (line, j) = (line + usize::from(n == '\n'), j + 1),
                }
            }
            i = j;
        } else if ch == '"' {
            i = string_end(i + 1, &mut line, 0, true);
        } else if ch == '\'' {
            if at(i + 1) == '\\' {
                i += 3;
                while i < c.len() && c[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1; // a lifetime: its name lexes as an identifier
            }
        } else if ch == ':' && at(i + 1) == ':' {
            out.push((Tok::PathSep, line));
            i += 2;
        } else if ch.is_alphabetic() || ch == '_' {
            let start = i;
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_') {
                i += 1;
            }
            let word: String = c[start..i].iter().collect();
            let hashes = c[i..].iter().take_while(|&&h| h == '#').count();
            if matches!(word.as_str(), "r" | "br") && at(i + hashes) == '"' {
                i = string_end(i + hashes + 1, &mut line, hashes, false);
            } else if word == "b" && at(i) == '"' {
                i = string_end(i + 1, &mut line, 0, true);
            } else if word == "r" && hashes == 1 {
                i += 1; // a raw identifier: its name lexes next
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if ch.is_ascii_digit() {
            while i < c.len() && (c[i].is_alphanumeric() || c[i] == '_' || c[i] == '.') {
                i += 1;
            }
            out.push((Tok::Other, line));
        } else {
            let tok = match ch {
                '{' => Tok::Open,
                '}' => Tok::Close,
                ',' => Tok::Comma,
                _ => Tok::Other,
            };
            out.push((tok, line));
            i += 1;
        }
    }
    out
}

/// The paths of the use tree (or plain path) starting at `tokens[i]`: `a::{b, c::{d}}` gives
/// `[a, b]` and `[a, c, d]`.
fn use_tree(tokens: &[(Tok, usize)], i: usize) -> Vec<Vec<String>> {
    use_tree_at(tokens, i).0
}

fn use_tree_at(tokens: &[(Tok, usize)], mut i: usize) -> (Vec<Vec<String>>, usize) {
    match tokens.get(i).map(|t| &t.0) {
        Some(Tok::Open) => {
            let mut paths = Vec::new();
            i += 1;
            while let Some((tok, _)) = tokens.get(i) {
                match tok {
                    Tok::Close => return (paths, i + 1),
                    Tok::Comma => i += 1,
                    _ => {
                        let (more, next) = use_tree_at(tokens, i);
                        paths.extend(more);
                        // Skip what the tree does not use (`as` aliases, stray tokens).
                        i = next.max(i + 1);
                        while !matches!(
                            tokens.get(i).map(|t| &t.0),
                            None | Some(Tok::Comma | Tok::Close)
                        ) {
                            i += 1;
                        }
                    }
                }
            }
            (paths, i)
        }
        Some(Tok::Ident(name)) => {
            if tokens.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep) {
                let (rest, next) = use_tree_at(tokens, i + 2);
                let paths = rest
                    .into_iter()
                    .map(|mut p| {
                        p.insert(0, name.clone());
                        p
                    })
                    .collect();
                (paths, next)
            } else {
                (vec![vec![name.clone()]], i + 1)
            }
        }
        _ => (vec![vec!["*".to_string()]], i + 1),
    }
}

/// The crate-root names (top-level modules, re-exports) that the file of `module` reaches by
/// `crate::` or by `super::` up to the root, with their lines.
fn root_uses(module: &[String], source: &str) -> Vec<(usize, String)> {
    let tokens = lex(source);
    let tok = |i: usize| tokens.get(i).map(|t| &t.0);
    let ident = |i: usize, word: &str| matches!(tok(i), Some(Tok::Ident(w)) if w == word);
    let mut found = Vec::new();
    // Inline modules (`mod tests { .. }`) the scan is in, with the brace depth they opened at.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0;
    for i in 0..tokens.len() {
        match &tokens[i].0 {
            Tok::Open => {
                depth += 1;
                if let (true, Some(Tok::Ident(name))) =
                    (ident(i.wrapping_sub(2), "mod"), tok(i.wrapping_sub(1)))
                {
                    inline.push((name.clone(), depth));
                }
            }
            Tok::Close => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth -= 1;
            }
            Tok::Ident(w)
                if tok(i + 1) == Some(&Tok::PathSep)
                    && tok(i.wrapping_sub(1)) != Some(&Tok::PathSep) =>
            {
                let start = if w == "crate" {
                    i + 2
                } else if w == "super" {
                    let mut j = i;
                    let mut ups = 0;
                    while ident(j, "super") && tok(j + 1) == Some(&Tok::PathSep) {
                        ups += 1;
                        j += 2;
                    }
                    // Only a climb to the crate root leaves the module's own top-level module.
                    if module.len() + inline.len() != ups {
                        continue;
                    }
                    j
                } else {
                    continue;
                };
                for path in use_tree(&tokens, start) {
                    let used = (tokens[i].1, path[0].clone());
                    if !found.contains(&used) {
                        found.push(used);
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Every `.rs` file under `dir`, relative to `root`.
fn rust_files(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(root, &path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path.strip_prefix(root).unwrap().to_path_buf());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    fn layers() -> Layers {
        Layers::declared(&std::fs::read_to_string(src().join("lib.rs")).unwrap()).unwrap()
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it_that_the_crate_docs_allow() {
        let layers = layers();
        let mut files = Vec::new();
        rust_files(&src(), &src(), &mut files);
        files.sort();
        assert!(files.len() > 50, "{files:?}");
        let violations: Vec<String> = files
            .iter()
            .flat_map(|file| {
                let source = std::fs::read_to_string(src().join(file)).unwrap();
                layers.violations(file, &source)
            })
            .collect();
        assert!(
            violations.is_empty(),
            "uses the `# Layers` list in src/lib.rs does not allow (move the code, or change \
             the list if the layering should change):\n{}",
            violations.join("\n")
        );
    }

    #[test]
    fn planted_upward_uses_are_caught() {
        let layers = layers();
        let check = |file: &str, source: &str| layers.violations(Path::new(file), source);
        // Allowed: a lower module, the module itself, the crate root's re-exports.
        let fine = "use crate::{Error, Result};\nuse crate::models::{gguf, kv_cache::X};\n\
                    fn f() -> crate::Result<()> { crate::generate::g(); Ok(()) }\n\
                    // crate::pipeline in a comment\nconst S: &str = \"crate::pipeline::x\";\n\
                    const C: char = '{'; fn l<'a>(x: &'a str) {}\n\
                    mod tests { use super::*; use super::super::beam; }";
        assert_eq!(check("generate/greedy.rs", fine), Vec::<String>::new());
        let upward = [
            ("models/mod.rs", "use crate::generate::GenerationConfig;"),
            (
                "models/gguf/mod.rs",
                "use crate::{\n    error::Error,\n    pipeline::{chat, Seq2Seq},\n};",
            ),
            (
                "generate/llm.rs",
                "fn f() { let s = crate::document::split_sentences(x); }",
            ),
            (
                "hub/mod.rs",
                "mod tests { fn f() { super::super::models::open_weights(); } }",
            ),
            ("tokenizer/gguf/mod.rs", "use super::super::models::gguf;"),
            ("document/mod.rs", "use crate::no_such_module::X;"),
        ];
        for (file, source) in upward {
            assert_eq!(check(file, source).len(), 1, "{file}: {source}");
        }
        assert!(check("models/mod.rs", "use crate::pipeline::X;")[0]
            .contains("src/models/mod.rs:1: `models` may not use `pipeline`"));
    }

    #[test]
    fn the_layer_list_must_name_each_module_once_and_each_use_below_it() {
        let lib = "//! # Layers\n//!\n//! - `a`: nothing\n//! - `b`: `a`\npub mod a;\npub mod b;\n";
        assert!(Layers::declared(lib).is_ok());
        let upward = lib.replace("`a`: nothing", "`a`: `b`");
        assert!(Layers::declared(&upward)
            .unwrap_err()
            .contains("not listed above"));
        let missing = format!("{lib}pub mod c;\n");
        assert!(Layers::declared(&missing)
            .unwrap_err()
            .contains("declares the modules"));
    }
}

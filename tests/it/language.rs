//! The language check before translating: Arabic is never refused (NTREX line by line and
//! article by article, the example article), Persian and Urdu are, and the CLI reports a refused
//! input in one line, skips it and goes on, unless `--assume-arabic`.

use std::fs;
use std::path::Path;

use tarjama::document::detect;

use crate::common::{fixtures, ntrex_lines, shared, stderr_of, translate_cmd, tree};

/// The lines of `ntrex/ar.txt` grouped into articles by `ntrex/doc_ids.txt`, in order.
fn ntrex_articles() -> Vec<String> {
    let ids = ntrex_lines("doc_ids.txt");
    let lines = ntrex_lines("ar.txt");
    assert_eq!(ids.len(), lines.len());
    let mut articles: Vec<(String, String)> = Vec::new();
    for (id, line) in ids.into_iter().zip(lines) {
        match articles.last_mut() {
            Some((last, text)) if *last == id => {
                text.push('\n');
                text.push_str(&line);
            }
            _ => articles.push((id, line)),
        }
    }
    articles.into_iter().map(|(_, text)| text).collect()
}

/// How many of `texts` are detected as something else than Arabic, each printed.
fn not_arabic(what: &str, texts: &[String]) -> usize {
    let wrong: Vec<_> = texts
        .iter()
        .map(|t| (detect(t), t))
        .filter(|(d, _)| d.language != "ar")
        .collect();
    for (d, t) in &wrong {
        eprintln!("{what}: {d:?}: {}", t.chars().take(80).collect::<String>());
    }
    eprintln!(
        "{what}: {} of {} detected as Arabic",
        texts.len() - wrong.len(),
        texts.len()
    );
    wrong.len()
}

/// Arabic as a Persian keyboard writes it: ي and ك as ی and ک, which scraped Arabic sometimes is.
fn persian_keyboard(text: &str) -> String {
    text.replace('ي', "ی").replace('ك', "ک")
}

#[test]
fn arabic_is_never_refused() {
    let lines = ntrex_lines("ar.txt");
    assert_eq!(lines.len(), 1997);
    let articles = ntrex_articles();
    let example = vec![fs::read_to_string(shared("article-ar.txt")).unwrap()];
    let keyboard =
        |texts: &[String]| -> Vec<String> { texts.iter().map(|t| persian_keyboard(t)).collect() };
    let wrong = [
        not_arabic("NTREX lines", &lines),
        not_arabic("NTREX articles", &articles),
        not_arabic("article-ar.txt", &example),
        not_arabic("NTREX lines, Persian keyboard", &keyboard(&lines)),
        not_arabic("NTREX articles, Persian keyboard", &keyboard(&articles)),
        not_arabic("article-ar.txt, Persian keyboard", &keyboard(&example)),
    ];
    assert_eq!(wrong, [0; 6], "Arabic refused");
}

#[test]
fn persian_and_urdu_sentences_are_recognized() {
    for (file, language) in [("fa.txt", "fa"), ("ur.txt", "ur")] {
        let text = fs::read_to_string(fixtures().join("language").join(file)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let found = lines
            .iter()
            .filter(|line| detect(line).language == language)
            .count();
        let whole = detect(&text);
        eprintln!(
            "{file}: {found} of {} sentences detected as {language}; the whole file: {whole:?}",
            lines.len()
        );
        assert_eq!(found, lines.len(), "{file}");
        assert_eq!(whole.language, language);
    }
}

/// A directory with an Arabic, a Persian and an Urdu article.
fn three_languages(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let arabic: Vec<String> = ntrex_lines("ar.txt").into_iter().take(3).collect();
    fs::write(dir.join("a.ar.txt"), arabic.join("\n") + "\n").unwrap();
    for (name, file) in [("b.ar.txt", "fa.txt"), ("c.ar.txt", "ur.txt")] {
        let text = fs::read_to_string(fixtures().join("language").join(file)).unwrap();
        let article: Vec<&str> = text.lines().take(3).collect();
        fs::write(dir.join(name), article.join("\n") + "\n").unwrap();
    }
}

#[test]
fn persian_and_urdu_inputs_are_reported_and_skipped_unless_assumed_arabic() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    three_languages(&input);

    let out = translate_cmd(tmp.path())
        .arg(&input)
        .arg("-o")
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let outputs: Vec<String> = tree(&tmp.path().join("out")).into_keys().collect();
    assert_eq!(outputs, ["a.en.txt"], "{stderr}");
    for (name, language) in [
        ("b.ar.txt", "Persian (fa, confidence"),
        ("c.ar.txt", "Urdu (ur, confidence"),
    ] {
        let reports: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("tarjama: error:") && l.contains(name))
            .collect();
        assert_eq!(reports.len(), 1, "{stderr}");
        assert!(reports[0].contains(language), "{stderr}");
        assert!(reports[0].contains("--assume-arabic"), "{stderr}");
    }
    assert!(!stderr.contains("a.ar.txt"), "{stderr}");

    let out = translate_cmd(tmp.path())
        .arg("--assume-arabic")
        .arg(&input)
        .arg("-o")
        .arg(tmp.path().join("assumed"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let outputs: Vec<String> = tree(&tmp.path().join("assumed")).into_keys().collect();
    assert_eq!(outputs, ["a.en.txt", "b.en.txt", "c.en.txt"]);
}

#[test]
fn a_single_persian_input_fails_before_the_model_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("fa.txt");
    fs::copy(fixtures().join("language/fa.txt"), &input).unwrap();
    // A model that does not exist: the input is refused before it is looked for.
    let out = crate::common::tarjama(tmp.path())
        .args(["translate", "--offline", "--model", "no/such-model"])
        .arg(&input)
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("detected Persian (fa"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn json_lines_records_are_checked_one_by_one() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in.jsonl");
    let fa = fs::read_to_string(fixtures().join("language/fa.txt")).unwrap();
    let records = [
        serde_json::json!({"id": "ar", "text": ntrex_lines("ar.txt")[0]}),
        serde_json::json!({"id": "fa", "text": fa}),
        serde_json::json!({"id": "en", "text": "The city council approved a new budget on Monday, raising spending on schools."}),
    ];
    let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    fs::write(&input, lines.join("\n") + "\n").unwrap();
    let run = |extra: &[&str]| {
        translate_cmd(tmp.path())
            .args(["--input-format", "jsonl", "--format", "jsonl"])
            .args(extra)
            .arg(&input)
            .output()
            .unwrap()
    };
    let ids = |out: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect()
    };

    let out = run(&[]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(ids(&out), ["\"ar\""]);
    assert!(
        stderr.contains("in.jsonl:2: detected Persian (fa"),
        "{stderr}"
    );
    assert!(
        stderr.contains("in.jsonl:3: detected English (en"),
        "{stderr}"
    );

    let out = run(&["--assume-arabic"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(ids(&out), ["\"ar\"", "\"fa\"", "\"en\""]);
}

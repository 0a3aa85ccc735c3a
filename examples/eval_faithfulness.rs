//! How faithful chat-model summaries are, without and with the support check, for
//! scripts/eval-faithfulness.
//!
//! Usage: eval_faithfulness MODEL.gguf DATA_DIR ARTICLES OUT.jsonl
//! Summarises the example article and the first ARTICLES NTREX articles (rebuilt from
//! `ntrex/doc_ids.txt`, in file order; 0 = all 123) in 3 sentences, greedy, with the check on.
//! ARTICLES may instead be a comma-separated list of article ids (`article-ar.txt` for the
//! example article): those alone, e.g. the ones an earlier run lost most sentences on.
//! Each summary's report holds the first draft, which is the summary without the check.
//!
//! The judge is independent of the check: the check supports facts by the model's own
//! translation, the judge by the human reference translation (NTREX) and the Arabic source.
//! The example article has no reference and is judged by its Arabic alone. Appends one JSON line
//! per article to OUT.jsonl as it goes, skipping articles already there (a run can be resumed),
//! and prints the totals of every article in the file.

use std::io::Write;
use std::path::Path;

use serde_json::json;
use tarjama::eval::sentence_rouge;
use tarjama::faithful::{CheckReport, Evidence};
use tarjama::hub::HubOptions;
use tarjama::pipeline::{
    article_paragraphs, Engine, EngineOptions, EngineSpec, Purpose, Runtime, SummaryLength,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Article {
    id: String,
    arabic: String,
    /// The reference translation's sentences (none for the example article).
    english: Vec<String>,
}

/// The articles ARTICLES names: a count of NTREX articles after the example, or a list of ids.
fn articles(data: &Path, which: &str) -> anyhow::Result<Vec<Article>> {
    let read = |name: &str| -> anyhow::Result<Vec<String>> {
        Ok(std::fs::read_to_string(data.join(name))?
            .lines()
            .map(str::to_string)
            .collect())
    };
    let mut out = vec![Article {
        id: "article-ar.txt".into(),
        arabic: std::fs::read_to_string(data.join("article-ar.txt"))?,
        english: Vec::new(),
    }];
    let (ar, en, ids) = (
        read("ntrex/ar.txt")?,
        read("ntrex/en.txt")?,
        read("ntrex/doc_ids.txt")?,
    );
    let mut ntrex: Vec<Article> = Vec::new();
    for ((ar, en), id) in ar.iter().zip(&en).zip(&ids) {
        match ntrex.last_mut() {
            Some(a) if a.id == *id => {
                a.arabic.push_str("\n\n");
                a.arabic.push_str(ar);
                a.english.push(en.clone());
            }
            _ => ntrex.push(Article {
                id: id.clone(),
                arabic: ar.clone(),
                english: vec![en.clone()],
            }),
        }
    }
    out.extend(ntrex);
    match which.parse::<usize>() {
        Ok(0) => {}
        Ok(first) => out.truncate(first + 1),
        Err(_) => {
            let ids: Vec<&str> = which.split(',').collect();
            out.retain(|a| ids.contains(&a.id.as_str()));
            anyhow::ensure!(out.len() == ids.len(), "unknown article id in {which}");
        }
    }
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    tarjama::allocator::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, data, which, out_path] = args.as_slice() else {
        anyhow::bail!("usage: eval_faithfulness MODEL.gguf DATA_DIR ARTICLES OUT.jsonl");
    };
    let articles = articles(Path::new(data), which)?;
    let spec = EngineSpec {
        model: model.clone(),
        purpose: Purpose::Summarize {
            translator: None,
            reads: None,
            with_translation: false,
        },
    };
    let runtime = Runtime {
        device: candle_core::Device::Cpu,
        dtype: tarjama::device::DTypeChoice::Auto,
        quantize: None,
        hub: HubOptions::from_env(true, false),
    };
    let mut engine = Engine::load(&spec, &EngineOptions::default(), &runtime)?;
    // Resumable: articles already in OUT.jsonl are not summarised again.
    let done: std::collections::HashSet<String> = std::fs::read_to_string(out_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_string))
        .collect();
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out_path)?;
    for (n, article) in articles.iter().enumerate() {
        if done.contains(&article.id) {
            continue;
        }
        let started = std::time::Instant::now();
        let paragraphs = article_paragraphs(&article.arabic, true)?;
        let summary = engine.summarize(
            &paragraphs,
            SummaryLength::Sentences(3),
            true,
            &mut |_| {},
            &mut |_, _| {},
        )?;
        let report = summary.check.expect("the check ran");
        let kept: Vec<&str> = report
            .sentences
            .iter()
            .filter(|s| CheckReport::accepted(s.outcome))
            .map(|s| s.text.as_str())
            .collect();
        let judge = if article.english.is_empty() {
            Evidence::from_arabic(&article.arabic)
        } else {
            Evidence::from_arabic(&article.arabic).with_reference(&article.english.join(" "))
        };
        let unsupported = |sentences: &[&str]| -> Vec<String> {
            sentences
                .iter()
                .filter(|s| !judge.check(s).passes())
                .map(|s| s.to_string())
                .collect()
        };
        let draft: Vec<&str> = report.draft.iter().map(String::as_str).collect();
        let rouge = if article.english.is_empty() {
            json!(null)
        } else {
            // The reference's lead: its first three sentences.
            let lead = article.english[..article.english.len().min(3)].join(" ");
            json!({
                "draft": sentence_rouge(&draft.join(" "), &lead),
                "checked": sentence_rouge(&kept.join(" "), &lead),
            })
        };
        let line = json!({
            "id": article.id,
            "reference": !article.english.is_empty(),
            "seconds": started.elapsed().as_secs_f64(),
            "draft": report.draft,
            "summary": kept,
            "judge_unsupported_draft": unsupported(&draft),
            "judge_unsupported_checked": unsupported(&kept),
            "rouge": rouge,
            "check": report,
        });
        writeln!(out, "{line}")?;
        out.flush()?;
        eprintln!(
            "{}/{} {} {:.0}s: draft {} sentences ({} unsupported by the reference), checked {} ({})",
            n + 1,
            articles.len(),
            article.id,
            started.elapsed().as_secs_f64(),
            draft.len(),
            line["judge_unsupported_draft"].as_array().map_or(0, Vec::len),
            kept.len(),
            line["judge_unsupported_checked"].as_array().map_or(0, Vec::len),
        );
    }
    println!("model: {model}");
    print_totals(out_path)?;
    Ok(())
}

/// The totals of every article in `path` (this run's and earlier runs').
fn print_totals(path: &str) -> anyhow::Result<()> {
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(path)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let len = |v: &serde_json::Value| v.as_array().map_or(0, Vec::len);
    let count = |v: &serde_json::Value, outcomes: &[&str]| {
        v["check"]["sentences"].as_array().map_or(0, |s| {
            s.iter()
                .filter(|s| outcomes.contains(&s["outcome"].as_str().unwrap_or("")))
                .count()
        })
    };
    let judged: Vec<&serde_json::Value> = lines.iter().filter(|l| l["reference"] == true).collect();
    let sum = |items: &[&serde_json::Value], f: &dyn Fn(&serde_json::Value) -> usize| -> usize {
        items.iter().map(|l| f(l)).sum()
    };
    let all: Vec<&serde_json::Value> = lines.iter().collect();
    let pct = |a: usize, b: usize| 100.0 * a as f64 / b.max(1) as f64;
    let (draft_bad, draft_n) = (
        sum(&judged, &|l| len(&l["judge_unsupported_draft"])),
        sum(&judged, &|l| len(&l["draft"])),
    );
    let (final_bad, final_n) = (
        sum(&judged, &|l| len(&l["judge_unsupported_checked"])),
        sum(&judged, &|l| len(&l["summary"])),
    );
    let (all_draft, all_final) = (
        sum(&all, &|l| len(&l["draft"])),
        sum(&all, &|l| len(&l["summary"])),
    );
    let flagged = sum(&all, &|l| {
        count(l, &["rejected", "dropped"]).min(len(&l["draft"]))
    });
    let regenerated = sum(&all, &|l| count(l, &["regenerated"]));
    let trimmed = sum(&all, &|l| count(l, &["trimmed"]));
    let short = all
        .iter()
        .filter(|l| l["check"]["short_by"].as_u64() > Some(0))
        .count();
    let translated = all
        .iter()
        .filter(|l| l["check"]["used_translation"] == true)
        .count();
    let seconds: f64 = all.iter().filter_map(|l| l["seconds"].as_f64()).sum();
    println!(
        "articles: {} ({} with a reference translation); {translated} checks translated the article; {seconds:.0} s in all",
        all.len(),
        judged.len()
    );
    println!(
        "unsupported share, judged by the reference and the Arabic: without the check {:.1}% ({draft_bad}/{draft_n} sentences), with it {:.1}% ({final_bad}/{final_n})",
        pct(draft_bad, draft_n),
        pct(final_bad, final_n)
    );
    println!(
        "the check flagged {:.1}% of draft sentences ({flagged}/{all_draft}), regenerated {regenerated}, trimmed {trimmed}; sentences lost {:.1}% ({all_draft} draft, {all_final} checked); summaries short: {short}",
        pct(flagged, all_draft),
        pct(all_draft.saturating_sub(all_final), all_draft)
    );
    let rouge = |which: &str, key: &str| -> f64 {
        100.0
            * judged
                .iter()
                .filter_map(|l| l["rouge"][which][key]["fmeasure"].as_f64())
                .sum::<f64>()
            / judged.len().max(1) as f64
    };
    println!(
        "ROUGE-1/2/L F against the reference's first 3 sentences: without the check {:.2}/{:.2}/{:.2}, with it {:.2}/{:.2}/{:.2}",
        rouge("draft", "rouge1"),
        rouge("draft", "rouge2"),
        rouge("draft", "rougeL"),
        rouge("checked", "rouge1"),
        rouge("checked", "rouge2"),
        rouge("checked", "rougeL")
    );
    Ok(())
}

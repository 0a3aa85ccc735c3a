//! Can the chat model itself flag a summary sentence that inverts its source (issue 24's
//! polarity check)? Measured before anything is shipped.
//!
//! Usage: eval_polarity MODEL.gguf DATA_DIR ARTICLES
//! Over the first ARTICLES NTREX articles (rebuilt from `ntrex/doc_ids.txt`), for every English
//! reference sentence with an auxiliary verb to negate ("is" → "is not", "will" → "will not"),
//! asks the model whether the whole Arabic article says what the statement says, for the
//! reference sentence and for its negation, and reads the answer as the first reply token's
//! logits: the margin of "no" over "yes" (one forward pass per statement; the article's prompt
//! prefix is cached across its statements). A statement is flagged when the margin passes a
//! threshold. The threshold is chosen on the even-numbered articles (the lowest margin whose
//! flags there are at least 90% right) and the precision and recall of flagging negations are
//! reported on the odd-numbered ones, with the threshold 0 for comparison.
//!
//! This is the cheapest entailment a local chat model offers: no NLI model can be fetched here.

use std::path::Path;

use tarjama::models::gguf::{self, ChatModel};
use tarjama::pipeline::chat::{ChatTemplate, Message};
use tarjama::tokenizer::gguf::GgufTokenizer;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AUXILIARIES: [&str; 14] = [
    "is", "are", "was", "were", "will", "would", "can", "could", "should", "has", "have", "had",
    "must", "may",
];

/// The statement with its first auxiliary verb negated, if it has one.
fn negate(sentence: &str) -> Option<String> {
    let words: Vec<&str> = sentence.split(' ').collect();
    let at = words.iter().position(|w| AUXILIARIES.contains(w))?;
    // "is not" already negative: the pair would not test an inversion.
    if words.get(at + 1).is_some_and(|w| *w == "not" || *w == "no") {
        return None;
    }
    let mut out = words.clone();
    out.insert(at + 1, "not");
    Some(out.join(" "))
}

fn main() -> anyhow::Result<()> {
    tarjama::allocator::configure();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, data, articles_wanted] = args.as_slice() else {
        anyhow::bail!("usage: eval_polarity MODEL.gguf DATA_DIR ARTICLES");
    };
    let articles_wanted: usize = articles_wanted.parse()?;
    tarjama::device::configure_threads(None)?;
    let device = candle_core::Device::Cpu;
    let (content, mut file) = gguf::read_header(Path::new(model_path))?;
    let tokenizer = GgufTokenizer::from_content(&content)?;
    let template = ChatTemplate::new(
        tokenizer
            .chat_template()
            .ok_or_else(|| anyhow::anyhow!("the model has no chat template"))?,
    )?;
    let mut model = ChatModel::load(&content, &mut file, &device)?;
    let answer = |word: &str| -> anyhow::Result<Vec<u32>> {
        let ids = tokenizer.encode(word, false)?;
        anyhow::ensure!(ids.len() == 1, "{word:?} is not one token");
        Ok(ids)
    };
    let yes = [answer("yes")?[0], answer("Yes")?[0]];
    let no = [answer("no")?[0], answer("No")?[0]];

    let read = |name: &str| -> anyhow::Result<Vec<String>> {
        Ok(std::fs::read_to_string(Path::new(data).join(name))?
            .lines()
            .map(str::to_string)
            .collect())
    };
    let (ar, en, ids) = (
        read("ntrex/ar.txt")?,
        read("ntrex/en.txt")?,
        read("ntrex/doc_ids.txt")?,
    );
    // Articles as (Arabic text, English sentences), in file order.
    let mut articles: Vec<(String, Vec<&str>)> = Vec::new();
    for (i, ((arabic, english), id)) in ar.iter().zip(&en).zip(&ids).enumerate() {
        if i == 0 || ids[i - 1] != *id {
            articles.push((String::new(), Vec::new()));
        }
        let (text, sentences) = articles.last_mut().expect("pushed above");
        text.push_str(arabic);
        text.push_str("\n\n");
        sentences.push(english);
    }
    articles.truncate(articles_wanted);

    // Per article parity (calibration or test): (margin of "no" over "yes", is the negation).
    let mut margins: [Vec<(f32, bool)>; 2] = [Vec::new(), Vec::new()];
    for (n, (arabic, sentences)) in articles.iter().enumerate() {
        model.reset();
        for english in sentences {
            let Some(negated) = negate(english) else {
                continue;
            };
            let mut pair = [0.0f32; 2];
            for (margin, statement) in pair.iter_mut().zip([english, &negated.as_str()]) {
                let messages = [
                    Message::system("You check facts. Answer only yes or no."),
                    Message::user(format!(
                        "Arabic article:\n{}\n\nEnglish statement:\n{statement}\n\n\
                         Does the article say what the statement says? Answer yes or no.",
                        arabic.trim_end()
                    )),
                ];
                let prompt = tokenizer.encode(&template.render(&messages)?, false)?;
                let cached = model.reuse_prefix(&prompt);
                let logits = model.forward(&prompt[cached..])?;
                let best = |ids: &[u32]| {
                    ids.iter()
                        .map(|&i| logits[i as usize])
                        .fold(f32::NEG_INFINITY, f32::max)
                };
                *margin = best(&no) - best(&yes);
            }
            println!("{n}\t{:+.2}\t{:+.2}\t{negated}", pair[0], pair[1]);
            margins[n % 2].push((pair[0], false));
            margins[n % 2].push((pair[1], true));
        }
    }

    // (precision, recall) of flagging the negations among `set` at margins above `threshold`.
    let flags = |set: &[(f32, bool)], threshold: f32| {
        let negations = set.iter().filter(|(_, neg)| *neg).count();
        let flagged: Vec<bool> = set
            .iter()
            .filter(|(m, _)| *m > threshold)
            .map(|(_, neg)| *neg)
            .collect();
        let right = flagged.iter().filter(|neg| **neg).count();
        (
            right as f64 / flagged.len().max(1) as f64,
            right as f64 / negations.max(1) as f64,
        )
    };
    let [calibration, test] = &margins;
    let threshold = calibration
        .iter()
        .map(|(m, _)| *m)
        .filter(|&t| flags(calibration, t).0 >= 0.9 && flags(calibration, t).1 > 0.0)
        .fold(f32::INFINITY, f32::min);
    for (name, t) in [("0", 0.0), ("calibrated", threshold)] {
        let (cp, cr) = flags(calibration, t);
        let (tp, tr) = flags(test, t);
        println!(
            "threshold {name} ({t:+.2}): calibration ({} statements) precision {cp:.3} recall {cr:.3}; \
             test ({} statements) precision {tp:.3} recall {tr:.3}",
            calibration.len(),
            test.len()
        );
    }
    Ok(())
}

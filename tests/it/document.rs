//! Tests of the document module on the project's real inputs: the scraped article in
//! `tests/fixtures/document/article-ar.txt` and the NTREX-128 test set in `../shared/data/ntrex`.

use std::path::{Path, PathBuf};

use tarjama::document::{
    contains_arabic, is_boilerplate, normalize_for_model, read_input, split_long, split_sentences,
    Document, Paragraph,
};

use crate::common;

/// Reading inputs.
mod reading;

fn fixture(name: &str) -> PathBuf {
    common::fixtures().join("document").join(name)
}

fn article() -> String {
    read_input(Some(&fixture("article-ar.txt"))).expect("the fixture article is readable")
}

/// Every sentence, with the paragraph it came from, so failures say where they are.
fn paragraph_texts(doc: &Document) -> Vec<&str> {
    doc.paragraphs
        .iter()
        .filter(|p| **p != Paragraph::Blank)
        .map(Paragraph::source)
        .collect()
}

#[test]
fn article_paragraphs_follow_input_lines() {
    let text = article();
    let doc = Document::parse(&text);
    assert_eq!(doc.paragraphs.len(), 47, "one paragraph per input line");
    assert!(!doc.trailing_newline);
    assert_eq!(
        doc.paragraphs
            .iter()
            .filter(|p| **p == Paragraph::Blank)
            .count(),
        23
    );
    assert!(doc
        .paragraphs
        .iter()
        .all(|p| !matches!(p, Paragraph::Verbatim(_))));
    // The headline keeps its `..` separator and its question: one sentence.
    assert_eq!(
        doc.paragraphs[2].sentences(),
        ["أمل هزيمة داعش.. ما فرصتها بعد تجربة سوريا والعراق؟"]
    );
    // A sub-heading without a terminator is one sentence.
    assert_eq!(doc.paragraphs[14].sentences(), ["وقت الاجتماع"]);
}

#[test]
fn article_sentences_are_clean() {
    let doc = Document::parse(&article());
    let sentences: Vec<&str> = doc.sentences().collect();
    assert_eq!(sentences.len(), doc.sentence_count());
    for s in &sentences {
        assert!(
            s.chars().any(char::is_alphanumeric),
            "punctuation-only sentence {s:?}"
        );
        assert!(
            !s.starts_with(['”', '"', '.', '،', ')']),
            "sentence starts with a closing sign: {s:?}"
        );
        assert!(
            !s.contains(" ،") && !s.contains('\u{00A0}') && !s.contains("  "),
            "unnormalized {s:?}"
        );
    }
    // The stray `. .` and the `“.”.` run stay attached to their sentences.
    assert!(sentences.iter().any(|s| s.ends_with("في سوريا. .")));
    assert!(sentences.iter().any(|s| s.ends_with("لهزيمة داعش “.”.")));
    // Closing quote after a terminator stays with its sentence.
    assert!(sentences.iter().any(|s| s.ends_with("في أفريقيا.”")));
    // Numbers and percentages never split.
    assert!(sentences
        .iter()
        .any(|s| s.contains("وأن 41٪ من عمليات داعش")));
    let paragraph_7: Vec<&str> = doc.paragraphs[6]
        .sentences()
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(paragraph_7.len(), 2, "{paragraph_7:?}");
    assert!(paragraph_7[1].starts_with("محاربة مصادر التمويل،"));
}

#[test]
fn article_boilerplate_is_removed_and_news_kept() {
    let original = Document::parse(&article());
    let mut doc = original.clone();
    assert_eq!(doc.strip_boilerplate(), 4);
    let kept = paragraph_texts(&doc);
    let all = paragraph_texts(&original);
    assert_eq!(
        &all[..kept.len()],
        &kept[..],
        "everything before the footer is kept, in order"
    );
    assert_eq!(kept.len(), 20);
    assert_eq!(kept[0], "أخبار العالم");
    assert!(kept[1].starts_with("أمل هزيمة داعش"));
    assert!(kept
        .last()
        .unwrap()
        .starts_with("وبحسبه ، فإن تجربة التحالف"));
    for furniture in [
        "مقالات ذات صلة",
        "اترك تعليقاً",
        "لن يتم نشر عنوان بريدك الإلكتروني.",
        "زر الذهاب إلى الأعلى",
    ] {
        assert!(!kept.contains(&furniture), "{furniture} was kept");
    }
    // No blank line is left dangling at the end, and blank lines still separate paragraphs.
    assert_ne!(doc.paragraphs.last(), Some(&Paragraph::Blank));
    assert_eq!(doc.paragraphs.len(), 39);
    assert!(doc
        .paragraphs
        .windows(2)
        .all(|w| !(w[0] == Paragraph::Blank && w[1] == Paragraph::Blank)));
}

#[test]
fn boilerplate_footer_cuts_related_headlines_but_not_inline_boxes() {
    let long = "قال المسؤول إن الحكومة ستواصل العمل على تحسين الخدمات العامة في جميع المحافظات خلال العام المقبل، وإنها خصصت ميزانية كبيرة لهذا الغرض بعد مشاورات طويلة مع الخبراء والنواب.";
    let page = format!("{long}\n\n{long}\n\nأخبار ذات صلة\n\nواشنطن تفرض عقوبات جديدة على طهران\n\nارتفاع أسعار النفط\n");
    let mut doc = Document::parse(&page);
    doc.strip_boilerplate();
    assert_eq!(
        doc.reassemble(&vec!["x".to_string(); doc.sentence_count()]),
        "x\n\nx\n"
    );
    // The same heading before long paragraphs of the article only removes itself.
    let page = format!("{long}\n\nمقالات ذات صلة\n\n{long}\n\n{long}");
    let mut doc = Document::parse(&page);
    assert_eq!(doc.strip_boilerplate(), 1);
    assert_eq!(doc.sentence_count(), 3);
}

#[test]
fn boilerplate_keep_and_drop() {
    for line in [
        "مقالات ذات صلة",
        "اقرأ أيضاً",
        "اقرأ ايضا",
        "اترك تعليقاً",
        "اترك تعليقا",
        "لن يتم نشر عنوان بريدك الإلكتروني.",
        "الحقول الإلزامية مشار إليها بـ *",
        "أضف تعليق",
        "زر الذهاب إلى الأعلى",
        "العودة للأعلى",
        "شارك",
        "شارك على فيسبوك",
        "شارك على تويتر",
        "واتساب",
        "تابعونا",
        "الرئيسية",
        "السابق",
        "التالي",
        "اشترك في النشرة",
        "© 2023 جميع الحقوق محفوظة",
        "جميع الحقوق محفوظة",
        "Related Articles",
        "Leave a comment",
        "Your email address will not be published.",
        "Share",
        "Back to top",
        "All rights reserved.",
        "Copyright 2023 BBC",
        "حقوق الطبع والنشر 2024",
        "اقرأ أيضاً: واشنطن تفرض عقوبات جديدة على طهران",
        "Read more: Oil prices rise",
        "الرئيسية » أخبار العالم » سوريا",
        "فيسبوك تويتر واتساب",
    ] {
        assert!(is_boilerplate(line), "{line:?} should be furniture");
    }
    for line in [
        "شارك الرئيس في القمة",
        "شارك آلاف المتظاهرين في المسيرة.",
        "أمل هزيمة داعش.. ما فرصتها بعد تجربة سوريا والعراق؟",
        "وقت الاجتماع",
        "خبرة في سوريا والعراق",
        "التالي في القائمة هو وزير الخارجية الذي وصل أمس.",
        "The summit ended on Friday.",
        "شاهد أيضا آلاف المواطنين العرض العسكري في العاصمة.",
        "حقوق النشر أصبحت قضية رئيسية في المفاوضات التجارية.",
        "تابعنا على مدى ثلاثة أيام جلسات المحاكمة.",
        "الرئيسية في المدينة شهدت ازدحاما كبيرا / خاصة يوم الجمعة",
    ] {
        assert!(!is_boilerplate(line), "{line:?} is news");
    }
}

#[test]
fn passthrough_lines_and_reassembly_layout() {
    let text = "العنوان الرئيسي\r\n\r\n2023-05-11\r\nhttps://example.com/a?b=1\r\n#سوريا #العراق\r\nقال الوزير: نعم. ثم غادر.\r\n";
    let doc = Document::parse(text);
    assert!(doc.trailing_newline);
    assert_eq!(doc.paragraphs[1], Paragraph::Blank);
    assert_eq!(doc.paragraphs[2], Paragraph::Verbatim("2023-05-11".into()));
    assert_eq!(
        doc.paragraphs[3],
        Paragraph::Verbatim("https://example.com/a?b=1".into())
    );
    assert_eq!(
        doc.paragraphs[4],
        Paragraph::Verbatim("#سوريا #العراق".into())
    );
    let sentences: Vec<&str> = doc.sentences().collect();
    assert_eq!(
        sentences,
        ["العنوان الرئيسي", "قال الوزير: نعم.", "ثم غادر."]
    );
    let translated = ["Headline", "The minister said: yes.", "Then he left."].map(String::from);
    assert_eq!(
        doc.reassemble(&translated),
        "Headline\n\n2023-05-11\nhttps://example.com/a?b=1\n#سوريا #العراق\nThe minister said: yes. Then he left.\n"
    );
    assert_eq!(Document::parse("سطر").reassemble(&["line".into()]), "line");
}

#[test]
fn no_split_inside_numbers_abbreviations_and_links() {
    for s in [
        "ارتفع المؤشر 3.5 نقطة اليوم.",
        "ارتفع المؤشر ٣٫٥ نقطة اليوم.",
        "بدأ الاجتماع في الساعة 10.30 صباحا.",
        "قال مسؤول في U.S. Army إن الوضع مستقر.",
        "هناك أمثلة كثيرة e.g. this one في التقرير.",
        "كتب J. K. Rowling الرواية.",
        "زوروا الموقع www.example.com/news.html للمزيد.",
        "راسلونا على info@example.org أو عبر الهاتف.",
        "قال د. فورد إنها لن تتحدث.",
    ] {
        assert_eq!(split_sentences(s), [s], "split inside {s:?}");
    }
}

#[test]
fn normalization_cases() {
    assert_eq!(
        normalize_for_model("\u{FEFF}ال\u{200D}عـــالم\u{200E}"),
        "العالم"
    );
    assert_eq!(
        normalize_for_model("\u{FEB3}\u{FEEE}\u{FEAD}\u{FEF1}"),
        "سوري"
    );
    assert_eq!(normalize_for_model("مُحَمَّدٌ ١٢٣ 45%"), "مُحَمَّدٌ ١٢٣ 45%");
    assert_eq!(
        normalize_for_model("  بين\u{00A0}\u{00A0}\t الدول  "),
        "بين الدول"
    );
    assert_eq!(normalize_for_model("سوريا ، والعراق ؟"), "سوريا، والعراق؟");
    assert!(contains_arabic("CNN عربي") && !contains_arabic("2023 https://x.y"));
}

#[test]
fn split_long_keeps_all_text_under_the_limit() {
    let words = |s: &str| s.split_whitespace().count();
    let sentences: Vec<String> = Document::parse(&article())
        .sentences()
        .map(String::from)
        .collect();
    for max in [3, 8, 20] {
        for sentence in &sentences {
            let parts = split_long(sentence, max, &words);
            assert!(parts.iter().all(|p| words(p) <= max), "{max}: {parts:?}");
            assert!(parts.iter().all(|p| !p.trim().is_empty()));
            let squash = |s: &str| s.split_whitespace().collect::<String>();
            assert_eq!(squash(&parts.join(" ")), squash(sentence));
        }
    }
    // Clause boundaries win over the exact middle.
    let s =
        "عقد التحالف اجتماعه في المغرب، الأربعاء، مؤكدا في بيانه الختامي استمرار الحرب ضد التنظيم";
    assert_eq!(
        split_long(s, 10, &words),
        [
            "عقد التحالف اجتماعه في المغرب، الأربعاء،",
            "مؤكدا في بيانه الختامي استمرار الحرب ضد التنظيم"
        ]
    );
    assert_eq!(split_long(s, 100, &words), [s]);
    // A word longer than the limit is cut between characters, keeping marks on their letters.
    let chars = |s: &str| s.chars().count();
    let parts = split_long("مُحَمَّدٌمُحَمَّدٌ", 6, &chars);
    assert_eq!(parts.concat(), "مُحَمَّدٌمُحَمَّدٌ");
    assert!(
        parts
            .iter()
            .all(|p| chars(p) <= 6
                && !p.starts_with(|c: char| ('\u{064B}'..='\u{0652}').contains(&c)))
    );
}

fn ends_with_terminator(line: &str) -> bool {
    line.trim_end_matches(['"', '”', '»', ')'])
        .ends_with(['.', '!', '?', '؟', '…'])
}

/// Rebuilds the NTREX articles (consecutive lines with one doc id) as one paragraph each, joined
/// with spaces, and compares the sentence boundaries found with the line boundaries.
///
/// About a tenth of the lines (headlines, captions) end without punctuation, so nothing in
/// the joined paragraph marks where they end; recall is therefore measured on the boundaries
/// that punctuation marks, and precision on every boundary the segmenter puts. Set
/// `TARJAMA_NTREX_VERBOSE=1` to print each disagreement.
#[test]
fn ntrex_sentence_boundaries_are_recovered() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex");
    let (Ok(ar), Ok(ids)) = (
        std::fs::read_to_string(shared.join("ar.txt")),
        std::fs::read_to_string(shared.join("doc_ids.txt")),
    ) else {
        eprintln!("skipped: {} is not there", shared.display());
        return;
    };
    let verbose = std::env::var_os("TARJAMA_NTREX_VERBOSE").is_some();
    let lines: Vec<&str> = ar.lines().collect();
    let ids: Vec<&str> = ids.lines().collect();
    assert_eq!(lines.len(), ids.len());
    let (mut predicted, mut correct, mut marked, mut marked_found) = (0, 0, 0, 0);
    let (mut marked_lines, mut marked_lines_exact, mut lines_exact, mut articles) = (0, 0, 0, 0);
    let mut start = 0;
    while start < lines.len() {
        let end = start
            + ids[start..]
                .iter()
                .take_while(|&&id| id == ids[start])
                .count();
        let refs: Vec<String> = lines[start..end]
            .iter()
            .map(|l| normalize_for_model(l))
            .collect();
        start = end;
        articles += 1;
        let joined = refs.join(" ");
        // Byte offsets where each reference line ends in `joined`.
        let ref_ends: Vec<usize> = refs
            .iter()
            .scan(0, |pos, line| {
                *pos += line.len() + 1;
                Some(*pos - 1)
            })
            .collect();
        let doc = Document::parse(&joined);
        assert_eq!(doc.paragraphs.len(), 1);
        let mut cursor = 0;
        let mut found_ends = std::collections::HashSet::new();
        for sentence in doc.sentences() {
            let at = cursor
                + joined[cursor..]
                    .find(sentence)
                    .expect("sentences are substrings in order");
            cursor = at + sentence.len();
            found_ends.insert(cursor);
        }
        let last = *ref_ends.last().unwrap();
        for &found in found_ends.iter().filter(|&&e| e != last) {
            predicted += 1;
            if ref_ends.contains(&found) {
                correct += 1;
            } else if verbose {
                eprintln!(
                    "EXTRA split: {}|{}",
                    &joined[joined.floor_char_boundary(found.saturating_sub(80))..found],
                    &joined[found..joined.ceil_char_boundary(found + 40)]
                );
            }
        }
        for (k, line) in refs.iter().enumerate() {
            let starts_marked = k == 0 || ends_with_terminator(&refs[k - 1]);
            if k + 1 < refs.len() && ends_with_terminator(line) {
                marked += 1;
                let ok = found_ends.contains(&ref_ends[k]);
                marked_found += ok as usize;
                if !ok && verbose {
                    eprintln!("MISSED boundary after: {line}");
                }
            }
            let starts_ok = k == 0 || found_ends.contains(&ref_ends[k - 1]);
            let line_start = if k == 0 { 0 } else { ref_ends[k - 1] };
            let split_inside = found_ends
                .iter()
                .any(|&e| e > line_start && e < ref_ends[k]);
            let exact = starts_ok && found_ends.contains(&ref_ends[k]) && !split_inside;
            lines_exact += exact as usize;
            if starts_marked && (ends_with_terminator(line) || k + 1 == refs.len()) {
                marked_lines += 1;
                marked_lines_exact += exact as usize;
            }
        }
    }
    let percent = |a: usize, b: usize| 100.0 * a as f64 / b as f64;
    let (precision, recall, exact) = (
        percent(correct, predicted),
        percent(marked_found, marked),
        percent(marked_lines_exact, marked_lines),
    );
    eprintln!(
        "ntrex, {articles} articles, {} lines: boundary precision {correct}/{predicted} = {precision:.1}%, \
         recall of punctuation-marked boundaries {marked_found}/{marked} = {recall:.1}%, \
         punctuation-delimited lines recovered exactly {marked_lines_exact}/{marked_lines} = {exact:.1}% \
         (all lines: {lines_exact}/{} = {:.1}%)",
        lines.len(),
        lines.len(),
        percent(lines_exact, lines.len())
    );
    assert!(
        precision >= 98.5,
        "boundary precision {precision:.1}% fell below 98.5%"
    );
    assert!(
        recall >= 99.0,
        "boundary recall {recall:.1}% fell below 99.0%"
    );
    assert!(
        exact >= 98.5,
        "exact line recovery {exact:.1}% fell below 98.5%"
    );
}

/// NTREX is news from end to end: none of its 1997 Arabic lines or their English originals is
/// furniture, and stripping boilerplate from its articles (one paragraph a line) removes nothing.
#[test]
fn ntrex_news_is_never_boilerplate() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/ntrex");
    let (Ok(ar), Ok(en), Ok(ids)) = (
        std::fs::read_to_string(shared.join("ar.txt")),
        std::fs::read_to_string(shared.join("en.txt")),
        std::fs::read_to_string(shared.join("doc_ids.txt")),
    ) else {
        eprintln!("skipped: {} is not there", shared.display());
        return;
    };
    let flagged: Vec<&str> = ar
        .lines()
        .chain(en.lines())
        .filter(|l| is_boilerplate(l))
        .collect();
    assert!(flagged.is_empty(), "{flagged:?}");
    let lines: Vec<&str> = ar.lines().collect();
    let ids: Vec<&str> = ids.lines().collect();
    let mut start = 0;
    while start < lines.len() {
        let end = start
            + ids[start..]
                .iter()
                .take_while(|&&id| id == ids[start])
                .count();
        let mut doc = Document::parse(&lines[start..end].join("\n\n"));
        assert_eq!(doc.strip_boilerplate(), 0, "article {}", ids[start]);
        start = end;
    }
}

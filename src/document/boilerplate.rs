//! Recognizing the site furniture that scrapers copy along with an article: related-article
//! and comment sections, share buttons, navigation, "back to top" and copyright lines.
//!
//! Lines are matched whole, after [`fold_for_matching`], against short fixed phrases, so a
//! news sentence that merely contains one of the words (`شارك الرئيس في القمة`) is kept.

use std::sync::LazyLock;

use regex::Regex;

use super::normalize::fold_for_matching;

/// What a furniture line means for the lines after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Furniture {
    /// A line of furniture on its own (a share button, "back to top").
    Line,
    /// The heading of a related-articles or comments section: when it comes near the end of
    /// the page, everything after it belongs to that section.
    FooterStart,
}

/// Social networks and share actions, folded; a line made only of these is a share bar.
#[rustfmt::skip]
const SHARE_WORDS: &[&str] = &[
    "شارك", "مشاركه", "فيسبوك", "فيس", "بوك", "تويتر", "اكس", "واتساب", "واتس", "اب", "تلغرام",
    "تليغرام", "تيليجرام", "تلجرام", "لينكدان", "لينكد", "ان", "انستغرام", "انستجرام", "يوتيوب",
    "ماسنجر", "بينتريست", "ريديت", "تيك", "توك", "بريد", "الكتروني", "البريد", "الالكتروني",
    "طباعه", "نسخ", "الرابط", "share", "facebook", "twitter", "x", "whatsapp", "telegram",
    "linkedin", "instagram", "youtube", "messenger", "pinterest", "reddit", "tiktok", "email",
    "mail", "print", "copy", "link", "on",
];

const SOCIAL: &str = "فيسبوك|فيس بوك|تويتر|اكس|واتساب|واتس اب|تلغرام|تليغرام|تيليجرام|تلجرام|\
    لينكدان|لينكد ان|انستغرام|انستجرام|يوتيوب|ماسنجر|البريد الالكتروني|بريد الكتروني|\
    facebook|twitter|x|whatsapp|telegram|linkedin|instagram|youtube|messenger|email|e mail";

/// Headings of sections that run to the end of the page.
static FOOTER_START: LazyLock<Regex> = LazyLock::new(|| {
    let patterns = [
        r"(?:مقالات|اخبار|مواضيع|موضوعات|تقارير|مقالات اخري)(?: ذات صله| متعلقه| مشابهه| مرتبطه)",
        r"قد يعجبك ايضا",
        r"(?:اترك|اضف|اكتب) (?:تعليقا|تعليق|تعليقك|ردا|رد)",
        r"التعليقات|تعليقات|\d+ تعليق(?:ات)?|لا توجد تعليقات",
        r"related(?: articles| posts| stories| news| content)?|you (?:may|might) also like",
        r"leave a (?:comment|reply)|(?:add|post) a comment",
        r"comments|\d+ comments?|no comments(?: yet)?",
    ];
    Regex::new(&format!("^(?:{})$", patterns.join("|"))).expect("footer regex is valid")
});

/// Furniture lines that say nothing about what follows them.
static LINE: LazyLock<Regex> = LazyLock::new(|| {
    let patterns = [
        // Comment forms.
        r"لن يتم نشر (?:عنوان )?بريدك الالكتروني(?: الحقول (?:الالزاميه|المطلوبه) (?:مشار اليها|معلمه) (?:ب|بعلامه))?",
        r"الحقول (?:الالزاميه|المطلوبه) (?:مشار اليها|معلمه) (?:ب|بعلامه)",
        r"احفظ اسمي .*",
        r"(?:ارسال|نشر|اضافه) (?:التعليق|تعليق)",
        r"(?:الاسم|البريد الالكتروني|الموقع الالكتروني|التعليق)",
        r"your email address will not be published(?: required fields are marked)?",
        r"required fields are marked",
        r"save my name email and website in this browser for the next time i comment",
        r"(?:post|submit) comment",
        // Back to top.
        r"(?:زر )?(?:العوده|الرجوع|الذهاب|عوده|ارجع|انتقل) (?:الي ال|الي |لل|ل)اعلي(?: الصفحه)?",
        r"(?:back|scroll|go) to top",
        // Share and follow.
        &format!(
            r"شارك(?:ها|ه)?(?: هذا)?(?: المقال| الخبر| الموضوع)?(?: (?:علي|عبر|في) (?:{SOCIAL}))?"
        ),
        &format!(r"share(?: this)?(?: article| story| post)?(?: (?:on|via) (?:{SOCIAL}))?"),
        // "تابعنا على ..." is also "we followed ...", so only social networks may follow it.
        r"تابعونا(?: (?:علي|عبر) [^ ]+(?: [^ ]+){0,3})?",
        &format!(r"تابعنا(?: (?:علي|عبر) (?:{SOCIAL}))?"),
        r"follow us(?: on .*)?",
        // Navigation.
        r"(?:الرئيسيه|الصفحه الرئيسيه|home|homepage)",
        r"(?:المقال|الخبر|الموضوع)? ?(?:السابق|التالي)",
        r"(?:previous|next)(?: article| post| story)?",
        r"(?:اشترك|سجل|اشتركوا) (?:في|ب) (?:النشره|نشرتنا)(?: البريديه| الاخباريه)?",
        r"(?:اشترك الان|subscribe|subscribe to (?:our|the) newsletter|sign up for (?:our|the) newsletter)",
        // Inline links to other articles without their title ("اقرأ أيضا: <title>" is matched
        // by `is_link_lead_in`, since "شاهد أيضا ..." can also start a news sentence).
        r"(?:اقرا|شاهد|طالع) (?:ايضا|المزيد)",
        r"(?:read|see) (?:also|more)",
        // Copyright.
        r".*(?:جميع الحقوق محفوظه|حقوق (?:الطبع والنشر|النشر|الطبع) محفوظه|all rights reserved).*",
        // "حقوق النشر ..." (copyright ...) can start a news sentence; a notice names a year.
        r"(?:copyright|حقوق النشر|حقوق الطبع والنشر) (?:.* )?(?:19|20)\d\d(?: .*)?",
    ];
    Regex::new(&format!("^(?:{})$", patterns.join("|"))).expect("furniture regex is valid")
});

const MAX_FURNITURE_WORDS: usize = 25;

/// Classifies one line of a page as site furniture, or `None` for content.
pub fn furniture(line: &str) -> Option<Furniture> {
    let folded = fold_for_matching(line);
    if folded.is_empty() || folded.split(' ').count() > MAX_FURNITURE_WORDS {
        return None;
    }
    if FOOTER_START.is_match(&folded) {
        return Some(Furniture::FooterStart);
    }
    let share_bar = folded.split(' ').all(|w| SHARE_WORDS.contains(&w));
    if share_bar
        || line.contains('©')
        || LINE.is_match(&folded)
        || is_link_lead_in(line)
        || is_breadcrumb(line)
    {
        return Some(Furniture::Line);
    }
    None
}

/// `اقرأ أيضا: <title>`, `Read more: <title>`: a link to another article, recognized by the
/// lead-in before a colon.
fn is_link_lead_in(line: &str) -> bool {
    line.split_once([':', '：']).is_some_and(|(lead, _)| {
        matches!(
            fold_for_matching(lead).as_str(),
            "اقرا ايضا"
                | "اقرا المزيد"
                | "شاهد ايضا"
                | "طالع ايضا"
                | "read also"
                | "read more"
                | "see also"
                | "related"
        )
    })
}

/// `الرئيسية » أخبار » سوريا`: a navigation trail that starts at the home page, made of short
/// steps.
fn is_breadcrumb(line: &str) -> bool {
    let mut steps = line.split(['»', '›', '>', '/', '|']).map(fold_for_matching);
    let home = steps
        .next()
        .is_some_and(|s| matches!(s.as_str(), "الرئيسيه" | "الصفحه الرئيسيه" | "home"));
    let rest: Vec<String> = steps.collect();
    home && !rest.is_empty() && rest.iter().all(|s| s.split(' ').count() <= 4)
}

/// Whether `line` is site furniture rather than article text.
pub fn is_boilerplate(line: &str) -> bool {
    furniture(line).is_some()
}

/// Marks which of a page's lines are furniture: every furniture line, plus everything after the
/// first footer heading that sits at the tail of the page. `None` stands for a blank line.
///
/// A footer heading counts as the tail when the article text after it is at most a third of
/// the text before it, or when everything after it is short lines (link titles, comment
/// metadata) rather than paragraphs, so an inline "related" box mid-article cuts nothing.
pub fn furniture_mask(lines: &[Option<&str>]) -> Vec<bool> {
    let kinds: Vec<Option<Furniture>> = lines.iter().map(|l| l.and_then(furniture)).collect();
    let mut mask: Vec<bool> = kinds.iter().map(Option::is_some).collect();
    let content_chars = |range: &[Option<&str>], kinds: &[Option<Furniture>]| -> usize {
        range
            .iter()
            .zip(kinds)
            .filter(|(_, k)| k.is_none())
            .map(|(l, _)| l.map_or(0, |l| l.chars().count()))
            .sum()
    };
    for (i, kind) in kinds.iter().enumerate() {
        if *kind != Some(Furniture::FooterStart) {
            continue;
        }
        let before = content_chars(&lines[..i], &kinds[..i]);
        let after = content_chars(&lines[i + 1..], &kinds[i + 1..]);
        let only_short_lines = lines[i + 1..]
            .iter()
            .zip(&kinds[i + 1..])
            .all(|(line, kind)| {
                kind.is_some()
                    || line.is_none_or(|l| l.split_whitespace().count() <= MAX_FURNITURE_WORDS)
            });
        if after * 3 <= before || only_short_lines {
            mask[i..].iter_mut().for_each(|m| *m = true);
            break;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_furniture_variants() {
        for line in [
            "مقالات ذات صلة",
            "اترك تعليقاً",
            "اترك تعليقا",
            "أضف تعليق",
            "زر الذهاب إلى الأعلى",
            "العودة للأعلى",
            "شارك",
            "شارك على فيسبوك",
            "واتساب",
            "تابعونا",
            "الرئيسية",
            "التالي",
            "المقال السابق",
            "اشترك في النشرة البريدية",
            "© 2024 الجزيرة",
            "جميع الحقوق محفوظة لموقع المثال 2023",
            "اقرأ أيضاً: واشنطن تفرض عقوبات جديدة",
            "Share on Twitter",
            "Leave a Reply",
            "Back to top",
            "فيسبوك تويتر واتساب تلغرام",
            "لن يتم نشر عنوان بريدك الإلكتروني. الحقول الإلزامية مشار إليها بـ *",
        ] {
            assert!(is_boilerplate(line), "{line}");
        }
    }

    #[test]
    fn keeps_news_that_mentions_the_words() {
        for line in [
            "شارك الرئيس في القمة",
            "شارك في القمة أكثر من 40 زعيما.",
            "تابعونا الأسبوع المقبل في تغطية خاصة للانتخابات",
            "العودة إلى المدارس",
            "أخبار العالم",
        ] {
            assert!(!is_boilerplate(line), "{line}");
        }
    }
}

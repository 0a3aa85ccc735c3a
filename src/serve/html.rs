//! `format=html`: the text nodes of an HTML document or fragment are translated and everything
//! else (tags, attributes, comments, scripts and styles, whitespace) is kept byte for byte.
//!
//! lol_html parses as browsers do and streams text in chunks that may cut a text node anywhere,
//! so a first pass collects each node's text, and a second writes each node's English in its
//! first chunk and removes the rest; both passes meet the nodes in the same order.

use std::cell::RefCell;

use lol_html::html_content::{ContentType, TextChunk, TextType};
use lol_html::{doc_text, rewrite_str, RewriteStrSettings};

use crate::document::contains_arabic;

/// Text that a reader sees: body text and titles, not scripts or styles.
fn readable(chunk: &TextChunk) -> bool {
    matches!(chunk.text_type(), TextType::Data | TextType::RCData)
}

/// A node's text, split into the whitespace around it and what is translated, entities
/// decoded and line breaks made spaces (HTML renders them so, and a line break would split
/// the text into paragraphs).
struct Node {
    lead: String,
    text: String,
    trail: String,
}

impl Node {
    fn of(raw: &str) -> Node {
        let decoded = html_escape::decode_html_entities(raw);
        let body = decoded.trim();
        let start = decoded.find(body).unwrap_or(0);
        Node {
            lead: decoded[..start].to_string(),
            text: body.split_whitespace().collect::<Vec<_>>().join(" "),
            trail: decoded[start + body.len()..].to_string(),
        }
    }
}

/// The texts of `html` to translate: its readable text nodes that hold Arabic, in order.
/// `None` when lol_html cannot parse it.
pub fn texts(html: &str) -> Option<Vec<String>> {
    Some(nodes(html)?.into_iter().flatten().map(|n| n.text).collect())
}

/// Every readable text node, `Some` where it holds Arabic.
fn nodes(html: &str) -> Option<Vec<Option<Node>>> {
    let raw = raw_nodes(html)?;
    Some(
        raw.into_iter()
            .map(|raw| contains_arabic(&raw).then(|| Node::of(&raw)))
            .collect(),
    )
}

/// The raw text (entities undecoded) of every readable text node, in order. lol_html may hand
/// a node over in several chunks; they are joined here.
fn raw_nodes(html: &str) -> Option<Vec<String>> {
    let nodes = RefCell::new(Vec::new());
    let mut current = String::new();
    let settings = RewriteStrSettings::new().append_document_content_handler(doc_text!(|t| {
        if readable(t) {
            current.push_str(t.as_str());
            if t.last_in_text_node() {
                nodes.borrow_mut().push(std::mem::take(&mut current));
            }
        }
        Ok(())
    }));
    rewrite_str(html, settings).ok()?;
    Some(nodes.into_inner())
}

/// `html` with the text nodes [`texts`] returned replaced by `english`, in the same order.
pub fn replace(html: &str, english: &[String]) -> Option<String> {
    let nodes = nodes(html)?;
    let mut english = english.iter();
    let mut index = 0;
    let mut first = true;
    let settings = RewriteStrSettings::new().append_document_content_handler(doc_text!(|t| {
        if !readable(t) {
            return Ok(());
        }
        if let Some(Some(node)) = nodes.get(index) {
            if first {
                let text = english.next().map(String::as_str).unwrap_or_default();
                let text = text.trim_end_matches('\n');
                let escaped = html_escape::encode_text(text);
                let lead = html_escape::encode_text(&node.lead);
                let trail = html_escape::encode_text(&node.trail);
                t.replace(&format!("{lead}{escaped}{trail}"), ContentType::Html);
            } else {
                t.remove();
            }
        }
        first = false;
        if t.last_in_text_node() {
            index += 1;
            first = true;
        }
        Ok(())
    }));
    rewrite_str(html, settings).ok()
}

/// The readable text of `html`, one text node a line: what a summary reads.
pub fn plain_text(html: &str) -> Option<String> {
    let mut out = String::new();
    for raw in raw_nodes(html)? {
        let node = Node::of(&raw);
        if !node.text.is_empty() {
            out.push_str(&node.text);
            out.push('\n');
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_arabic_text_nodes_are_replaced_and_the_markup_is_kept() {
        let html = "<!-- x --><p class=\"a\">مرحبا <b>بكم</b> &amp; hello</p>\n<script>var s = 'نص';</script>";
        assert_eq!(texts(html).unwrap(), ["مرحبا", "بكم"]);
        let out = replace(html, &["Hello".into(), "you <all>".into()]).unwrap();
        assert_eq!(
            out,
            "<!-- x --><p class=\"a\">Hello <b>you &lt;all&gt;</b> &amp; hello</p>\n<script>var s = 'نص';</script>"
        );
    }

    #[test]
    fn entities_are_decoded_and_whitespace_around_nodes_kept() {
        let html = "<div>\n  مرحبا&nbsp;بكم\n  شكرا\n</div>";
        // A no-break space is white space too: the text is one line of words.
        assert_eq!(texts(html).unwrap(), ["مرحبا بكم شكرا"]);
        assert_eq!(
            replace(html, &["Hi".into()]).unwrap(),
            "<div>\n  Hi\n</div>"
        );
        assert_eq!(plain_text(html).unwrap(), "مرحبا بكم شكرا\n");
    }
}

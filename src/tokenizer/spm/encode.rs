//! Segmentation of normalized text, as SentencePiece's unigram_model.cc (`EncodeOptimized`) and
//! bpe_model.cc do it. Both return `(start, end, id)` spans over the normalized text.
//!
//! The unigram Viterbi keeps path scores in `f32` like SentencePiece does (tokenizers' `Unigram`
//! uses `f64`), and user-defined pieces get SentencePiece's `length * max_score - 0.1` bonus,
//! computed in `f64` as the C++ expression is, so near-ties resolve the same way.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use super::proto::piece_type;
use super::trie::Trie;

pub(crate) type Span = (usize, usize, u32);

/// What the segmenters need to know about the model.
pub(crate) struct Vocab<'a> {
    pub scores: &'a [f32],
    pub kinds: &'a [i32],
    /// NORMAL, USER_DEFINED and UNUSED pieces: the ones segmentation may produce.
    pub trie: &'a Trie,
    pub user_defined: &'a Trie,
    pub unk_id: u32,
    pub piece_to_id: &'a dyn Fn(&str) -> u32,
    pub normal_id: &'a dyn Fn(&str) -> Option<u32>,
}

const UNK_PENALTY: f32 = 10.0;

fn char_len(text: &str, at: usize) -> usize {
    text[at..].chars().next().map_or(1, char::len_utf8)
}

/// SentencePiece's min/max over NORMAL pieces; max starts at FLT_MIN (the smallest positive
/// float), as in unigram_model.cc.
pub(crate) fn score_range(scores: &[f32], kinds: &[i32]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = f32::MIN_POSITIVE;
    for (&score, &kind) in scores.iter().zip(kinds) {
        if kind == piece_type::NORMAL {
            min = min.min(score);
            max = max.max(score);
        }
    }
    (min, max)
}

pub(crate) fn unigram(text: &str, vocab: &Vocab, min_score: f32, max_score: f32) -> Vec<Span> {
    #[derive(Clone, Copy)]
    struct Best {
        score: f32,
        start: Option<usize>,
        id: u32,
    }
    let size = text.len();
    let unk_score = min_score - UNK_PENALTY;
    let mut best = vec![
        Best {
            score: 0.0,
            start: None,
            id: 0
        };
        size + 1
    ];
    let offer = |best: &mut [Best], start: usize, end: usize, score: f64, id: u32| {
        let target = &mut best[end];
        if target.start.is_none() || score > f64::from(target.score) {
            *target = Best {
                score: score as f32,
                start: Some(start),
                id,
            };
        }
    };

    let mut start = 0;
    while start < size {
        let here = best[start].score;
        let mblen = char_len(text, start);
        let mut has_single_node = false;
        vocab
            .trie
            .for_each_prefix(&text.as_bytes()[start..], |len, id| {
                let kind = vocab.kinds[id as usize];
                if kind == piece_type::UNUSED {
                    return;
                }
                let score = if kind == piece_type::USER_DEFINED {
                    (f64::from(len as f32 * max_score) - 0.1) + f64::from(here)
                } else {
                    f64::from(vocab.scores[id as usize] + here)
                };
                offer(&mut best, start, start + len, score, id);
                has_single_node |= len == mblen;
            });
        if !has_single_node {
            let score = f64::from(unk_score + here);
            offer(&mut best, start, start + mblen, score, vocab.unk_id);
        }
        start += mblen;
    }

    let mut spans = Vec::new();
    let mut end = size;
    while end > 0 {
        let node = best[end];
        let Some(start) = node.start else { break };
        spans.push((start, end, node.id));
        end = start;
    }
    spans.reverse();
    spans
}

#[derive(Debug)]
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

// The agenda pops the best score first and, among equal scores, the leftmost pair.
impl Ord for Pair {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .partial_cmp(&other.score)
            .unwrap_or(Ordering::Equal)
            .then_with(|| other.left.cmp(&self.left))
    }
}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Pair {}

pub(crate) fn bpe(text: &str, vocab: &Vocab) -> Vec<Span> {
    struct Symbol {
        start: usize,
        end: usize,
        prev: Option<usize>,
        next: Option<usize>,
        freeze: bool,
    }
    let mut symbols = Vec::new();
    let mut pos = 0;
    while pos < text.len() {
        let user = vocab.user_defined.longest_prefix(&text.as_bytes()[pos..]);
        let len = user.unwrap_or_else(|| char_len(text, pos));
        let index = symbols.len();
        symbols.push(Symbol {
            start: pos,
            end: pos + len,
            prev: index.checked_sub(1),
            next: (pos + len < text.len()).then_some(index + 1),
            freeze: user.is_some(),
        });
        pos += len;
    }
    if symbols.is_empty() {
        return Vec::new();
    }

    let mut agenda = BinaryHeap::new();
    // Merges into UNUSED pieces are undone at the end, so remember what they were made of.
    let mut rev_merge: HashMap<&str, (&str, &str)> = HashMap::new();
    let mut add_pair = |symbols: &[Symbol], agenda: &mut BinaryHeap<Pair>, left, right| {
        let (Some(left), Some(right)) = (left, right) else {
            return;
        };
        let (l, r): (&Symbol, &Symbol) = (&symbols[left], &symbols[right]);
        if l.freeze || r.freeze {
            return;
        }
        let piece = &text[l.start..r.end];
        let Some(id) = (vocab.normal_id)(piece) else {
            return;
        };
        agenda.push(Pair {
            score: vocab.scores[id as usize],
            left,
            right,
            size: piece.len(),
        });
        if vocab.kinds[id as usize] == piece_type::UNUSED {
            rev_merge.insert(piece, (&text[l.start..l.end], &text[r.start..r.end]));
        }
    };
    for i in 1..symbols.len() {
        add_pair(&symbols, &mut agenda, Some(i - 1), Some(i));
    }

    while let Some(top) = agenda.pop() {
        let (left, right) = (&symbols[top.left], &symbols[top.right]);
        let (left_len, right_len) = (left.end - left.start, right.end - right.start);
        if left_len == 0 || right_len == 0 || left_len + right_len != top.size {
            continue;
        }
        let (right_end, right_next) = (right.end, right.next);
        symbols[top.left].end = right_end;
        symbols[top.left].next = right_next;
        if let Some(next) = right_next {
            symbols[next].prev = Some(top.left);
        }
        symbols[top.right].end = symbols[top.right].start;
        let prev = symbols[top.left].prev;
        add_pair(&symbols, &mut agenda, prev, Some(top.left));
        add_pair(&symbols, &mut agenda, Some(top.left), right_next);
    }

    fn resegment<'t>(
        piece: &'t str,
        vocab: &Vocab,
        rev_merge: &HashMap<&'t str, (&'t str, &'t str)>,
        out: &mut Vec<(&'t str, u32)>,
    ) {
        let id = (vocab.piece_to_id)(piece);
        if vocab.kinds[id as usize] == piece_type::UNUSED {
            if let Some(&(left, right)) = rev_merge.get(piece) {
                resegment(left, vocab, rev_merge, out);
                resegment(right, vocab, rev_merge, out);
                return;
            }
        }
        out.push((piece, id));
    }
    let mut pieces = Vec::new();
    let mut index = Some(0);
    while let Some(i) = index {
        let piece = &text[symbols[i].start..symbols[i].end];
        resegment(piece, vocab, &rev_merge, &mut pieces);
        index = symbols[i].next;
    }
    // Pieces are contiguous slices of `text`, so their spans follow from their lengths.
    let mut start = 0;
    pieces
        .into_iter()
        .map(|(piece, id)| {
            let span = (start, start + piece.len(), id);
            start += piece.len();
            span
        })
        .collect()
}

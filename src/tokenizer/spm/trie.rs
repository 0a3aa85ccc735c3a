//! A byte trie for common-prefix searches over a model's pieces. SentencePiece answers these
//! searches with a double array; the results only have to come back in the same order (shortest
//! match first), so a plain node list serves.

#[derive(Debug, Default, Clone)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

#[derive(Debug, Default, Clone)]
struct Node {
    /// Children sorted by byte. Most nodes have a handful, so a binary search beats hashing.
    children: Vec<(u8, u32)>,
    value: Option<u32>,
}

impl Trie {
    pub fn new() -> Self {
        Trie {
            nodes: vec![Node::default()],
        }
    }

    /// Adds `key` with `value`; a key added twice keeps its first value.
    pub fn insert(&mut self, key: &[u8], value: u32) {
        let mut node = 0usize;
        for &byte in key {
            let children = &self.nodes[node].children;
            node = match children.binary_search_by_key(&byte, |&(b, _)| b) {
                Ok(i) => children[i].1 as usize,
                Err(i) => {
                    let next = self.nodes.len();
                    self.nodes[node].children.insert(i, (byte, next as u32));
                    self.nodes.push(Node::default());
                    next
                }
            };
        }
        self.nodes[node].value.get_or_insert(value);
    }

    /// Calls `found(length, value)` for every key that is a prefix of `text`, shortest first.
    pub fn for_each_prefix(&self, text: &[u8], mut found: impl FnMut(usize, u32)) {
        let mut node = 0usize;
        for (i, byte) in text.iter().enumerate() {
            let children = &self.nodes[node].children;
            match children.binary_search_by_key(byte, |&(b, _)| b) {
                Ok(k) => node = children[k].1 as usize,
                Err(_) => return,
            }
            if let Some(value) = self.nodes[node].value {
                found(i + 1, value);
            }
        }
    }

    /// The length of the longest key that is a prefix of `text`.
    pub fn longest_prefix(&self, text: &[u8]) -> Option<usize> {
        let mut longest = None;
        self.for_each_prefix(text, |len, _| longest = Some(len));
        longest
    }
}

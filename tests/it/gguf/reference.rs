//! What the two GGUF tokenizer tests share: parts of the reference files that
//! scripts/make-gguf-fixtures.py and make-gguf-spm-fixtures.py write, and the error check.

use serde::Deserialize;
use tarjama::tokenizer::GgufTokenizer;
use tarjama::Error;

#[derive(Deserialize)]
pub struct Added {
    pub id: u32,
    pub content: String,
    pub special: bool,
}

/// A prefix of a reply's ids, which may end inside a multi-byte character, and its decoding.
#[derive(Deserialize)]
pub struct Partial {
    pub ids: Vec<u32>,
    pub decoded: String,
}

/// The message of a model error, which must be one line.
pub fn model_error(result: Result<GgufTokenizer, Error>) -> String {
    match result {
        Err(Error::Model(msg)) => {
            assert!(!msg.contains('\n'), "one line: {msg}");
            msg
        }
        Err(other) => panic!("expected a model error, got {other:?}"),
        Ok(_) => panic!("expected a model error, got a tokenizer"),
    }
}

use super::{check_forward, check_generation_cases};

/// `defaults`, `greedy`, `beam4`, `beam4_lp2.0`.
const CASES: usize = 4;

/// flan-T5 shaped, saved by 5.x: `tie_word_embeddings: true` with
/// `scale_decoder_outputs: false`, so no rescale before its own `lm_head` (tarjama rescaled
/// whenever `tie_word_embeddings` was not false, and beam search went astray).
#[test]
fn t5_v1_1() {
    check_forward("saved/t5v11");
    check_generation_cases("saved/t5v11", CASES);
}

/// MT5ForConditionalGeneration never rescales in 5.x, whatever `tie_word_embeddings` says;
/// spiece.model is its only tokenizer file, and its decoder is one block deeper than its
/// encoder.
#[test]
fn mt5() {
    check_forward("saved/mt5");
    check_generation_cases("saved/mt5", CASES);
}

/// T5 v1.0 saved by 5.x (`scale_decoder_outputs: true`) still rescales.
#[test]
fn t5_v1_0() {
    check_generation_cases("saved/t5", CASES);
}

/// Untied BART: the encoder, the decoder and the LM head each read their own table, not
/// `model.shared`.
#[test]
fn bart_untied() {
    check_forward("saved/bart-untied");
    check_generation_cases("saved/bart-untied", CASES);
}

/// `normalize_before: true` in a BART config changes nothing: transformers' BART is
/// post-norm whatever the key says.
#[test]
fn bart_normalize_before_is_not_read() {
    check_forward("saved/bart-normalize-before");
    check_generation_cases("saved/bart-normalize-before", CASES);
}

#[test]
fn mbart() {
    check_generation_cases("saved/mbart", CASES);
}

#[test]
fn nllb() {
    check_generation_cases("saved/nllb", CASES);
}

#[test]
fn marian() {
    check_generation_cases("saved/marian", CASES);
}

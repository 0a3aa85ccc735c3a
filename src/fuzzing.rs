//! The bodies of the fuzz targets in `fuzz/`, kept in the library so that
//! `tests/it/fuzz_regressions.rs` replays the inputs the fuzzers found through exactly the same
//! code. Each takes arbitrary bytes, must not panic, and asserts the invariants its code keeps
//! by design; a failed assertion is a bug, as a panic is.

use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use candle_core::quantized::{gguf_file, QTensor};
use candle_core::{DType, Device, Tensor};

use crate::document::{self, Document, Paragraph};
use crate::gguf_reader::{check_complete, validate_gguf};
use crate::models::gguf::ChatModel;
use crate::tokenizer::{GgufTokenizer, MarianTokenizer, SentencePiece};

/// Text with Arabic, Latin, digits, spaces to escape and a spelled byte piece, for tokenizers
/// built from fuzzed files.
const SAMPLE: &str = "قال الوزير: hello  world 2024! \u{2581}<0x41> ١٢";

fn no_space(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The user's input path: bytes decoded as `read_input` does, parsed, stripped of site
/// furniture, segmented, reassembled, and packed into windows as the summarizer does.
pub fn document(data: &[u8]) {
    // Taken from the input, so the fuzzer also varies the limits.
    let max_chars = 1 + usize::from(data.first().copied().unwrap_or(0) % 64);
    let Ok(text) = document::decode_input(data.to_vec(), "fuzz input") else {
        return;
    };
    let mut doc = Document::parse(&text);
    let lines = text.strip_suffix('\n').unwrap_or(&text).split('\n').count();
    assert_eq!(doc.paragraphs.len(), lines, "one paragraph per line");
    for paragraph in &doc.paragraphs {
        check_paragraph(paragraph, max_chars);
    }
    check_reassembly(&doc);

    let non_blank = |doc: &Document| {
        let blank = doc.paragraphs.iter().filter(|p| **p == Paragraph::Blank);
        doc.paragraphs.len() - blank.count()
    };
    let (before, count_before) = (non_blank(&doc), doc.paragraphs.len());
    let removed = doc.strip_boilerplate();
    assert_eq!(
        non_blank(&doc) + removed,
        before,
        "only non-blank removals count"
    );
    assert!(doc.paragraphs.len() <= count_before);
    check_reassembly(&doc);

    let chars = |s: &str| s.chars().count();
    let paragraphs: Vec<String> = doc
        .paragraphs
        .iter()
        .map(|p| document::normalize_for_model(p.source()))
        .filter(|p| !p.is_empty())
        .collect();
    let fits = |s: &str| Ok::<_, ()>(chars(s) <= max_chars);
    let cut = |s: &str| document::split_long(s, max_chars, &chars);
    let windows = document::pack_windows(&paragraphs, "\n\n", &fits, &cut).unwrap();
    assert_eq!(
        no_space(&windows.concat()),
        no_space(&paragraphs.concat()),
        "packing loses no text"
    );
}

fn check_paragraph(paragraph: &Paragraph, max_chars: usize) {
    let source = paragraph.source();
    assert!(!source.contains('\n'));
    let normalized = document::normalize_for_model(source);
    assert_eq!(
        document::normalize_for_model(&normalized),
        normalized,
        "normalizing twice changes nothing"
    );
    let Paragraph::Text { sentences, .. } = paragraph else {
        return;
    };
    assert!(!sentences.is_empty(), "an Arabic line has a sentence");
    for sentence in sentences {
        assert!(!sentence.is_empty() && sentence.trim() == sentence && !sentence.contains('\n'));
    }
    assert_eq!(
        no_space(&sentences.concat()),
        no_space(&normalized),
        "segmentation loses no text"
    );
    let chars = |s: &str| s.chars().count();
    for sentence in sentences {
        let parts = document::split_long(sentence, max_chars, &chars);
        assert!(parts.iter().all(|p| !p.is_empty()));
        assert_eq!(
            no_space(&parts.concat()),
            no_space(sentence),
            "splitting loses no text"
        );
    }
}

/// Reassembling the sentences as their own translations keeps every line in its place.
fn check_reassembly(doc: &Document) {
    let sentences: Vec<String> = doc.sentences().map(str::to_string).collect();
    assert_eq!(sentences.len(), doc.sentence_count());
    let out = doc.reassemble(&sentences);
    if !doc.paragraphs.is_empty() {
        let lines = doc.paragraphs.len() + usize::from(doc.trailing_newline);
        assert_eq!(out.split('\n').count(), lines, "one line per paragraph");
    }
}

/// The fixture Marian tokenizer, loaded once per process.
fn marian() -> &'static MarianTokenizer {
    static TOKENIZER: OnceLock<MarianTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny");
        MarianTokenizer::from_dir(&dir).expect("the marian-tiny fixture loads")
    })
}

/// An even first byte: the rest is a SentencePiece model file, which must load or fail with an
/// error, and if it loads, encode and decode. An odd one: the rest is text for the fixture
/// Marian tokenizer, and also a list of ids to decode.
pub fn sentencepiece(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        let Ok(spm) = SentencePiece::from_bytes(rest) else {
            return;
        };
        let pieces = spm.encode_pieces(SAMPLE);
        let ids = spm.encode_ids(SAMPLE);
        assert_eq!(pieces.len(), ids.len());
        assert!(ids.iter().all(|&id| (id as usize) < spm.len()));
        let refs: Vec<&str> = pieces.iter().map(String::as_str).collect();
        spm.decode_pieces(&refs);
        return;
    }
    let tok = marian();
    let text = String::from_utf8_lossy(rest);
    let ids = tok.encode(&text);
    assert_eq!(ids.last(), Some(&tok.eos_id()), "</s> ends every encoding");
    assert_eq!(tok.count_tokens(&text), ids.len());
    tok.decode(&ids);
    tok.normalize(&text);
    tok.source_spm().encode_ids(&text);
    let raw: Vec<u32> = rest
        .chunks(2)
        .map(|c| u32::from(u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .collect();
    tok.decode(&raw);
    tok.decode_keeping_special(&raw);
}

/// A GGUF file's header, metadata and tensor index: [`validate_gguf`] must accept or reject it;
/// what it accepts, candle must read, and the size checks and the tokenizer builder must handle
/// without panicking.
pub fn gguf_metadata(data: &[u8]) {
    if validate_gguf(data, data.len() as u64).is_err() {
        return;
    }
    // candle's own limits (2^30 bytes or elements) are beyond any input this small, so every
    // file the validator accepts is one candle reads.
    let content = gguf_file::Content::read(&mut Cursor::new(data))
        .unwrap_or_else(|e| panic!("validate_gguf accepted a file candle rejects: {e}"));
    let _ = check_complete(&content, &mut Cursor::new(data), Path::new("fuzz.gguf"));
    let Ok(tok) = GgufTokenizer::from_content(&content) else {
        return;
    };
    if let Ok(ids) = tok.encode(SAMPLE, true) {
        let _ = tok.decode(&ids);
        let _ = tok.decode_skip_special(&ids);
    }
}

/// A GGUF file read whole (metadata and tensors), to write edited copies of: the fuzz target
/// builds its Gemma 3 model this way, and the tests their damaged files.
pub struct GgufParts {
    pub metadata: Vec<(String, gguf_file::Value)>,
    pub tensors: Vec<(String, QTensor)>,
}

impl GgufParts {
    /// Reads a GGUF file (a test fixture: any failure panics).
    pub fn read(bytes: &[u8]) -> Self {
        let mut reader = Cursor::new(bytes);
        let content = gguf_file::Content::read(&mut reader).expect("the fixture reads");
        // Sorted, so that the same edits write the same bytes.
        let mut metadata: Vec<_> = content.metadata.clone().into_iter().collect();
        metadata.sort_by(|a, b| a.0.cmp(&b.0));
        let mut names: Vec<&String> = content.tensor_infos.keys().collect();
        names.sort();
        let tensors = names
            .into_iter()
            .map(|name| {
                let tensor = content
                    .tensor(&mut reader, name, &Device::Cpu)
                    .expect("the fixture's tensors read");
                (name.clone(), tensor)
            })
            .collect();
        Self { metadata, tensors }
    }

    /// Sets `key` to `value`, adding it if absent; `None` removes it.
    pub fn set(&mut self, key: &str, value: Option<gguf_file::Value>) {
        self.metadata.retain(|(k, _)| k != key);
        if let Some(value) = value {
            self.metadata.push((key.to_string(), value));
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let metadata: Vec<(&str, &gguf_file::Value)> =
            self.metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let tensors: Vec<(&str, &QTensor)> =
            self.tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
        let mut out = Cursor::new(Vec::new());
        gguf_file::write(&mut out, &metadata, &tensors).expect("GGUF writes to memory");
        out.into_inner()
    }
}

fn fixture_path(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A tiny Gemma 3 model for candle's `quantized_gemma3`, made from the Qwen3 fixture (the same
/// matrices, with q/k norms): its `qwen3.*` keys renamed, the post-attention and post-FFN norms
/// Gemma 3 adds copied from the pre-norms, and the keys candle's loader requires added.
pub fn gemma3_gguf() -> Vec<u8> {
    let bytes = std::fs::read(fixture_path("gguf-tiny/qwen3.gguf")).expect("qwen3 fixture");
    let mut parts = GgufParts::read(&bytes);
    for (key, value) in &mut parts.metadata {
        if let Some(rest) = key.strip_prefix("qwen3.") {
            *key = format!("gemma3.{rest}");
        }
        if key == "general.architecture" {
            *value = gguf_file::Value::String("gemma3".into());
        }
    }
    let key_length = parts
        .metadata
        .iter()
        .find(|(k, _)| k == "gemma3.attention.key_length")
        .map(|(_, v)| v.clone())
        .expect("the qwen3 fixture sets key_length");
    parts.set("gemma3.attention.value_length", Some(key_length));
    parts.set(
        "gemma3.attention.sliding_window",
        Some(gguf_file::Value::U32(8)),
    );
    let mut reader = Cursor::new(&bytes[..]);
    let content = gguf_file::Content::read(&mut reader).expect("the fixture reads");
    let mut added = Vec::new();
    for (name, _) in &parts.tensors {
        for (from, to) in [
            ("attn_norm.weight", "post_attention_norm.weight"),
            ("ffn_norm.weight", "post_ffw_norm.weight"),
        ] {
            if let Some(block) = name.strip_suffix(from) {
                let tensor = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
                added.push((format!("{block}{to}"), tensor));
            }
        }
    }
    parts.tensors.extend(added);
    parts.tensors.sort_by(|a, b| a.0.cmp(&b.0));
    parts.to_bytes()
}

/// The fuzz input, read from the front; past its end every byte reads as 0 ("keep").
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&first, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        first
    }

    fn u64(&mut self, bytes: usize) -> u64 {
        (0..bytes).fold(0, |n, i| n | u64::from(self.byte()) << (8 * i))
    }

    /// What to do with a number whose value in the fixture is `current`: `None` keeps it,
    /// `Some(None)` removes it, `Some(Some(n))` sets it. Small and boundary values are the
    /// likely choices, since those are where sizes and divisions go wrong.
    fn number(&mut self, current: Option<u64>) -> Option<Option<Number>> {
        let base = current.unwrap_or(8);
        let n = match self.byte() % 16 {
            0 => return None,
            1 => Number::Int(0),
            2 => Number::Int(1),
            3 => Number::Int(2),
            4 => Number::Int(base.saturating_sub(1)),
            5 => Number::Int(base + 1),
            6 => Number::Int(base.saturating_mul(2)),
            7 => Number::Int(base / 2),
            8 => Number::Int(self.u64(1)),
            9 => Number::Int(self.u64(2)),
            10 => Number::Int(self.u64(4)),
            11 => Number::Int(self.u64(8)),
            12 => Number::Int(1 << (self.byte() % 64)),
            13 => Number::Negative,
            14 => Number::Float(f64::from_bits(self.u64(8))),
            _ => return Some(None),
        };
        Some(Some(n))
    }
}

/// A value the fuzzer puts where a hyperparameter was.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(u64),
    Negative,
    Float(f64),
}

impl Number {
    fn json(self) -> serde_json::Value {
        match self {
            Number::Int(n) => n.into(),
            Number::Negative => (-1).into(),
            Number::Float(x) => {
                serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, Into::into)
            }
        }
    }

    /// As GGUF metadata: integers in the width the fuzzer picks (u32 when it fits, else u64),
    /// or the file's own float type for keys that hold floats.
    fn gguf(self, float_key: bool) -> gguf_file::Value {
        use gguf_file::Value;
        match (self, float_key) {
            (Number::Int(n), true) => Value::F32(n as f32),
            (Number::Int(n), false) => u32::try_from(n).map_or(Value::U64(n), Value::U32),
            (Number::Negative, true) => Value::F32(-1.0),
            (Number::Negative, false) => Value::I32(-1),
            (Number::Float(x), true) => Value::F32(x as f32),
            (Number::Float(x), false) => Value::F64(x),
        }
    }
}

/// The encoder-decoder fixtures, by family, with the numeric keys of their config.json.
const SEQ2SEQ_FIXTURES: &[&str] = &[
    "bart-tiny",
    "marian-tiny",
    "mbart-tiny",
    "nllb-tiny",
    "t5-tiny",
    "t5v11-tiny",
];
const BART_KEYS: &[&str] = &[
    "vocab_size",
    "decoder_vocab_size",
    "d_model",
    "encoder_layers",
    "decoder_layers",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "max_position_embeddings",
    "pad_token_id",
    "eos_token_id",
    "decoder_start_token_id",
];
const T5_KEYS: &[&str] = &[
    "vocab_size",
    "d_model",
    "d_kv",
    "d_ff",
    "num_layers",
    "num_decoder_layers",
    "num_heads",
    "relative_attention_num_buckets",
    "relative_attention_max_distance",
    "n_positions",
    "layer_norm_epsilon",
    "pad_token_id",
    "eos_token_id",
    "decoder_start_token_id",
];

/// The GGUF fixtures, and the hyperparameters (`<arch>.` keys) the fuzzer changes.
const GGUF_FIXTURES: &[&str] = &["qwen2", "qwen3", "llama", "gemma3"];
const GGUF_KEYS: &[(&str, bool)] = &[
    ("block_count", false),
    ("embedding_length", false),
    ("feed_forward_length", false),
    ("context_length", false),
    ("attention.head_count", false),
    ("attention.head_count_kv", false),
    ("attention.key_length", false),
    ("attention.value_length", false),
    ("attention.layer_norm_rms_epsilon", true),
    ("rope.freq_base", true),
    ("attention.sliding_window", false),
    ("attention.sliding_window_type", false),
    ("rope.local_freq_base", true),
];

/// A fixture's `config.json` and weights, read once per process.
struct Seq2SeqFixture {
    config: serde_json::Value,
    weights: Vec<u8>,
}

fn seq2seq_fixture(i: usize) -> &'static Seq2SeqFixture {
    static FIXTURES: OnceLock<Vec<Seq2SeqFixture>> = OnceLock::new();
    &FIXTURES.get_or_init(|| {
        SEQ2SEQ_FIXTURES
            .iter()
            .map(|name| {
                let dir = fixture_path(name);
                let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
                Seq2SeqFixture {
                    config: serde_json::from_str(&config).unwrap(),
                    weights: std::fs::read(dir.join("model.safetensors")).unwrap(),
                }
            })
            .collect()
    })[i]
}

fn gguf_fixture(i: usize) -> &'static [u8] {
    static FIXTURES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    &FIXTURES.get_or_init(|| {
        GGUF_FIXTURES
            .iter()
            .map(|arch| match *arch {
                "gemma3" => gemma3_gguf(),
                _ => std::fs::read(fixture_path(&format!("gguf-tiny/{arch}.gguf"))).unwrap(),
            })
            .collect()
    })[i]
}

/// Model hyperparameters: the first byte picks a tiny fixture model (six encoder-decoders of the
/// BART and T5 families, four GGUF chat models), the rest changes the numbers of its config.json
/// or GGUF metadata, one choice per key ([`Input::number`]). The model then goes through the
/// real loader (`load_seq2seq`, `ChatModel::load`) and, if it loads, a short forward pass. With
/// the fixture's weights most changes make the shapes disagree, which the loader must report;
/// an odd second byte gives the encoder-decoders zero weights of whatever shapes the config
/// implies instead (when they are small), so that shapes themselves vary. Nothing may panic,
/// abort or allocate without bound.
///
/// Returns the loader's error, if it refused the model (the regression test checks that the
/// seeds load and the findings are refused in one line).
pub fn model_config(data: &[u8]) -> Result<(), String> {
    let mut input = Input(data);
    let pick = usize::from(input.byte()) % (SEQ2SEQ_FIXTURES.len() + GGUF_FIXTURES.len());
    match pick.checked_sub(SEQ2SEQ_FIXTURES.len()) {
        None => seq2seq_config(pick, &mut input),
        Some(i) => gguf_config(i, &mut input),
    }
}

fn seq2seq_config(fixture: usize, input: &mut Input) -> Result<(), String> {
    let zero_weights = input.byte() % 2 == 1;
    let fixture = seq2seq_fixture(fixture);
    let mut config = fixture.config.clone();
    let model_type = config["model_type"]
        .as_str()
        .unwrap_or("marian")
        .to_string();
    let keys = if model_type.starts_with("t5") || model_type == "mt5" {
        T5_KEYS
    } else {
        BART_KEYS
    };
    let object = config.as_object_mut().expect("config.json is an object");
    for key in keys {
        let current = object.get(*key).and_then(serde_json::Value::as_u64);
        match input.number(current) {
            None => {}
            Some(None) => {
                object.remove(*key);
            }
            Some(Some(n)) => {
                object.insert(key.to_string(), n.json());
            }
        }
    }
    let device = Device::Cpu;
    let small = implied_parameters(&model_type, &config).is_some_and(|n| n <= 1 << 22);
    let vb = if zero_weights && small {
        candle_nn::VarBuilder::zeros(DType::F32, &device)
    } else {
        candle_nn::VarBuilder::from_slice_safetensors(&fixture.weights, DType::F32, &device)
            .expect("the fixture's weights read")
    };
    let model = crate::models::load_seq2seq(&model_type, &config, vb, None)
        .map_err(|e| e.one_line())?
        .model;
    let ids = |rows: &[[u32; 3]; 2]| Tensor::new(rows, &device).unwrap();
    // Two rows, the second padded, so that the packed paths run too.
    let input_ids = ids(&[[5, 6, 2], [7, 2, 1]]);
    let mask = ids(&[[1, 1, 1], [1, 1, 0]]);
    let _ = model.max_positions();
    // A model that loads may still fail to run (a config that names a start token the
    // tokenizer never gives, say); it must fail with an error.
    if let Ok(hidden) = model.encode(&input_ids, &mask) {
        if let Ok(mut cache) = model.start_decoder(&hidden, &mask) {
            let start = Tensor::new(&[0u32, 1], &device).unwrap();
            let _ = model.decode_step(&start, &mut cache);
        }
    }
    Ok(())
}

/// A generous count of the weights `config` implies, for both families, with the class
/// defaults of absent keys, so that the zero-weight mode only builds small models (the bounds
/// the loaders check are for real files, whose weights are read rather than allocated). `None`
/// where the config does not parse, which the loader will report.
fn implied_parameters(model_type: &str, config: &serde_json::Value) -> Option<u64> {
    use crate::models::{bart::BartConfig, t5::T5Config};
    // Saturating throughout: the values are the fuzzer's, up to 2^64 each.
    let product = |factors: &[usize]| {
        factors
            .iter()
            .fold(1u64, |n, &f| n.saturating_mul(f as u64))
    };
    let total = |terms: &[u64]| terms.iter().fold(0u64, |n, &t| n.saturating_add(t));
    if model_type == "t5" || model_type == "mt5" {
        let c = T5Config::from_json(config).ok()?;
        let inner = c.num_heads.saturating_mul(c.d_kv);
        let layers = c.num_layers.saturating_add(c.decoder_layers());
        let per_layer = total(&[
            product(&[8, c.d_model, inner]),
            product(&[3, c.d_model, c.d_ff]),
        ]);
        Some(total(&[
            product(&[3, c.vocab_size, c.d_model]),
            per_layer.saturating_mul(layers as u64),
            product(&[2, c.relative_attention_num_buckets, c.num_heads]),
        ]))
    } else {
        let c: BartConfig = serde_json::from_value(config.clone()).ok()?;
        let d = c.d_model;
        let vocab = c
            .vocab_size
            .saturating_add(c.decoder_vocab_size.unwrap_or(0));
        let layers = c.encoder_layers.saturating_add(c.decoder_layers);
        let ffn = c.encoder_ffn_dim.saturating_add(c.decoder_ffn_dim);
        let per_layer = total(&[product(&[8, d, d]), product(&[3, d, ffn])]);
        Some(total(&[
            product(&[3, vocab, d]),
            per_layer.saturating_mul(layers as u64),
            product(&[2, c.max_position_embeddings.saturating_add(2), d]),
        ]))
    }
}

fn gguf_config(fixture: usize, input: &mut Input) -> Result<(), String> {
    let bytes = gguf_fixture(fixture);
    let mut content = gguf_file::Content::read(&mut Cursor::new(bytes)).expect("the fixture reads");
    let arch = GGUF_FIXTURES[fixture];
    for (key, float_key) in GGUF_KEYS {
        let key = format!("{arch}.{key}");
        let current = content.metadata.get(&key).and_then(|v| match v {
            gguf_file::Value::U32(n) => Some(u64::from(*n)),
            gguf_file::Value::U64(n) => Some(*n),
            _ => None,
        });
        match input.number(current) {
            None => {}
            Some(None) => {
                content.metadata.remove(&key);
            }
            Some(Some(n)) => {
                content.metadata.insert(key, n.gguf(*float_key));
            }
        }
    }
    let mut model = ChatModel::load(&content, &mut Cursor::new(bytes), &Device::Cpu)
        .map_err(|e| e.one_line())?;
    if model.forward(&[1, 2, 3]).is_ok() {
        let _ = model.forward(&[4]);
        let reused = model.reuse_prefix(&[1, 2, 5]);
        let _ = model.forward(&[1, 2, 5][reused..]);
    }
    Ok(())
}

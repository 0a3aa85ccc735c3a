//! The device side of scripts/gpu-check: built with `--features cuda`, run on a GPU machine.
//!
//! Usage:
//!   gpu_check parity DEVICE
//!       Every generation case of every fixture family (Marian, BART, NLLB, mBART, T5, T5 v1.1,
//!       and the tiny GGUF chat models), on the CPU in f32 and on DEVICE in f32, bf16 and f16.
//!       Prints how many outputs on DEVICE are identical to the CPU's; exits with 1 when one
//!       differs in f32. Fixtures are read from `TARJAMA_FIXTURES` (default: the repository's).
//!   gpu_check bench-translate DEVICE WEIGHTS MODEL_DIR INPUT LINES TOKENS BATCH BEAMS
//!   gpu_check bench-llm DEVICE MODEL.gguf PROMPT_FILE NEW_TOKENS
//!       The workloads of scripts/bench-translate and scripts/bench-llm on DEVICE.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device};
use serde::Deserialize;
use tarjama::device::{select_device, DeviceChoice};
use tarjama::generate::argmax;
use tarjama::hub::{self, HubOptions};
use tarjama::models::gguf::{read_header, ChatModel};
use tarjama::pipeline::Seq2Seq;

#[path = "support/bench.rs"]
mod bench;
#[path = "../tests/it/common/mod.rs"]
#[allow(dead_code)] // the example uses the fixture paths and the generation settings only
mod common;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(all_f32_identical) => std::process::exit(if all_f32_identical { 0 } else { 1 }),
        Err(e) => {
            eprintln!("gpu_check: {e:#}");
            std::process::exit(2);
        }
    }
}

/// Runs the command; `false` when a parity check found an f32 difference.
fn run(args: &[String]) -> anyhow::Result<bool> {
    let device = |name: &str| -> anyhow::Result<Device> {
        let choice: DeviceChoice = name.parse().map_err(anyhow::Error::msg)?;
        Ok(select_device(choice)?)
    };
    match args {
        [cmd, dev] if cmd == "parity" => parity(&device(dev)?),
        [cmd, dev, weights, rest @ ..] if cmd == "bench-translate" => {
            let workload = bench::TranslateWorkload::parse(rest)?;
            println!("{}", workload.run(&device(dev)?, weights, None)?);
            Ok(true)
        }
        [cmd, dev, model, prompt, tokens] if cmd == "bench-llm" => {
            println!("{}", bench::llm(model, prompt, tokens.parse()?, &device(dev)?)?);
            Ok(true)
        }
        _ => anyhow::bail!(
            "usage: gpu_check parity DEVICE | bench-translate DEVICE WEIGHTS MODEL_DIR INPUT LINES TOKENS BATCH BEAMS | bench-llm DEVICE MODEL.gguf PROMPT_FILE NEW_TOKENS"
        ),
    }
}

/// One recorded generation setting and the batches of inputs it runs on.
struct Case {
    params: common::Params,
    prefix: String,
    batches: Vec<Vec<String>>,
}

#[derive(Deserialize)]
struct Seq2SeqFixture {
    #[serde(default)]
    input_sets: HashMap<String, InputSet>,
    cases: Vec<FixtureCase>,
}

#[derive(Deserialize)]
struct InputSet {
    #[serde(default)]
    prefix: String,
    inputs: Vec<String>,
}

#[derive(Deserialize)]
struct FixtureCase {
    params: common::Params,
    /// seq2seq-ref layout: the inputs are named.
    #[serde(default)]
    input_set: Option<String>,
    /// The Marian fixture's layout: each case carries its inputs.
    #[serde(default)]
    inputs: Vec<String>,
}

/// The cases of `generate.json` in `reference_dir`, in either fixture layout.
fn cases(reference_dir: &Path) -> anyhow::Result<Vec<Case>> {
    let text = std::fs::read_to_string(reference_dir.join("generate.json"))?;
    let fixture: Seq2SeqFixture = serde_json::from_str(&text)?;
    let mut cases = Vec::new();
    for case in fixture.cases {
        let (prefix, inputs) = match &case.input_set {
            Some(name) => {
                let set = &fixture.input_sets[name];
                (set.prefix.clone(), set.inputs.clone())
            }
            None => (String::new(), case.inputs.clone()),
        };
        let batches = inputs
            .chunks(case.params.batch_size.max(1))
            .map(<[String]>::to_vec)
            .collect();
        cases.push(Case {
            params: case.params,
            prefix,
            batches,
        });
    }
    Ok(cases)
}

/// Every case's outputs, in order, from `model` on its device.
fn generate_all(model: &mut Seq2Seq, cases: &[Case]) -> anyhow::Result<Vec<Vec<u32>>> {
    let mut outputs = Vec::new();
    for case in cases {
        case.params.apply(&mut model.generation);
        model.tokenizer_mut().set_text_prefix(&case.prefix);
        for batch in &case.batches {
            let texts: Vec<&str> = batch.iter().map(String::as_str).collect();
            outputs.extend(model.generate_ids(&texts)?);
        }
    }
    Ok(outputs)
}

fn agreement(a: &[Vec<u32>], b: &[Vec<u32>]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x == y).count()
}

fn parity(device: &Device) -> anyhow::Result<bool> {
    let fixtures = common::fixtures();
    let on = tarjama::device::describe(device);
    let mut all_identical = true;
    let seq2seq = [
        ("marian-tiny", "marian-tiny-ref"),
        ("bart-tiny", "seq2seq-ref/bart-tiny"),
        ("nllb-tiny", "seq2seq-ref/nllb-tiny"),
        ("mbart-tiny", "seq2seq-ref/mbart-tiny"),
        ("t5-tiny", "seq2seq-ref/t5-tiny"),
        ("t5v11-tiny", "seq2seq-ref/t5v11-tiny"),
    ];
    for (name, reference) in seq2seq {
        let files = hub::resolve(
            fixtures.join(name).to_str().unwrap_or_default(),
            &HubOptions::default(),
        )?;
        let cases = cases(&fixtures.join(reference))?;
        let cpu = generate_all(
            &mut Seq2Seq::load(&files, &Device::Cpu, DType::F32)?,
            &cases,
        )?;
        let mut line = format!("{name:<12} {} outputs:", cpu.len());
        for dtype in [DType::F32, DType::BF16, DType::F16] {
            let outputs = Seq2Seq::load(&files, device, dtype)
                .map_err(anyhow::Error::from)
                .and_then(|mut model| generate_all(&mut model, &cases));
            match outputs {
                Ok(outputs) => {
                    let same = agreement(&cpu, &outputs);
                    line += &format!("  {on} {dtype:?} {same}/{} identical", cpu.len());
                    if dtype == DType::F32 && same != cpu.len() {
                        all_identical = false;
                        line += " (DIFFERS)";
                    }
                }
                Err(e) => {
                    line += &format!("  {on} {dtype:?} failed: {e}");
                    if dtype == DType::F32 {
                        all_identical = false;
                    }
                }
            }
        }
        println!("{line}");
    }
    all_identical &= gguf_parity(&fixtures.join("gguf-tiny"), device)?;
    println!(
        "parity on {on}: {}",
        if all_identical {
            "f32 identical to the CPU for every family"
        } else {
            "f32 DIFFERS from the CPU"
        }
    );
    Ok(all_identical)
}

#[derive(Deserialize)]
struct GgufReference {
    models: HashMap<String, GgufCases>,
}

#[derive(Deserialize)]
struct GgufCases {
    file: String,
    greedy: Greedy,
}

#[derive(Deserialize)]
struct Greedy {
    input_ids: Vec<u32>,
    max_new_tokens: usize,
}

/// Greedy generation of the tiny GGUF models (F32 tensors) on the CPU and on `device`.
fn gguf_parity(dir: &Path, device: &Device) -> anyhow::Result<bool> {
    let text = std::fs::read_to_string(dir.join("reference.json"))?;
    let reference: GgufReference = serde_json::from_str(&text)?;
    let mut names: Vec<&String> = reference.models.keys().collect();
    names.sort();
    let mut identical = true;
    for name in names {
        let cases = &reference.models[name];
        let greedy = |device: &Device| -> anyhow::Result<Vec<u32>> {
            let (content, mut file) = read_header(&dir.join(&cases.file))?;
            let mut model = ChatModel::load(&content, &mut file, device)?;
            let mut logits = model.forward(&cases.greedy.input_ids)?;
            let mut ids = Vec::new();
            for _ in 0..cases.greedy.max_new_tokens {
                let next = argmax(&logits);
                ids.push(next);
                logits = model.forward(&[next])?;
            }
            Ok(ids)
        };
        let cpu = greedy(&Device::Cpu)?;
        let line = match greedy(device) {
            Ok(ids) if ids == cpu => format!("identical ({} tokens)", ids.len()),
            Ok(ids) => {
                identical = false;
                format!("DIFFERS: cpu {cpu:?}, device {ids:?}")
            }
            Err(e) => {
                identical = false;
                format!("failed: {e}")
            }
        };
        println!(
            "gguf {name:<7} greedy on {}: {line}",
            tarjama::device::describe(device)
        );
    }
    Ok(identical)
}

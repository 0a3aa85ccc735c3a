//! A 100 MB input is translated in bounded memory: read, translated and written a chunk of lines
//! at a time. (In a process of its own, `common::alone_in_a_process`: the peak memory of child
//! processes is per process tree.)

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use crate::common::{self, ntrex as ntrex_line};

#[test]
fn a_100_mb_input_is_streamed_in_bounded_memory() {
    if !common::alone_in_a_process(
        module_path!(),
        "a_100_mb_input_is_streamed_in_bounded_memory",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("archive.ar.txt");
    let output = tmp.path().join("archive.en.txt");
    let (arabic, english) = (ntrex_line("ar.txt", 3), ntrex_line("en.txt", 3));
    // The expected output goes to a file too: the test process must stay small, since a child
    // starts as a copy of it and its peak memory is the child's starting point.
    let expected_path = tmp.path().join("expected.en.txt");
    {
        let mut expected = std::io::BufWriter::new(fs::File::create(&expected_path).unwrap());
        let mut file = std::io::BufWriter::new(fs::File::create(&input).unwrap());
        let mut i = 0u64;
        let mut written = 0usize;
        while written < 100 << 20 {
            // Mostly lines that pass through untouched (no Arabic), an Arabic one now and then.
            let (line, out) = if i.is_multiple_of(5000) {
                (arabic.clone(), english.clone())
            } else {
                let l = format!(
                    "{i:08} https://example.com/archive/2024/{i} | 2024-05-{:02} | Reuters",
                    i % 28 + 1
                );
                (l.clone(), l)
            };
            writeln!(file, "{line}").unwrap();
            writeln!(expected, "{out}").unwrap();
            written += line.len() + 1;
            i += 1;
        }
    }
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tarjama"))
        .env("HF_HOME", tmp.path())
        .args(["translate", "--quiet", "--beams", "1", "--model"])
        .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny"))
        .arg(&input)
        .arg("-o")
        .arg(&output)
        .status()
        .unwrap();
    assert!(status.success());
    // SAFETY: getrusage only writes the struct it is given.
    let peak_kb = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    };
    let peak_mb = peak_kb / 1024;
    eprintln!("peak RSS translating 100 MB: {peak_mb} MB");
    // Reading the whole input alone would take 100 MB, and the document and its translation as
    // much again; the model and the program take about 30 MB.
    assert!(
        peak_mb < 80,
        "peak RSS {peak_mb} MB: the input is not streamed"
    );
    assert!(same_contents(&output, &expected_path), "the output differs");
}

fn same_contents(a: &std::path::Path, b: &std::path::Path) -> bool {
    use std::io::Read;
    let (mut a, mut b) = (fs::File::open(a).unwrap(), fs::File::open(b).unwrap());
    let (mut x, mut y) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = a.read(&mut x).unwrap();
        let mut filled = 0;
        while filled < n {
            let m = b.read(&mut y[filled..n]).unwrap();
            if m == 0 {
                return false;
            }
            filled += m;
        }
        if x[..n] != y[..n] {
            return false;
        }
        if n == 0 {
            return b.read(&mut y).unwrap() == 0;
        }
    }
}

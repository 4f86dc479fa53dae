// wordcount-rust: the wordcount example in Rust (std, wasm32-wasi). Counts lines, words (runs
// of non-whitespace) and bytes, like `wc`, and prints {"lines":L,"words":W,"bytes":B}.
// With no arguments it reads stdin (a task with one dataset); with arguments it reads each
// /data/NAME named (a task with several datasets) and prints the totals (a word never spans
// two files). Exit status 1 if a file cannot be opened, 2 on a read error.
//
// Build: rustc --target wasm32-wasi -O -C strip=symbols -o wordcount-rust.wasm main.rs
use std::fs::File;
use std::io::{self, Read, Write};
use std::process::exit;

#[derive(Default)]
struct Counts {
    lines: u64,
    words: u64,
    bytes: u64,
}

impl Counts {
    fn count(&mut self, mut input: impl Read) -> io::Result<()> {
        let mut buf = vec![0u8; 65536];
        let mut in_word = false;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.bytes += n as u64;
            for &c in &buf[..n] {
                if c == b'\n' {
                    self.lines += 1;
                }
                if matches!(c, b' ' | b'\n' | b'\t' | b'\r' | 0x0b | 0x0c) {
                    in_word = false;
                } else if !in_word {
                    in_word = true;
                    self.words += 1;
                }
            }
        }
    }
}

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let mut counts = Counts::default();
    if names.is_empty() {
        if counts.count(io::stdin().lock()).is_err() {
            exit(2);
        }
    } else {
        for name in &names {
            let path = format!("/data/{}", name);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("wordcount-rust: cannot open {}: {}", path, e);
                    exit(1);
                }
            };
            if counts.count(file).is_err() {
                exit(2);
            }
        }
    }
    let out = format!(
        "{{\"lines\":{},\"words\":{},\"bytes\":{}}}\n",
        counts.lines, counts.words, counts.bytes
    );
    if io::stdout().write_all(out.as_bytes()).is_err() {
        exit(3);
    }
}

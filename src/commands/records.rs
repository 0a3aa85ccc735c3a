//! The inputs of a run read one at a time, in plan order: text files and standard input as
//! documents, JSON Lines inputs record by record (ids, shards, resume and oversized or broken
//! records decided here, before any model work).

use std::collections::HashSet;
use std::io::{BufRead, Read};
use std::path::PathBuf;

use super::batch::Plan;
use super::shard;
use crate::cli::{BatchArgs, InputFormat};
use crate::document::{ChunkReader, Source};
use crate::pipeline::record;
use crate::Error;

/// One article to process: a text file, standard input, or one JSON Lines record.
pub struct Record {
    /// The id in JSON output: the input's name, or the record's id field.
    pub id: serde_json::Value,
    /// The name in messages.
    pub name: String,
    pub reader: ChunkReader,
    /// Its result file, with [`PerInput`](super::batch::Destination::PerInput).
    pub output: Option<PathBuf>,
    /// A JSON Lines input record's fields other than its text, passed through to its JSON
    /// result.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// What the next input turned out to be.
pub enum Next {
    Record(Record),
    /// Its result exists already (it is kept; `--force` redoes it).
    Done(String),
    /// It cannot be read; the run goes on with the others.
    Failed(String, Error),
    /// A record of another shard, this many bytes long.
    OtherShard(usize),
}

/// The records of a plan in input order, opened one at a time.
pub struct Records<'a> {
    plan: &'a Plan,
    args: &'a BatchArgs,
    done_ids: &'a HashSet<String>,
    next_input: usize,
    /// The JSON Lines input being read: its name, reader and line number.
    lines: Option<(String, Source, usize)>,
}

/// The longest JSON Lines record read: one article is far less, and a longer line (a file that
/// is not JSON Lines, a dump with no line breaks) would have to be held whole in memory. It is
/// reported, skipped, and the records after it are read.
pub const MAX_RECORD_BYTES: usize = 16 << 20;

impl<'a> Records<'a> {
    /// `done_ids` are the ids (as JSON) already in the output stream being resumed.
    pub fn new(plan: &'a Plan, args: &'a BatchArgs, done_ids: &'a HashSet<String>) -> Self {
        Self {
            plan,
            args,
            done_ids,
            next_input: 0,
            lines: None,
        }
    }

    /// The reader of an article, refusing text that is not Arabic unless `--assume-arabic`.
    fn checked(&self, reader: ChunkReader) -> ChunkReader {
        if self.args.assume_arabic {
            reader
        } else {
            reader.expecting_arabic()
        }
    }

    /// Whether the next record can be read without waiting on a pipe's writer.
    pub fn ready(&mut self) -> bool {
        self.lines
            .as_mut()
            .is_none_or(|(_, reader, _)| reader.ready())
    }

    fn next_line(&mut self) -> Option<Next> {
        let (name, reader, line_no) = self.lines.as_mut()?;
        let mut bytes = Vec::new();
        let read = (&mut *reader)
            .take(MAX_RECORD_BYTES as u64 + 1)
            .read_until(b'\n', &mut bytes);
        let too_long = bytes.len() > MAX_RECORD_BYTES;
        let read = read.and_then(|n| {
            if too_long {
                skip_line(reader)?;
            }
            Ok(n)
        });
        match read {
            Ok(0) => {
                self.lines = None;
                return None;
            }
            Ok(_) => *line_no += 1,
            Err(e) => {
                let failed = Next::Failed(
                    format!("{name}:{}", *line_no + 1),
                    Error::input(format!("cannot read {name}: {e}")),
                );
                self.lines = None;
                return Some(failed);
            }
        }
        let where_ = format!("{name}:{line_no}");
        if too_long {
            return Some(Next::Failed(
                where_.clone(),
                Error::input(format!(
                    "{where_} is a record of more than {} MiB, not an article: split its text into records of their own",
                    MAX_RECORD_BYTES >> 20
                )),
            ));
        }
        let line = match String::from_utf8(bytes) {
            Ok(line) => line,
            Err(e) => {
                return Some(Next::Failed(
                    where_.clone(),
                    Error::input(format!(
                        "{where_} is not UTF-8 (byte 0x{:02X} at column {}); convert the file with iconv",
                        e.as_bytes()[e.utf8_error().valid_up_to()],
                        e.utf8_error().valid_up_to() + 1
                    )),
                ))
            }
        };
        if line.trim().is_empty() {
            return self.next_line();
        }
        let mut value: serde_json::Map<String, serde_json::Value> =
            match serde_json::from_str(&line) {
                Ok(v) => v,
                Err(e) => {
                    return Some(Next::Failed(
                        where_.clone(),
                        Error::input(format!("{where_} is not a JSON object: {e}")),
                    ))
                }
            };
        let id = value
            .get(&self.args.id_field)
            .cloned()
            .unwrap_or_else(|| serde_json::Value::String(where_.clone()));
        if let Some(shard) = &self.plan.shard {
            if !shard.keeps(&shard::record_key(&id)) {
                return Some(Next::OtherShard(line.len()));
            }
        }
        if self.done_ids.contains(&id.to_string()) {
            return Some(Next::Done(where_));
        }
        let text = match value.remove(&self.args.text_field) {
            Some(serde_json::Value::String(s)) => s,
            Some(_) => {
                return Some(Next::Failed(
                    where_.clone(),
                    Error::input(format!(
                        "{where_}: field {:?} is not a string",
                        self.args.text_field
                    )),
                ))
            }
            None => {
                return Some(Next::Failed(
                    where_.clone(),
                    Error::input(format!(
                        "{where_} has no field {:?}: name the text's field with --text-field",
                        self.args.text_field
                    )),
                ))
            }
        };
        if let Err(why) = record::check_input_fields(&value, &self.args.id_field) {
            return Some(Next::Failed(
                where_.clone(),
                Error::input(format!("{where_}: {why}")),
            ));
        }
        Some(Next::Record(Record {
            id,
            reader: self.checked(ChunkReader::from_text(text, where_.clone())),
            name: where_,
            output: None,
            fields: value,
        }))
    }
}

impl Iterator for Records<'_> {
    type Item = Next;

    fn next(&mut self) -> Option<Next> {
        loop {
            if let Some(next) = self.next_line() {
                return Some(next);
            }
            let input = self.plan.inputs.get(self.next_input)?;
            self.next_input += 1;
            if let Some(output) = &input.output {
                if output.exists() && !self.args.force {
                    return Some(Next::Done(input.id.clone()));
                }
            }
            if self.plan.input_format == InputFormat::Jsonl {
                let reader = match ChunkReader::open_lines(input.path.as_deref()) {
                    Ok(r) => r,
                    Err(e) => return Some(Next::Failed(input.id.clone(), e)),
                };
                self.lines = Some((input.id.clone(), reader, 0));
                continue;
            }
            let id = serde_json::Value::String(input.id.clone());
            if self.done_ids.contains(&id.to_string()) {
                return Some(Next::Done(input.id.clone()));
            }
            return Some(match ChunkReader::open(input.path.as_deref()) {
                Ok(reader) => Next::Record(Record {
                    id,
                    name: input.id.clone(),
                    reader: self.checked(reader),
                    output: input.output.clone(),
                    fields: serde_json::Map::new(),
                }),
                Err(e) => Next::Failed(input.id.clone(), e),
            });
        }
    }
}

/// Reads past the rest of a line, keeping none of it.
fn skip_line(reader: &mut Source) -> std::io::Result<()> {
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(());
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                return Ok(());
            }
            None => {
                let n = available.len();
                reader.consume(n);
            }
        }
    }
}

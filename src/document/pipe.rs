//! Input from a pipe, a terminal or a FIFO: text arrives when its writer sends it, and a reader
//! that waited for a full chunk (or the end of the input) before translating would hold back
//! each record of a co-process conversation (Spark's `RDD.pipe`, a Python `subprocess`) until the
//! writer gave up. A thread reads whatever the pipe holds into a bounded queue, so the reader can
//! ask whether more text is there *now*, and translate what it has when it is not.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::time::Duration;

/// How long a reader waits for more input before translating what it has: long enough that a
/// writer sending records one `write` at a time gets them batched together, short against the
/// time a batch takes.
pub const PIPE_LATENCY: Duration = Duration::from_millis(3);

/// Blocks read from a pipe at once: what one `read` returns.
const BLOCK_BYTES: usize = 64 * 1024;

/// Blocks queued ahead of the reader (up to 1 MiB with full blocks), so memory stays bounded
/// when the writer is faster than translation.
const QUEUED_BLOCKS: usize = 16;

/// Where input text comes from: a regular file or text in memory, which never make a reader
/// wait, or a [`Pipe`].
pub enum Source {
    Ready(Box<dyn BufRead + Send>),
    Pipe(Pipe),
}

impl Source {
    /// A file opened for reading: a pipe when it is not a regular file (a FIFO, a terminal).
    pub fn file(file: File) -> Source {
        if file.metadata().is_ok_and(|m| m.is_file()) {
            Source::Ready(Box::new(BufReader::with_capacity(1 << 16, file)))
        } else {
            Source::Pipe(Pipe::spawn(file))
        }
    }

    /// Standard input: a pipe unless it is redirected from a regular file.
    pub fn stdin() -> Source {
        #[cfg(unix)]
        {
            use std::os::fd::AsFd;
            if let Ok(fd) = std::io::stdin().as_fd().try_clone_to_owned() {
                return Source::file(File::from(fd));
            }
        }
        Source::Pipe(Pipe::spawn(std::io::stdin()))
    }

    /// Whether reading now would not wait on the writer: more text is buffered or arrives
    /// within [`PIPE_LATENCY`], or the input is over. Always true for a file.
    pub fn ready(&mut self) -> bool {
        match self {
            Source::Ready(_) => true,
            Source::Pipe(pipe) => pipe.ready(),
        }
    }
}

impl Read for Source {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Source {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        match self {
            Source::Ready(reader) => reader.fill_buf(),
            Source::Pipe(pipe) => pipe.fill_buf(),
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Source::Ready(reader) => reader.consume(n),
            Source::Pipe(pipe) => pipe.consume(n),
        }
    }
}

/// A pipe read by a thread of its own, a block at a time.
pub struct Pipe {
    blocks: Receiver<std::io::Result<Vec<u8>>>,
    block: Vec<u8>,
    at: usize,
    /// A read error that came while only looking ahead, returned by the next read.
    error: Option<std::io::Error>,
    /// The writer closed the pipe.
    over: bool,
}

impl Pipe {
    fn spawn(mut reader: impl Read + Send + 'static) -> Pipe {
        let (sender, blocks) = mpsc::sync_channel(QUEUED_BLOCKS);
        // The thread ends with the input, or when the reader is dropped (its next send fails);
        // one still waiting on a silent writer ends with the process.
        let _ = std::thread::Builder::new()
            .name("tarjama-input".to_string())
            .spawn(move || {
                let mut buffer = vec![0; BLOCK_BYTES];
                loop {
                    let block = match reader.read(&mut buffer) {
                        Ok(0) => return,
                        Ok(n) => Ok(buffer[..n].to_vec()),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let failed = block.is_err();
                    if sender.send(block).is_err() || failed {
                        return;
                    }
                }
            });
        Pipe {
            blocks,
            block: Vec::new(),
            at: 0,
            error: None,
            over: false,
        }
    }

    fn take(&mut self, block: std::io::Result<Vec<u8>>) {
        match block {
            Ok(block) => {
                self.block = block;
                self.at = 0;
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn ready(&mut self) -> bool {
        if self.at < self.block.len() || self.over || self.error.is_some() {
            return true;
        }
        let next = match self.blocks.try_recv() {
            Err(TryRecvError::Empty) => match self.blocks.recv_timeout(PIPE_LATENCY) {
                Err(RecvTimeoutError::Timeout) => return false,
                Err(RecvTimeoutError::Disconnected) => None,
                Ok(block) => Some(block),
            },
            Err(TryRecvError::Disconnected) => None,
            Ok(block) => Some(block),
        };
        match next {
            Some(block) => self.take(block),
            None => self.over = true,
        }
        true
    }

    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.at == self.block.len() && !self.over {
            match self.blocks.recv() {
                Ok(block) => self.take(block),
                Err(_) => self.over = true,
            }
            if let Some(e) = self.error.take() {
                return Err(e);
            }
        }
        Ok(&self.block[self.at..])
    }

    fn consume(&mut self, n: usize) {
        self.at = (self.at + n).min(self.block.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_pipe_is_ready_only_while_it_holds_text_or_is_over() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        let mut source = Source::Pipe(Pipe::spawn(reader));
        assert!(!source.ready(), "nothing written yet");
        writer.write_all(b"one\ntwo\n").unwrap();
        let mut line = String::new();
        source.read_line(&mut line).unwrap();
        assert_eq!(line, "one\n");
        assert!(source.ready());
        line.clear();
        source.read_line(&mut line).unwrap();
        assert_eq!(line, "two\n");
        assert!(!source.ready(), "waiting for the writer");
        drop(writer);
        // The thread sees the end of the input a moment later.
        let started = std::time::Instant::now();
        while !source.ready() {
            assert!(started.elapsed() < Duration::from_secs(5));
        }
        line.clear();
        assert_eq!(source.read_line(&mut line).unwrap(), 0);
    }

    #[test]
    fn a_regular_file_is_never_a_pipe() {
        let file = tempfile::tempfile().unwrap();
        assert!(matches!(Source::file(file), Source::Ready(_)));
    }
}

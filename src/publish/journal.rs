//! The outbox on disk: while the broker is unreachable, every reliable message the
//! daemon produces is also appended to `<state_dir>/outbox.jsonl` (one JSON message a
//! line, after a snapshot of what was unacknowledged when the link dropped), so that
//! a daemon restarted during an outage still delivers them, in order, first thing
//! after it connects. The file is emptied once the broker has acknowledged
//! everything. A crash can replay messages already delivered: events carry a stable
//! `id` (at least once).

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Message;
use crate::metrics::PublisherMetrics;

pub struct Journal {
    path: PathBuf,
    /// Lines in the file (0: empty).
    lines: usize,
    /// Open for appending (dropped when the file is rewritten).
    appender: Option<File>,
    /// Counts the lines written.
    metrics: Arc<PublisherMetrics>,
}

impl Journal {
    /// Opens the journal in `dir`, returning what an earlier run left undelivered;
    /// the error names the file. Lines written are counted in `metrics`.
    pub fn open(
        dir: &Path,
        metrics: Arc<PublisherMetrics>,
    ) -> Result<(Self, Vec<Message>), String> {
        let path = dir.join("outbox.jsonl");
        let err = |e: std::io::Error| format!("mqtt outbox journal {}: {e}", path.display());
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut pending = Vec::new();
        match File::open(&path) {
            Ok(f) => {
                for (i, line) in BufReader::new(f).lines().enumerate() {
                    let line = line.map_err(err)?;
                    match serde_json::from_str::<Message>(&line) {
                        Ok(m) => pending.push(m),
                        // A line cut short by a crash: what came before still counts.
                        Err(e) => tracing::warn!(
                            "mqtt outbox journal {}: line {} unreadable ({e}); skipped",
                            path.display(),
                            i + 1
                        ),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        if !pending.is_empty() {
            tracing::info!(
                "mqtt: {} undelivered message(s) from an earlier run in {}",
                pending.len(),
                path.display()
            );
        }
        let lines = pending.len();
        let journal = Self {
            path,
            lines,
            appender: None,
            metrics,
        };
        Ok((journal, pending))
    }

    /// Replaces the file's contents with `messages`.
    pub fn rewrite<'a>(&mut self, messages: impl Iterator<Item = &'a Message>) {
        self.appender = None;
        let tmp = self.path.with_extension("jsonl.tmp");
        let result = (|| -> std::io::Result<usize> {
            let mut w = BufWriter::new(File::create(&tmp)?);
            let mut n = 0;
            for m in messages {
                serde_json::to_writer(&mut w, m)?;
                w.write_all(b"\n")?;
                n += 1;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
            std::fs::rename(&tmp, &self.path)?;
            Ok(n)
        })();
        match result {
            Ok(n) => {
                self.lines = n;
                self.metrics.on_journal_lines(n);
            }
            Err(e) => tracing::error!("mqtt outbox journal {}: {e}", self.path.display()),
        }
    }

    /// Adds one message at the end.
    pub fn append(&mut self, m: &Message) {
        let result = (|| -> std::io::Result<()> {
            let f = match &mut self.appender {
                Some(f) => f,
                None => self.appender.insert(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)?,
                ),
            };
            let mut line = serde_json::to_vec(m)?;
            line.push(b'\n');
            f.write_all(&line)
        })();
        match result {
            Ok(()) => {
                self.lines += 1;
                self.metrics.on_journal_lines(1);
            }
            Err(e) => tracing::error!("mqtt outbox journal {}: {e}", self.path.display()),
        }
    }

    /// Everything was acknowledged: empties the file.
    pub fn clear(&mut self) {
        if self.lines == 0 {
            return;
        }
        self.rewrite(std::iter::empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &[u8]) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.to_vec(),
            retain: false,
            reliable: true,
        }
    }

    #[test]
    fn what_is_written_comes_back_in_order_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(PublisherMetrics::default());
        let (mut j, old) = Journal::open(dir.path(), metrics.clone()).unwrap();
        assert!(old.is_empty());
        let (a, b, c) = (msg("a", b"1"), msg("b", &[0, 255]), msg("c", b"3"));
        j.rewrite([&a, &b].into_iter());
        j.append(&c);
        assert_eq!(metrics.journal_lines(), 3);
        let (mut j, old) = Journal::open(dir.path(), Default::default()).unwrap();
        assert_eq!(old, vec![a, b, c]);
        j.clear();
        let (_, old) = Journal::open(dir.path(), Default::default()).unwrap();
        assert!(old.is_empty());
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = Journal::open(dir.path(), Default::default()).unwrap();
        j.append(&msg("a", b"1"));
        let path = dir.path().join("outbox.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"topic\":\"b\",\"pay").unwrap();
        let (_, old) = Journal::open(dir.path(), Default::default()).unwrap();
        assert_eq!(old, vec![msg("a", b"1")]);
    }
}

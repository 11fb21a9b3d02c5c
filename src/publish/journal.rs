//! The outbox on disk: while the broker is unreachable, every reliable message the
//! daemon produces is also appended to `<state_dir>/outbox.jsonl` (one JSON message a
//! line), so that a daemon restarted during an outage still delivers them, in order,
//! first thing after it connects. At a disconnect only what the file does not hold
//! yet is appended (never the whole outbox again); the file is emptied once the
//! broker has acknowledged everything. A crash can replay messages already
//! delivered: events carry a stable `id` (at least once).
//!
//! A line holds the payload compactly: as a JSON string when it is UTF-8 (`text`),
//! else base64 (`b64`, 4/3 of a JPEG's bytes); lines of earlier versions (`payload`
//! as an array of numbers) are still read.
//!
//! Bounded: the file never grows past `mqtt.journal_max_bytes` ([`DEFAULT_MAX_BYTES`]).
//! An append that would take it past the cap rewrites it from the outbox instead —
//! where retained states have coalesced (only the newest payload per topic) — and
//! when that is still over [`COMPACT_TO`] of the cap, the oldest messages are left
//! out of the file (drop-oldest, as the outbox's `OVERFLOW_POLICY`; they stay in
//! memory and go out if the daemon is not restarted first), logged once per
//! overflow and counted in `ocellus_mqtt_journal_dropped_total`. So every byte
//! appended is rewritten at most a few times: no disconnect pattern makes it churn.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::{Message, Outbox};
use crate::kit::RateLimit;
use crate::kit::metrics::PublisherMetrics;

/// Default `mqtt.journal_max_bytes`: 64 MiB holds hours of events and states and a
/// few hundred snapshots (which coalesce per camera anyway), and stays small next to
/// the free space of an edge box's state folder.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// A rewrite for room keeps at most this fraction of the cap, so that the next one
/// is at least half the cap of appends away: over the cap, every byte appended
/// costs at most one byte rewritten (2x in all), whatever the disconnect pattern.
pub(super) const COMPACT_TO: f64 = 0.5;

/// One line of the file.
#[derive(serde::Serialize, serde::Deserialize)]
struct Line {
    topic: String,
    retain: bool,
    reliable: bool,
    /// The payload when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// Else the payload in base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b64: Option<String>,
    /// Earlier versions: the payload as an array of numbers (read only).
    #[serde(default, skip_serializing)]
    payload: Option<Vec<u8>>,
}

/// `m` as one line, newline included.
fn encode(m: &Message) -> std::io::Result<Vec<u8>> {
    let (text, b64) = match std::str::from_utf8(&m.payload) {
        Ok(t) => (Some(t.to_string()), None),
        Err(_) => (None, Some(BASE64.encode(&m.payload))),
    };
    let line = Line {
        topic: m.topic.clone(),
        retain: m.retain,
        reliable: m.reliable,
        text,
        b64,
        payload: None,
    };
    let mut out = serde_json::to_vec(&line)?;
    out.push(b'\n');
    Ok(out)
}

fn decode(line: &str) -> Result<Message, String> {
    let l: Line = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let payload = match (l.text, l.b64, l.payload) {
        (Some(t), _, _) => t.into_bytes(),
        (None, Some(b), _) => BASE64.decode(b).map_err(|e| format!("b64: {e}"))?,
        (None, None, Some(p)) => p,
        (None, None, None) => return Err("no payload".into()),
    };
    Ok(Message {
        topic: l.topic,
        payload,
        retain: l.retain,
        reliable: l.reliable,
    })
}

pub(super) struct Journal {
    path: PathBuf,
    /// Bytes in the file.
    bytes: u64,
    max_bytes: u64,
    /// Open for appending (dropped when the file is rewritten).
    appender: Option<File>,
    /// Messages left out since the journal last had room (`None`: it has).
    overflow: Option<u64>,
    /// Rate limit of the I/O error lines.
    errors: RateLimit,
    /// Counts the lines written, the bytes held and the messages left out.
    metrics: Arc<PublisherMetrics>,
}

impl Journal {
    /// Opens the journal in `dir`, capped at `max_bytes`, returning what an earlier
    /// run left undelivered (retained states coalesced, the oldest left out beyond
    /// the cap); the error names the file.
    pub(super) fn open(
        dir: &Path,
        max_bytes: u64,
        metrics: Arc<PublisherMetrics>,
    ) -> Result<(Self, Vec<Message>), String> {
        let path = dir.join("outbox.jsonl");
        let err = |e: std::io::Error| format!("mqtt outbox journal {}: {e}", path.display());
        std::fs::create_dir_all(dir).map_err(err)?;
        let mut pending: Vec<(Message, u64)> = Vec::new();
        let mut retained: HashMap<String, usize> = HashMap::new();
        let mut on_file = 0u64;
        let mut stale = false;
        let unreadable = RateLimit::new();
        match File::open(&path) {
            Ok(f) => {
                for (i, line) in BufReader::new(f).lines().enumerate() {
                    let line = line.map_err(err)?;
                    on_file += line.len() as u64 + 1;
                    let m = match decode(&line) {
                        Ok(m) => m,
                        // A line cut short by a crash: what came before still counts.
                        Err(e) => {
                            if let Some(s) = unreadable.allow() {
                                tracing::warn!(
                                    suppressed = s.count(),
                                    "mqtt outbox journal {}: line {} unreadable ({e}); skipped{s}",
                                    path.display(),
                                    i + 1
                                );
                            }
                            stale = true;
                            continue;
                        }
                    };
                    let size = encode(&m).map_err(err)?.len() as u64;
                    stale |= size != line.len() as u64 + 1;
                    // A retained state: the newest payload, in the place of the first.
                    if m.retain
                        && let Some(&at) = retained.get(&m.topic)
                    {
                        pending[at] = (m, size);
                        stale = true;
                        continue;
                    }
                    if m.retain {
                        retained.insert(m.topic.clone(), pending.len());
                    }
                    pending.push((m, size));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        if let Some(s) = unreadable.flush() {
            tracing::warn!(
                suppressed = s.count(),
                "mqtt outbox journal {}: {} more unreadable line(s) skipped",
                path.display(),
                s.count().unwrap_or_default()
            );
        }
        let mut journal = Self {
            path,
            bytes: on_file,
            max_bytes,
            appender: None,
            overflow: None,
            errors: RateLimit::new(),
            metrics,
        };
        let total: u64 = pending.iter().map(|(_, n)| n).sum();
        let skip = journal.oldest_beyond(pending.iter().map(|(_, n)| *n), total, max_bytes);
        let pending: Vec<Message> = pending.into_iter().skip(skip).map(|(m, _)| m).collect();
        if !pending.is_empty() {
            tracing::info!(
                "mqtt: {} undelivered message(s) from an earlier run in {}",
                pending.len(),
                journal.path.display()
            );
        }
        // Coalesced, capped or in the old format: the file is brought in line now.
        if stale || skip > 0 {
            journal.write_all(pending.iter());
        }
        journal.metrics.set_journal_bytes(journal.bytes);
        Ok((journal, pending))
    }

    /// Bytes in the file now.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// During an outage: appends what the outbox holds that the file does not. When
    /// that would take the file past its cap, rewrites it from the outbox (at most
    /// [`COMPACT_TO`] of the cap, oldest left out).
    pub(super) fn sync(&mut self, outbox: &mut Outbox) {
        let mut lines = Vec::new();
        for m in outbox.unjournaled() {
            match encode(m) {
                Ok(l) => lines.push(l),
                Err(e) => self.error(&e),
            }
        }
        if lines.is_empty() {
            return;
        }
        let adding: u64 = lines.iter().map(|l| l.len() as u64).sum();
        if self.bytes + adding > self.max_bytes {
            let keep = (self.max_bytes as f64 * COMPACT_TO) as u64;
            self.rewrite(outbox, keep);
            return;
        }
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
            let mut w = BufWriter::new(f);
            for l in &lines {
                w.write_all(l)?;
            }
            w.flush()
        })();
        outbox.mark_journaled();
        match result {
            Ok(()) => {
                self.bytes += adding;
                self.metrics.on_journal_lines(lines.len());
                self.metrics.set_journal_bytes(self.bytes);
            }
            Err(e) => {
                // What did get written still counts towards the cap.
                self.bytes = std::fs::metadata(&self.path).map_or(self.bytes, |m| m.len());
                self.error(&e);
            }
        }
    }

    /// Replaces the file's contents with what the outbox holds (durable messages,
    /// retained states coalesced), at most `max` bytes: the oldest beyond are left
    /// out (counted).
    pub(super) fn rewrite(&mut self, outbox: &mut Outbox, max: u64) {
        let mut lines = Vec::new();
        for m in outbox.durable() {
            match encode(m) {
                Ok(l) => lines.push(l),
                Err(e) => self.error(&e),
            }
        }
        outbox.mark_journaled();
        let total: u64 = lines.iter().map(|l| l.len() as u64).sum();
        let skip = self.oldest_beyond(lines.iter().map(|l| l.len() as u64), total, max);
        self.write_lines(lines.iter().skip(skip));
    }

    /// The whole cap (for the rewrite at shutdown).
    pub(super) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Everything was acknowledged: empties the file.
    pub(super) fn clear(&mut self) {
        self.overflow = None;
        if self.bytes == 0 {
            return;
        }
        self.write_lines(std::iter::empty());
    }

    /// How many of the oldest messages (of these line sizes, `total` in all) to leave
    /// out so the rest fit in `max` bytes; counts and logs them.
    fn oldest_beyond(&mut self, sizes: impl Iterator<Item = u64>, total: u64, max: u64) -> usize {
        let mut over = total.saturating_sub(max);
        let mut skip = 0;
        for n in sizes {
            if over == 0 {
                break;
            }
            over = over.saturating_sub(n);
            skip += 1;
        }
        if skip > 0 {
            self.metrics.on_journal_dropped(skip as u64);
            let dropped = self.overflow.get_or_insert(0);
            if *dropped == 0 {
                tracing::warn!(
                    "mqtt outbox journal {} full ({} bytes, mqtt.journal_max_bytes), overflow \
                     policy drop-oldest: left out the {skip} oldest message(s), kept in memory \
                     only (further ones are counted)",
                    self.path.display(),
                    self.max_bytes
                );
            }
            *dropped += skip as u64;
        }
        skip
    }

    fn write_all<'a>(&mut self, messages: impl Iterator<Item = &'a Message>) {
        let lines: Vec<Vec<u8>> = messages.filter_map(|m| encode(m).ok()).collect();
        self.write_lines(lines.iter());
    }

    /// Replaces the file by `lines` (written aside, then renamed over it).
    fn write_lines<'a>(&mut self, lines: impl Iterator<Item = &'a Vec<u8>>) {
        self.appender = None;
        let tmp = self.path.with_extension("jsonl.tmp");
        let result = (|| -> std::io::Result<(usize, u64)> {
            let mut w = BufWriter::new(File::create(&tmp)?);
            let (mut n, mut bytes) = (0, 0);
            for l in lines {
                w.write_all(l)?;
                n += 1;
                bytes += l.len() as u64;
            }
            w.into_inner().map_err(|e| e.into_error())?.sync_data()?;
            std::fs::rename(&tmp, &self.path)?;
            Ok((n, bytes))
        })();
        match result {
            Ok((n, bytes)) => {
                self.bytes = bytes;
                self.metrics.on_journal_lines(n);
                self.metrics.set_journal_bytes(bytes);
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                self.error(&e);
            }
        }
    }

    fn error(&mut self, e: &dyn std::fmt::Display) {
        if let Some(s) = self.errors.allow() {
            tracing::error!(
                suppressed = s.count(),
                "mqtt outbox journal {}: {e}{s}",
                self.path.display(),
            );
        }
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

    fn retained(topic: &str, payload: &[u8]) -> Message {
        Message {
            retain: true,
            ..msg(topic, payload)
        }
    }

    fn outbox(messages: &[Message]) -> Outbox {
        let mut o = Outbox::new(1000, 10, Default::default());
        for m in messages {
            o.push(m.clone());
        }
        o
    }

    fn open(dir: &Path, max: u64) -> (Journal, Vec<Message>) {
        Journal::open(dir, max, Default::default()).unwrap()
    }

    #[test]
    fn what_is_written_comes_back_in_order_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(PublisherMetrics::default());
        let (mut j, old) = Journal::open(dir.path(), DEFAULT_MAX_BYTES, metrics.clone()).unwrap();
        assert!(old.is_empty());
        let (a, b, c) = (msg("a", b"1"), msg("b", &[0, 255]), msg("c", b"3"));
        let mut o = outbox(&[a.clone(), b.clone()]);
        j.sync(&mut o);
        // Only what the file does not hold yet is appended.
        o.push(c.clone());
        j.sync(&mut o);
        j.sync(&mut o);
        assert_eq!(metrics.journal_lines(), 3);
        assert_eq!(metrics.journal_bytes(), j.bytes());
        let (mut j, old) = open(dir.path(), DEFAULT_MAX_BYTES);
        assert_eq!(old, vec![a, b, c]);
        j.clear();
        let (_, old) = open(dir.path(), DEFAULT_MAX_BYTES);
        assert!(old.is_empty());
    }

    #[test]
    fn payloads_are_stored_as_text_or_base64_not_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = open(dir.path(), DEFAULT_MAX_BYTES);
        let jpeg: Vec<u8> = (0..30_000u32).map(|i| (i * 7 % 251) as u8 | 0x80).collect();
        let mut o = outbox(&[
            msg("ocellus/cam/events", br#"{"id":"cam/q/1"}"#),
            retained("ocellus/cam/snapshot", &jpeg),
        ]);
        j.sync(&mut o);
        let text = std::fs::read_to_string(dir.path().join("outbox.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["text"], r#"{"id":"cam/q/1"}"#);
        assert!(lines[1]["b64"].is_string());
        // Base64: 4/3 of the JPEG (and a short header), not ~3.5x as numbers.
        let size = text.lines().nth(1).unwrap().len();
        assert!(size < jpeg.len() * 4 / 3 + 100, "{size}");
        let (_, old) = open(dir.path(), DEFAULT_MAX_BYTES);
        assert_eq!(old[1].payload, jpeg);
    }

    #[test]
    fn the_old_format_is_still_read_and_rewritten_compactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        std::fs::write(
            &path,
            "{\"topic\":\"a\",\"payload\":[49],\"retain\":false,\"reliable\":true}\n\
             {\"topic\":\"b\",\"payload\":[0,255],\"retain\":false,\"reliable\":true}\n",
        )
        .unwrap();
        let (_, old) = open(dir.path(), DEFAULT_MAX_BYTES);
        assert_eq!(old, vec![msg("a", b"1"), msg("b", &[0, 255])]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("payload"), "{text}");
        let (_, again) = open(dir.path(), DEFAULT_MAX_BYTES);
        assert_eq!(again, old);
    }

    #[test]
    fn retained_topics_coalesce_on_load_newest_payload_first_place() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = open(dir.path(), DEFAULT_MAX_BYTES);
        let mut o = outbox(&[retained("s", b"OFF"), msg("e", b"1")]);
        j.sync(&mut o);
        // A newer state: the outbox coalesces it, the file appends it.
        o.push(retained("s", b"ON"));
        j.sync(&mut o);
        let (_, old) = open(dir.path(), DEFAULT_MAX_BYTES);
        assert_eq!(old, vec![retained("s", b"ON"), msg("e", b"1")]);
    }

    #[test]
    fn the_file_stays_under_its_cap_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Arc::new(PublisherMetrics::default());
        let cap = 10_000;
        let (mut j, _) = Journal::open(dir.path(), cap, metrics.clone()).unwrap();
        let mut o = Outbox::new(100_000, 10, Default::default());
        let payload = [b'x'; 200];
        for i in 0..500 {
            o.push(msg(&format!("e/{i:03}"), &payload));
            // The retained snapshot coalesces: it never takes more than its one place.
            o.push(retained("snap", &[i as u8 | 0x80; 300]));
            j.sync(&mut o);
            let on_disk = std::fs::metadata(dir.path().join("outbox.jsonl"))
                .unwrap()
                .len();
            assert!(on_disk <= cap, "{i}: {on_disk}");
            assert_eq!(on_disk, j.bytes());
        }
        assert!(metrics.journal_dropped() > 0);
        // Appends and the odd rewrite (at most as much again), not a rewrite each time.
        let lines = metrics.journal_lines();
        assert!(lines <= 2 * 1000 + 100, "{lines}");
        let (_, old) = open(dir.path(), cap);
        let last = old.iter().rev().find(|m| !m.retain).unwrap();
        assert_eq!(last.topic, "e/499");
        let topics: Vec<&str> = old.iter().map(|m| m.topic.as_str()).collect();
        let mut sorted = topics.clone();
        sorted.retain(|t| *t != "snap");
        assert!(sorted.is_sorted(), "{topics:?}");
    }

    #[test]
    fn an_oversized_old_journal_is_cut_to_its_cap_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = open(dir.path(), DEFAULT_MAX_BYTES);
        let mut o = outbox(
            &(0..100)
                .map(|i| msg(&format!("e/{i:03}"), &[b'y'; 100]))
                .collect::<Vec<_>>(),
        );
        j.sync(&mut o);
        let metrics = Arc::new(PublisherMetrics::default());
        let (j, old) = Journal::open(dir.path(), 2_000, metrics.clone()).unwrap();
        assert!(j.bytes() <= 2_000);
        assert_eq!(old.last().unwrap().topic, "e/099");
        assert_eq!(metrics.journal_dropped() as usize, 100 - old.len());
    }

    #[test]
    fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut j, _) = open(dir.path(), DEFAULT_MAX_BYTES);
        j.sync(&mut outbox(&[msg("a", b"1")]));
        let path = dir.path().join("outbox.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"topic\":\"b\",\"pay").unwrap();
        let (_, old) = open(dir.path(), DEFAULT_MAX_BYTES);
        assert_eq!(old, vec![msg("a", b"1")]);
    }
}

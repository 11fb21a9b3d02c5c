//! The daemon's outbox journal (`<state_dir>/outbox.jsonl`) read back.

use std::fs;
use std::path::Path;

/// The messages on `topic` in an outbox journal (`<state_dir>/outbox.jsonl`), in
/// order, each payload parsed as JSON (a UTF-8 payload is journaled as `text`).
pub fn journaled(journal: &Path, topic: &str) -> Vec<serde_json::Value> {
    fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["topic"] == topic)
        .map(|m| {
            let text = m["text"]
                .as_str()
                .unwrap_or_else(|| panic!("journaled message is not text: {m}"));
            serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("journaled payload is not JSON ({e}): {text}"))
        })
        .collect()
}

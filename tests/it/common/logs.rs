//! Reading the daemon's log (tracing lines: `TIME LEVEL message`): colour codes,
//! levels, and what must never be in it.

/// Removes ANSI escape sequences (colour codes) from log text.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The level of a log line without colour codes (`ERROR`, `WARN`, `INFO`, ...):
/// its second word.
pub fn log_level(line: &str) -> Option<&str> {
    line.split_whitespace().nth(1)
}

/// The lines of `log` (colour codes removed) at `level`.
pub fn log_lines<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| log_level(l) == Some(level))
        .collect()
}

/// No panic message in `text`; `what` names the text in the failure message.
pub fn assert_no_panic(what: &str, text: &str) {
    assert!(!text.contains("panicked"), "a panic in {what}:\n{text}");
}

/// No GLib/GStreamer CRITICAL (a programming error) in `log`; `what` names the
/// log in the failure message.
pub fn assert_no_critical(what: &str, log: &str) {
    let criticals: Vec<&str> = log.lines().filter(|l| l.contains("-CRITICAL **")).collect();
    assert!(
        criticals.is_empty(),
        "{} GLib CRITICAL line(s) in {what}, the first: {:?}",
        criticals.len(),
        criticals[0]
    );
}

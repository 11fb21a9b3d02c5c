//! Redaction of camera URLs and of messages that quote them: a password, the value of
//! a query parameter that may be a secret, a secret-looking `key=value` of the path and
//! a fragment become `***`, so a URL can go into logs, errors and HTTP replies.

/// Query parameters whose values a redacted URL still shows (they say which stream,
/// not who may see it); every other parameter's value is hidden, as there is no
/// telling what a camera maker put in it (`pwd`, `token`, `auth`, `sig`, ...).
const SHOWN_PARAMS: &[&str] = &[
    "channel",
    "chn",
    "ch",
    "subtype",
    "stream",
    "streamtype",
    "profile",
    "resolution",
    "res",
    "fps",
    "framerate",
    "width",
    "height",
    "codec",
    "videocodec",
    "transport",
    "tcp",
    "udp",
    "unicast",
    "multicast",
    "proto",
    "protocol",
    "track",
    "trackid",
    "camera",
    "cam",
    "source",
    "quality",
    "format",
    "mode",
    "audio",
    "video",
];

/// Words that make a `key=value` in a URL's path secret (some cameras take
/// `/user=admin&password=...&channel=1` as the path).
const SECRET_WORDS: &[&str] = &[
    "pass", "pwd", "token", "secret", "key", "auth", "sig", "cred", "session", "ticket", "jwt",
];

/// A URL for logs, errors and HTTP replies: the password of `user:password@` (or the
/// whole user info when it has no `:`), secret-looking `key=value` pairs of the path,
/// the value of every query parameter but those of `SHOWN_PARAMS`, and any fragment
/// become `***`. A plain path is returned as it is.
pub fn redact(url: &str) -> String {
    scan(url).0
}

/// `text` (a GStreamer error, say) with every secret of the camera URL `url` and
/// every URL it quotes redacted as [`redact`] does.
pub fn redact_in(text: &str, url: &str) -> String {
    let mut secrets = scan(url).1;
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for secret in secrets {
        // Shorter ones would garble the message for nothing worth hiding.
        if secret.chars().count() < 3 {
            continue;
        }
        let decoded = percent_decoded(secret);
        for form in [secret, decoded.as_str()] {
            if !form.is_empty() && out.contains(form) {
                out = out.replace(form, "***");
            }
        }
    }
    redact_urls_in(&out)
}

/// Every `scheme://...` in `text`, redacted (a URL ends at white space or a quote).
fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| {
                j + rest[j..].chars().next().map_or(1, char::len_utf8)
            });
        let len = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .map_or(rest.len() - i, |n| n);
        let token = &rest[start..i + len];
        let url = token.trim_end_matches([',', '.', ';', ':', ')']);
        out.push_str(&rest[..start]);
        out.push_str(&redact(url));
        out.push_str(&token[url.len()..]);
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    out
}

/// The redacted URL and the secrets it hid.
fn scan(url: &str) -> (String, Vec<&str>) {
    let mut secrets = Vec::new();
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (&url[..scheme.len() + 3], rest),
        // A path, unless it starts with `user:password@` (a broker URL without scheme).
        None if url
            .split('/')
            .next()
            .is_some_and(|first| first.contains('@')) =>
        {
            ("", url)
        }
        None => return (url.to_string(), secrets),
    };
    let mut out = String::from(scheme);
    // User info ends at the last `@` before the query (a password may hold `/`).
    let before_query = &rest[..rest.find(['?', '#']).unwrap_or(rest.len())];
    let rest = match before_query.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    out.push_str(user);
                    out.push_str(":***@");
                    secrets.push(password);
                }
                None => {
                    out.push_str("***@");
                    secrets.push(userinfo);
                }
            }
            &rest[at + 1..]
        }
        None => rest,
    };
    let (rest, fragment) = rest
        .split_once('#')
        .map_or((rest, None), |(r, f)| (r, Some(f)));
    let (path, query) = rest
        .split_once('?')
        .map_or((rest, None), |(p, q)| (p, Some(q)));
    redact_path(path, &mut out, &mut secrets);
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            let (key, value) = pair
                .split_once('=')
                .map_or((pair, None), |(k, v)| (k, Some(v)));
            let shown = SHOWN_PARAMS.contains(&key.to_ascii_lowercase().as_str());
            match value {
                _ if shown => out.push_str(pair),
                Some(value) => {
                    out.push_str(key);
                    out.push_str("=***");
                    secrets.push(value);
                }
                None if pair.is_empty() => {}
                None => {
                    out.push_str("***");
                    secrets.push(pair);
                }
            }
        }
    }
    if let Some(fragment) = fragment {
        out.push_str("#***");
        secrets.push(fragment);
    }
    (out, secrets)
}

/// `path` into `out`, with the value of each secret-looking `key=value` hidden up to
/// the next `&`, `;` or `/`.
fn redact_path<'a>(path: &'a str, out: &mut String, secrets: &mut Vec<&'a str>) {
    let mut rest = path;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq].rfind(['/', '&', ';', '_']).map_or(0, |k| k + 1);
        let key = rest[key_start..eq].to_ascii_lowercase();
        let secret = SECRET_WORDS.iter().any(|w| key.contains(w));
        // A secret runs to the next `&`, `;` or `/` (it may hold `_`); other values
        // end at `_` too, where the next key may start.
        let ends: &[char] = if secret {
            &['&', ';', '/']
        } else {
            &['&', ';', '/', '_']
        };
        let value_end = rest[eq + 1..].find(ends).map_or(rest.len(), |n| eq + 1 + n);
        out.push_str(&rest[..=eq]);
        let value = &rest[eq + 1..value_end];
        if secret && !value.is_empty() {
            out.push_str("***");
            secrets.push(value);
        } else {
            out.push_str(value);
        }
        rest = &rest[value_end..];
    }
    out.push_str(rest);
}

/// `%XX` decoded, for secrets a message may quote decoded; invalid escapes stay.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).and_then(|&b| hex(b)),
            bytes.get(i + 2).and_then(|&b| hex(b)),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::{redact, redact_in};

    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            redact("rtsp://admin:hunter2@10.0.0.2:554/stream"),
            "rtsp://admin:***@10.0.0.2:554/stream"
        );
        assert_eq!(redact("rtsp://10.0.0.2/s"), "rtsp://10.0.0.2/s");
        assert_eq!(redact("/tmp/a.mkv"), "/tmp/a.mkv");
        assert_eq!(redact("/tmp/a@2x.mkv"), "/tmp/a@2x.mkv");
        assert_eq!(
            redact("rtsp://admin:pa/ss@word@10.0.0.2/s"),
            "rtsp://admin:***@10.0.0.2/s",
            "a password with / and @"
        );
        assert_eq!(redact("rtsp://tok3n@cam/s"), "rtsp://***@cam/s");
        assert_eq!(redact("alice:S3cretPW@host:1883"), "alice:***@host:1883");
    }

    #[test]
    fn redact_hides_query_values_it_cannot_vouch_for() {
        assert_eq!(
            redact("rtsp://127.0.0.1:1/x?pwd=S3cret"),
            "rtsp://127.0.0.1:1/x?pwd=***"
        );
        assert_eq!(
            redact("http://cam/snap.cgi?user=admin&password=S3cret&channel=1&token=abc&chn"),
            "http://cam/snap.cgi?user=***&password=***&channel=1&token=***&chn"
        );
        assert_eq!(
            redact("rtsp://cam/live?subtype=0&abcdef0123456789"),
            "rtsp://cam/live?subtype=0&***"
        );
        assert_eq!(redact("http://cam/a#frag"), "http://cam/a#***");
        assert_eq!(
            redact("rtsp://10.0.0.9:554/user=admin&password=S3cret&channel=1&stream=0.sdp"),
            "rtsp://10.0.0.9:554/user=admin&password=***&channel=1&stream=0.sdp"
        );
        assert_eq!(
            redact("rtsp://10.0.0.9/user=admin_password=S3cret_channel=1"),
            "rtsp://10.0.0.9/user=admin_password=***"
        );
    }

    /// Any text, however odd (multi-byte characters next to `://`, `@`, `=`, `%`),
    /// is redacted without a panic, and a secret never survives in a URL it quotes.
    #[test]
    fn redaction_never_panics_and_never_keeps_a_query_secret() {
        let parts = [
            "://", "rtsp", "«", "é", "@", ":", "/", "?", "&", "=", "#", "%", "%4", "%41", "_", ";",
            " ", "pwd", "token", "channel", "x", "'", "\"",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                text.push_str(parts[(seed % parts.len() as u64) as usize]);
            }
            let _ = redact(&text);
            let _ = redact_in(&text, &text);
            let url = format!("rtsp://cam/x?{text}&pwd=S3cretZ");
            assert!(!redact(&url).contains("S3cretZ"), "{url}");
        }
    }

    #[test]
    fn redact_in_hides_the_urls_and_secrets_a_message_quotes() {
        let url = "http://bob:Hunter%2Fpw@127.0.0.1:8080/x.mkv?pwd=S3cret&channel=2";
        let message = "Not Found (404), URL: http://bob:Hunter%2Fpw@127.0.0.1:8080/x.mkv?pwd=S3cret&channel=2, \
                       Redirect to: (NULL); auth Hunter/pw failed for 'S3cret'";
        let out = redact_in(message, url);
        for secret in ["Hunter", "S3cret"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(
            out.contains("URL: http://bob:***@127.0.0.1:8080/x.mkv?pwd=***&channel=2, Redirect"),
            "{out}"
        );
        // Any other URL in the text is redacted too.
        assert_eq!(
            redact_in("see rtsp://a:b@h/x?token=t0k.", "/x.mkv"),
            "see rtsp://a:***@h/x?token=***."
        );
    }
}

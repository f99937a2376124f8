//! Making text that comes from the cluster safe to show.
//!
//! Daemon names, log lines, service names, failure messages and adapter names are
//! written by other programs, possibly hostile ones. Nodes sanitize what they store,
//! but a deck reads some of it over RPC from nodes it does not control, so every
//! string goes through [`clean`] before it reaches a cell: control characters
//! (which could move a terminal's cursor or change its colours) and bidirectional
//! overrides (which could reorder what an operator reads) are escaped, and the
//! length is capped with an ellipsis. JSON output goes through
//! [`escape_json_text`], which escapes the C1 and bidi characters JSON itself
//! leaves raw.

use stdx::escape::Cap;
pub use stdx::escape::is_deceptive;

/// Longest name shown (daemon, group, service, adapter), in characters.
pub const MAX_NAME: usize = 96;
/// Longest message shown in a table cell (log line, failure, reason), in characters.
pub const MAX_MESSAGE: usize = 512;
/// Longest search text kept in the view state, in characters.
pub const MAX_SEARCH: usize = 256;
/// Marks text that was cut.
pub const ELLIPSIS: char = '…';

/// JSON text with every [`is_deceptive`] character written as a `\uXXXX`
/// escape, so a terminal showing it cannot be steered by the strings inside.
///
/// `json` must be JSON text as `serde_json` writes it. Outside strings JSON text
/// is ASCII, and no escape sequence holds a non-ASCII character, so each such
/// character is a raw character of a string, where its escape (all of them are
/// in the Basic Multilingual Plane) means the same character: the text parses
/// to the same value.
pub fn escape_json_text(json: String) -> String {
    if !json.chars().any(is_deceptive) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_deceptive(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `s` with control characters and bidi overrides escaped (`\n` as `\\n`, others as
/// `\u{..}`) and cut to at most `max_chars` characters (the last one an ellipsis
/// when cut): [`stdx::escape::escape_untrusted`], as nodes escape what they store.
pub fn clean(s: &str, max_chars: usize) -> String {
    stdx::escape::escape_untrusted(s, Cap::chars(max_chars.max(1), ELLIPSIS_STR))
}

/// [`ELLIPSIS`] as text.
const ELLIPSIS_STR: &str = "…";

/// A name: [`clean`] capped at [`MAX_NAME`].
pub fn name(s: &str) -> String {
    clean(s, MAX_NAME)
}

/// A message: [`clean`] capped at [`MAX_MESSAGE`].
pub fn message(s: &str) -> String {
    clean(s, MAX_MESSAGE)
}

/// Lower-cases a search needle once, so matching does not allocate per row.
pub(crate) fn needle(search: &str) -> String {
    search.trim().to_lowercase()
}

/// Whether `haystack` contains `needle` (already lower-case), ignoring case.
///
/// ASCII needles (the common case) are matched byte-wise without allocating;
/// others fall back to lower-casing the haystack.
pub(crate) fn contains_ci(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if !needle.is_ascii() {
        return haystack.to_lowercase().contains(needle);
    }
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    if n.len() > h.len() {
        return false;
    }
    let first = n[0];
    let first_upper = first.to_ascii_uppercase();
    let last_start = h.len() - n.len();
    let mut i = 0;
    while i <= last_start {
        let b = h[i];
        if (b == first || b == first_upper)
            && h[i + 1..i + n.len()].iter().zip(&n[1..]).all(|(a, b)| a.to_ascii_lowercase() == *b)
        {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether the short form of an id (`NodeId::short`: its first 6 of 16 hex
/// digits) contains `needle` (lower case), without allocating.
pub(crate) fn short_id_contains(id: u64, needle: &str) -> bool {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    if needle.is_empty() {
        return true;
    }
    if needle.len() > 6 {
        return false;
    }
    let mut short = [0u8; 6];
    for (i, d) in short.iter_mut().enumerate() {
        *d = DIGITS[((id >> (60 - 4 * i)) & 0xf) as usize];
    }
    short.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(clean("inference_worker#replica", 96), "inference_worker#replica");
        assert_eq!(clean("héllo", 5), "héllo");
    }

    #[test]
    fn control_characters_and_bidi_are_escaped() {
        assert_eq!(clean("a\nb\x1b[2J", 96), "a\\nb\\u{1b}[2J");
        assert_eq!(clean("x\u{202e}y", 96), "x\\u{202e}y");
        assert!(!clean("\u{7}\u{9b}", 96).chars().any(char::is_control));
    }

    #[test]
    fn json_text_escapes_deceptive_characters_and_keeps_its_value() {
        let hostile =
            "log \u{9b}2J \u{202e}gnp.exe\u{2069} \u{61c}\u{200f} \\\u{85} \"q\" \u{1b}[31m";
        let value = serde_json::json!({ hostile: [hostile, "plain"], "k": { "n": 1 } });
        for text in [value.to_string(), format!("{value:#}")] {
            let safe = escape_json_text(text);
            assert!(!safe.chars().any(|c| is_deceptive(c) || (c.is_control() && c != '\n')));
            assert!(
                safe.contains("\\u009b") && safe.contains("\\u202e") && safe.contains("\\u061c")
            );
            let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
            assert_eq!(back, value);
        }
        assert_eq!(escape_json_text("{\"a\":\"é\"}".into()), "{\"a\":\"é\"}");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let cut = clean(&"é".repeat(1000), 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with(ELLIPSIS));
        assert_eq!(clean("abcdef", 6), "abcdef");
        assert_eq!(clean("abcdefg", 6), "abcde…");
        // An escape is never split.
        let cut = clean("abcd\n", 5);
        assert_eq!(cut, "abcd…");
        assert_eq!(clean("", 0), "");
    }

    #[test]
    fn short_ids_match_like_their_text() {
        let id = mesh::NodeId(0xabc1_2300_0000_0001);
        for needle in ["abc", "c123", "abc123", "", "1", "0001", "x", "abc1234"] {
            assert_eq!(short_id_contains(id.0, needle), id.short().contains(needle), "{needle}");
        }
    }

    #[test]
    fn case_insensitive_contains() {
        assert!(contains_ci("Prefill Tokens/s", "tokens"));
        assert!(contains_ci("abc", ""));
        assert!(!contains_ci("ab", "abc"));
        assert!(contains_ci("ÉCOLE", "école"));
        assert!(!contains_ci("decode", "prefill"));
    }
}

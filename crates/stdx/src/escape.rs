//! Making untrusted text safe to store and to show.
//!
//! Strings written by other programs (daemon names, log lines, failure reasons)
//! may be hostile: a control character can move a terminal's cursor or change
//! its colours, and a bidirectional formatting character can reorder what a
//! reader sees. [`escape_untrusted`] writes each of them as a visible escape and
//! caps the length, so the result can be shown as it is.

/// Whether `c` is a C1 control character (U+0080..U+009F, which some terminals
/// obey like escape sequences) or a bidirectional formatting character: the
/// marks U+200E, U+200F and U+061C, the embeddings and overrides
/// U+202A..U+202E and the isolates U+2066..U+2069, which reorder what a reader
/// sees. JSON leaves them raw.
pub fn is_deceptive(c: char) -> bool {
    matches!(
        c,
        '\u{80}'..='\u{9f}'
            | '\u{61c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Whether [`escape_untrusted`] writes `c` as an escape: control characters
/// and [`is_deceptive`] ones.
pub fn needs_escape(c: char) -> bool {
    c.is_control() || is_deceptive(c)
}

/// What the length of escaped text is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// UTF-8 bytes (for what is stored or sent).
    Bytes,
    /// Characters (for what is shown in a cell of so many columns).
    Chars,
}

/// How long escaped text may get, and what marks a cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    max: usize,
    measure: Measure,
    marker: &'static str,
}

impl Cap {
    /// At most `max` bytes, the `marker` included when the text is cut.
    pub const fn bytes(max: usize, marker: &'static str) -> Cap {
        Cap { max, measure: Measure::Bytes, marker }
    }

    /// At most `max` characters, the `marker` included when the text is cut.
    pub const fn chars(max: usize, marker: &'static str) -> Cap {
        Cap { max, measure: Measure::Chars, marker }
    }

    /// The most the escaped text may hold.
    pub const fn max(&self) -> usize {
        self.max
    }

    /// What [`Cap::max`] counts.
    pub const fn measure(&self) -> Measure {
        self.measure
    }

    /// What ends a cut text.
    pub const fn marker(&self) -> &'static str {
        self.marker
    }

    fn size(&self, text: &str) -> usize {
        match self.measure {
            Measure::Bytes => text.len(),
            Measure::Chars => text.chars().count(),
        }
    }
}

/// `text` with every character [`needs_escape`] holds for written as an
/// escape (`\n`, `\r` and `\t` as those two characters, any other as `\u{hex}`)
/// and cut to `cap`: when the escaped text is longer than [`Cap::max`], it ends
/// with [`Cap::marker`] and, marker included, is no longer than that (unless the
/// marker alone is). An escape is never split. Text that needs neither comes
/// back as it is.
pub fn escape_untrusted(text: &str, cap: Cap) -> String {
    let plain_ascii = text.bytes().all(|b| (0x20..0x7f).contains(&b));
    let clean = plain_ascii || !text.chars().any(needs_escape);
    if clean && (text.len() <= cap.max || cap.size(text) <= cap.max) {
        return text.to_owned();
    }
    let marker_size = cap.size(cap.marker);
    let mut out =
        String::with_capacity(text.len().min(cap.max.saturating_mul(4)) + cap.marker.len());
    let mut used = 0usize;
    let mut chars = text.chars().peekable();
    let mut buf = [0u8; 4];
    while let Some(c) = chars.next() {
        let escaped;
        let piece: &str = match c {
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if needs_escape(c) => {
                escaped = format!("\\u{{{:x}}}", u32::from(c));
                &escaped
            }
            c => c.encode_utf8(&mut buf),
        };
        // Leave room for the marker unless this is the last piece.
        let budget =
            if chars.peek().is_none() { cap.max } else { cap.max.saturating_sub(marker_size) };
        let size = cap.size(piece);
        if used + size > budget {
            out.push_str(cap.marker);
            return out;
        }
        out.push_str(piece);
        used += size;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHOWN: Cap = Cap::chars(96, "…");

    #[test]
    fn plain_text_is_kept() {
        assert_eq!(escape_untrusted("inference_worker#replica", SHOWN), "inference_worker#replica");
        assert_eq!(escape_untrusted("héllo", Cap::chars(5, "…")), "héllo");
        assert_eq!(escape_untrusted("héllo", Cap::bytes(6, "…")), "héllo");
    }

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(escape_untrusted("a\nb\x1b[2J", SHOWN), "a\\nb\\u{1b}[2J");
        assert_eq!(escape_untrusted("\r\t", SHOWN), "\\r\\t");
        assert_eq!(escape_untrusted("x\u{202e}y", SHOWN), "x\\u{202e}y");
        for c in ('\u{80}'..='\u{9f}')
            .chain(['\u{61c}', '\u{200e}', '\u{200f}'])
            .chain('\u{202a}'..='\u{202e}')
            .chain('\u{2066}'..='\u{2069}')
        {
            assert!(is_deceptive(c), "{:x}", u32::from(c));
            assert_eq!(
                escape_untrusted(&format!("a{c}b"), SHOWN),
                format!("a\\u{{{:x}}}b", u32::from(c))
            );
        }
        for c in ['a', 'é', '\u{7f}', '\u{a0}', '\u{200d}', '\u{2065}', '\u{206a}'] {
            assert!(!is_deceptive(c), "{:x}", u32::from(c));
        }
    }

    #[test]
    fn cuts_keep_the_marker_within_the_cap() {
        let cap = Cap::chars(6, "…");
        assert_eq!(escape_untrusted("abcdef", cap), "abcdef");
        assert_eq!(escape_untrusted("abcdefg", cap), "abcde…");
        // An escape is never split.
        assert_eq!(escape_untrusted("abcd\n", Cap::chars(5, "…")), "abcd…");
        assert_eq!(escape_untrusted("", Cap::chars(0, "…")), "");
        let cut = escape_untrusted(&"é".repeat(100), Cap::bytes(20, "…[cut]"));
        assert_eq!(cut, format!("{}…[cut]", "é".repeat(6)));
        assert!(cut.len() <= 20);
        // A marker longer than the cap is all that is left.
        assert_eq!(escape_untrusted("abc", Cap::bytes(2, "[cut]")), "[cut]");
    }

    proptest! {
        #[test]
        fn escaped_text_is_safe_and_capped(
            text in "(.|[\u{0}-\u{1f}\u{7f}-\u{9f}\u{200e}\u{202a}-\u{202e}\u{2066}-\u{2069}]){0,60}",
            max in 0usize..80,
            bytes in any::<bool>(),
        ) {
            let cap = if bytes { Cap::bytes(max, "…[cut]") } else { Cap::chars(max, "…") };
            let out = escape_untrusted(&text, cap);
            prop_assert!(!out.chars().any(needs_escape), "{:?}", out);
            prop_assert!(cap.size(&out) <= max.max(cap.size(cap.marker())), "{:?}", out);
            if !text.chars().any(needs_escape) && cap.size(&text) <= max {
                prop_assert_eq!(&out, &text);
            }
            if out != text && !out.ends_with(cap.marker()) {
                // Not cut, only escaped: nothing was lost.
                prop_assert!(out.len() >= text.len());
            }
        }
    }
}

//! Lower-case hex encoding for key files and ids (tiny, so no dependency).

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Encodes bytes as lower-case hex.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Decodes exactly `N` bytes of hex (either case). `None` on any other input.
pub(crate) fn decode_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    let raw = text.as_bytes();
    if raw.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in raw.chunks_exact(2).enumerate() {
        out[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff, 0xab];
        let text = encode(&bytes);
        assert_eq!(text, "00017f80ffab");
        assert_eq!(decode_array::<6>(&text), Some(bytes));
        assert_eq!(decode_array::<6>("00017F80FFAB"), Some(bytes));
        assert_eq!(decode_array::<6>("00017f80ffa"), None);
        assert_eq!(decode_array::<6>("00017f80ffag"), None);
    }
}

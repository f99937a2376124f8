//! Lower-case hex for key files, ids and fingerprints.

use crate::Error;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// `bytes` as lower-case hex, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Exactly `N` bytes from `2 * N` hex digits of either case, nothing around
/// them (trim first where whitespace is allowed).
///
/// [`Error::HexLength`] for text of another length, [`Error::HexDigit`] naming
/// the first character that is not a digit. Never panics.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], Error> {
    let raw = text.as_bytes();
    if raw.len() != N * 2 {
        return Err(Error::HexLength { expected: N * 2, found: raw.len() });
    }
    let mut out = [0u8; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let digit = |at: usize| nibble(raw[at]).ok_or(Error::HexDigit { at });
        *slot = (digit(2 * i)? << 4) | digit(2 * i + 1)?;
    }
    Ok(out)
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
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_refusals() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xff, 0xab];
        let text = encode(&bytes);
        assert_eq!(text, "00017f80ffab");
        assert_eq!(decode_array::<6>(&text).unwrap(), bytes);
        assert_eq!(decode_array::<6>("00017F80FFAB").unwrap(), bytes);
        assert!(matches!(
            decode_array::<6>("00017f80ffa"),
            Err(Error::HexLength { expected: 12, found: 11 })
        ));
        assert!(matches!(decode_array::<6>("00017f80ffag"), Err(Error::HexDigit { at: 11 })));
        assert!(matches!(decode_array::<1>("é"), Err(Error::HexDigit { at: 0 })));
        assert_eq!(decode_array::<0>("").unwrap(), []);
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_the_identity(bytes in any::<[u8; 32]>()) {
            let text = encode(&bytes);
            prop_assert_eq!(text.len(), 64);
            prop_assert_eq!(decode_array::<32>(&text).unwrap(), bytes);
            prop_assert_eq!(decode_array::<32>(&text.to_uppercase()).unwrap(), bytes);
        }

        #[test]
        fn decoding_any_text_never_panics(text in ".{0,70}") {
            let decoded = decode_array::<32>(&text);
            let all_digits = text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit());
            prop_assert_eq!(decoded.is_ok(), all_digits);
        }
    }
}

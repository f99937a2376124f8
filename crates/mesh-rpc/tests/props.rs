//! Property tests: RPC envelopes round-trip, and decoding arbitrary, truncated or
//! bit-flipped bytes never panics (headers and typed bodies alike).

use mesh_rpc::StatusCode;
use mesh_rpc::wire::{self, Header, MAX_SERVICE_NAME, Outcome};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde::{Deserialize, Serialize};

/// A body type with the shapes real services use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sample {
    id: u64,
    name: String,
    tags: Vec<String>,
    blob: Vec<u8>,
    score: Option<i32>,
    kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Kind {
    Small,
    Pair(u16, i64),
    Named { flag: bool },
}

fn sample() -> impl Strategy<Value = Sample> {
    let kind = prop_oneof![
        Just(Kind::Small),
        (any::<u16>(), any::<i64>()).prop_map(|(a, b)| Kind::Pair(a, b)),
        any::<bool>().prop_map(|flag| Kind::Named { flag }),
    ];
    (
        any::<u64>(),
        ".{0,24}",
        proptest::collection::vec(".{0,8}", 0..4),
        proptest::collection::vec(any::<u8>(), 0..256),
        any::<Option<i32>>(),
        kind,
    )
        .prop_map(|(id, name, tags, blob, score, kind)| Sample {
            id,
            name,
            tags,
            blob,
            score,
            kind,
        })
}

fn service() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z][a-z0-9/._-]{0,40}", ".{1,60}"]
        .prop_filter("1..=256 bytes", |s| !s.is_empty() && s.len() <= MAX_SERVICE_NAME)
}

/// A header as owned parts: (variant, id, number, text).
fn header_parts() -> impl Strategy<Value = (u8, u64, u64, String)> {
    (0u8..6, any::<u64>(), any::<u64>(), service())
}

fn header(parts: &(u8, u64, u64, String)) -> Header<'_> {
    let (variant, id, n, text) = parts;
    let id = *id;
    match variant {
        0 => Header::Request { id, deadline_us: *n, service: text },
        1 => Header::Response { id, outcome: Outcome::Ok },
        2 => Header::Response {
            id,
            outcome: Outcome::Failed { code: (*n % 20) as u16, message: text },
        },
        3 => Header::Response { id, outcome: Outcome::NoSuchService },
        4 => Header::Response { id, outcome: Outcome::TooLarge { size: *n, max: n / 2 } },
        _ => Header::Cancel { id },
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct("proptest-regressions/props.txt"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn envelopes_round_trip(parts in header_parts(), body in proptest::collection::vec(any::<u8>(), 0..600)) {
        let header = header(&parts);
        let body: &[u8] = if header.has_body() { &body } else { &[] };
        let message = wire::encode_raw(&header, body).unwrap();
        let (back, rest) = wire::decode(&message).unwrap();
        prop_assert_eq!(back, header);
        prop_assert_eq!(rest, body);
    }

    #[test]
    fn typed_bodies_round_trip_behind_a_header(parts in header_parts(), value in sample()) {
        let header = header(&parts);
        prop_assume!(header.has_body());
        let message = wire::encode_into(&header, Some(&value), Vec::new()).unwrap();
        let (back, body) = wire::decode(&message).unwrap();
        prop_assert_eq!(back, header);
        prop_assert_eq!(postcard::from_bytes::<Sample>(body).unwrap(), value);
    }

    #[test]
    fn overlong_varints_decode_to_canonical_headers(id in any::<u64>()) {
        // Cancel{id} with the id's varint padded by one redundant zero group
        // where the encoding allows it; decoding must agree or refuse, not panic.
        let canonical = wire::encode_raw(&Header::Cancel { id }, &[]).unwrap();
        let mut padded = canonical.clone();
        if let Some(last) = padded.last_mut() {
            *last |= 0x80;
        }
        padded.push(0);
        if let Ok((header, _)) = wire::decode(&padded) {
            prop_assert_eq!(header, Header::Cancel { id });
        }
    }

    #[test]
    fn batches_round_trip(items in proptest::collection::vec((header_parts(), proptest::collection::vec(any::<u8>(), 0..200)), 0..12)) {
        let messages: Vec<Vec<u8>> = items
            .iter()
            .map(|(parts, body)| {
                let header = header(parts);
                let body: &[u8] = if header.has_body() { body } else { &[] };
                wire::encode_raw(&header, body).unwrap()
            })
            .collect();
        let mut batch = wire::batch_header();
        for m in &messages {
            wire::push_batch_item(&mut batch, m);
        }
        let (header, body) = wire::decode(&batch).unwrap();
        prop_assert_eq!(header, Header::Batch);
        let back: Vec<&[u8]> = wire::batch_items(body).map(|i| i.unwrap()).collect();
        prop_assert_eq!(back.len(), messages.len());
        for (got, want) in back.iter().zip(&messages) {
            prop_assert_eq!(*got, &want[..]);
        }
    }

    #[test]
    fn batch_bodies_of_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut consumed = 0;
        for item in wire::batch_items(&bytes) {
            match item {
                Ok(item) => {
                    consumed += item.len();
                    let _ = wire::decode(item);
                }
                Err(_) => break,
            }
        }
        prop_assert!(consumed <= bytes.len());
    }

    #[test]
    fn status_codes_survive_the_wire(n in any::<u16>()) {
        let code = StatusCode::from_wire(n);
        prop_assert_eq!(StatusCode::from_wire(code.to_wire()), code);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok((header, body)) = wire::decode(&bytes) {
            // Whatever decodes re-encodes to something that decodes the same
            // (not always the same bytes: postcard accepts over-long varints).
            let again = wire::encode_raw(&header, body).unwrap();
            let (header2, body2) = wire::decode(&again).unwrap();
            prop_assert_eq!(header2, header);
            prop_assert_eq!(body2, body);
        }
        let _ = postcard::from_bytes::<Sample>(&bytes);
    }

    #[test]
    fn flipped_and_truncated_messages_never_panic(
        parts in header_parts(),
        value in sample(),
        flips in proptest::collection::vec((any::<usize>(), 0u8..8), 1..4),
        cut in any::<usize>(),
    ) {
        let header = header(&parts);
        let message = wire::encode_into(&header, header.has_body().then_some(&value), Vec::new()).unwrap();
        let mut flipped = message.clone();
        for (at, bit) in flips {
            let at = at % flipped.len();
            flipped[at] ^= 1 << bit;
        }
        let truncated = &message[..cut % (message.len() + 1)];
        for bytes in [&flipped[..], truncated] {
            if let Ok((_, body)) = wire::decode(bytes) {
                let _ = postcard::from_bytes::<Sample>(body);
            }
        }
    }
}

//! The hash-chained audit ledger.
//!
//! Every admin decision (accepted or rejected) becomes an [`AuditEntry`]. Entry `n`
//! stores the hash of entry `n - 1`, and its own hash is
//! `blake3(prev_hash || postcard((seq, record)))`, so changing, removing or
//! reordering any entry breaks the chain at that entry, and anyone holding the
//! entries can check them with [`verify_chain`].
//!
//! A ledger lives in memory ([`AuditLedger::new`]) or is also appended to a file
//! ([`AuditLedger::open`]), one fsync per entry, so nothing accepted is lost on a
//! crash.
//!
//! # File format
//!
//! The header line `meshdeck-audit v1\n`, then per entry a 4-byte little-endian
//! length and the postcard encoding of the [`AuditEntry`]. A torn final record (a
//! crash mid-append) is truncated on open and reported; a broken chain is an error.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::AuthError;
use crate::envelope::{CommandClass, SignedEnvelope};
use crate::ids::OperatorId;
use crate::verifier::{Rejection, Verified};

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];
const FILE_HEADER: &[u8] = b"meshdeck-audit v1\n";
/// Largest single entry accepted from a file (guards against a corrupt length).
const MAX_ENTRY_BYTES: usize = 1 << 20;

/// What was decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditOutcome {
    /// The command was verified and applied.
    Accepted,
    /// The command was refused.
    Rejected {
        /// Stable reason code (`expired`, `replayed`, ...).
        code: String,
        /// Human-readable detail.
        detail: String,
    },
}

impl AuditOutcome {
    /// True for [`AuditOutcome::Accepted`].
    pub fn is_accepted(&self) -> bool {
        matches!(self, AuditOutcome::Accepted)
    }
}

/// The content of one ledger entry (everything except the chain fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the decision was made (ms since the Unix epoch).
    pub ts_ms: u64,
    /// Operators whose valid signatures counted (empty if none did).
    pub operators: Vec<OperatorId>,
    /// Command class.
    pub class: CommandClass,
    /// The command's target.
    pub target: String,
    /// blake3 of the command payload.
    pub payload_digest: [u8; 32],
    /// The envelope's nonce.
    pub nonce: [u8; 16],
    /// Accepted, or rejected with a reason.
    pub outcome: AuditOutcome,
}

impl AuditRecord {
    /// The record of a verification result.
    pub fn from_verification(
        envelope: &SignedEnvelope,
        result: Result<&Verified, &Rejection>,
        ts_ms: u64,
    ) -> Self {
        let (operators, outcome) = match result {
            Ok(verified) => (verified.operators.clone(), AuditOutcome::Accepted),
            Err(rejection) => (
                Vec::new(),
                AuditOutcome::Rejected {
                    code: rejection.reason.code().to_owned(),
                    detail: rejection.to_string(),
                },
            ),
        };
        Self {
            ts_ms,
            operators,
            class: envelope.body.class,
            target: envelope.body.target.clone(),
            payload_digest: envelope.body.payload_digest(),
            nonce: envelope.body.nonce,
            outcome,
        }
    }
}

/// One link of the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the ledger, from 0.
    pub seq: u64,
    /// The decision.
    pub record: AuditRecord,
    /// Hash of the previous entry ([`GENESIS_HASH`] for the first).
    pub prev_hash: [u8; 32],
    /// `blake3(prev_hash || postcard((seq, record)))`.
    pub hash: [u8; 32],
}

impl AuditEntry {
    fn compute_hash(prev_hash: &[u8; 32], seq: u64, record: &AuditRecord) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(prev_hash);
        // Encoding plain data into a Vec cannot fail.
        hasher.update(&postcard::to_stdvec(&(seq, record)).unwrap_or_default());
        *hasher.finalize().as_bytes()
    }

    /// Whether `hash` matches the content and `prev_hash`.
    pub fn is_self_consistent(&self) -> bool {
        Self::compute_hash(&self.prev_hash, self.seq, &self.record) == self.hash
    }
}

/// Where and how a chain is broken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at entry {seq}: {problem}")]
pub struct ChainBreak {
    /// The first entry that does not check out.
    pub seq: u64,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Checks a whole ledger from its first entry (which must be seq 0 with the
/// genesis hash). Returns the first broken entry.
pub fn verify_chain(entries: &[AuditEntry]) -> Result<(), ChainBreak> {
    verify_segment(&GENESIS_HASH, 0, entries)
}

/// Checks a page of a ledger that continues from `prev_hash` at `first_seq`.
pub fn verify_segment(
    prev_hash: &[u8; 32],
    first_seq: u64,
    entries: &[AuditEntry],
) -> Result<(), ChainBreak> {
    let mut prev = *prev_hash;
    for (i, entry) in entries.iter().enumerate() {
        let expected_seq = first_seq + i as u64;
        if entry.seq != expected_seq {
            return Err(ChainBreak { seq: expected_seq, problem: "sequence number out of order" });
        }
        if entry.prev_hash != prev {
            return Err(ChainBreak {
                seq: entry.seq,
                problem: "does not link to the previous entry",
            });
        }
        if !entry.is_self_consistent() {
            return Err(ChainBreak { seq: entry.seq, problem: "content does not match its hash" });
        }
        prev = entry.hash;
    }
    Ok(())
}

/// An append-only, hash-chained ledger of admin decisions.
#[derive(Debug, Default)]
pub struct AuditLedger {
    entries: Vec<AuditEntry>,
    file: Option<(PathBuf, File)>,
}

impl AuditLedger {
    /// An empty in-memory ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens (or creates) a ledger file, checking the whole chain.
    ///
    /// Returns the ledger and the number of bytes of torn tail that were cut off
    /// (0 after a clean shutdown). A chain that does not verify is an error: the
    /// file was tampered with or is not ours.
    pub fn open(path: &Path) -> Result<(Self, u64), AuthError> {
        let io = |source| AuthError::Io { path: path.to_owned(), source };
        let bad = |reason: String| AuthError::Decode {
            what: "audit ledger",
            reason: format!("{}: {reason}", path.display()),
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let mut raw = Vec::new();
        file.read_to_end(&mut raw).map_err(io)?;
        if raw.is_empty() {
            file.write_all(FILE_HEADER).map_err(io)?;
            file.sync_all().map_err(io)?;
            return Ok((Self { entries: Vec::new(), file: Some((path.to_owned(), file)) }, 0));
        }
        if !raw.starts_with(FILE_HEADER) {
            return Err(bad("not an audit ledger file (bad header)".into()));
        }
        let mut entries = Vec::new();
        let mut pos = FILE_HEADER.len();
        let mut good_end = pos;
        while pos < raw.len() {
            let Some(len_bytes) = raw.get(pos..pos + 4) else { break };
            let len = u32::from_le_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]])
                as usize;
            if len > MAX_ENTRY_BYTES {
                // A length running past the end of the file is a torn final
                // record (cut below); one inside the file is not ours.
                if pos + 4 + len > raw.len() {
                    break;
                }
                return Err(bad(format!("entry {} claims {len} bytes", entries.len())));
            }
            let Some(body) = raw.get(pos + 4..pos + 4 + len) else { break };
            let entry: AuditEntry = match postcard::from_bytes(body) {
                Ok(entry) => entry,
                Err(_) if pos + 4 + len == raw.len() => break, // torn final record
                Err(e) => return Err(bad(format!("entry {}: {e}", entries.len()))),
            };
            entries.push(entry);
            pos += 4 + len;
            good_end = pos;
        }
        verify_chain(&entries).map_err(|e| bad(e.to_string()))?;
        let torn = (raw.len() - good_end) as u64;
        if torn > 0 {
            file.set_len(good_end as u64).map_err(io)?;
            file.seek(SeekFrom::End(0)).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok((Self { entries, file: Some((path.to_owned(), file)) }, torn))
    }

    /// Appends a decision and returns the new entry. With a file, the entry is on
    /// disk (fsync) before this returns; on an I/O error nothing is appended:
    /// the file is cut back to its previous length, so it always opens.
    ///
    /// A record whose encoding is larger than an entry may be (1 MiB) is refused
    /// with [`AuthError::TooLarge`], in memory as on disk.
    pub fn append(&mut self, record: AuditRecord) -> Result<&AuditEntry, AuthError> {
        let seq = self.entries.len() as u64;
        let prev_hash = self.head_hash();
        let hash = AuditEntry::compute_hash(&prev_hash, seq, &record);
        let entry = AuditEntry { seq, record, prev_hash, hash };
        let body = postcard::to_stdvec(&entry)
            .map_err(|e| AuthError::Decode { what: "audit entry", reason: e.to_string() })?;
        if body.len() > MAX_ENTRY_BYTES {
            return Err(AuthError::TooLarge {
                what: "audit entry",
                size: body.len(),
                max: MAX_ENTRY_BYTES,
            });
        }
        if let Some((path, file)) = &mut self.file {
            let io = |source| AuthError::Io { path: path.clone(), source };
            let before = file.seek(SeekFrom::End(0)).map_err(io)?;
            let mut framed = Vec::with_capacity(body.len() + 4);
            framed.extend_from_slice(&(body.len() as u32).to_le_bytes());
            framed.extend_from_slice(&body);
            let written = file.write_all(&framed).and_then(|()| file.sync_data());
            if let Err(e) = written {
                // Whatever part of the record reached the file goes again, so
                // the next open finds the chain as it was.
                let _ = file.set_len(before).and_then(|()| file.sync_data());
                let _ = file.seek(SeekFrom::End(0));
                return Err(io(e));
            }
        }
        self.entries.push(entry);
        Ok(&self.entries[self.entries.len() - 1])
    }

    /// Hash of the last entry ([`GENESIS_HASH`] when empty).
    pub fn head_hash(&self) -> [u8; 32] {
        self.entries.last().map_or(GENESIS_HASH, |e| e.hash)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// All entries, oldest first.
    pub fn entries(&self) -> &[AuditEntry] {
        &self.entries
    }

    /// Up to `limit` entries with `seq >= from_seq`, oldest first (a page for
    /// tails: ask again with the last seq + 1).
    pub fn since(&self, from_seq: u64, limit: usize) -> &[AuditEntry] {
        let start = usize::try_from(from_seq).unwrap_or(usize::MAX).min(self.entries.len());
        let end = start.saturating_add(limit).min(self.entries.len());
        &self.entries[start..end]
    }

    /// Checks the whole chain held in memory.
    pub fn verify_chain(&self) -> Result<(), ChainBreak> {
        verify_chain(&self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: u64) -> AuditRecord {
        AuditRecord {
            ts_ms: 1000 + i,
            operators: vec![OperatorId(i)],
            class: CommandClass::Routine,
            target: format!("node:{i}"),
            payload_digest: [i as u8; 32],
            nonce: [i as u8; 16],
            outcome: if i % 2 == 0 {
                AuditOutcome::Accepted
            } else {
                AuditOutcome::Rejected {
                    code: "expired".into(),
                    detail: "expired: 5 ms ago".into(),
                }
            },
        }
    }

    #[test]
    fn chain_and_pages() {
        let mut ledger = AuditLedger::new();
        for i in 0..10 {
            ledger.append(record(i)).unwrap();
        }
        ledger.verify_chain().unwrap();
        assert_eq!(ledger.since(8, 100).len(), 2);
        assert_eq!(ledger.since(3, 2)[0].seq, 3);
        assert!(ledger.since(100, 5).is_empty());
        let page = ledger.since(4, 3);
        verify_segment(&ledger.entries()[3].hash, 4, page).unwrap();
    }

    #[test]
    fn file_survives_reopen_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        {
            let (mut ledger, torn) = AuditLedger::open(&path).unwrap();
            assert_eq!(torn, 0);
            for i in 0..5 {
                ledger.append(record(i)).unwrap();
            }
        }
        // Simulate a crash mid-append: a partial record at the end.
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend_from_slice(&[40, 0, 0, 0, 1, 2, 3]);
        std::fs::write(&path, &raw).unwrap();
        let (mut ledger, torn) = AuditLedger::open(&path).unwrap();
        assert_eq!(torn, 7);
        assert_eq!(ledger.len(), 5);
        ledger.append(record(5)).unwrap();
        drop(ledger);
        let (ledger, torn) = AuditLedger::open(&path).unwrap();
        assert_eq!((ledger.len(), torn), (6, 0));
        ledger.verify_chain().unwrap();
    }

    #[test]
    fn an_oversized_record_is_refused_and_a_torn_oversized_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let (mut ledger, _) = AuditLedger::open(&path).unwrap();
        ledger.append(record(0)).unwrap();
        let mut huge = record(1);
        huge.target = "x".repeat(MAX_ENTRY_BYTES + 1);
        let err = ledger.append(huge).unwrap_err();
        assert!(matches!(err, AuthError::TooLarge { .. }), "{err}");
        assert_eq!(ledger.len(), 1);
        let size = std::fs::metadata(&path).unwrap().len();
        drop(ledger);
        // A crash while a (then legal) huge entry was being written: its length
        // claims more than the file holds. The tail goes; the file opens.
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend_from_slice(&((MAX_ENTRY_BYTES as u32) + 10).to_le_bytes());
        raw.extend_from_slice(&[7; 100]);
        std::fs::write(&path, &raw).unwrap();
        let (ledger, torn) = AuditLedger::open(&path).unwrap();
        assert_eq!((ledger.len(), torn), (1, 104));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
    }

    #[test]
    fn tampered_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        {
            let (mut ledger, _) = AuditLedger::open(&path).unwrap();
            for i in 0..3 {
                ledger.append(record(i)).unwrap();
            }
        }
        let mut raw = std::fs::read(&path).unwrap();
        // Change a byte inside the second entry's target string ("node:1" -> "node:7").
        let at = raw.windows(6).position(|w| w == b"node:1").unwrap();
        raw[at + 5] = b'7';
        std::fs::write(&path, &raw).unwrap();
        let err = AuditLedger::open(&path).unwrap_err().to_string();
        assert!(err.contains("entry 1"), "{err}");

        std::fs::write(&path, b"hello world").unwrap();
        assert!(AuditLedger::open(&path).unwrap_err().to_string().contains("bad header"));
    }
}

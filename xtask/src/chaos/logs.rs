//! What the nodes' logs say: membership lines parsed with their timestamps, log
//! files tailed, and the view of every node by every other one.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};

use super::POLL_BUDGET;

/// What a log line says about a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// `member joined`: a new peer's session (its first label is not logged).
    Joined,
    /// `member rejoined`: a new session with a peer that was down or gone.
    Rejoined,
    /// `member healthy again`.
    Healthy,
    /// `member suspect (degraded)`.
    Suspect,
    /// `member unreachable`.
    Unreachable,
    /// `member left the cluster`.
    Left,
}

impl Kind {
    /// Messages, in the order they are looked for.
    const MESSAGES: [(&'static str, Kind); 6] = [
        ("member rejoined", Kind::Rejoined),
        ("member joined", Kind::Joined),
        ("member healthy again", Kind::Healthy),
        ("member suspect", Kind::Suspect),
        ("member unreachable", Kind::Unreachable),
        ("member left the cluster", Kind::Left),
    ];

    fn is_healthy(self) -> bool {
        matches!(self, Kind::Joined | Kind::Rejoined | Kind::Healthy)
    }
}

/// One membership line: at `ts` (µs since the epoch) node `observer` logged
/// `kind` about node `peer` (indices into the cluster's nodes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Event {
    pub(super) ts: u64,
    pub(super) observer: usize,
    pub(super) peer: usize,
    pub(super) kind: Kind,
}

/// Parses a membership line: (timestamp, member id, kind). The timestamp is
/// the line's leading RFC 3339 one, or `fallback_ts` when it has none.
///
/// Plain byte loops: xtask is built without optimizations, and an overloaded
/// cluster logs tens of megabytes a minute.
pub(super) fn parse_line(line: &[u8], fallback_ts: u64) -> Option<(u64, u64, Kind)> {
    let mut from = 0;
    let (kind, after) = loop {
        let at = from + find_bytes(&line[from..], b"member ")?;
        let rest = &line[at..];
        if let Some((msg, kind)) =
            Kind::MESSAGES.iter().find(|(m, _)| rest.starts_with(m.as_bytes()))
        {
            break (*kind, at + msg.len());
        }
        from = at + 1;
    };
    // The member is a field after the message (`node=` or `peer=`).
    let rest = &line[after..];
    let field = find_bytes(rest, b" node=").or_else(|| find_bytes(rest, b" peer="))? + 6;
    let mut end = field;
    while end < rest.len() && rest[end].is_ascii_alphanumeric() {
        end += 1;
    }
    let id = parse_id(std::str::from_utf8(&rest[field..end]).ok()?)?;
    let mut first_space = 0;
    while first_space < line.len() && line[first_space] != b' ' {
        first_space += 1;
    }
    let ts = std::str::from_utf8(&line[..first_space])
        .ok()
        .and_then(parse_rfc3339_us)
        .unwrap_or(fallback_ts);
    Some((ts, id, kind))
}

/// Where `needle` (not empty) first occurs in `hay`.
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let last = hay.len().checked_sub(needle.len())?;
    let mut i = 0;
    while i <= last {
        if hay[i] == first && &hay[i..i + needle.len()] == needle {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `0x` and up to 16 hex digits.
pub(super) fn parse_id(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    if digits.is_empty() || digits.len() > 16 {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` as µs since the Unix epoch.
pub(super) fn parse_rfc3339_us(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut micros = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut scaled: String = frac[..digits].chars().take(6).collect();
        while scaled.len() < 6 {
            scaled.push('0');
        }
        micros = scaled.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_s = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs * 1_000_000 + micros).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    // Years start in March, so the leap day is the last day of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((m + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(d) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Microseconds since the Unix epoch (the clock the nodes stamp their logs with).
pub(super) fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The tail of one log file, read as it grows.
#[derive(Debug)]
struct LogTail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl LogTail {
    /// The complete lines written since the last call (at most about
    /// `budget` bytes of them), and whether the file was read to its end.
    fn read_lines(&mut self, budget: u64) -> Result<(Vec<u8>, bool)> {
        let mut file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), true)),
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        (&mut file)
            .take(budget)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", self.path.display()))?;
        let at_end = (buf.len() as u64) < budget;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let mut cut = self.partial.len();
        while cut > 0 && self.partial[cut - 1] != b'\n' {
            cut -= 1;
        }
        let rest = self.partial.split_off(cut);
        Ok((std::mem::replace(&mut self.partial, rest), at_end))
    }
}

/// What every node thinks of every other one, from their logs.
#[derive(Debug, Default)]
pub(super) struct View {
    /// Node id -> index.
    pub(super) ids: HashMap<u64, usize>,
    tails: Vec<LogTail>,
    /// `state[observer][peer]`: the last line about the pair, and its time.
    state: Vec<Vec<Option<(Kind, u64)>>>,
    /// Pairs (observer != peer) whose last line is a healthy one.
    healthy_pairs: usize,
    /// Every membership line about a cluster node, in timestamp order per poll.
    events: Vec<Event>,
    /// Moments (µs) at which the last unhealthy pair became healthy.
    all_healthy_at: Vec<u64>,
    /// Whether the last poll read every log to its end.
    pub(super) caught_up: bool,
}

impl View {
    pub(super) fn new(ids: &[u64], logs: Vec<PathBuf>) -> View {
        let n = ids.len();
        View {
            ids: ids.iter().enumerate().map(|(i, id)| (*id, i)).collect(),
            tails: logs
                .into_iter()
                .map(|path| LogTail { path, offset: 0, partial: Vec::new() })
                .collect(),
            state: vec![vec![None; n]; n],
            healthy_pairs: 0,
            events: Vec::new(),
            all_healthy_at: Vec::new(),
            caught_up: true,
        }
    }

    fn pairs(&self) -> usize {
        let n = self.state.len();
        n * n.saturating_sub(1)
    }

    /// Reads new lines from every log (at most [`POLL_BUDGET`] bytes of each)
    /// and applies them in timestamp order. Returns whether every log was read
    /// to its end.
    pub(super) fn poll(&mut self) -> Result<bool> {
        let now = now_us();
        let mut new = Vec::new();
        let mut caught_up = true;
        for (observer, tail) in self.tails.iter_mut().enumerate() {
            let (chunk, at_end) = tail.read_lines(POLL_BUDGET)?;
            caught_up &= at_end;
            let mut start = 0;
            while start < chunk.len() {
                let mut end = start;
                while end < chunk.len() && chunk[end] != b'\n' {
                    end += 1;
                }
                let line = &chunk[start..end];
                start = end + 1;
                let Some((ts, id, kind)) = parse_line(line, now) else { continue };
                let Some(&peer) = self.ids.get(&id) else { continue };
                if peer != observer {
                    new.push(Event { ts, observer, peer, kind });
                }
            }
        }
        new.sort_by_key(|e| e.ts);
        for event in new {
            self.apply(event);
        }
        self.caught_up = caught_up;
        Ok(caught_up)
    }

    /// Bytes written to the logs and not read yet.
    pub(super) fn backlog(&self) -> u64 {
        self.tails
            .iter()
            .map(|t| {
                let len = std::fs::metadata(&t.path).map_or(0, |m| m.len());
                len.saturating_sub(t.offset)
            })
            .sum()
    }

    /// "" when the last poll read every log to its end, else how far behind.
    pub(super) fn lag_note(&self) -> String {
        if self.caught_up {
            String::new()
        } else {
            format!(" (log reading behind by {} KiB)", self.backlog() / 1024)
        }
    }

    /// Reads the logs to their ends (for at most `limit`).
    pub(super) fn catch_up(&mut self, limit: Duration) -> Result<()> {
        let began = Instant::now();
        while !self.poll()? && began.elapsed() < limit {}
        Ok(())
    }

    pub(super) fn apply(&mut self, e: Event) {
        let slot = &mut self.state[e.observer][e.peer];
        let before = *slot;
        let was = before.is_some_and(|(k, _)| k.is_healthy());
        *slot = Some((e.kind, e.ts));
        if let (Some((Kind::Joined, joined)), Kind::Healthy) = (before, e.kind) {
            // `healthy again` right after `joined`: the unlogged first label was
            // not healthy, so the pair was not healthy since it joined.
            self.all_healthy_at.retain(|&t| t < joined);
            if self.all_healthy() {
                self.all_healthy_at.push(e.ts);
            }
        }
        match (was, e.kind.is_healthy()) {
            (false, true) => {
                self.healthy_pairs += 1;
                if self.healthy_pairs == self.pairs() {
                    self.all_healthy_at.push(e.ts);
                }
            }
            (true, false) => self.healthy_pairs -= 1,
            _ => {}
        }
        self.events.push(e);
    }

    pub(super) fn all_healthy(&self) -> bool {
        self.healthy_pairs == self.pairs()
    }

    /// The first moment at or after `since` at which every pair was healthy.
    pub(super) fn first_all_healthy(&self, since: u64) -> Option<u64> {
        if self.pairs() == 0 {
            return Some(since);
        }
        self.all_healthy_at.iter().copied().find(|&t| t >= since)
    }

    /// Per other node: the first moment at or after `since` it logged one of
    /// `kinds` about `target`.
    pub(super) fn first_about(
        &self,
        target: usize,
        since: u64,
        kinds: &[Kind],
    ) -> Vec<Option<u64>> {
        let mut firsts: Vec<Option<u64>> = vec![None; self.state.len()];
        for e in &self.events {
            if e.peer == target && e.ts >= since && kinds.contains(&e.kind) {
                let slot = &mut firsts[e.observer];
                *slot = Some(slot.map_or(e.ts, |t| t.min(e.ts)));
            }
        }
        firsts.remove(target);
        firsts
    }

    /// `member unreachable` and `member suspect` lines about cluster nodes
    /// logged in `[from, to]`.
    pub(super) fn false_failures(&self, from: u64, to: u64) -> (usize, usize) {
        let window = self.events.iter().filter(|e| e.ts >= from && e.ts <= to);
        let count = |kind| window.clone().filter(|e| e.kind == kind).count();
        (count(Kind::Unreachable), count(Kind::Suspect))
    }

    /// One line: healthy pairs, and nodes that see everyone healthy.
    pub(super) fn progress(&self) -> String {
        let n = self.state.len();
        let complete = (0..n)
            .filter(|&o| {
                (0..n).all(|p| p == o || self.state[o][p].is_some_and(|(k, _)| k.is_healthy()))
            })
            .count();
        format!(
            "{}/{} member views healthy, {complete}/{n} nodes see every other one healthy",
            self.healthy_pairs,
            self.pairs()
        )
    }
}

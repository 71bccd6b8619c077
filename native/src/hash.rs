//! Content hashes of event payloads, as `streams/content_hash.py` defines them: XXH3-64 of the
//! payload without its first `sent_time` member (`canonical_payload` there, byte for byte).

use memchr::memchr;
use memchr::memmem;
use xxhash_rust::xxh3::Xxh3;

const SENT: &[u8] = b"\"sent_time\"";

#[inline(always)]
fn blank(c: Option<&u8>) -> bool {
    matches!(c, Some(b' ' | b'\t' | b'\r' | b'\n'))
}

/// The span `raw[at..end]` that `canonical_payload` removes; None when it keeps `raw` whole.
pub fn cut(finder: &memmem::Finder<'_>, raw: &[u8]) -> Option<(usize, usize)> {
    let mut at = finder.find(raw)?;
    let colon = memchr(b':', &raw[at + SENT.len()..])? + at + SENT.len();
    let mut start = colon + 1;
    while blank(raw.get(start)) {
        start += 1;
    }
    let mut end = match raw.get(start) {
        Some(b'"') => start + 1 + memchr(b'"', &raw[start + 1..])? + 1,
        _ if raw[start..].starts_with(b"null") => start + 4,
        _ => return None,
    };
    let mut after = end;
    while blank(raw.get(after)) {
        after += 1;
    }
    if raw.get(after) == Some(&b',') {
        end = after + 1;
    } else {
        let mut before = at;
        while before > 0 && blank(raw.get(before - 1)) {
            before -= 1;
        }
        if before > 0 && raw[before - 1] == b',' {
            at = before - 1;
        }
    }
    Some((at, end))
}

/// The content hash of one payload as a signed integer, never 0 (0 means "unknown").
pub fn content_hash(finder: &memmem::Finder<'_>, raw: &[u8]) -> i64 {
    let value = match cut(finder, raw) {
        None => xxhash_rust::xxh3::xxh3_64(raw),
        Some((at, end)) => {
            let mut h = Xxh3::new();
            h.update(&raw[..at]);
            h.update(&raw[end..]);
            h.digest()
        }
    } as i64;
    if value == 0 {
        1
    } else {
        value
    }
}

pub fn finder() -> memmem::Finder<'static> {
    memmem::Finder::new(SENT)
}

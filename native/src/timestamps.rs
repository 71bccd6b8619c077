//! The decoder fast path's timestamps: each value of an Arrow string column read as
//! microseconds since the epoch, in one pass and without a regular expression.
//!
//! A value is taken exactly when the previous pair of checks took it: it matches the shape
//! `^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)$` (ASCII digits) and
//! Arrow's `cast` to `timestamp[us]` reads it (a real calendar day of years 0000-9999, hour
//! < 24, minute < 60, second < 60, zone hour < 24, zone minute < 60). The value is Arrow's:
//! the civil time minus the zone offset, fractional digits scaled to microseconds.
//! `schemas/_fast.py` keeps the regex and cast as the reference (and as the path without this
//! module); `tests/unit/schemas/test_fast_timestamps.py` compares the two.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::{buffer, Owned};

#[inline(always)]
fn digits(s: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in &s[at..at + n] {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days from 1970-01-01 to the proleptic Gregorian date `y-m-d` (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Microseconds since the epoch of one value; None when it is not taken.
pub fn micros(s: &[u8]) -> Option<i64> {
    let n = s.len();
    // 19 bytes of date and time, optionally `.` and 1-6 digits, then `Z` or `+hh:mm`.
    if !(20..=32).contains(&n) {
        return None;
    }
    if s[4] != b'-' || s[7] != b'-' || (s[10] != b'T' && s[10] != b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let year = digits(s, 0, 4)?;
    let month = digits(s, 5, 2)?;
    let day = digits(s, 8, 2)?;
    let hour = digits(s, 11, 2)?;
    let minute = digits(s, 14, 2)?;
    let second = digits(s, 17, 2)?;
    let (zone, end) = if s[n - 1] == b'Z' {
        (0, n - 1)
    } else {
        if n < 25 || s[n - 3] != b':' {
            return None;
        }
        let sign = match s[n - 6] {
            b'+' => -1,
            b'-' => 1,
            _ => return None,
        };
        let zh = digits(s, n - 5, 2)?;
        let zm = digits(s, n - 2, 2)?;
        if zh >= 24 || zm >= 60 {
            return None;
        }
        (sign * (zh * 3600 + zm * 60), n - 6)
    };
    let fraction = match end {
        19 => 0,
        21..=26 if s[19] == b'.' => {
            let k = end - 20;
            digits(s, 20, k)? * 10i64.pow(6 - k as u32)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || day < 1 || hour >= 24 || minute >= 60 || second >= 60 {
        return None;
    }
    let last = match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    if day > last {
        return None;
    }
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second + zone;
    Some(seconds * 1_000_000 + fraction)
}

/// `(micros, taken)` of the string array `(length, offset, validity, offsets, data)` (its
/// pyarrow buffers): an int64 buffer (0 where not taken) and one byte per value (1: taken).
/// Null values are not taken.
#[pyfunction]
#[pyo3(signature = (length, offset, offsets, data, validity=None))]
pub fn rfc3339_micros(
    py: Python<'_>,
    length: usize,
    offset: usize,
    offsets: PyBuffer<i8>,
    data: PyBuffer<i8>,
    validity: Option<PyBuffer<i8>>,
) -> PyResult<(PyObject, PyObject)> {
    let (Some(offsets), Some(data)) = (offsets.as_slice(py), data.as_slice(py)) else {
        return Err(PyTypeError::new_err(
            "offsets and data must be C-contiguous",
        ));
    };
    // ReadOnlyCell<i8> has the layout of u8 (pyarrow buffers have the format `b`).
    let as_bytes = |cells: &[pyo3::buffer::ReadOnlyCell<i8>]| unsafe {
        std::slice::from_raw_parts(cells.as_ptr() as *const u8, cells.len())
    };
    let offsets = as_bytes(offsets);
    let data = as_bytes(data);
    let valid = match &validity {
        Some(v) => {
            Some(as_bytes(v.as_slice(py).ok_or_else(|| {
                PyTypeError::new_err("validity must be C-contiguous")
            })?))
        }
        None => None,
    };
    let end = offset
        .checked_add(length)
        .filter(|&n| n.checked_add(1).and_then(|m| m.checked_mul(4)).is_some())
        .ok_or_else(|| PyValueError::new_err("offset + length overflows"))?;
    if offsets.len() < (end + 1) * 4 || valid.is_some_and(|v| v.len().saturating_mul(8) < end) {
        return Err(PyValueError::new_err("buffers shorter than the array"));
    }
    let at = |i: usize| {
        let b = &offsets[i * 4..i * 4 + 4];
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    };
    let mut values = vec![0i64; length];
    let mut taken = vec![0u8; length];
    for i in 0..length {
        let j = offset + i;
        if valid.is_some_and(|v| v[j / 8] >> (j % 8) & 1 == 0) {
            continue;
        }
        let (s, e) = crate::item_range("value", i, at(j), at(j + 1), data.len())?;
        if let Some(us) = micros(&data[s..e]) {
            values[i] = us;
            taken[i] = 1;
        }
    }
    Ok((
        buffer(py, Owned::I64(values))?,
        buffer(py, Owned::U8(taken))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::micros;

    #[test]
    fn reads_what_arrow_reads() {
        assert_eq!(micros(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(micros(b"1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(micros(b"1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(
            micros(b"2026-11-26 10:00:00.5Z"),
            Some(1_795_687_200_500_000)
        );
        assert_eq!(
            micros(b"2000-02-29T00:00:00.000001Z"),
            Some(951_782_400_000_001)
        );
        assert_eq!(
            micros(b"0000-01-01T00:00:00Z"),
            Some(-62_167_219_200_000_000)
        );
    }

    #[test]
    fn refuses_what_arrow_or_the_shape_refuses() {
        for bad in [
            "1900-02-29T00:00:00Z",
            "2026-11-26T10:00:60Z",
            "2026-11-26T24:00:00Z",
            "2026-11-26T10:00:00.1234567Z",
            "2026-11-26T10:00:00z",
            "2026-11-26t10:00:00Z",
            "2026-11-26T10:00:00",
            "2026-11-26T10:00:00+0100",
            "2026-11-26T10:00:00+24:00",
            "2026-11-26T10:00:00.Z",
            "2026-13-01T10:00:00Z",
            "2026-00-01T10:00:00Z",
            "2026-04-31T10:00:00Z",
        ] {
            assert_eq!(micros(bad.as_bytes()), None, "{bad}");
        }
    }
}

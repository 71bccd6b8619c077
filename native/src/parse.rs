//! The strict one-pass parser: one JSON object per message into column builders.
//!
//! A message is *accepted* only when orjson would read it and the values this parser stores are
//! the ones orjson (plus the exact decoder's conversions) would give. Everything else returns
//! `Err(Dirty)`, and the caller hands the message to the exact decoder. Being unsure is never an
//! error: it only costs the slower path.

use crate::columns::Col;
use crate::schema::{Field, Kind};

/// The message is left to the exact decoder.
#[derive(Debug)]
pub struct Dirty;

pub type R<T> = Result<T, Dirty>;

/// Deeper nesting is left to the exact decoder (orjson's own limit is 1024).
const MAX_DEPTH: u32 = 128;
/// Integer tokens of more digits are left to the exact decoder when skipped (orjson reads them
/// as doubles; from 309 digits they can be infinite, which it refuses).
const MAX_SKIPPED_INT_DIGITS: usize = 300;
/// Doubles above this magnitude are left to the exact decoder: a margin below `f64::MAX`, so
/// that rounding at the overflow edge never decides between a value and orjson's refusal.
const MAX_MAGNITUDE: f64 = 1e308;
/// Integer tokens of more digits in a double field are left to the exact decoder (orjson reads
/// integers beyond 64 bits with its own rounding).
const MAX_FLOAT_INT_DIGITS: usize = 18;

/// Bytes that end a run of plain string bytes: `"`, `\`, controls and non-ASCII.
static STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i == b'"' as usize || i == b'\\' as usize || i >= 0x80;
        i += 1;
    }
    t
};

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes at `s[i..]` (the caller checked `i + 8 <= s.len()`), first byte lowest.
#[inline(always)]
fn load8(s: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(s[i..i + 8].try_into().unwrap())
}

/// Four bytes at `s[i..]` (the caller checked `i + 4 <= s.len()`), first byte lowest.
#[inline(always)]
fn load4(s: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(s[i..i + 4].try_into().unwrap())
}

/// The high bit of each byte of `x` that ends a plain run: `"`, `\`, a control and, when
/// `high`, a non-ASCII byte. The lowest flag is exact (a flag above it may be a borrow's).
#[inline(always)]
fn stops(x: u64, high: bool) -> u64 {
    let control = x.wrapping_sub(0x20 * LO) & !x;
    let q = x ^ (u64::from(b'"') * LO);
    let quote = q.wrapping_sub(LO) & !q;
    let b = x ^ (u64::from(b'\\') * LO);
    let backslash = b.wrapping_sub(LO) & !b;
    let m = control | quote | backslash;
    (if high { m | x } else { m }) & HI
}

/// The first position from `i` of a byte that ends a plain run (as `STRING_STOP`, non-ASCII
/// bytes only when `high`), or `s.len()`.
#[inline(always)]
fn scan(s: &[u8], mut i: usize, high: bool) -> usize {
    while i + 8 <= s.len() {
        let m = stops(load8(s, i), high);
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() {
        let c = s[i];
        if STRING_STOP[c as usize] && (high || c < 0x80) {
            return i;
        }
        i += 1;
    }
    i
}

/// `a == b` without a call for the short names of a schema.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        if n > 16 {
            return a == b;
        }
        load8(a, 0) == load8(b, 0) && load8(a, n - 8) == load8(b, n - 8)
    } else if n >= 4 {
        load4(a, 0) == load4(b, 0) && load4(a, n - 4) == load4(b, n - 4)
    } else {
        a.iter().zip(b).all(|(x, y)| x == y)
    }
}

/// Exact powers of ten as doubles (10^22 is the largest).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

pub struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    pub fn new(s: &'a [u8]) -> Self {
        Parser { s, i: 0 }
    }

    #[inline(always)]
    fn peek(&self) -> R<u8> {
        self.s.get(self.i).copied().ok_or(Dirty)
    }

    #[inline(always)]
    fn ws(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if c > b' ' {
                break;
            }
            if c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline(always)]
    fn expect(&mut self, c: u8) -> R<()> {
        if self.peek()? == c {
            self.i += 1;
            Ok(())
        } else {
            Err(Dirty)
        }
    }

    #[inline(always)]
    fn literal(&mut self, word: &[u8]) -> R<()> {
        let n = word.len();
        let i = self.i;
        let s = self.s;
        let ok = i + n <= s.len()
            && load4(s, i) == load4(word, 0)
            && load4(s, i + n - 4) == load4(word, n - 4);
        if ok {
            self.i += word.len();
            Ok(())
        } else {
            Err(Dirty)
        }
    }

    /// One message: optional whitespace, an object of `fields`, optional whitespace, the end.
    pub fn message(&mut self, fields: &[Field], cols: &mut [Col]) -> R<()> {
        self.ws();
        if self.peek()? != b'{' {
            return Err(Dirty);
        }
        self.object(fields, cols, 1)?;
        self.ws();
        if self.i != self.s.len() {
            return Err(Dirty);
        }
        Ok(())
    }

    /// An object at `s[i] == '{'` into `cols` (one value pushed to each, null when absent).
    fn object(&mut self, fields: &[Field], cols: &mut [Col], depth: u32) -> R<()> {
        if depth > MAX_DEPTH {
            return Err(Dirty);
        }
        self.i += 1;
        let mut seen: u64 = 0;
        let mut hint = 0usize;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                if self.peek()? != b'"' {
                    return Err(Dirty);
                }
                let found = match self.expected_key(fields, hint) {
                    Some(k) => Some(k),
                    None => {
                        let (start, end) = self.key()?;
                        let key = &self.s[start..end];
                        fields.iter().position(|f| same(&f.name, key))
                    }
                };
                self.ws();
                self.expect(b':')?;
                self.ws();
                match found {
                    Some(k) => {
                        let bit = 1u64 << k;
                        if seen & bit != 0 {
                            return Err(Dirty);
                        }
                        seen |= bit;
                        hint = k + 1;
                        self.value(&fields[k].kind, &mut cols[k], depth)?;
                    }
                    None => self.skip(depth)?,
                }
                self.ws();
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.ws();
                    }
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Dirty),
                }
            }
        }
        if seen.count_ones() as usize != fields.len() {
            for (k, col) in cols.iter_mut().enumerate() {
                if seen & (1u64 << k) == 0 {
                    col.push_null();
                }
            }
        }
        Ok(())
    }

    /// The key at `s[i] == '"'` when it is the plain name of `fields[hint]` (the field that
    /// follows the previous one): its index, the key read. Otherwise nothing is read.
    #[inline(always)]
    fn expected_key(&mut self, fields: &[Field], hint: usize) -> Option<usize> {
        let f = fields.get(hint)?;
        let n = f.name.len();
        let start = self.i + 1;
        if !f.plain
            || self.s.get(start + n) != Some(&b'"')
            || !same(&self.s[start..start + n], &f.name)
        {
            return None;
        }
        self.i = start + n + 1;
        Some(hint)
    }

    /// A key at `s[i] == '"'`: its raw bytes' span. Keys with escapes are left to the exact
    /// decoder (a key spelled with escapes may name a field).
    fn key(&mut self) -> R<(usize, usize)> {
        self.i += 1;
        let start = self.i;
        let s = self.s;
        let mut ascii = true;
        loop {
            self.i = scan(s, self.i, ascii);
            let c = *s.get(self.i).ok_or(Dirty)?;
            match c {
                b'"' => break,
                0x80..=0xff => {
                    ascii = false;
                    self.i += 1;
                }
                _ => return Err(Dirty),
            }
        }
        let end = self.i;
        self.i += 1;
        if !ascii && std::str::from_utf8(&s[start..end]).is_err() {
            return Err(Dirty);
        }
        Ok((start, end))
    }

    /// A value of `kind` into `col` (JSON `null` is a null of any kind).
    fn value(&mut self, kind: &Kind, col: &mut Col, depth: u32) -> R<()> {
        let c = self.peek()?;
        if c == b'n' {
            self.literal(b"null")?;
            col.push_null();
            return Ok(());
        }
        match (kind, col) {
            (
                Kind::Utf8,
                Col::Utf8 {
                    valid,
                    offsets,
                    data,
                },
            ) => {
                if c != b'"' {
                    return Err(Dirty);
                }
                self.string(Some(data))?;
                if data.len() > i32::MAX as usize {
                    return Err(Dirty);
                }
                offsets.push(data.len() as i32);
                valid.push(true);
            }
            (Kind::Int64, Col::Int64 { valid, values }) => {
                values.push(self.int64()?);
                valid.push(true);
            }
            (Kind::Float64, Col::Float64 { valid, values }) => {
                values.push(self.float64()?);
                valid.push(true);
            }
            (Kind::Bool, Col::Bool { valid, values }) => {
                match c {
                    b't' => {
                        self.literal(b"true")?;
                        values.push(true);
                    }
                    b'f' => {
                        self.literal(b"false")?;
                        values.push(false);
                    }
                    _ => return Err(Dirty),
                }
                valid.push(true);
            }
            (
                Kind::Struct(fields),
                Col::Struct {
                    valid,
                    children,
                    len,
                },
            ) => {
                if c != b'{' {
                    return Err(Dirty);
                }
                self.object(fields, children, depth + 1)?;
                valid.push(true);
                *len += 1;
            }
            (
                Kind::List(item),
                Col::List {
                    valid,
                    offsets,
                    child,
                },
            ) => {
                if c != b'[' {
                    return Err(Dirty);
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(Dirty);
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                } else {
                    loop {
                        self.value(&item.kind, child, depth + 1)?;
                        self.ws();
                        match self.peek()? {
                            b',' => {
                                self.i += 1;
                                self.ws();
                            }
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(Dirty),
                        }
                    }
                }
                let n = child.len();
                if n > i32::MAX as usize {
                    return Err(Dirty);
                }
                offsets.push(n as i32);
                valid.push(true);
            }
            _ => return Err(Dirty),
        }
        Ok(())
    }

    /// A number token's span: (start, end, integer form, digits before any fraction).
    #[inline(always)]
    fn number(&mut self) -> R<(usize, usize, bool, usize)> {
        let s = self.s;
        let start = self.i;
        if s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let int_start = self.i;
        match s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.i += 1;
                while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
            }
            _ => return Err(Dirty),
        }
        let digits = self.i - int_start;
        let mut integer = true;
        if s.get(self.i) == Some(&b'.') {
            integer = false;
            self.i += 1;
            if !matches!(s.get(self.i), Some(b'0'..=b'9')) {
                return Err(Dirty);
            }
            while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        if matches!(s.get(self.i), Some(b'e' | b'E')) {
            integer = false;
            self.i += 1;
            if matches!(s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if !matches!(s.get(self.i), Some(b'0'..=b'9')) {
                return Err(Dirty);
            }
            while matches!(s.get(self.i), Some(b'0'..=b'9')) {
                self.i += 1;
            }
        }
        Ok((start, self.i, integer, digits))
    }

    /// An integer token within int64 (orjson: an int; a fraction or exponent: a float, which
    /// an integer field refuses).
    fn int64(&mut self) -> R<i64> {
        let (start, end, integer, _) = self.number()?;
        if !integer {
            return Err(Dirty);
        }
        let tok = &self.s[start..end];
        let (neg, body) = match tok.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, tok),
        };
        let mut acc: u64 = 0;
        for &d in body {
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_add(u64::from(d - b'0')))
                .ok_or(Dirty)?;
        }
        if neg {
            if acc > (i64::MAX as u64) + 1 {
                return Err(Dirty);
            }
            Ok((acc as i64).wrapping_neg())
        } else {
            i64::try_from(acc).map_err(|_| Dirty)
        }
    }

    /// A number as a double, as orjson + ``float()`` give it: integer tokens are exact integers
    /// rounded once (``-0`` is the integer 0), other tokens correctly rounded.
    fn float64(&mut self) -> R<f64> {
        let (start, end, integer, digits) = self.number()?;
        let tok = &self.s[start..end];
        if integer {
            if digits > MAX_FLOAT_INT_DIGITS {
                return Err(Dirty);
            }
            let (neg, body) = match tok.split_first() {
                Some((b'-', rest)) => (true, rest),
                _ => (false, tok),
            };
            let mut acc: u64 = 0;
            for &d in body {
                acc = acc * 10 + u64::from(d - b'0');
            }
            let v = acc as f64;
            return Ok(if neg && acc != 0 { -v } else { v });
        }
        match decimal(tok) {
            Some(v) => Ok(v),
            None => finite(tok),
        }
    }

    /// A string at `s[i] == '"'`, decoded into `out` when given, validated either way.
    fn string(&mut self, mut out: Option<&mut Vec<u8>>) -> R<()> {
        let s = self.s;
        self.i += 1;
        let mut run = self.i;
        let mut ascii = true;
        loop {
            self.i = scan(s, self.i, ascii);
            let c = *s.get(self.i).ok_or(Dirty)?;
            match c {
                b'"' => {
                    self.flush(&mut out, run, &mut ascii)?;
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    self.flush(&mut out, run, &mut ascii)?;
                    self.escape(&mut out)?;
                    run = self.i;
                }
                0x80..=0xff => {
                    ascii = false;
                    self.i += 1;
                }
                _ => return Err(Dirty),
            }
        }
        Ok(())
    }

    /// Copies (or only validates) the plain run `s[run..i]`. A run with non-ASCII bytes must be
    /// valid UTF-8 by itself: escapes always decode to whole characters.
    #[inline(always)]
    fn flush(&self, out: &mut Option<&mut Vec<u8>>, run: usize, ascii: &mut bool) -> R<()> {
        let chunk = &self.s[run..self.i];
        if !*ascii {
            if std::str::from_utf8(chunk).is_err() {
                return Err(Dirty);
            }
            *ascii = true;
        }
        if let Some(o) = out.as_deref_mut() {
            o.extend_from_slice(chunk);
        }
        Ok(())
    }

    /// An escape at `s[i] == '\\'`. Lone surrogates are refused (as orjson does).
    fn escape(&mut self, out: &mut Option<&mut Vec<u8>>) -> R<()> {
        let c = *self.s.get(self.i + 1).ok_or(Dirty)?;
        self.i += 2;
        let byte = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = match hi {
                    0xD800..=0xDBFF => {
                        if self.s.get(self.i) != Some(&b'\\')
                            || self.s.get(self.i + 1) != Some(&b'u')
                        {
                            return Err(Dirty);
                        }
                        self.i += 2;
                        let lo = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&lo) {
                            return Err(Dirty);
                        }
                        0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(Dirty),
                    _ => hi,
                };
                let ch = char::from_u32(code).ok_or(Dirty)?;
                if let Some(o) = out.as_deref_mut() {
                    let mut buf = [0u8; 4];
                    o.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                return Ok(());
            }
            _ => return Err(Dirty),
        };
        if let Some(o) = out.as_deref_mut() {
            o.push(byte);
        }
        Ok(())
    }

    fn hex4(&mut self) -> R<u32> {
        let digits = self.s.get(self.i..self.i + 4).ok_or(Dirty)?;
        let mut v = 0u32;
        for &d in digits {
            let x = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(Dirty),
            };
            v = v * 16 + u32::from(x);
        }
        self.i += 4;
        Ok(v)
    }

    /// Skips one value of any type, validating it as orjson would (a field not in the schema
    /// must still be valid JSON for the message to be accepted).
    fn skip(&mut self, depth: u32) -> R<()> {
        match self.peek()? {
            b'"' => self.string(None),
            b'{' => {
                if depth + 1 > MAX_DEPTH {
                    return Err(Dirty);
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    if self.peek()? != b'"' {
                        return Err(Dirty);
                    }
                    self.string(None)?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.ws();
                        }
                        b'}' => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(Dirty),
                    }
                }
            }
            b'[' => {
                if depth + 1 > MAX_DEPTH {
                    return Err(Dirty);
                }
                self.i += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.ws();
                        }
                        b']' => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(Dirty),
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => {
                let (start, end, integer, digits) = self.number()?;
                if integer {
                    if digits > MAX_SKIPPED_INT_DIGITS {
                        return Err(Dirty);
                    }
                } else {
                    finite(&self.s[start..end])?;
                }
                Ok(())
            }
            _ => Err(Dirty),
        }
    }
}

/// A non-integer number token (checked by `number`) as a double when it is exact by one
/// operation: at most 19 digits whose integer is at most 2^53, times or divided by a power
/// of ten of at most 22 (both exact, so one correctly rounded product or quotient: the bits
/// `str::parse` gives). None for any other token (then `finite`).
#[inline]
fn decimal(tok: &[u8]) -> Option<f64> {
    let (neg, body) = match tok.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, tok),
    };
    let mut w: u64 = 0;
    let mut digits = 0u32;
    let mut scale = 0i32;
    let mut i = 0;
    let mut fraction = false;
    while i < body.len() {
        let c = body[i];
        if c.is_ascii_digit() {
            if digits == 19 {
                return None;
            }
            w = w * 10 + u64::from(c - b'0');
            digits += 1;
            scale += i32::from(fraction);
        } else if c == b'.' {
            fraction = true;
        } else {
            break;
        }
        i += 1;
    }
    let mut exp = 0i32;
    if i < body.len() {
        // 'e' or 'E', an optional sign, then at least one digit (checked by `number`).
        i += 1;
        let negative = body[i] == b'-';
        if body[i] == b'-' || body[i] == b'+' {
            i += 1;
        }
        let e = &body[i..];
        if e.len() > 4 {
            return None;
        }
        for &c in e {
            exp = exp * 10 + i32::from(c - b'0');
        }
        if negative {
            exp = -exp;
        }
    }
    let e10 = exp - scale;
    if w > 1 << 53 || !(-22..=22).contains(&e10) {
        return None;
    }
    let v = if e10 >= 0 {
        w as f64 * POW10[e10 as usize]
    } else {
        w as f64 / POW10[(-e10) as usize]
    };
    Some(if neg { -v } else { v })
}

/// A non-integer number token, correctly rounded; refused beyond the overflow margin.
#[inline]
fn finite(tok: &[u8]) -> R<f64> {
    // The token is ASCII: digits, sign, '.', 'e'/'E' (checked by `number`).
    let text = unsafe { std::str::from_utf8_unchecked(tok) };
    let v: f64 = text.parse().map_err(|_| Dirty)?;
    if v.is_finite() && v.abs() <= MAX_MAGNITUDE {
        Ok(v)
    } else {
        Err(Dirty)
    }
}

#[cfg(test)]
#[path = "parse_ref.rs"]
mod reference;

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

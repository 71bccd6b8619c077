//! The parser against its previous implementation (`parse_ref.rs`, the parser as it was before
//! the word-at-a-time scans, the key fast path and the exact decimal fast path), message by
//! message on hostile batches: the same messages kept and set aside, the same column buffers
//! (validity bits, offsets, bytes, the bits of every double) after every batch.

use super::reference;
use super::{decimal, Parser};
use crate::columns::Col;
use crate::schema::{Field, Kind};

/// xorshift64*: a fixed, dependency-free stream of cases (the seed names a failing case).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn f(name: &str, kind: Kind) -> Field {
    Field::new(name.as_bytes().to_vec(), kind)
}

fn reading() -> Kind {
    Kind::Struct(vec![
        f("tag", Kind::Utf8),
        f("value", Kind::Float64),
        f("unit", Kind::Utf8),
        f("quality", Kind::Utf8),
    ])
}

/// The telemetry parse schema (`schemas/events/telemetry.py`).
fn telemetry() -> Vec<Field> {
    let mut fields: Vec<Field> = [
        "event_id",
        "schema_version",
        "kind",
        "tenant",
        "plant",
        "line",
        "machine",
        "event_time",
        "sent_time",
    ]
    .iter()
    .map(|&n| {
        f(
            n,
            if n == "schema_version" {
                Kind::Int64
            } else {
                Kind::Utf8
            },
        )
    })
    .collect();
    fields.push(f("reading", reading()));
    fields.push(f("readings", Kind::List(Box::new(f("item", reading())))));
    fields
}

/// Every kind, names of every length class (empty, 1-3, 4-7, 8-16, longer), names that are
/// prefixes of others, non-ASCII names, and names a key can only match escaped (or never).
fn everything() -> Vec<Field> {
    vec![
        f("s", Kind::Utf8),
        f("i", Kind::Int64),
        f("d", Kind::Float64),
        f("b", Kind::Bool),
        f("", Kind::Utf8),
        f("tag", Kind::Utf8),
        f("tags", Kind::List(Box::new(f("item", Kind::Utf8)))),
        f("value", Kind::Float64),
        f("values", Kind::List(Box::new(f("x", Kind::Float64)))),
        f("a_long_field_name_beyond_16", Kind::Int64),
        f("a_long_field_name_beyond_17", Kind::Float64),
        f("grüße", Kind::Utf8),
        f("q\"uote", Kind::Utf8),
        f("back\\slash", Kind::Int64),
        f("tab\tname", Kind::Bool),
        f(
            "nested",
            Kind::Struct(vec![
                f("s", Kind::Utf8),
                f("d", Kind::Float64),
                f("inner", Kind::Struct(vec![f("i", Kind::Int64)])),
            ]),
        ),
        f(
            "matrix",
            Kind::List(Box::new(f(
                "row",
                Kind::List(Box::new(f("x", Kind::Float64))),
            ))),
        ),
        f("reading", reading()),
        f("readings", Kind::List(Box::new(f("item", reading())))),
    ]
}

/// Every buffer of a column, in one byte string.
fn dump(col: &Col, out: &mut Vec<u8>) {
    fn bits(b: &crate::columns::Bits, out: &mut Vec<u8>) {
        out.extend_from_slice(&b.len.to_le_bytes());
        out.extend_from_slice(&b.bytes);
    }
    match col {
        Col::Utf8 {
            valid,
            offsets,
            data,
        } => {
            out.push(1);
            bits(valid, out);
            offsets
                .iter()
                .for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
            out.extend_from_slice(&data.len().to_le_bytes());
            out.extend_from_slice(data);
        }
        Col::Int64 { valid, values } => {
            out.push(2);
            bits(valid, out);
            values
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes()));
        }
        Col::Float64 { valid, values } => {
            out.push(3);
            bits(valid, out);
            values
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_bits().to_le_bytes()));
        }
        Col::Bool { valid, values } => {
            out.push(4);
            bits(valid, out);
            bits(values, out);
        }
        Col::Struct {
            valid,
            children,
            len,
        } => {
            out.push(5);
            bits(valid, out);
            out.extend_from_slice(&len.to_le_bytes());
            children.iter().for_each(|c| dump(c, out));
        }
        Col::List {
            valid,
            offsets,
            child,
        } => {
            out.push(6);
            bits(valid, out);
            offsets
                .iter()
                .for_each(|o| out.extend_from_slice(&o.to_le_bytes()));
            dump(child, out);
        }
    }
}

/// A batch as `parse_all` reads it: which messages are kept, and every column's buffers.
fn run(fields: &[Field], batch: &[Vec<u8>], new: bool) -> (Vec<bool>, Vec<u8>) {
    let mut cols: Vec<Col> = fields.iter().map(Col::new).collect();
    let mut kept = Vec::new();
    let mut rows = 0;
    for msg in batch {
        let ok = if new {
            Parser::new(msg).message(fields, &mut cols).is_ok()
        } else {
            reference::Parser::new(msg)
                .message(fields, &mut cols)
                .is_ok()
        };
        if ok {
            rows += 1;
        } else {
            cols.iter_mut().for_each(|c| c.truncate(rows));
        }
        kept.push(ok);
    }
    let mut out = Vec::new();
    cols.iter().for_each(|c| dump(c, &mut out));
    (kept, out)
}

/// Both parsers on `batch`: same decisions, same buffers (the differing message is named).
fn check(fields: &[Field], batch: &[Vec<u8>], seed: u64) -> usize {
    let (kept_new, cols_new) = run(fields, batch, true);
    let (kept_old, cols_old) = run(fields, batch, false);
    for (k, msg) in batch.iter().enumerate() {
        assert_eq!(
            kept_new[k],
            kept_old[k],
            "seed {seed}: message {k} kept by one parser only (new: {}): {:?}",
            kept_new[k],
            String::from_utf8_lossy(msg)
        );
    }
    if cols_new != cols_old {
        // Find the first message whose row differs.
        for end in 1..=batch.len() {
            let a = run(fields, &batch[..end], true).1;
            let b = run(fields, &batch[..end], false).1;
            assert_eq!(
                a,
                b,
                "seed {seed}: columns differ after message {}: {:?}",
                end - 1,
                String::from_utf8_lossy(&batch[end - 1])
            );
        }
        panic!("seed {seed}: columns differ");
    }
    kept_new.iter().filter(|&&k| k).count()
}

const WS: &[&[u8]] = &[
    b"",
    b"",
    b"",
    b" ",
    b"\n",
    b"\r\n\t ",
    b"\x0b",
    b"\x0c",
    b"\xc2\xa0",
];

fn ws(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.chance(15) {
        out.extend_from_slice(rng.pick(WS));
    }
}

/// A string's body: plain runs of every length, escapes of every form (good and bad
/// surrogates, bad hex), raw controls, valid and invalid UTF-8.
fn string_body(rng: &mut Rng, out: &mut Vec<u8>) {
    let pieces = rng.below(6);
    for _ in 0..pieces {
        match rng.below(24) {
            0..=9 => {
                let n = rng.below(40);
                for _ in 0..n {
                    out.push(b"abcxyz0189-_:. T/Z%"[rng.below(19)]);
                }
            }
            10 => out.extend_from_slice(rng.pick(&[
                &b"\\\""[..],
                b"\\\\",
                b"\\/",
                b"\\b",
                b"\\f",
                b"\\n",
                b"\\r",
                b"\\t",
                b"\\x",
                b"\\",
                b"\\'",
                b"\\0",
            ])),
            11 => out.extend_from_slice(rng.pick(&[
                &b"\\u0041"[..],
                b"\\u00e9",
                b"\\u00E9",
                b"\\u20ac",
                b"\\u0000",
                b"\\u001f",
                b"\\uffff",
                b"\\ud83d\\ude00",
                b"\\uD83D\\uDE00",
                b"\\ud83d",
                b"\\ude00",
                b"\\ude00\\ud83d",
                b"\\ud83d\\u0041",
                b"\\ud83d\\n",
                b"\\ud83dx",
                b"\\u12",
                b"\\u12g4",
                b"\\uDBFF\\uDFFF",
                b"\\ud800\\udc00",
                b"\\u",
            ])),
            12 => out.extend_from_slice(
                rng.pick(&[
                    &"é"[..],
                    "€",
                    "😀",
                    "grüße",
                    "日本語",
                    "\u{7f}",
                    "\u{10ffff}",
                ])
                .as_bytes(),
            ),
            13 => out.extend_from_slice(rng.pick(&[
                &b"\xc3"[..],
                b"\xc3\x28",
                b"\xe2\x82",
                b"\xed\xa0\x80",
                b"\xc0\xaf",
                b"\xe0\x80\xaf",
                b"\xf4\x90\x80\x80",
                b"\xf8\x88\x80\x80\x80",
                b"\x80",
                b"\xbf",
                b"\xff",
                b"\xfe",
            ])),
            14 => out.push(rng.below(0x20) as u8),
            15 => out.push(0x7f),
            16 => out.push(b'"'),
            _ => {
                let n = rng.below(12);
                for _ in 0..n {
                    out.push(b'a' + rng.below(26) as u8);
                }
            }
        }
    }
}

fn string(rng: &mut Rng, out: &mut Vec<u8>) {
    out.push(b'"');
    string_body(rng, out);
    out.push(b'"');
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e0",
    "-0e-0",
    "0E+5",
    "1",
    "-1",
    "01",
    "-01",
    "00",
    "1.",
    ".5",
    "-.5",
    "1e",
    "1e+",
    "1e-",
    "+1",
    "--1",
    "0x1",
    "1.5e3",
    "1.5E-3",
    "NaN",
    "Infinity",
    "-Infinity",
    "9007199254740992",
    "9007199254740993",
    "9007199254740992.0",
    "9007199254740993.0",
    "9007199254740993e0",
    "900719925474099.3",
    "9007199254740992e22",
    "9007199254740992e-22",
    "9007199254740993e-22",
    "1e22",
    "1e23",
    "1e-22",
    "1e-23",
    "1.0e22",
    "10e21",
    "0.1e23",
    "123456789012345678",
    "1234567890123456789",
    "12345678901234567890",
    "123456789012345678901234",
    "1234567890123456789.0",
    "0.1234567890123456789",
    "0.12345678901234567890",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "1e308",
    "1e309",
    "-1e308",
    "1.0000000000000001e308",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "4.9e-324",
    "2.4e-324",
    "2.2250738585072014e-308",
    "1e-400",
    "1e00000000000000000001",
    "1e0000022",
    "1e00022",
    "1e0022",
    "0.000000000000000000000000001",
    "10887.5123",
    "35.7081",
    "-273.15",
    "2.832",
    "0.30000000000000004",
    "0.1",
    "0.2",
    "0.3",
    "3.141592653589793238462643383279",
    "5e-324",
    "2.5",
    "-2.5e-5",
];

fn number(rng: &mut Rng, out: &mut Vec<u8>) {
    if rng.chance(40) {
        out.extend_from_slice(rng.pick(NUMBERS).as_bytes());
        return;
    }
    // A random token of the JSON number grammar, sometimes off it.
    if rng.chance(30) {
        out.push(b'-');
    }
    let int = rng.below(22);
    if int == 0 || rng.chance(10) {
        out.push(b'0');
    }
    for k in 0..int {
        out.push(if k == 0 {
            b'1' + rng.below(9) as u8
        } else {
            b'0' + rng.below(10) as u8
        });
    }
    if rng.chance(60) {
        out.push(b'.');
        for _ in 0..rng.below(22) {
            out.push(b'0' + rng.below(10) as u8);
        }
    }
    if rng.chance(30) {
        out.push(rng.pick(b"eE"));
        if rng.chance(60) {
            out.push(rng.pick(b"+-"));
        }
        for _ in 0..rng.below(6) {
            out.push(b'0' + rng.below(10) as u8);
        }
    }
}

/// Any JSON value (and some non-values), `depth` levels at most.
fn any(rng: &mut Rng, out: &mut Vec<u8>, depth: usize) {
    match rng.below(if depth == 0 { 7 } else { 9 }) {
        0 => string(rng, out),
        1 | 2 => number(rng, out),
        3 => out.extend_from_slice(rng.pick(&[&b"true"[..], b"false", b"tru", b"nul", b"fals"])),
        4 | 5 => out.extend_from_slice(rng.pick(&[&b"null"[..], b"null", b"nulll", b"NULL"])),
        6 => out.extend_from_slice(rng.pick(&[&b"[]"[..], b"{}", b"[ ]", b"{ }", b"x", b""])),
        7 => {
            out.push(b'[');
            let n = rng.below(4);
            for k in 0..n {
                if k > 0 {
                    out.push(b',');
                }
                ws(rng, out);
                any(rng, out, depth - 1);
                ws(rng, out);
            }
            if rng.chance(3) {
                out.push(b',');
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            let n = rng.below(4);
            for k in 0..n {
                if k > 0 {
                    out.push(b',');
                }
                ws(rng, out);
                string(rng, out);
                ws(rng, out);
                out.push(b':');
                ws(rng, out);
                any(rng, out, depth - 1);
            }
            out.push(b'}');
        }
    }
}

/// A key for `fields`: a field's name (often the next one's), spelled with an escape, or
/// another key.
fn key(rng: &mut Rng, fields: &[Field], next: usize, out: &mut Vec<u8>) {
    match rng.below(10) {
        0..=5 if next < fields.len() => {
            out.push(b'"');
            out.extend_from_slice(&fields[next].name);
            out.push(b'"');
        }
        0..=6 => {
            out.push(b'"');
            out.extend_from_slice(&&fields[rng.below(fields.len())].name);
            out.push(b'"');
        }
        7 => {
            // A name with one byte escaped, cut short, extended, or with a byte changed.
            let name = &fields[rng.below(fields.len())].name.clone();
            out.push(b'"');
            if name.is_empty() {
                out.extend_from_slice(b"\\u0041");
            } else {
                let k = rng.below(name.len());
                match rng.below(4) {
                    0 => {
                        out.extend_from_slice(&name[..k]);
                        out.extend_from_slice(format!("\\u{:04x}", name[k]).as_bytes());
                        out.extend_from_slice(&name[k + 1..]);
                    }
                    1 => out.extend_from_slice(&name[..k]),
                    2 => {
                        out.extend_from_slice(&name);
                        out.push(b's');
                    }
                    _ => {
                        out.extend_from_slice(&name);
                        let at = out.len() - name.len() + k;
                        out[at] ^= 1 << rng.below(8);
                    }
                }
            }
            out.push(b'"');
        }
        _ => string(rng, out),
    }
}

/// A value for a field of `kind`: mostly of its type, sometimes of any.
fn value(rng: &mut Rng, kind: &Kind, out: &mut Vec<u8>, depth: usize) {
    if rng.chance(8) || depth == 0 {
        any(rng, out, depth.min(2));
        return;
    }
    match kind {
        Kind::Utf8 => string(rng, out),
        Kind::Int64 | Kind::Float64 => number(rng, out),
        Kind::Bool => out.extend_from_slice(rng.pick(&[&b"true"[..], b"false"])),
        Kind::Struct(fields) => object(rng, fields, out, depth - 1),
        Kind::List(item) => {
            out.push(b'[');
            ws(rng, out);
            let n = rng.below(6);
            for k in 0..n {
                if k > 0 {
                    ws(rng, out);
                    out.push(b',');
                    ws(rng, out);
                }
                value(rng, &item.kind, out, depth - 1);
            }
            ws(rng, out);
            out.push(b']');
        }
    }
}

fn object(rng: &mut Rng, fields: &[Field], out: &mut Vec<u8>, depth: usize) {
    out.push(b'{');
    ws(rng, out);
    let n = rng.below(fields.len() + 3);
    let mut next = rng.below(3);
    for k in 0..n {
        if k > 0 {
            ws(rng, out);
            out.push(b',');
            ws(rng, out);
        }
        let start = out.len();
        key(rng, fields, next, out);
        let name = &out[start + 1..out.len() - 1];
        let field = fields.iter().position(|f| f.name == name);
        ws(rng, out);
        out.push(b':');
        ws(rng, out);
        match field {
            Some(i) => {
                value(rng, &fields[i].kind, out, depth);
                next = i + 1;
            }
            None => any(rng, out, depth.min(3)),
        }
    }
    ws(rng, out);
    out.push(b'}');
}

/// A clean telemetry event like the producers' (orjson: no spaces).
fn event(rng: &mut Rng, out: &mut Vec<u8>) {
    out.extend_from_slice(
        format!(
            "{{\"event_id\":\"{:032x}0000\",\"schema_version\":1,\"kind\":\"telemetry\",\
             \"tenant\":\"northwind-auto\",\"plant\":\"stuttgart\",\"line\":\"block-l1\",\
             \"machine\":\"cnc-{}\",\"event_time\":\"2026-12-02T17:09:25.000000Z\",\
             \"sent_time\":\"2026-12-02T17:09:25.{:06}Z\"",
            (u128::from(rng.next()) << 64) | u128::from(rng.next()),
            rng.below(1000),
            rng.below(1_000_000)
        )
        .as_bytes(),
    );
    let reading = |rng: &mut Rng, out: &mut Vec<u8>| {
        out.extend_from_slice(b"{\"tag\":\"spindle_temp\",\"value\":");
        number(rng, out);
        out.extend_from_slice(b",\"unit\":\"degC\",\"quality\":\"GOOD\"}");
    };
    if rng.chance(20) {
        out.extend_from_slice(b",\"reading\":");
        reading(rng, out);
    } else {
        out.extend_from_slice(b",\"readings\":[");
        for k in 0..1 + rng.below(6) {
            if k > 0 {
                out.push(b',');
            }
            reading(rng, out);
        }
        out.push(b']');
    }
    out.push(b'}');
}

/// Damage: truncation, a byte inserted, removed, replaced or flipped, a span repeated.
fn mutate(rng: &mut Rng, msg: &mut Vec<u8>) {
    if msg.is_empty() {
        return;
    }
    let k = rng.below(msg.len());
    match rng.below(7) {
        0 => msg.truncate(k),
        1 => msg.insert(k, rng.pick(b"\"\\{}[]:, \n0-.e\x00\x1f\x80\xc3\xff")),
        2 => {
            msg.remove(k);
        }
        3 => msg[k] = rng.pick(b"\"\\{}[]:, 0-.eEnt\x00\x80\xc3"),
        4 => msg[k] ^= 1 << rng.below(8),
        5 => {
            let end = (k + 1 + rng.below(20)).min(msg.len());
            let span = msg[k..end].to_vec();
            msg.splice(k..k, span);
        }
        _ => {
            let tail: &[u8] = rng.pick(&[&b" "[..], b"\n", b"{}", b"x", b"\x00", b"\xef\xbb\xbf"]);
            if rng.chance(50) {
                msg.extend_from_slice(tail);
            } else {
                msg.splice(0..0, tail.iter().copied());
            }
        }
    }
}

fn batch(rng: &mut Rng, fields: &[Field], telemetry: bool) -> Vec<Vec<u8>> {
    let n = 1 + rng.below(40);
    (0..n)
        .map(|_| {
            let mut msg = Vec::new();
            ws(rng, &mut msg);
            if telemetry && rng.chance(60) {
                event(rng, &mut msg);
            } else {
                object(rng, fields, &mut msg, 4);
            }
            ws(rng, &mut msg);
            if rng.chance(35) {
                for _ in 0..1 + rng.below(3) {
                    mutate(rng, &mut msg);
                }
            }
            msg
        })
        .collect()
}

#[test]
fn hostile_batches_parse_as_before() {
    let schemas = [(telemetry(), true), (everything(), false)];
    let (mut messages, mut kept) = (0, 0);
    for seed in 1..=6_000u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let (fields, tele) = &schemas[(seed % 2) as usize];
        let b = batch(&mut rng, fields, *tele);
        messages += b.len();
        kept += check(fields, &b, seed);
    }
    // Both outcomes are exercised in number.
    assert!(
        kept > messages / 10 && kept < messages * 9 / 10,
        "{kept} of {messages}"
    );
}

#[test]
fn strings_of_every_length_and_position_parse_as_before() {
    // Every stop byte at every offset of runs up to 40 bytes (the word scan's edges), in
    // values and keys, with the message ending right after or well after the string.
    let fields = everything();
    let stops: &[&[u8]] = &[
        b"\"",
        b"\\n",
        b"\\u00e9",
        b"\x00",
        b"\x1f",
        b"\x7f",
        b"\xc3\xa9",
        b"\xc3",
        b"\xff",
        b"\\",
        b" ",
        b"\x20\x21",
    ];
    let mut batch = Vec::new();
    for len in 0..40 {
        for pos in 0..=len {
            for stop in stops {
                let mut body = vec![b'k'; len];
                body.splice(pos..pos, stop.iter().copied());
                let mut value = b"{\"s\":\"".to_vec();
                value.extend_from_slice(&body);
                value.extend_from_slice(b"\"}");
                batch.push(value.clone());
                value.truncate(value.len() - 1);
                batch.push(value);
                let mut unknown = b"{\"x\":\"".to_vec();
                unknown.extend_from_slice(&body);
                unknown.extend_from_slice(b"\",\"i\":1}");
                batch.push(unknown);
                let mut k = b"{\"".to_vec();
                k.extend_from_slice(&body);
                k.extend_from_slice(b"\":1}");
                batch.push(k);
            }
        }
    }
    for chunk in batch.chunks(500) {
        check(&fields, chunk, 0);
    }
}

#[test]
fn keys_near_the_field_names_parse_as_before() {
    // Each name, each name with one byte changed, cut or extended, at each position.
    let fields = everything();
    let mut batch = Vec::new();
    for f in &fields {
        let n = &f.name;
        let mut variants = vec![n.clone(), [n.as_slice(), b"x"].concat()];
        for k in 0..n.len() {
            variants.push(n[..k].to_vec());
            let mut v = n.clone();
            v[k] ^= 0x20;
            variants.push(v);
        }
        for v in variants {
            for value in [&b"null"[..], b"1", b"\"x\"", b"[]", b"{}", b"true"] {
                let mut m = b"{\"".to_vec();
                m.extend_from_slice(&v);
                m.extend_from_slice(b"\":");
                m.extend_from_slice(value);
                m.push(b'}');
                batch.push(m);
            }
        }
    }
    check(&fields, &batch, 0);
    check(&telemetry(), &batch, 0);
}

#[test]
fn depth_at_the_limit_parses_as_before() {
    let fields = everything();
    let mut batch = Vec::new();
    for depth in 120..135 {
        for open in [b'[', b'{'] {
            let mut m = b"{\"x\":".to_vec();
            for _ in 0..depth {
                if open == b'[' {
                    m.push(b'[');
                } else {
                    m.extend_from_slice(b"{\"a\":");
                }
            }
            m.push(b'1');
            for _ in 0..depth {
                m.push(if open == b'[' { b']' } else { b'}' });
            }
            m.push(b'}');
            batch.push(m);
        }
        let mut m = b"{\"matrix\":".to_vec();
        m.extend(std::iter::repeat_n(b'[', depth));
        m.extend(std::iter::repeat_n(b']', depth));
        m.push(b'}');
        batch.push(m);
    }
    check(&fields, &batch, 0);
}

/// The decimal fast path gives `str::parse`'s bits whenever it answers, on random tokens of
/// the grammar around its limits (19 digits, 2^53, 10^±22).
#[test]
fn decimal_fast_path_is_correctly_rounded() {
    let mut rng = Rng(0x5DEE_CE66_D1CE_5EED);
    let mut answered = 0;
    for _ in 0..2_000_000 {
        let mut tok = Vec::new();
        if rng.chance(50) {
            tok.push(b'-');
        }
        let digits = 1 + rng.below(20);
        let dot = rng.below(digits + 1);
        for k in 0..digits {
            if k == dot && k > 0 {
                tok.push(b'.');
            }
            let lead_zero_ok = k > 0 || digits == 1 || dot == 1;
            tok.push(if lead_zero_ok && rng.chance(if k < 3 { 30 } else { 10 }) {
                b'0'
            } else if k == 0 {
                b'1' + rng.below(9) as u8
            } else {
                b'0' + rng.below(10) as u8
            });
        }
        if rng.chance(40) {
            tok.push(rng.pick(b"eE"));
            if rng.chance(60) {
                tok.push(rng.pick(b"+-"));
            }
            let e = rng.below(30);
            tok.extend_from_slice(e.to_string().as_bytes());
        }
        if tok.iter().all(|c| c.is_ascii_digit() || *c == b'-') {
            tok.extend_from_slice(b".5");
        }
        let text = std::str::from_utf8(&tok).unwrap();
        if let Some(v) = decimal(&tok) {
            answered += 1;
            let want: f64 = text.parse().unwrap();
            assert_eq!(v.to_bits(), want.to_bits(), "{text}");
        }
    }
    assert!(answered > 500_000, "{answered}");
    for tok in [
        "9007199254740993.0",
        "1e23",
        "1e-23",
        "12345678901234567890.5",
    ] {
        assert_eq!(decimal(tok.as_bytes()), None, "{tok}");
    }
    for (tok, want) in [("-0.0", -0.0f64), ("0.0e5", 0.0), ("2.832", 2.832)] {
        assert_eq!(
            decimal(tok.as_bytes()).unwrap().to_bits(),
            want.to_bits(),
            "{tok}"
        );
    }
}

//! Kafka record batches (message format v2, magic 2) straight into Arrow-style columns.
//!
//! One partition's fetched bytes (a sequence of record batches, the last one possibly cut short
//! by the broker's fetch size limit) become the offsets, timestamps, keys and values of the
//! records a consumer would be handed, with the batch-level rules of aiokafka's
//! `PartitionRecords._unpack_records` (read_committed, control batches, records below the fetch
//! offset, `next_fetch_offset`). Batches compressed with none or LZ4 are decoded here; any other
//! codec or an older message format gives `Unsupported` and the caller decodes the fetch with
//! aiokafka instead. Every length is checked against the bytes it points into: hostile bytes give
//! `Corrupt`, never a panic or a read out of bounds.

use std::io::Read;

/// Bytes before a batch's `batchLength` field ends (baseOffset + batchLength).
const LOG_OVERHEAD: usize = 12;
/// Size of a v2 batch header, up to and including the records count.
const HEADER: usize = 61;
/// Where the CRC-covered part of a batch starts (attributes).
const CRC_START: usize = 21;

const CODEC_NONE: i16 = 0;
const CODEC_LZ4: i16 = 3;

pub enum Error {
    /// The bytes are not a valid record batch: `offset` is the batch's base offset (or the
    /// fetch offset when the batch is too broken to have one).
    Corrupt { offset: i64, what: String },
    /// A batch this decoder does not read (another codec or message format).
    Unsupported { offset: i64, what: String },
}

fn corrupt(offset: i64, what: impl Into<String>) -> Error {
    Error::Corrupt {
        offset,
        what: what.into(),
    }
}

/// A binary column: Arrow `large_binary` buffers (validity bitmap, int64 offsets, data).
pub struct Binary {
    pub valid: Vec<u8>,
    pub nulls: usize,
    pub offsets: Vec<i64>,
    pub data: Vec<u8>,
}

impl Binary {
    fn new() -> Self {
        Binary {
            valid: Vec::new(),
            nulls: 0,
            offsets: vec![0],
            data: Vec::new(),
        }
    }

    #[inline]
    fn push(&mut self, index: usize, item: Option<&[u8]>) {
        if index.is_multiple_of(8) {
            self.valid.push(0);
        }
        match item {
            Some(bytes) => {
                *self.valid.last_mut().unwrap() |= 1 << (index % 8);
                self.data.extend_from_slice(bytes);
            }
            None => self.nulls += 1,
        }
        self.offsets.push(self.data.len() as i64);
    }
}

/// The records of one partition's fetch, as a consumer is handed them.
pub struct Block {
    pub offsets: Vec<i64>,
    pub timestamps: Vec<i64>,
    pub keys: Binary,
    pub values: Binary,
    /// The position after the fetch: past the last record, skipped batch or (compacted) tail.
    pub next_fetch_offset: i64,
}

pub struct Options<'a> {
    pub fetch_offset: i64,
    pub read_committed: bool,
    pub check_crcs: bool,
    /// `(producer_id, first_offset)` of the aborted transactions the fetch response lists.
    pub aborted: &'a [(i64, i64)],
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn varlong(&mut self) -> Option<i64> {
        let mut raw: u64 = 0;
        for shift in (0..70).step_by(7) {
            let byte = *self.buf.get(self.pos)?;
            self.pos += 1;
            raw |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        None
    }

    #[inline]
    fn varint(&mut self) -> Option<i32> {
        i32::try_from(self.varlong()?).ok()
    }

    /// Nullable bytes: a varint length (-1: null) and that many bytes.
    #[inline]
    fn bytes(&mut self) -> Result<Option<&'a [u8]>, String> {
        let len = self.varint().ok_or("bad varint length")?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| format!("invalid length {len}"))?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("length {len} past the end of the records"))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(Some(out))
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}

/// One batch's header fields (the batch is at least `HEADER` bytes).
struct Header {
    base_offset: i64,
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    count: i32,
}

impl Header {
    fn of(batch: &[u8]) -> Header {
        Header {
            base_offset: be_i64(batch, 0),
            attributes: be_i16(batch, 21),
            last_offset_delta: be_i32(batch, 23),
            base_timestamp: be_i64(batch, 27),
            max_timestamp: be_i64(batch, 35),
            producer_id: be_i64(batch, 43),
            count: be_i32(batch, 57),
        }
    }

    fn next_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
            .wrapping_add(1)
    }

    fn codec(&self) -> i16 {
        self.attributes & 0x07
    }

    fn log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    fn transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    fn control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
}

/// The complete batches of `data`, in order: a batch cut short at the end (the broker's fetch
/// size limit) is left out, as Kafka clients do.
fn batches(data: &[u8], fetch_offset: i64) -> Result<Vec<&[u8]>, Error> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while data.len() - pos >= LOG_OVERHEAD {
        let length = be_i32(data, pos + 8);
        let Some(end) = usize::try_from(length)
            .ok()
            .and_then(|l| (pos + LOG_OVERHEAD).checked_add(l))
        else {
            return Err(corrupt(
                be_i64(data, pos),
                format!("negative batch length {length}"),
            ));
        };
        if end > data.len() {
            break;
        }
        let batch = &data[pos..end];
        if batch.len() < LOG_OVERHEAD + 5 {
            let offset = if out.is_empty() {
                fetch_offset
            } else {
                be_i64(batch, 0)
            };
            return Err(corrupt(offset, format!("batch length {length} too short")));
        }
        out.push(batch);
        pos = end;
    }
    Ok(out)
}

/// The decompressed records section of `batch`.
fn records_of<'a>(
    batch: &'a [u8],
    header: &Header,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], Error> {
    let body = &batch[HEADER..];
    match header.codec() {
        CODEC_NONE => Ok(body),
        CODEC_LZ4 => {
            scratch.clear();
            lz4_flex::frame::FrameDecoder::new(body)
                .read_to_end(scratch)
                .map_err(|e| corrupt(header.base_offset, format!("LZ4 frame: {e}")))?;
            Ok(scratch.as_slice())
        }
        codec => Err(Error::Unsupported {
            offset: header.base_offset,
            what: format!("compression codec {codec}"),
        }),
    }
}

/// Whether the control batch's first record is an abort marker (key: version 0, type 0).
fn is_abort_marker(records: &[u8], header: &Header) -> Result<bool, Error> {
    if header.count <= 0 {
        return Err(corrupt(
            header.base_offset,
            "control batch without any record",
        ));
    }
    let mut r = Reader {
        buf: records,
        pos: 0,
    };
    let bad = |what: &str| corrupt(header.base_offset, format!("control record: {what}"));
    r.varint().ok_or_else(|| bad("bad varint"))?;
    r.varint().ok_or_else(|| bad("bad varint"))?;
    r.varlong().ok_or_else(|| bad("bad varint"))?;
    r.varint().ok_or_else(|| bad("bad varint"))?;
    let key = r.bytes().map_err(|e| bad(&e))?;
    match key {
        Some(k) if k.len() >= 4 => Ok(be_i16(k, 0) == 0 && be_i16(k, 2) == 0),
        _ => Err(bad("key shorter than 4 bytes")),
    }
}

/// Decodes one partition's fetched bytes (see the module documentation).
pub fn decode(data: &[u8], opts: &Options<'_>) -> Result<Block, Error> {
    let batches = batches(data, opts.fetch_offset)?;
    for batch in &batches {
        if batch[16] != 2 {
            return Err(Error::Unsupported {
                offset: be_i64(batch, 0),
                what: format!("message format (magic) {}", batch[16]),
            });
        }
    }
    let mut aborted: Vec<(i64, i64)> = opts.aborted.to_vec();
    aborted.sort_by_key(|&(_, first)| first);
    let mut aborted = aborted.into_iter().peekable();
    let mut aborted_producers: Vec<i64> = Vec::new();

    let mut block = Block {
        offsets: Vec::new(),
        timestamps: Vec::new(),
        keys: Binary::new(),
        values: Binary::new(),
        next_fetch_offset: opts.fetch_offset,
    };
    let mut scratch = Vec::new();
    for batch in batches {
        let base = be_i64(batch, 0);
        if batch.len() < HEADER {
            return Err(corrupt(
                base,
                format!("batch of {} bytes, shorter than its header", batch.len()),
            ));
        }
        let header = Header::of(batch);
        if opts.check_crcs {
            let stored = be_i32(batch, 17) as u32;
            let computed = crc32c::crc32c(&batch[CRC_START..]);
            if stored != computed {
                return Err(corrupt(
                    base,
                    format!("invalid CRC (stored {stored:#010x}, computed {computed:#010x})"),
                ));
            }
        }
        if opts.read_committed {
            while let Some(&(producer_id, first)) = aborted.peek() {
                if first > base {
                    break;
                }
                aborted_producers.push(producer_id);
                aborted.next();
            }
            if header.control() {
                let records = records_of(batch, &header, &mut scratch)?;
                if is_abort_marker(records, &header)? {
                    aborted_producers.retain(|&p| p != header.producer_id);
                }
            }
            if header.transactional() && aborted_producers.contains(&header.producer_id) {
                block.next_fetch_offset = header.next_offset();
                continue;
            }
        }
        if header.control() {
            block.next_fetch_offset = header.next_offset();
            continue;
        }
        let records = records_of(batch, &header, &mut scratch)?;
        read_records(records, &header, &mut block)?;
        block.next_fetch_offset = header.next_offset();
    }
    Ok(block)
}

/// Appends the records of one batch at or beyond `block.next_fetch_offset`.
fn read_records(records: &[u8], header: &Header, block: &mut Block) -> Result<(), Error> {
    let base = header.base_offset;
    let count = usize::try_from(header.count)
        .map_err(|_| corrupt(base, format!("negative records count {}", header.count)))?;
    // Each record takes at least 7 bytes: a count beyond that is not trusted for allocation.
    let room = count.min(records.len() / 7 + 1);
    block.offsets.reserve(room);
    block.timestamps.reserve(room);
    let mut r = Reader {
        buf: records,
        pos: 0,
    };
    for index in 0..count {
        let bad = |what: String| corrupt(base, format!("record {index} of the batch: {what}"));
        let length = r.varint().ok_or_else(|| bad("bad varint length".into()))?;
        let start = r.pos;
        r.varint()
            .ok_or_else(|| bad("bad varint attributes".into()))?;
        let ts_delta = r
            .varlong()
            .ok_or_else(|| bad("bad varint timestamp delta".into()))?;
        let offset_delta = r
            .varint()
            .ok_or_else(|| bad("bad varint offset delta".into()))?;
        let key = r.bytes().map_err(&bad)?;
        let value = r.bytes().map_err(&bad)?;
        let headers = r
            .varint()
            .ok_or_else(|| bad("bad varint header count".into()))?;
        if headers < 0 {
            return Err(bad(format!("invalid number of headers {headers}")));
        }
        for _ in 0..headers {
            match r.bytes().map_err(&bad)? {
                Some(k) if std::str::from_utf8(k).is_ok() => {}
                Some(_) => return Err(bad("header key is not UTF-8".into())),
                None => return Err(bad("null header key".into())),
            }
            r.bytes().map_err(&bad)?;
        }
        if i64::try_from(r.pos - start).ok() != Some(i64::from(length)) {
            return Err(bad(format!(
                "record length {length}, but its fields took {}",
                r.pos - start
            )));
        }
        let offset = base.wrapping_add(i64::from(offset_delta));
        if offset < block.next_fetch_offset {
            continue;
        }
        let timestamp = if header.log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(ts_delta)
        };
        let index = block.offsets.len();
        block.offsets.push(offset);
        block.timestamps.push(timestamp);
        block.keys.push(index, key);
        block.values.push(index, value);
        block.next_fetch_offset = offset.wrapping_add(1);
    }
    if r.pos != records.len() {
        return Err(corrupt(
            base,
            format!(
                "{} unconsumed bytes after all {count} records",
                records.len() - r.pos
            ),
        ));
    }
    Ok(())
}

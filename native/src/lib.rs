//! maxlake_native: a strict, schema-driven parser of batches of JSON messages into the raw
//! buffers of Arrow arrays (validity bitmaps, int32 offsets, UTF-8 values, int64/double values),
//! for maxlake's decoder fast path (`schemas/_native.py` assembles the arrays with pyarrow).
//!
//! Only messages it reads exactly as orjson would are kept; every other message is listed as
//! dirty for the exact decoder. The GIL is released while the batch is parsed.

mod columns;
mod hash;
mod parse;
mod record_batch;
mod schema;
mod timestamps;

use pyo3::buffer::PyBuffer;
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};
use std::os::raw::c_int;
use std::sync::Mutex;

use columns::{Bits, Col, Sizes};
use parse::Parser;
use schema::{fields_from, Field};

/// What the columns of the last batch parsed with a schema held, and over how many messages.
type Hint = (usize, Vec<Sizes>);

/// A compiled parse schema (build once per schema, reuse for every batch).
#[pyclass(frozen, module = "maxlake_native")]
struct Schema {
    fields: Vec<Field>,
    last: Mutex<Option<Hint>>,
}

#[pymethods]
impl Schema {
    #[new]
    fn new(spec: &Bound<'_, PyTuple>) -> PyResult<Self> {
        Ok(Schema {
            fields: fields_from(spec)?,
            last: Mutex::new(None),
        })
    }
}

/// Owned bytes exposed through the buffer protocol (read-only), so that pyarrow wraps them
/// without a copy.
#[pyclass(frozen, module = "maxlake_native")]
struct Buffer {
    data: Owned,
}

enum Owned {
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Owned {
    fn bytes(&self) -> &[u8] {
        fn raw<T>(v: &[T]) -> &[u8] {
            // Plain numbers: any byte pattern is fine to read.
            unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
        }
        match self {
            Owned::U8(v) => v,
            Owned::I32(v) => raw(v),
            Owned::I64(v) => raw(v),
            Owned::F64(v) => raw(v),
        }
    }
}

#[pymethods]
impl Buffer {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        let data = slf.get().data.bytes();
        let rc = ffi::PyBuffer_FillInfo(
            view,
            slf.as_ptr(),
            data.as_ptr() as *mut std::os::raw::c_void,
            data.len() as ffi::Py_ssize_t,
            1,
            flags,
        );
        if rc == -1 {
            return Err(PyErr::fetch(slf.py()));
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut ffi::Py_buffer) {}

    fn __len__(&self) -> usize {
        self.data.bytes().len()
    }
}

fn buffer(py: Python<'_>, data: Owned) -> PyResult<PyObject> {
    Ok(Py::new(py, Buffer { data })?.into_any())
}

fn validity(py: Python<'_>, valid: Bits) -> PyResult<(usize, PyObject)> {
    let nulls = valid.count_zeros();
    let buf = if nulls == 0 {
        py.None()
    } else {
        buffer(py, Owned::U8(valid.bytes))?
    };
    Ok((nulls, buf))
}

/// `(length, null_count, buffers, children)` of one column, as `pa.Array.from_buffers` takes.
fn export(py: Python<'_>, col: Col) -> PyResult<PyObject> {
    let length = col.len();
    let (nulls, buffers, children): (usize, Vec<PyObject>, Vec<PyObject>) = match col {
        Col::Utf8 {
            valid,
            offsets,
            data,
        } => {
            let (nulls, v) = validity(py, valid)?;
            (
                nulls,
                vec![
                    v,
                    buffer(py, Owned::I32(offsets))?,
                    buffer(py, Owned::U8(data))?,
                ],
                vec![],
            )
        }
        Col::Int64 { valid, values } => {
            let (nulls, v) = validity(py, valid)?;
            (nulls, vec![v, buffer(py, Owned::I64(values))?], vec![])
        }
        Col::Float64 { valid, values } => {
            let (nulls, v) = validity(py, valid)?;
            (nulls, vec![v, buffer(py, Owned::F64(values))?], vec![])
        }
        Col::Bool { valid, values } => {
            let (nulls, v) = validity(py, valid)?;
            (nulls, vec![v, buffer(py, Owned::U8(values.bytes))?], vec![])
        }
        Col::Struct {
            valid, children, ..
        } => {
            let (nulls, v) = validity(py, valid)?;
            let kids = children
                .into_iter()
                .map(|c| export(py, c))
                .collect::<PyResult<_>>()?;
            (nulls, vec![v], kids)
        }
        Col::List {
            valid,
            offsets,
            child,
        } => {
            let (nulls, v) = validity(py, valid)?;
            (
                nulls,
                vec![v, buffer(py, Owned::I32(offsets))?],
                vec![export(py, *child)?],
            )
        }
    };
    let out = (
        length,
        nulls,
        PyList::new(py, buffers)?,
        PyList::new(py, children)?,
    );
    Ok(out.into_pyobject(py)?.into_any().unbind())
}

struct Spans(Vec<(usize, usize)>);
// The spans point into bytes objects kept alive (and immutable) by `keep` for the whole call.
unsafe impl Send for Spans {}
unsafe impl Sync for Spans {}

struct Outcome {
    cols: Vec<Col>,
    index: Vec<i64>,
    dirty: Vec<i64>,
}

fn parse_all(
    fields: &[Field],
    spans: &[(usize, usize)],
    max_bytes: usize,
    hint: Option<&Hint>,
) -> Outcome {
    let mut cols: Vec<Col> = fields.iter().map(Col::new).collect();
    if let Some((messages, sizes)) = hint {
        let input: usize = spans.iter().map(|&(_, len)| len).sum();
        for (col, s) in cols.iter_mut().zip(sizes) {
            col.reserve(s, spans.len(), *messages, input);
        }
    }
    let mut index = Vec::with_capacity(spans.len());
    let mut dirty = Vec::new();
    let mut rows = 0usize;
    for (k, &(ptr, len)) in spans.iter().enumerate() {
        let msg = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
        let ok = len <= max_bytes && Parser::new(msg).message(fields, &mut cols).is_ok();
        if ok {
            index.push(k as i64);
            rows += 1;
        } else {
            for col in cols.iter_mut() {
                col.truncate(rows);
            }
            dirty.push(k as i64);
        }
    }
    Outcome { cols, index, dirty }
}

/// The items of `messages` (a list, tuple or other iterable) with the span of each one's bytes;
/// None when an item is not exactly `bytes`. The items are returned to be held (and so kept
/// alive and unchanged) while the spans are read without the GIL.
#[allow(clippy::type_complexity)]
fn spans_of<'py>(
    messages: &Bound<'py, PyAny>,
) -> PyResult<Option<(Vec<Bound<'py, PyAny>>, Vec<(usize, usize)>)>> {
    let items: Vec<Bound<'py, PyAny>> = if let Ok(list) = messages.downcast::<PyList>() {
        list.iter().collect()
    } else if let Ok(tuple) = messages.downcast::<PyTuple>() {
        tuple.iter().collect()
    } else {
        messages
            .try_iter()
            .map_err(|_| PyTypeError::new_err("messages must be iterable"))?
            .collect::<PyResult<_>>()?
    };
    let mut spans = Vec::with_capacity(items.len());
    for item in &items {
        if !item.is_exact_instance_of::<PyBytes>() {
            return Ok(None);
        }
        let bytes = unsafe { item.downcast_unchecked::<PyBytes>() }.as_bytes();
        spans.push((bytes.as_ptr() as usize, bytes.len()));
    }
    Ok(Some((items, spans)))
}

/// The content hash of each payload (int64 buffer): XXH3-64 of the payload without its first
/// `sent_time` member, as a signed integer, 1 for 0 (`streams/content_hash.py`). None when an
/// item is not exactly `bytes`.
#[pyfunction]
fn content_hashes(py: Python<'_>, values: &Bound<'_, PyAny>) -> PyResult<Option<PyObject>> {
    let Some((keep, spans)) = spans_of(values)? else {
        return Ok(None);
    };
    let spans = Spans(spans);
    let out: Vec<i64> = py.allow_threads(|| {
        let finder = hash::finder();
        let spans = &spans;
        spans
            .0
            .iter()
            .map(|&(ptr, len)| {
                let raw = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
                hash::content_hash(&finder, raw)
            })
            .collect()
    });
    drop(keep);
    Ok(Some(buffer(py, Owned::I64(out))?))
}

/// Two SipHash-2-4 hashes of each id's UTF-8 bytes (`streams/sightings.py`), under the
/// 16-byte keys `key_a` and `key_b` read as pandas' `hash_array` reads them (two little-endian
/// 64-bit words), each mixed as `hash_array` mixes it: an int64 buffer of the `key_a` hashes
/// of every id, then the `key_b` ones (the bits of pandas' uint64 hashes). None when an item of the list is not exactly `str` or has
/// no UTF-8 form (a lone surrogate): the caller then hashes with pandas.
#[pyfunction]
fn id_hashes(
    py: Python<'_>,
    ids: &Bound<'_, PyList>,
    key_a: &[u8],
    key_b: &[u8],
) -> PyResult<Option<PyObject>> {
    let words = |key: &[u8]| -> PyResult<(u64, u64)> {
        if key.len() != 16 {
            return Err(PyValueError::new_err("a SipHash key is 16 bytes"));
        }
        let (k0, k1) = key.split_at(8);
        Ok((
            u64::from_le_bytes(k0.try_into().expect("8 bytes")),
            u64::from_le_bytes(k1.try_into().expect("8 bytes")),
        ))
    };
    let keys = [words(key_a)?, words(key_b)?];
    let items: Vec<Bound<'_, PyAny>> = ids.iter().collect();
    let mut spans = Vec::with_capacity(items.len());
    for item in &items {
        if !item.is_exact_instance_of::<PyString>() {
            return Ok(None);
        }
        // The UTF-8 form is cached in the str object, which `items` keeps alive.
        let Ok(text) = unsafe { item.downcast_unchecked::<PyString>() }.to_str() else {
            return Ok(None);
        };
        spans.push((text.as_ptr() as usize, text.len()));
    }
    let spans = Spans(spans);
    let out: Vec<i64> = py.allow_threads(|| {
        let spans = &spans;
        keys.iter()
            .flat_map(|&(k0, k1)| {
                spans.0.iter().map(move |&(ptr, len)| {
                    let raw = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
                    #[allow(deprecated)] // SipHasher is SipHash-2-4, the hash pandas computes
                    let mut hasher = std::hash::SipHasher::new_with_keys(k0, k1);
                    std::hash::Hasher::write(&mut hasher, raw);
                    // hash_array then spreads each hash over the 64 bits (splitmix64's mix).
                    let mut x = std::hash::Hasher::finish(&hasher);
                    x ^= x >> 30;
                    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    x ^= x >> 27;
                    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
                    x ^= x >> 31;
                    x as i64
                })
            })
            .collect()
    });
    drop(items);
    Ok(Some(buffer(py, Owned::I64(out))?))
}

/// Parses `messages` (bytes, one JSON object each) into the columns of `schema`.
///
/// Returns None when an item is not exactly `bytes` (or there is none); otherwise
/// `(columns, index, dirty)`: `columns` one `(length, null_count, buffers, children)` per
/// schema field over the kept messages, `index` and `dirty` int64 buffers of input positions
/// (kept and set aside, ascending).
#[pyfunction]
fn parse_batch(
    py: Python<'_>,
    messages: &Bound<'_, PyAny>,
    max_bytes: usize,
    schema: &Bound<'_, Schema>,
) -> PyResult<Option<(PyObject, PyObject, PyObject)>> {
    let Some((keep, spans)) = spans_of(messages)? else {
        return Ok(None);
    };
    if spans.is_empty() {
        return Ok(None);
    }
    let spans = Spans(spans);
    let schema = schema.get();
    let hint = schema.last.lock().ok().and_then(|last| last.clone());
    let out = py.allow_threads(|| parse_all(&schema.fields, &spans.0, max_bytes, hint.as_ref()));
    if let Ok(mut last) = schema.last.lock() {
        *last = Some((spans.0.len(), out.cols.iter().map(Col::sizes).collect()));
    }
    drop(keep);
    let cols = out
        .cols
        .into_iter()
        .map(|c| export(py, c))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Some((
        PyList::new(py, cols)?.into_any().unbind(),
        buffer(py, Owned::I64(out.index))?,
        buffer(py, Owned::I64(out.dirty))?,
    )))
}

create_exception!(
    maxlake_native,
    CorruptRecords,
    PyValueError,
    "Fetched bytes that are not valid Kafka record batches (bad CRC, lengths, varints, LZ4)."
);
create_exception!(
    maxlake_native,
    UnsupportedRecords,
    PyValueError,
    "Record batches decode_records does not read (a codec other than none or LZ4, magic < 2)."
);

fn binary(py: Python<'_>, col: record_batch::Binary) -> PyResult<PyObject> {
    let valid = if col.nulls == 0 {
        py.None()
    } else {
        buffer(py, Owned::U8(col.valid))?
    };
    let out = (
        col.nulls,
        valid,
        buffer(py, Owned::I64(col.offsets))?,
        buffer(py, Owned::U8(col.data))?,
    );
    Ok(out.into_pyobject(py)?.into_any().unbind())
}

/// Decodes one partition's fetched record batches (Kafka message format v2).
///
/// Returns `(next_fetch_offset, offsets, timestamps, keys, values)`: int64 buffers of the
/// records' offsets and timestamps (ms), and per binary column `(null_count, validity | None,
/// int64 offsets, data)` (Arrow `large_binary` buffers). Raises `CorruptRecords` on invalid
/// bytes and `UnsupportedRecords` on a batch it does not decode.
#[pyfunction]
fn decode_records(
    py: Python<'_>,
    data: &Bound<'_, PyBytes>,
    fetch_offset: i64,
    aborted: Vec<(i64, i64)>,
    read_committed: bool,
    check_crcs: bool,
) -> PyResult<PyObject> {
    let bytes = data.as_bytes();
    let opts = record_batch::Options {
        fetch_offset,
        read_committed,
        check_crcs,
        aborted: &aborted,
    };
    let block = match py.allow_threads(|| record_batch::decode(bytes, &opts)) {
        Ok(block) => block,
        Err(record_batch::Error::Corrupt { offset, what }) => {
            return Err(CorruptRecords::new_err((offset, what)));
        }
        Err(record_batch::Error::Unsupported { offset, what }) => {
            return Err(UnsupportedRecords::new_err((offset, what)));
        }
    };
    let out = (
        block.next_fetch_offset,
        buffer(py, Owned::I64(block.offsets))?,
        buffer(py, Owned::I64(block.timestamps))?,
        binary(py, block.keys)?,
        binary(py, block.values)?,
    );
    Ok(out.into_pyobject(py)?.into_any().unbind())
}

/// The items of a binary column as a tuple: item `i` is `data[offsets[i]..offsets[i + 1]]` as
/// bytes, None where `valid` (one byte per item, 0: null) says so.
#[pyfunction]
#[pyo3(signature = (data, offsets, valid=None))]
fn binary_items(
    py: Python<'_>,
    data: PyBuffer<u8>,
    offsets: PyBuffer<i64>,
    valid: Option<PyBuffer<u8>>,
) -> PyResult<PyObject> {
    let (Some(data), Some(offsets)) = (data.as_slice(py), offsets.as_slice(py)) else {
        return Err(PyTypeError::new_err(
            "data and offsets must be C-contiguous",
        ));
    };
    let n = offsets.len().saturating_sub(1);
    let valid = match &valid {
        Some(v) => match v.as_slice(py) {
            Some(v) if v.len() == n => Some(v),
            _ => return Err(PyValueError::new_err("valid must hold one byte per item")),
        },
        None => None,
    };
    let mut items: Vec<PyObject> = Vec::with_capacity(n);
    for i in 0..n {
        if valid.is_some_and(|v| v[i].get() == 0) {
            items.push(py.None());
            continue;
        }
        let (s, e) = item_range(
            "item",
            i,
            offsets[i].get(),
            offsets[i + 1].get(),
            data.len(),
        )?;
        // ReadOnlyCell<u8> has the layout of u8.
        let bytes = unsafe { std::slice::from_raw_parts(data[s..e].as_ptr() as *const u8, e - s) };
        items.push(PyBytes::new(py, bytes).into_any().unbind());
    }
    Ok(PyTuple::new(py, items)?.into_any().unbind())
}

/// The byte range `start..end` of item `i` of an Arrow variable-size array (its offsets
/// `start` and `end`, i32 or i64) within `len` data bytes. Raises ValueError naming the item
/// (`what`: "item", "value") when the offsets are negative, reversed or past the data.
pub(crate) fn item_range<T>(
    what: &str,
    i: usize,
    start: T,
    end: T,
    len: usize,
) -> PyResult<(usize, usize)>
where
    T: Copy + std::fmt::Display,
    usize: TryFrom<T>,
{
    usize::try_from(start)
        .ok()
        .zip(usize::try_from(end).ok())
        .filter(|&(s, e)| s <= e && e <= len)
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "{what} {i}: offsets {start}..{end} outside the {len} data bytes"
            ))
        })
}

#[pymodule]
fn maxlake_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Schema>()?;
    m.add("CorruptRecords", m.py().get_type::<CorruptRecords>())?;
    m.add(
        "UnsupportedRecords",
        m.py().get_type::<UnsupportedRecords>(),
    )?;
    m.add_function(wrap_pyfunction!(decode_records, m)?)?;
    m.add_function(wrap_pyfunction!(binary_items, m)?)?;
    m.add_class::<Buffer>()?;
    m.add_function(wrap_pyfunction!(parse_batch, m)?)?;
    m.add_function(wrap_pyfunction!(content_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(id_hashes, m)?)?;
    m.add_function(wrap_pyfunction!(timestamps::rfc3339_micros, m)?)?;
    Ok(())
}

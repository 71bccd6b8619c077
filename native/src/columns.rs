//! Column builders: Arrow's buffers (validity bitmaps, offsets, values) grown per value.

use crate::schema::{Field, Kind};

#[derive(Default)]
pub struct Bits {
    pub bytes: Vec<u8>,
    pub len: usize,
}

impl Bits {
    #[inline(always)]
    pub fn push(&mut self, bit: bool) {
        if self.len.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if bit {
            *self.bytes.last_mut().unwrap() |= 1 << (self.len % 8);
        }
        self.len += 1;
    }

    pub fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        self.len = len;
        self.bytes.truncate(len.div_ceil(8));
        if !len.is_multiple_of(8) {
            *self.bytes.last_mut().unwrap() &= (1u8 << (len % 8)) - 1;
        }
    }

    pub fn reserve(&mut self, bits: usize) {
        let _ = self.bytes.try_reserve(bits.div_ceil(8));
    }

    pub fn count_zeros(&self) -> usize {
        let ones: usize = self.bytes.iter().map(|b| b.count_ones() as usize).sum();
        self.len - ones
    }
}

/// How many values (and UTF-8 bytes) a column and its children held after a batch: the room
/// reserved for the next batch of the same schema, scaled to its number of messages, so that
/// the buffers are not grown (reallocated and copied) value by value.
#[derive(Clone, Default)]
pub struct Sizes {
    pub values: usize,
    pub bytes: usize,
    pub children: Vec<Sizes>,
}

pub enum Col {
    Utf8 {
        valid: Bits,
        offsets: Vec<i32>,
        data: Vec<u8>,
    },
    Int64 {
        valid: Bits,
        values: Vec<i64>,
    },
    Float64 {
        valid: Bits,
        values: Vec<f64>,
    },
    Bool {
        valid: Bits,
        values: Bits,
    },
    Struct {
        valid: Bits,
        children: Vec<Col>,
        len: usize,
    },
    List {
        valid: Bits,
        offsets: Vec<i32>,
        child: Box<Col>,
    },
}

impl Col {
    pub fn new(field: &Field) -> Col {
        match &field.kind {
            Kind::Utf8 => Col::Utf8 {
                valid: Bits::default(),
                offsets: vec![0],
                data: Vec::new(),
            },
            Kind::Int64 => Col::Int64 {
                valid: Bits::default(),
                values: Vec::new(),
            },
            Kind::Float64 => Col::Float64 {
                valid: Bits::default(),
                values: Vec::new(),
            },
            Kind::Bool => Col::Bool {
                valid: Bits::default(),
                values: Bits::default(),
            },
            Kind::Struct(fields) => Col::Struct {
                valid: Bits::default(),
                children: fields.iter().map(Col::new).collect(),
                len: 0,
            },
            Kind::List(item) => Col::List {
                valid: Bits::default(),
                offsets: vec![0],
                child: Box::new(Col::new(item)),
            },
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Col::Utf8 { valid, .. }
            | Col::Int64 { valid, .. }
            | Col::Float64 { valid, .. }
            | Col::Bool { valid, .. }
            | Col::List { valid, .. } => valid.len,
            Col::Struct { len, .. } => *len,
        }
    }

    pub fn sizes(&self) -> Sizes {
        let (bytes, children) = match self {
            Col::Utf8 { data, .. } => (data.len(), vec![]),
            Col::Struct { children, .. } => (0, children.iter().map(Col::sizes).collect()),
            Col::List { child, .. } => (0, vec![child.sizes()]),
            _ => (0, vec![]),
        };
        Sizes {
            values: self.len(),
            bytes,
            children,
        }
    }

    /// Reserves room for `sizes` scaled by `num / den`, plus an eighth, each count at most
    /// `cap` (the batch's input bytes: a stored string is never longer than its JSON text, and
    /// a list item or value takes at least one byte of it). A reservation that cannot be had is
    /// skipped: the buffers then grow as values come, and a batch that does not fit fails as it
    /// did without the hint, never because of the previous batch's shape.
    pub fn reserve(&mut self, sizes: &Sizes, num: usize, den: usize, cap: usize) {
        let scale = |n: usize| {
            let m = (n as u128 * num as u128 / den.max(1) as u128).min(cap as u128) as usize;
            (m + m / 8).min(cap)
        };
        let n = scale(sizes.values);
        match self {
            Col::Utf8 {
                valid,
                offsets,
                data,
            } => {
                valid.reserve(n);
                let _ = offsets.try_reserve(n);
                let _ = data.try_reserve(scale(sizes.bytes));
            }
            Col::Int64 { valid, values } => {
                valid.reserve(n);
                let _ = values.try_reserve(n);
            }
            Col::Float64 { valid, values } => {
                valid.reserve(n);
                let _ = values.try_reserve(n);
            }
            Col::Bool { valid, values } => {
                valid.reserve(n);
                values.reserve(n);
            }
            Col::Struct {
                valid, children, ..
            } => {
                valid.reserve(n);
                for (child, s) in children.iter_mut().zip(&sizes.children) {
                    child.reserve(s, num, den, cap);
                }
            }
            Col::List {
                valid,
                offsets,
                child,
            } => {
                valid.reserve(n);
                let _ = offsets.try_reserve(n);
                if let Some(s) = sizes.children.first() {
                    child.reserve(s, num, den, cap);
                }
            }
        }
    }

    /// A null; a null struct holds nulls in every child (as Arrow's JSON reader gives it).
    pub fn push_null(&mut self) {
        match self {
            Col::Utf8 { valid, offsets, .. } => {
                valid.push(false);
                offsets.push(*offsets.last().unwrap());
            }
            Col::Int64 { valid, values } => {
                valid.push(false);
                values.push(0);
            }
            Col::Float64 { valid, values } => {
                valid.push(false);
                values.push(0.0);
            }
            Col::Bool { valid, values } => {
                valid.push(false);
                values.push(false);
            }
            Col::Struct {
                valid,
                children,
                len,
            } => {
                valid.push(false);
                for child in children {
                    child.push_null();
                }
                *len += 1;
            }
            Col::List { valid, offsets, .. } => {
                valid.push(false);
                offsets.push(*offsets.last().unwrap());
            }
        }
    }

    /// Back to `len` values (a message found dirty half way leaves partial values).
    pub fn truncate(&mut self, len: usize) {
        match self {
            Col::Utf8 {
                valid,
                offsets,
                data,
            } => {
                valid.truncate(len);
                offsets.truncate(len + 1);
                data.truncate(offsets[len] as usize);
            }
            Col::Int64 { valid, values } => {
                valid.truncate(len);
                values.truncate(len);
            }
            Col::Float64 { valid, values } => {
                valid.truncate(len);
                values.truncate(len);
            }
            Col::Bool { valid, values } => {
                valid.truncate(len);
                values.truncate(len);
            }
            Col::Struct {
                valid,
                children,
                len: n,
            } => {
                valid.truncate(len);
                for child in children {
                    child.truncate(len);
                }
                *n = (*n).min(len);
            }
            Col::List {
                valid,
                offsets,
                child,
            } => {
                valid.truncate(len);
                offsets.truncate(len + 1);
                child.truncate(offsets[len] as usize);
            }
        }
    }
}

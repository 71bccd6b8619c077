//! The parse schema as given from Python: a tuple of fields, each `(name, type, children)`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

pub enum Kind {
    Utf8,
    Int64,
    Float64,
    Bool,
    Struct(Vec<Field>),
    List(Box<Field>),
}

pub struct Field {
    pub name: Vec<u8>,
    pub kind: Kind,
    /// The name has no byte a key must escape or may not hold (`"`, `\`, controls): a key
    /// equal to it is read without scanning it first.
    pub plain: bool,
}

impl Field {
    pub fn new(name: Vec<u8>, kind: Kind) -> Field {
        let plain = name.iter().all(|&c| c >= 0x20 && c != b'"' && c != b'\\');
        Field { name, kind, plain }
    }
}

/// Most fields per object: the parser keeps the fields it has seen in one `u64`.
const MAX_FIELDS: usize = 64;

pub fn fields_from(spec: &Bound<'_, PyTuple>) -> PyResult<Vec<Field>> {
    if spec.len() > MAX_FIELDS {
        return Err(PyValueError::new_err(format!(
            "at most {MAX_FIELDS} fields per object, got {}",
            spec.len()
        )));
    }
    let mut fields = Vec::with_capacity(spec.len());
    for item in spec.iter() {
        let (name, kind, children): (String, String, Bound<'_, PyTuple>) = item.extract()?;
        let kind = match kind.as_str() {
            "utf8" => Kind::Utf8,
            "int64" => Kind::Int64,
            "float64" => Kind::Float64,
            "bool" => Kind::Bool,
            "struct" => Kind::Struct(fields_from(&children)?),
            "list" => {
                let mut inner = fields_from(&children)?;
                if inner.len() != 1 {
                    return Err(PyValueError::new_err("a list has exactly one item field"));
                }
                Kind::List(Box::new(inner.remove(0)))
            }
            other => {
                return Err(PyValueError::new_err(format!(
                    "type {other:?} is not one of utf8, int64, float64, bool, struct, list"
                )))
            }
        };
        fields.push(Field::new(name.into_bytes(), kind));
    }
    Ok(fields)
}

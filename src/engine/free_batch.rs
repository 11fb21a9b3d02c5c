//! Frees the batch dimension of an ONNX graph exported with a fixed batch of 1 (as
//! the YOLOX exports are), so that one run can take the frames of several cameras.
//! The graph is rewritten at the protobuf level, in memory, touching only what the
//! batch size is written into:
//!
//! * each graph input's and output's first dimension `1` becomes the symbolic
//!   `batch`;
//! * each `Reshape` whose target shape starts with `1` gets `0` there ("keep the
//!   input's size": the batch), its shape being a constant of the graph;
//! * the intermediate shape annotations (`value_info`), which say batch 1, are
//!   dropped; ONNX Runtime infers them again.
//!
//! Everything else (weights, nodes, opsets, metadata) is copied byte for byte. A
//! graph this cannot free (a reshape to a computed shape, a first dimension other
//! than 1) is refused with the reason, and the caller keeps the fixed graph.
//!
//! ```no_run
//! let fixed = std::fs::read("yolox_nano_416.onnx").unwrap();
//! let free = ocellus::engine::free_batch(&fixed).unwrap();
//! std::fs::write("yolox_nano_416_batch.onnx", free).unwrap();
//! ```

use std::collections::BTreeSet;

/// Why a graph's batch dimension could not be freed.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum FreeBatchError {
    #[error("not an ONNX model: {0}")]
    Malformed(&'static str),
    #[error("the batch dimension is not fixed (already free)")]
    AlreadyFree,
    #[error("{what} {name} has a first dimension of {dim}, not 1")]
    FirstDimension {
        what: &'static str,
        name: String,
        dim: i64,
    },
    #[error("Reshape {node} takes a shape computed in the graph, not a constant")]
    ComputedShape { node: String },
    #[error("the shape {name} of a Reshape is not an int64 tensor starting with 1, 0 or -1")]
    ShapeConstant { name: String },
}

type Result<T> = std::result::Result<T, FreeBatchError>;

// Field numbers of onnx.proto.
const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const GRAPH_OUTPUT: u32 = 12;
const GRAPH_VALUE_INFO: u32 = 13;
const NODE_INPUT: u32 = 1;
const NODE_NAME: u32 = 3;
const NODE_OP_TYPE: u32 = 4;
const VALUE_NAME: u32 = 1;
const VALUE_TYPE: u32 = 2;
const TYPE_TENSOR: u32 = 1;
const TENSOR_TYPE_SHAPE: u32 = 2;
const SHAPE_DIM: u32 = 1;
const DIM_VALUE: u32 = 1;
const DIM_PARAM: u32 = 2;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_INT64_DATA: u32 = 7;
const TENSOR_NAME: u32 = 8;
const TENSOR_RAW_DATA: u32 = 9;
const INT64: u64 = 7;

const VARINT: u8 = 0;
const LEN: u8 = 2;

/// The symbolic name the freed dimension gets.
const BATCH: &str = "batch";

/// `model` (a serialised `ModelProto`) with its batch dimension freed.
pub fn free_batch(model: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(model.len());
    let mut graphs = 0;
    for field in Fields(model) {
        let field = field?;
        if field.number == MODEL_GRAPH && field.wire == LEN {
            graphs += 1;
            put_len(&mut out, MODEL_GRAPH, &graph(field.payload)?);
        } else {
            out.extend_from_slice(field.raw);
        }
    }
    match graphs {
        1 => Ok(out),
        _ => Err(FreeBatchError::Malformed("expected one graph")),
    }
}

fn graph(g: &[u8]) -> Result<Vec<u8>> {
    // What the reshapes' shapes are, and which are constants.
    let mut shapes = BTreeSet::new();
    for field in Fields(g) {
        let field = field?;
        if field.number == GRAPH_NODE && field.wire == LEN {
            let (mut op, mut name, mut inputs) = ("", String::new(), Vec::new());
            for f in Fields(field.payload) {
                let f = f?;
                match f.number {
                    NODE_OP_TYPE => op = text(f.payload)?,
                    NODE_NAME => name = text(f.payload)?.to_string(),
                    NODE_INPUT => inputs.push(text(f.payload)?),
                    _ => {}
                }
            }
            if op == "Reshape" {
                let shape = inputs
                    .get(1)
                    .ok_or(FreeBatchError::Malformed("a Reshape without a shape"))?;
                shapes.insert((shape.to_string(), name));
            }
        }
    }
    let mut constants = BTreeSet::new();
    for field in Fields(g) {
        let field = field?;
        if field.number == GRAPH_INITIALIZER && field.wire == LEN {
            constants.insert(tensor_name(field.payload)?);
        }
    }
    if let Some((_, node)) = shapes.iter().find(|(s, _)| !constants.contains(s)) {
        return Err(FreeBatchError::ComputedShape { node: node.clone() });
    }
    let shape_names: BTreeSet<&str> = shapes.iter().map(|(s, _)| s.as_str()).collect();

    let mut out = Vec::with_capacity(g.len());
    let mut freed = 0;
    for field in Fields(g) {
        let field = field?;
        match (field.number, field.wire) {
            (GRAPH_INPUT | GRAPH_OUTPUT, LEN) => {
                let what = if field.number == GRAPH_INPUT {
                    "input"
                } else {
                    "output"
                };
                let name = value_name(field.payload)?;
                if field.number == GRAPH_INPUT && constants.contains(&name) {
                    out.extend_from_slice(field.raw); // an initializer listed as input
                    continue;
                }
                match value_info(field.payload, what, &name)? {
                    Some(v) => {
                        freed += 1;
                        put_len(&mut out, field.number, &v);
                    }
                    None => out.extend_from_slice(field.raw),
                }
            }
            (GRAPH_VALUE_INFO, _) => {}
            (GRAPH_INITIALIZER, LEN) => {
                let name = tensor_name(field.payload)?;
                if shape_names.contains(name.as_str()) {
                    put_len(
                        &mut out,
                        GRAPH_INITIALIZER,
                        &shape_constant(field.payload, &name)?,
                    );
                } else {
                    out.extend_from_slice(field.raw);
                }
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    if freed == 0 {
        return Err(FreeBatchError::AlreadyFree);
    }
    Ok(out)
}

/// A graph input or output with its first dimension `1` made `batch`; `None` when
/// it has no fixed first dimension (already symbolic, or no shape).
fn value_info(v: &[u8], what: &'static str, name: &str) -> Result<Option<Vec<u8>>> {
    // value → type → tensor_type → shape → first dim, each rewritten on the way out.
    rewrite_first(v, VALUE_TYPE, |t| {
        rewrite_first(t, TYPE_TENSOR, |tt| {
            rewrite_first(tt, TENSOR_TYPE_SHAPE, |shape| {
                rewrite_first(shape, SHAPE_DIM, |dim| {
                    let mut value = None;
                    for f in Fields(dim) {
                        let f = f?;
                        match (f.number, f.wire) {
                            (DIM_PARAM, _) => return Ok(None),
                            (DIM_VALUE, VARINT) => value = Some(varint_value(f.payload)? as i64),
                            _ => {}
                        }
                    }
                    match value {
                        Some(1) => {
                            let mut d = Vec::new();
                            put_len(&mut d, DIM_PARAM, BATCH.as_bytes());
                            Ok(Some(d))
                        }
                        Some(dim) => Err(FreeBatchError::FirstDimension {
                            what,
                            name: name.to_string(),
                            dim,
                        }),
                        None => Ok(None),
                    }
                })
            })
        })
    })
}

/// `msg` with the first field `number` replaced by what `f` makes of it; `None`
/// when there is no such field or `f` changes nothing.
fn rewrite_first(
    msg: &[u8],
    number: u32,
    f: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>>,
) -> Result<Option<Vec<u8>>> {
    let mut f = Some(f);
    let mut out = Vec::with_capacity(msg.len() + 8);
    let mut changed = false;
    for field in Fields(msg) {
        let field = field?;
        if field.number == number
            && field.wire == LEN
            && let Some(f) = f.take()
            && let Some(new) = f(field.payload)?
        {
            put_len(&mut out, number, &new);
            changed = true;
            continue;
        }
        out.extend_from_slice(field.raw);
    }
    Ok(changed.then_some(out))
}

/// A Reshape's constant shape with a leading `1` made `0` (the input's batch).
fn shape_constant(t: &[u8], name: &str) -> Result<Vec<u8>> {
    let bad = || FreeBatchError::ShapeConstant {
        name: name.to_string(),
    };
    let mut out = Vec::with_capacity(t.len());
    let mut int64 = false;
    let mut done = false;
    for field in Fields(t) {
        let field = field?;
        match (field.number, field.wire) {
            (TENSOR_DATA_TYPE, VARINT) => {
                int64 = varint_value(field.payload)? == INT64;
                out.extend_from_slice(field.raw);
            }
            (TENSOR_RAW_DATA, LEN) if !done => {
                let (first, rest) = field.payload.split_first_chunk::<8>().ok_or_else(bad)?;
                let new = match i64::from_le_bytes(*first) {
                    1 => 0i64,
                    v @ (0 | -1) => v,
                    _ => return Err(bad()),
                };
                let mut data = new.to_le_bytes().to_vec();
                data.extend_from_slice(rest);
                put_len(&mut out, TENSOR_RAW_DATA, &data);
                done = true;
            }
            (TENSOR_INT64_DATA, LEN) if !done => {
                // Packed varints: the first one rewritten, the others copied.
                let (v, used) = varint(field.payload).ok_or_else(bad)?;
                let new: u64 = match v as i64 {
                    1 => 0,
                    0 | -1 => v,
                    _ => return Err(bad()),
                };
                let mut data = Vec::with_capacity(field.payload.len());
                put_varint(&mut data, new);
                data.extend_from_slice(&field.payload[used..]);
                put_len(&mut out, TENSOR_INT64_DATA, &data);
                done = true;
            }
            _ => out.extend_from_slice(field.raw),
        }
    }
    if int64 && done { Ok(out) } else { Err(bad()) }
}

fn value_name(v: &[u8]) -> Result<String> {
    named(v, VALUE_NAME)
}

fn tensor_name(t: &[u8]) -> Result<String> {
    named(t, TENSOR_NAME)
}

fn named(msg: &[u8], number: u32) -> Result<String> {
    for f in Fields(msg) {
        let f = f?;
        if f.number == number && f.wire == LEN {
            return Ok(text(f.payload)?.to_string());
        }
    }
    Ok(String::new())
}

fn text(b: &[u8]) -> Result<&str> {
    std::str::from_utf8(b).map_err(|_| FreeBatchError::Malformed("a name is not UTF-8"))
}

/// One field of a message: its number, wire type, payload (a varint's bytes, a
/// fixed value's bytes, or a length-delimited field's contents) and all its bytes.
struct Field<'a> {
    number: u32,
    wire: u8,
    payload: &'a [u8],
    raw: &'a [u8],
}

/// The fields of a serialised message, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let field = read_field(self.0);
        match &field {
            Ok((_, used)) => self.0 = &self.0[*used..],
            Err(_) => self.0 = &[],
        }
        Some(field.map(|(f, _)| f))
    }
}

fn read_field(buf: &[u8]) -> Result<(Field<'_>, usize)> {
    let truncated = || FreeBatchError::Malformed("a truncated field");
    let (tag, head) = varint(buf).ok_or_else(truncated)?;
    let wire = (tag & 7) as u8;
    let number =
        u32::try_from(tag >> 3).map_err(|_| FreeBatchError::Malformed("a field number"))?;
    let rest = &buf[head..];
    let (start, len) = match wire {
        VARINT => (0, varint(rest).ok_or_else(truncated)?.1),
        1 => (0, 8),
        LEN => {
            let (len, used) = varint(rest).ok_or_else(truncated)?;
            (used, usize::try_from(len).map_err(|_| truncated())?)
        }
        5 => (0, 4),
        _ => return Err(FreeBatchError::Malformed("an unknown wire type")),
    };
    let end = start
        .checked_add(len)
        .filter(|&e| e <= rest.len())
        .ok_or_else(truncated)?;
    let field = Field {
        number,
        wire,
        payload: &rest[start..end],
        raw: &buf[..head + end],
    };
    Ok((field, head + end))
}

/// A varint's value and its length in bytes.
fn varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

fn varint_value(payload: &[u8]) -> Result<u64> {
    varint(payload)
        .map(|(v, _)| v)
        .ok_or(FreeBatchError::Malformed("a truncated varint"))
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_len(out: &mut Vec<u8>, number: u32, payload: &[u8]) {
    put_varint(out, (u64::from(number) << 3) | u64::from(LEN));
    put_varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny model: input `x` [1, 4] → Reshape(x, shape) → output `y` [1, 2, 2],
    /// with a `value_info` saying batch 1.
    fn model(shape: &[i64], input_dim: i64) -> Vec<u8> {
        model_named(shape, input_dim, "shape")
    }

    fn model_named(shape: &[i64], input_dim: i64, constant: &str) -> Vec<u8> {
        let dim = |v: Option<i64>, p: Option<&str>| {
            let mut d = Vec::new();
            if let Some(v) = v {
                put_varint(&mut d, u64::from(DIM_VALUE) << 3);
                put_varint(&mut d, v as u64);
            }
            if let Some(p) = p {
                put_len(&mut d, DIM_PARAM, p.as_bytes());
            }
            d
        };
        let value = |name: &str, dims: &[Vec<u8>]| {
            let mut shape = Vec::new();
            for d in dims {
                put_len(&mut shape, SHAPE_DIM, d);
            }
            let mut tt = Vec::new();
            put_varint(&mut tt, u64::from(1u32) << 3);
            put_varint(&mut tt, 1); // elem_type float
            put_len(&mut tt, TENSOR_TYPE_SHAPE, &shape);
            let mut t = Vec::new();
            put_len(&mut t, TYPE_TENSOR, &tt);
            let mut v = Vec::new();
            put_len(&mut v, VALUE_NAME, name.as_bytes());
            put_len(&mut v, VALUE_TYPE, &t);
            v
        };
        let mut node = Vec::new();
        put_len(&mut node, NODE_INPUT, b"x");
        put_len(&mut node, NODE_INPUT, b"shape");
        put_len(&mut node, 2, b"y");
        put_len(&mut node, NODE_NAME, b"reshape0");
        put_len(&mut node, NODE_OP_TYPE, b"Reshape");
        let mut init = Vec::new();
        put_varint(&mut init, u64::from(1u32) << 3);
        put_varint(&mut init, shape.len() as u64);
        put_varint(&mut init, u64::from(TENSOR_DATA_TYPE) << 3);
        put_varint(&mut init, INT64);
        put_len(&mut init, TENSOR_NAME, constant.as_bytes());
        let raw: Vec<u8> = shape.iter().flat_map(|v| v.to_le_bytes()).collect();
        put_len(&mut init, TENSOR_RAW_DATA, &raw);
        let mut g = Vec::new();
        put_len(&mut g, GRAPH_NODE, &node);
        put_len(&mut g, 2, b"tiny");
        put_len(&mut g, GRAPH_INITIALIZER, &init);
        put_len(
            &mut g,
            GRAPH_INPUT,
            &value("x", &[dim(Some(input_dim), None), dim(Some(4), None)]),
        );
        put_len(
            &mut g,
            GRAPH_OUTPUT,
            &value(
                "y",
                &[dim(Some(1), None), dim(Some(2), None), dim(Some(2), None)],
            ),
        );
        put_len(&mut g, GRAPH_VALUE_INFO, &value("y", &[dim(Some(1), None)]));
        let mut m = Vec::new();
        put_varint(&mut m, 1 << 3);
        put_varint(&mut m, 7); // ir_version
        put_len(&mut m, MODEL_GRAPH, &g);
        put_len(&mut m, 8, b"\x08\x0b"); // an opset_import, copied as is
        m
    }

    fn field(msg: &[u8], number: u32) -> Vec<&[u8]> {
        Fields(msg)
            .map(Result::unwrap)
            .filter(|f| f.number == number)
            .map(|f| f.payload)
            .collect()
    }

    #[test]
    fn the_first_dimension_and_the_reshape_become_free() {
        let free = free_batch(&model(&[1, 2, 2], 1)).unwrap();
        let g = field(&free, MODEL_GRAPH)[0];
        assert!(field(g, GRAPH_VALUE_INFO).is_empty(), "value_info dropped");
        for v in [field(g, GRAPH_INPUT)[0], field(g, GRAPH_OUTPUT)[0]] {
            let t = field(v, VALUE_TYPE)[0];
            let shape = field(field(t, TYPE_TENSOR)[0], TENSOR_TYPE_SHAPE)[0];
            let dims = field(shape, SHAPE_DIM);
            assert_eq!(field(dims[0], DIM_PARAM), vec![BATCH.as_bytes()]);
            assert!(field(dims[0], DIM_VALUE).is_empty());
            assert_eq!(field(dims[1], DIM_VALUE).len(), 1, "other dims kept");
        }
        let init = field(g, GRAPH_INITIALIZER)[0];
        let raw = field(init, TENSOR_RAW_DATA)[0];
        let values: Vec<i64> = raw
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, vec![0, 2, 2]);
        // Everything else is byte for byte the same.
        assert_eq!(field(&free, 8), vec![&b"\x08\x0b"[..]]);
        assert_eq!(field(g, 2), vec![&b"tiny"[..]]);
        assert_eq!(
            field(g, GRAPH_NODE),
            field(field(&model(&[1, 2, 2], 1), MODEL_GRAPH)[0], GRAPH_NODE)
        );
        // Freeing twice: already free.
        assert_eq!(free_batch(&free), Err(FreeBatchError::AlreadyFree));
    }

    #[test]
    fn what_cannot_be_freed_is_refused_with_the_reason() {
        assert_eq!(
            free_batch(&model(&[1, 2, 2], 3)),
            Err(FreeBatchError::FirstDimension {
                what: "input",
                name: "x".into(),
                dim: 3
            })
        );
        assert_eq!(
            free_batch(&model(&[4, 1], 1)),
            Err(FreeBatchError::ShapeConstant {
                name: "shape".into()
            })
        );
        assert_eq!(
            free_batch(&model_named(&[1, 2, 2], 1, "other")),
            Err(FreeBatchError::ComputedShape {
                node: "reshape0".into()
            })
        );
        assert!(matches!(
            free_batch(b"\x3a\x05ab"),
            Err(FreeBatchError::Malformed(_))
        ));
        assert!(matches!(free_batch(b""), Err(FreeBatchError::Malformed(_))));
    }
}

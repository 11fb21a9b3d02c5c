//! Just enough of an ONNX file's graph to find trained scalars in it: the nodes
//! (operator, inputs, outputs), the scalar float constants (one-element initializers
//! and `Constant` nodes) and the graph outputs, read straight from the protobuf
//! encoding. Large fields (weights) are skipped with a seek, so a model of hundreds of
//! megabytes costs a few thousand small reads, not its size in memory.
//!
//! Wire format: <https://protobuf.dev/programming-guides/encoding/>; field numbers
//! from `onnx/onnx.proto` (ModelProto.graph = 7; GraphProto.node = 1, initializer = 5,
//! output = 12; NodeProto.input = 1, output = 2, op_type = 4, attribute = 5;
//! AttributeProto.name = 1, f = 2, t = 5; TensorProto.dims = 1, data_type = 2,
//! float_data = 4, name = 8, raw_data = 9, data_location = 14; ValueInfoProto.name = 1).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// Why an ONNX file's graph could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("not an ONNX model (no graph)")]
    NoGraph,
    #[error("the graph's length does not match its contents")]
    GraphLength,
    #[error("the file ends inside a message")]
    Truncated,
    /// A length prefix larger than what is left of the file.
    #[error("the file ends inside a message (a field of {len} bytes, {left} bytes left)")]
    PastEnd { len: u64, left: u64 },
    #[error("a field is too long")]
    FieldTooLong,
    #[error("a field runs past its message")]
    PastMessage,
    #[error("a varint is too long")]
    VarintTooLong,
    #[error("a varint is truncated")]
    VarintTruncated,
    #[error("unsupported protobuf wire type {0}")]
    WireType(u8),
}

/// Messages larger than this are skipped unread (weights, big constants).
const SMALL: u64 = 64 * 1024;

/// One graph node.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Node {
    pub op_type: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
}

/// The parts of a graph [`Graph::read`] keeps.
#[derive(Debug, Default)]
pub(super) struct Graph {
    pub nodes: Vec<Node>,
    /// Value name → scalar (one-element float tensors: initializers, `Constant` nodes).
    pub scalars: HashMap<String, f32>,
    pub outputs: Vec<String>,
}

impl Graph {
    /// Reads the graph of the ONNX file at `path`.
    pub(super) fn read(path: &Path) -> Result<Self, GraphError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let mut r = Reader {
            inner: BufReader::new(file),
            pos: 0,
            len,
        };
        let mut graph = Graph::default();
        let mut seen_graph = false;
        while r.pos < len {
            let (field, wire) = r.key()?;
            if field == 7 && wire == 2 {
                let n = r.length()?;
                let end = r.pos + n;
                graph.read_graph(&mut r, end)?;
                seen_graph = true;
            } else {
                r.skip(wire)?;
            }
        }
        if !seen_graph {
            return Err(GraphError::NoGraph);
        }
        Ok(graph)
    }

    /// The node that produces `value`, looking through `Identity` nodes.
    pub(super) fn producer(&self, value: &str) -> Option<&Node> {
        let mut value = value;
        for _ in 0..16 {
            let node = self
                .nodes
                .iter()
                .find(|n| n.outputs.iter().any(|o| o == value))?;
            if node.op_type != "Identity" {
                return Some(node);
            }
            value = node.inputs.first()?;
        }
        None
    }

    /// The scalar that `value` is, directly or through `Identity` nodes.
    pub(super) fn scalar(&self, value: &str) -> Option<f32> {
        if let Some(v) = self.scalars.get(value) {
            return Some(*v);
        }
        let node = self.producer(value)?;
        self.scalars.get(node.outputs.first()?).copied()
    }

    fn read_graph<R: Read + Seek>(
        &mut self,
        r: &mut Reader<R>,
        end: u64,
    ) -> Result<(), GraphError> {
        while r.pos < end {
            let (field, wire) = r.key()?;
            match (field, wire) {
                (1, 2) => {
                    let Some(msg) = r.small_message()? else {
                        continue;
                    };
                    let (node, scalar) = node(&msg)?;
                    if let (Some(v), Some(out)) = (scalar, node.outputs.first()) {
                        self.scalars.insert(out.clone(), v);
                    }
                    self.nodes.push(node);
                }
                (5, 2) => {
                    let Some(msg) = r.small_message()? else {
                        continue;
                    };
                    if let (Some(name), Some(v)) = tensor(&msg)? {
                        self.scalars.insert(name, v);
                    }
                }
                (12, 2) => {
                    let msg = r.message()?;
                    let mut m = Slice::new(&msg);
                    while let Some((f, w)) = m.key()? {
                        if f == 1 && w == 2 {
                            self.outputs.push(m.string()?);
                        } else {
                            m.skip(w)?;
                        }
                    }
                }
                _ => r.skip(wire)?,
            }
        }
        if r.pos != end {
            return Err(GraphError::GraphLength);
        }
        Ok(())
    }
}

/// A node and, for a `Constant` node holding a scalar, that scalar.
fn node(msg: &[u8]) -> Result<(Node, Option<f32>), GraphError> {
    let mut n = Node::default();
    let mut value = None;
    let mut m = Slice::new(msg);
    while let Some((f, w)) = m.key()? {
        match (f, w) {
            (1, 2) => n.inputs.push(m.string()?),
            (2, 2) => n.outputs.push(m.string()?),
            (4, 2) => n.op_type = m.string()?,
            (5, 2) => {
                let attr = m.bytes()?;
                value = value.or(attribute_scalar(attr)?);
            }
            _ => m.skip(w)?,
        }
    }
    if n.op_type != "Constant" {
        value = None;
    }
    Ok((n, value))
}

/// `value` (a tensor) or `value_float` of a `Constant` node's attribute, if a scalar.
fn attribute_scalar(msg: &[u8]) -> Result<Option<f32>, GraphError> {
    let (mut name, mut f, mut t) = (String::new(), None, None);
    let mut m = Slice::new(msg);
    while let Some((field, w)) = m.key()? {
        match (field, w) {
            (1, 2) => name = m.string()?,
            (2, 5) => f = Some(f32::from_le_bytes(m.fixed::<4>()?)),
            (5, 2) => t = tensor(m.bytes()?)?.1,
            _ => m.skip(w)?,
        }
    }
    Ok(match name.as_str() {
        "value" => t,
        "value_float" => f,
        _ => None,
    })
}

/// The name of a tensor and its value when it holds exactly one float (float32,
/// float16 or float64) stored in the file.
fn tensor(msg: &[u8]) -> Result<(Option<String>, Option<f32>), GraphError> {
    const FLOAT: u64 = 1;
    const FLOAT16: u64 = 10;
    const DOUBLE: u64 = 11;
    let (mut name, mut dtype, mut count) = (None, 0, 1u64);
    let (mut raw, mut floats, mut external) = (None, Vec::new(), false);
    let mut m = Slice::new(msg);
    while let Some((f, w)) = m.key()? {
        match (f, w) {
            (1, 0) => count = count.saturating_mul(m.varint()?),
            (1, 2) => {
                let mut dims = Slice::new(m.bytes()?);
                while !dims.done() {
                    count = count.saturating_mul(dims.varint()?);
                }
            }
            (2, 0) => dtype = m.varint()?,
            (4, 5) => floats.push(f32::from_le_bytes(m.fixed::<4>()?)),
            (4, 2) => {
                for c in m.bytes()?.chunks_exact(4) {
                    floats.push(f32::from_le_bytes([c[0], c[1], c[2], c[3]]));
                }
            }
            (8, 2) => name = Some(m.string()?),
            (9, 2) => raw = Some(m.bytes()?),
            (14, 0) => external = m.varint()? == 1,
            _ => m.skip(w)?,
        }
    }
    if count != 1 || external {
        return Ok((name, None));
    }
    let value = match (dtype, raw) {
        (FLOAT, Some(b)) => b.try_into().ok().map(f32::from_le_bytes),
        (FLOAT, None) => floats.first().copied(),
        (FLOAT16, Some(b)) => b.try_into().ok().map(|b| f16_to_f32(u16::from_le_bytes(b))),
        (DOUBLE, Some(b)) => b.try_into().ok().map(|b| f64::from_le_bytes(b) as f32),
        _ => None,
    };
    Ok((name, value))
}

/// IEEE half to single precision.
fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f32::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e - 15),
    }
}

/// A protobuf stream read from a file, with its position. Every length read from
/// the file is checked against the bytes left in it before anything is allocated or
/// skipped, so a damaged or hostile file cannot ask for more memory than its size.
struct Reader<R> {
    inner: R,
    pos: u64,
    /// The file's length.
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn byte(&mut self) -> Result<u8, GraphError> {
        let mut b = [0u8; 1];
        self.inner
            .read_exact(&mut b)
            .map_err(|_| GraphError::Truncated)?;
        self.pos += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> Result<u64, GraphError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(GraphError::VarintTooLong)
    }

    fn key(&mut self) -> Result<(u64, u8), GraphError> {
        let k = self.varint()?;
        Ok((k >> 3, (k & 7) as u8))
    }

    /// A length prefix, refused when it runs past the end of the file.
    fn length(&mut self) -> Result<u64, GraphError> {
        let n = self.varint()?;
        let left = self.len.saturating_sub(self.pos);
        if n > left {
            return Err(GraphError::PastEnd { len: n, left });
        }
        Ok(n)
    }

    fn seek(&mut self, n: u64) -> Result<(), GraphError> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(GraphError::Truncated);
        }
        let n = i64::try_from(n).map_err(|_| GraphError::FieldTooLong)?;
        self.inner.seek(SeekFrom::Current(n))?;
        self.pos += n as u64;
        Ok(())
    }

    fn skip(&mut self, wire: u8) -> Result<(), GraphError> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.seek(8),
            2 => {
                let n = self.length()?;
                self.seek(n)
            }
            5 => self.seek(4),
            w => Err(GraphError::WireType(w)),
        }
    }

    fn message(&mut self) -> Result<Vec<u8>, GraphError> {
        let n = self.length()?;
        let n = usize::try_from(n).map_err(|_| GraphError::FieldTooLong)?;
        let mut buf = vec![0u8; n];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| GraphError::Truncated)?;
        self.pos += n as u64;
        Ok(buf)
    }

    /// The next length-delimited message, or `None` (skipped) when it is large.
    fn small_message(&mut self) -> Result<Option<Vec<u8>>, GraphError> {
        let n = self.length()?;
        if n > SMALL {
            self.seek(n)?;
            return Ok(None);
        }
        let mut buf = vec![0u8; n as usize];
        self.inner
            .read_exact(&mut buf)
            .map_err(|_| GraphError::Truncated)?;
        self.pos += n;
        Ok(Some(buf))
    }
}

/// A protobuf message in memory.
struct Slice<'a> {
    buf: &'a [u8],
}

impl<'a> Slice<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    fn done(&self) -> bool {
        self.buf.is_empty()
    }

    fn varint(&mut self) -> Result<u64, GraphError> {
        let mut v = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(v);
            }
        }
        Err(GraphError::VarintTruncated)
    }

    fn key(&mut self) -> Result<Option<(u64, u8)>, GraphError> {
        if self.done() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, (k & 7) as u8)))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], GraphError> {
        if n > self.buf.len() {
            return Err(GraphError::PastMessage);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], GraphError> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn bytes(&mut self) -> Result<&'a [u8], GraphError> {
        let n = self.varint()?;
        self.take(usize::try_from(n).map_err(|_| GraphError::FieldTooLong)?)
    }

    fn string(&mut self) -> Result<String, GraphError> {
        Ok(String::from_utf8_lossy(self.bytes()?).into_owned())
    }

    fn skip(&mut self, wire: u8) -> Result<(), GraphError> {
        match wire {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.bytes().map(drop),
            5 => self.take(4).map(drop),
            w => Err(GraphError::WireType(w)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Protobuf writers for hand-made graphs.
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(n: u64, body: &[u8], out: &mut Vec<u8>) {
        varint(n << 3 | 2, out);
        varint(body.len() as u64, out);
        out.extend_from_slice(body);
    }

    fn scalar_tensor(name: &str, v: f32) -> Vec<u8> {
        let mut t = Vec::new();
        varint(2 << 3, &mut t);
        varint(1, &mut t); // FLOAT
        field(8, name.as_bytes(), &mut t);
        field(9, &v.to_le_bytes(), &mut t);
        t
    }

    fn node(op: &str, inputs: &[&str], outputs: &[&str], attr: Option<Vec<u8>>) -> Vec<u8> {
        let mut n = Vec::new();
        for i in inputs {
            field(1, i.as_bytes(), &mut n);
        }
        for o in outputs {
            field(2, o.as_bytes(), &mut n);
        }
        field(4, op.as_bytes(), &mut n);
        if let Some(a) = attr {
            field(5, &a, &mut n);
        }
        n
    }

    #[test]
    fn reads_nodes_scalars_and_outputs_and_skips_weights() {
        let mut g = Vec::new();
        let mut value = Vec::new();
        field(1, b"value", &mut value);
        field(5, &scalar_tensor("", 2.5), &mut value);
        field(1, &node("Constant", &[], &["c"], Some(value)), &mut g);
        field(1, &node("Mul", &["x", "c"], &["y"], None), &mut g);
        field(1, &node("Identity", &["y"], &["z"], None), &mut g);
        field(5, &scalar_tensor("bias", -1.25), &mut g);
        // A 100 KB weight: skipped.
        let mut big = Vec::new();
        field(8, b"w", &mut big);
        field(9, &vec![0u8; 100_000], &mut big);
        field(5, &big, &mut g);
        let mut out = Vec::new();
        field(1, b"z", &mut out);
        field(12, &out, &mut g);
        let mut model = Vec::new();
        varint(1 << 3, &mut model);
        varint(8, &mut model); // ir_version
        field(7, &g, &mut model);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, &model).unwrap();

        let graph = Graph::read(&path).unwrap();
        assert_eq!(graph.outputs, ["z"]);
        assert_eq!(graph.nodes.len(), 3);
        assert_eq!(graph.scalar("c"), Some(2.5));
        assert_eq!(graph.scalar("bias"), Some(-1.25));
        assert_eq!(graph.scalars.get("w"), None);
        assert_eq!(graph.producer("z").map(|n| n.op_type.as_str()), Some("Mul"));

        std::fs::write(&path, &model[..model.len() - 3]).unwrap();
        let err = Graph::read(&path).unwrap_err().to_string();
        assert!(err.starts_with("the file ends inside a message"), "{err}");
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            Graph::read(&path).unwrap_err().to_string(),
            "not an ONNX model (no graph)"
        );
    }

    /// A length prefix of 2^62 bytes (a damaged or hostile file) is refused before
    /// anything is allocated: without the check `message()` asks for 4 EiB and aborts.
    #[test]
    fn a_length_past_the_end_of_the_file_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.onnx");
        // graph { output: <2^62 bytes> }
        let mut g = Vec::new();
        varint(12 << 3 | 2, &mut g);
        varint(1 << 62, &mut g);
        let mut model = Vec::new();
        field(7, &g, &mut model);
        std::fs::write(&path, &model).unwrap();
        let err = Graph::read(&path).unwrap_err().to_string();
        assert!(err.contains("a field of"), "{err}");
        // The same at the top level (the graph's own length).
        let mut model = Vec::new();
        varint(7 << 3 | 2, &mut model);
        varint(u64::MAX >> 1, &mut model);
        std::fs::write(&path, &model).unwrap();
        let err = Graph::read(&path).unwrap_err().to_string();
        assert!(err.contains("a field of"), "{err}");
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc500), -5.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
    }
}

//! SigLIP's trained `logit_scale` and `logit_bias`.
//!
//! They are parameters of the whole `SiglipModel`, outside both towers: the split
//! exports (`onnx/vision_model.onnx`, `onnx/text_model.onnx`) do not have them, and
//! `config.json` does not either. In the Hugging Face ONNX layout they live only in
//! the combined export, `onnx/model.onnx` (Optimum's `SiglipOnnxConfig`, which
//! Transformers.js' zero-shot pipeline runs), whose output is
//! `logits_per_text = Add(Mul(cosines, exp(logit_scale)), logit_bias)`. The exporter
//! renames the two parameters (or folds `exp` into a constant), so they are found by
//! that shape of the graph, not by name: the `Add` that produces `logits_per_text`
//! (or, through a `Transpose`, `logits_per_image`) has one scalar operand, the bias;
//! its other operand comes from a `Mul` with one scalar operand, or the `Exp` of one,
//! the scale.

use std::path::Path;

use super::onnx_graph::{Graph, GraphError, Node};

/// Why the combined export gave no `logit_scale` and `logit_bias`.
#[derive(Debug, thiserror::Error)]
pub enum LogitParamsError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(
        "{0}; set logit_scale (the cosine multiplier, exp of the trained value) and \
         logit_bias in the model's config"
    )]
    NotFound(#[source] ParamsNotFound),
}

/// What of the graph's expected shape is missing.
#[derive(Debug, thiserror::Error)]
pub enum ParamsNotFound {
    #[error("no logits_per_text or logits_per_image output")]
    NoLogits,
    #[error("no logit_bias: the logits are not an Add of a bias (a CLIP export?)")]
    NoAdd,
    #[error("no scalar logit_bias in the logits' Add")]
    NoBias,
    #[error("no logit_scale: the biased logits are not a Mul by a scale")]
    NoMul,
    #[error("no scalar logit_scale in the logits' Mul")]
    NoScale,
    #[error("logit_scale {scale} / logit_bias {bias} are not finite")]
    NotFinite { scale: f32, bias: f32 },
}

/// `(exp(logit_scale), logit_bias)` of the combined export at `path`.
pub(super) fn logit_params(path: &Path) -> Result<(f32, f32), LogitParamsError> {
    let graph = Graph::read(path)?;
    find(&graph).map_err(LogitParamsError::NotFound)
}

fn find(g: &Graph) -> Result<(f32, f32), ParamsNotFound> {
    let add = if g.outputs.iter().any(|o| o == "logits_per_text") {
        g.producer("logits_per_text")
    } else if g.outputs.iter().any(|o| o == "logits_per_image") {
        g.producer("logits_per_image")
            .filter(|n| n.op_type == "Transpose")
            .and_then(|t| g.producer(t.inputs.first()?))
    } else {
        return Err(ParamsNotFound::NoLogits);
    };
    let add = add
        .filter(|n| n.op_type == "Add")
        .ok_or(ParamsNotFound::NoAdd)?;
    let (bias, scaled) = scalar_operand(g, add).ok_or(ParamsNotFound::NoBias)?;
    let mul = g
        .producer(scaled)
        .filter(|n| n.op_type == "Mul")
        .ok_or(ParamsNotFound::NoMul)?;
    let (scale, _) = scalar_operand(g, mul)
        .or_else(|| {
            mul.inputs.iter().find_map(|i| {
                let exp = g.producer(i).filter(|n| n.op_type == "Exp")?;
                let raw = g.scalar(exp.inputs.first()?)?;
                Some((raw.exp(), i.as_str()))
            })
        })
        .ok_or(ParamsNotFound::NoScale)?;
    if !(scale.is_finite() && bias.is_finite()) {
        return Err(ParamsNotFound::NotFinite { scale, bias });
    }
    Ok((scale, bias))
}

/// The scalar operand of a two-operand node and the name of the other operand.
fn scalar_operand<'a>(g: &Graph, node: &'a Node) -> Option<(f32, &'a str)> {
    let [a, b] = node.inputs.as_slice() else {
        return None;
    };
    match (g.scalar(a), g.scalar(b)) {
        (Some(v), None) => Some((v, b)),
        (None, Some(v)) => Some((v, a)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(op: &str, inputs: &[&str], output: &str) -> Node {
        Node {
            op_type: op.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: vec![output.into()],
        }
    }

    fn graph(nodes: Vec<Node>, scalars: &[(&str, f32)], outputs: &[&str]) -> Graph {
        Graph {
            nodes,
            scalars: scalars.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn finds_folded_and_unfolded_scales() {
        // torch 2.6's export of transformers 4.57: Exp(raw) feeds the Mul.
        let g = graph(
            vec![
                node("MatMul", &["t", "i"], "cos"),
                node("Exp", &["onnx::Exp_878"], "s"),
                node("Mul", &["cos", "s"], "scaled"),
                node("Add", &["scaled", "onnx::Add_879"], "logits_per_text"),
                node("Transpose", &["logits_per_text"], "logits_per_image"),
            ],
            &[("onnx::Exp_878", 10f32.ln()), ("onnx::Add_879", -1.0)],
            &["logits_per_image", "logits_per_text"],
        );
        let (scale, bias) = find(&g).unwrap();
        assert!((scale - 10.0).abs() < 1e-5 && bias == -1.0);
        // exp folded into the Mul's constant, only logits_per_image exported.
        let g = graph(
            vec![
                node("MatMul", &["t", "i"], "cos"),
                node("Mul", &["c", "cos"], "scaled"),
                node("Add", &["b", "scaled"], "lt"),
                node("Transpose", &["lt"], "logits_per_image"),
            ],
            &[("c", 117.33), ("b", -12.93)],
            &["logits_per_image"],
        );
        assert_eq!(find(&g).unwrap(), (117.33, -12.93));
    }

    #[test]
    fn a_clip_export_has_no_bias() {
        let g = graph(
            vec![
                node("MatMul", &["t", "i"], "cos"),
                node("Mul", &["cos", "c"], "logits_per_text"),
            ],
            &[("c", 100.0)],
            &["logits_per_text"],
        );
        assert_eq!(
            find(&g).unwrap_err().to_string(),
            "no logit_bias: the logits are not an Add of a bias (a CLIP export?)"
        );
        let g = graph(vec![], &[], &["pooler_output"]);
        assert_eq!(
            find(&g).unwrap_err().to_string(),
            "no logits_per_text or logits_per_image output"
        );
    }
}

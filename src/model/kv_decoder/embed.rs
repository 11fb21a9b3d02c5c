//! The embedding session (`embed_tokens.onnx`): its `input_ids -> inputs_embeds`
//! contract, checked at load, and one run turning token ids into `[n, hidden]`
//! embeddings (the prompt pieces at load, a question's suffix on first use, each
//! generated token).
//!
//! ```no_run
//! # use ocellus::model::qwen2vl::{Qwen2Vl, Qwen2VlConfig};
//! # let cfg: Qwen2VlConfig = toml::from_str(r#"dir = "/models/qwen2-vl""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! // Loading checks the embedding session and embeds the chat template's head once.
//! let (vlm, _sessions) = Qwen2Vl::load("vqa", &cfg, env).unwrap();
//! println!("head of {} tokens", vlm.head_ids().len());
//! ```

use ort::value::TensorRef;

use super::error::KvDecoderError;
use super::io::names;
use crate::engine::SharedSession;
use crate::model::{Cancel, ModelError};

/// Checks the embedding session: `input_ids` in, `inputs_embeds` among the outputs.
pub(crate) fn check_embed(session: &SharedSession) -> Result<(), KvDecoderError> {
    let s = session.lock();
    let (inputs, outputs) = (names(s.inputs()), names(s.outputs()));
    if inputs != ["input_ids"] || !outputs.iter().any(|o| o == "inputs_embeds") {
        return Err(KvDecoderError::EmbedIo { inputs, outputs });
    }
    Ok(())
}

/// `inputs_embeds` (`[n, hidden]`, flattened) of `ids`, by `model`'s embedding
/// session.
pub(crate) fn embed(
    model: &str,
    session: &SharedSession,
    ids: &[u32],
    cancel: &Cancel,
) -> Result<Vec<f32>, ModelError> {
    let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
    let t = TensorRef::from_array_view(([1usize, ids.len()], &ids[..]))
        .map_err(|e| ModelError::run(model, e))?;
    let mut session = session.lock();
    let outputs = cancel
        .run(&mut session, ort::inputs!["input_ids" => t])
        .map_err(|e| ModelError::of_run(model, e))?;
    let value = outputs.get("inputs_embeds").ok_or_else(|| {
        ModelError::run(model, KvDecoderError::MissingOutput("inputs_embeds".into()))
    })?;
    let (_, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| ModelError::run(model, e))?;
    if data.is_empty() || data.len() % ids.len().max(1) != 0 {
        return Err(ModelError::run(
            model,
            KvDecoderError::EmbedsCount {
                values: data.len(),
                tokens: ids.len(),
            },
        ));
    }
    Ok(data.to_vec())
}

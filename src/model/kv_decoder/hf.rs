//! What the families read alike from a Hugging Face folder: token ids in
//! `config.json` (one or a list), the stop tokens (the family's end-of-turn token,
//! then `generation_config.json`'s `eos_token_id`, or `config.json`'s when that file
//! is missing), and the one token of a yes or no word.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (vlm, _s) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! println!("stops at {:?}, yes/no {:?}", vlm.stop_ids(), vlm.yes_no_ids());
//! ```

use std::path::Path;

use serde_json::Value;
use tokenizers::Tokenizer;

use super::error::KvDecoderError;
use crate::model::{ModelError, TokenizerError};

/// A token id or a list of them.
pub(crate) fn ids_of(v: &Value) -> Vec<u32> {
    match v {
        Value::Array(list) => list
            .iter()
            .filter_map(|x| x.as_u64())
            .map(|x| x as u32)
            .collect(),
        other => other.as_u64().map(|x| x as u32).into_iter().collect(),
    }
}

/// `first`, then the eos ids of `generation_config.json` beside `config` (`fallback`,
/// `config.json`'s, when there is no such file), each once.
pub(crate) fn stop_ids(
    model: &str,
    first: u32,
    config: &Path,
    fallback: &[u32],
) -> Result<Vec<u32>, ModelError> {
    let mut stop = vec![first];
    let generation = config.with_file_name("generation_config.json");
    let eos = match std::fs::read_to_string(&generation) {
        Ok(text) => {
            let v: Value =
                serde_json::from_str(&text).map_err(|e| ModelError::load(model, &generation, e))?;
            ids_of(&v["eos_token_id"])
        }
        Err(_) => fallback.to_vec(),
    };
    for id in eos {
        if !stop.contains(&id) {
            stop.push(id);
        }
    }
    Ok(stop)
}

/// The one token of `text` (the tokenizer of `file`), or why it is not one.
pub(crate) fn one_token(
    model: &str,
    file: &Path,
    tokenizer: &Tokenizer,
    text: &str,
) -> Result<u32, ModelError> {
    let enc = tokenizer
        .encode(text, false)
        .map_err(|e| ModelError::load(model, file, TokenizerError::File(e)))?;
    match enc.get_ids() {
        [id] => Ok(*id),
        ids => Err(ModelError::load(
            model,
            file,
            KvDecoderError::NotOneToken {
                text: text.into(),
                ids: ids.to_vec(),
            },
        )),
    }
}

//! [`Remote`]: a served VLM answering a query's kind — the prompt each kind sends,
//! the JSON schema that constrains it, and what the reply means.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::client::Client;
use super::config::{RemoteConfig, YesNoVia};
use super::dialect::{Dialect, Prompt};
use super::error::RemoteError;
use super::image::{SentImage, encode};
use super::parse;
use crate::kit::Frame;
use crate::kit::metrics::RemoteMetrics;
use crate::model::florence2::Found;
use crate::model::{Cancel, ModelError};

/// Longest text answer kept (characters): a server that ignores `max_tokens` cannot
/// make a caption of megabytes (the reply body itself is read up to 8 MiB).
pub const MAX_TEXT_CHARS: usize = 4096;

/// How a remote p(yes) was obtained (shown in the query's attributes as `score_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreFrom {
    /// Softmax over the yes/no variants of the first token's top log-probabilities.
    Logprobs,
    /// The model's own confidence in a schema-constrained JSON answer.
    Json,
}

impl ScoreFrom {
    /// As shown in the attributes.
    pub fn name(self) -> &'static str {
        match self {
            ScoreFrom::Logprobs => "logprobs",
            ScoreFrom::Json => "json",
        }
    }
}

/// p(yes) and how it was obtained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    /// p(yes), 0..1.
    pub p_yes: f32,
    /// Where it came from.
    pub from: ScoreFrom,
}

/// A served model: its client (shared by every camera), prompts and parsing.
pub struct Remote {
    name: String,
    dialect: Dialect,
    cfg: RemoteConfig,
    client: Client,
    /// Learned in `auto`: the server returns no log-probabilities.
    no_logprobs: AtomicBool,
}

impl Remote {
    /// The model `name` of `cfg`, in `dialect`: reads the API key (from `api_key`,
    /// else `api_key_file`); no call is made.
    pub fn load(name: &str, dialect: Dialect, cfg: &RemoteConfig) -> Result<Self, ModelError> {
        let key = match (&cfg.api_key, &cfg.api_key_file) {
            (Some(k), _) => Some(k.trim().to_string()),
            (None, Some(path)) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| ModelError::load(name, path, e))?;
                let key = text.trim().to_string();
                if key.is_empty() {
                    return Err(ModelError::load(
                        name,
                        path,
                        std::io::Error::new(std::io::ErrorKind::InvalidData, "holds no key"),
                    ));
                }
                Some(key)
            }
            (None, None) => None,
        };
        Ok(Self {
            name: name.to_string(),
            dialect,
            cfg: cfg.clone(),
            client: Client::new(name, dialect, cfg, key),
            no_logprobs: AtomicBool::new(cfg.yes_no == YesNoVia::Json),
        })
    }

    /// The model's family (`openai` or `ollama`).
    pub fn family(&self) -> &'static str {
        self.dialect.family()
    }

    /// The client's counters.
    pub fn metrics(&self) -> &Arc<RemoteMetrics> {
        self.client.metrics()
    }

    /// Tells `watcher` each time the model becomes unavailable (`false`) or available
    /// again (`true`).
    pub fn watch(&self, watcher: super::client::Watcher) {
        self.client.watch(watcher);
    }

    /// Where requests go.
    pub fn endpoint(&self) -> &str {
        self.client.endpoint()
    }

    /// `region` of `frame` as sent: a JPEG of at most `max_side` a side.
    pub fn image(&self, frame: &Frame, region: Option<[f32; 4]>) -> Result<SentImage, ModelError> {
        let _span = tracing::trace_span!("remote image", model = %self.name).entered();
        Ok(encode(
            frame,
            region,
            self.cfg.max_side,
            self.cfg.jpeg_quality,
        )?)
    }

    /// p(yes) of `question` about `image`: from log-probabilities where the server
    /// gives them (`yes_no = "auto"` learns once that it does not, and asks for JSON
    /// from then on), else from a JSON answer with a confidence.
    pub fn yes_no(
        &self,
        image: &SentImage,
        question: &str,
        cancel: &Cancel,
    ) -> Result<Judged, ModelError> {
        if !self.no_logprobs.load(Ordering::Relaxed) {
            let text = format!("{question}\nAnswer with one word: yes or no.");
            let p = Prompt {
                text: &text,
                max_tokens: 1,
                logprobs: true,
                schema: None,
            };
            match self.call(&p, image, cancel) {
                Ok(reply) => match reply.top {
                    Some(top) => {
                        return parse::yes_from_top(&top)
                            .map(|p_yes| Judged {
                                p_yes,
                                from: ScoreFrom::Logprobs,
                            })
                            .ok_or_else(|| {
                                self.malformed(format!(
                                    "the first answer token is neither yes nor no (answer {})",
                                    crate::kit::shown(&reply.text)
                                ))
                            });
                    }
                    None if self.cfg.yes_no == YesNoVia::Logprobs => {
                        return Err(self.malformed(
                            "the server returned no log-probabilities (yes_no = \"json\" asks for a JSON answer instead)".into(),
                        ));
                    }
                    None => self.learn_no_logprobs("the reply has none"),
                },
                Err(ModelError::Run { source, .. })
                    if self.cfg.yes_no == YesNoVia::Auto
                        && matches!(
                            source.downcast_ref::<RemoteError>(),
                            Some(RemoteError::Status {
                                status: 400 | 422,
                                ..
                            })
                        ) =>
                {
                    self.learn_no_logprobs(&source.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        let text = format!(
            "{question}\nReply in JSON: {{\"answer\": \"yes\" or \"no\", \"confidence\": how sure you are of that answer, from 0 to 1}}."
        );
        let schema = json!({
            "type": "object",
            "properties": {
                "answer": {"type": "string", "enum": ["yes", "no"]},
                "confidence": {"type": "number"},
            },
            "required": ["answer", "confidence"],
            "additionalProperties": false,
        });
        let v = self.json(&text, &schema, 64, image, cancel)?;
        let p_yes = parse::yes_from_json(&v).map_err(|e| self.malformed(e))?;
        Ok(Judged {
            p_yes,
            from: ScoreFrom::Json,
        })
    }

    /// One of `labels` for `question` about `image`, and the model's confidence in it.
    pub fn classify(
        &self,
        image: &SentImage,
        question: &str,
        labels: &[String],
        cancel: &Cancel,
    ) -> Result<(String, Option<f32>), ModelError> {
        let question = if question.trim().is_empty() {
            "Which of these best describes the image?"
        } else {
            question
        };
        let text = format!(
            "{question}\nAnswer with one of: {}.\nReply in JSON: {{\"label\": your answer, \"confidence\": how sure you are of it, from 0 to 1}}.",
            labels.join(", ")
        );
        let schema = json!({
            "type": "object",
            "properties": {
                "label": {"type": "string", "enum": labels},
                "confidence": {"type": "number"},
            },
            "required": ["label", "confidence"],
            "additionalProperties": false,
        });
        let v = self.json(&text, &schema, 64, image, cancel)?;
        parse::label_from_json(&v, labels).map_err(|e| self.malformed(e))
    }

    /// The model's text answer to `prompt` about `image` (caption, answer, read).
    pub fn text(
        &self,
        image: &SentImage,
        prompt: &str,
        max_tokens: Option<usize>,
        cancel: &Cancel,
    ) -> Result<String, ModelError> {
        let p = Prompt {
            text: prompt,
            max_tokens: max_tokens.unwrap_or(self.cfg.max_tokens),
            logprobs: false,
            schema: None,
        };
        let text = self.call(&p, image, cancel)?.text;
        let text = text.trim();
        if text.chars().nth(MAX_TEXT_CHARS).is_some() {
            tracing::debug!(model = %self.name, "answer cut to {MAX_TEXT_CHARS} characters");
            return Ok(text.chars().take(MAX_TEXT_CHARS).collect());
        }
        Ok(text.to_string())
    }

    /// The boxes of `what` (an object list or a phrase) in `image`, normalised to it:
    /// the model is asked for Qwen-style `bbox_2d` pixel boxes; Gemini-style `box_2d`
    /// (0–1000, y first) is read too. Items without a valid box are dropped (counted
    /// as malformed); a reply with no list of boxes at all is an error.
    pub fn boxes(
        &self,
        image: &SentImage,
        what: &str,
        max_tokens: Option<usize>,
        cancel: &Cancel,
    ) -> Result<Vec<Found>, ModelError> {
        let text = format!(
            "Find every {what} in the image. Reply with JSON only: a list of objects {{\"label\": what it is, \"bbox_2d\": [x1, y1, x2, y2]}} in pixels of this {}x{} image, or [] when there is none.",
            image.width, image.height
        );
        let p = Prompt {
            text: &text,
            max_tokens: max_tokens.unwrap_or(self.cfg.max_tokens.max(256)),
            logprobs: false,
            schema: None,
        };
        let reply = self.call(&p, image, cancel)?;
        let v = parse::json_in(&reply.text).map_err(|e| self.malformed(e))?;
        let (found, dropped) =
            parse::boxes(&v, (image.width, image.height)).map_err(|e| self.malformed(e))?;
        if dropped > 0 {
            self.metrics().malformed.add(dropped as u64);
            tracing::debug!(model = %self.name, dropped, "boxes without a valid bbox dropped");
        }
        Ok(found)
    }

    fn json(
        &self,
        text: &str,
        schema: &Value,
        max_tokens: usize,
        image: &SentImage,
        cancel: &Cancel,
    ) -> Result<Value, ModelError> {
        let p = Prompt {
            text,
            max_tokens,
            logprobs: false,
            schema: Some(schema),
        };
        let reply = self.call(&p, image, cancel)?;
        parse::json_in(&reply.text).map_err(|e| self.malformed(e))
    }

    fn call(
        &self,
        p: &Prompt<'_>,
        image: &SentImage,
        cancel: &Cancel,
    ) -> Result<super::dialect::Reply, ModelError> {
        let _span = tracing::trace_span!("remote call", model = %self.name).entered();
        let body = self.dialect.body(&self.cfg.model, p, image);
        self.client.call(&body, cancel).map_err(|e| match e {
            RemoteError::Cancelled => ModelError::Cancelled {
                model: self.name.clone(),
            },
            e => ModelError::run(&self.name, e),
        })
    }

    fn learn_no_logprobs(&self, why: &str) {
        if !self.no_logprobs.swap(true, Ordering::Relaxed) {
            tracing::info!(
                model = %self.name,
                "no token log-probabilities from the server ({why}): yes/no answers come from JSON with a confidence from now on"
            );
        }
    }

    /// A reply whose content is not the answer asked for (counted as malformed; not
    /// a server failure for the breaker).
    fn malformed(&self, what: String) -> ModelError {
        self.metrics().malformed.inc();
        ModelError::run(
            &self.name,
            RemoteError::Malformed {
                url: self.client.endpoint().to_string(),
                what,
            },
        )
    }
}

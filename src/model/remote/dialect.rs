//! The two wire dialects: OpenAI-compatible `POST {url}/chat/completions` (the image
//! as an `image_url` data URI; `logprobs` / `top_logprobs`; a JSON schema as
//! `response_format`) and Ollama's `POST {url}/api/chat` (the image as base64 in
//! `images`; `logprobs` / `top_logprobs` since Ollama 0.12.11; the schema as
//! `format`; `options.num_predict`). Each builds its request body and reads the
//! documented reply: the text, and the first generated token's top log-probabilities
//! when the server returned them.
//!
//! ```
//! use ocellus::model::remote::{Dialect, SentImage, Prompt};
//! let image = SentImage { base64: "AAAA".into(), width: 4, height: 4 };
//! let ask = Prompt { text: "Is the door open?", max_tokens: 1, logprobs: true, schema: None };
//! let body = Dialect::Ollama.body("llava", &ask, &image);
//! assert_eq!(body["messages"][0]["images"][0], "AAAA");
//! let reply = Dialect::Ollama
//!     .reply(br#"{"model":"llava","message":{"role":"assistant","content":"Yes"},"done":true}"#)
//!     .unwrap();
//! assert_eq!((reply.text.as_str(), reply.top.is_none()), ("Yes", true));
//! ```

use serde_json::{Value, json};

use super::image::SentImage;

/// How many alternatives of the first token are asked for (OpenAI's most).
pub const TOP_LOGPROBS: u32 = 20;

/// The wire dialect of a served model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/v1/chat/completions` of OpenAI-compatible servers.
    OpenAi,
    /// Ollama's native `/api/chat`.
    Ollama,
}

/// One question to a served model.
#[derive(Debug, Clone)]
pub struct Prompt<'a> {
    /// The text after the image.
    pub text: &'a str,
    /// Most tokens of the answer.
    pub max_tokens: usize,
    /// Ask for the first token's top log-probabilities.
    pub logprobs: bool,
    /// Constrain the answer to this JSON schema.
    pub schema: Option<&'a Value>,
}

/// What a served model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The generated text.
    pub text: String,
    /// The first generated token's top alternatives `(token, logprob)`, when returned.
    pub top: Option<Vec<(String, f32)>>,
}

impl Dialect {
    /// The family name of the dialect.
    pub fn family(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Ollama => "ollama",
        }
    }

    /// The URL a chat request goes to, from the configured base URL.
    pub fn endpoint(self, base: &str) -> String {
        let base = base.trim_end_matches('/');
        match self {
            Dialect::OpenAi => format!("{base}/chat/completions"),
            Dialect::Ollama => format!("{base}/api/chat"),
        }
    }

    /// The request body asking `model` the prompt about `image`.
    pub fn body(self, model: &str, p: &Prompt<'_>, image: &SentImage) -> Value {
        let mut body = match self {
            Dialect::OpenAi => json!({
                "model": model,
                "messages": [{
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": image.data_uri()}},
                        {"type": "text", "text": p.text},
                    ],
                }],
                "max_tokens": p.max_tokens,
                "temperature": 0,
                "stream": false,
            }),
            Dialect::Ollama => json!({
                "model": model,
                "messages": [{"role": "user", "content": p.text, "images": [image.base64]}],
                "stream": false,
                "options": {"temperature": 0, "num_predict": p.max_tokens},
            }),
        };
        if p.logprobs {
            body["logprobs"] = json!(true);
            body["top_logprobs"] = json!(TOP_LOGPROBS);
        }
        if let Some(schema) = p.schema {
            match self {
                Dialect::OpenAi => {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": {"name": "answer", "strict": true, "schema": schema},
                    });
                }
                Dialect::Ollama => body["format"] = schema.clone(),
            }
        }
        body
    }

    /// The text and first-token log-probabilities of a successful reply's body.
    pub fn reply(self, body: &[u8]) -> Result<Reply, String> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", head(body)))?;
        let (message, logprobs) = match self {
            Dialect::OpenAi => {
                let choice = v
                    .get("choices")
                    .and_then(Value::as_array)
                    .and_then(|c| c.first())
                    .ok_or_else(|| format!("no choices: {}", head(body)))?;
                (
                    choice.get("message"),
                    choice.pointer("/logprobs/content/0/top_logprobs"),
                )
            }
            Dialect::Ollama => (v.get("message"), v.pointer("/logprobs/0/top_logprobs")),
        };
        let text = message
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("no message content: {}", head(body)))?
            .to_string();
        let top = match logprobs {
            None | Some(Value::Null) => None,
            Some(list) => Some(top_of(list).ok_or_else(|| {
                format!(
                    "top_logprobs is not a list of {{token, logprob}}: {}",
                    head(body)
                )
            })?),
        };
        Ok(Reply { text, top })
    }

    /// The first line of an error reply's message (`{"error": {"message": …}}` for
    /// OpenAI-compatible servers, `{"error": "…"}` for Ollama), else of its body.
    pub fn error_message(self, body: &[u8]) -> String {
        let v: Option<Value> = serde_json::from_slice(body).ok();
        let said = v.as_ref().and_then(|v| {
            let e = v.get("error")?;
            e.as_str()
                .or_else(|| e.get("message").and_then(Value::as_str))
                .map(str::to_string)
        });
        let text = said.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
        text.lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect()
    }
}

fn top_of(list: &Value) -> Option<Vec<(String, f32)>> {
    list.as_array()?
        .iter()
        .map(|t| {
            let token = t.get("token")?.as_str()?.to_string();
            let logprob = t.get("logprob")?.as_f64()? as f32;
            Some((token, logprob))
        })
        .collect()
}

/// The start of a body, for a message.
fn head(body: &[u8]) -> String {
    crate::kit::shown(&String::from_utf8_lossy(&body[..body.len().min(200)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> SentImage {
        SentImage {
            base64: "QUJD".into(),
            width: 2,
            height: 2,
        }
    }

    #[test]
    fn openai_bodies_carry_the_data_uri_the_logprobs_and_the_schema() {
        let schema = json!({"type": "object"});
        let p = Prompt {
            text: "Q?",
            max_tokens: 3,
            logprobs: true,
            schema: Some(&schema),
        };
        let b = Dialect::OpenAi.body("m", &p, &image());
        assert_eq!(
            b["messages"][0]["content"][0]["image_url"]["url"],
            "data:image/jpeg;base64,QUJD"
        );
        assert_eq!(b["messages"][0]["content"][1]["text"], "Q?");
        assert_eq!(
            (b["logprobs"].clone(), b["top_logprobs"].clone()),
            (json!(true), json!(20))
        );
        assert_eq!(b["response_format"]["json_schema"]["schema"], schema);
        assert_eq!(b["max_tokens"], 3);
    }

    #[test]
    fn replies_are_read_with_and_without_logprobs() {
        let with = br#"{"id":"x","object":"chat.completion","choices":[{"index":0,
            "message":{"role":"assistant","content":"Yes"},
            "logprobs":{"content":[{"token":"Yes","logprob":-0.1,"bytes":[89],
              "top_logprobs":[{"token":"Yes","logprob":-0.1,"bytes":[89]},{"token":"No","logprob":-2.4,"bytes":[78]}]}]},
            "finish_reason":"length"}]}"#;
        let r = Dialect::OpenAi.reply(with).unwrap();
        assert_eq!(r.top.unwrap()[1], ("No".to_string(), -2.4));
        let without = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"No"},"logprobs":null}]}"#;
        assert_eq!(Dialect::OpenAi.reply(without).unwrap().top, None);
        assert!(Dialect::OpenAi.reply(b"{\"choices\": []}").is_err());
        assert!(Dialect::OpenAi.reply(b"<html>").is_err());
        let ollama = br#"{"message":{"role":"assistant","content":"no"},"done":true,
            "logprobs":[{"token":"no","logprob":-0.2,"top_logprobs":[{"token":"no","logprob":-0.2}]}]}"#;
        assert_eq!(Dialect::Ollama.reply(ollama).unwrap().top.unwrap().len(), 1);
    }

    #[test]
    fn error_messages_come_from_either_shape() {
        let openai = br#"{"error":{"message":"The model `x` does not exist.","type":"invalid_request_error"}}"#;
        assert_eq!(
            Dialect::OpenAi.error_message(openai),
            "The model `x` does not exist."
        );
        assert_eq!(
            Dialect::Ollama
                .error_message(br#"{"error":"model \"x\" not found, try pulling it first"}"#),
            "model \"x\" not found, try pulling it first"
        );
        assert_eq!(
            Dialect::Ollama.error_message(b"Bad Gateway\nmore"),
            "Bad Gateway"
        );
    }
}

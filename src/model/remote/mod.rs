//! Served VLMs: any vision-language model behind an OpenAI-compatible
//! `/v1/chat/completions` (family `openai`: vLLM, llama.cpp's server, LM Studio,
//! lmdeploy, SGLang, OpenRouter, Gemini's compatible endpoint) or Ollama's native
//! `/api/chat` (family `ollama`) — how Llama 3.2-Vision, CogVLM, Qwen2.5-VL-72B and
//! their like answer standing queries from a GPU server that many edge boxes share.
//!
//! A query's region is sent once per frame as a JPEG of at most `max_side` a side
//! ([`SentImage`]), shared by the frame's queries on the model. `yes_no` gets p(yes)
//! from the first answer token's log-probabilities where the server returns them,
//! else from a schema-constrained JSON answer; `classify` from a JSON enum of the
//! labels; `caption`, `answer`, `read` as text; `detect` and `ground` as JSON boxes.
//! Calls run on the camera's slow lane, at the query's cadence, never on the
//! per-frame path. The client ([`Client`]) bounds what a server can do to the daemon:
//! a timeout per request, retries with backoff (honouring `Retry-After`), a circuit
//! breaker ([`Breaker`]) that marks the model unavailable after failures in a row and
//! probes it again later, `max_concurrency` calls in flight and an hourly budget
//! ([`Budget`]).
//!
//! Files: `config` (`[models.NAME]` and its checks), `dialect` (request bodies and
//! replies of each wire dialect), `client` (HTTP, retries, breaker, budget,
//! concurrency), `model` ([`Remote`]: prompts and schemas per query kind), `parse`
//! (log-probabilities, JSON answers, boxes), `image`, `breaker`, `budget`, `error`.
//!
//! ```no_run
//! use ocellus::model::remote::{Dialect, Remote, RemoteConfig};
//! use ocellus::model::Cancel;
//! let cfg: RemoteConfig = toml::from_str(r#"
//! url = "http://gpu-box:11434"
//! model = "llama3.2-vision"
//! "#).unwrap();
//! let vlm = Remote::load("llama", Dialect::Ollama, &cfg).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let image = vlm.image(&frame, None).unwrap();
//! let door = vlm.yes_no(&image, "Is the garage door open?", Cancel::never()).unwrap();
//! println!("p(open) = {:.2} (from {})", door.p_yes, door.from.name());
//! ```

mod breaker;
mod budget;
mod client;
mod config;
mod dialect;
mod error;
mod image;
mod model;
pub mod parse;

pub use breaker::{Admit, Breaker};
pub use budget::Budget;
pub use client::{Client, MAX_RETRY_AFTER, Watcher};
pub use config::{MAX_CALLS_PER_HOUR, RemoteConfig, YesNoVia};
pub use dialect::{Dialect, Prompt, Reply, TOP_LOGPROBS};
pub use error::RemoteError;
pub use image::{SentImage, fit};
pub use model::{Judged, MAX_TEXT_CHARS, Remote, ScoreFrom};

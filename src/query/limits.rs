//! The bounds on a query's fields, the same for the config file and for runtime specs
//! (MQTT `.../set`, HTTP `PUT`): far above what a real camera needs, and small enough
//! that the worst case stays cheap (the Home Assistant device config a camera's queries
//! make, the prompts one change embeds).

use std::time::Duration;

/// Most characters of `ask`: a question for a VLM of a few sentences (about 250
/// tokens); a dual encoder reads only its first 64-77 tokens anyway.
pub const MAX_ASK_CHARS: usize = 1000;

/// Most characters of one prompt in `labels`, `yes` or `no`: CLIP reads 77 tokens
/// (about 300 characters of English) and SigLIP 64; a useful prompt is one phrase.
pub const MAX_PROMPT_CHARS: usize = 200;

/// Most prompts in each of `labels`, `yes` and `no`: a classify query over more
/// than 32 classes is unreadable as a Home Assistant enum; yes/no queries use 1-5.
pub const MAX_PROMPTS: usize = 32;

/// Most characters of `name` (a Home Assistant entity name) and of a camera's `name`.
pub const MAX_NAME_CHARS: usize = 100;

/// Most characters of `unit` ("bar", "people", "km/h").
pub const MAX_UNIT_CHARS: usize = 32;

/// Most characters of `label`, a detector class ("traffic light" is COCO's longest).
pub const MAX_LABEL_CHARS: usize = 100;

/// Most characters of a read query's `pattern`; a meter reading's regex is ~20.
pub const MAX_PATTERN_CHARS: usize = 256;

/// Most memory a `pattern` may compile to (the regex crate's own default is 10 MiB;
/// a meter-reading regex takes a few KiB).
pub const MAX_PATTERN_COMPILED_BYTES: usize = 1 << 20;

/// Most tokens a generative query may ask for: Florence-2 generates at most 1024
/// (its `max_length` is 1025); longer answers on a VLM take minutes per frame.
pub const MAX_QUERY_TOKENS: usize = 1024;

/// Longest duration of any query field (`every`, `min_duration`, `cooldown`, ...): a
/// weekly cadence is the longest plausible, and it keeps `Instant + duration`
/// arithmetic far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Most standing queries one camera runs (config file and runtime together): each
/// costs work on every frame and an entity in Home Assistant; a busy camera has ~10.
pub const MAX_QUERIES_PER_CAMERA: usize = 32;

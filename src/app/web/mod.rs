//! Web: what the web interface reads besides the daemon's status — the live stream
//! of what the publisher sends, each query's score history and the latest events
//! ([`Hub`]), and each camera's live picture ([`Tiles`]). The pages themselves and
//! their routes are served by [`crate::app::http`] (`assets/` holds the pages: plain
//! ES modules and CSS, embedded in the binary, no build step).
//!
//! ```
//! use ocellus::app::http::WebConfig;
//! use ocellus::app::web::Web;
//! let web = Web::new("ocellus", WebConfig::default());
//! assert_eq!(web.hub.pages(), 0);
//! ```

mod assets;
mod hub;
mod tiles;

use std::sync::Arc;

pub use assets::ASSETS;
pub use hub::{FRAMES_PER_SECOND, Hub, LiveEvent, StoredEvent};
pub use tiles::{Picture, Tile, Tiles, jpeg_of};

use crate::app::http::WebConfig;

/// The web interface's shared parts.
pub struct Web {
    /// `[http.web]`.
    pub cfg: WebConfig,
    /// The publisher's topic prefix.
    pub prefix: String,
    /// The live stream, score history and events.
    pub hub: Arc<Hub>,
    /// The cameras' live pictures.
    pub tiles: Arc<Tiles>,
}

impl Web {
    /// The web interface of a publisher whose topics start with `prefix`.
    pub fn new(prefix: &str, cfg: WebConfig) -> Self {
        Self {
            prefix: prefix.to_string(),
            hub: Arc::new(Hub::new(prefix, &cfg)),
            tiles: Tiles::start(&cfg),
            cfg,
        }
    }
}

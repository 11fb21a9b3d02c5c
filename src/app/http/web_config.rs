//! `[http.web]`: the web interface served beside the API — how often live tiles
//! refresh and how large they are, how many events and how much score history are
//! kept in memory, how long a browser session lasts.

use std::time::Duration;

use serde::Deserialize;

use crate::kit::Problem;

/// The `[http.web]` section (every field has a default; the section may be left out).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the web interface (`/`, `/ui/...`, `/login`); the JSON API is served either way.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Live tiles' frames per second, at most.
    #[serde(default = "default_tile_fps")]
    pub tile_fps: f64,
    /// The long side of a live tile's picture, in pixels (never scaled up).
    #[serde(default = "default_tile_side")]
    pub tile_side: u32,
    /// JPEG quality of live tiles (1–100).
    #[serde(default = "default_tile_quality")]
    pub tile_quality: u8,
    /// State changes kept for the events page (newest win).
    #[serde(default = "default_events")]
    pub events: usize,
    /// How far back each query's score sparkline reaches.
    #[serde(
        default = "default_history",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub history: Duration,
    /// How long a browser session lasts after its login.
    #[serde(
        default = "default_session",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub session: Duration,
}

fn default_true() -> bool {
    true
}
fn default_tile_fps() -> f64 {
    2.0
}
fn default_tile_side() -> u32 {
    640
}
fn default_tile_quality() -> u8 {
    75
}
fn default_events() -> usize {
    200
}
fn default_history() -> Duration {
    Duration::from_secs(600)
}
fn default_session() -> Duration {
    Duration::from_secs(12 * 3600)
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            tile_fps: default_tile_fps(),
            tile_side: default_tile_side(),
            tile_quality: default_tile_quality(),
            events: default_events(),
            history: default_history(),
            session: default_session(),
        }
    }
}

/// Bounds of the fields (the events and history are held in memory).
const MAX_TILE_FPS: f64 = 15.0;
const TILE_SIDES: std::ops::RangeInclusive<u32> = 80..=1920;
const MAX_EVENTS: usize = 10_000;
const HISTORY: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(10)..=Duration::from_secs(3600);
const SESSION: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(30 * 86_400);

impl WebConfig {
    /// Every problem of the section, each naming its field.
    pub fn check(&self, problems: &mut Vec<Problem>) {
        let mut bad = |field: &str, why: String| {
            problems.push(Problem::new(format!("http.web.{field}"), why));
        };
        if !(self.tile_fps > 0.0 && self.tile_fps <= MAX_TILE_FPS) {
            bad(
                "tile_fps",
                format!(
                    "{} must be above 0 and at most {MAX_TILE_FPS}",
                    self.tile_fps
                ),
            );
        }
        if !TILE_SIDES.contains(&self.tile_side) {
            bad(
                "tile_side",
                format!(
                    "{} must be {} to {} pixels",
                    self.tile_side,
                    TILE_SIDES.start(),
                    TILE_SIDES.end()
                ),
            );
        }
        if !(1..=100).contains(&self.tile_quality) {
            bad(
                "tile_quality",
                format!("{} must be 1 to 100", self.tile_quality),
            );
        }
        if !(1..=MAX_EVENTS).contains(&self.events) {
            bad(
                "events",
                format!("{} must be 1 to {MAX_EVENTS}", self.events),
            );
        }
        if !HISTORY.contains(&self.history) {
            bad(
                "history",
                format!(
                    "{} must be 10s to 1h",
                    humantime::format_duration(self.history)
                ),
            );
        }
        if !SESSION.contains(&self.session) {
            bad(
                "session",
                format!(
                    "{} must be 1m to 30days",
                    humantime::format_duration(self.session)
                ),
            );
        }
    }

    /// The time between two frames of a live tile.
    pub fn tile_every(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.tile_fps.clamp(0.01, MAX_TILE_FPS))
    }
}

#[cfg(test)]
mod tests {
    use super::WebConfig;

    #[test]
    fn every_bad_field_is_named_at_once() {
        let c: WebConfig = toml::from_str(
            "tile_fps = 0\ntile_side = 5\ntile_quality = 0\nevents = 0\nhistory = \"2h\"\nsession = \"1s\"",
        )
        .unwrap();
        let mut p = Vec::new();
        c.check(&mut p);
        let paths: Vec<&str> = p.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "http.web.tile_fps",
                "http.web.tile_side",
                "http.web.tile_quality",
                "http.web.events",
                "http.web.history",
                "http.web.session"
            ]
        );
        let mut p = Vec::new();
        WebConfig::default().check(&mut p);
        assert!(p.is_empty(), "{p:?}");
        assert!(toml::from_str::<WebConfig>("tiles = 3").is_err());
    }
}

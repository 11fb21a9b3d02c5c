//! Checks across the whole config: each section checks itself (`MqttConfig::check`,
//! `CameraConfig::check`, `query::check`, ...); this file calls them in order and
//! adds what needs more than one section (camera ids unique, a query's model
//! defined). Every problem is reported; none stops the others from being found.

use std::collections::HashSet;

use super::Config;
use crate::kit::Problem;
use crate::kit::{id_ok, shown};
use crate::query::{self, QueryConfig};

pub(super) fn check(config: &Config, problems: &mut Vec<Problem>) {
    if let Some(mqtt) = &config.mqtt {
        mqtt.check(problems);
    }
    if let Some(http) = &config.http {
        http.check(problems);
    }
    config.engine.check(problems);
    config.teach.check(problems);
    if let Some(s) = &config.snapshots {
        s.check(problems);
    }
    for (name, model) in &config.models {
        model.check(name, problems);
    }
    if config.cameras.is_empty() {
        problems.push(Problem::new(
            "cameras",
            "at least one [[cameras]] is needed",
        ));
    }
    let mut ids = HashSet::new();
    for (i, cam) in config.cameras.iter().enumerate() {
        let at = format!("cameras[{i}]");
        if !id_ok(&cam.id) {
            problems.push(Problem::new(
                format!("{at}.id"),
                format!(
                    "{} must be 1-64 characters of A-Z a-z 0-9 _ -",
                    shown(&cam.id)
                ),
            ));
        } else if !ids.insert(cam.id.as_str()) {
            problems.push(Problem::new(
                format!("{at}.id"),
                format!("{:?} is used by another camera", cam.id),
            ));
        }
        cam.check(&at, problems);
        for (j, q) in cam.queries.iter().enumerate() {
            query::check::check(q, &format!("{at}.queries[{j}]"), &config.models, problems);
        }
    }
}

/// Checks a query given at runtime (`ocellus/<cam>/query/<q>/set`) against the models
/// of `config`; problems are named by field alone.
pub fn check_runtime_query(q: &QueryConfig, config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !id_ok(&q.id) {
        problems.push(Problem::new(
            "id",
            format!(
                "{} must be 1-64 characters of A-Z a-z 0-9 _ -",
                shown(&q.id)
            ),
        ));
    }
    query::check::check(q, "", &config.models, &mut problems);
    problems
}

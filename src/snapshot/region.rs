//! The query regions a snapshot outlines and labels.

use crate::query::QueryConfig;

/// A query's region as a snapshot shows it: outlined and labelled with the query's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub query: String,
    /// Normalised `[x0, y0, x1, y1]`.
    pub rect: [f32; 4],
}

/// The regions of those `queries` that have one.
pub fn regions(queries: &[QueryConfig]) -> Vec<Region> {
    queries
        .iter()
        .filter_map(|q| {
            Some(Region {
                query: q.id.clone(),
                rect: q.region?,
            })
        })
        .collect()
}

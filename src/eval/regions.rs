//! The query regions a snapshot draws.

use crate::query::QueryConfig;
use crate::snapshot::Region;

/// The regions of those `queries` that have one, for the snapshot's overlay.
pub(crate) fn snapshot_regions(queries: &[QueryConfig]) -> Vec<Region> {
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

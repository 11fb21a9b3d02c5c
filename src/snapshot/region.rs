//! The query regions a snapshot outlines and labels.

/// A query's region as a snapshot shows it: outlined and labelled with the query's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Id of the query the region belongs to (its label).
    pub query: String,
    /// Normalised `[x0, y0, x1, y1]`.
    pub rect: [f32; 4],
}

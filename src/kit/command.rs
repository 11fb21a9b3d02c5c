//! A query change as it arrives on a control surface: MQTT's `.../query/<q>/set` or
//! HTTP's `PUT /api/queries/<cam>/<q>`, before it is parsed or checked; and a
//! label of a taught query as it arrives on MQTT's `.../query/<q>/label`.

/// A spec (or an empty payload: delete) received for query `query` of `camera`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCommand {
    /// Id of the camera the query belongs to (unchecked).
    pub camera: String,
    /// Id of the query to set or delete (unchecked).
    pub query: String,
    /// The spec as received (JSON, not yet parsed); empty (or only whitespace) to
    /// delete the query.
    pub payload: Vec<u8>,
}

/// A label (see `teach::Label`) received for query `query` of `camera`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelCommand {
    /// Id of the camera (unchecked).
    pub camera: String,
    /// Id of the query (unchecked).
    pub query: String,
    /// The label as received, not yet parsed.
    pub payload: Vec<u8>,
}

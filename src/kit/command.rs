//! A query change as it arrives on a control surface: MQTT's `.../query/<q>/set` or
//! HTTP's `PUT /api/queries/<cam>/<q>`, before it is parsed or checked.

/// A spec (or an empty payload: delete) received for query `query` of `camera`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCommand {
    pub camera: String,
    pub query: String,
    pub payload: Vec<u8>,
}

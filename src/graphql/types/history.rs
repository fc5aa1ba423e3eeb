//! `Event`, `Revision`, and the connections (pages) of events and commitments.

use super::*;

/// One field a revision changed.
#[derive(SimpleObject, Clone)]
pub struct FieldChange {
    /// `title`, `description`, `target` or `dueDate`.
    pub field: String,
    /// The value before.
    pub from: Option<String>,
    /// The value after.
    pub to: Option<String>,
}

/// A change to a commitment's terms.
#[derive(Clone)]
pub struct Revision(pub RevisionRow);

#[Object]
impl Revision {
    /// The commitment version this revision created.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// What changed, field by field.
    async fn changes(&self) -> Vec<FieldChange> {
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        self.0
            .changes
            .as_array()
            .map(|changes| {
                changes
                    .iter()
                    .map(|c| FieldChange {
                        field: text(c.get("field")).unwrap_or_default(),
                        from: text(c.get("from")),
                        to: text(c.get("to")),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    /// When the change took effect.
    async fn effective_on(&self) -> Date {
        Date(self.0.effective_on)
    }
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    async fn actor(&self) -> &str {
        &self.0.actor
    }
    async fn cursor(&self) -> String {
        self.0.cursor.encode()
    }
}

/// An immutable event with its envelope.
#[derive(Clone)]
pub struct Event(pub Arc<StoredEvent>);

#[Object]
impl Event {
    async fn id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    /// Its place in committed order: pass as `after` to read or subscribe from here.
    async fn cursor(&self) -> String {
        self.0.cursor().encode()
    }
    async fn stream_id(&self) -> ID {
        ID(self.0.stream_id.to_string())
    }
    /// `commitment` or `evidence`.
    async fn stream_type(&self) -> &str {
        &self.0.stream_type
    }
    /// 1, 2, 3… within the stream.
    async fn version(&self) -> i32 {
        self.0.version
    }
    /// The global position (a tie-breaker; committed order is given by `cursor`).
    async fn position(&self) -> String {
        self.0.position.to_string()
    }
    /// The event type, e.g. `CommitmentAssessed`.
    #[graphql(name = "type")]
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    async fn schema_version(&self) -> i32 {
        self.0.schema_version
    }
    /// The payload, personal values in clear (`[erased]` once erased; the leaf holds them
    /// only as commitments).
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.0.opened_payload().into_owned())
    }
    /// Who wrote it (`[erased]` once erased).
    async fn actor(&self) -> &str {
        self.0.actor()
    }
    /// The personal fields whose values were erased (`actor`, `submittedBy`): they read
    /// `[erased]`, and their commitments in the leaf open to nothing any more.
    async fn erased_fields(&self) -> Vec<String> {
        self.0.erased_fields()
    }
    /// The role they held.
    async fn role(&self) -> Option<&str> {
        self.0.metadata.get("role").and_then(|v| v.as_str())
    }
    /// The request that carried it.
    async fn request_id(&self) -> Option<&str> {
        self.0.metadata.get("requestId").and_then(|v| v.as_str())
    }
    /// Business time: when it happened in the world.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }
    /// Its index in the transparency log's tree; null until the sequencer has given it one
    /// (about a second after its commit).
    async fn leaf_index(&self, ctx: &Context<'_>) -> ApiResult<Option<i64>> {
        Ok(log::leaf_of(ctx, self.0.event_id)
            .await?
            .map(|index| index as i64))
    }
    /// Its leaf bytes (RFC 8785 JSON, personal values as commitments), base64: what the tree
    /// hashes, as `/log/tile/entries/…` serves it.
    async fn leaf(&self, ctx: &Context<'_>) -> ApiResult<Option<String>> {
        use base64::Engine;
        let leaf = crate::tlog::leaf::leaf_bytes(&self.0.chain_input());
        Ok(log::leaf_of(ctx, self.0.event_id)
            .await?
            .map(|_| base64::engine::general_purpose::STANDARD.encode(leaf)))
    }
    /// The proof that its leaf is in the tree of `treeSize` leaves (default: the latest
    /// checkpoint's size); null until the event is in that tree.
    async fn inclusion_proof(
        &self,
        ctx: &Context<'_>,
        tree_size: Option<i32>,
    ) -> ApiResult<Option<InclusionProof>> {
        let leaf = log::leaf_of(ctx, self.0.event_id).await?;
        log::inclusion_proof(ctx, leaf, tree_size).await
    }
    /// Transaction time: when this system stored it.
    async fn recorded_at(&self) -> DateTime<Utc> {
        self.0.recorded_at
    }
    /// SHA-256 chain hash, hex.
    async fn hash(&self) -> String {
        hex::encode(&self.0.hash)
    }
    /// The previous event's hash in the stream, hex (null for version 1).
    async fn previous_hash(&self) -> Option<String> {
        self.0.previous_hash.as_ref().map(hex::encode)
    }
}

/// What `totalCount` counts, evaluated only when asked for.
#[derive(Clone)]
pub enum TotalCount {
    /// Commitments matching a filter.
    Commitments(read::CommitmentFilter),
    /// A commitment's history.
    History(Uuid),
    /// A commitment's history as a time-travel view holds it.
    HistoryAt(Box<read::HistoryAt>),
    /// Events matching filters.
    Events(Option<Uuid>, Option<Vec<String>>),
    /// Already known (a time-travel view counts in memory).
    Known(i64),
}

/// Extra fields of every connection.
pub struct ConnectionFields(pub TotalCount);

#[Object]
impl ConnectionFields {
    /// How many items the whole list holds.
    async fn total_count(&self, ctx: &Context<'_>) -> ApiResult<i64> {
        let pool = pool(ctx)?;
        match &self.0 {
            TotalCount::Commitments(f) => read::count_commitments(pool, f).await.api(),
            TotalCount::History(id) => read::history_count(pool, *id).await.api(),
            TotalCount::HistoryAt(h) => read::history_at_count(pool, h).await.api(),
            TotalCount::Known(n) => Ok(*n),
            TotalCount::Events(stream, types) => {
                read::events_count(pool, *stream, types.as_deref())
                    .await
                    .api()
            }
        }
    }
}

/// A page of events.
pub type EventConnection = Connection<String, Event, ConnectionFields>;
/// A page of commitments.
pub type CommitmentConnection = Connection<String, Commitment, ConnectionFields>;

/// Builds an event page from `limit + 1` rows.
pub fn event_connection(
    mut rows: Vec<StoredEvent>,
    limit: i64,
    has_previous: bool,
    total: TotalCount,
) -> EventConnection {
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut conn =
        Connection::with_additional_fields(has_previous, has_next, ConnectionFields(total));
    conn.edges.extend(rows.into_iter().map(|e| {
        let e = Arc::new(e);
        Edge::new(e.cursor().encode(), Event(e))
    }));
    conn
}

/// Builds a commitment page from `limit + 1` rows.
pub fn commitment_connection(
    mut rows: Vec<CommitmentRow>,
    limit: i64,
    has_previous: bool,
    total: TotalCount,
    source: &Source,
    prefetched: Option<Arc<Prefetched>>,
) -> CommitmentConnection {
    let has_next = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut conn =
        Connection::with_additional_fields(has_previous, has_next, ConnectionFields(total));
    conn.edges.extend(rows.into_iter().map(|c| {
        Edge::new(
            ListCursor(c.registered_position).encode(),
            Commitment {
                prefetched: prefetched.clone(),
                ..source.commitment(c)
            },
        )
    }));
    conn
}

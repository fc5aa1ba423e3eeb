-- The event log: the single source of truth. Every other table can be rebuilt from it.

create table events (
    -- Global position from a sequence: total order inside a transaction, a tie-breaker across
    -- them. Sequence order is NOT commit order, so readers never page on position alone.
    position        bigint generated always as identity primary key,
    -- The id of the transaction that appended the event. Readers order by
    -- (transaction_id, position) and read only below the oldest running transaction
    -- (pg_snapshot_xmin), so an event whose transaction commits late is never skipped.
    -- Stored as bigint (xid8 as a number) so clients and indexes handle it plainly.
    transaction_id  bigint not null default (pg_current_xact_id()::text::bigint),
    -- The event's own identity, for references and deduplication by consumers.
    event_id        uuid not null unique,
    -- The stream (one commitment or one piece of evidence) the event belongs to.
    stream_id       uuid not null,
    -- Which kind of stream; fixes which event types may appear in it.
    stream_type     text not null check (stream_type in ('commitment', 'evidence')),
    -- 1, 2, 3... within the stream, no gaps: optimistic concurrency and chain order.
    version         integer not null check (version > 0),
    -- The contract name of the event (never renamed).
    event_type      text not null,
    -- The payload's schema version: old versions are upcast on read, never rewritten.
    schema_version  integer not null check (schema_version > 0),
    -- What happened, as the domain records it.
    payload         jsonb not null,
    -- Who did it and how: actor, role, request id, idempotency key.
    metadata        jsonb not null,
    -- Business time: when it happened in the world (for validOn queries).
    occurred_at     timestamptz not null,
    -- Transaction time: when this system stored it (for asOf queries).
    recorded_at     timestamptz not null,
    -- The previous event's hash in this stream (null for version 1), kept so that a broken
    -- link is reported at the exact event.
    previous_hash   bytea check (previous_hash is null or length(previous_hash) = 32),
    -- SHA-256(previous hash || canonical encoding of envelope and payload): the chain.
    hash            bytea not null check (length(hash) = 32),
    -- Optimistic concurrency: two writers cannot both append version N.
    constraint events_stream_version_key unique (stream_id, version),
    constraint events_chain_start check ((version = 1) = (previous_hash is null))
);

-- The committed-order read path of the live feed and of catch-up reads.
create index events_committed_order on events (transaction_id, position);
create index events_type_committed_order on events (event_type, transaction_id, position);
create index events_recorded_at on events (recorded_at);

-- Events are facts: the database itself refuses to change or remove them.
create function events_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception 'events are immutable: % on events is not allowed', tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

create trigger events_no_update_or_delete
    before update or delete on events
    for each row execute function events_refuse_change();

create trigger events_no_truncate
    before truncate on events
    for each statement execute function events_refuse_change();

-- One row per stream: the lock an append takes (select ... for update) and the head of the
-- hash chain. Derivable from events; verify checks that it agrees.
create table streams (
    stream_id    uuid primary key,
    stream_type  text not null check (stream_type in ('commitment', 'evidence')),
    -- The version of the last event appended.
    version      integer not null check (version > 0),
    -- The hash of the last event appended: the next event chains from it.
    last_hash    bytea not null check (length(last_hash) = 32)
);

-- Idempotency keys: a retried command returns its first result and writes nothing.
create table idempotency_keys (
    -- Keys are scoped to the actor so one client cannot replay another's.
    actor         text not null,
    key           text not null,
    -- SHA-256 of the command as sent: the same key with another command is refused.
    command_hash  bytea not null,
    -- What the first run produced (the id of the thing created or changed).
    outcome       jsonb,
    created_at    timestamptz not null default now(),
    primary key (actor, key)
);

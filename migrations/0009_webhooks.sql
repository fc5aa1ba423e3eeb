-- Webhooks (DESIGN §13): where to deliver which events, how far each delivery has got, and a
-- log of every attempt. Operational settings, not part of the record: they are not events,
-- and deleting a webhook deletes its rows.

create table webhooks (
    id                  uuid primary key,
    -- An http:// or https:// address, checked against the private-address policy when it
    -- was created and again, through the resolver, at every delivery.
    url                 text not null,
    -- The event types delivered; empty: every type.
    event_types         text[] not null,
    description         text not null,
    -- The signing key (Standard Webhooks: HMAC-SHA256). Kept as it is, since signing needs
    -- it; shown to the admin once, as `whsec_` and its base64.
    secret              bytea not null check (length(secret) between 24 and 64),
    -- The token (id) that created it.
    created_by          uuid,
    created_at          timestamptz not null,
    -- Every event at or before this cursor (committed order) has been delivered (a 2xx
    -- answer) or is not one of `event_types`. Starts at the log's head when created.
    cursor_transaction_id bigint not null,
    cursor_position     bigint not null,
    -- `active`, or `paused` after too many failures in a row (an admin resumes it).
    state               text not null check (state in ('active', 'paused')),
    paused_at           timestamptz,
    paused_reason       text,
    -- Failed attempts at the event after the cursor, since its last success.
    failures            integer not null default 0,
    -- When the next attempt is due (null: as soon as there is an event).
    next_attempt_at     timestamptz,
    last_success_at     timestamptz
);

-- Every attempt, newest kept: what an admin reads to see why a receiver is failing.
create table webhook_deliveries (
    id              bigint generated always as identity primary key,
    webhook_id      uuid not null references webhooks (id) on delete cascade,
    event_id        uuid not null,
    event_type      text not null,
    -- 1 for the first attempt at this event, 2 for its first retry, …
    attempt         integer not null,
    attempted_at    timestamptz not null,
    -- The receiver's HTTP status, or null when none came (refused, timed out).
    status_code     integer,
    -- What went wrong, in this server's words (never the receiver's body).
    error           text,
    duration_ms     integer not null
);
create index webhook_deliveries_newest on webhook_deliveries (webhook_id, id desc);

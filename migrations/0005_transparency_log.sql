-- Personal values out of the events, and the transparency log over them (DESIGN §10, §11).
--
-- From here on an event stores a salted commitment where a personal value was (its actor, an
-- evidence submitter's name); the value and its opening live in personal_data, which erasure
-- may change. Events written before this migration hold those values in clear, and events
-- cannot change, so a database that holds any is refused: re-create it and load the data
-- again (docs/adr/0010-leaves-and-personal-data.md).
do $$
begin
    if exists (select 1 from events) then
        raise exception 'this database holds events written before personal values were kept apart from them (DESIGN §11); create a new database and load the data again'
            using errcode = 'object_not_in_prerequisite_state';
    end if;
end;
$$;

-- One row per personal value of an event: the only place it is stored in clear.
create table personal_data (
    event_id  uuid not null,
    -- `actor` (of every event) or the payload field's name (`submittedBy`).
    field     text not null,
    -- The HMAC-SHA256 key of the commitment the event holds; null once erased.
    opening   bytea check (length(opening) >= 16),
    -- The value; null once erased.
    value     text,
    primary key (event_id, field),
    constraint personal_data_erased_whole check ((opening is null) = (value is null))
);

-- Rows of the log never change either: the same refusal as for events, naming the table.
create function log_refuse_change() returns trigger
language plpgsql as $$
begin
    raise exception '% is append-only: % is not allowed', tg_table_name, tg_op
        using errcode = 'insufficient_privilege';
end;
$$;

-- The leaves: every committed event, in committed order, at indexes 0, 1, 2… without gaps
-- (the sequencer writes index n only when the log holds n leaves, in one transaction with
-- the hashes and the log's new size).
create table log_leaves (
    leaf_index  bigint primary key check (leaf_index >= 0),
    event_id    uuid not null unique,
    -- The leaf bytes (RFC 8785 JSON, tlog::leaf), as hashed into the tree.
    leaf        bytea not null
);

-- The tree's stored hashes in Go tlog's layout: each complete subtree's hash, once, at
-- stored_hash_index(level, n).
create table log_hashes (
    hash_index  bigint primary key check (hash_index >= 0),
    hash        bytea not null check (length(hash) = 32)
);

-- The sequencer's position: how many leaves the log holds and the committed-order cursor of
-- the last event given one.
create table log_state (
    singleton       boolean primary key default true check (singleton),
    size            bigint not null check (size >= 0),
    transaction_id  bigint not null,
    position        bigint not null
);
insert into log_state (size, transaction_id, position) values (0, 0, 0);

-- Every checkpoint the log signed: the served one is the latest that has its witnesses'
-- quorum.
create table log_checkpoints (
    size        bigint primary key check (size > 0),
    root_hash   bytea not null check (length(root_hash) = 32),
    -- The signed note, with the witnesses' cosignatures added as they come.
    note        text not null,
    -- How many configured witnesses have cosigned it.
    cosigned    integer not null default 0,
    signed_at   timestamptz not null default now()
);

create trigger log_leaves_append_only
    before update or delete on log_leaves
    for each row execute function log_refuse_change();
create trigger log_leaves_no_truncate
    before truncate on log_leaves
    for each statement execute function log_refuse_change();
create trigger log_hashes_append_only
    before update or delete on log_hashes
    for each row execute function log_refuse_change();
create trigger log_hashes_no_truncate
    before truncate on log_hashes
    for each statement execute function log_refuse_change();

-- Erasure finds a person's values by name.
create index personal_data_value on personal_data (value) where value is not null;

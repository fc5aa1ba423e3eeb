-- Erasing a person's data (DESIGN §11).
--
-- A PersonalDataErased event lives in a stream of its own type, `erasure`.
alter table events drop constraint events_stream_type_check,
    add constraint events_stream_type_check
        check (stream_type in ('commitment', 'evidence', 'erasure'));
alter table streams drop constraint streams_stream_type_check,
    add constraint streams_stream_type_check
        check (stream_type in ('commitment', 'evidence', 'erasure'));

-- Idempotency keys are scoped to the token that sent them (its id), no longer to its holder's
-- name, so that no key record holds a name. Keys recorded before this held names: they go.
delete from idempotency_keys;
comment on column idempotency_keys.actor is
    'the id of the token that sent the command (the nil id for the importer)';

-- The erased values, for a rebuild of the projections to find (see store::erasure).
create index personal_data_erased on personal_data (event_id) where value is null;

-- Opens an append in one round trip: enters the append gate, takes the streams' locks in the
-- order given (the caller sorts them), then reads what the command decides against: the
-- clock, the streams' heads, which of the writers' tokens are still valid, and which
-- referenced commitments and evidence exist (with evidence's retraction flag).
--
-- A volatile PL/pgSQL function runs each statement with a fresh snapshot (READ COMMITTED), so
-- the read after the locks sees what every writer it waited for committed: the same rule as
-- taking the locks and reading the heads in two statements, in one round trip.
create function open_append(
    gate bigint,
    stream_keys bigint[],
    stream_ids uuid[],
    token_ids uuid[],
    commitment_ids uuid[],
    evidence_ids uuid[]
) returns table (kind text, id uuid, stream_type text, version integer, last_hash bytea,
                 retracted boolean, at timestamptz)
language plpgsql volatile as $$
declare
    k bigint;
begin
    perform enter_append_gate(gate);
    foreach k in array stream_keys loop
        perform pg_advisory_xact_lock(k);
    end loop;
    return query
        select 'clock', null::uuid, null::text, null::integer, null::bytea, null::boolean,
               clock_timestamp()
        union all
        select 'head', s.stream_id, s.stream_type, s.version, s.last_hash, null, null
        from streams s where s.stream_id = any(stream_ids)
        union all
        select 'token', t.id, null, null, null, null, null
        from api_tokens t
        where t.id = any(token_ids) and t.revoked_at is null
          and (t.expires_at is null or t.expires_at > now())
        union all
        select 'commitment', c.id, null, null, null, null, null
        from commitments c where c.id = any(commitment_ids)
        union all
        select 'evidence', e.id, null, null, null, e.retracted, null
        from evidence e where e.id = any(evidence_ids);
end
$$;

comment on function open_append(bigint, bigint[], uuid[], uuid[], uuid[], uuid[]) is
    'enters the append gate, locks the streams and reads heads, clock, valid tokens and references in one round trip';

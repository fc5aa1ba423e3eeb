-- Plans that are made once, not at every call.
--
-- 0010's `append_horizon` is a SQL function that cannot be inlined (it has a WITH), so its
-- body was planned again in every statement that asked for the horizon: the live feed's
-- every read, about 0.3 ms each. The same body in PL/pgSQL keeps its plan for the session.
-- It stays STABLE, so it runs with its caller's snapshot, as before (ADR 0013).
create or replace function append_horizon(gate bigint) returns bigint
language plpgsql stable parallel restricted as $$
begin
    return (
        with snapshot as (
            select pg_current_snapshot() as s
        ),
        locks as materialized (
            select locktype, database, classid, objid, objsubid, transactionid, pid, mode, granted
            from pg_locks
            where locktype in ('advisory', 'transactionid')
        ),
        -- Sessions holding or awaiting the gate in this database.
        appenders as (
            select pid from locks
            where locktype = 'advisory'
              and database = (select oid from pg_database where datname = current_database())
              and classid = (gate >> 32)::oid
              and objid = (gate & 4294967295)::oid
              and objsubid = 1
        ),
        -- Transactions running now that cannot append: each holds its own id's lock.
        bystanders as (
            select transactionid from locks
            where locktype = 'transactionid' and mode = 'ExclusiveLock' and granted
              and pid is not null and pid not in (select pid from appenders)
        )
        select case
            when pg_is_in_recovery() then
                (select pg_snapshot_xmin(s)::text::bigint from snapshot)
            else coalesce(
                (select min(x::text::bigint)
                 from snapshot, pg_snapshot_xip(s) as x
                 where x::xid not in (select transactionid from bystanders)),
                (select pg_snapshot_xmax(s)::text::bigint from snapshot))
        end
    );
end
$$;

-- `open_append` (0011) now also makes the rest of its transaction use generic plans.
create or replace function open_append(
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
    -- The append's own statement, sent next in this transaction, is planned once per
    -- connection instead of at every Bind (its shape depends on no value).
    perform set_config('plan_cache_mode', 'force_generic_plan', true);
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

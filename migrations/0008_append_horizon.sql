-- The append horizon (ADR 0013): the transaction id below which no transaction that can still
-- append events is running, as seen by the calling statement's snapshot.
--
-- Every appending transaction takes the advisory lock `gate` (shared) before it writes
-- anything, so before it has a transaction id. A transaction in the snapshot's in-progress
-- list that is still running and does not hold the gate therefore never appends: it is
-- passed over, whichever database or table it writes. One that has ended since the snapshot
-- was taken (its locks are gone, so what it was cannot be told) holds the horizon back, as
-- does one without a backend (a prepared transaction): the horizon errs only towards waiting.
--
-- STABLE, so it runs with the snapshot of the statement that calls it: the in-progress list
-- is exactly the one that statement's reads of `events` are made with. Call it as
-- `(select append_horizon(gate))` so that it runs once per statement.
create function append_horizon(gate bigint) returns bigint
language sql stable parallel restricted as $$
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
    select coalesce(
        (select min(x::text::bigint)
         from snapshot, pg_snapshot_xip(s) as x
         where x::xid not in (select transactionid from bystanders)),
        (select pg_snapshot_xmax(s)::text::bigint from snapshot))
$$;

comment on function append_horizon(bigint) is
    'the lowest transaction id that may still append events, as the calling statement sees it (ADR 0013)';

-- Enters the append gate: takes it shared, refusing if this transaction has written before
-- without holding it (it would have a transaction id that the horizon passes over as a
-- bystander's). Taking it again, once inside, is allowed.
create function enter_append_gate(gate bigint) returns void
language plpgsql as $$
begin
    if pg_current_xact_id_if_assigned() is not null and not exists (
        select 1 from pg_locks
        where pid = pg_backend_pid() and locktype = 'advisory'
          and database = (select oid from pg_database where datname = current_database())
          and classid = (gate >> 32)::oid and objid = (gate & 4294967295)::oid
          and objsubid = 1 and granted)
    then
        raise exception 'an append must enter the append gate before its transaction writes'
            using errcode = 'P0001', hint = 'take the stream locks first (ADR 0013)';
    end if;
    perform pg_advisory_xact_lock_shared(gate);
end
$$;

-- The append horizon on a streaming replica (ADR 0015).
--
-- A replica sees neither the primary's advisory locks nor its transaction-id locks, and its
-- snapshots keep the primary's running transactions apart from `pg_current_snapshot()`'s
-- in-progress list (hot standby stores them with the subtransactions), so that list is
-- always empty there: 0008's function would answer the snapshot's xmax and let a reader pass
-- a transaction that is still appending on the primary. The snapshot's xmin is right on a
-- replica (the oldest transaction the primary is still running), so there the horizon is
-- the cluster horizon: it waits for every running transaction, never skips one.
create or replace function append_horizon(gate bigint) returns bigint
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
    select case
        when pg_is_in_recovery() then
            (select pg_snapshot_xmin(s)::text::bigint from snapshot)
        else coalesce(
            (select min(x::text::bigint)
             from snapshot, pg_snapshot_xip(s) as x
             where x::xid not in (select transactionid from bystanders)),
            (select pg_snapshot_xmax(s)::text::bigint from snapshot))
    end
$$;

comment on function append_horizon(bigint) is
    'the lowest transaction id that may still append events, as the calling statement sees it (ADR 0013; on a replica, the cluster horizon: ADR 0015)';

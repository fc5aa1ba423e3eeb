-- Query documents registered under their SHA-256: Apollo's automatic persisted queries, and
-- the only documents that run when PERSISTED_QUERIES_ONLY is set. Every server process reads
-- this one table, so a document registered through one is known to all behind a load
-- balancer. A hash names one text forever: rows are only ever inserted.
create table persisted_queries (
    -- Lower-case hex SHA-256 of the document's UTF-8 text, as clients send it.
    sha256        text primary key check (sha256 ~ '^[0-9a-f]{64}$'),
    document      text not null,
    registered_at timestamptz not null default now()
);

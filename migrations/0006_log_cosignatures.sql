-- Witnesses' cosignatures on the log's checkpoints (DESIGN §10; C2SP tlog-witness and
-- tlog-cosignature). A checkpoint is served only once enough of the configured witnesses have
-- cosigned it (LOG_WITNESS_QUORUM); each cosignature is kept here, and its line is appended to
-- the checkpoint's note in the same statement.
create table log_cosignatures (
    -- The checkpoint cosigned.
    size         bigint not null references log_checkpoints (size),
    -- The witness: its cosignature/v1 verifier key.
    witness      text not null,
    -- The note signature line the witness returned ("— <name> <base64>").
    line         text not null,
    cosigned_at  timestamptz not null default now(),
    -- Also the index for "the largest checkpoint this witness cosigned".
    primary key (witness, size)
);

create index log_cosignatures_size on log_cosignatures (size);

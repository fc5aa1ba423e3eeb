-- API tokens. The token itself is shown once and never stored: only its SHA-256.
create table api_tokens (
    id          uuid primary key,
    -- Who holds it; recorded as the actor of every event written with it.
    name        text not null,
    role        text not null check (role in ('contributor', 'assessor', 'admin')),
    -- SHA-256 of the token. Tokens are 256 random bits, so a fast hash is enough: there is
    -- nothing to brute-force, and a lookup by hash is one index probe.
    token_hash  bytea not null unique check (length(token_hash) = 32),
    created_at  timestamptz not null default now(),
    expires_at  timestamptz,
    revoked_at  timestamptz
);

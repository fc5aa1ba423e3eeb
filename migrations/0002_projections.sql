-- Projections: current state, updated in the same transaction as each append.
-- Disposable: every row here can be rebuilt by replaying the events table.

create table commitments (
    id              uuid primary key,
    -- Unique: the commitment's public key in URLs and queries.
    slug            text not null unique,
    title           text not null,
    description     text not null,
    area            text not null,
    policy_source   text not null,
    target          text not null,
    due_date        date,
    owner           text,
    announced_on    date not null,
    -- The stream version: what a client passes back as expectedVersion.
    version         integer not null,
    -- The assessment with the latest assessed_on (ties: the later position); kept here so
    -- that filtering a list by current rating or status is one join, not a scan.
    current_assessment_id uuid,
    -- Registration order: the stable order of lists and their page cursors.
    registered_position   bigint not null unique,
    registered_at   timestamptz not null,
    updated_at      timestamptz not null,
    -- The cursor of the commitment's latest event: a client that has read this state
    -- subscribes `after` it and misses nothing.
    last_transaction_id bigint not null,
    last_position       bigint not null
);
create index commitments_area on commitments (area, registered_position);

create table assessments (
    id               uuid primary key,
    commitment_id    uuid not null references commitments (id),
    assessor         text not null,
    assessor_kind    text not null check (assessor_kind in ('INDEPENDENT', 'GOVERNMENT', 'OTHER')),
    assessed_on      date not null,
    overall          text check (overall in ('OUTSTANDING', 'GOOD', 'REQUIRES_IMPROVEMENT', 'INADEQUATE')),
    met              text check (met in ('OUTSTANDING', 'GOOD', 'REQUIRES_IMPROVEMENT', 'INADEQUATE')),
    funding          text check (funding in ('OUTSTANDING', 'GOOD', 'REQUIRES_IMPROVEMENT', 'INADEQUATE')),
    impact           text check (impact in ('OUTSTANDING', 'GOOD', 'REQUIRES_IMPROVEMENT', 'INADEQUATE')),
    appropriateness  text check (appropriateness in ('OUTSTANDING', 'GOOD', 'REQUIRES_IMPROVEMENT', 'INADEQUATE')),
    delivery_status  text not null,
    rationale        text not null,
    evidence_ids     uuid[] not null,
    evaluation       text,
    -- The appending event's place in the log: order ties and the subscription cursor.
    position         bigint not null unique,
    transaction_id   bigint not null,
    recorded_at      timestamptz not null,
    actor            text not null
);
-- How a verdict evolved: assessments of a commitment in (assessed_on, position) order.
create index assessments_timeline on assessments (commitment_id, assessed_on, position);

create table evidence (
    id                 uuid primary key,
    commitment_ids     uuid[] not null,
    title              text not null,
    summary            text not null,
    source_url         text,
    submitted_by       text not null,
    organisation       text,
    submitted_on       date not null,
    kind               text not null,
    retracted          boolean not null default false,
    retraction_reason  text,
    retracted_on       date,
    version            integer not null,
    position           bigint not null unique,
    transaction_id     bigint not null,
    recorded_at        timestamptz not null,
    actor              text not null
);

-- Which evidence concerns which commitment (evidence may concern several).
create table evidence_commitments (
    commitment_id  uuid not null references commitments (id),
    evidence_id    uuid not null references evidence (id),
    primary key (commitment_id, evidence_id)
);
create index evidence_commitments_evidence on evidence_commitments (evidence_id);

create table disputes (
    id              uuid primary key,
    assessment_id   uuid not null references assessments (id),
    commitment_id   uuid not null references commitments (id),
    disputed_by     text not null,
    statement       text not null,
    disputed_on     date not null,
    evidence_ids    uuid[] not null,
    position        bigint not null unique,
    transaction_id  bigint not null,
    recorded_at     timestamptz not null,
    actor           text not null
);
create index disputes_assessment on disputes (assessment_id, position);

-- Each revision with what it changed: [{field, from, to}], captured when it was applied.
create table revisions (
    commitment_id   uuid not null references commitments (id),
    version         integer not null,
    changes         jsonb not null,
    reason          text not null,
    effective_on    date not null,
    position        bigint not null unique,
    transaction_id  bigint not null,
    recorded_at     timestamptz not null,
    actor           text not null,
    primary key (commitment_id, version)
);

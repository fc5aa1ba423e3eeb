-- Time travel without reading every assessment.
--
-- A view at an instant or a date folds every event but the assessments, which it reads
-- through the assessments table instead. With only `events_type_committed_order`, that fold
-- scanned the whole log to pass over the assessments (most of a long log); this partial
-- index holds the others in committed order, so the fold reads only what it folds. Appends
-- of assessments do not touch it.
create index events_unassessed_committed_order on events (transaction_id, position)
    where event_type <> 'CommitmentAssessed';

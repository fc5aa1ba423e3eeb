-- The API's spellings of values, for answers PostgreSQL builds itself (compiled reads:
-- `src/graphql/compiled`). Each writes a value exactly as the GraphQL layer writes it, so
-- that an answer built here and one built field by field are the same bytes.

-- `DateTime`: RFC 3339 in UTC with a `+00:00` offset and as many fractional digits as the
-- value needs, in groups of three (none, milliseconds or microseconds), as chrono's
-- `to_rfc3339` writes it.
create function api_timestamp(t timestamptz) returns text
    language sql stable strict parallel safe
    return to_char(t at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || case
               when extract(microseconds from t at time zone 'UTC')::bigint % 1000000 = 0 then ''
               when extract(microseconds from t at time zone 'UTC')::bigint % 1000 = 0
                   then '.' || to_char(t at time zone 'UTC', 'MS')
               else '.' || to_char(t at time zone 'UTC', 'US')
           end
        || '+00:00';

-- A place in the event log (`EventCursor`): `e1.` and the transaction id and position as
-- two big-endian 64-bit integers in hex.
create function api_event_cursor(transaction_id bigint, pos bigint) returns text
    language sql immutable strict parallel safe
    return 'e1.' || lpad(to_hex(transaction_id), 16, '0') || lpad(to_hex(pos), 16, '0');

-- A place in a list ordered by one position (`ListCursor`): `l1.`, the position, and the
-- position with its bits flipped (two's complement hex, as `to_hex` writes a negative).
create function api_list_cursor(pos bigint) returns text
    language sql immutable strict parallel safe
    return 'l1.' || lpad(to_hex(pos), 16, '0') || lpad(to_hex(~pos), 16, '0');

// Delivery scenarios with the graphql-ws client library (graphql-transport-ws protocol).
//
// Environment: WRITER_URL (http://host:port of the process that takes writes), READER_WS_URL
// (ws://host:port/graphql/ws of the process that serves subscriptions), TOKEN (an admin token).
// Prints one JSON line per scenario; exits non-zero on the first failed check.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const { WRITER_URL, READER_WS_URL, TOKEN } = process.env;
if (!WRITER_URL || !READER_WS_URL || !TOKEN) {
  console.error('WRITER_URL, READER_WS_URL and TOKEN are required');
  process.exit(2);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function gql(query, variables) {
  const response = await fetch(`${WRITER_URL}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

async function register(slug) {
  const data = await gql(
    `mutation($input: RegisterCommitmentInput!) { registerCommitment(input: $input) { id cursor } }`,
    { input: { slug, title: slug, description: 'd', area: 'a', policySource: 'p', target: 't', announcedOn: '2022-06-29' } },
  );
  return data.registerCommitment;
}

async function assess(commitmentId, key) {
  const data = await gql(
    `mutation($input: AssessCommitmentInput!) { assessCommitment(input: $input) { id cursor } }`,
    {
      input: {
        commitmentId, assessor: 'Panel', assessorKind: 'INDEPENDENT', assessedOn: '2023-02-17',
        overall: 'INADEQUATE', deliveryStatus: 'NOT_ON_TRACK', rationale: 'r', idempotencyKey: key,
      },
    },
  );
  return data.assessCommitment;
}

function client() {
  return createClient({
    url: READER_WS_URL,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${TOKEN}` },
    retryAttempts: 0,
  });
}

const RATING_CHANGED = `subscription($after: String) { ratingChanged(after: $after) { id cursor } }`;

/** Subscribes after `after` and resolves with the first `n` items. */
function take(c, after, n, onReady) {
  return new Promise((resolve, reject) => {
    const items = [];
    const timer = setTimeout(() => reject(new Error(`only ${items.length} of ${n} items arrived`)), 60_000);
    const dispose = c.subscribe(
      { query: RATING_CHANGED, variables: { after } },
      {
        next: (value) => {
          if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
          items.push(value.data.ratingChanged);
          if (items.length === n) {
            clearTimeout(timer);
            dispose();
            resolve(items);
          }
        },
        error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
        complete: () => {},
      },
    );
    if (onReady) onReady().catch(reject);
  });
}

function assertExactlyOnceInOrder(items, expectedIds) {
  const ids = items.map((i) => i.id);
  check(new Set(ids).size === ids.length, 'an item was delivered twice');
  check(ids.length === expectedIds.size && ids.every((id) => expectedIds.has(id)), 'delivered set differs');
  for (let i = 1; i < items.length; i++) {
    check(items[i - 1].cursor < items[i].cursor, `cursor order broken at ${i}`);
  }
}

async function pool(tasks, width) {
  const results = [];
  let next = 0;
  async function worker() {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  }
  await Promise.all(Array.from({ length: width }, worker));
  return results;
}

async function concurrentThroughOneProcess() {
  const commitments = [];
  for (let i = 0; i < 10; i++) commitments.push(await register(`node-c-${i}`));
  const after = commitments[commitments.length - 1].cursor;
  const c = client();
  let made;
  const items = await take(c, after, 200, async () => {
    made = await pool(
      Array.from({ length: 200 }, (_, i) => () => assess(commitments[i % 10].id, `node-${i}`)),
      32,
    );
  });
  await c.dispose();
  assertExactlyOnceInOrder(items, new Set(made.map((m) => m.id)));
  return { scenario: 'two processes, 200 concurrent assessments', delivered: items.length };
}

async function disconnectAndResume() {
  const commitment = await register('node-resume');
  const first = client();
  const seen = await take(first, commitment.cursor, 3, async () => {
    for (let i = 0; i < 3; i++) await assess(commitment.id, `node-resume-${i}`);
  });
  await first.dispose();
  const missed = [];
  for (let i = 3; i < 23; i++) missed.push((await assess(commitment.id, `node-resume-${i}`)).id);
  const second = client();
  const resumed = await take(second, seen[seen.length - 1].cursor, 20);
  await second.dispose();
  check(JSON.stringify(resumed.map((r) => r.id)) === JSON.stringify(missed), 'resume did not give exactly the missed 20 in order');
  return { scenario: 'disconnect, 20 changes, resume', delivered: resumed.length };
}

try {
  for (const scenario of [concurrentThroughOneProcess, disconnectAndResume]) {
    console.log(JSON.stringify(await scenario()));
  }
} catch (e) {
  console.error(`FAILED: ${e.stack || e}`);
  process.exit(1);
}

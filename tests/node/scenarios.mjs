// Delivery scenarios with the graphql-ws client library (graphql-transport-ws protocol).
//
// Environment: WRITER_URL (http://host:port of the process that takes writes), READER_WS_URL
// (ws://host:port/graphql/ws of the process that serves subscriptions), TOKEN (an admin token).
// Prints one JSON line per scenario; exits non-zero on the first failed check.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const { WRITER_URL, TOKEN } = process.env;
let READER_WS_URL = process.env.READER_WS_URL;
if (!WRITER_URL || !READER_WS_URL || !TOKEN) {
  console.error('WRITER_URL, READER_WS_URL and TOKEN are required');
  process.exit(2);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// The driving test answers on standard input when asked to inject a fault.
const stdinLines = (async function* () {
  let buffer = '';
  for await (const chunk of process.stdin) {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf('\n')) >= 0) {
      yield buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
    }
  }
})();

/** Asks the driving test to inject `fault` and returns its answer. */
async function fault(name) {
  console.log(JSON.stringify({ await: name }));
  const { value, done } = await stdinLines.next();
  if (done) throw new Error(`no answer to ${name}`);
  return value.trim();
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

/** Retries with the same idempotency key until recorded: exactly once despite faults. */
async function assessUntilRecorded(commitmentId, key) {
  for (let attempt = 0; attempt < 400; attempt++) {
    try {
      return await assess(commitmentId, key);
    } catch {
      await new Promise((r) => setTimeout(r, 25 + Math.min(attempt, 20) * 10));
    }
  }
  throw new Error(`assessment ${key} was never recorded`);
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

/**
 * Subscribes after `after`, runs `onReady` (the writes), and resolves with the first `n`
 * items once both the items have arrived and the writes have finished.
 */
async function take(c, after, n, onReady) {
  let writes = Promise.resolve();
  const items = await new Promise((resolve, reject) => {
    const received = [];
    const timer = setTimeout(() => reject(new Error(`only ${received.length} of ${n} items arrived`)), 60_000);
    const dispose = c.subscribe(
      { query: RATING_CHANGED, variables: { after } },
      {
        next: (value) => {
          if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
          received.push(value.data.ratingChanged);
          if (received.length === n) {
            clearTimeout(timer);
            dispose();
            resolve(received);
          }
        },
        error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
        complete: () => {},
      },
    );
    if (onReady) {
      writes = onReady();
      writes.catch(reject);
    }
  });
  await writes;
  return items;
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

/** Database connections cut mid-stream: the subscription carries on, nothing lost or repeated. */
async function connectionsCut() {
  const commitment = await register('node-cut');
  const c = client();
  const made = [];
  const items = await take(c, commitment.cursor, 20, async () => {
    for (let i = 0; i < 10; i++) made.push((await assessUntilRecorded(commitment.id, `node-cut-${i}`)).id);
    await fault('terminate-backends');
    for (let i = 10; i < 20; i++) made.push((await assessUntilRecorded(commitment.id, `node-cut-${i}`)).id);
  });
  await c.dispose();
  assertExactlyOnceInOrder(items, new Set(made));
  return { scenario: 'database connections cut', delivered: items.length };
}

/** A transaction that took the lower position commits last: both arrive, once, in order. */
async function lateCommit() {
  const a = await register('node-late-a');
  const b = await register('node-late-b');
  const c = client();
  const items = await new Promise((resolve, reject) => {
    const received = [];
    const timer = setTimeout(() => reject(new Error(`only ${received.length} of 2 events arrived`)), 60_000);
    const dispose = c.subscribe(
      {
        query: 'subscription($after: String) { events(after: $after, types: ["CommitmentAssessed"]) { streamId cursor } }',
        variables: { after: b.cursor },
      },
      {
        next: (value) => {
          if (value.errors) return reject(new Error(JSON.stringify(value.errors)));
          received.push(value.data.events);
          if (received.length === 2) {
            clearTimeout(timer);
            dispose();
            resolve(received);
          }
        },
        error: (e) => reject(e instanceof Error ? e : new Error(JSON.stringify(e))),
        complete: () => {},
      },
    );
    (async () => {
      // The test opens a transaction that appends to A and holds it open...
      await fault(`hold-transaction ${a.id}`);
      // ...while an assessment of B (a later position) commits...
      await assess(b.id, 'node-late-b');
      // ...and only then is A's transaction committed.
      await fault('commit-held');
    })().catch(reject);
  });
  await c.dispose();
  check(items[0].streamId === a.id && items[1].streamId === b.id, `order ${JSON.stringify(items)}`);
  check(items[0].cursor < items[1].cursor, 'cursor order');
  return { scenario: 'late commit', delivered: items.length };
}

/** PostgreSQL restarted mid-stream: the servers reconnect, nothing lost or repeated. */
async function postgresRestarted() {
  const commitment = await register('node-pg-restart');
  const c = client();
  const made = [];
  const items = await take(c, commitment.cursor, 20, async () => {
    for (let i = 0; i < 10; i++) made.push((await assessUntilRecorded(commitment.id, `node-pg-${i}`)).id);
    await fault('restart-postgres');
    for (let i = 10; i < 20; i++) made.push((await assessUntilRecorded(commitment.id, `node-pg-${i}`)).id);
  });
  await c.dispose();
  assertExactlyOnceInOrder(items, new Set(made));
  return { scenario: 'postgres restarted', delivered: items.length };
}

/** The subscribing server killed: resume on a new one from the last cursor. */
async function serverRestarted() {
  const commitment = await register('node-restart');
  const first = client();
  const made = [];
  const seen = await take(first, commitment.cursor, 5, async () => {
    for (let i = 0; i < 5; i++) made.push((await assessUntilRecorded(commitment.id, `node-restart-${i}`)).id);
  });
  await first.dispose();
  READER_WS_URL = await fault('restart-reader');
  for (let i = 5; i < 20; i++) made.push((await assessUntilRecorded(commitment.id, `node-restart-${i}`)).id);
  const second = client();
  const rest = await take(second, seen[seen.length - 1].cursor, 15);
  await second.dispose();
  assertExactlyOnceInOrder([...seen, ...rest], new Set(made));
  return { scenario: 'server restarted, resumed from cursor', delivered: seen.length + rest.length };
}

try {
  for (const scenario of [
    concurrentThroughOneProcess,
    lateCommit,
    disconnectAndResume,
    connectionsCut,
    postgresRestarted,
    serverRestarted,
  ]) {
    console.log(JSON.stringify(await scenario()));
  }
} catch (e) {
  console.error(`FAILED: ${e.stack || e}`);
  process.exit(1);
}
process.exit(0);

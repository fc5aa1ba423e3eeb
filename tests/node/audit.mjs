// graphql-http's audit suite for the GraphQL-over-HTTP specification against a running
// server. Environment: SERVER_URL (http://host:port). Prints one JSON line per audit that is
// not ok and a summary line; exits 1 when any audit warns or errs.
import { serverAudits } from 'graphql-http';

const { SERVER_URL } = process.env;
if (!SERVER_URL) {
  console.error('SERVER_URL is required');
  process.exit(2);
}
const counts = { ok: 0, warn: 0, error: 0 };
for (const audit of serverAudits({ url: `${SERVER_URL}/graphql`, fetchFn: fetch })) {
  const result = await audit.fn();
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    let body = '';
    try { body = result.response ? (await result.response.text()).slice(0, 300) : ''; } catch {}
    console.log(JSON.stringify({ id: audit.id, name: audit.name, status: result.status, reason: result.reason, body }));
  }
}
console.log(JSON.stringify({ summary: counts }));
process.exit(counts.warn + counts.error === 0 ? 0 : 1);

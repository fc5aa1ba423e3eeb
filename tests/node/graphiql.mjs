// GraphiQL at GET /graphql in headless Chromium, with every request to another host blocked:
// the page renders, the docs pane lists Query, Mutation and Subscription, the README's
// example query answers, and a subscription typed into the editor shows an assessment made
// meanwhile.
//
// Environment: SERVER_URL (http://host:port), TOKEN (an admin token), README_QUERY (the
// README's first example), CHROMIUM (the browser; default /usr/bin/chromium), SCREENSHOT (a
// file to write the last screen to, optional). Prints one JSON line per check; exits
// non-zero on the first failed one.
import * as shared from './browser.mjs';
import { launch } from './browser.mjs';

const { SERVER_URL, TOKEN, README_QUERY, SCREENSHOT } = process.env;
if (!SERVER_URL || !TOKEN || !README_QUERY) {
  console.error('SERVER_URL, TOKEN and README_QUERY are required');
  process.exit(2);
}
const origin = new URL(SERVER_URL).origin;
const PATIENCE = 30_000;

function report(check, details = {}) {
  console.log(JSON.stringify({ check, ok: true, ...details }));
}

const gql = (query, variables, token) => shared.gql(SERVER_URL, query, variables, token);

const { browser, close } = await launch('graphiql');
let page;
try {
  page = await browser.newPage();
  await page.setViewport({ width: 1400, height: 900 });

  // Every request must stay on this server; anything else is refused and remembered.
  const elsewhere = [];
  const failed = [];
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:') || new URL(url).origin === origin) {
      request.continue();
    } else {
      elsewhere.push(url);
      request.abort();
    }
  });
  page.on('requestfailed', (request) => failed.push(request.url()));
  page.on('pageerror', (error) => failed.push(`page error: ${error.message}`));
  const cdp = await page.createCDPSession();
  await cdp.send('Network.enable');
  const sockets = [];
  cdp.on('Network.webSocketCreated', (event) => sockets.push(event.url));

  await page.goto(`${SERVER_URL}/graphql`, { waitUntil: 'networkidle0', timeout: PATIENCE });
  await page.waitForSelector('.graphiql-container', { timeout: PATIENCE });
  await page.waitForSelector('.graphiql-query-editor .CodeMirror', { timeout: PATIENCE });
  report('page renders', { title: await page.title() });

  // The docs pane, from the schema GraphiQL fetched by introspection.
  await page.click('button[aria-label="Show Documentation Explorer"]');
  await page.waitForSelector('.graphiql-doc-explorer', { timeout: PATIENCE });
  await page.waitForFunction(
    () => {
      const text = document.querySelector('.graphiql-doc-explorer')?.innerText ?? '';
      return ['Query', 'Mutation', 'Subscription'].every((t) => text.includes(t));
    },
    { timeout: PATIENCE },
  );
  const docs = await page.$eval('.graphiql-doc-explorer', (e) => e.innerText);
  report('docs pane lists the root types', { docs: docs.replace(/\s+/g, ' ').slice(0, 200) });

  const setQuery = (text) =>
    page.$eval('.graphiql-query-editor .CodeMirror', (e, t) => e.CodeMirror.setValue(t), text);
  const response = () =>
    page.$eval('.graphiql-response .CodeMirror', (e) => e.CodeMirror.getValue()).catch(() => '');
  const run = () => page.click('button.graphiql-execute-button');

  // The README's example query.
  await setQuery(README_QUERY);
  await run();
  await page.waitForFunction(
    () => {
      const e = document.querySelector('.graphiql-response .CodeMirror');
      return e && e.CodeMirror.getValue().includes('"data"');
    },
    { timeout: PATIENCE },
  );
  const answer = JSON.parse(await response());
  if (answer.errors || !answer.data?.commitments?.nodes?.length) {
    throw new Error(`the README's query answered ${JSON.stringify(answer).slice(0, 500)}`);
  }
  report("the README's query answers", { commitments: answer.data.commitments.totalCount });

  // A subscription typed into the editor, from the commitment's cursor so that the
  // assessment made next reaches it however long the subscription takes to start.
  const { commitment } = await gql('{ commitment(slug: "epr-all-trusts") { id cursor } }');
  const subscription = `subscription { ratingChanged(commitmentId: "${commitment.id}", after: "${commitment.cursor}") { id overall rationale } }`;
  await page.click('.graphiql-query-editor .CodeMirror');
  await page.keyboard.down('Control');
  await page.keyboard.press('KeyA');
  await page.keyboard.up('Control');
  await page.keyboard.press('Backspace');
  await page.keyboard.type(subscription);
  await page.keyboard.press('Escape'); // close any completion list
  const typed = await page.$eval('.graphiql-query-editor .CodeMirror', (e) => e.CodeMirror.getValue());
  if (typed.replace(/\s+/g, '') !== subscription.replace(/\s+/g, '')) {
    throw new Error(`the editor holds ${JSON.stringify(typed)}`);
  }
  await run();
  const { assessCommitment } = await gql(
    `mutation($input: AssessCommitmentInput!) { assessCommitment(input: $input) { id } }`,
    {
      input: {
        commitmentId: commitment.id, assessor: 'GraphiQL test panel', assessorKind: 'INDEPENDENT',
        assessedOn: '2025-08-01', overall: 'GOOD', deliveryStatus: 'ON_TRACK',
        rationale: 'Seen live in GraphiQL',
      },
    },
    TOKEN,
  );
  await page.waitForFunction(
    (id) => {
      const e = document.querySelector('.graphiql-response .CodeMirror');
      return e && e.CodeMirror.getValue().includes(id);
    },
    { timeout: PATIENCE },
    assessCommitment.id,
  );
  report('a typed subscription shows an assessment made meanwhile', { id: assessCommitment.id });

  const foreignSockets = sockets.filter((url) => new URL(url.replace(/^ws/, 'http')).origin !== origin);
  if (elsewhere.length || foreignSockets.length) {
    throw new Error(`requests to other hosts: ${JSON.stringify([...elsewhere, ...foreignSockets])}`);
  }
  if (failed.length) throw new Error(`failed requests or page errors: ${JSON.stringify(failed)}`);
  report('no request left this server', { websockets: sockets });
} finally {
  if (SCREENSHOT && page) await page.screenshot({ path: SCREENSHOT }).catch(() => {});
  await close();
}
process.exit(0);

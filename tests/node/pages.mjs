// The pages in headless Chromium with every request to another host blocked: the scorecard
// and a commitment's verdict timeline render from this server alone, the timeline's marks
// match the assessments the API gives, the pages work without JavaScript and from the
// keyboard, axe-core finds no serious or critical accessibility violation, and a verdict
// recorded meanwhile shows on the open page within 2 s.
//
// Environment: SERVER_URL, TOKEN (an admin token), SLUG (a commitment with a revised deadline
// and disputed verdicts), SCREENSHOTS (a folder for the screenshots), CHROMIUM (default
// /usr/bin/chromium). Prints one JSON line per check; exits non-zero on the first failure.
import * as shared from './browser.mjs';
import { launch } from './browser.mjs';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const { SERVER_URL, TOKEN, SLUG, SCREENSHOTS } = process.env;
if (!SERVER_URL || !TOKEN || !SLUG || !SCREENSHOTS) {
  console.error('SERVER_URL, TOKEN, SLUG and SCREENSHOTS are required');
  process.exit(2);
}
mkdirSync(SCREENSHOTS, { recursive: true });
const origin = new URL(SERVER_URL).origin;
const PATIENCE = 30_000;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

function report(check, details = {}) {
  console.log(JSON.stringify({ check, ok: true, ...details }));
}
function fail(message) {
  throw new Error(message);
}

const gql = (query, variables, token) => shared.gql(SERVER_URL, query, variables, token);

const { browser, close } = await launch('pages');
const elsewhere = [];
const problems = [];

// A page that may fetch only from this server.
async function open({ javascript = true } = {}) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  await page.setJavaScriptEnabled(javascript);
  // axe-core is injected as an inline script, which the pages' policy rightly refuses.
  await page.setBypassCSP(true);
  await page.setRequestInterception(true);
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || new URL(url).origin === origin) {
      request.continue();
    } else {
      elsewhere.push(url);
      request.abort();
    }
  });
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  return page;
}

async function axe(page, name) {
  await page.addScriptTag({ content: axeSource });
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  if (serious.length) {
    fail(`axe-core on ${name}: ${JSON.stringify(serious.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target) })))}`);
  }
  return result.violations.map((v) => `${v.id} (${v.impact})`);
}

try {
  // The scorecard.
  const { commitments } = await gql('{ commitments(first: 500) { totalCount } }');
  const home = await open();
  await home.goto(`${SERVER_URL}/`, { waitUntil: 'networkidle0', timeout: PATIENCE });
  const rows = await home.$$eval('table.commitments tbody tr', (r) => r.length);
  if (rows !== commitments.totalCount) fail(`the scorecard lists ${rows} of ${commitments.totalCount} commitments`);
  const chart = await home.$eval('svg.chart', (s) => ({
    title: s.querySelector('title')?.textContent, desc: s.querySelector('desc')?.textContent,
  }));
  if (!chart.title || !chart.desc) fail('the scorecard picture has no text equivalent');
  await home.screenshot({ path: join(SCREENSHOTS, 'scorecard.png'), fullPage: true });
  report('the scorecard renders', { rows, chart: chart.desc });

  // Filtering by rating, as the form sends it.
  await home.select('#rating', 'INADEQUATE');
  await Promise.all([home.waitForNavigation({ waitUntil: 'networkidle0' }), home.click('form.filters button')]);
  const { commitments: inadequate } = await gql('{ commitments(rating: INADEQUATE) { totalCount } }');
  const filtered = await home.$$eval('table.commitments tbody tr', (r) => r.length);
  if (filtered !== inadequate.totalCount) fail(`the rating filter shows ${filtered} of ${inadequate.totalCount}`);
  report('the filter narrows the list', { filtered });
  const homeViolations = await axe(home, 'the scorecard');
  report('axe-core: the scorecard', { minor: homeViolations });

  // The timeline: every mark is an assessment, where the API puts it.
  const { commitment } = await gql(
    `query($slug: String!) { commitment(slug: $slug) { id title revisions { effectiveOn changes { field from } }
       assessments { id overall assessedOn assessorKind disputes { id } } } }`,
    { slug: SLUG },
  );
  const timeline = await open();
  await timeline.goto(`${SERVER_URL}/commitments/${SLUG}`, { waitUntil: 'networkidle0', timeout: PATIENCE });
  const marks = await timeline.$$eval('svg.timeline a.mark', (as) => as.map((a) => ({
    id: a.dataset.assessment, rating: a.dataset.rating, on: a.dataset.assessedOn, kind: a.dataset.kind,
    disputed: a.dataset.disputed === 'true', href: a.getAttribute('href'), name: a.getAttribute('aria-label'),
  })));
  const expected = commitment.assessments.map((a) => ({
    id: a.id, rating: a.overall ?? 'NONE', on: a.assessedOn, kind: a.assessorKind, disputed: a.disputes.length > 0,
  }));
  const seen = marks.map(({ id, rating, on, kind, disputed }) => ({ id, rating, on, kind, disputed }));
  if (JSON.stringify(seen) !== JSON.stringify(expected)) {
    fail(`marks ${JSON.stringify(seen)} differ from assessments ${JSON.stringify(expected)}`);
  }
  for (const m of marks) {
    if (!m.name) fail(`mark ${m.id} has no accessible name`);
    const row = await timeline.$(`tr${m.href.replace('#', '#')}`);
    if (!row) fail(`mark ${m.id} links to ${m.href}, which is not on the page`);
  }
  const movedDeadlines = commitment.revisions.filter((r) => r.changes.some((c) => c.field === 'dueDate'));
  const revisionMarks = await timeline.$$eval('svg.timeline g.revision', (g) => g.map((x) => x.dataset.revision));
  const oldDeadlines = await timeline.$$eval('svg.timeline g.deadline.old', (g) => g.map((x) => x.dataset.oldDeadline));
  if (revisionMarks.length !== movedDeadlines.length || oldDeadlines.length !== movedDeadlines.length) {
    fail(`${movedDeadlines.length} deadline revisions, ${revisionMarks.length} marks, ${oldDeadlines.length} old deadlines`);
  }
  if (!marks.some((m) => m.disputed)) fail('no disputed verdict is marked');
  const table = await timeline.$$eval('table.assessments tbody tr', (r) => r.map((x) => x.dataset.assessment));
  if (JSON.stringify(table) !== JSON.stringify(expected.map((e) => e.id))) fail('the table differs from the marks');
  await timeline.screenshot({ path: join(SCREENSHOTS, 'timeline.png'), fullPage: true });
  report("the timeline's marks match the assessments", {
    marks: marks.length, disputed: marks.filter((m) => m.disputed).length, revisions: revisionMarks.length,
  });

  // The keyboard reaches the marks, and following one lands on its row.
  let reached = null;
  for (let i = 0; i < 80 && !reached; i += 1) {
    await timeline.keyboard.press('Tab');
    reached = await timeline.evaluate(() => {
      const a = document.activeElement;
      return a && a.classList && a.classList.contains('mark') ? a.dataset.assessment : null;
    });
  }
  if (!reached) fail('Tab never reached a mark');
  await timeline.keyboard.press('Enter');
  await timeline.waitForFunction((id) => location.hash === `#assessment-${id}`, { timeout: PATIENCE }, reached);
  report('the keyboard reaches a mark and follows it', { assessment: reached });
  const timelineViolations = await axe(timeline, 'the timeline');
  report('axe-core: the timeline', { minor: timelineViolations });

  // Without JavaScript: the same content, nothing live.
  const plain = await open({ javascript: false });
  await plain.goto(`${SERVER_URL}/commitments/${SLUG}`, { waitUntil: 'networkidle0', timeout: PATIENCE });
  const plainMarks = await plain.$$eval('svg.timeline a.mark', (as) => as.length);
  const plainRows = await plain.$$eval('table.assessments tbody tr', (r) => r.length);
  const subscribed = await plain.$eval('main', (m) => m.dataset.subscribed ?? null);
  if (plainMarks !== expected.length || plainRows !== expected.length || subscribed !== null) {
    fail(`without JavaScript: ${plainMarks} marks, ${plainRows} rows, subscribed ${subscribed}`);
  }
  await plain.screenshot({ path: join(SCREENSHOTS, 'timeline-without-javascript.png'), fullPage: true });
  const plainHome = await open({ javascript: false });
  await plainHome.goto(`${SERVER_URL}/`, { waitUntil: 'networkidle0', timeout: PATIENCE });
  const plainHomeRows = await plainHome.$$eval('table.commitments tbody tr', (r) => r.length);
  if (plainHomeRows !== commitments.totalCount) fail('the scorecard without JavaScript is incomplete');
  report('the pages read without JavaScript', { marks: plainMarks, rows: plainRows });

  // Live: a verdict recorded while the page is open shows within 2 s.
  await timeline.waitForSelector('main[data-subscribed="true"]', { timeout: PATIENCE });
  const started = Date.now();
  const { assessCommitment } = await gql(
    `mutation($input: AssessCommitmentInput!) { assessCommitment(input: $input) { id } }`,
    {
      input: {
        commitmentId: commitment.id, assessor: 'Live page test panel', assessorKind: 'OTHER',
        assessedOn: '2026-01-15', overall: 'GOOD', deliveryStatus: 'ON_TRACK', rationale: 'Seen live on the page.',
      },
    },
    TOKEN,
  );
  await timeline.waitForSelector(`svg.timeline a.mark[data-assessment="${assessCommitment.id}"]`, { timeout: 2_000 });
  await timeline.waitForSelector(`tr#assessment-${assessCommitment.id}`, { timeout: 2_000 });
  const elapsed = Date.now() - started;
  if (elapsed > 2_000) fail(`the page showed the new verdict after ${elapsed} ms`);
  const status = await timeline.$eval('#live-status', (s) => s.textContent);
  report('a new verdict shows on the open page within 2 s', { ms: elapsed, status });

  if (elsewhere.length) fail(`requests to other hosts: ${elsewhere.join(', ')}`);
  if (problems.length) fail(`problems: ${problems.join('; ')}`);
  report('no request left this server');
} catch (error) {
  console.error(`FAILED: ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await close();
}

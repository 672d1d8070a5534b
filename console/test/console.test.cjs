// The operators' console end to end, in headless Chromium driven by playwright-core: for each
// local server it is given (one per store), book and pay a session over the API, then in the
// browser sign in with an operator's token, find the session by its vehicle number, open it,
// refund 10.00 with a reason, follow the refund until it is SUCCESS, download the day's
// settlement CSV and check its rows, and keep a screenshot.
//
// Run by scripts/console-test.sh (which installs Chromium and playwright-core and starts the
// servers), with node's test runner:
//   CONSOLE_TEST_SERVERS="embedded=http://127.0.0.1:P1 dynamodb=http://127.0.0.1:P2"
//   CONSOLE_TEST_OUT=<dir for screenshots and CSVs>  CONSOLE_TEST_CHROMIUM=/usr/bin/chromium
//   NODE_PATH=<where playwright-core is installed>   node --test console/test/console.test.cjs
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { chromium } = require('playwright-core');

const OUT = process.env.CONSOLE_TEST_OUT || path.resolve(__dirname, '../../target/console');
const CHROMIUM = process.env.CONSOLE_TEST_CHROMIUM || '/usr/bin/chromium';
const SERVERS = (process.env.CONSOLE_TEST_SERVERS || '')
  .split(/\s+/)
  .filter(Boolean)
  .map((pair) => {
    const [name, base] = pair.split('=');
    return { name, base: base.replace(/\/$/, '') };
  });

// Chromium on a closed network: without these it tries to reach Google's services and its
// connections fail.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

const IST_OFFSET_MS = (5 * 60 + 30) * 60 * 1000;
const indiaToday = () => new Date(Date.now() + IST_OFFSET_MS).toISOString().slice(0, 10);
const SETTLEMENT_HEADER = 'kind,merchant_txn_id,phonepe_transaction_id,utr,session_id,amount,state,final_at';

// ---------------------------------------------------------------------------------------------
// The API, for the fixture.

async function call(method, url, token, body, want) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await resp.text();
  assert.equal(resp.status, want, `${method} ${url}: ${resp.status} ${text}`);
  return JSON.parse(text);
}

async function devToken(base, query) {
  const resp = await fetch(`${base}/_dev/token?${query}`);
  assert.equal(resp.status, 200, `/_dev/token?${query}`);
  return (await resp.text()).trim();
}

/** A vehicle number no earlier run used (an Indian registration: KA 05 AB 1234). */
function freshVehicle() {
  const letters = 'ABCDEFGHJKLMNPRSTUVWXYZ';
  const pick = () => letters[Math.floor(Math.random() * letters.length)];
  const digits = (n) => String(Math.floor(Math.random() * 10 ** n)).padStart(n, '0');
  return `KA${digits(2).replace(/^00$/, '01')}${pick()}${pick()}${digits(4).replace(/^0000$/, '0001')}`;
}

/** A driver books two hours at MG-ROAD-1 and pays on the simulator's pay page. */
async function paidSession(base) {
  const driver = await devToken(base, 'sub=console-test-driver');
  const vehicle = freshVehicle();
  const session = await call('POST', `${base}/api/sessions/`, driver,
    { lot_id: 'MG-ROAD-1', vehicle_number: vehicle, hours: 2 }, 201);
  const payment = await call('POST', `${base}/api/payment/phonepe/create/`, driver,
    { session_id: session.session_id }, 201);
  const paid = await fetch(payment.redirect_url, {
    method: 'POST',
    body: new URLSearchParams({ outcome: 'success' }),
    redirect: 'manual',
  });
  assert.equal(paid.status, 303, 'the pay page takes the payment');
  for (let i = 0; i < 200; i++) {
    const s = await call('GET', `${base}/api/sessions/${session.session_id}/`, driver, undefined, 200);
    if (s.status === 'PAID') return { vehicle, session: s, payment: s.payments[0] };
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`session ${session.session_id} never became PAID`);
}

/** The CSV's rows, each as its fields (the report quotes no field here: ids and amounts). */
function csvRows(text) {
  const lines = text.split('\r\n');
  assert.equal(lines[0], SETTLEMENT_HEADER, 'the header');
  assert.equal(lines[lines.length - 1], '', 'every row ends with CRLF');
  return lines.slice(1, -1).map((l) => l.split(','));
}

// ---------------------------------------------------------------------------------------------
// The console, in the browser.

async function consoleEndToEnd(server) {
  const { name, base } = server;
  const operator = await devToken(base, 'sub=console-test-operator&operator=true');
  const { vehicle, session, payment } = await paidSession(base);
  const sid = session.session_id;
  const txn = payment.merchant_txn_id;

  // A fresh profile (--user-data-dir) for each run, removed after.
  fs.mkdirSync(OUT, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `parkpay-console-${name}-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    acceptDownloads: true,
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
  });
  const problems = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      // A refused request (the API's 4xx) is logged by Chromium too: only script errors count.
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`);
    });

    // The page and its headers.
    const resp = await page.goto(`${base}/console/`);
    assert.equal(resp.status(), 200);
    const headers = resp.headers();
    assert.match(headers['content-security-policy'], /default-src 'self'/);
    assert.match(headers['content-security-policy'], /script-src 'self'/);
    assert.equal(headers['x-content-type-options'], 'nosniff');
    assert.equal(headers['cache-control'], 'no-store');
    assert.match(headers['content-type'], /^text\/html/);

    // A driver's token is not enough.
    const tokenField = page.getByLabel('Operator token');
    await tokenField.fill(await devToken(base, 'sub=console-test-driver'));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#sign-in-error', { hasText: 'not an operator' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'a refused token is not kept');

    // Sign in, with the keyboard: paste the token, Enter.
    await tokenField.fill(operator);
    await tokenField.press('Enter');
    await page.getByRole('heading', { name: 'Find a session' }).waitFor();
    await page.getByText('Signed in as console-test-operator').waitFor();
    const kept = await page.evaluate(() => ({
      session: sessionStorage.getItem('parkpay.console.token'),
      local: localStorage.length,
      cookies: document.cookie,
    }));
    assert.deepEqual(kept, { session: operator, local: 0, cookies: '' }, 'the token is in sessionStorage only');
    // The attention panel: both lists loaded (whatever they hold).
    await page.locator('#attention-body .attention-list[data-state="needs_person"] h3').waitFor();
    await page.locator('#attention-body .attention-list[data-state="overdue"] h3').waitFor();

    // Find the session by its vehicle number, and open it.
    await page.getByLabel('Search by').selectOption('vehicle_number');
    await page.getByLabel('Value').fill(vehicle);
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    const found = page.locator(`#results button[data-session="${sid}"]`);
    await found.waitFor();
    await found.click();
    await page.locator('#detail-id', { hasText: sid }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), 'detail-title',
      'focus moves to the session');
    const paymentRow = page.locator(`#payments tr[data-txn="${txn}"]`);
    await paymentRow.waitFor();
    assert.match(await paymentRow.innerText(), /SUCCESS/);
    assert.match(await paymentRow.innerText(), /100\.00/);
    // PhonePe's transaction id and the UTR, from the receipt.
    const phonepeId = (await paymentRow.locator('.phonepe-id').innerText()).trim();
    const utr = (await paymentRow.locator('.utr').innerText()).trim();
    assert.ok(phonepeId && phonepeId !== '—', 'PhonePe transaction id shown');
    assert.ok(utr && utr !== '—', 'UTR shown');
    await page.locator('#detail-summary', { hasText: 'PAID' }).waitFor();

    // Refund 10.00 with a reason; markup in the reason stays text. The first answer is lost on
    // the way back (the API made the refund): the page says so, and its retry carries the same
    // Idempotency-Key, so the API answers it with the refund already made.
    const reason = `Console test (${name}): left early <b>not bold</b> & "quoted"`;
    const keys = [];
    await page.route('**/api/payment/phonepe/refund/', async (route) => {
      keys.push(route.request().headers()['idempotency-key']);
      if (keys.length === 1) {
        await route.fetch();
        await route.abort('connectionreset');
      } else {
        await route.continue();
      }
    });
    await page.getByLabel('Amount (INR)').fill('10.00');
    await page.getByLabel('Reason').fill(reason);
    const refundButton = page.getByRole('button', { name: 'Refund', exact: true });
    await refundButton.click();
    await page.locator('#refund-result.bad', { hasText: 'got no answer' }).waitFor();
    await refundButton.click();
    const result = page.locator('#refund-result.ok');
    await result.waitFor();
    assert.match(await result.innerText(), /Refund RF\w+ of 10\.00 INR .*already requested/);
    assert.equal(keys.length, 2);
    assert.ok(keys[0] && keys[0] === keys[1], `the retry carries the same Idempotency-Key: ${keys}`);
    await page.unroute('**/api/payment/phonepe/refund/');
    const refundRow = page.locator('#refunds tbody tr[data-refund]');
    await refundRow.waitFor();
    const refundId = await refundRow.getAttribute('data-refund');
    assert.equal(await refundRow.count(), 1, 'one refund, however often it was sent');
    assert.equal(await refundRow.locator('.reason').innerText(), reason);
    assert.equal(await page.locator('#refunds tbody b').count(), 0, 'no markup from the data');
    // The page follows the refund until the simulator settles it.
    await refundRow.locator('.refund-status', { hasText: 'SUCCESS' }).waitFor({ timeout: 30_000 });
    await page.locator('#detail-summary', { hasText: '10.00 INR' }).waitFor();
    await page.locator('#refund-result.ok', { hasText: `Refund ${refundId} of 10.00 INR from ${txn} is SUCCESS.` })
      .waitFor();

    // The day's settlement report: today in India by default.
    const today = indiaToday();
    assert.equal(await page.getByLabel('Day (India time)').inputValue(), today);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `settlement-${today}.csv`);
    const csvPath = path.join(OUT, `settlement-${name}-${today}.csv`);
    await download.saveAs(csvPath);
    const rows = csvRows(fs.readFileSync(csvPath, 'utf8'));
    const paymentLine = rows.find((r) => r[1] === txn);
    assert.ok(paymentLine, `the payment ${txn} has a row:\n${rows.join('\n')}`);
    assert.deepEqual([paymentLine[0].toUpperCase(), paymentLine[2], paymentLine[3], paymentLine[4], paymentLine[5],
      paymentLine[6]], ['PAYMENT', phonepeId, utr, sid, '100.00', 'SUCCESS']);
    const refundLine = rows.find((r) => r[1] === refundId);
    assert.ok(refundLine, `the refund ${refundId} has a row:\n${rows.join('\n')}`);
    assert.deepEqual([refundLine[0].toUpperCase(), refundLine[4], refundLine[5], refundLine[6]],
      ['REFUND', sid, '10.00', 'SUCCESS']);
    await page.locator('#settlement-result.ok', { hasText: `settlement-${today}.csv downloaded` }).waitFor();

    // The artifact: the whole page, the session open with its settled refund.
    const shot = path.join(OUT, name === 'embedded' ? 'console.png' : `console-${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot (${name} store): ${shot}`);

    // Signing out forgets the token.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    assert.deepEqual(problems, [], 'no script error or blocked resource');
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

test('the console is given servers to test', () => {
  assert.ok(SERVERS.length > 0, 'CONSOLE_TEST_SERVERS names no server (run scripts/console-test.sh)');
});

test('operators\' console in headless Chromium: sign in, find, refund, download', { concurrency: true }, async (t) => {
  // One browser per store, side by side.
  await Promise.all(SERVERS.map((s) =>
    t.test(`${s.name} store`, () => consoleEndToEnd(s))));
});

// parkpay's operators' console: plain script, no framework and no build step, served as it is
// from /console/?asset=console.js (shared/api/src/console.rs). Every value from the API reaches
// the page as text (textContent on elements built here, never markup); the operator's token is
// kept in sessionStorage only, so it is gone with the tab. Money is shown as the API's rupee
// strings; times as India's (IST), with the API's UTC instant in the element's datetime.
'use strict';

(function () {
  const TOKEN_KEY = 'parkpay.console.token';
  const IST_OFFSET_MS = (5 * 60 + 30) * 60 * 1000;
  const POLL_EVERY_MS = 1000;
  const POLL_FOR_MS = 120 * 1000;
  const OBLIGATIONS_PAGE = 50;

  const $ = (id) => document.getElementById(id);

  // The API is on the page's own origin, one level up from the page (/console/ → /api/…):
  // relative, so a stage or a custom domain's base path in front of both is kept.
  const API_ROOT = new URL('../', document.baseURI);
  const apiUrl = (path) => new URL(path.replace(/^\//, ''), API_ROOT).toString();

  // ------------------------------------------------------------------------------------------
  // Building elements: text only.

  /** `tag` with attributes `attrs` (a value of true: present; false, null, undefined: absent)
   *  and `children` (elements, or anything else as text). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      e.setAttribute(name, value === true ? '' : String(value));
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  /** A time from the API (RFC 3339, UTC) as India's wall-clock time. */
  function time(iso) {
    if (!iso) return el('span', { class: 'none' }, '—');
    const ms = Date.parse(iso);
    if (Number.isNaN(ms)) return el('span', {}, iso);
    const ist = new Date(ms + IST_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
    return el('time', { datetime: iso, title: iso }, ist + ' IST');
  }

  function code(text) {
    return text ? el('code', {}, text) : el('span', { class: 'none' }, '—');
  }

  function badge(status) {
    const kind = { SUCCESS: 'ok', PAID: 'ok', PENDING: 'wait', PENDING_PAYMENT: 'wait', FAILED: 'bad' }[status];
    return el('span', { class: 'badge ' + (kind || 'other') }, status || '—');
  }

  /** Today's date in India, YYYY-MM-DD: the settlement report's default day. */
  function indiaToday() {
    return new Date(Date.now() + IST_OFFSET_MS).toISOString().slice(0, 10);
  }

  // Rupee strings ("100.00") to whole paise and back, for what is left of a payment.
  const RUPEES = /^([0-9]{1,9})(?:\.([0-9]{1,2}))?$/;
  function toPaise(rupees) {
    const m = RUPEES.exec(String(rupees || '').trim());
    if (!m) return null;
    return Number(m[1]) * 100 + Number((m[2] || '0').padEnd(2, '0'));
  }
  function rupees(paise) {
    return Math.floor(paise / 100) + '.' + String(paise % 100).padStart(2, '0');
  }

  /** A fresh Idempotency-Key: 128 random bits (crypto.getRandomValues works on plain http too). */
  function newKey() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return 'console-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ------------------------------------------------------------------------------------------
  // The API.

  class ApiFailure extends Error {
    constructor(status, code, message, requestId) {
      super(message);
      this.status = status;
      this.code = code;
      this.requestId = requestId;
    }

    /** Whether sending the same request again may succeed (and must carry the same key). */
    get retryable() {
      return this.status === 0 || this.status === 429 || this.status === 500 || this.status === 503 ||
        this.status === 504 || this.code === 'REQUEST_IN_PROGRESS';
    }

    describe() {
      const id = this.requestId ? ' (request ' + this.requestId + ')' : '';
      return this.code + ': ' + this.message + id;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  /** `method path` with the operator's token (or `options.token`); the Response when it is a
   *  2xx, else an ApiFailure from the error body (`{"error": {code, message, request_id}}`, or
   *  API Gateway's `{"message"}`). A 401 with the stored token signs the operator out. */
  async function api(method, path, options) {
    const opts = options || {};
    const bearer = opts.token || token();
    const headers = { Accept: opts.accept || 'application/json' };
    if (bearer) headers.Authorization = 'Bearer ' + bearer;
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    Object.assign(headers, opts.headers || {});
    let resp;
    try {
      resp = await fetch(apiUrl(path), { method, headers, body: opts.body, cache: 'no-store', credentials: 'omit' });
    } catch (e) {
      throw new ApiFailure(0, 'NETWORK_ERROR', 'the API could not be reached (' + e.message + ')', null);
    }
    if (resp.ok) return resp;
    let errCode = 'HTTP_' + resp.status;
    let message = resp.statusText || 'the request failed';
    let requestId = resp.headers.get('x-request-id');
    try {
      const v = await resp.json();
      if (v && v.error) {
        errCode = v.error.code || errCode;
        message = v.error.message || message;
        requestId = v.error.request_id || requestId;
      } else if (v && typeof v.message === 'string') {
        message = v.message;
      }
    } catch (_) {
      // Not JSON: keep the status line.
    }
    const failure = new ApiFailure(resp.status, errCode, message, requestId);
    if (resp.status === 401 && !opts.token) signOut('Your token was refused (' + failure.describe() + '). Sign in again.');
    throw failure;
  }

  async function getJson(path, options) {
    return (await api('GET', path, options)).json();
  }

  // ------------------------------------------------------------------------------------------
  // Status line.

  function say(text, kind) {
    const s = $('status');
    s.textContent = text || '';
    s.className = 'status' + (kind ? ' ' + kind : '');
  }

  function showError(node, text) {
    node.textContent = text || '';
    show(node, Boolean(text));
  }

  // ------------------------------------------------------------------------------------------
  // Signing in and out.

  /** The token's `sub` (read, not verified: the API verifies it), for the header. */
  function subjectOf(jwt) {
    try {
      const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
      return typeof claims.sub === 'string' ? claims.sub : 'an operator';
    } catch (_) {
      return 'an operator';
    }
  }

  async function signIn(candidate) {
    const err = $('sign-in-error');
    showError(err, '');
    if (!candidate) {
      showError(err, 'Paste your token first.');
      $('token').focus();
      return;
    }
    say('Checking the token…');
    try {
      // The attention list is for operators only: a token it accepts is an operator's.
      await api('GET', '/api/obligations/?state=needs_person&limit=1', { token: candidate });
    } catch (e) {
      say('');
      const why = e.code === 'OPERATOR_ONLY'
        ? 'This token is not an operator\'s: the console is for operators.'
        : 'The token was refused: ' + e.describe();
      showError(err, why);
      $('token').focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, candidate);
    $('token').value = '';
    enter();
    $('search-value').focus();
  }

  /** Show the console for the stored token. */
  function enter() {
    $('who').textContent = subjectOf(token());
    show($('who-box'), true);
    show($('sign-in'), false);
    show($('console'), true);
    if (!$('settlement-date').value) $('settlement-date').value = indiaToday();
    say('Signed in.', 'ok');
    loadAttention();
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    stopPolling();
    current = null;
    refundAttempt = null;
    followed = null;
    clear($('results'));
    clear($('attention-body'));
    show($('detail'), false);
    show($('console'), false);
    show($('who-box'), false);
    show($('sign-in'), true);
    say(message || 'Signed out.', message ? 'bad' : null);
    $('token').focus();
  }

  // ------------------------------------------------------------------------------------------
  // What needs a person.

  const ATTENTION_LISTS = [
    { state: 'needs_person', title: 'Needs a person', empty: 'Nothing is waiting for a person.' },
    { state: 'overdue', title: 'Overdue', empty: 'Nothing is overdue.' },
  ];

  async function loadAttention() {
    const body = $('attention-body');
    clear(body);
    body.append(el('p', { class: 'hint' }, 'Loading…'));
    const parts = await Promise.all(ATTENTION_LISTS.map(async (list) => {
      const part = el('div', { class: 'attention-list', 'data-state': list.state });
      try {
        const v = await getJson('/api/obligations/?state=' + list.state + '&limit=' + OBLIGATIONS_PAGE);
        renderObligations(part, list, v);
      } catch (e) {
        part.append(el('h3', {}, list.title), el('p', { class: 'error' }, 'Could not load it: ' + e.describe()));
      }
      return part;
    }));
    clear(body);
    body.append(...parts);
  }

  function renderObligations(part, list, v) {
    const items = v.obligations || [];
    part.append(el('h3', {}, list.title + ' (' + items.length + (v.next_cursor ? '+' : '') + ')'));
    if (!items.length) {
      part.append(el('p', { class: 'hint' }, list.empty));
      return;
    }
    const rows = items.map((o) => el('tr', {},
      el('td', {}, o.kind), el('td', {}, badge(o.state)),
      el('td', {}, el('button', { type: 'button', class: 'link', 'data-session': o.session_id }, o.session_id)),
      el('td', {}, code(o.payment_id)), el('td', {}, code(o.refund_id)), el('td', { class: 'num' }, o.amount),
      el('td', { class: 'num' }, String(o.attempts)), el('td', {}, code(o.last_code)), el('td', {}, time(o.due_by)),
      el('td', {}, o.note || '')));
    const head = ['Kind', 'State', 'Session', 'Payment', 'Refund', 'Amount (INR)', 'Attempts', 'Last code', 'Due by',
      'Note'].map((h) => el('th', { scope: 'col' }, h));
    const table = el('table', {}, el('caption', { class: 'visually-hidden' }, list.title),
      el('thead', {}, el('tr', {}, ...head)), el('tbody', {}, ...rows));
    part.append(el('div', { class: 'scroll' }, table));
    if (v.next_cursor) part.append(el('p', { class: 'hint' }, 'More are listed than shown here.'));
  }

  // ------------------------------------------------------------------------------------------
  // Finding sessions.

  const SEARCH_LABELS = {
    vehicle_number: 'vehicle number',
    session_id: 'session id',
    merchant_txn_id: 'merchant transaction id',
    phonepe_transaction_id: 'PhonePe transaction id',
    utr: 'UTR',
  };

  async function search(by, value) {
    const err = $('search-error');
    const results = $('results');
    showError(err, '');
    clear(results);
    if (!value) {
      showError(err, 'Give a ' + SEARCH_LABELS[by] + ' to look for.');
      $('search-value').focus();
      return;
    }
    say('Searching…');
    let sessions;
    try {
      if (by === 'session_id') {
        sessions = [await getJson('/api/sessions/' + encodeURIComponent(value) + '/')];
      } else {
        const q = new URLSearchParams([[by, value]]);
        sessions = (await getJson('/api/search/?' + q.toString())).sessions || [];
      }
    } catch (e) {
      say('');
      if (e.code === 'SESSION_NOT_FOUND') {
        sessions = [];
      } else if (e.code === 'ROUTE_NOT_FOUND') {
        showError(err, 'This server has no search yet (GET /api/search/ answered ROUTE_NOT_FOUND): find the ' +
          'session by its id instead.');
        return;
      } else {
        showError(err, 'Search failed: ' + e.describe());
        return;
      }
    }
    say('');
    renderResults(by, value, sessions);
  }

  function renderResults(by, value, sessions) {
    const results = $('results');
    clear(results);
    const n = sessions.length;
    results.append(el('p', { class: 'hint', id: 'results-count' },
      n === 0 ? 'No session found for ' + SEARCH_LABELS[by] + ' ' + value + '.'
        : n + (n === 1 ? ' session' : ' sessions') + ' for ' + SEARCH_LABELS[by] + ' ' + value + ', newest first:'));
    if (!n) return;
    const list = el('ul', { class: 'results', 'aria-labelledby': 'results-count' });
    for (const s of sessions) {
      list.append(el('li', {}, el('button', { type: 'button', class: 'result', 'data-session': s.session_id },
        el('span', { class: 'vehicle' }, s.vehicle_number), ' ', badge(s.status), ' ',
        el('span', {}, s.amount + ' INR at ' + s.lot_id + ', booked '), time(s.created_at), ' ',
        el('code', {}, s.session_id))));
    }
    results.append(list);
  }

  // ------------------------------------------------------------------------------------------
  // One session.

  let current = null; // { id, session, receipt }
  let pollTimer = null;
  let pollUntil = 0;

  async function openSession(id, focus) {
    stopPolling();
    say('Loading session ' + id + '…');
    let session;
    let receipt = null;
    try {
      [session, receipt] = await Promise.all([
        getJson('/api/sessions/' + encodeURIComponent(id) + '/'),
        // The receipt adds entry and exit, PhonePe's ids and UTRs; the session stands without it.
        getJson('/api/sessions/' + encodeURIComponent(id) + '/receipt/').catch(() => null),
      ]);
    } catch (e) {
      say('Could not load session ' + id + ': ' + e.describe(), 'bad');
      return;
    }
    if (current && current.id !== id) {
      $('refund-result').hidden = true;
      refundAttempt = null;
      followed = null;
    }
    current = { id, session, receipt };
    renderDetail();
    show($('detail'), true);
    say('');
    if (focus) $('detail-title').focus();
    if (hasPending(session)) startPolling();
  }

  function hasPending(session) {
    return (session.refunds || []).some((r) => r.status === 'PENDING') ||
      (session.payments || []).some((p) => p.status === 'PENDING');
  }

  /** Refresh the open session until nothing of it is PENDING (the simulator and PhonePe settle
   *  refunds a little later), for at most POLL_FOR_MS. */
  function startPolling() {
    pollUntil = Date.now() + POLL_FOR_MS;
    if (pollTimer) return;
    const tick = async () => {
      pollTimer = null;
      if (!current || Date.now() > pollUntil) return;
      const id = current.id;
      try {
        const [session, receipt] = await Promise.all([
          getJson('/api/sessions/' + encodeURIComponent(id) + '/'),
          getJson('/api/sessions/' + encodeURIComponent(id) + '/receipt/').catch(() => null),
        ]);
        if (!current || current.id !== id) return;
        current = { id, session, receipt };
        renderDetail();
        if (!hasPending(session)) return;
      } catch (_) {
        // Try again on the next tick.
      }
      if (current && current.id === id) pollTimer = setTimeout(tick, POLL_EVERY_MS);
    };
    pollTimer = setTimeout(tick, POLL_EVERY_MS);
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function renderDetail() {
    const { session: s, receipt: r } = current;
    $('detail-id').textContent = s.session_id;

    const summary = $('detail-summary');
    clear(summary);
    const scan = (v) => (v ? el('span', {}, 'gate ', el('code', {}, v.gate), ', ', time(v.scanned_at))
      : el('span', { class: 'none' }, 'not recorded'));
    const facts = [
      ['Status', badge(s.status)],
      ['Vehicle', s.vehicle_number],
      ['Lot', r && r.lot_name ? r.lot_name + ' (' + s.lot_id + ')' : s.lot_id],
      ['Hours', String(s.hours) + (r && r.extra_hours ? ' + ' + r.extra_hours + ' extended' : '')],
      ['Amount', s.amount + ' ' + s.currency],
      ['Paid', s.paid + ' ' + s.currency],
      ['Refunded', s.refunded + ' ' + s.currency],
      ['Net paid', r ? r.net_paid + ' ' + r.currency : '—'],
      ['Can enter', s.can_enter ? 'yes' : 'no'],
      ['Booked', time(s.created_at)],
      ['Booked until', r ? time(r.booked_until) : '—'],
      ['Entry', scan(r && r.entry)],
      ['Exit', scan(r && r.exit)],
      ['Last change', time(s.updated_at)],
    ];
    for (const [k, v] of facts) summary.append(el('div', {}, el('dt', {}, k), el('dd', {}, v)));

    const paid = new Map(((r && r.payments) || []).map((p) => [p.merchant_txn_id, p]));
    const payments = $('payments').tBodies[0];
    clear(payments);
    for (const p of s.payments || []) {
      const rp = paid.get(p.merchant_txn_id) || {};
      payments.append(el('tr', { 'data-txn': p.merchant_txn_id },
        el('td', {}, code(p.merchant_txn_id)), el('td', {}, badge(p.status)), el('td', { class: 'num' }, p.amount),
        el('td', { class: 'num' }, p.refunded), el('td', {}, p.payment_instrument),
        el('td', { class: 'phonepe-id' }, code(rp.phonepe_transaction_id)), el('td', { class: 'utr' }, code(rp.utr)),
        el('td', {}, time(p.created_at)), el('td', {}, time(rp.paid_at || p.updated_at))));
    }
    if (!(s.payments || []).length) payments.append(emptyRow(9, 'No payment yet.'));

    const refundHistory = new Map(((r && r.refunds) || []).map((x) => [x.refund_id, x]));
    const refunds = $('refunds').tBodies[0];
    clear(refunds);
    for (const x of s.refunds || []) {
      const h = refundHistory.get(x.refund_id) || {};
      refunds.append(el('tr', { 'data-refund': x.refund_id },
        el('td', {}, code(x.refund_id)), el('td', {}, code(x.merchant_txn_id)),
        el('td', { class: 'refund-status' }, badge(x.status)), el('td', { class: 'num' }, x.amount),
        el('td', { class: 'reason' }, x.reason || ''), el('td', {}, time(h.requested_at || x.created_at)),
        el('td', {}, time(h.updated_at))));
    }
    if (!(s.refunds || []).length) refunds.append(emptyRow(7, 'No refund.'));

    const settled = followed && followed.sessionId === s.session_id &&
      (s.refunds || []).find((x) => x.refund_id === followed.refundId && x.status !== 'PENDING');
    if (settled) {
      followed = null;
      const result = $('refund-result');
      result.textContent = 'Refund ' + settled.refund_id + ' of ' + settled.amount + ' INR from ' +
        settled.merchant_txn_id + ' is ' + settled.status + '.';
      result.className = 'result ' + (settled.status === 'SUCCESS' ? 'ok' : 'bad');
    }

    renderRefundChoices(s);
  }

  function emptyRow(span, text) {
    return el('tr', {}, el('td', { colspan: span, class: 'none' }, text));
  }

  /** The payments with money left to refund, in the refund form (the choice kept across
   *  refreshes). */
  function renderRefundChoices(s) {
    const select = $('refund-payment');
    const before = select.value;
    clear(select);
    const refundable = (s.payments || [])
      .filter((p) => p.status === 'SUCCESS')
      .map((p) => ({ p, left: toPaise(p.amount) - toPaise(p.refunded) }))
      .filter((x) => x.left > 0);
    for (const { p, left } of refundable) {
      select.append(el('option', { value: p.merchant_txn_id, 'data-left': rupees(left) },
        p.merchant_txn_id + ' — ' + rupees(left) + ' of ' + p.amount + ' INR left'));
    }
    if (refundable.some((x) => x.p.merchant_txn_id === before)) select.value = before;
    show($('refund-form'), refundable.length > 0);
    show($('refund-none'), refundable.length === 0);
    updateAmountHint();
  }

  function updateAmountHint() {
    const option = $('refund-payment').selectedOptions[0];
    $('refund-amount').placeholder = option ? 'all left: ' + option.getAttribute('data-left') : '';
  }

  // ------------------------------------------------------------------------------------------
  // Refunding.

  // The refund last sent that may not have reached the API (a network failure, a 5xx, one still
  // in progress): pressing Refund again with the same request sends it with the same
  // Idempotency-Key, so it is never refunded twice. Any definite answer forgets it.
  let refundAttempt = null; // { key, body }
  // The refund last asked for here while it is PENDING: its message follows it to its outcome.
  let followed = null; // { refundId, sessionId }

  async function refund() {
    const result = $('refund-result');
    const txn = $('refund-payment').value;
    const amountText = $('refund-amount').value.trim();
    const reason = $('refund-reason').value.trim();
    const fail = (text, field) => {
      result.textContent = text;
      result.className = 'result bad';
      show(result, true);
      if (field) field.focus();
    };
    if (!txn) return fail('Choose the payment to refund.', $('refund-payment'));
    let amount = null;
    if (amountText) {
      const paise = toPaise(amountText);
      if (paise === null || paise === 0) {
        return fail('The amount is rupees with at most two decimals, e.g. 10.00, or empty for all that is left.',
          $('refund-amount'));
      }
      amount = rupees(paise);
    }
    if (!reason) return fail('Give a reason: it is kept with the refund.', $('refund-reason'));

    const payload = { merchant_txn_id: txn, reason };
    if (amount) payload.amount = amount;
    const body = JSON.stringify(payload);
    const key = refundAttempt && refundAttempt.body === body ? refundAttempt.key : newKey();
    refundAttempt = { key, body };

    const button = $('refund-submit');
    button.disabled = true;
    result.textContent = 'Sending the refund…';
    result.className = 'result';
    show(result, true);
    try {
      const resp = await api('POST', '/api/payment/phonepe/refund/', { body, headers: { 'Idempotency-Key': key } });
      const v = await resp.json();
      refundAttempt = null;
      const replayed = resp.headers.get('idempotent-replayed') === 'true' ? ' (already requested: this is its answer)' : '';
      result.textContent = 'Refund ' + v.refund_id + ' of ' + v.amount + ' INR from ' + v.merchant_txn_id + ' is ' +
        v.status + (v.status === 'PENDING' ? ': PhonePe settles it shortly; this page follows it.' : '.') + replayed;
      result.className = 'result ok';
      followed = v.status === 'PENDING' ? { refundId: v.refund_id, sessionId: current && current.id } : null;
      $('refund-amount').value = '';
      $('refund-reason').value = '';
      if (current) await openSession(current.id, false);
      startPolling();
    } catch (e) {
      if (!e.retryable) refundAttempt = null;
      result.textContent = e.retryable
        ? 'The refund got no answer (' + e.describe() + '): it may or may not have been made. Press Refund ' +
          'again to retry: the retry carries the same request key, so the refund is made once at most.'
        : 'The refund was refused: ' + e.describe() + '.';
      result.className = 'result bad';
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Settlement report.

  async function downloadSettlement() {
    const result = $('settlement-result');
    const date = $('settlement-date').value;
    const done = (text, kind) => {
      result.textContent = text;
      result.className = 'result ' + kind;
      show(result, true);
    };
    if (!/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(date)) {
      done('Choose a day.', 'bad');
      $('settlement-date').focus();
      return;
    }
    done('Preparing the report for ' + date + '…', '');
    let text;
    try {
      const resp = await api('GET', '/api/reports/settlement/?date=' + encodeURIComponent(date), { accept: 'text/csv' });
      text = await resp.text();
    } catch (e) {
      const missing = e.code === 'ROUTE_NOT_FOUND' ? ' (this server has no settlement report yet)' : '';
      done('No report: ' + e.describe() + missing, 'bad');
      return;
    }
    const name = 'settlement-' + date + '.csv';
    const url = URL.createObjectURL(new Blob([text], { type: 'text/csv;charset=utf-8' }));
    const link = el('a', { href: url, download: name, hidden: true }, name);
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60 * 1000);
    const rows = text.split(/\r?\n/).filter((line) => line.length > 0).length - 1;
    done(name + ' downloaded: ' + Math.max(rows, 0) + (rows === 1 ? ' row.' : ' rows.'), 'ok');
  }

  // ------------------------------------------------------------------------------------------
  // Wiring.

  function onSubmit(id, handler) {
    $(id).addEventListener('submit', (event) => {
      event.preventDefault();
      handler();
    });
  }

  /** Buttons that open a session (results, the attention lists), by their data-session. */
  function openOnClick(container) {
    container.addEventListener('click', (event) => {
      const button = event.target.closest('button[data-session]');
      if (button) openSession(button.getAttribute('data-session'), true);
    });
  }

  document.addEventListener('DOMContentLoaded', () => {
    onSubmit('sign-in-form', () => signIn($('token').value.trim()));
    onSubmit('search-form', () => search($('search-by').value, $('search-value').value.trim()));
    onSubmit('refund-form', refund);
    onSubmit('settlement-form', downloadSettlement);
    $('sign-out').addEventListener('click', () => signOut());
    $('attention-refresh').addEventListener('click', loadAttention);
    $('detail-refresh').addEventListener('click', () => current && openSession(current.id, false));
    $('refund-payment').addEventListener('change', updateAmountHint);
    openOnClick($('results'));
    openOnClick($('attention-body'));
    $('settlement-date').value = indiaToday();
    if (token()) enter();
    else $('token').focus();
  });
})();

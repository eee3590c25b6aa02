// The dashboard at /__admin/ui in a real browser: Debian's Chromium, headless, driven by
// puppeteer-core. MOCK is the base URL of a mock started with --clock virtual (.ci/ui-e2e.sh);
// CHROMIUM the browser (default /usr/bin/chromium). Every wait is on something the page shows.
'use strict';

const assert = require('node:assert/strict');
const { test, before, after } = require('node:test');
const puppeteer = require('puppeteer-core');

const base = (process.env.MOCK || 'http://127.0.0.1:8080').replace(/\/$/, '');
let browser;
let page;
const requested = [];

async function admin(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(base + path, init);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function worldToken(prefix) {
  const { body } = await admin('GET', '/__admin/state');
  return body.tokens.find((t) => t.accessToken.startsWith(prefix + '_'));
}

// Waits until the page shows `text` inside `selector` (a row, a cell, a pane).
async function shows(selector, text) {
  await page.waitForFunction(
    (sel, want) => [...document.querySelectorAll(sel)].some((el) => el.textContent.includes(want)),
    { timeout: 10000 },
    selector,
    text,
  );
}

async function taskState(taskId) {
  return page.$eval(`#tasks tr[data-task-id="${taskId}"] td.state`, (td) => td.textContent);
}

before(async () => {
  await admin('POST', '/__admin/reset');
  browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage();
  page.on('request', (request) => requested.push(request.url()));
  page.on('pageerror', (error) => assert.fail(`the page threw: ${error.message}`));
  await page.goto(base + '/__admin/ui');
  await page.waitForFunction(() => document.getElementById('live').textContent === 'live', { timeout: 10000 });
});

after(async () => {
  if (browser) await browser.close();
});

test('the page comes from the mock alone and lists the world agents with their state', async () => {
  const { body: snapshot } = await admin('GET', '/__admin/state');
  const emails = snapshot.orgs.flatMap((org) => org.users.map((u) => u.email));
  await shows('#agents tbody td', emails[emails.length - 1]);
  const rows = await page.$$eval('#agents tbody tr', (trs) => trs.map((tr) => tr.cells[0].textContent));
  assert.deepEqual(rows, emails);
  assert.equal(await page.$eval('#clock-mode', (el) => el.textContent), 'virtual');
  const elsewhere = requested.filter((url) => !url.startsWith(base + '/'));
  assert.deepEqual(elsewhere, [], 'nothing is loaded from anywhere but the mock');
});

test('an exchange made by another client shows up live, and its entry shows the diagnostic', async () => {
  const agent = await worldToken('forum-case-agent1');
  const refused = await fetch(base + '/v1/subscriptions', {
    method: 'POST',
    headers: { authorization: `Bearer ${agent.accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'crm', eventTypes: ['agent:login'], destinationUrl: 'https://hooks.example.com/x' }),
  });
  assert.equal(refused.status, 403);
  await shows('#journal tr', 'POST /v1/subscriptions 403');
  const row = await page.waitForSelector('#journal tr.s4');
  await row.click();
  await shows('#entry', 'diagnostic: ');
  const entry = await page.$eval('#entry', (el) => el.textContent);
  assert.match(entry, /an administrator role/);
  assert.doesNotMatch(entry, new RegExp(agent.accessToken), 'the token is never shown');

  // The filters: only events, then only 403s.
  await page.select('#journal-kind', 'event');
  const kinds = await page.$$eval('#journal tr', (trs) => trs.map((tr) => tr.cells[2].textContent));
  assert.ok(kinds.every((kind) => kind === 'event'), kinds.join());
  await page.select('#journal-kind', '');
  await page.type('#journal-status', '403');
  const statuses = await page.$$eval('#journal tr', (trs) => trs.map((tr) => tr.cells[3].textContent));
  assert.ok(statuses.length > 0 && statuses.every((s) => s.includes(' 403 ')), statuses.join('\n'));
  await page.$eval('#journal-status', (input) => { input.value = ''; input.dispatchEvent(new Event('input')); });
});

test('the buttons inject a contact, answer it, hang it up, advance the clock, mint a token and reset', async () => {
  // agent2 logs in and becomes Available, as a desktop would.
  const agent = await worldToken('agent2');
  const { body: snapshot } = await admin('GET', '/__admin/state');
  const user = snapshot.orgs[0].users.find((u) => u.email === agent.email);
  const headers = { authorization: `Bearer ${agent.accessToken}`, 'content-type': 'application/json' };
  const login = await fetch(base + '/v1/agents/login', {
    method: 'POST',
    headers,
    body: JSON.stringify({ dialNumber: '1002', teamId: user.teamIds[0], roles: ['agent'], deviceType: 'EXTENSION' }),
  });
  assert.equal(login.status, 202);
  const available = await fetch(base + '/v1/agents/session/state', {
    method: 'PUT',
    headers,
    body: JSON.stringify({ state: 'Available', auxCodeId: '0' }),
  });
  assert.equal(available.status, 202);
  await shows(`#agents tr[data-agent-id="${user.id}"] td.state`, 'Available');

  // A call offered to agent2.
  await page.select('#task-media', 'telephony');
  await page.select('#task-agent', user.id);
  await page.click('#inject');
  await shows('#tasks td.state', 'offered');
  const taskId = await page.$eval('#tasks tbody tr', (tr) => tr.dataset.taskId);
  await shows(`#agents tr[data-agent-id="${user.id}"]`, taskId.slice(0, 8));
  const offered = (await admin('GET', `/__admin/tasks/${taskId}`)).body;
  assert.equal(offered.agentId, user.id);
  assert.ok(offered.ronaAt, 'an offer has a RONA deadline');

  await page.click(`#tasks tr[data-task-id="${taskId}"] button[data-action="answer"]`);
  await page.waitForFunction((id) => document.querySelector(`#tasks tr[data-task-id="${id}"] td.state`)?.textContent === 'connected', {}, taskId);
  assert.equal((await admin('GET', `/__admin/tasks/${taskId}`)).body.state, 'connected');

  await page.click(`#tasks tr[data-task-id="${taskId}"] button[data-action="hang-up"]`);
  await page.waitForFunction((id) => document.querySelector(`#tasks tr[data-task-id="${id}"] td.state`)?.textContent === 'wrapup', {}, taskId);
  assert.equal(await taskState(taskId), 'wrapup');

  // The virtual clock moves by what the page says.
  const before = (await admin('GET', '/__admin/clock')).body.now;
  await page.$eval('#advance-ms', (input) => { input.value = '5000'; });
  await page.click('#advance');
  await shows('#message', 'clock at');
  assert.equal((await admin('GET', '/__admin/clock')).body.now, before + 5000);

  // A minted token works against the WxCC API.
  await page.select('#mint-email', agent.email);
  await page.click('#mint');
  await page.waitForSelector('#minted:not([hidden])');
  const minted = await page.$eval('#minted', (el) => el.textContent);
  assert.match(minted, /^[A-Za-z0-9-]+_[A-Za-z0-9]+_[0-9a-f-]{36}$/);
  const withMinted = await fetch(base + '/v1/agents/session/state', {
    method: 'PUT',
    headers: { authorization: `Bearer ${minted}`, 'content-type': 'application/json' },
    body: JSON.stringify({ state: 'Idle', auxCodeId: '0' }),
  });
  assert.equal(withMinted.status, 202);

  // Reset: no sessions, no tasks, an empty journal on the page.
  await page.click('#reset');
  await shows('#message', 'reset to the loaded world');
  await page.waitForFunction(() => document.querySelectorAll('#tasks tbody tr').length === 0, { timeout: 10000 });
  await page.waitForFunction(
    (id) => document.querySelector(`#agents tr[data-agent-id="${id}"] td.state`)?.textContent === 'LoggedOut',
    { timeout: 10000 },
    user.id,
  );
  assert.equal((await admin('GET', '/__admin/state')).body.agentSessions.length, 0);
});

test('a refusal from the mock is shown on the page, not swallowed', async () => {
  const { body: snapshot } = await admin('GET', '/__admin/state');
  const email = snapshot.orgs[0].users[0].email;
  await page.select('#mint-email', email);
  await page.$eval('#mint-scopes', (input) => { input.value = 'not a scope!'; });
  await page.click('#mint');
  await page.waitForSelector('#message.error');
  assert.match(await page.$eval('#message', (el) => el.textContent), /POST \/__admin\/tokens: 400/);
});

test('with --admin-token the page asks for the token, then shows the mock', async () => {
  const { spawn } = require('node:child_process');
  const path = require('node:path');
  const binary = path.join(__dirname, '..', '..', 'target', 'debug', 'wxcc-mock');
  const guarded = spawn(binary, ['serve', '--port', '0', '--admin-token', 'let-me-in'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    const address = await new Promise((resolve, reject) => {
      let log = '';
      guarded.stderr.on('data', (chunk) => {
        log += chunk;
        const found = /listening on (http:\/\/[^\s]+)/.exec(log);
        if (found) resolve(found[1]);
      });
      guarded.on('exit', (code) => reject(new Error(`the mock exited (${code}): ${log}`)));
    });
    const tab = await browser.newPage();
    tab.on('pageerror', (error) => assert.fail(`the page threw: ${error.message}`));
    await tab.goto(address + '/__admin/ui');
    await tab.waitForSelector('#token-form:not([hidden])', { timeout: 10000 });
    assert.equal(await tab.$$eval('#agents tbody tr', (rows) => rows.length), 0, 'nothing is shown without the token');
    await tab.type('#admin-token', 'let-me-in');
    await tab.click('#use-token');
    await tab.waitForFunction(() => document.getElementById('live').textContent === 'live', { timeout: 10000 });
    await tab.waitForFunction(() => document.querySelectorAll('#agents tbody tr').length > 0, { timeout: 10000 });
    assert.equal(await tab.$eval('#token-form', (form) => form.hidden), true);
    await tab.close();
  } finally {
    guarded.kill('SIGTERM');
  }
});

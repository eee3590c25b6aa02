// The SDK's task flows against wxcc-mock, with contacts injected through the mock's admin API:
// a chat accepted, ended and wrapped up; a call on the extension answered on the "phone" (the
// admin API), held, resumed, ended and wrapped up; a call nobody answers reaching RONA; an outdial.
'use strict';

require('./node-env');

const { test } = require('node:test');
const assert = require('node:assert/strict');

const { base, mint, sdk } = require('./mock');

// A safety net, not a pause: every wait below ends on an SDK event.
const PATIENCE_MS = 10000;

function next(emitter, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${PATIENCE_MS} ms`)), PATIENCE_MS);
    emitter.once(event, (value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

async function admin(path, body) {
  const response = await fetch(`${base}/__admin${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body || {}),
  });
  const text = await response.text();
  assert.ok(response.ok, `POST /__admin${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

async function world() {
  const response = await fetch(`${base}/__admin/state`);
  return response.json();
}

test('the SDK plays tasks against the mock', async (t) => {
  const token = await mint('agent2@wxcc.example', ['cjp:user', 'cjp:config_read']);
  const webex = await sdk(token);
  const cc = webex.cc;
  const profile = await cc.register();
  const resolved = profile.wrapupCodes.find((c) => c.name === 'Resolved');
  const org = (await world()).orgs[0];
  const queue = (name) => org.queues.find((q) => q.name === name).id;
  const ronaCode = org.auxCodes.find((c) => c.name === 'RONA').id;

  await cc.stationLogin({ teamId: profile.teams[0].id, loginOption: 'EXTENSION', dialNumber: '1002' });
  await cc.setAgentState({ state: 'Available', auxCodeId: '0', lastStateChangeReason: '' });

  await t.test('a chat: task:incoming, accept(), end(), wrapup()', async () => {
    const incoming = next(cc, 'task:incoming');
    const injected = await admin('/tasks', { mediaType: 'chat', queueId: queue('Support Chat'), customerName: 'Ada' });
    const task = await incoming;
    assert.equal(task.data.interactionId, injected.taskId);
    assert.equal(task.data.interaction.mediaType, 'chat');

    const assigned = await task.accept();
    assert.equal(assigned.data.type, 'AgentContactAssigned');
    const ended = await task.end();
    assert.equal(ended.data.type, 'AgentWrapup');
    assert.equal(task.data.wrapUpRequired, true);
    const wrapped = await task.wrapup({ wrapUpReason: resolved.name, auxCodeId: resolved.id });
    assert.equal(wrapped.data.type, 'AgentWrappedUp');
    const view = await (await fetch(`${base}/__admin/tasks/${injected.taskId}`)).json();
    assert.equal(view.state, 'completed');
  });

  await t.test('a call on the extension: answered on the phone, hold(), resume(), end(), wrapup()', async () => {
    const incoming = next(cc, 'task:incoming');
    const injected = await admin('/tasks', { mediaType: 'telephony', queueId: queue('Support Voice') });
    const task = await incoming;
    assert.equal(task.data.interaction.mediaType, 'telephony');
    // On EXTENSION, accept() sends nothing: the phone answers.
    await task.accept();
    const assigned = next(task, 'task:assigned');
    await admin(`/tasks/${injected.taskId}/answer`);
    await assigned;

    const held = await task.hold();
    assert.equal(held.data.type, 'AgentContactHeld');
    assert.equal(task.data.interaction.media[injected.taskId].isHold, true);
    const resumed = await task.resume();
    assert.equal(resumed.data.type, 'AgentContactUnheld');
    await task.end();
    const wrapped = await task.wrapup({ wrapUpReason: resolved.name, auxCodeId: resolved.id });
    assert.equal(wrapped.data.type, 'AgentWrappedUp');
  });

  await t.test('a call nobody answers: RONA, task:rejected and the agent Idle with the RONA code', async () => {
    const incoming = next(cc, 'task:incoming');
    const injected = await admin('/tasks', { mediaType: 'telephony', queueId: queue('Support Voice'), ronaTimeoutSeconds: 1 });
    const task = await incoming;
    const rejected = next(task, 'task:rejected');
    const stateChange = next(cc, 'agent:stateChange');
    assert.equal(await rejected, 'RONA_TIMER_EXPIRED');
    const state = await stateChange;
    assert.equal(state.subStatus, 'Idle');
    assert.equal(state.auxCodeId, ronaCode);
    // Requeued; nobody else is Available: the customer gives up.
    const view = await admin(`/tasks/${injected.taskId}/customer-hangup`);
    assert.equal(view.state, 'abandoned');
  });

  await t.test('cc.startOutdial(): offered, answered, ended, wrapped up', async () => {
    const incoming = next(cc, 'task:incoming');
    const offer = await cc.startOutdial('+14155550199', '+14155550100');
    assert.equal(offer.data.type, 'AgentOfferContact');
    const task = await incoming;
    assert.equal(task.data.interaction.outboundType, 'OUTDIAL');
    assert.equal(task.data.interaction.callAssociatedDetails.dn, '+14155550199');
    const assigned = next(task, 'task:assigned');
    await admin(`/tasks/${task.data.interactionId}/answer`);
    await assigned;
    await task.end();
    const wrapped = await task.wrapup({ wrapUpReason: resolved.name, auxCodeId: resolved.id });
    assert.equal(wrapped.data.type, 'AgentWrappedUp');
  });

  await cc.stationLogout({ logoutReason: 'End of shift' });
});

// The SDK's agent flow against wxcc-mock: register, station login (EXTENSION), Idle with an idle
// code from the world, Available, a duplicate login refused, logout.
'use strict';

require('./node-env');

const { test } = require('node:test');
const assert = require('node:assert/strict');
const Webex = require('@webex/contact-center').default;

const { mint, sdk } = require('./mock');

test('the SDK registers, logs in, changes state and logs out against the mock', async (t) => {
  const token = await mint('agent2@wxcc.example', ['cjp:user', 'cjp:config_read']);
  const webex = await sdk(token);
  let profile;
  let team;

  await t.test('register() loads the agent profile from the mock', async () => {
    profile = await webex.cc.register();
    assert.match(profile.agentId, /^[0-9a-f-]{36}$/);
    assert.equal(profile.agentMailId, 'agent2@wxcc.example');
    assert.ok(profile.teams.length > 0, 'teams from the world');
    assert.ok(profile.idleCodes.some((c) => c.name === 'Lunch'), 'idle codes from the world');
    assert.ok(profile.wrapupCodes.some((c) => c.name === 'Resolved'), 'wrap-up codes from the world');
    assert.equal(profile.webRtcEnabled, false);
    team = profile.teams[0].id;
  });

  await t.test('stationLogin with an extension succeeds', async () => {
    const login = await webex.cc.stationLogin({ teamId: team, loginOption: 'EXTENSION', dialNumber: '1002' });
    assert.equal(login.type, 'AgentStationLoginSuccess');
    assert.equal(login.subStatus, 'Idle');
    // The SDK turns the channelsMap the mock sends into mmProfile counts (and fails without it).
    assert.equal(login.mmProfile.telephony, 1);
  });

  await t.test('setAgentState goes Idle with an idle code from the world, then Available', async () => {
    const lunch = profile.idleCodes.find((c) => c.name === 'Lunch');
    const idle = await webex.cc.setAgentState({ state: 'Idle', auxCodeId: lunch.id, lastStateChangeReason: 'Lunch' });
    assert.equal(idle.data.type, 'AgentStateChangeSuccess');
    assert.equal(idle.data.auxCodeId, lunch.id);
    const available = await webex.cc.setAgentState({ state: 'Available', auxCodeId: '0', lastStateChangeReason: '' });
    assert.equal(available.data.subStatus, 'Available');
  });

  await t.test('a duplicate login is refused with the mock\'s reason', async () => {
    await assert.rejects(
      webex.cc.stationLogin({ teamId: team, loginOption: 'EXTENSION', dialNumber: '1002' }),
      (error) => {
        assert.match(String(error.message || error), /AGENT_ALREADY_LOGGED_IN/);
        return true;
      },
    );
  });

  await t.test('stationLogout succeeds', async () => {
    const out = await webex.cc.stationLogout({ logoutReason: 'User requested logout' });
    assert.equal(out.data.type, 'AgentLogoutSuccess');
  });
});

// A token without cjp:user: the SDK's register() is refused with the mock's 403.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { mint, sdk } = require('./mock');

test('a token without cjp:user is refused with 403', async () => {
  const token = await mint('agent1@wxcc.example', ['cjp:config_read']);
  const webex = await sdk(token);
  await assert.rejects(webex.cc.register(), (error) => {
    // The SDK surfaces the HTTP refusal of POST /v1/notification/subscribe.
    assert.equal(error.statusCode, 403);
    assert.match(String(error.message), /Forbidden Operation/);
    assert.match(String(error.message), /notification\/subscribe/);
    return true;
  });
});

// Talking to wxcc-mock from the SDK tests. MOCK is the mock's base URL (default
// http://127.0.0.1:8080). The SDK keeps singletons per process, so each test file drives one
// token.
'use strict';

require('./node-env');

const assert = require('node:assert/strict');
const { after } = require('node:test');
const Webex = require('@webex/contact-center').default;

const base = (process.env.MOCK || 'http://127.0.0.1:8080').replace(/\/$/, '');
const instances = [];

async function mint(email, scopes) {
  const response = await fetch(`${base}/__admin/tokens`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, scopes, ttlSeconds: 3600 }),
  });
  assert.equal(response.status, 201, 'minting a token');
  return (await response.json()).accessToken;
}

// Points the SDK at the mock only through configuration: the wcc-api-gateway override, and the
// discovery URLs on loopback.
function sdk(accessToken) {
  const webex = Webex.init({
    credentials: { access_token: accessToken },
    config: {
      logger: { level: 'error' },
      services: {
        discovery: { u2c: `${base}/u2c/api/v1`, hydra: `${base}/hydra/v1` },
        override: { 'wcc-api-gateway': `${base}/` },
      },
      cc: { allowMultiLogin: true },
    },
  });
  instances.push(webex);
  return new Promise((resolve) => webex.once('ready', () => resolve(webex)));
}

function cleanUpAfter(after) {
 after(async () => {
  for (const webex of instances) {
    try {
      await webex.cc.deregister();
    } catch {
      // not registered
    }
  }
  // The SDK keeps timers alive; the flow is over.
  setImmediate(() => process.exit(process.exitCode || 0));
 });
}


cleanUpAfter(after);

module.exports = { base, mint, sdk };

// Cisco's SDK is browser-first. This gives it, in Node, what a browser would: window, document,
// location, navigator, a no-op Worker (its keep-alive worker) and WebSocket from `ws`; and it
// resolves @webex/calling to its CommonJS build. Nothing in the SDK itself is changed.
'use strict';

const Module = require('module');

const callingCommonJs = require.resolve('@webex/calling/dist/index.js');
const resolve = Module._resolveFilename;
Module._resolveFilename = function resolveCalling(request, ...rest) {
  return resolve.call(this, request === '@webex/calling' ? callingCommonJs : request, ...rest);
};

global.window = global;
global.WebSocket = require('ws');
global.navigator = { onLine: true, userAgent: 'node', platform: 'node' };
global.document = { addEventListener() {}, removeEventListener() {}, createElement: () => ({}) };
global.location = { href: 'http://localhost/', origin: 'http://localhost', protocol: 'http:', host: 'localhost', hostname: 'localhost' };
global.Worker = class NoopWorker {
  postMessage() {}
  terminate() {}
};

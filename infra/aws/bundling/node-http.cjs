// node:http for the ESM Lambda bundles (ADR 0025), loaded with require(). Imported as an ES module,
// Node 22 builds node:http's ESM facade by reading every export, and one of them is a lazy getter
// that loads undici (~25 ms of CPU at INIT) although nothing here uses fetch or WebSocket. The
// bundling aliases `node:http` and `http` to this file, so the SDK's HTTP handler gets the same
// module through require(), which reads no getter.
module.exports = require('http');

// node:http for the ESM Lambda bundles (ADR 0025), loaded with require(). Imported as an ES module,
// Node 22 builds node:http's ESM facade by reading every export, and one of them is a lazy getter
// that loads undici (~25 ms of CPU, on the first SDK request) although nothing here uses fetch or
// WebSocket. The bundling aliases `node:http` (the SDK's spelling) to this file, so the SDK's HTTP
// handler gets the same module through require(), which reads no getter. The bare name below is not
// aliased: aliasing it too would make this file require itself.
// biome-ignore lint/style/useNodejsImportProtocol: node:http is the aliased name (see above)
module.exports = require('http');

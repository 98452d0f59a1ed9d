// Code splitting for the ESM Lambda bundles (ADR 0025, amendment 1). Run by NodejsFunction's
// afterBundling hook (infra/aws/constructs/ingest-function.ts): re-bundles the entry with the same
// esbuild options as the CDK's pass, plus `splitting`, into the asset's output directory. Each dynamic
// import() (the Timestream store, the alert sinks, the SDK's non-environment credential providers and
// their nested STS/SSO clients) then becomes its own chunk that V8 parses only when it is imported,
// instead of pre-parsing it inside the one file at INIT. The entry keeps the name index.mjs and the
// metafile (index.meta.json, read by the deploy harness) covers every output.
//
//   node split.mjs <entry> <outputDir> <options JSON: esbuild build options without entry/output>
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';

const [entry, outdir, optionsJson] = process.argv.slice(2);
if (!entry || !outdir || !optionsJson) {
  console.error('usage: node split.mjs <entry> <outputDir> <options JSON>');
  process.exit(2);
}
const options = JSON.parse(optionsJson);
// The CDK's single-file output is replaced as a whole (bundle, map, metafile).
for (const f of fs.readdirSync(outdir)) {
  if (/\.(mjs|js|cjs|map)$/.test(f) || f === 'index.meta.json') fs.rmSync(path.join(outdir, f));
}
const result = await esbuild.build({
  ...options,
  entryPoints: { index: entry },
  outdir,
  splitting: true,
  format: 'esm',
  bundle: true,
  platform: 'node',
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  metafile: true,
  logLevel: 'warning',
});
fs.writeFileSync(path.join(outdir, 'index.meta.json'), JSON.stringify(result.metafile));

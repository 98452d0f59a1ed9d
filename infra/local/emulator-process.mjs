// Child-process entry for one AWS emulator (kinesalite or dynalite). The local stack runs each
// emulator in its own process so its CPU work (request validation, LevelDB) does not share the event
// loop with the broker and the handlers: on a 2-core machine that is the difference between keeping
// up and falling behind. Plain JS (no TypeScript loader needed): it only wires the npm packages.
//
// argv: <kinesalite|dynalite> [dataPath] (LevelDB directory; in memory without it). Sends {port} over IPC
// once listening; closes on a {stop: true} message or when the parent goes away (IPC disconnect), so
// LevelDB files are closed cleanly.
import dynalite from 'dynalite';
import kinesalite from 'kinesalite';
import { closeLevelIteratorsOnReturn } from './level-iterators.mjs';

const [kind, path] = process.argv.slice(2);
// dynalite leaves every Query's and Scan's LevelDB iterator open (level-iterators.mjs): close them.
if (kind === 'dynalite') closeLevelIteratorsOnReturn();
const options =
  kind === 'kinesalite'
    ? // shardLimit: kinesalite's default (10) is per account; allow a few parallel test stacks.
      { createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100, ...(path ? { path } : {}) }
    : { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) };
const server = kind === 'kinesalite' ? kinesalite(options) : dynalite(options);

let closing = false;
const shutdown = () => {
  if (closing) return;
  closing = true;
  server.close(() => process.exit(0));
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 2000).unref();
};
// Ctrl-C (SIGINT), and a SIGTERM sent to the whole process group (`timeout`, `kill -- -PGID`, a
// service manager), reach this process too: the parent drains the stack through us first, so it alone
// decides when we stop — with a 'stop' message, or by going away (the IPC channel closes).
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});
process.on('message', (m) => {
  if (m && m.stop === true) shutdown();
});
process.on('disconnect', shutdown);

server.listen(0, '127.0.0.1', () => process.send?.({ port: server.address().port }));

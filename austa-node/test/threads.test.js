'use strict';
// Calls in flight hold no libuv thread. Node runs file system, DNS and crypto work on a pool of 4
// threads by default; a database call that blocked one of them for its round trip would queue that
// work (and other calls) behind the database. Checked in a child process whose pool has one thread.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const child = `
const fs = require('node:fs/promises');
const os = require('node:os');
const path = require('node:path');
const austa = require(${JSON.stringify(path.join(__dirname, '..'))});
const { patientRow, newScope, MASTER_KEY } = require(${JSON.stringify(path.join(__dirname, 'support.js'))});
(async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'austa-node-threads-'));
  const db = await austa.Database.open({ url: 'sqlite://' + path.join(dir, 't.db'), masterKey: MASTER_KEY });
  await db.migrate();
  const scope = await newScope(db);
  const order = [];
  // Each call is one native call (one batch of 2000 rows), so each would hold the one pool thread throughout.
  const calls = Array.from({ length: 4 }, () =>
    scope.patients.importRows(Array.from({ length: 2000 }, () => patientRow()), { batchSize: 2000 }).then(() => order.push('db')));
  await new Promise((resolve) => setTimeout(resolve, 10)); // the calls are running now
  const files = fs.stat(dir).then(() => order.push('fs'));
  await Promise.all([...calls, files]);
  await db.close();
  await fs.rm(dir, { recursive: true, force: true });
  process.stdout.write(JSON.stringify(order));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
`;

test('calls in flight hold no libuv thread: file system work does not wait for them', () => {
  const run = spawnSync(process.execPath, ['-e', child], {
    env: { ...process.env, UV_THREADPOOL_SIZE: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(run.status, 0, run.stderr);
  const order = JSON.parse(run.stdout);
  assert.deepEqual([...order].sort(), ['db', 'db', 'db', 'db', 'fs']);
  assert.equal(order[0], 'fs', `a file system call waited for database calls: ${order.join(', ')}`);
});

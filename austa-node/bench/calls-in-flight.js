'use strict';
// Calls per second with many Promises in flight from one process, and how long a file system call
// waits meanwhile. Usage: node bench/calls-in-flight.js [DATABASE_URL] (default: a SQLite file in a
// temporary folder). A PostgreSQL URL must reach a database migrated by `austa migrate`.
//
// Each round keeps IN_FLIGHT lookups of a patient by id in flight until TOTAL are done.

const crypto = require('node:crypto');
const fs = require('node:fs/promises');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const austa = require('..');

const TOTAL = Number(process.env.TOTAL || 5000);
const IN_FLIGHT = Number(process.env.IN_FLIGHT || 100);

async function main() {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'austa-bench-'));
  const url = process.argv[2] || `sqlite://${path.join(dir, 'bench.db')}`;
  const masterKey = process.env.AUSTA_MASTER_KEY || crypto.randomBytes(32).toString('base64');
  const db = await austa.Database.open({ url, masterKey });
  await db.migrate();
  const org = await db.organizations.create({ name: `Bench ${Date.now()}`, organizationType: 'CLINIC' });
  const scope = await db.scope(org.id, austa.Actor.platform());
  const ids = [];
  for (let i = 0; i < 200; i += 1) {
    const phone = `+55119${String(70000000 + i).padStart(8, '0')}`;
    ids.push((await scope.patients.create({ firstName: 'Bench', lastName: 'Paciente', phone })).id);
  }
  let next = 0;
  const fsWaits = [];
  const t0 = performance.now();
  async function worker() {
    while (next < TOTAL) {
      next += 1;
      await scope.patients.get(ids[next % ids.length]);
    }
  }
  const probe = setInterval(() => {
    const start = performance.now();
    fs.stat(dir).then(() => fsWaits.push(performance.now() - start));
  }, 20);
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(probe);
  fsWaits.sort((a, b) => a - b);
  const p = (q) => fsWaits[Math.min(fsWaits.length - 1, Math.floor(q * fsWaits.length))] || 0;
  console.log(JSON.stringify({
    backend: url.split(':')[0],
    total: TOTAL,
    in_flight: IN_FLIGHT,
    uv_threadpool_size: Number(process.env.UV_THREADPOOL_SIZE || 4),
    calls_per_second: Math.round(TOTAL / seconds),
    fs_stat_wait_ms: { p50: Number(p(0.5).toFixed(2)), p99: Number(p(0.99).toFixed(2)), max: Number(p(1).toFixed(2)) },
  }));
  await db.close();
  await fs.rm(dir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

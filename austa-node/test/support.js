'use strict';
// Test support: each suite runs on SQLite and on PostgreSQL.
//
// PostgreSQL comes from AUSTA_TEST_DATABASE_URL (an admin URL): a database of its own is created with
// psql, migrated as the owner, and the tests run as the runtime role austa_app (row-level security on,
// as in production); it is dropped at exit. Without the variable the PostgreSQL runs are skipped,
// except under CI=true, where that is a failure.

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const austa = require('..');

const MASTER_KEY = crypto.randomBytes(32).toString('base64');

function psql(url, sql) {
  try {
    execFileSync('psql', [url, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    // Not the command line: it holds the URL, password included.
    throw new Error(`psql failed (${sql.split(' ')[0]} ...): ${String(error.stderr || '').trim()}`);
  }
}

function withDatabase(url, name, user) {
  const u = new URL(url);
  u.pathname = `/${name}`;
  if (user) {
    u.username = user;
    u.password = '';
  }
  return u.toString();
}

let pgUrl = null;
async function postgresUrl() {
  if (pgUrl) return pgUrl;
  const admin = process.env.AUSTA_TEST_DATABASE_URL;
  if (!admin) return null;
  const name = `austa_node_test_${crypto.randomBytes(8).toString('hex')}`;
  psql(admin, `CREATE DATABASE ${name}`);
  process.on('exit', () => {
    try {
      psql(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    } catch {
      // best effort
    }
  });
  const owner = await austa.Database.open({ url: withDatabase(admin, name), masterKey: MASTER_KEY });
  await owner.migrate();
  await owner.close();
  psql(withDatabase(admin, name), 'ALTER ROLE austa_app LOGIN');
  pgUrl = withDatabase(admin, name, 'austa_app');
  return pgUrl;
}

/** The backends to run on: [{name, open()}]. */
function backends() {
  const list = [
    {
      name: 'sqlite',
      async open() {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'austa-node-'));
        const db = await austa.Database.open({ url: `sqlite://${path.join(dir, 'test.db')}`, masterKey: MASTER_KEY });
        await db.migrate();
        return db;
      },
    },
  ];
  if (process.env.AUSTA_TEST_DATABASE_URL) {
    list.push({
      name: 'postgres',
      async open() {
        return austa.Database.open({ url: await postgresUrl(), masterKey: MASTER_KEY });
      },
    });
  } else if (process.env.CI === 'true') {
    throw new Error('CI=true but AUSTA_TEST_DATABASE_URL is not set: PostgreSQL tests must run in CI');
  }
  return list;
}

let counter = 0;
/** A unique valid Brazilian mobile number. */
function phone() {
  counter += 1;
  return `+55119${String(70000000 + ((process.pid * 1000 + counter) % 29999999)).padStart(8, '0')}`;
}

function patientRow(extra = {}) {
  return { firstName: 'Paciente', lastName: 'Teste', phone: phone(), ...extra };
}

async function newScope(db, actor = austa.Actor.platform()) {
  const org = await db.organizations.create({ name: `Clínica ${counter++}`, organizationType: 'CLINIC' });
  return db.scope(org.id, actor);
}

module.exports = { backends, patientRow, phone, newScope, MASTER_KEY };

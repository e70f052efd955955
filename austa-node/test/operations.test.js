'use strict';
// Every operation of the core's registry is reachable through the generated table (lib/operations.js),
// and the table is the registry.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const austa = require('..');
const native = require('../native.js');
const { GROUPS, SCOPE_METHODS, DATABASE_METHODS, OPERATIONS } = require('../lib/operations');
const { backends } = require('./support');

test('the generated table is the registry', () => {
  const { scope, database } = native.operations();
  assert.deepEqual(Object.keys(OPERATIONS).sort(), [...scope, ...database].sort(), 'regenerate: cargo run -p austa-codegen');
  for (const [name, [target]] of Object.entries(OPERATIONS)) assert.equal(target === 'scope', scope.includes(name), name);
});

const TEXT = {
  phone: '+5511987654321',
  cpf: '529.982.247-25',
  email: 'ana@example.com',
  cnpj: '11.222.333/0001-81',
  checksum: '0'.repeat(64),
  phoneNumberId: '109876543210',
};
const DATES = new Set(['start', 'end', 'validFrom', 'validUntil', 'at', 'now']);
const NUMBERS = new Set(['limit', 'leaseSeconds', 'steps', 'amount', 'fromSeq', 'toSeq', 'seconds', 'batchSize']);
const RECORDS = new Set(['data', 'patch', 'analysis', 'ocr', 'sync', 'outcome']);

/** A plausible value for an argument, from its name. */
function sample(name, dir) {
  if (name === 'id' || name.endsWith('Id')) return crypto.randomUUID();
  if (DATES.has(name)) return new Date();
  if (NUMBERS.has(name)) return name === 'leaseSeconds' ? 60 : 1;
  if (RECORDS.has(name)) return {};
  if (name === 'path') return path.join(dir, 'export.json');
  if (name === 'event') return { action: 'LOGIN' };
  if (name === 'status') return 'PENDING';
  if (name === 'entityType') return 'PATIENT';
  return TEXT[name] || 'teste';
}

/** The method spec and its owner object for one operation. */
function locate(db, scope, name) {
  const [target, group, method] = OPERATIONS[name];
  const owner = group ? (target === 'scope' ? scope : db)[group] : target === 'scope' ? scope : db;
  const table = group ? GROUPS[group].methods : target === 'scope' ? SCOPE_METHODS : DATABASE_METHODS;
  return { owner, method, spec: table.find((m) => m[1] === name) };
}

/** Whether a failure is the binding's (a name or argument the registry does not know, or one the
 * method failed to pass) rather than the operation's own answer to sample data. */
function dispatchError(error, argNames) {
  if (!(error instanceof austa.AustaError)) return true;
  const text = String(error.message);
  if (error.field === 'operation' || error.field === 'arguments' || text.includes('not an argument of this call')) return true;
  return argNames.includes(error.field) && text.includes('required');
}

for (const backend of backends()) {
  describe(backend.name, () => {
    let db;
    let dir;
    before(async () => {
      db = await backend.open();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'austa-ops-'));
    });
    after(async () => {
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    test('every operation runs through its method', async () => {
      const org = await db.organizations.create({ name: 'Clínica Operações', organizationType: 'CLINIC' });
      const scope = await db.scope(org.id, austa.Actor.platform(), { purpose: 'operations test' });
      // Rotating the master key last: the database keeps working with the old one until then.
      const names = Object.keys(OPERATIONS).sort((a, b) => (a === 'rotate_master_key') - (b === 'rotate_master_key'));
      const broken = [];
      const outcomes = {};
      for (const name of names) {
        const { owner, method, spec } = locate(db, scope, name);
        let call;
        let argNames;
        if (method === 'createMany') {
          call = () => owner.createMany([{}]);
          argNames = ['rows', 'countOnly'];
        } else {
          assert.ok(spec, `${name} has no method in the table`);
          assert.equal(typeof owner[method], 'function', `${name}: ${method} is not a method`);
          const [, , positional, options] = spec;
          const values = positional.map((n) => sample(n, dir));
          if (options.length) values.push(name === 'rotate_master_key' ? { keyFile: path.join(dir, 'new.key') } : {});
          call = () => owner[method](...values);
          argNames = [...positional, ...options];
        }
        try {
          await call();
          outcomes[name] = 'ok';
        } catch (error) {
          outcomes[name] = error.name || 'Error';
          if (dispatchError(error, argNames)) broken.push(`${name}: ${error.message}`);
        }
      }
      assert.deepEqual(broken, []);
      const answered = Object.values(outcomes).filter((o) => o === 'ok' || o === 'NotFound').length;
      assert.ok(answered >= names.length / 2, JSON.stringify(outcomes));
    });
  });
}

'use strict';
// The webhook receiver example: a sample body posted over HTTP is stored, and answered only after
// the commit; the ESM entry loads the same package.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const austa = require('..');
const { createReceiver, setUpDemo, SAMPLE_NUMBER_ID } = require('../examples/webhook-receiver');
const { MASTER_KEY } = require('./support');

// Posted with the current time, as docs/node.md does: the ingest refuses message times far from now.
const SAMPLE = Buffer.from(
  fs
    .readFileSync(path.join(__dirname, '..', 'examples', 'sample-webhook.json'), 'utf8')
    .replace(/"timestamp": "\d+"/, `"timestamp": "${Math.floor(Date.now() / 1000)}"`),
);

test('the receiver stores a posted body before answering 200', async () => {
  const db = await austa.Database.open({ url: 'sqlite::memory:', masterKey: MASTER_KEY });
  await db.migrate();
  await setUpDemo(db);
  const secret = 'app-secret-for-tests';
  const server = createReceiver(db, { appSecret: secret, verifyToken: 'verify-me' });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}/webhook`;
  const sign = (body) => `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
  try {
    const handshake = await fetch(`${base}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=42`);
    assert.equal(await handshake.text(), '42');
    const unsigned = await fetch(base, { method: 'POST', body: SAMPLE });
    assert.equal(unsigned.status, 401);
    const posted = await fetch(base, { method: 'POST', body: SAMPLE, headers: { 'x-hub-signature-256': sign(SAMPLE) } });
    assert.equal(posted.status, 200);
    assert.deepEqual(await posted.json(), { stored: 1, duplicates: 0, statuses: 0 });
    // Stored by the time 200 came back.
    const organization = await db.organizationForWhatsapp(SAMPLE_NUMBER_ID);
    const scope = await db.scope(organization, austa.Actor.platform());
    const message = await scope.messages.findByWhatsappMessageId('wamid.DEMO0001');
    assert.equal(message.content, 'Olá, preciso remarcar minha consulta');
    const retried = await fetch(base, { method: 'POST', body: SAMPLE, headers: { 'x-hub-signature-256': sign(SAMPLE) } });
    assert.deepEqual(await retried.json(), { stored: 0, duplicates: 1, statuses: 0 });
    const garbage = Buffer.from('{"object": "whatsapp_business_account", "entry": 7}');
    const refused = await fetch(base, { method: 'POST', body: garbage, headers: { 'x-hub-signature-256': sign(garbage) } });
    assert.equal(refused.status, 400);
  } finally {
    await new Promise((resolve) => server.close(resolve));
    await db.close();
  }
});

test('import loads the ES module entry', async () => {
  const esm = await import('../index.mjs');
  assert.equal(esm.Database, austa.Database);
  assert.equal(esm.default.Actor, austa.Actor);
});

test('the receiver refuses to run without a signing secret unless told it is development', async () => {
  const db = await austa.Database.open({ url: 'sqlite::memory:', masterKey: MASTER_KEY });
  const saved = process.env.WHATSAPP_APP_SECRET;
  delete process.env.WHATSAPP_APP_SECRET;
  try {
    assert.throws(() => createReceiver(db), /WHATSAPP_APP_SECRET/);
    createReceiver(db, { insecure: true }).close();
  } finally {
    if (saved !== undefined) process.env.WHATSAPP_APP_SECRET = saved;
    await db.close();
  }
});

test('achievements inside inputs are renamed like the other nested structs', async () => {
  const { input } = require('../lib/wire');
  assert.deepEqual(input({ achievements: [{ earnedAt: 'x', missionId: 'y' }], labResults: { someKey: 1 } }), {
    achievements: [{ earned_at: 'x', mission_id: 'y' }],
    lab_results: { someKey: 1 },
  });
});

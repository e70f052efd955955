'use strict';
// A minimal WhatsApp Cloud API webhook receiver on Node's own `http` module.
//
//   cd austa-node && npm install && npm run build
//   node examples/webhook-receiver.js            # listens on 127.0.0.1:8080 (PORT to change)
//   sed "s/\"timestamp\": \"[0-9]*\"/\"timestamp\": \"$(date +%s)\"/" examples/sample-webhook.json |
//     curl -X POST --data-binary @- -H 'content-type: application/json' http://127.0.0.1:8080/webhook
//
// (The sample is posted with the current time: the ingest refuses message times more than five
// minutes ahead, or more than seven days before the number was registered.)
//
// It answers 200 only after the body is committed (messages, conversation counters, audit events in
// one transaction), so WhatsApp retries anything that was not stored; retries are idempotent (a
// message id already stored is skipped). The X-Hub-Signature-256 header is verified with
// WHATSAPP_APP_SECRET first and a bad signature is refused with 401; without the secret the
// example runs only in an explicit, announced development mode.
//
// Without DATABASE_URL it uses a SQLite file and a development key file in the current folder, and
// registers the sample's phone number id with a demo clinic and patient so the sample is routed.

const http = require('node:http');
const crypto = require('node:crypto');
const austa = require('..');

const SAMPLE_NUMBER_ID = '109876543210987';
const MAX_BODY = 1024 * 1024;

function signatureValid(secret, body, header) {
  if (!secret) return true; // only with `insecure: true` (see createReceiver)
  const expected = `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;
  const given = Buffer.from(String(header || ''));
  return given.length === expected.length && crypto.timingSafeEqual(given, Buffer.from(expected));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const tooLarge = () => Object.assign(new Error('body too large'), { status: 413 });
    if (Number(req.headers['content-length'] || 0) > MAX_BODY) return reject(tooLarge());
    const parts = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        req.pause(); // stop buffering; the 413 is answered with Connection: close
        reject(tooLarge());
      } else parts.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function reply(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', ...(status === 413 ? { connection: 'close' } : {}) });
  res.end(JSON.stringify(body));
}

/** The receiver as an http.Server over an open austa Database. Refuses to start without the app
 * secret that signs Meta's requests, unless `insecure: true` (local development only). */
function createReceiver(db, options = {}) {
  const secret = options.appSecret || process.env.WHATSAPP_APP_SECRET || '';
  if (!secret && !options.insecure) {
    throw new Error('set WHATSAPP_APP_SECRET (or pass insecure: true for local development)');
  }
  const verifyToken = options.verifyToken || process.env.WHATSAPP_VERIFY_TOKEN || '';
  return http.createServer(async (req, res) => {
    const url = new URL(req.url || '/', 'http://localhost');
    if (url.pathname !== '/webhook') return reply(res, 404, { error: 'not found' });
    if (req.method === 'GET') {
      // Meta's subscription handshake.
      const ok = verifyToken && url.searchParams.get('hub.mode') === 'subscribe' && url.searchParams.get('hub.verify_token') === verifyToken;
      res.writeHead(ok ? 200 : 403, { 'content-type': 'text/plain' });
      return res.end(ok ? url.searchParams.get('hub.challenge') || '' : 'forbidden');
    }
    if (req.method !== 'POST') return reply(res, 405, { error: 'method not allowed' });
    try {
      const body = await readBody(req);
      if (!signatureValid(secret, body, req.headers['x-hub-signature-256'])) return reply(res, 401, { error: 'bad signature' });
      const report = await db.ingestWhatsapp(body); // resolves after the commit
      return reply(res, 200, { stored: report.messagesStored, duplicates: report.duplicatesSkipped, statuses: report.statusesApplied });
    } catch (error) {
      if (error.status) return reply(res, error.status, { error: error.message });
      // A body WhatsApp should not retry (malformed) is a 400; anything else a 500, so it retries.
      const status = error instanceof austa.ValidationError ? 400 : 500;
      return reply(res, status, { error: error.code || 'internal' });
    }
  });
}

/** A demo clinic that owns the sample's phone number id, and the patient who writes in the sample. */
async function setUpDemo(db) {
  if (await db.organizationForWhatsapp(SAMPLE_NUMBER_ID)) return;
  const clinic = await db.organizations.create({ name: 'Clínica Demo Webhook', organizationType: 'CLINIC' });
  const admin = await db.scope(clinic.id, austa.Actor.platform());
  await admin.registerWhatsappNumber(SAMPLE_NUMBER_ID);
  await admin.patients.create({ firstName: 'Ana', lastName: 'Demo', phone: '+5511987654321', whatsappId: '5511987654321' });
}

async function main() {
  const db = await austa.Database.open(
    process.env.DATABASE_URL ? {} : { url: 'sqlite://austa-webhook.db', keyFile: '.austa/webhook.key', createKeyFile: true },
  );
  await db.migrate();
  if (!process.env.DATABASE_URL) await setUpDemo(db);
  const port = Number(process.env.PORT || 8080);
  const insecure = !process.env.WHATSAPP_APP_SECRET;
  if (insecure) console.warn('WHATSAPP_APP_SECRET is not set: signatures are NOT verified (development only)');
  const server = createReceiver(db, { insecure });
  server.listen(port, '127.0.0.1', () => console.log(`austa webhook receiver on http://127.0.0.1:${port}/webhook`));
  const stop = () => server.close(() => db.close().then(() => process.exit(0)));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

module.exports = { createReceiver, setUpDemo, SAMPLE_NUMBER_ID };

if (require.main === module) {
  main().catch((error) => {
    console.error(`webhook receiver: ${error.code || 'error'}: ${error.message}`);
    process.exit(1);
  });
}

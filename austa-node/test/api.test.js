'use strict';
// Every exposed call, on SQLite and PostgreSQL.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const util = require('node:util');
const austa = require('..');
const { backends, patientRow, phone, newScope, MASTER_KEY } = require('./support');

const NUMBER = 'PNID-NODE-1';

function webhook(waId, wamid, text) {
  const value = {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '551130000000', phone_number_id: NUMBER },
    contacts: [{ profile: { name: 'Ana' }, wa_id: waId }],
    messages: [{ from: waId, id: wamid, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: text } }],
  };
  return JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: 'W', changes: [{ field: 'messages', value }] }] });
}

async function provider(scope) {
  return scope.providers.create({
    firstName: 'Carla',
    lastName: 'Médica',
    email: `carla${Math.random().toString(16).slice(2, 10)}@example.com`,
    specialty: ['cardiologia'],
    role: 'DOCTOR',
    license: `CRM-SP-${Math.floor(Math.random() * 1e6)}`,
  });
}

for (const backend of backends()) {
  describe(backend.name, () => {
    let db;
    before(async () => {
      db = await backend.open();
    });
    after(async () => {
      await db.close();
    });

    test('database lifecycle', async () => {
      assert.equal(await db.backend(), backend.name);
      const first = await db.seed();
      const again = await db.seed();
      assert.equal(first.hospitalId, again.hospitalId);
      assert.ok(again.entities.every(([, inserted]) => inserted === 0));
      await db.flushAudit();
      await db.clearKeyCache();
      assert.ok(!util.inspect(db).includes(MASTER_KEY));
    });

    test('organizations', async () => {
      const org = await db.organizations.create({ name: 'Hospital Node', organizationType: 'HOSPITAL', taxId: '11.222.333/0001-81' });
      assert.equal(typeof org.id, 'string');
      assert.ok(org.createdAt instanceof Date);
      assert.equal((await db.organizations.get(org.id)).name, 'Hospital Node');
      assert.equal((await db.organizations.findByTaxId('11222333000181')).id, org.id);
      assert.equal((await db.organizations.update(org.id, { name: 'Hospital Node 2' })).name, 'Hospital Node 2');
      assert.ok((await db.organizations.list({ limit: 500 })).items.some((o) => o.id === org.id));
      await db.organizations.delete(org.id);
      await assert.rejects(db.organizations.get(org.id), (e) => e instanceof austa.NotFound && e.code === 'not_found');
    });

    test('patients', async () => {
      const scope = await newScope(db);
      const p = await scope.patients.create(patientRow({ cpf: '529.982.247-25', email: 'ana@example.com', firstName: 'Ana' }));
      assert.equal(p.firstName, 'Ana');
      assert.equal((await scope.patients.get(p.id)).id, p.id);
      assert.equal((await scope.patients.findByPhone(p.phone)).id, p.id);
      assert.equal((await scope.patients.findByCpf('52998224725')).id, p.id);
      assert.equal((await scope.patients.findByEmail('ana@example.com')).id, p.id);
      assert.equal(await scope.patients.findByWhatsappId('5511000000000'), null);
      assert.equal((await scope.patients.update(p.id, { lastName: 'Souza' })).lastName, 'Souza');
      const page = await scope.patients.list({ limit: 10 });
      assert.deepEqual(page.items.map((x) => x.id), [p.id]);
      assert.equal(page.next, null);
      await scope.patients.delete(p.id);
      await assert.rejects(scope.patients.get(p.id), austa.NotFound);
      await scope.patients.restore(p.id);
      await assert.rejects(scope.patients.create(patientRow({ phone: p.phone })), (e) => e instanceof austa.Conflict && e.field === 'phone');
      await assert.rejects(
        scope.patients.create(patientRow({ cpf: '111.222.333-44' })),
        (e) => e instanceof austa.ValidationError && e.field === 'cpf' && !e.message.includes('111.222.333-44'),
      );
      await assert.rejects(scope.patients.create(patientRow({ shoeSize: 42 })), (e) => e.field === 'shoeSize');
      await assert.rejects(
        scope.patients.create(patientRow({ emergencyContact: { name: 'Mãe', phone: 1, relationship: 'mãe' } })),
        (e) => e.field === 'emergencyContact.phone',
      );
      const ids = [];
      for await (const x of scope.patients.stream({ pageSize: 1 })) ids.push(x.id);
      assert.deepEqual(ids, [p.id]);
    });

    test('providers and the authorization workflow', async () => {
      const scope = await newScope(db);
      const doc = await provider(scope);
      assert.equal((await scope.providers.findByEmail(doc.email)).id, doc.id);
      assert.equal((await scope.providers.findByLicense(doc.license)).id, doc.id);
      assert.ok((await scope.providers.listActive()).items.some((x) => x.id === doc.id));
      const ana = await scope.patients.create(patientRow());
      const auth = await scope.authorizations.create({
        authorizationType: 'PROCEDURE',
        procedureName: 'Ressonância magnética',
        patientId: ana.id,
        requestedByProviderId: doc.id,
      });
      assert.equal(auth.status, 'PENDING');
      const document = await scope.documents.register(
        {
          patientId: ana.id, filename: 'pedido.pdf', originalName: 'pedido.pdf', mimeType: 'application/pdf',
          sizeBytes: 1024, storagePath: 's3://bucket/pedido.pdf', documentType: 'MEDICAL_RECORD', category: 'MEDICAL',
        },
        'ab'.repeat(32),
      );
      const ocr = await scope.documents.recordOcr(document.id, { text: 'Glicose 99 mg/dL', confidence: 0.97 });
      assert.equal(ocr.ocrText, 'Glicose 99 mg/dL');
      assert.ok(!util.inspect(ocr).includes('Glicose'));
      assert.equal((await scope.documents.forPatient(ana.id)).items.length, 1);
      await scope.authorizations.attachDocument(auth.id, document.id);
      assert.deepEqual(await scope.authorizations.attachments(auth.id), [document.id]);
      await scope.authorizations.detachDocument(auth.id, document.id);
      assert.equal((await scope.authorizations.startReview(auth.id, doc.id)).status, 'UNDER_REVIEW');
      const now = Date.now();
      const approved = await scope.authorizations.approve(auth.id, doc.id, new Date(now - 2 * 86400e3), new Date(now - 1000));
      assert.equal(approved.status, 'APPROVED');
      assert.equal(await scope.authorizations.expireDue(), 1);
      assert.equal((await scope.authorizations.history(auth.id)).at(-1).toStatus, 'EXPIRED');
      assert.equal((await scope.authorizations.forPatient(ana.id, 'EXPIRED')).items[0].id, auth.id);
      await assert.rejects(scope.authorizations.cancel(auth.id, 'tarde demais'), austa.Conflict);
      const other = await scope.authorizations.create({ authorizationType: 'DIAGNOSTIC', procedureName: 'Hemograma', patientId: ana.id, requestedByProviderId: doc.id });
      await scope.authorizations.startReview(other.id, doc.id);
      assert.equal((await scope.authorizations.deny(other.id, doc.id, 'sem indicação')).status, 'DENIED');
    });

    test('whatsapp ingest, conversations and messages', async () => {
      const scope = await newScope(db);
      await scope.registerWhatsappNumber(NUMBER);
      assert.equal(await db.organizationForWhatsapp(NUMBER), scope.organizationId);
      const number = phone();
      const waId = number.slice(1);
      const ana = await scope.patients.create(patientRow({ phone: number, whatsappId: waId }));
      const stored = await db.ingestWhatsapp(Buffer.from(webhook(waId, 'wamid.NODE1', 'Estou com dor de cabeça')));
      assert.equal(stored.messagesStored, 1);
      assert.equal((await db.ingestWhatsapp(webhook(waId, 'wamid.NODE1', 'Estou com dor de cabeça'))).duplicatesSkipped, 1);
      const conversation = (await scope.conversations.activeForPatient(ana.id)).items[0];
      assert.equal((await scope.conversations.listForPatient(ana.id)).items.length, 1);
      assert.equal((await scope.conversations.openForChat(conversation.whatsappChatId)).id, conversation.id);
      const message = await scope.messages.findByWhatsappMessageId('wamid.NODE1');
      assert.equal(message.content, 'Estou com dor de cabeça');
      assert.ok(!util.inspect(message).includes('dor de cabeça'));
      assert.deepEqual((await scope.messages.pendingForAi(10)).map((m) => m.id), [message.id]);
      assert.deepEqual((await scope.messages.claimForAi('worker-1', 10, 30)).map((m) => m.id), [message.id]);
      assert.equal((await scope.messages.recordAiResult(message.id, { intent: 'sintoma', urgency: 'MEDIUM' })).aiIntent, 'sintoma');
      assert.equal((await scope.conversations.recordAiResult(conversation.id, { summary: 'Cefaleia' })).summary, 'Cefaleia');
      const reply = await scope.messages.recordOutbound({ conversationId: conversation.id, sender: 'BOT', messageType: 'TEXT', content: 'Vamos ajudar' });
      assert.equal(reply.direction, 'OUTBOUND');
      const appended = await scope.messages.append({ conversationId: conversation.id, direction: 'INBOUND', messageType: 'TEXT', senderKind: 'PATIENT', content: 'Obrigada' });
      const history = await scope.messages.history(conversation.id, { limit: 2 });
      assert.deepEqual(history.items.map((m) => m.id), [appended.id, reply.id]);
      assert.notEqual(history.next, null);
      assert.equal((await scope.messages.update(appended.id, { status: 'READ' })).status, 'READ');
      await scope.messages.delete(appended.id);
      await scope.messages.restore(appended.id);
      assert.equal((await scope.messages.get(appended.id)).id, appended.id);
      await assert.rejects(db.ingestWhatsapp('{"object": 1}'), austa.ValidationError);
      await scope.unregisterWhatsappNumber(NUMBER);
      assert.equal(await db.organizationForWhatsapp(NUMBER), null);
      const c = await scope.conversations.create({ patientId: ana.id, whatsappChatId: 'chat-node-2', conversationType: 'SUPPORT' });
      assert.deepEqual((await scope.conversations.update(c.id, { tags: ['triagem'] })).tags, ['triagem']);
    });

    test('health data, missions, points', async () => {
      const scope = await newScope(db);
      const doc = await provider(scope);
      const ana = await scope.patients.create(patientRow());
      const at = new Date('2026-11-01T08:30:00Z');
      const row = await scope.healthData.create({ patientId: ana.id, dataType: 'LAB_RESULT', category: 'DIABETES', labResults: { glucose_mg: { value: 99 } }, recordedAt: at });
      assert.deepEqual(row.labResults, { glucose_mg: { value: 99 } }, 'JSON keys are kept as written');
      assert.equal(row.recordedAt.getTime(), at.getTime());
      assert.equal((await scope.healthData.verify(row.id, doc.id)).isVerified, true);
      assert.equal((await scope.healthData.forPatient(ana.id, 'LAB_RESULT')).items.length, 1);

      const first = await scope.missions.create({ title: 'Água', description: '8 copos', category: 'HEALTH_EDUCATION', pointsReward: 50, requiredActions: { steps: [{ id: 'a' }] } });
      const second = await scope.missions.createWithPrerequisites({ title: 'Caminhar', description: '30 min', category: 'LIFESTYLE', pointsReward: 30, prerequisites: [first.id], requiredActions: {} });
      assert.deepEqual(await scope.missions.prerequisites(second.id), [first.id]);
      const third = await scope.missions.create({ title: 'Dormir', description: '8 h', category: 'ENGAGEMENT', pointsReward: 10, requiredActions: {} });
      assert.equal(await scope.missions.addPrerequisite(third.id, first.id), true);
      assert.equal(await scope.missions.removePrerequisite(third.id, first.id), true);
      assert.ok((await scope.missions.active()).items.some((m) => m.id === first.id));
      await scope.healthPoints.create({ patientId: ana.id });
      const started = await scope.onboardingProgress.start(ana.id, first.id);
      assert.equal((await scope.onboardingProgress.advance(ana.id, first.id, 1)).currentStep, 1);
      assert.equal((await scope.onboardingProgress.find(ana.id, first.id)).id, started.id);
      const completion = await scope.onboardingProgress.complete(ana.id, first.id);
      assert.equal(completion.awarded, true);
      assert.equal(completion.transaction.amount, 50);
      assert.equal((await scope.onboardingProgress.forPatient(ana.id)).items.length, 1);
      assert.equal((await scope.healthPoints.forPatient(ana.id)).totalPoints, 50);
      assert.ok((await scope.healthPoints.recordActivity(ana.id)).dailyStreak >= 1);
      await scope.pointTransactions.record({ patientId: ana.id, transactionType: 'EARNED', amount: 20, reason: 'bônus', sourceType: 'BONUS' });
      assert.equal((await scope.pointTransactions.spend(ana.id, 30, 'desconto')).transactionType, 'SPENT');
      const balance = await scope.pointTransactions.ledgerBalance(ana.id);
      assert.deepEqual([balance.total, balance.spent], [70, 30]);
      assert.equal((await scope.pointTransactions.forPatient(ana.id)).items.length, 3);
    });

    test('tasy integration, sync logs and outbox', async () => {
      const scope = await newScope(db);
      const integration = await scope.tasyIntegrations.create({ tasyInstanceUrl: 'https://tasy.hospital.example', apiKey: 'tasy-api-key-1234', fieldMapping: { patient: 'PF' } });
      assert.ok(!util.inspect(integration).includes('tasy-api-key-1234'));
      assert.equal((await scope.tasyIntegrations.listActive()).items.length, 1);
      assert.equal((await scope.tasyIntegrations.dueForSync()).items.length, 1);
      const run = await scope.tasySyncLogs.start(integration.id, { syncType: 'INCREMENTAL', direction: 'EXPORT', recordType: 'health_data' });
      const done = await scope.tasySyncLogs.finish(run.id, { recordsAttempted: 1, recordsSucceeded: 1, recordsFailed: 0, recordsSkipped: 0, status: 'COMPLETED' });
      assert.equal(done.status, 'COMPLETED');
      assert.equal((await scope.tasySyncLogs.forIntegration(integration.id)).items.length, 1);
      const ana = await scope.patients.create(patientRow());
      await scope.healthData.importRows([1, 2].map((i) => ({ patientId: ana.id, dataType: 'VITAL_SIGN', category: 'CARDIOLOGY', vitalSigns: { hr: 70 + i } })));
      const items = await scope.tasyOutbox.claim('tasy-worker', 10, 60);
      assert.equal(items.length, 2);
      assert.equal((await scope.tasyOutbox.complete(items[0].id)).status, 'DONE');
      assert.equal((await scope.tasyOutbox.fail(items[1].id, 'http_503')).status, 'PENDING');
      assert.equal((await scope.tasyOutbox.list('DONE', 10)).length, 1);
    });

    test('audit, access control, keys', async () => {
      const from = new Date(Date.now() - 60e3);
      const scope = await newScope(db);
      const ana = await scope.patients.create(patientRow({ cpf: '529.982.247-25' }));
      const bia = await scope.patients.create(patientRow());
      await scope.patients.get(ana.id);
      assert.equal(typeof (await scope.audit.record({ action: 'EXPORT', entityType: 'PATIENT', patientId: ana.id })), 'string');
      const report = await scope.audit.verify();
      assert.equal(report.broken, null);
      assert.equal((await scope.audit.verifyRange(1, 2)).verified, 2);
      const to = new Date(Date.now() + 60e3);
      const accesses = await scope.audit.accessReport(ana.id, from, to);
      assert.ok(accesses.items.some((e) => e.action === 'READ'));
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fhir-')), 'audit.ndjson');
      assert.ok((await scope.audit.exportFhir(file, from, to)) >= 3);
      assert.ok(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).every((l) => JSON.parse(l).resourceType === 'AuditEvent'));
      assert.ok((await scope.auditLogs.forEntity('PATIENT', ana.id)).items.length >= 2);
      assert.ok((await scope.auditLogs.forPatient(ana.id)).items.length >= 2);

      // Signed checkpoints and proofs, with a signing key from the environment.
      process.env.AUSTA_AUDIT_SIGNING_KEY = require('crypto').randomBytes(32).toString('base64');
      try {
        const note = await scope.audit.checkpoint();
        const [origin, size, root] = note.split('\n');
        assert.equal(origin, `austa-audit/${scope.organizationId}`);
        assert.equal((await scope.audit.verifyAgainst(note)).broken, null);
        const event = await scope.audit.record({ action: 'LOGIN' });
        const proof = await scope.audit.consistencyProof(Number(size));
        assert.equal(proof.oldRoot, root);
        assert.ok(proof.newSize > Number(size));
        assert.equal((await scope.audit.inclusionProof(event)).treeSize, proof.newSize);
        await assert.rejects(scope.audit.verifyAgainst(note.replace(`\n${size}\n`, '\n999\n')), { name: 'ValidationError' });
      } finally {
        delete process.env.AUSTA_AUDIT_SIGNING_KEY;
      }

      const asAna = await db.scope(scope.organizationId, austa.Actor.patient(ana.id), { purpose: 'app', requestId: 'r-1' });
      assert.equal((await asAna.patients.get(ana.id)).id, ana.id);
      await assert.rejects(asAna.patients.get(bia.id), (e) => e instanceof austa.AustaError && ['permission_denied', 'not_found'].includes(e.code));
      await assert.rejects(db.scope(scope.organizationId, new austa.Actor('PATIENT')), austa.ValidationError);
      const doc = await provider(scope);
      const asDoc = await db.scope(scope.organizationId, austa.Actor.provider(doc.id));
      const emergency = await asDoc.emergencyAccess(bia.id, 'paciente inconsciente no PS', 1800);
      assert.equal((await emergency.patients.get(bia.id)).id, bia.id);
      const admin = await db.scope(scope.organizationId, austa.Actor.admin());
      assert.equal((await admin.updateOrganization({ phone: '+551130000000' })).phone, '+551130000000');
      assert.equal((await admin.organization()).id, scope.organizationId);

      const status = await scope.keys.startRotation();
      const finished = await scope.keys.runRotation(status.id, { batchSize: 10 });
      assert.equal(finished.completed, true);
      assert.equal((await scope.keys.rotationStatus(status.id)).id, status.id);
      assert.equal((await scope.patients.get(ana.id)).cpf, '52998224725');
      const receipt = await scope.keys.shredPatient(ana.id, 'pedido de eliminação LGPD');
      assert.equal(receipt.patientId, ana.id);
      const erased = await scope.patients.get(ana.id);
      assert.equal(erased.firstName, null);
      assert.equal(erased.cpf, null);
    });

    test('bulk inserts report rows and fields, and write nothing of a bad batch', async () => {
      const scope = await newScope(db);
      const good = patientRow();
      const rows = [patientRow(), patientRow({ cpf: '123.456.789-00' }), patientRow(), { firstName: 'X', lastName: 'Y', phone: 'abc' }, patientRow({ favouriteColour: 'azul' }), good];
      await assert.rejects(scope.patients.createMany(rows), (e) => {
        assert.ok(e instanceof austa.BatchError);
        assert.deepEqual(e.errors.map((r) => [r.row, r.field, r.code]), [[1, 'cpf', 'validation'], [3, 'phone', 'validation'], [4, 'favouriteColour', 'validation']]);
        assert.ok(!e.message.includes('123.456.789-00'));
        return true;
      });
      assert.equal((await scope.patients.list()).items.length, 0);
      const many = Array.from({ length: 10 }, () => patientRow());
      many[7].phone = many[2].phone;
      await assert.rejects(scope.patients.importRows(many, { batchSize: 5 }), (e) => {
        assert.deepEqual(e.errors.map((r) => [r.row, r.field, r.code]), [[7, 'phone', 'conflict']]);
        assert.equal(e.written, 5);
        return true;
      });
      async function* generated() {
        for (let i = 0; i < 25; i++) yield patientRow();
      }
      assert.equal(await scope.patients.importRows(generated(), { batchSize: 10 }), 25);
      assert.equal((await scope.patients.createMany([patientRow()])).length, 1);
    });

    test('100 calls in flight from one process', async () => {
      const scope = await newScope(db);
      const created = await Promise.all(Array.from({ length: 100 }, () => scope.patients.create(patientRow())));
      assert.equal(new Set(created.map((p) => p.id)).size, 100);
      const fetched = await Promise.all(created.map((p) => scope.patients.get(p.id)));
      assert.deepEqual(fetched.map((p) => p.id), created.map((p) => p.id));
      assert.equal((await scope.audit.verify()).broken, null);
    });

    test('webhook bytes reach the core undecoded; JSON and event failures say what is wrong', async () => {
      for (const body of [Buffer.from('{"object":"\xff"}', 'latin1'), Buffer.from([0x7b, 0x22, 0xfe, 0x22, 0x7d])]) {
        await assert.rejects(db.ingestWhatsapp(body), (e) => e instanceof austa.ValidationError && e.field === 'body' && e.message.includes('UTF-8'));
      }
      const scope = await newScope(db);
      let deep = 1;
      for (let i = 0; i < 200; i += 1) deep = [deep];
      await assert.rejects(
        scope.patients.create(patientRow({ emergencyContact: deep })),
        (e) => e instanceof austa.ValidationError && e.field === 'arguments' && e.message.includes('nested more than 128 levels'),
      );
      for (const event of [{ action: 'LOGIN' }, { action: 'LOGOUT' }, { action: 'EXPORT', entityType: 'PATIENT' }, { action: 'PERMISSION_CHANGE' }]) {
        assert.equal(typeof (await scope.audit.record(event)), 'string');
        await assert.rejects(scope.audit.record({ ...event, user: 'ana' }), (e) => e instanceof austa.ValidationError && e.field === 'user');
      }
      await assert.rejects(
        scope.updateOrganization({ settings: { retention: { LAB_RESULT: 'x' } } }),
        (e) => e instanceof austa.ValidationError && e.field === 'settings.retention.LAB_RESULT',
      );
    });

    test('sensitive values never appear in util.inspect', async () => {
      const scope = await newScope(db);
      const secrets = ['Ana Secreta', 'Souza Sigilo', '52998224725', 'ana.secreta@example.com', 'Mãe Sigilosa'];
      const p = await scope.patients.create(patientRow({
        firstName: 'Ana Secreta', lastName: 'Souza Sigilo', cpf: '529.982.247-25', email: 'ana.secreta@example.com',
        emergencyContact: { name: 'Mãe Sigilosa', phone: '+5511912345678', relationship: 'mãe' },
      }));
      for (const text of [util.inspect(p), util.inspect([p]), util.inspect(await scope.patients.list(), { depth: 5 }), util.format('%o', p)]) {
        for (const secret of [...secrets, p.phone]) assert.ok(!text.includes(secret), `${secret} in ${text}`);
        assert.ok(text.includes('<redacted>'));
      }
      assert.equal(p.firstName, 'Ana Secreta');
      assert.ok(!util.inspect(scope).includes('Ana'));
    });
  });
}

test('reads are recorded in both read-audit modes; a bad mode is a config error', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'austa-read-audit-')), 'r.db');
  const url = `sqlite://${file}`;
  const db = await austa.Database.open({ url, masterKey: MASTER_KEY });
  await db.migrate();
  const scope = await newScope(db);
  const ana = await scope.patients.create(patientRow({ firstName: 'Ana' }));
  for (const readAudit of ['strict', 'relaxed']) {
    const other = await austa.Database.open({ url, masterKey: MASTER_KEY, readAudit });
    const reader = await other.scope(scope.organizationId, austa.Actor.platform());
    const before = (await scope.auditLogs.forEntity('PATIENT', ana.id)).items.length;
    assert.equal((await reader.patients.get(ana.id)).id, ana.id);
    assert.equal((await scope.auditLogs.forEntity('PATIENT', ana.id)).items.length, before + 1, readAudit);
    await other.close();
  }
  await assert.rejects(austa.Database.open({ url, masterKey: MASTER_KEY, readAudit: 'eventually' }), (e) => e instanceof austa.ConfigError && e.message.includes('AUSTA_READ_AUDIT'));
  await db.close();
});

test('typed errors for bad arguments and a closed database', async () => {
  const db = await austa.Database.open({ url: 'sqlite::memory:', masterKey: MASTER_KEY });
  await db.migrate();
  await assert.rejects(austa.Database.open({ url: 'sqlite::memory:', masterKey: 'not base64!' }), (e) => e instanceof austa.ConfigError && !e.message.includes('not base64'));
  // Plaintext to a host off this machine is refused before any connection, the password unquoted.
  const plaintext = 'postgres://app:s3cret@db.hospital.example/austa?sslmode=disable';
  await assert.rejects(austa.Database.open({ url: plaintext, masterKey: MASTER_KEY }), (e) => e instanceof austa.TransportError && e.code === 'transport' && e.message.includes('sslmode=disable') && !e.message.includes('s3cret'));
  const scope = await newScope(db);
  await assert.rejects(scope.patients.create(patientRow({ firstName: Number.NaN })), austa.ValidationError);
  await db.close();
  await db.close();
  await assert.rejects(db.migrate(), austa.ValidationError);
});

'use strict';
// The repositories of a scope, built from one table: each method names its core operation, its
// positional arguments and how its result decodes. Capabilities follow the core (see the README).

const { call } = require('./wire');
const { decode } = require('./records');
const { BatchError, AustaError } = require('./errors');

const DEFAULT_BATCH_SIZE = 1000;
const DEFAULT_PAGE_SIZE = 500;

/** Decoders of results, by kind. */
function decoder(kind, model) {
  switch (kind) {
    case 'one':
      return (v) => decode(model, v);
    case 'maybe':
      return (v) => (v === null ? null : decode(model, v));
    case 'many':
      return (v) => v.map((x) => decode(model, x));
    case 'page':
      return (v) => ({ items: v.items.map((x) => decode(model, x)), next: v.next });
    case 'void':
      return () => undefined;
    case 'raw':
      return (v) => v;
    default:
      throw new TypeError(`unknown result kind ${kind}`);
  }
}

// [method, operation, argument names, result kind, result model (default: the repository's)]
const READ = [
  ['get', 'get', ['id'], 'one'],
  ['list', 'list', [], 'page'],
];
const CREATE = [['create', 'create', ['data'], 'one']];
const UPDATE = [['update', 'update', ['id', 'patch'], 'one']];
const DELETE = [
  ['delete', 'delete', ['id'], 'void'],
  ['restore', 'restore', ['id'], 'void'],
];
const FULL = [...READ, ...CREATE, ...UPDATE, ...DELETE];
const CHANGE = [...READ, ...CREATE, ...UPDATE];

const byPatient = (name, op = name) => [name, op, ['patientId'], 'page'];

const REPOSITORIES = {
  patients: ['Patient', true, [
    ...FULL,
    ['findByPhone', 'find_by_phone', ['value'], 'maybe'],
    ['findByCpf', 'find_by_cpf', ['value'], 'maybe'],
    ['findByEmail', 'find_by_email', ['value'], 'maybe'],
    ['findByWhatsappId', 'find_by_whatsapp_id', ['value'], 'maybe'],
  ]],
  providers: ['Provider', true, [
    ...FULL,
    ['findByEmail', 'find_by_email', ['value'], 'maybe'],
    ['findByLicense', 'find_by_license', ['value'], 'maybe'],
    ['listActive', 'list_active', [], 'page'],
  ]],
  conversations: ['Conversation', true, [
    ...FULL,
    byPatient('activeForPatient', 'active_for_patient'),
    byPatient('listForPatient', 'list_for_patient'),
    ['openForChat', 'open_for_chat', ['chatId'], 'maybe'],
    ['recordAiResult', 'record_ai_result', ['id', 'analysis'], 'one'],
  ]],
  messages: ['Message', false, [
    ...READ, ...UPDATE, ...DELETE,
    ['append', 'append', ['data'], 'one'],
    ['recordOutbound', 'record_outbound', ['data'], 'one'],
    ['history', 'history', ['conversationId'], 'page'],
    ['findByWhatsappMessageId', 'find_by_whatsapp_message_id', ['value'], 'maybe'],
    ['pendingForAi', 'pending_for_ai', ['limit'], 'many'],
    ['claimForAi', 'claim_for_ai', ['worker', 'limit', 'leaseSeconds'], 'many'],
    ['recordAiResult', 'record_ai_result', ['id', 'analysis'], 'one'],
  ]],
  healthData: ['HealthData', true, [
    ...FULL,
    ['forPatient', 'for_patient', ['patientId', 'dataType'], 'page'],
    ['verify', 'verify', ['id', 'providerId'], 'one'],
  ]],
  missions: ['Mission', true, [
    ...FULL,
    ['createWithPrerequisites', 'create_with_prerequisites', ['data'], 'one'],
    ['prerequisites', 'prerequisites', ['missionId'], 'raw'],
    ['addPrerequisite', 'add_prerequisite', ['missionId', 'prerequisiteId'], 'raw'],
    ['removePrerequisite', 'remove_prerequisite', ['missionId', 'prerequisiteId'], 'raw'],
    ['active', 'active', ['at'], 'page'],
  ]],
  onboardingProgress: ['OnboardingProgress', true, [
    ...CHANGE,
    byPatient('forPatient', 'for_patient'),
    ['find', 'find', ['patientId', 'missionId'], 'maybe'],
    ['start', 'start', ['patientId', 'missionId'], 'one'],
    ['advance', 'advance', ['patientId', 'missionId', 'steps'], 'one'],
    ['complete', 'complete', ['patientId', 'missionId'], 'one', 'Completion'],
  ]],
  healthPoints: ['HealthPoints', true, [
    ...CHANGE,
    ['forPatient', 'for_patient', ['patientId'], 'maybe'],
    ['recordActivity', 'record_activity', ['patientId', 'at'], 'one'],
  ]],
  pointTransactions: ['PointTransaction', false, [
    ...READ,
    ['record', 'record', ['data'], 'one'],
    ['spend', 'spend', ['patientId', 'amount', 'reason'], 'one'],
    byPatient('forPatient', 'for_patient'),
    ['ledgerBalance', 'ledger_balance', ['patientId'], 'raw'],
  ]],
  authorizations: ['Authorization', true, [
    ...FULL,
    ['forPatient', 'for_patient', ['patientId', 'status'], 'page'],
    ['attachDocument', 'attach_document', ['authorizationId', 'documentId'], 'void'],
    ['detachDocument', 'detach_document', ['authorizationId', 'documentId'], 'void'],
    ['attachments', 'attachments', ['authorizationId'], 'raw'],
    ['startReview', 'start_review', ['id', 'reviewerProviderId'], 'one'],
    ['approve', 'approve', ['id', 'approverProviderId', 'validFrom', 'validUntil'], 'one'],
    ['deny', 'deny', ['id', 'reviewerProviderId', 'reason'], 'one'],
    ['cancel', 'cancel', ['id', 'reason'], 'one'],
    ['expireDue', 'expire_due', ['now'], 'raw'],
    ['history', 'history', ['authorizationId'], 'many', 'AuthorizationTransition'],
  ]],
  documents: ['Document', true, [
    ...FULL,
    ['register', 'register', ['data', 'checksum'], 'one'],
    ['recordOcr', 'record_ocr', ['id', 'ocr'], 'one'],
    byPatient('forPatient', 'for_patient'),
  ]],
  tasyIntegrations: ['TasyIntegration', true, [
    ...FULL,
    ['listActive', 'list_active', [], 'page'],
    ['dueForSync', 'due_for_sync', ['now'], 'page'],
  ]],
  tasySyncLogs: ['TasySyncLog', false, [
    ...READ,
    ['start', 'start', ['integrationId', 'sync'], 'one'],
    ['finish', 'finish', ['id', 'outcome'], 'one'],
    ['forIntegration', 'for_integration', ['integrationId'], 'page'],
  ]],
  tasyOutbox: ['OutboxItem', false, [
    ['claim', 'claim', ['worker', 'limit', 'leaseSeconds'], 'many'],
    ['complete', 'complete', ['id'], 'one'],
    ['fail', 'fail', ['id', 'error'], 'one'],
    ['list', 'list', ['status', 'limit'], 'many'],
  ]],
  auditLogs: ['AuditLog', false, [
    ...READ,
    ['forEntity', 'for_entity', ['entityType', 'entityId'], 'page'],
    byPatient('forPatient', 'for_patient'),
  ]],
};

const WIRE_NAMES = {
  healthData: 'health_data',
  onboardingProgress: 'onboarding_progress',
  healthPoints: 'health_points',
  pointTransactions: 'point_transactions',
  tasyIntegrations: 'tasy_integrations',
  tasySyncLogs: 'tasy_sync_logs',
  tasyOutbox: 'tasy_outbox',
  auditLogs: 'audit_logs',
};

function method(scope, wire, model, [, op, names, kind, resultModel]) {
  const decodeResult = decoder(kind, resultModel || model);
  const paged = kind === 'page';
  return async function (...values) {
    const args = {};
    names.forEach((name, i) => {
      args[name] = values[i];
    });
    if (paged) Object.assign(args, pageArgs(values[names.length]));
    return decodeResult(await call(scope, `${wire}.${op}`, args));
  };
}

function pageArgs(options) {
  return { limit: options && options.limit, after: options && options.after };
}

async function* chunks(rows, size) {
  if (!(size >= 1)) throw new RangeError('batchSize must be at least 1');
  let chunk = [];
  for await (const row of rows) {
    chunk.push(row);
    if (chunk.length >= size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}

/** The repository object for one table of a native scope. */
function repository(scope, name) {
  const [model, creatable, methods] = REPOSITORIES[name];
  const wire = WIRE_NAMES[name] || name;
  const repo = {};
  for (const spec of methods) repo[spec[0]] = method(scope, wire, model, spec);
  if (repo.list && REPOSITORIES[name][2].some((m) => m[0] === 'list' && m[3] === 'page')) {
    repo.stream = async function* stream(options = {}) {
      let after = null;
      do {
        const page = await repo.list({ limit: options.pageSize || DEFAULT_PAGE_SIZE, after });
        yield* page.items;
        after = page.next;
      } while (after !== null);
    };
  }
  if (creatable) {
    const bulk = async (rows, options, countOnly, onChunk) => {
      let offset = 0;
      let written = 0;
      for await (const chunk of chunks(rows, (options && options.batchSize) || DEFAULT_BATCH_SIZE)) {
        let result;
        try {
          result = await call(scope, `${wire}.create_many`, { rows: chunk, countOnly }, offset, written);
        } catch (error) {
          if (error instanceof AustaError && !(error instanceof BatchError)) error.written = written;
          throw error;
        }
        written += onChunk(result);
        offset += chunk.length;
      }
      return written;
    };
    repo.createMany = async (rows, options) => {
      const created = [];
      await bulk(rows, options, false, (result) => {
        for (const row of result) created.push(decode(model, row));
        return result.length;
      });
      return created;
    };
    repo.importRows = (rows, options) => bulk(rows, options, true, (result) => result.count);
  }
  Object.defineProperty(repo, Symbol.toStringTag, { value: `Repository ${wire}` });
  return repo;
}

module.exports = { repository, REPOSITORIES, decode };

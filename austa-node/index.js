'use strict';
// austa: the healthcare data layer of the Austa platform, for Node.
//
// A thin layer over the Rust core (austa-core) through a napi-rs addon: every call returns a Promise
// and runs off the JavaScript thread; results are plain objects with camelCase fields, Date
// timestamps, string ids, string enums and JSON objects; errors are AustaErrors with `code` and
// `field`. See index.d.ts for the types and the README's Node section for the guide.

const native = require('./native.js');
const errors = require('./lib/errors');
const { call, native: settle } = require('./lib/wire');
const { repository, decode } = require('./lib/repositories');

const REPOSITORY_NAMES = [
  'patients', 'providers', 'conversations', 'messages', 'healthData', 'missions', 'onboardingProgress',
  'healthPoints', 'pointTransactions', 'authorizations', 'documents', 'tasyIntegrations', 'tasySyncLogs',
  'tasyOutbox', 'auditLogs',
];

/** Who acts: build one with the static methods. */
class Actor {
  constructor(role, id = null, name = null) {
    this.role = role;
    this.id = id;
    this.name = name;
    Object.freeze(this);
  }
  static patient(id) { return new Actor('PATIENT', id); }
  static provider(id) { return new Actor('PROVIDER', id); }
  static admin(id = null) { return new Actor('ADMIN', id); }
  static system(name) { return new Actor('SYSTEM', null, name); }
  static platform() { return Actor.system('platform'); }
}

class Scope {
  constructor(handle, organizationId, actor) {
    Object.defineProperty(this, '_native', { value: handle });
    this.organizationId = organizationId;
    this.actor = actor;
    for (const name of REPOSITORY_NAMES) this[name] = repository(handle, name);
    const scopeCall = (op, args) => call(handle, op, args);
    this.audit = {
      verify: async () => decode('ChainReport', await scopeCall('audit.verify')),
      verifyRange: async (fromSeq, toSeq) => decode('ChainReport', await scopeCall('audit.verify_range', { fromSeq, toSeq })),
      accessReport: async (patientId, from, to, page = {}) => {
        const v = await scopeCall('audit.access_report', { patientId, from, to, limit: page.limit, after: page.after });
        return { items: v.items.map((x) => decode('AuditLog', x)), next: v.next };
      },
      exportFhir: (path, from, to) => scopeCall('audit.export_fhir', { path, from, to }),
      record: (event) => scopeCall('audit.record', { event }),
    };
    this.keys = {
      startRotation: async (patientId = null) => decode('RotationStatus', await scopeCall('keys.start_rotation', { patientId })),
      rotationStatus: async (id) => decode('RotationStatus', await scopeCall('keys.rotation_status', { id })),
      runRotation: async (id, options = {}) =>
        decode('RotationStatus', await scopeCall('keys.run_rotation', { id, batchSize: options.batchSize, maxBatches: options.maxBatches })),
      shredPatient: async (patientId, reason) => decode('ShredReceipt', await scopeCall('keys.shred_patient', { patientId, reason })),
    };
  }

  async organization() {
    return decode('Organization', await call(this._native, 'organization.get'));
  }

  async updateOrganization(patch) {
    return decode('Organization', await call(this._native, 'organization.update', { patch }));
  }

  async registerWhatsappNumber(phoneNumberId) {
    await call(this._native, 'whatsapp.register_number', { phoneNumberId });
  }

  async unregisterWhatsappNumber(phoneNumberId) {
    await call(this._native, 'whatsapp.unregister_number', { phoneNumberId });
  }

  /** A provider's recorded, time-limited access to one patient (`seconds` long), as a new scope. */
  async emergencyAccess(patientId, reason, seconds) {
    const handle = await settle(this._native.emergency(JSON.stringify({ patient_id: patientId, reason, seconds })));
    return new Scope(handle, this.organizationId, this.actor);
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Scope { organizationId: '${this.organizationId}', actor: ${this.actor.role} }`;
  }
}

class Database {
  constructor(handle) {
    Object.defineProperty(this, '_native', { value: handle, writable: true });
    const dbCall = (op, args) => this._call(op, args);
    const org = (v) => decode('Organization', v);
    this.organizations = {
      create: async (data) => org(await dbCall('organizations.create', { data })),
      get: async (id) => org(await dbCall('organizations.get', { id })),
      findByTaxId: async (cnpj) => {
        const v = await dbCall('organizations.find_by_tax_id', { cnpj });
        return v === null ? null : org(v);
      },
      update: async (id, patch) => org(await dbCall('organizations.update', { id, patch })),
      delete: async (id) => {
        await dbCall('organizations.delete', { id });
      },
      list: async (page = {}) => {
        const v = await dbCall('organizations.list', { limit: page.limit, after: page.after });
        return { items: v.items.map(org), next: v.next };
      },
    };
  }

  /**
   * Opens the database. Every option is optional and falls back to the environment (DATABASE_URL,
   * AUSTA_MASTER_KEY or AUSTA_MASTER_KEY_FILE, AUSTA_KEYSTORE_URL).
   */
  static async open(options = {}) {
    const wire = {
      url: options.url,
      master_key: options.masterKey,
      key_file: options.keyFile,
      keystore_url: options.keystoreUrl,
      create_key_file: options.createKeyFile,
    };
    return new Database(await settle(native.open(JSON.stringify(wire))));
  }

  _call(op, args) {
    if (this._native === null) return Promise.reject(new errors.ValidationError('the database is closed', 'validation'));
    return call(this._native, op, args);
  }

  async backend() { return this._call('backend'); }
  async migrate() { await this._call('migrate'); }
  async seed() { return decode('SeedReport', await this._call('seed')); }
  async flushAudit() { await this._call('flush_audit'); }
  async clearKeyCache() { await this._call('clear_key_cache'); }

  /** Flushes pending audit events and releases this handle; later calls reject. */
  async close() {
    if (this._native === null) return;
    try {
      await this.flushAudit();
    } finally {
      this._native = null;
    }
  }

  async scope(organizationId, actor, request = {}) {
    if (this._native === null) throw new errors.ValidationError('the database is closed', 'validation');
    const args = {
      organization_id: organizationId,
      actor: { role: actor.role, id: actor.id, name: actor.name },
      request: {
        purpose: request.purpose,
        request_id: request.requestId,
        ip_address: request.ipAddress,
        user_agent: request.userAgent,
        session_id: request.sessionId,
      },
    };
    return new Scope(await settle(this._native.scope(JSON.stringify(args))), organizationId, actor);
  }

  /** Stores a WhatsApp Cloud API webhook body as received (string or Buffer; verify its signature first). */
  async ingestWhatsapp(body) {
    if (this._native === null) throw new errors.ValidationError('the database is closed', 'validation');
    if (typeof body !== 'string' && !Buffer.isBuffer(body)) {
      throw new errors.ValidationError('the webhook body must be a string or a Buffer', 'validation', 'body');
    }
    return decode('IngestReport', JSON.parse(await settle(this._native.ingest(body))));
  }

  async organizationForWhatsapp(phoneNumberId) {
    return this._call('whatsapp.organization_for', { phoneNumberId });
  }

  async rotateMasterKey(options) {
    return decode('MasterKeyRotation', await this._call('keys.rotate_master', { masterKey: options.masterKey, keyFile: options.keyFile }));
  }

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Database { ${this._native === null ? 'closed' : 'open'} }`;
  }
}

module.exports = { Database, Scope, Actor, ...errors };
delete module.exports.fromNative;
delete module.exports.batchError;

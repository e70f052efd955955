'use strict';
// austa: the healthcare data layer of the Austa platform, for Node.
//
// A thin layer over the Rust core (austa-core) through a napi-rs addon: every call returns a Promise
// and runs off the JavaScript thread; results are plain objects with camelCase fields, Date
// timestamps, string ids, string enums and JSON objects; errors are AustaErrors with `code` and
// `field`. See index.d.ts for the types and docs/node.md for the guide.

const native = require('./native.js');
const errors = require('./lib/errors');
const { call, native: settle } = require('./lib/wire');
const { group, groupNames, defineOperations, decode } = require('./lib/repositories');
const { SCOPE_METHODS, DATABASE_METHODS } = require('./lib/operations');

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
    const run = (op, args) => call(handle, op, args);
    for (const name of groupNames('scope')) this[name] = group(name, handle, run);
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
    const run = (op, args) => this._call(op, args);
    for (const name of groupNames('database')) this[name] = group(name, handle, run);
  }

  /**
   * Opens the database. Every option is optional and falls back to the environment (DATABASE_URL,
   * AUSTA_MASTER_KEY or AUSTA_MASTER_KEY_FILE, AUSTA_KEYSTORE_URL, AUSTA_READ_AUDIT).
   */
  static async open(options = {}) {
    const wire = {
      url: options.url,
      master_key: options.masterKey,
      key_file: options.keyFile,
      keystore_url: options.keystoreUrl,
      create_key_file: options.createKeyFile,
      read_audit: options.readAudit,
    };
    return new Database(await settle(native.open(JSON.stringify(wire))));
  }

  _call(op, args) {
    if (this._native === null) return Promise.reject(new errors.ValidationError('the database is closed', 'validation'));
    return call(this._native, op, args);
  }

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

  [Symbol.for('nodejs.util.inspect.custom')]() {
    return `Database { ${this._native === null ? 'closed' : 'open'} }`;
  }
}

// The operations of the scope and of the database themselves, from the registry's table.
defineOperations(Scope.prototype, SCOPE_METHODS, function run(op, args) {
  return call(this._native, op, args);
});
defineOperations(Database.prototype, DATABASE_METHODS, function run(op, args) {
  return this._call(op, args);
});

module.exports = { Database, Scope, Actor, ...errors };
delete module.exports.fromNative;
delete module.exports.batchError;

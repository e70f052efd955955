'use strict';
// The errors of `austa`: one class per stable error code of the core, rooted at AustaError. Every
// error has `code` (the core's code) and `field` (camelCase, for validation and conflict errors);
// messages never quote a sensitive value. A panic inside the addon is an InternalError: the process
// never crashes.

const { camelPath } = require('./names');

class AustaError extends Error {
  constructor(message, code = 'internal', field = null) {
    super(message);
    this.name = new.target.name;
    /** The core's stable error code. */
    this.code = code;
    /** The offending field (camelCase path), or null. */
    this.field = field;
  }
}

const classes = {};
function define(name, code) {
  const cls = { [name]: class extends AustaError {} }[name];
  classes[code] = cls;
  return cls;
}

const NotFound = define('NotFound', 'not_found');
const ValidationError = define('ValidationError', 'validation');
const Conflict = define('Conflict', 'conflict');
const PermissionDenied = define('PermissionDenied', 'permission_denied');
const CryptoError = define('CryptoError', 'crypto');
const Erased = define('Erased', 'erased');
const ConfigError = define('ConfigError', 'config');
const TransportError = define('TransportError', 'transport');
const Refused = define('Refused', 'refused');
const MigrationError = define('MigrationError', 'migration');
const DatabaseError = define('DatabaseError', 'database');
const CorruptData = define('CorruptData', 'corrupt_data');
const IoError = define('IoError', 'io');
const InternalError = define('InternalError', 'internal');

/** Rows of a bulk insert failed: `errors` lists them ({row, code, field, message}); the failing batch
 * wrote nothing; `written` counts the rows earlier batches committed. */
class BatchError extends AustaError {
  constructor(message, errors, written = 0) {
    super(message, 'invalid_batch', null);
    this.errors = errors;
    this.written = written;
  }
}

function batchError(rows, offset, written) {
  const errors = rows.map((r) => ({
    row: r.row + offset,
    code: r.code,
    field: r.field == null ? null : camelPath(r.field),
    message: r.message,
  }));
  const summary = errors.slice(0, 5).map((e) => `row ${e.row}: ${e.message}`).join('; ');
  const more = errors.length > 5 ? ` (and ${errors.length - 5} more)` : '';
  return new BatchError(`${errors.length} row(s) failed: ${summary}${more}`, errors, written);
}

/** The AustaError for a rejection of the native addon (its message is the failure as JSON). */
function fromNative(error, offset = 0, written = 0) {
  let failure;
  try {
    failure = JSON.parse(error && error.message);
  } catch {
    return new InternalError('unexpected failure of the native addon');
  }
  if (!failure || typeof failure.code !== 'string') {
    return new InternalError('unexpected failure of the native addon');
  }
  if (failure.code === 'invalid_batch') return batchError(failure.rows || [], offset, written);
  const cls = classes[failure.code] || InternalError;
  return new cls(String(failure.message), failure.code, failure.field == null ? null : camelPath(failure.field));
}

module.exports = {
  AustaError,
  NotFound,
  ValidationError,
  Conflict,
  PermissionDenied,
  CryptoError,
  Erased,
  ConfigError,
  TransportError,
  Refused,
  MigrationError,
  DatabaseError,
  CorruptData,
  IoError,
  InternalError,
  BatchError,
  fromNative,
  batchError,
};

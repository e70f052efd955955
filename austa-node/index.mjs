// ES module entry: the same objects as the CommonJS entry.
import austa from './index.js';

export const {
  Database, Scope, Actor, AustaError, NotFound, ValidationError, Conflict, PermissionDenied, CryptoError,
  Erased, ConfigError, TransportError, Refused, MigrationError, DatabaseError, CorruptData, IoError, InternalError, BatchError,
} = austa;
export default austa;

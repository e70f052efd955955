// Types of the Node package `austa`. The records and enums (lib/types.d.ts) are generated from
// austa-core's Rust definitions by austa-codegen; this file declares the classes over them.

/// <reference types="node" />
import type * as T from './lib/types';
import type * as O from './lib/operations';

export * from './lib/types';
export * from './lib/operations';

/** An input object: the Rust input type's fields in camelCase (`firstName`, `patientId`, ...). Ids are
 * strings, timestamps `Date`s or RFC 3339 strings, enums their names, JSON values plain objects. A
 * field the input type does not have is a `ValidationError` naming it. */
export type Input = Readonly<Record<string, unknown>>;

/** One page of a listing, and the cursor of the next one (null on the last). */
export interface Page<R> {
  readonly items: R[];
  readonly next: string | null;
}

export interface PageOptions {
  /** Rows per page: default 50, at most 500. */
  limit?: number;
  /** The `next` cursor of the previous page. */
  after?: string | null;
}

export interface BatchOptions {
  /** Rows per transaction: default 1000. */
  batchSize?: number;
}

/** The rows of a bulk insert: any iterable, sync or async (a generator over a file, a stream). */
export type Rows<R = Input> = Iterable<R> | AsyncIterable<R>;

export declare class Actor {
  readonly role: T.Role;
  readonly id: string | null;
  readonly name: string | null;
  private constructor();
  static patient(id: string): Actor;
  static provider(id: string): Actor;
  static admin(id?: string | null): Actor;
  /** A named integration: 'whatsapp-webhook', 'tasy-sync', 'ai-annotator' ('platform' for operator tooling). */
  static system(name: string): Actor;
  static platform(): Actor;
}

export interface RequestContext {
  purpose?: string;
  requestId?: string;
  ipAddress?: string;
  userAgent?: string;
  sessionId?: string;
}

/** An organization and an actor: every call runs as them, authorized by the actor's role, audited.
 * Its operation groups and operations are generated from the core's registry (lib/operations.d.ts). */
export interface Scope extends O.ScopeOperations {}
export declare class Scope {
  private constructor();
  readonly organizationId: string;
  readonly actor: Actor;
  /** A provider's recorded, time-limited access to one patient (`seconds` long), as a new scope. */
  emergencyAccess(patientId: string, reason: string, seconds: number): Promise<Scope>;
}

export interface OpenOptions {
  /** `sqlite://file.db`, `sqlite::memory:`, `postgres://...`; default DATABASE_URL. */
  url?: string;
  /** Base64 of 32 bytes; default AUSTA_MASTER_KEY. */
  masterKey?: string;
  /** A file holding the master key; default AUSTA_MASTER_KEY_FILE. */
  keyFile?: string;
  keystoreUrl?: string;
  /** Create the key file when it does not exist (development). */
  createKeyFile?: boolean;
  /**
   * When a read's audit event is durable: 'relaxed' (the read waits for its event's commit, not for
   * the disk flush; PostgreSQL may lose the last ~600 ms of read events in a server crash) or
   * 'strict'. Default AUSTA_READ_AUDIT, else 'relaxed'.
   */
  readAudit?: 'relaxed' | 'strict';
}

/** An open database. Its operations and groups (`organizations`) are generated from the core's
 * registry (lib/operations.d.ts). */
export interface Database extends O.DatabaseOperations {}
export declare class Database {
  private constructor();
  static open(options?: OpenOptions): Promise<Database>;
  /** Flushes pending audit events and releases this handle; later calls reject. */
  close(): Promise<void>;
  scope(organizationId: string, actor: Actor, request?: RequestContext): Promise<Scope>;
  /** Stores a WhatsApp webhook body exactly as received (verify its signature first). */
  ingestWhatsapp(body: string | Buffer): Promise<T.IngestReport>;
}

export interface RowError {
  readonly row: number;
  readonly code: string;
  readonly field: string | null;
  readonly message: string;
}

export declare class AustaError extends Error {
  /** The core's stable error code. */
  readonly code: string;
  /** The offending field (camelCase), for validation and conflict errors. */
  readonly field: string | null;
  /** For a failure of createMany/importRows: the rows earlier batches committed. */
  readonly written?: number;
}
export declare class NotFound extends AustaError {}
export declare class ValidationError extends AustaError {}
export declare class Conflict extends AustaError {}
export declare class PermissionDenied extends AustaError {}
export declare class CryptoError extends AustaError {}
export declare class Erased extends AustaError {}
export declare class ConfigError extends AustaError {}
/** The database connection is not secure enough (less than verified TLS to another machine) or its TLS failed. */
export declare class TransportError extends AustaError {}
/** An operation refused to run because it would be unsafe here; nothing was changed. */
export declare class Refused extends AustaError {}
export declare class MigrationError extends AustaError {}
export declare class DatabaseError extends AustaError {}
export declare class CorruptData extends AustaError {}
export declare class IoError extends AustaError {}
export declare class InternalError extends AustaError {}
export declare class BatchError extends AustaError {
  readonly errors: RowError[];
  /** Rows committed by the batches before the failing one. */
  readonly written: number;
}

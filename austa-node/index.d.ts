// Types of the Node package `austa`. The records and enums (lib/types.d.ts) are generated from
// austa-core's Rust definitions by austa-codegen; this file declares the classes over them.

/// <reference types="node" />
import type * as T from './lib/types';

export * from './lib/types';

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

export type Rows = Iterable<Input> | AsyncIterable<Input>;

export interface Reads<R> {
  get(id: string): Promise<R>;
  list(page?: PageOptions): Promise<Page<R>>;
  /** Every row, one page in memory at a time. */
  stream(options?: { pageSize?: number }): AsyncGenerator<R, void, undefined>;
}

export interface Creates<R> extends Reads<R> {
  /** One row, its audit event and its outbox entry in one transaction. */
  create(data: Input): Promise<R>;
  /** Rows in batches, each one transaction with one audit event; a bad batch rejects with a
   * BatchError listing every bad row and writes nothing of that batch. */
  createMany(rows: Rows, options?: BatchOptions): Promise<R[]>;
  /** Like createMany, resolving to the number of rows written (memory stays flat). */
  importRows(rows: Rows, options?: BatchOptions): Promise<number>;
}

export interface Updates<R> extends Creates<R> {
  update(id: string, patch: Input): Promise<R>;
}

export interface SoftDeletes<R> extends Updates<R> {
  delete(id: string): Promise<void>;
  restore(id: string): Promise<void>;
}

export interface Patients extends SoftDeletes<T.Patient> {
  findByPhone(phone: string): Promise<T.Patient | null>;
  findByCpf(cpf: string): Promise<T.Patient | null>;
  findByEmail(email: string): Promise<T.Patient | null>;
  findByWhatsappId(whatsappId: string): Promise<T.Patient | null>;
}

export interface Providers extends SoftDeletes<T.Provider> {
  findByEmail(email: string): Promise<T.Provider | null>;
  findByLicense(license: string): Promise<T.Provider | null>;
  listActive(page?: PageOptions): Promise<Page<T.Provider>>;
}

export interface Conversations extends SoftDeletes<T.Conversation> {
  activeForPatient(patientId: string, page?: PageOptions): Promise<Page<T.Conversation>>;
  listForPatient(patientId: string, page?: PageOptions): Promise<Page<T.Conversation>>;
  openForChat(chatId: string): Promise<T.Conversation | null>;
  recordAiResult(id: string, analysis: Input): Promise<T.Conversation>;
}

export interface Messages extends Reads<T.Message> {
  append(data: Input): Promise<T.Message>;
  recordOutbound(data: Input): Promise<T.Message>;
  /** The latest messages first, decrypted. */
  history(conversationId: string, page?: PageOptions): Promise<Page<T.Message>>;
  findByWhatsappMessageId(wamid: string): Promise<T.Message | null>;
  pendingForAi(limit: number): Promise<T.Message[]>;
  claimForAi(worker: string, limit: number, leaseSeconds: number): Promise<T.Message[]>;
  recordAiResult(id: string, analysis: Input): Promise<T.Message>;
  update(id: string, patch: Input): Promise<T.Message>;
  delete(id: string): Promise<void>;
  restore(id: string): Promise<void>;
}

export interface HealthDataRepository extends SoftDeletes<T.HealthData> {
  forPatient(patientId: string, dataType?: T.HealthDataType | null, page?: PageOptions): Promise<Page<T.HealthData>>;
  verify(id: string, providerId: string): Promise<T.HealthData>;
}

export interface Missions extends SoftDeletes<T.Mission> {
  createWithPrerequisites(data: Input): Promise<T.Mission>;
  prerequisites(missionId: string): Promise<string[]>;
  addPrerequisite(missionId: string, prerequisiteId: string): Promise<boolean>;
  removePrerequisite(missionId: string, prerequisiteId: string): Promise<boolean>;
  active(at?: Date | null, page?: PageOptions): Promise<Page<T.Mission>>;
}

export interface OnboardingProgressRepository extends Updates<T.OnboardingProgress> {
  forPatient(patientId: string, page?: PageOptions): Promise<Page<T.OnboardingProgress>>;
  find(patientId: string, missionId: string): Promise<T.OnboardingProgress | null>;
  start(patientId: string, missionId: string): Promise<T.OnboardingProgress>;
  advance(patientId: string, missionId: string, steps: number): Promise<T.OnboardingProgress>;
  complete(patientId: string, missionId: string): Promise<T.Completion>;
}

export interface HealthPointsRepository extends Updates<T.HealthPoints> {
  forPatient(patientId: string): Promise<T.HealthPoints | null>;
  recordActivity(patientId: string, at?: Date | null): Promise<T.HealthPoints>;
}

export interface PointTransactions extends Reads<T.PointTransaction> {
  record(data: Input): Promise<T.PointTransaction>;
  spend(patientId: string, amount: number, reason: string): Promise<T.PointTransaction>;
  forPatient(patientId: string, page?: PageOptions): Promise<Page<T.PointTransaction>>;
  /** `total` is everything earned, `spent` everything spent. */
  ledgerBalance(patientId: string): Promise<{ total: number; spent: number }>;
}

export interface Authorizations extends SoftDeletes<T.Authorization> {
  forPatient(patientId: string, status?: T.AuthorizationStatus | null, page?: PageOptions): Promise<Page<T.Authorization>>;
  attachDocument(authorizationId: string, documentId: string): Promise<void>;
  detachDocument(authorizationId: string, documentId: string): Promise<void>;
  attachments(authorizationId: string): Promise<string[]>;
  startReview(id: string, reviewerProviderId: string): Promise<T.Authorization>;
  approve(id: string, approverProviderId: string, validFrom: Date, validUntil: Date): Promise<T.Authorization>;
  deny(id: string, reviewerProviderId: string, reason: string): Promise<T.Authorization>;
  cancel(id: string, reason: string): Promise<T.Authorization>;
  expireDue(now?: Date | null): Promise<number>;
  history(authorizationId: string): Promise<T.AuthorizationTransition[]>;
}

export interface Documents extends SoftDeletes<T.Document> {
  register(data: Input, checksum: string): Promise<T.Document>;
  recordOcr(id: string, ocr: Input): Promise<T.Document>;
  forPatient(patientId: string, page?: PageOptions): Promise<Page<T.Document>>;
}

export interface TasyIntegrations extends SoftDeletes<T.TasyIntegration> {
  listActive(page?: PageOptions): Promise<Page<T.TasyIntegration>>;
  dueForSync(now?: Date | null, page?: PageOptions): Promise<Page<T.TasyIntegration>>;
}

export interface TasySyncLogs extends Reads<T.TasySyncLog> {
  start(integrationId: string, sync: Input): Promise<T.TasySyncLog>;
  finish(id: string, outcome: Input): Promise<T.TasySyncLog>;
  forIntegration(integrationId: string, page?: PageOptions): Promise<Page<T.TasySyncLog>>;
}

export interface TasyOutbox {
  claim(worker: string, limit: number, leaseSeconds: number): Promise<T.OutboxItem[]>;
  complete(id: string): Promise<T.OutboxItem>;
  fail(id: string, error: string): Promise<T.OutboxItem>;
  list(status: T.OutboxStatus, limit: number): Promise<T.OutboxItem[]>;
}

export interface AuditLogs extends Reads<T.AuditLog> {
  forEntity(entityType: T.EntityType, entityId: string, page?: PageOptions): Promise<Page<T.AuditLog>>;
  forPatient(patientId: string, page?: PageOptions): Promise<Page<T.AuditLog>>;
}

export interface Audit {
  verify(): Promise<T.ChainReport>;
  verifyRange(fromSeq: number, toSeq: number): Promise<T.ChainReport>;
  accessReport(patientId: string, from: Date, to: Date, page?: PageOptions): Promise<Page<T.AuditLog>>;
  /** Writes FHIR AuditEvent JSON lines to `path`; resolves to how many. */
  exportFhir(path: string, from: Date, to: Date): Promise<number>;
  /** An application event: `{action: 'LOGIN' | 'LOGOUT' | 'EXPORT' | 'PERMISSION_CHANGE', ...}`; resolves to its id. */
  record(event: Input & { action: string }): Promise<string>;
}

export interface Keys {
  startRotation(patientId?: string | null): Promise<T.RotationStatus>;
  rotationStatus(id: string): Promise<T.RotationStatus>;
  runRotation(id: string, options?: { batchSize?: number; maxBatches?: number }): Promise<T.RotationStatus>;
  shredPatient(patientId: string, reason: string): Promise<T.ShredReceipt>;
}

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

export declare class Scope {
  private constructor();
  readonly organizationId: string;
  readonly actor: Actor;
  readonly patients: Patients;
  readonly providers: Providers;
  readonly conversations: Conversations;
  readonly messages: Messages;
  readonly healthData: HealthDataRepository;
  readonly missions: Missions;
  readonly onboardingProgress: OnboardingProgressRepository;
  readonly healthPoints: HealthPointsRepository;
  readonly pointTransactions: PointTransactions;
  readonly authorizations: Authorizations;
  readonly documents: Documents;
  readonly tasyIntegrations: TasyIntegrations;
  readonly tasySyncLogs: TasySyncLogs;
  readonly tasyOutbox: TasyOutbox;
  readonly auditLogs: AuditLogs;
  readonly audit: Audit;
  readonly keys: Keys;
  organization(): Promise<T.Organization>;
  updateOrganization(patch: Input): Promise<T.Organization>;
  registerWhatsappNumber(phoneNumberId: string): Promise<void>;
  unregisterWhatsappNumber(phoneNumberId: string): Promise<void>;
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
}

export interface Organizations {
  create(data: Input): Promise<T.Organization>;
  get(id: string): Promise<T.Organization>;
  findByTaxId(cnpj: string): Promise<T.Organization | null>;
  update(id: string, patch: Input): Promise<T.Organization>;
  delete(id: string): Promise<void>;
  list(page?: PageOptions): Promise<Page<T.Organization>>;
}

export declare class Database {
  private constructor();
  static open(options?: OpenOptions): Promise<Database>;
  readonly organizations: Organizations;
  backend(): Promise<'sqlite' | 'postgres'>;
  migrate(): Promise<void>;
  seed(): Promise<T.SeedReport>;
  flushAudit(): Promise<void>;
  clearKeyCache(): Promise<void>;
  close(): Promise<void>;
  scope(organizationId: string, actor: Actor, request?: RequestContext): Promise<Scope>;
  /** Stores a WhatsApp webhook body exactly as received (verify its signature first). */
  ingestWhatsapp(body: string | Buffer): Promise<T.IngestReport>;
  organizationForWhatsapp(phoneNumberId: string): Promise<string | null>;
  rotateMasterKey(options: { masterKey?: string; keyFile?: string }): Promise<T.MasterKeyRotation>;
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

import { sql, type SQL } from 'drizzle-orm'
import {
  type AnyPgColumn, bigint, boolean, customType, index, integer, jsonb, pgEnum, pgTable, primaryKey, smallint, text, timestamp, uniqueIndex, uuid,
} from 'drizzle-orm/pg-core'

/** Timestamps are `timestamptz` and come back as JS Dates (UTC on the wire). */
const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' })

const timestamps = {
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  updatedAt: timestamptz('updated_at').notNull().defaultNow(),
}


export const userRole = pgEnum('user_role', ['user', 'admin'])

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  username: text('username').notNull(),
  email: text('email'),
  displayName: text('display_name'),
  role: userRole('role').notNull().default('user'),
  disabled: boolean('disabled').notNull().default(false),
  /** Null for an account made by single sign-on until its owner sets a password (by a reset). */
  passwordHash: text('password_hash'),
  /** Access tokens issued before this instant are refused (set on password change). */
  passwordChangedAt: timestamptz('password_changed_at').notNull().defaultNow(),
  /** Set when a mailed link proves the address; cleared whenever `email` changes. */
  emailVerified: boolean('email_verified').notNull().default(false),
  /** The TOTP secret, sealed (src/lib/secret-box.ts): being enrolled while `mfa_enabled` is false. */
  totpSecret: text('totp_secret'),
  mfaEnabled: boolean('mfa_enabled').notNull().default(false),
  /** The last TOTP time step accepted, so that no code is accepted twice. */
  totpLastStep: bigint('totp_last_step', { mode: 'number' }),
  ...timestamps,
}, (t) => [
  // Usernames are unique regardless of case, so "Alice" cannot impersonate "alice".
  uniqueIndex('users_username_lower_key').on(sql`lower(${t.username})`),
  // A forgotten password is looked up by verified address only.
  index('users_verified_email_idx').on(sql`lower(${t.email})`).where(sql`${t.emailVerified}`),
  index('users_created_at_id_idx').on(t.createdAt, t.id),
])

export const oneTimeTokenPurpose = pgEnum('one_time_token_purpose', ['email_verification', 'password_reset', 'mfa_login', 'oidc_login'])

/**
 * Tokens mailed or handed out for one use: email verification, password reset, the second step
 * of a two-factor login, and the code a single sign-on ends with. Only their SHA-256 is stored.
 */
export const oneTimeTokens = pgTable('one_time_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  purpose: oneTimeTokenPurpose('purpose').notNull(),
  tokenHash: text('token_hash').notNull(),
  /** The address a verification token proves; it proves nothing once the account's email differs. */
  email: text('email'),
  /** Wrong codes sent with an `mfa_login` token; it is spent at the limit. */
  failures: smallint('failures').notNull().default(0),
  expiresAt: timestamptz('expires_at').notNull(),
  usedAt: timestamptz('used_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
}, (t) => [
  uniqueIndex('one_time_tokens_token_hash_key').on(t.tokenHash),
  index('one_time_tokens_user_id_idx').on(t.userId),
  index('one_time_tokens_expires_at_idx').on(t.expiresAt),
])

/**
 * Accounts linked to an OpenID Connect provider's `(iss, sub)`: the only thing single sign-on
 * matches on (docs/decisions/0032-openid-connect.md). `email` is what the provider said at linking.
 */
export const identities = pgTable('identities', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  issuer: text('issuer').notNull(),
  subject: text('subject').notNull(),
  email: text('email'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
}, (t) => [
  uniqueIndex('identities_issuer_subject_key').on(t.issuer, t.subject),
  index('identities_user_id_idx').on(t.userId),
])

/**
 * Sign-ins sent to the OpenID provider and not yet back, keyed by the SHA-256 of their `state`:
 * kept here rather than in a cookie because API clients need not keep cookies. Each is used once.
 */
export const oidcAuthorizations = pgTable('oidc_authorizations', {
  stateHash: text('state_hash').primaryKey(),
  nonce: text('nonce').notNull(),
  codeVerifier: text('code_verifier').notNull(),
  /** The service's own callback URL the provider was given, which the code exchange repeats. */
  callbackUrl: text('callback_url').notNull(),
  /** Where the sign-in ends: a URL of OIDC_ALLOWED_REDIRECTS, or a path of the /app pages. */
  redirectUri: text('redirect_uri').notNull(),
  /** The caller's own `state`, handed back with the result. */
  clientState: text('client_state'),
  /** Set when a signed-in user links the identity instead of signing in with it. */
  linkUserId: uuid('link_user_id').references(() => users.id, { onDelete: 'cascade' }),
  expiresAt: timestamptz('expires_at').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
}, (t) => [index('oidc_authorizations_expires_at_idx').on(t.expiresAt)])

/** Two-factor recovery codes: HMAC-SHA256 under a purpose key, each used at most once. */
export const recoveryCodes = pgTable('recovery_codes', {
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  codeHash: text('code_hash').notNull(),
  usedAt: timestamptz('used_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
}, (t) => [primaryKey({ columns: [t.userId, t.codeHash] })])

export const refreshTokens = pgTable('refresh_tokens', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  /** Every token from one login shares a family; reusing a rotated token revokes the family. */
  familyId: uuid('family_id').notNull(),
  /** SHA-256 of the opaque token; the token itself is never stored. */
  tokenHash: text('token_hash').notNull(),
  expiresAt: timestamptz('expires_at').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  rotatedAt: timestamptz('rotated_at'),
  revokedAt: timestamptz('revoked_at'),
}, (t) => [
  uniqueIndex('refresh_tokens_token_hash_key').on(t.tokenHash),
  index('refresh_tokens_family_id_idx').on(t.familyId),
  index('refresh_tokens_user_id_idx').on(t.userId),
])

export const apiKeys = pgTable('api_keys', {
  id: uuid('id').primaryKey().defaultRandom(),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  name: text('name').notNull(),
  /** The first characters of the key, shown in listings so people can tell keys apart. */
  prefix: text('prefix').notNull(),
  /** SHA-256 of the whole key; the key itself is shown once and never stored. */
  keyHash: text('key_hash').notNull(),
  scopes: text('scopes').array().notNull(),
  expiresAt: timestamptz('expires_at'),
  lastUsedAt: timestamptz('last_used_at'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  revokedAt: timestamptz('revoked_at'),
  /** SHA-256 (lowercase hex) of the client certificate the key works with alone; null for any connection. */
  clientCertSha256: text('client_cert_sha256'),
}, (t) => [
  uniqueIndex('api_keys_key_hash_key').on(t.keyHash),
  index('api_keys_user_id_created_at_idx').on(t.userId, t.createdAt),
])

/** Declaration order is sort order: low < medium < high. */
export const taskPriority = pgEnum('task_priority', ['low', 'medium', 'high'])

/**
 * What full-text search matches: title and description with English stemming. It is indexed as an
 * expression rather than stored, so a task is not written twice; a query uses the index only when
 * it spells the expression the same way, so both use this.
 */
export function searchDocument (title: AnyPgColumn, description: AnyPgColumn): SQL {
  return sql`to_tsvector('english'::regconfig, ${title} || ' ' || coalesce(${description}, ''))`
}

/** A member's role in a project; declaration order is rank: owner > editor > viewer. */
export const projectRole = pgEnum('project_role', ['owner', 'editor', 'viewer'])

/**
 * Projects group tasks. Every account has exactly one Inbox (`is_inbox`), made with the account;
 * `owner_id` repeats the one member whose role is `owner`, so deleting an account deletes the
 * projects it owns by cascade.
 */
export const projects = pgTable('projects', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  description: text('description'),
  isInbox: boolean('is_inbox').notNull().default(false),
  ownerId: uuid('owner_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  /** Bumped by every write; the ETag is derived from it. */
  version: integer('version').notNull().default(1),
  ...timestamps,
}, (t) => [
  uniqueIndex('projects_owner_inbox_key').on(t.ownerId).where(sql`${t.isInbox}`),
  index('projects_owner_id_idx').on(t.ownerId),
])

/** Who may see a project (any member) and write in it (owner and editors). */
export const projectMembers = pgTable('project_members', {
  projectId: uuid('project_id').notNull().references(() => projects.id, { onDelete: 'cascade' }),
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  role: projectRole('role').notNull(),
  /** Bumped by every change of role; the member's ETag is derived from it. */
  version: integer('version').notNull().default(1),
  addedAt: timestamptz('added_at').notNull().defaultNow(),
}, (t) => [
  primaryKey({ columns: [t.projectId, t.userId] }),
  // "My projects": every list of tasks starts here.
  uniqueIndex('project_members_user_id_project_id_key').on(t.userId, t.projectId),
  index('project_members_project_added_at_idx').on(t.projectId, t.addedAt, t.userId),
])

export const tasks = pgTable('tasks', {
  id: uuid('id').primaryKey().defaultRandom(),
  projectId: uuid('project_id').notNull().references(() => projects.id, { onDelete: 'cascade' }),
  /** A member of the task's project, or null; cleared when they leave it. */
  assigneeId: uuid('assignee_id').references(() => users.id, { onDelete: 'set null' }),
  /** Null once the creator's account is deleted (their tasks in others' projects stay). */
  createdBy: uuid('created_by').references(() => users.id, { onDelete: 'set null' }),
  title: text('title').notNull(),
  description: text('description'),
  completed: boolean('completed').notNull().default(false),
  completedAt: timestamptz('completed_at'),
  priority: taskPriority('priority').notNull().default('medium'),
  dueAt: timestamptz('due_at'),
  tags: text('tags').array().notNull().default(sql`'{}'::text[]`),
  /** Bumped by every write; the ETag is derived from it. */
  version: integer('version').notNull().default(1),
  ...timestamps,
}, (t) => [
  // One index per sort order of the list endpoint, each led by the project (a list is a merge of
  // one range scan per project: docs/decisions/0026-one-list-across-projects.md), ending in the id
  // tie-breaker. Nullable due_at is indexed through coalesce() so keyset comparisons stay index
  // range scans while nulls sort last in both directions.
  index('tasks_project_created_at_idx').on(t.projectId, t.createdAt, t.id),
  index('tasks_project_due_at_asc_idx').on(t.projectId, sql`coalesce(${t.dueAt}, 'infinity'::timestamptz)`, t.id),
  index('tasks_project_due_at_desc_idx').on(t.projectId, sql`coalesce(${t.dueAt}, '-infinity'::timestamptz)`, t.id),
  index('tasks_project_priority_idx').on(t.projectId, t.priority, t.id),
  index('tasks_project_title_idx').on(t.projectId, sql`(${t.title} collate "C")`, t.id),
  // Clearing a leaver's assignments, and an account's on deletion; unassigned tasks are not in it.
  index('tasks_assignee_id_idx').on(t.assigneeId, t.projectId).where(sql`${t.assigneeId} is not null`),
  // One GIN index serves the tag filter and the search alike (a multicolumn GIN index answers a
  // condition on any of its columns as well as a single-column one would): a write updates one
  // index instead of two.
  index('tasks_tags_search_idx').using('gin', t.tags, searchDocument(t.title, t.description)),
])

/**
 * Who may see which task: a row per member of the task's project, kept by triggers in the
 * transaction of every write that changes it (drizzle/0013_task_visibility.sql), so that the list
 * sorted by creation reads one range of a user's rows however many projects they are in
 * (docs/decisions/0036-task-visibility.md). No foreign keys: the triggers delete the rows, and a
 * foreign key's check on every insert would lock the task and the user.
 */
export const taskVisibility = pgTable('task_visibility', {
  userId: uuid('user_id').notNull(),
  /** The task's own, which never changes. */
  createdAt: timestamptz('created_at').notNull(),
  taskId: uuid('task_id').notNull(),
}, (t) => [
  // The one index: the list reads a range of it, and the triggers find a row through the task's
  // project's members and its created_at.
  primaryKey({ columns: [t.userId, t.createdAt, t.taskId] }),
])

/** What changed; the resource a type names is what the event's data holds. */
export const eventType = pgEnum('event_type', [
  'task.created', 'task.updated', 'task.deleted',
  'project.created', 'project.updated', 'project.deleted',
  'member.added', 'member.updated', 'member.removed',
])

/** PostgreSQL's 64-bit transaction id, as text (it outgrows a JS number's exact range). */
const xid8 = customType<{ data: string, driverData: string }>({ dataType: () => 'xid8' })

/**
 * The change feed: one row per change of a task, project or membership, written in the change's own
 * transaction. An event's place in the feed is (txid, id): the writing transaction, then the order
 * of writing. Readers see only events of transactions older than every transaction still running
 * (docs/decisions/0028-gap-free-event-feed.md), so a later commit never lands behind a reader.
 */
export const events = pgTable('events', {
  // Orders the events of one transaction; across transactions `txid` comes first, so each session
  // may take its ids from a cache of its own. No primary key: events are found by their place,
  // per project (the feed) or across all (the live streams), and an index less is a write less.
  id: bigint('id', { mode: 'number' }).notNull().generatedAlwaysAsIdentity({ cache: 64 }),
  txid: xid8('txid').notNull().default(sql`pg_current_xact_id()`),
  type: eventType('type').notNull(),
  occurredAt: timestamptz('occurred_at').notNull().defaultNow(),
  /** Who made the change; null when no one did (an account's deletion by cascade). Not a foreign key: events outlive accounts. */
  actorId: uuid('actor_id'),
  /** Not a foreign key: a project's events outlive it until they expire. */
  projectId: uuid('project_id').notNull(),
  /**
   * Who sees the event besides the project's current members: those it is about who are members no
   * longer (everyone for project.deleted, the removed member for member.removed). Null otherwise.
   */
  audience: uuid('audience').array(),
  /** The resource as the API shows it after the change, its timestamps still as the database prints them ({id} for a deletion). */
  data: jsonb('data').notNull(),
  /** The W3C trace context of the change's request when tracing is on: its webhooks' deliveries continue that trace. */
  traceparent: text('traceparent'),
}, (t) => [
  index('events_project_position_idx').on(t.projectId, t.txid, t.id),
  // The live streams' one reader per instance follows every event after its place.
  index('events_position_idx').on(t.txid, t.id),
  index('events_audience_idx').using('gin', t.audience).where(sql`${t.audience} is not null`),
  index('events_occurred_at_idx').using('brin', t.occurredAt),
])

/** How far housekeeping has purged the feed: a reader resuming from before this position has missed events. */
export const eventPurges = pgTable('event_purges', {
  /** Always true: the table has one row. */
  singleton: boolean('singleton').primaryKey().default(true),
  txid: xid8('txid').notNull(),
  id: bigint('id', { mode: 'number' }).notNull(),
  purgedAt: timestamptz('purged_at').notNull().defaultNow(),
})

/** Responses to POSTs sent with an Idempotency-Key, kept 24 h per caller. */
export const idempotencyKeys = pgTable('idempotency_keys', {
  userId: uuid('user_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  key: text('key').notNull(),
  /** SHA-256 of method, path and body: the same key with another request is refused. */
  fingerprint: text('fingerprint').notNull(),
  /** The response to replay, stored with the request's own writes (never a request in flight). */
  responseStatus: smallint('response_status').notNull(),
  responseHeaders: jsonb('response_headers').$type<Record<string, string>>().notNull(),
  responseBody: jsonb('response_body').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  expiresAt: timestamptz('expires_at').notNull(),
}, (t) => [
  primaryKey({ columns: [t.userId, t.key] }),
  index('idempotency_keys_expires_at_idx').on(t.expiresAt),
])

/**
 * Server-side sessions of the web pages under /app. The cookie carries the session id; only its
 * SHA-256 is stored, so a copy of this table cannot be replayed as cookies.
 */
export const sessions = pgTable('sessions', {
  idHash: text('id_hash').primaryKey(),
  /** Null until the visitor logs in (a login form's CSRF secret already needs a session). */
  userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
  data: jsonb('data').$type<Record<string, unknown>>().notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
  /** Idle expiry: pushed forward by each request, never past absolute_expires_at. */
  expiresAt: timestamptz('expires_at').notNull(),
  absoluteExpiresAt: timestamptz('absolute_expires_at').notNull(),
}, (t) => [
  index('sessions_user_id_idx').on(t.userId),
  index('sessions_expires_at_idx').on(t.expiresAt),
])

/**
 * An endpoint that is sent the events of its owner's projects (docs/decisions/0030-webhook-delivery.md).
 * The signing secret is stored encrypted with a key of its own purpose, never in the clear.
 */
export const webhooks = pgTable('webhooks', {
  id: uuid('id').primaryKey().defaultRandom(),
  ownerId: uuid('owner_id').notNull().references(() => users.id, { onDelete: 'cascade' }),
  /** Null: every project of the owner's. A deleted project takes its webhooks with it. */
  projectId: uuid('project_id').references(() => projects.id, { onDelete: 'cascade' }),
  url: text('url').notNull(),
  /** Event types, or ['*'] for all. */
  events: text('events').array().notNull(),
  description: text('description'),
  enabled: boolean('enabled').notNull().default(true),
  /** Why the service turned it off (410 from the receiver, failing for 5 days); null otherwise. */
  disabledReason: text('disabled_reason'),
  secret: text('secret').notNull(),
  /** The secret before the last rotation, signed with too until `previous_secret_expires_at`. */
  previousSecret: text('previous_secret'),
  previousSecretExpiresAt: timestamptz('previous_secret_expires_at'),
  /** Since when every attempt has failed; null after a success. */
  failingSince: timestamptz('failing_since'),
  ...timestamps,
}, (t) => [
  index('webhooks_owner_id_created_at_idx').on(t.ownerId, t.createdAt),
])

export const deliveryStatus = pgEnum('delivery_status', ['pending', 'succeeded', 'failed', 'cancelled'])

/**
 * Every delivery attempt, and the durable queue of those to come: a `pending` row is an attempt due at
 * `next_attempt_at`. An instance claims it by setting `leased_until` (FOR UPDATE SKIP LOCKED), so two
 * never run it at once, and one that crashes leaves it to another once the lease has passed.
 */
export const webhookDeliveries = pgTable('webhook_deliveries', {
  id: uuid('id').primaryKey().defaultRandom(),
  webhookId: uuid('webhook_id').notNull().references(() => webhooks.id, { onDelete: 'cascade' }),
  /** The event's id (its place in the feed), sent as `webhook-id`; `ping_…` for a ping. */
  eventId: text('event_id').notNull(),
  eventType: text('event_type').notNull(),
  /** The event's project, to check at each attempt that the owner may still see it; null for a ping. */
  projectId: uuid('project_id'),
  /** Sent because the event is about the owner as a former member (member.removed, project.deleted). */
  aboutFormerMember: boolean('about_former_member').notNull().default(false),
  /** The body sent, `{type, timestamp, data}`, as JSON text: every attempt sends the same bytes. */
  payload: text('payload').notNull(),
  attempt: integer('attempt').notNull(),
  status: deliveryStatus('status').notNull().default('pending'),
  statusCode: integer('status_code'),
  error: text('error'),
  durationMs: integer('duration_ms'),
  /** The first bytes of the receiver's answer, for the deliveries log. */
  responseExcerpt: text('response_excerpt'),
  attemptedAt: timestamptz('attempted_at'),
  /** When this attempt is due (pending), or when the retry after it is (failed); null when none follows. */
  nextAttemptAt: timestamptz('next_attempt_at'),
  leasedUntil: timestamptz('leased_until'),
  /** The trace context of the event's change (events.traceparent): each attempt's span joins that trace. */
  traceparent: text('traceparent'),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
}, (t) => [
  index('webhook_deliveries_due_idx').on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
  index('webhook_deliveries_webhook_created_idx').on(t.webhookId, t.createdAt, t.id),
])

/** How far the webhook dispatcher has read the change feed; one row, locked by the instance dispatching. */
export const webhookDispatch = pgTable('webhook_dispatch', {
  singleton: boolean('singleton').primaryKey().default(true),
  txid: xid8('txid').notNull(),
  id: bigint('id', { mode: 'number' }).notNull(),
})

export type UserRow = typeof users.$inferSelect
export type TaskRow = typeof tasks.$inferSelect
export type ProjectRow = typeof projects.$inferSelect
export type ApiKeyRow = typeof apiKeys.$inferSelect
export type RefreshTokenRow = typeof refreshTokens.$inferSelect
export type WebhookRow = typeof webhooks.$inferSelect
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect

import type { TSchema } from '@sinclair/typebox'
import { Problem, ValidationIssue } from './common.js'
import { JsonWebKeySet, LoginRequest, RefreshTokenRequest, SignupRequest, TokenPair, TokenRequest } from './auth.js'
import { ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyScope } from './api-keys.js'
import { Health } from './health.js'
import { Identity, IdentityList } from './identities.js'
import { PasswordChange, Role, User, UserAdminPatch, UserPage, UserSelfPatch } from './users.js'
import { Priority, Task, TaskCreate, TaskPage, TaskPatch, TaskReplace } from './tasks.js'
import { Event, EventPage, EventType } from './events.js'
import { Delivery, DeliveryPage, Webhook, WebhookCreate, WebhookCreated, WebhookList, WebhookPatch, WebhookSecret } from './webhooks.js'
import { EmailVerification, MfaConfirmation, MfaLogin, PasswordForgotten, PasswordReset, RecoveryCodes, TotpActivation, TotpEnrolment, TotpEnrolmentRequest } from './account-security.js'
import { Member, MemberCreate, MemberPage, MemberPatch, Project, ProjectCreate, ProjectPage, ProjectPatch, ProjectRole } from './projects.js'

/**
 * Every named schema: registered once with Fastify (validation, serialization) and emitted as
 * `components.schemas` in the OpenAPI document, so generated SDKs get named types.
 */
export const sharedSchemas: TSchema[] = [
  ValidationIssue, Problem, Health, User, SignupRequest, LoginRequest, TokenPair,
  RefreshTokenRequest, TokenRequest, JsonWebKeySet, UserSelfPatch, PasswordChange, UserAdminPatch, UserPage,
  ApiKeyCreate, ApiKey, ApiKeyCreated, ApiKeyList, Identity, IdentityList,
  Task, TaskCreate, TaskReplace, TaskPatch, TaskPage,
  Project, ProjectCreate, ProjectPatch, ProjectPage, Member, MemberCreate, MemberPatch, MemberPage,
  Event, EventPage,
  Webhook, WebhookCreate, WebhookCreated, WebhookPatch, WebhookList, WebhookSecret, Delivery, DeliveryPage,
  EmailVerification, PasswordForgotten, PasswordReset, TotpEnrolmentRequest, TotpEnrolment, TotpActivation, RecoveryCodes, MfaConfirmation, MfaLogin,
]

/**
 * Enums named by their `title`. Schemas use them inline, not by `$ref`, because the web pages
 * validate forms with these schemas alone (src/web/forms.ts); the OpenAPI document still declares
 * each once, as `components.schemas`, and refers to it wherever it is used.
 */
export const namedEnums: TSchema[] = [Priority, ProjectRole, Role, ApiKeyScope, EventType]

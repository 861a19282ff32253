/**
 * The Tasks API client: `createTasksApi({ baseUrl, credentials })` gives typed `GET`/`POST`/...
 * for every operation of openapi.json, plus session handling, paging and the change feed; `unwrap` turns a result
 * into its data or a thrown `ProblemError`; `verifyWebhook` checks a webhook delivery for receivers.
 */
export { createTasksApi, type Credentials, type EventsOptions, type LogInOptions, type MfaChallenge, type PagedPath, type SecondFactor, type TasksApi, type TasksApiOptions } from './client.js'
export type { ClientCertificate } from './client-certificate.js'
export { ProblemError, toProblem, unwrap } from './problem.js'
export { verifyWebhook, type WebhookEvent, WebhookVerificationError } from './webhooks.js'
export type * from './generated/openapi.js'

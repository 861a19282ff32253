// Generated from openapi.json by `npm run sdk`. Do not edit: change the route schemas, run
// `npm run openapi && npm run sdk`, and commit the result.
/** Paths whose POST honours `Idempotency-Key`, so that retrying it is safe. */
export const idempotentPosts: ReadonlySet<string> = new Set(["/v1/projects","/v1/projects/{id}/members","/v1/tasks"])

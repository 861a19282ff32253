import type { Role } from './users.js'

/**
 * Every scope, declared once: what the OpenAPI document says it grants (`description`), what the
 * pages call it (`label`), which roles hold it, and whether an API key may carry it. The ApiKeyScope
 * schema, the OAuth2 scopes of the document, the token endpoint's known scopes, the tokens' scopes
 * and the pages' choices are all derived from this list, in its order.
 */
const declared = [
  { name: 'tasks:read', description: 'Read your tasks and projects', label: 'Read tasks and projects', roles: ['user', 'admin'], apiKeys: true },
  { name: 'tasks:write', description: 'Create, change and delete your tasks and projects, and share projects', label: 'Create, change and delete tasks and projects', roles: ['user', 'admin'], apiKeys: true },
  // Keys never manage keys or users, so the admin scope is never a key's.
  { name: 'admin', description: 'Manage users (admins only)', label: 'Manage users', roles: ['admin'], apiKeys: false },
] as const satisfies ReadonlyArray<{ name: string, description: string, label: string, roles: readonly Role[], apiKeys: boolean }>

type Declared = typeof declared[number]

export type Scope = Declared['name']
/** A scope an API key may carry. */
export type ApiKeyScope = Extract<Declared, { apiKeys: true }>['name']

interface ScopeInfo {
  name: Scope
  description: string
  label: string
  roles: readonly Role[]
  apiKeys: boolean
}

export const scopes: readonly ScopeInfo[] = declared

/** Every scope's name, in declaration order. */
export const scopeNames: readonly Scope[] = declared.map((s) => s.name)

/** The scopes an API key may carry, in declaration order. */
export const apiKeyScopes = declared.filter((s) => s.apiKeys).map((s) => s.name) as readonly ApiKeyScope[]

/** The scopes `role` holds, in declaration order: a token grants these, and a key a subset of them. */
export function scopesOf (role: Role): Scope[] {
  return declared.filter((s) => (s.roles as readonly Role[]).includes(role)).map((s) => s.name)
}

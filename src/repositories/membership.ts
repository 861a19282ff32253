import { type SQL, sql } from 'drizzle-orm'

/**
 * The membership conditions every repository decides access with, as SQL over a project and a user
 * (each an SQL expression), so that access is part of the statement that reads or writes.
 */

/** The user's role in the project, or null when they are not a member. */
export function roleOf (project: SQL, user: SQL): SQL {
  return sql`(select m.role from project_members m where m.project_id = ${project} and m.user_id = ${user})`
}

/** Whether the user is a member of the project (any role): who may see it and its tasks. */
export function isMember (project: SQL, user: SQL): SQL {
  return sql`exists (select 1 from project_members m where m.project_id = ${project} and m.user_id = ${user})`
}

/**
 * Whether the user is a member of the project, keeping that membership from being deleted until the
 * transaction ends: for a write that makes them the assignee, so their removal (which clears their
 * assignments) cannot pass it unseen. FOR KEY SHARE, which a change of role does not wait for: a
 * write locks two members (the writer and the assignee) in no fixed order, and a handover changes
 * two roles, so stronger locks on both could deadlock.
 */
export function isLockedMember (project: SQL, user: SQL): SQL {
  return sql`exists (select 1 from project_members m where m.project_id = ${project} and m.user_id = ${user} for key share)`
}

/**
 * Whether the user may write in the project (owner or editor), locking their membership until the
 * transaction ends: removing them, or changing their role, waits for the write, and a write that
 * comes after the removal finds no membership.
 */
export function canWrite (project: SQL, user: SQL): SQL {
  return sql`exists (select 1 from project_members m where m.project_id = ${project} and m.user_id = ${user} and m.role <> 'viewer' for share)`
}

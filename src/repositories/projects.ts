import { and, asc, desc, eq, inArray, ne, sql, type SQL } from 'drizzle-orm'
import { type Database, retriedOnConflict } from '../db/client.js'
import { projectMembers, projects, tasks, users } from '../db/schema.js'
import { rfc3339FromPostgres, timestampText } from '../db/timestamps.js'
import { problem } from '../errors.js'
import type { ListRequest, PagedList, Position } from '../lib/paging.js'
import { activeTraceparent } from '../lib/tracing.js'
import type { Member, MemberCreate, Project, ProjectCreate, ProjectPatch, ProjectRole, ProjectSort } from '../schemas/projects.js'
import { ProjectListQuery } from '../schemas/projects.js'
import { eventData, recordEvents, taskEventInsert } from './events.js'
import { taskColumns } from './task-query.js'

/** A project as the API shows it to one member, plus the version its ETag is made of. */
export type ProjectRecord = Project & { version: number }
/** A member as the API shows it, plus the version its ETag is made of. */
export type MemberRecord = Member & { version: number }

/** The project list, as paging (src/lib/paging.ts) declares it: no filters, four orders. */
export const projectList: PagedList<Record<never, never>, ProjectSort> = {
  filters: {},
  defaultSort: ProjectListQuery.properties.sort.default as ProjectSort,
  defaultLimit: ProjectListQuery.properties.limit.default as number,
}

/** The member list: no filters, one order (who joined first). */
export const memberList: PagedList<Record<never, never>, 'added_at'> = { filters: {}, defaultSort: 'added_at', defaultLimit: 20 }

const projectColumns = {
  id: projects.id,
  name: projects.name,
  description: projects.description,
  is_inbox: projects.isInbox,
  owner_id: projects.ownerId,
  role: projectMembers.role,
  member_count: sql<number>`(select count(*)::int from project_members c where c.project_id = ${projects.id})`.as('member_count'),
  created_at: timestampText<string>(projects.createdAt, 'created_at'),
  updated_at: timestampText<string>(projects.updatedAt, 'updated_at'),
  version: projects.version,
}

const memberColumns = {
  user_id: projectMembers.userId,
  username: users.username,
  display_name: users.displayName,
  role: projectMembers.role,
  added_at: timestampText<string>(projectMembers.addedAt, 'added_at'),
  version: projectMembers.version,
}

function projectOf<R extends { created_at: string, updated_at: string }> (row: R): R {
  row.created_at = rfc3339FromPostgres(row.created_at)
  row.updated_at = rfc3339FromPostgres(row.updated_at)
  return row
}

function memberOf<R extends { added_at: string }> (row: R): R {
  row.added_at = rfc3339FromPostgres(row.added_at)
  return row
}

/** Sort keys of the project list: the expression, its cursor value's cast, and the field it is read from. */
const projectSortKeys: Record<'name' | 'created_at', { key: SQL, cast: (value: string) => SQL, field: 'name' | 'created_at' }> = {
  name: { key: sql`(${projects.name} collate "C")`, cast: (value) => sql`(${value}::text collate "C")`, field: 'name' },
  created_at: { key: sql`${projects.createdAt}`, cast: (value) => sql`${value}::timestamptz`, field: 'created_at' },
}

/** The Inbox every account has, with its owner's membership: part of the unit of work that makes the account. */
export async function createInbox (tx: Database, userId: string): Promise<void> {
  const [inbox] = await tx.insert(projects).values({ name: 'Inbox', isInbox: true, ownerId: userId }).returning({ id: projects.id })
  await tx.insert(projectMembers).values({ projectId: inbox!.id, userId, role: 'owner' })
  await recordEvents(tx, [{ type: 'project.created', actorId: userId, projectId: inbox!.id, data: eventData(await viewOf(tx, userId, inbox!.id)) }])
}

/** The project as one member sees it (with their role in it); undefined when they are not a member. */
async function projectView (executor: Database, userId: string, projectId: string): Promise<ProjectRecord | undefined> {
  const [row] = await executor.select(projectColumns).from(projects)
    .innerJoin(projectMembers, and(eq(projectMembers.projectId, projects.id), eq(projectMembers.userId, userId)))
    .where(eq(projects.id, projectId))
  return row === undefined ? undefined : projectOf(row)
}

/** The view of a project the caller has just made or changed. */
const viewOf = async (executor: Database, userId: string, projectId: string) => (await projectView(executor, userId, projectId))!

/**
 * The events of an account's deletion, recorded before it (its projects and memberships then go by
 * cascade): each project it owns is deleted for its other members, it leaves every other project,
 * and the tasks assigned to it there are unassigned. No one is the actor: the account is gone.
 */
export async function recordAccountDeletion (tx: Database, userId: string): Promise<void> {
  // Every project it is in, locked first and in one order: its memberships go by cascade, and their
  // task_visibility triggers lock each project FOR UPDATE (drizzle/0013_task_visibility.sql). Taken
  // only then, after the assignments below lock tasks, those locks could wait on a task write that
  // holds the project and waits on one of those tasks.
  await tx.execute(sql`select 1 from ${projects} where ${projects.id} in (select m.project_id from ${projectMembers} m where m.user_id = ${userId}) order by ${projects.id} for update`)
  const owned = await tx.select({ id: projects.id, members: sql<string[]>`array(select m.user_id from project_members m where m.project_id = ${projects.id})` })
    .from(projects).where(eq(projects.ownerId, userId))
  const memberships = await tx.select({ ...memberColumns, project_id: projectMembers.projectId }).from(projectMembers)
    .innerJoin(users, eq(users.id, projectMembers.userId)).innerJoin(projects, eq(projects.id, projectMembers.projectId))
    .where(and(eq(projectMembers.userId, userId), ne(projects.ownerId, userId)))
  await recordEvents(tx, [
    ...owned.map((project) => ({ type: 'project.deleted' as const, actorId: null, projectId: project.id, data: { id: project.id }, audience: project.members })),
    ...memberships.map(({ project_id: projectId, ...row }) => ({ type: 'member.removed' as const, actorId: null, projectId, data: eventData(memberOf(row)) })),
  ])
  // Its assignments in the projects that stay are cleared here, as a removal clears them, rather
  // than silently by the foreign key: each task's version moves and its members hear of it.
  await unassign(tx, and(eq(tasks.assigneeId, userId), sql`${tasks.projectId} not in (select p.id from projects p where p.owner_id = ${userId})`)!, null)
}

/** Clears the assignee of the tasks `which` selects, each a write with its task.updated event. */
async function unassign (tx: Database, which: SQL, actorId: string | null): Promise<void> {
  const cleared = tx.update(tasks).set({
    assigneeId: null,
    version: sql`${tasks.version} + 1`,
    updatedAt: sql`greatest(now(), ${tasks.updatedAt} + interval '1 microsecond')`,
  }).where(which).returning(taskColumns)
  await tx.execute(sql`with updated as (${cleared.getSQL()}) ${taskEventInsert('task.updated', sql`${actorId}::uuid`, 'updated', sql`${activeTraceparent()}`)}`)
}

/**
 * Projects and their members. Every method takes the caller and decides access itself: a project
 * the caller is not a member of does not exist for them (404), and a role that may not do something
 * is a 403. Writes lock the project row first (FOR NO KEY UPDATE, which task writes in it do not wait
 * for) and then the membership rows, the same order in every write, so they cannot deadlock. A
 * member added or removed then takes the project FOR UPDATE in its task_visibility trigger, which
 * waits for the task writes in flight (they hold it FOR KEY SHARE) and holds new ones until it
 * commits (docs/decisions/0036-task-visibility.md).
 */
export function createProjectsRepository (db: Database) {
  /** The caller's view of the project, locked for a change of it or its members; 404 when they are not a member. */
  async function lockedProject (tx: Database, userId: string, projectId: string): Promise<ProjectRecord> {
    const [row] = await tx.select(projectColumns).from(projects)
      .innerJoin(projectMembers, and(eq(projectMembers.projectId, projects.id), eq(projectMembers.userId, userId)))
      .where(eq(projects.id, projectId)).for('no key update', { of: projects })
    if (row === undefined) throw problem('PROJECT_NOT_FOUND', `No project ${projectId}.`)
    return projectOf(row)
  }

  /**
   * A change of membership changes the project as each member sees it (`member_count`, `owner_id`,
   * the reader's `role`): its version and `updated_at` move, so its ETag does.
   */
  async function touchProject (tx: Database, projectId: string): Promise<void> {
    await tx.update(projects).set({
      version: sql`${projects.version} + 1`,
      updatedAt: sql`greatest(now(), ${projects.updatedAt} + interval '1 microsecond')`,
    }).where(eq(projects.id, projectId))
  }

  function requireOwner (project: ProjectRecord, what: string): void {
    if (project.role !== 'owner') throw problem('ROLE_FORBIDDEN', `Only the project's owner can ${what}; you are ${project.role === 'editor' ? 'an editor' : 'a viewer'}.`)
  }

  function requireVersion (versions: number[] | null, version: number, what: string): void {
    if (versions !== null && !versions.includes(version)) {
      throw problem('PRECONDITION_FAILED', `The ${what} has changed since you read it (If-Match does not match its ETag); read it again and retry.`)
    }
  }

  async function member (executor: Database, projectId: string, userId: string): Promise<MemberRecord | undefined> {
    const [row] = await executor.select(memberColumns).from(projectMembers).innerJoin(users, eq(users.id, projectMembers.userId))
      .where(and(eq(projectMembers.projectId, projectId), eq(projectMembers.userId, userId)))
    return row === undefined ? undefined : memberOf(row)
  }

  const self = {
    /** A member of a project the caller is a member of; 404 otherwise. */
    async member (userId: string, projectId: string, memberId: string): Promise<MemberRecord> {
      if (await self.get(userId, projectId) === undefined) throw problem('PROJECT_NOT_FOUND', `No project ${projectId}.`)
      const found = await member(db, projectId, memberId)
      if (found === undefined) throw problem('MEMBER_NOT_FOUND', `User ${memberId} is not a member of this project.`)
      return found
    },

    /** The projects the caller is a member of, one page in the requested order. */
    async list (userId: string, request: ListRequest<Record<never, never>, ProjectSort>): Promise<{ items: ProjectRecord[], next: Position | null }> {
      const descending = request.sort.startsWith('-')
      const { key, cast, field } = projectSortKeys[request.sort.replace('-', '') as 'name' | 'created_at']
      const conditions = [eq(projectMembers.userId, userId)]
      if (request.after !== undefined) {
        const [afterKey, afterId] = request.after
        conditions.push(descending
          ? sql`(${key}, ${projects.id}) < (${cast(afterKey!)}, ${afterId}::uuid)`
          : sql`(${key}, ${projects.id}) > (${cast(afterKey!)}, ${afterId}::uuid)`)
      }
      const rows = await db.select(projectColumns).from(projectMembers)
        .innerJoin(projects, eq(projects.id, projectMembers.projectId))
        .where(and(...conditions))
        .orderBy(...(descending ? [sql`${key} desc`, desc(projects.id)] : [sql`${key} asc`, asc(projects.id)]))
        .limit(request.limit + 1)
      const items = rows.slice(0, request.limit).map(projectOf)
      const last = rows.length > request.limit ? items[request.limit - 1]! : undefined
      return { items, next: last === undefined ? null : [last[field], last.id] }
    },

    /** The project, when the caller is a member; undefined otherwise. */
    async get (userId: string, projectId: string, tx?: Database): Promise<ProjectRecord | undefined> {
      return await projectView(tx ?? db, userId, projectId)
    },

    /** A new project owned by the caller. */
    async create (userId: string, values: ProjectCreate, tx?: Database): Promise<ProjectRecord> {
      const work = async (executor: Database) => {
        const [row] = await executor.insert(projects).values({ name: values.name, description: values.description ?? null, ownerId: userId })
          .returning({ id: projects.id })
        await executor.insert(projectMembers).values({ projectId: row!.id, userId, role: 'owner' })
        const project = await viewOf(executor, userId, row!.id)
        await recordEvents(executor, [{ type: 'project.created', actorId: userId, projectId: project.id, data: eventData(project) }])
        return project
      }
      return tx === undefined ? await db.transaction(work) : await work(tx)
    },

    /** Renames the project or changes its description: owner or editor; the Inbox keeps its name. */
    async update (userId: string, projectId: string, patch: ProjectPatch, versions: number[] | null): Promise<ProjectRecord> {
      return await db.transaction(async (tx) => {
        const project = await lockedProject(tx, userId, projectId)
        if (project.role === 'viewer') throw problem('ROLE_FORBIDDEN', 'You are a viewer of this project: only its owner and editors change it.')
        if (project.is_inbox && patch.name !== undefined && patch.name !== project.name) throw problem('INBOX_IMMUTABLE', 'The Inbox cannot be renamed.')
        requireVersion(versions, project.version, 'project')
        await tx.update(projects).set({
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          version: sql`${projects.version} + 1`,
          updatedAt: sql`greatest(now(), ${projects.updatedAt} + interval '1 microsecond')`,
        }).where(eq(projects.id, projectId))
        const updated = await viewOf(tx, userId, projectId)
        await recordEvents(tx, [{ type: 'project.updated', actorId: userId, projectId, data: eventData(updated) }])
        return updated
      })
    },

    /**
     * Deletes the project and its tasks: owner only; the Inbox never. The members are locked before
     * the project is deleted: a member's task write in flight finishes first, and one that comes
     * after finds no membership (404) instead of a project that vanished under it.
     */
    async delete (userId: string, projectId: string, versions: number[] | null): Promise<void> {
      await retriedOnConflict(async () => await db.transaction(async (tx) => {
        const project = await lockedProject(tx, userId, projectId)
        requireOwner(project, 'delete it')
        if (project.is_inbox) throw problem('INBOX_IMMUTABLE', 'The Inbox cannot be deleted.')
        requireVersion(versions, project.version, 'project')
        // In user order, as every transaction that locks several of one project's memberships does (decision 0035).
        const members = await tx.select({ userId: projectMembers.userId }).from(projectMembers).where(eq(projectMembers.projectId, projectId))
          .orderBy(asc(projectMembers.userId)).for('update')
        await tx.delete(projects).where(eq(projects.id, projectId))
        // Its members are members no longer, so the event names them to reach their feeds.
        await recordEvents(tx, [{ type: 'project.deleted', actorId: userId, projectId, data: { id: projectId }, audience: members.map((m) => m.userId) }])
      }))
    },

    /** The project's members, who joined first first; 404 for a project the caller is not a member of. */
    async members (userId: string, projectId: string, request: ListRequest<Record<never, never>, 'added_at'>): Promise<{ items: MemberRecord[], next: Position | null }> {
      if (await self.get(userId, projectId) === undefined) throw problem('PROJECT_NOT_FOUND', `No project ${projectId}.`)
      const conditions = [eq(projectMembers.projectId, projectId)]
      if (request.after !== undefined) {
        conditions.push(sql`(${projectMembers.addedAt}, ${projectMembers.userId}) > (${request.after[0]}::timestamptz, ${request.after[1]}::uuid)`)
      }
      const rows = await db.select(memberColumns).from(projectMembers).innerJoin(users, eq(users.id, projectMembers.userId))
        .where(and(...conditions)).orderBy(asc(projectMembers.addedAt), asc(projectMembers.userId)).limit(request.limit + 1)
      const items = rows.slice(0, request.limit).map(memberOf)
      const last = rows.length > request.limit ? items[request.limit - 1]! : undefined
      return { items, next: last === undefined ? null : [last.added_at, last.user_id] }
    },

    /** Shares the project with an account: owner only; not the Inbox. */
    async addMember (userId: string, projectId: string, values: MemberCreate, tx?: Database): Promise<MemberRecord> {
      const work = async (executor: Database) => {
        const project = await lockedProject(executor, userId, projectId)
        requireOwner(project, 'share it')
        if (project.is_inbox) throw problem('INBOX_IMMUTABLE', 'The Inbox cannot be shared: create a project to share.')
        const [account] = await executor.select({ id: users.id }).from(users).where(sql`lower(${users.username}) = lower(${values.username})`)
        if (account === undefined) {
          throw problem('UNKNOWN_USERNAME', `No account is called "${values.username}".`, { errors: [{ in: 'body', path: '/username', message: 'is not a username' }] })
        }
        const added = await executor.insert(projectMembers).values({ projectId, userId: account.id, role: values.role })
          .onConflictDoNothing().returning({ userId: projectMembers.userId })
        if (added.length === 0) throw problem('ALREADY_MEMBER', `"${values.username}" is already a member of this project.`)
        await touchProject(executor, projectId)
        const newMember = (await member(executor, projectId, account.id))!
        await recordEvents(executor, [{ type: 'member.added', actorId: userId, projectId, data: eventData(newMember) }])
        return newMember
      }
      return tx === undefined ? await db.transaction(work) : await work(tx)
    },

    /**
     * Changes a member's role: owner only. `owner` hands the project over (the old owner becomes an
     * editor); the owner's own role changes only that way.
     */
    async updateMember (userId: string, projectId: string, memberId: string, role: ProjectRole, versions: number[] | null): Promise<MemberRecord> {
      return await retriedOnConflict(async () => await db.transaction(async (tx) => {
        const project = await lockedProject(tx, userId, projectId)
        requireOwner(project, 'change roles')
        const target = await member(tx, projectId, memberId)
        if (target === undefined) throw problem('MEMBER_NOT_FOUND', `User ${memberId} is not a member of this project.`)
        requireVersion(versions, target.version, 'member')
        if (target.role === 'owner') {
          if (role === 'owner') return target
          throw problem('OWNER_REQUIRED', 'You own this project: hand it over by making another member its owner, and you become an editor.')
        }
        const setRole = async (id: string, to: ProjectRole) => {
          await tx.update(projectMembers).set({ role: to, version: sql`${projectMembers.version} + 1` })
            .where(and(eq(projectMembers.projectId, projectId), eq(projectMembers.userId, id)))
        }
        const changed: string[] = []
        if (role === 'owner') {
          // Both rows first, in user order, as every transaction that locks several of one project's memberships does (decision 0035).
          await tx.select({ userId: projectMembers.userId }).from(projectMembers)
            .where(and(eq(projectMembers.projectId, projectId), inArray(projectMembers.userId, [userId, memberId])))
            .orderBy(asc(projectMembers.userId)).for('no key update')
          await setRole(userId, 'editor')
          await tx.update(projects).set({ ownerId: memberId }).where(eq(projects.id, projectId))
          changed.push(userId)
        }
        if (role !== target.role) {
          await setRole(memberId, role)
          changed.push(memberId)
        }
        if (changed.length > 0) await touchProject(tx, projectId)
        const updated = await Promise.all(changed.map(async (id) => (await member(tx, projectId, id))!))
        await recordEvents(tx, updated.map((m) => ({ type: 'member.updated' as const, actorId: userId, projectId, data: eventData(m) })))
        return updated.find((m) => m.user_id === memberId) ?? target
      }))
    },

    /**
     * Removes a member (owner only), or the caller themself (leaving; not the owner). Their
     * assignments in the project are cleared in the same transaction.
     */
    async removeMember (userId: string, projectId: string, memberId: string, versions: number[] | null): Promise<void> {
      await retriedOnConflict(async () => await db.transaction(async (tx) => {
        const project = await lockedProject(tx, userId, projectId)
        if (memberId === userId) {
          if (project.role === 'owner') throw problem('OWNER_CANNOT_LEAVE', 'You own this project: hand it over to another member first, or delete it.')
        } else {
          requireOwner(project, 'remove members')
        }
        const target = await member(tx, projectId, memberId)
        if (target === undefined) throw problem('MEMBER_NOT_FOUND', `User ${memberId} is not a member of this project.`)
        requireVersion(versions, target.version, 'member')
        await tx.delete(projectMembers).where(and(eq(projectMembers.projectId, projectId), eq(projectMembers.userId, memberId)))
        await touchProject(tx, projectId)
        await recordEvents(tx, [{ type: 'member.removed', actorId: userId, projectId, data: eventData(target), audience: [memberId] }])
        await unassign(tx, and(eq(tasks.assigneeId, memberId), eq(tasks.projectId, projectId))!, userId)
      }))
    },
  }
  return self
}

export type ProjectsRepository = ReturnType<typeof createProjectsRepository>

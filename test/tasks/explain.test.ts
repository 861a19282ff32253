/**
 * Query plans of the list endpoint on a table of 100 000 tasks: every sort, with and without each
 * filter and a cursor, must read through an index, never scan the table; without the GIN-served
 * filters (tag, q) each page must be one ordered range scan of its sort's index, with no sort step
 * but the merge of the projects' pages (none at all, unfiltered by creation: one range of
 * task_visibility), and a selective tag or search term must be looked up in the GIN index.
 */
import tap from 'tap'
import { sql } from 'drizzle-orm'
import type { PGlite } from '@electric-sql/pglite'
import type { Sql } from 'postgres'
import { listParameters, listQuery, shapeOf, sorts, taskFilterNames, type TaskFilters, type TaskListRequest, type TaskSort } from '../../src/repositories/task-query.js'
import type { Position } from '../../src/lib/paging.js'
import { fillPlaceholders } from 'drizzle-orm/sql'
import { build, testDatabase } from '../helper.js'
import { queryRows } from '../../src/db/client.js'

interface PlanNode { 'Node Type': string, 'Index Name'?: string, 'Relation Name'?: string, Plans?: PlanNode[] }

function nodes (plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(nodes)]
}

/** How a plan reads the table, for assertion messages: each scan and the index it uses. */
function scansOf (all: PlanNode[]): string {
  return all.filter((n) => n['Relation Name'] === 'tasks' || n['Index Name'] !== undefined)
    .map((n) => `${n['Node Type']}${n['Index Name'] === undefined ? '' : ` on ${n['Index Name']}`}`).join(', ')
}

const sortIndex: Record<string, string> = {
  created_at: 'tasks_project_created_at_idx',
  due_at: 'tasks_project_due_at_asc_idx',
  '-due_at': 'tasks_project_due_at_desc_idx',
  priority: 'tasks_project_priority_idx',
  title: 'tasks_project_title_idx',
}

type Filters = Partial<TaskFilters>
const filterSets: Array<[string, Filters]> = [
  ['no filter', {}],
  ['completed', { completed: false }],
  ['priority', { priority: 'high' }],
  ['due range', { due_after: '2026-03-01T00:00:00Z', due_before: '2026-09-01T00:00:00Z' }],
  ['tag', { tag: ['tag7'] }],
  ['two tags', { tag: ['tag7', 'tag3'] }],
  ['q', { q: 'report' }],
]

/** A list request as the repository gets it: every filter named, undefined when absent. */
function listRequest (options: { sort: TaskSort, filters: Filters, limit: number, after?: Position | undefined }): TaskListRequest {
  const filters = Object.fromEntries(taskFilterNames.map((name) => [name, options.filters[name]])) as TaskFilters
  return { sort: options.sort, limit: options.limit, after: options.after, filters }
}

tap.test('list plans use indexes on 100 000 tasks', async (t) => {
  const app = await build(t)
  const database = await testDatabase()
  // Eleven users, each with an Inbox. explain0 holds half of the table in its Inbox, the worst case
  // for its indexes, and is a member of 49 projects of explain1's besides; explain2 is in its Inbox
  // alone. The rest of the table is spread over the other Inboxes and the shared projects.
  await app.db.execute(sql`insert into users (username, password_hash) select 'explain' || i, 'x' from generate_series(0, 10) i`)
  await app.db.execute(sql`insert into projects (name, is_inbox, owner_id) select 'Inbox', true, id from users where username like 'explain%'`)
  await app.db.execute(sql`insert into projects (name, owner_id) select 'Shared ' || i, u.id from users u, generate_series(1, 49) i where u.username = 'explain1'`)
  await app.db.execute(sql`insert into project_members (project_id, user_id, role) select id, owner_id, 'owner' from projects`)
  await app.db.execute(sql`
    insert into project_members (project_id, user_id, role)
    select p.id, u.id, 'editor' from projects p, users u where not p.is_inbox and u.username = 'explain0'`)
  // One statement of 100 000 rows may outlast the pool's statement timeout on a busy machine. The
  // table's indexes are built once after the load, from their own definitions, rather than updated
  // row by row: the same indexes, in a fraction of the time.
  await app.db.transaction(async (tx) => {
    await tx.execute(sql`set local statement_timeout = 0`)
    const indexes = await queryRows<{ name: string, definition: string }>(tx, sql`
      select indexname as name, indexdef as definition from pg_indexes
      where tablename = 'tasks' and indexname not in (select conname from pg_constraint where conrelid = 'tasks'::regclass)`)
    for (const { name } of indexes) await tx.execute(sql.raw(`drop index "${name}"`))
    await tx.execute(sql`
    insert into tasks (project_id, title, description, completed, priority, due_at, tags, created_at)
    select coalesce(shared.id, inbox.id),
           (array['Write', 'Review', 'Plan', 'Ship'])[1 + i % 4] || ' item ' || i,
           case when i % 3 = 0 then 'quarterly report number ' || i end,
           i % 5 = 0,
           (array['low', 'medium', 'high'])[1 + i % 3]::task_priority,
           case when i % 4 <> 0 then timestamptz '2026-01-01' + (i % 365) * interval '1 day' end,
           array['tag' || (i % 10), 'tag' || (i % 7)],
           timestamptz '2025-01-01' + i * interval '1 minute'
    from generate_series(1, 100000) i
    join users u on u.username = 'explain' || case when i % 2 = 0 then 0 else 1 + i % 10 end
    join projects inbox on inbox.owner_id = u.id and inbox.is_inbox
    left join projects shared on i % 4 = 1 and shared.name = 'Shared ' || (1 + i % 49)`)
    for (const { definition } of indexes) await tx.execute(sql.raw(definition))
  })
  // A tag only a few of the owner's tasks carry, for the GIN lookup below.
  await app.db.execute(sql`
    insert into tasks (project_id, title, tags)
    select p.id, 'Rare ' || i, array['tag-rare'] from projects p join users u on u.id = p.owner_id, generate_series(1, 20) i
    where u.username = 'explain0' and p.is_inbox`)
  // Statistics from every row rather than a random sample of 30 000, so that the planner's estimate
  // of the rare tag (and with it the plan) is the same on every run.
  await app.db.transaction(async (tx) => {
    await tx.execute(sql`set local default_statistics_target = 1000`)
    await tx.execute(sql`analyze tasks`)
    await tx.execute(sql`analyze task_visibility`)
  })
  const userId = async (username: string) => (await queryRows<{ id: string }>(app.db, sql`select id from users where username = ${username}`))[0]!.id
  const users = { 'in 50 projects': await userId('explain0'), 'in 1 project': await userId('explain2') }

  const explain = async (options: Parameters<typeof listRequest>[0], user = users['in 50 projects']): Promise<PlanNode> => {
    const request = listRequest(options)
    const query = listQuery(app.db, shapeOf(request)).toSQL()
    const params = fillPlaceholders(query.params, listParameters(user, request))
    const text = `explain (format json) ${query.sql}`
    const rows = database.driver === 'postgres'
      ? await (app.db as unknown as { $client: Sql }).$client.unsafe(text, params as never[])
      : (await (app.db as unknown as { $client: PGlite }).$client.query(text, params)).rows
    const plan = (rows[0] as { 'QUERY PLAN': unknown })['QUERY PLAN']
    return (typeof plan === 'string' ? JSON.parse(plan) : plan)[0].Plan as PlanNode
  }

  for (const [who, user] of Object.entries(users)) {
    for (const sort of sorts) {
      for (const [label, filters] of filterSets) {
        for (const after of [undefined, [sort.includes('due_at') ? '2026-06-01T00:00:00.000000Z' : sort.includes('priority') ? 'medium' : sort.includes('title') ? 'Plan item 5' : '2025-03-01T00:00:00.000000Z', '00000000-0000-4000-8000-000000000000'] as [string, string]]) {
          const plan = await explain({ sort, filters, limit: 20, after }, user)
          const all = nodes(plan)
          const name = `${who}: ${sort}, ${label}${after === undefined ? '' : ', after a cursor'}`
          t.notOk(all.some((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'tasks'), `${name}: no sequential scan of tasks (${scansOf(all)})`)
          t.ok(all.some((n) => n['Index Name'] !== undefined), `${name}: reads an index`)
          if (label === 'no filter' && sort.endsWith('created_at')) {
            // One range of the caller's visibility rows, read in order, and the page's tasks by id.
            t.ok(all.some((n) => n['Node Type'] === 'Index Only Scan' && n['Index Name'] === 'task_visibility_user_id_created_at_task_id_pk'), `${name}: range scan of task_visibility_user_id_created_at_task_id_pk (${scansOf(all)})`)
            t.notOk(all.some((n) => n['Node Type'] === 'Sort' || n['Node Type'] === 'Memoize'), `${name}: no sort, and the page's tasks read by key without a cache (${all.map((n) => n['Node Type']).join(', ')})`)
          } else if (filters.tag === undefined && filters.q === undefined) {
            const index = sortIndex[sort.replace(/^-(?!due_at)/, '')]
            t.ok(all.some((n) => (n['Node Type'] === 'Index Scan' || n['Node Type'] === 'Index Only Scan') && n['Index Name'] === index), `${name}: range scan of ${index} (${scansOf(all)})`)
            // The merge: each project's scan stops at a page, and only those pages are sorted.
            t.ok(all.filter((n) => n['Node Type'] === 'Sort').every((n) => nodes(n).slice(1).some((below) => below['Node Type'] === 'Limit')),
              `${name}: sorts only the projects' pages, never the tasks themselves`)
          }
        }
      }
    }
  }

  // A selective tag or search term is worth a GIN lookup: one index serves both.
  for (const [label, filters] of [['a rare tag', { tag: ['tag-rare'] }], ['a rare word', { q: 'zeppelin' }]] as Array<[string, Filters]>) {
    const all = nodes(await explain({ sort: '-created_at', filters, limit: 20 }))
    t.ok(all.some((n) => n['Node Type'] === 'Bitmap Index Scan' && n['Index Name'] === 'tasks_tags_search_idx'), `${label}: looked up in tasks_tags_search_idx (${scansOf(all)})`)
  }
})

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { problem } from '../../errors.js'
import { etagOf, noneMatchHolds, versionsMatching } from '../../lib/entity-tags.js'
import { createPaging } from '../../lib/paging.js'
import { TaskListQuery, taskList } from '../../repositories/task-query.js'
import { answerOnce } from '../idempotent-post.js'
import type { TaskValues } from '../../repositories/tasks.js'
import { IdParams, jsonResponse, noContent, problemResponses, withHeaders } from '../../schemas/common.js'
import {
  ConditionalReadHeaders, ConditionalWriteHeaders, IdempotencyHeaders, Task, TaskCreate, TaskPage, TaskPatch, TaskReplace,
} from '../../schemas/tasks.js'

/**
 * Create and replace take every writable field; the omitted ones get their defaults, except that a
 * replace keeps the task's project and assignee when they are omitted.
 */
function valuesOf (body: TaskCreate, keep: boolean): TaskValues {
  return {
    project_id: keep ? body.project_id : body.project_id ?? null,
    assignee_id: keep ? body.assignee_id : body.assignee_id ?? null,
    title: body.title,
    description: body.description ?? null,
    priority: body.priority ?? 'medium',
    due_at: body.due_at ?? null,
    tags: body.tags ?? [],
    completed: body.completed ?? false,
  }
}

const read = { auth: { scopes: ['tasks:read' as const] } }
const write = { auth: { scopes: ['tasks:write' as const] } }
const taskRef = Type.Ref(Task)
const taskWithETag = jsonResponse('The task.', taskRef, 'ETag')

const tasksRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const paging = createPaging(taskList, { keys: app.keys.keysFor('tasksCursor') })
  const tasks = app.tasksRepository

  app.get('', {
    config: read,
    schema: {
      operationId: 'listTasks',
      summary: 'List your tasks',
      description: [
        'The tasks of every project you are a member of (`project_id` narrows it to one), filtered, searched and sorted, one page at a time. Filters combine with AND.',
        '',
        'Paging uses keyset cursors: follow `next_cursor` (or the `Link: rel="next"` header) until it is null.',
        'A cursor only works with the sort and filters of the request that produced it, and only for you;',
        'anything else, or an altered cursor, is a 400 with code `INVALID_CURSOR`. Tasks added or removed',
        'while you page do not make the remaining pages skip or repeat tasks.',
      ].join('\n'),
      tags: ['tasks'],
      querystring: TaskListQuery,
      response: {
        200: jsonResponse('One page of tasks.', Type.Ref(TaskPage), 'Link'),
        ...problemResponses(400, 429, 500, 503),
      },
    },
  }, async (request, reply) => {
    const userId = request.auth!.userId
    const list = paging.open(userId, request.query)
    return paging.respond(reply, list, request.url, await tasks.list(userId, list))
  })

  app.post('', {
    config: write,
    schema: {
      operationId: 'createTask',
      summary: 'Create a task',
      description: 'Creates a task in `project_id` (your Inbox when omitted), made by you: you must be the project\'s owner or an editor (a viewer gets 403, a project you are not a member of 404). `assignee_id` must be a member of the project (else 422 `ASSIGNEE_NOT_MEMBER`). Send an `Idempotency-Key` to make retries safe: see the header\'s description.',
      tags: ['tasks'],
      headers: IdempotencyHeaders,
      body: Type.Ref(TaskCreate),
      response: {
        201: jsonResponse('The task was created (or, with `Idempotent-Replayed: true`, the first response to this key is replayed).', taskRef, 'Location', 'ETag', 'Idempotent-Replayed'),
        ...problemResponses(400, 403, 404, 413, 415, 422, 429, 500, 503),
        // A duplicate of a request still in flight: retry after it.
        ...withHeaders(problemResponses(409), ['Retry-After']),
      },
    },
  }, async (request, reply) => {
    const values = valuesOf(request.body as TaskCreate, false)
    return await answerOnce(request, reply, async (tx) => {
      const { version, ...task } = await tasks.create(request.auth!.userId, values, tx)
      return { status: 201, headers: { location: `/v1/tasks/${task.id}`, etag: etagOf(version) }, body: task }
    })
  })

  app.get('/:id', {
    config: read,
    schema: {
      operationId: 'getTask',
      summary: 'Get a task',
      description: 'A task of a project you are a member of (any other is a 404), with its `ETag`. Send that tag in `If-None-Match` to get a 304 without a body while the task is unchanged.',
      tags: ['tasks'],
      params: IdParams,
      headers: ConditionalReadHeaders,
      response: {
        200: taskWithETag,
        304: noContent('Not modified: the task still matches `If-None-Match`.', 'ETag'),
        ...problemResponses(400, 404, 414, 429, 500, 503),
      },
    },
  }, async (request, reply) => {
    const task = await tasks.get(request.auth!.userId, request.params.id)
    if (task === undefined) throw problem('TASK_NOT_FOUND', `No task ${request.params.id}.`)
    const etag = etagOf(task.version)
    reply.header('etag', etag)
    if (!noneMatchHolds(request.headers['if-none-match'], etag)) {
      // Nothing rather than null: Fastify would serialize null and describe it in content headers,
      // which a 304 must not carry (RFC 9110, 15.4.5).
      return reply.code(304).send(undefined as never)
    }
    return task
  })

  const conditionalWrite = {
    params: IdParams,
    headers: ConditionalWriteHeaders,
    tags: ['tasks'],
  }

  app.put('/:id', {
    config: write,
    schema: {
      ...conditionalWrite,
      operationId: 'replaceTask',
      summary: 'Replace a task',
      description: 'Sets every writable field; omitted ones return to their defaults, except `project_id` and `assignee_id`, which are kept. You must be owner or editor of the task\'s project (a viewer gets 403). With `If-Match`, only when the task still has that `ETag` (else 412, and nothing changes).',
      body: Type.Ref(TaskReplace),
      response: { 200: taskWithETag, ...problemResponses(400, 403, 404, 409, 412, 413, 414, 415, 422, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const task = await tasks.update(request.auth!.userId, request.params.id, valuesOf(request.body as TaskReplace, true), versionsMatching(request.headers['if-match']))
    return reply.header('etag', etagOf(task.version)).send(task)
  })

  const patchRef = Type.Ref(TaskPatch)
  app.patch('/:id', {
    config: write,
    schema: {
      ...conditionalWrite,
      operationId: 'updateTask',
      summary: 'Update some fields of a task',
      description: 'A JSON merge patch (RFC 7396), sent as `application/merge-patch+json` or `application/json`: the fields present are set, the others kept. Setting `project_id` moves the task: you must be owner or editor of both projects (a project you are not a member of is a 404), and an assignee who is not a member of the new one is cleared. You must be owner or editor of the task\'s project (a viewer gets 403). With `If-Match`, only when the task still has that `ETag` (else 412, and nothing changes); of two writers holding the same `ETag`, exactly one succeeds.',
      body: { content: { 'application/merge-patch+json': { schema: patchRef }, 'application/json': { schema: patchRef } } },
      response: { 200: taskWithETag, ...problemResponses(400, 403, 404, 409, 412, 413, 414, 415, 422, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const task = await tasks.update(request.auth!.userId, request.params.id, request.body as TaskPatch, versionsMatching(request.headers['if-match']))
    return reply.header('etag', etagOf(task.version)).send(task)
  })

  app.delete('/:id', {
    config: write,
    schema: {
      ...conditionalWrite,
      operationId: 'deleteTask',
      summary: 'Delete a task',
      description: 'Deletes a task of a project you own or edit (a viewer gets 403). With `If-Match`, only when the task still has that `ETag` (else 412).',
      response: { 204: noContent('The task was deleted.'), ...problemResponses(400, 403, 404, 409, 412, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await tasks.delete(request.auth!.userId, request.params.id, versionsMatching(request.headers['if-match']))
    return reply.code(204).send(null)
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(tasksRoutes, { name: 'tasks-routes', encapsulate: true, dependencies: ['repositories', 'authorize'] })

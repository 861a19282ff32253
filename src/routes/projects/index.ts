import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import fp from 'fastify-plugin'
import { problem } from '../../errors.js'
import { etagOf, noneMatchHolds, versionsMatching } from '../../lib/entity-tags.js'
import { createPaging } from '../../lib/paging.js'
import { memberList, projectList } from '../../repositories/projects.js'
import { answerOnce } from '../idempotent-post.js'
import { IdParams, jsonResponse, noContent, problemResponses, withHeaders } from '../../schemas/common.js'
import {
  Member, MemberCreate, MemberListQuery, MemberPage, MemberParams, MemberPatch, Project, ProjectCreate, ProjectListQuery, ProjectPage, ProjectPatch,
} from '../../schemas/projects.js'
import { ConditionalReadHeaders, ConditionalWriteHeaders, IdempotencyHeaders } from '../../schemas/tasks.js'

const read = { auth: { scopes: ['tasks:read' as const] } }
const write = { auth: { scopes: ['tasks:write' as const] } }
const tags = ['projects']
const projectRef = Type.Ref(Project)
const memberRef = Type.Ref(Member)
const projectWithETag = jsonResponse('The project, as you see it.', projectRef, 'ETag')
const memberWithETag = jsonResponse('The member.', memberRef, 'ETag')
/** A duplicate of an idempotent POST still in flight: retry after it. */
const inFlight = withHeaders(problemResponses(409), ['Retry-After'])

const projectsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const projectPaging = createPaging(projectList, { keys: app.keys.keysFor('projectsCursor') })
  const memberPaging = createPaging(memberList, { keys: app.keys.keysFor('membersCursor') })
  const projects = app.projectsRepository

  app.post('', {
    config: write,
    schema: {
      operationId: 'createProject',
      summary: 'Create a project',
      description: 'Creates a project owned by you; share it by adding members. Send an `Idempotency-Key` to make retries safe: see the header\'s description.',
      tags,
      headers: IdempotencyHeaders,
      body: Type.Ref(ProjectCreate),
      response: {
        201: jsonResponse('The project was created (or, with `Idempotent-Replayed: true`, the first response to this key is replayed).', projectRef, 'Location', 'ETag', 'Idempotent-Replayed'),
        ...problemResponses(400, 413, 415, 422, 429, 500, 503),
        ...inFlight,
      },
    },
  }, async (request, reply) => {
    const body = request.body as ProjectCreate
    return await answerOnce(request, reply, async (tx) => {
      const { version, ...project } = await projects.create(request.auth!.userId, body, tx)
      return { status: 201, headers: { location: `/v1/projects/${project.id}`, etag: etagOf(version) }, body: project }
    })
  })

  app.get('', {
    config: read,
    schema: {
      operationId: 'listProjects',
      summary: 'List your projects',
      description: 'The projects you are a member of, your Inbox included, one page at a time: follow `next_cursor` (or the `Link: rel="next"` header) until it is null. A cursor only works with the sort that produced it, and only for you (else 400 `INVALID_CURSOR`).',
      tags,
      querystring: ProjectListQuery,
      response: { 200: jsonResponse('One page of projects.', Type.Ref(ProjectPage), 'Link'), ...problemResponses(400, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const userId = request.auth!.userId
    const list = projectPaging.open(userId, request.query)
    // Each item's version stays behind: the response schema has no place for it.
    return projectPaging.respond(reply, list, request.url, await projects.list(userId, list))
  })

  app.get('/:id', {
    config: read,
    schema: {
      operationId: 'getProject',
      summary: 'Get a project',
      description: 'A project you are a member of (any other is a 404), with its `ETag`. Send that tag in `If-None-Match` to get a 304 without a body while it is unchanged.',
      tags,
      params: IdParams,
      headers: ConditionalReadHeaders,
      response: {
        200: projectWithETag,
        304: noContent('Not modified: the project still matches `If-None-Match`.', 'ETag'),
        ...problemResponses(400, 404, 414, 429, 500, 503),
      },
    },
  }, async (request, reply) => {
    const project = await projects.get(request.auth!.userId, request.params.id)
    if (project === undefined) throw problem('PROJECT_NOT_FOUND', `No project ${request.params.id}.`)
    const etag = etagOf(project.version)
    reply.header('etag', etag)
    // Nothing rather than null: a 304 carries no content headers (RFC 9110, 15.4.5).
    if (!noneMatchHolds(request.headers['if-none-match'], etag)) return reply.code(304).send(undefined as never)
    return project
  })

  app.patch('/:id', {
    config: write,
    schema: {
      operationId: 'updateProject',
      summary: 'Rename a project or change its description',
      description: 'A JSON merge patch (RFC 7396), sent as `application/merge-patch+json` or `application/json`. Owner and editors only (a viewer gets 403); the Inbox keeps its name (409 `INBOX_IMMUTABLE`). With `If-Match`, only when the project still has that `ETag` (else 412, and nothing changes).',
      tags,
      params: IdParams,
      headers: ConditionalWriteHeaders,
      body: { content: { 'application/merge-patch+json': { schema: Type.Ref(ProjectPatch) }, 'application/json': { schema: Type.Ref(ProjectPatch) } } },
      response: { 200: projectWithETag, ...problemResponses(400, 403, 404, 409, 412, 413, 414, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const { version, ...project } = await projects.update(request.auth!.userId, request.params.id, request.body as ProjectPatch, versionsMatching(request.headers['if-match']))
    return reply.header('etag', etagOf(version)).send(project)
  })

  app.delete('/:id', {
    config: write,
    schema: {
      operationId: 'deleteProject',
      summary: 'Delete a project and its tasks',
      description: 'Deletes the project with every task in it, for every member. Owner only (an editor or viewer gets 403); the Inbox cannot be deleted (409 `INBOX_IMMUTABLE`). With `If-Match`, only when the project still has that `ETag` (else 412).',
      tags,
      params: IdParams,
      headers: ConditionalWriteHeaders,
      response: { 204: noContent('The project and its tasks were deleted.'), ...problemResponses(400, 403, 404, 409, 412, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await projects.delete(request.auth!.userId, request.params.id, versionsMatching(request.headers['if-match']))
    return reply.code(204).send(null)
  })

  app.get('/:id/members', {
    config: read,
    schema: {
      operationId: 'listProjectMembers',
      summary: 'List a project\'s members',
      description: 'The members of a project you are a member of (any other is a 404), in the order they joined, one page at a time.',
      tags,
      params: IdParams,
      querystring: MemberListQuery,
      response: { 200: jsonResponse('One page of members.', Type.Ref(MemberPage), 'Link'), ...problemResponses(400, 404, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const userId = request.auth!.userId
    const list = memberPaging.open(`${userId}:${request.params.id}`, request.query)
    return memberPaging.respond(reply, list, request.url, await projects.members(userId, request.params.id, list))
  })

  app.post('/:id/members', {
    config: write,
    schema: {
      operationId: 'addProjectMember',
      summary: 'Share a project',
      description: 'Adds an account to the project as `editor` or `viewer`. Owner only (others get 403); the Inbox cannot be shared (409 `INBOX_IMMUTABLE`). An unknown username is a 422 `UNKNOWN_USERNAME`, an existing member a 409 `ALREADY_MEMBER`. Send an `Idempotency-Key` to make retries safe.',
      tags,
      params: IdParams,
      headers: IdempotencyHeaders,
      body: Type.Ref(MemberCreate),
      response: {
        201: jsonResponse('The member was added (or, with `Idempotent-Replayed: true`, the first response to this key is replayed).', memberRef, 'Location', 'ETag', 'Idempotent-Replayed'),
        ...problemResponses(400, 403, 404, 413, 414, 415, 422, 429, 500, 503),
        ...inFlight,
      },
    },
  }, async (request, reply) => {
    const { id } = request.params
    const body = request.body as MemberCreate
    return await answerOnce(request, reply, async (tx) => {
      const { version, ...member } = await projects.addMember(request.auth!.userId, id, body, tx)
      return { status: 201, headers: { location: `/v1/projects/${id}/members/${member.user_id}`, etag: etagOf(version) }, body: member }
    })
  })

  app.get('/:id/members/:user_id', {
    config: read,
    schema: {
      operationId: 'getProjectMember',
      summary: 'Get a member of a project',
      description: 'One member of a project you are a member of (any other project is a 404), with the `ETag` a role change can be made conditional on.',
      tags,
      params: MemberParams,
      response: { 200: memberWithETag, ...problemResponses(400, 404, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const { version, ...member } = await projects.member(request.auth!.userId, request.params.id, request.params.user_id)
    return reply.header('etag', etagOf(version)).send(member)
  })

  app.patch('/:id/members/:user_id', {
    config: write,
    schema: {
      operationId: 'updateProjectMember',
      summary: 'Change a member\'s role',
      description: 'Owner only (others get 403). `role: owner` hands the project over: that member becomes its owner and you become an editor. Your own role as owner changes only that way (409 `OWNER_REQUIRED`). With `If-Match`, only when the member still has that `ETag` (else 412).',
      tags,
      params: MemberParams,
      headers: ConditionalWriteHeaders,
      body: { content: { 'application/merge-patch+json': { schema: Type.Ref(MemberPatch) }, 'application/json': { schema: Type.Ref(MemberPatch) } } },
      response: { 200: memberWithETag, ...problemResponses(400, 403, 404, 409, 412, 413, 414, 415, 429, 500, 503) },
    },
  }, async (request, reply) => {
    const { id, user_id: memberId } = request.params
    const { version, ...member } = await projects.updateMember(request.auth!.userId, id, memberId, (request.body as MemberPatch).role, versionsMatching(request.headers['if-match']))
    return reply.header('etag', etagOf(version)).send(member)
  })

  app.delete('/:id/members/:user_id', {
    config: write,
    schema: {
      operationId: 'removeProjectMember',
      summary: 'Remove a member, or leave a project',
      description: 'The owner removes anyone else; any member removes themself (leaves), except the owner (409 `OWNER_CANNOT_LEAVE`: hand the project over or delete it). The member loses access at once, and their assignments in the project are cleared. With `If-Match`, only when the member still has that `ETag` (else 412).',
      tags,
      params: MemberParams,
      headers: ConditionalWriteHeaders,
      response: { 204: noContent('The member was removed.'), ...problemResponses(400, 403, 404, 409, 412, 414, 429, 500, 503) },
    },
  }, async (request, reply) => {
    await projects.removeMember(request.auth!.userId, request.params.id, request.params.user_id, versionsMatching(request.headers['if-match']))
    return reply.code(204).send(null)
  })
}

// Encapsulated (its routes are its own); named so that its dependencies are checked when it is registered.
export default fp(projectsRoutes, { name: 'projects-routes', encapsulate: true, dependencies: ['repositories', 'authorize'] })

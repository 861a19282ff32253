import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { type ErrorCode, problem, ProblemError } from '../../errors.js'
import type { Position } from '../../lib/paging.js'
import type { MemberRecord, ProjectRecord } from '../../repositories/projects.js'
import { MemberCreate, MemberPatch, ProjectCreate, ProjectPatch, type ProjectRole } from '../../schemas/projects.js'
import { field, type FieldErrors, formChecker, idFromPath } from '../forms.js'

const projectMessages = {
  name: 'Enter a name of 1 to 100 characters.',
  description: 'Keep the description to 2 000 characters or fewer.',
}
const checkProject = formChecker(ProjectCreate, projectMessages)
const checkProjectPatch = formChecker(ProjectPatch, projectMessages)
const checkMember = formChecker(MemberCreate, {
  username: 'Enter a username: 3 to 32 letters, digits, dots, dashes or underscores.',
  role: 'Choose editor or viewer.',
})
const checkRole = formChecker(MemberPatch, { role: 'Choose owner, editor or viewer.' })

const roleLabels: Record<ProjectRole, string> = { owner: 'Owner', editor: 'Editor', viewer: 'Viewer' }
/** The roles a new member can be given, saying what each may do. */
const grantedRoles = [
  { value: 'editor', label: 'Editor: reads and writes its tasks' },
  { value: 'viewer', label: 'Viewer: only reads' },
]
const roleChoices = [{ value: 'owner', label: 'Owner (hand the project over)' }, { value: 'editor', label: 'Editor' }, { value: 'viewer', label: 'Viewer' }]

/** Every page of a list, for the pages that show all of it (people have tens of projects and members, not thousands). */
async function everyPage<Item> (page: (after: Position | undefined) => Promise<{ items: Item[], next: Position | null }>): Promise<Item[]> {
  const items: Item[] = []
  let after: Position | undefined
  do {
    const { items: more, next } = await page(after)
    items.push(...more)
    after = next ?? undefined
  } while (after !== undefined)
  return items
}

/** The caller's projects, the Inbox first and the others by name: for the project pages and the task pages' choices. */
export async function allProjects (app: FastifyInstance, userId: string): Promise<ProjectRecord[]> {
  const projects = await everyPage((after) => app.projectsRepository.list(userId, { filters: {}, sort: 'name', limit: 100, after }))
  return [...projects.filter((project) => project.is_inbox), ...projects.filter((project) => !project.is_inbox)]
}

/** A project's members, who joined first first; 404 when the caller is not one of them. */
export async function allMembers (app: FastifyInstance, userId: string, projectId: string): Promise<MemberRecord[]> {
  return await everyPage((after) => app.projectsRepository.members(userId, projectId, { filters: {}, sort: 'added_at', limit: 100, after }))
}

/** A project id from the path; a malformed one is a project that does not exist. */
function projectId (request: FastifyRequest): string {
  return idFromPath((request.params as { id: string }).id, 'PROJECT_NOT_FOUND', 'There is no such project.')
}

/** A member's user id from the path; a malformed one is a member that does not exist. */
function memberId (request: FastifyRequest): string {
  return idFromPath((request.params as { userId: string }).userId, 'MEMBER_NOT_FOUND', 'There is no such member.')
}

/**
 * A refusal of the repository that the page answers with its form again: the refusal's status, and
 * its message on the field `fields` names for its code. Anything else goes on to the error page.
 */
function refusal (err: unknown, fields: Partial<Record<ErrorCode, string>>): { status: number, errors: FieldErrors } {
  const name = err instanceof ProblemError ? fields[err.code] : undefined
  if (name === undefined) throw err
  const { statusCode, message } = err as ProblemError
  return { status: statusCode, errors: { [name]: message } }
}

/** The project form's fields as typed; line breaks as the API stores them. */
function projectForm (body: unknown): { name: string, description: string } {
  return { name: field(body, 'name').trim(), description: field(body, 'description').replaceAll('\r\n', '\n') }
}

const descriptionOf = (form: { description: string }) => form.description.trim() === '' ? null : form.description

/**
 * Your projects (create, rename, delete) and their members (share, change roles, hand over, remove,
 * leave): the API's projects and members, as pages and forms. Who may do what is the repository's
 * decision; the pages only leave out the forms the caller's role may not use.
 */
export default async function projectPages (app: FastifyInstance): Promise<void> {
  const projects = app.projectsRepository

  /** The project as the caller sees it; one they are not a member of does not exist. */
  async function projectFor (request: FastifyRequest): Promise<ProjectRecord> {
    const project = await projects.get(request.webUser!.id, projectId(request))
    if (project === undefined) throw problem('PROJECT_NOT_FOUND', 'There is no such project.')
    return project
  }

  async function listPage (request: FastifyRequest, reply: FastifyReply, data: Record<string, unknown>) {
    const items = await allProjects(app, request.webUser!.id)
    return await reply.page('projects/list', { items, roleLabels, form: {}, errors: {}, ...data })
  }

  app.get('', async (request, reply) => await listPage(request, reply, {}))

  app.post('', async (request, reply) => {
    const form = projectForm(request.body)
    const values = { name: form.name, description: descriptionOf(form) }
    const errors = checkProject(values)
    if (Object.keys(errors).length > 0) return await listPage(request, reply.code(400), { form, errors })
    const project = await projects.create(request.webUser!.id, values)
    request.session.flash = `Project “${project.name}” created. Add members to share it.`
    return reply.redirect(`/app/projects/${project.id}`, 303)
  })

  /** The project's page; a `version` in `data` is the one the person's edit started from, sent back with the form. */
  async function projectPage (reply: FastifyReply, project: ProjectRecord, data: Record<string, unknown> = {}) {
    return await reply.page('projects/show', {
      project,
      roleLabels,
      form: { name: project.name, description: project.description ?? '' },
      errors: {},
      version: String(project.version),
      ...data,
    })
  }

  app.get('/:id', async (request, reply) => await projectPage(reply, await projectFor(request)))

  app.post('/:id', async (request, reply) => {
    const current = await projectFor(request)
    const form = projectForm(request.body)
    // The Inbox's form has no name: it keeps its own.
    const patch = { ...(current.is_inbox ? {} : { name: form.name }), description: descriptionOf(form) }
    const version = field(request.body, 'version')
    const errors = checkProjectPatch(patch)
    if (Object.keys(errors).length > 0) return await projectPage(reply.code(400), current, { form, errors, version })
    // Written only over the version the form was opened at, as the task form is.
    try {
      const project = await projects.update(request.webUser!.id, current.id, patch, /^\d{1,9}$/.test(version) ? [Number(version)] : null)
      request.session.flash = `Project “${project.name}” saved.`
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'PRECONDITION_FAILED') {
        return await projectPage(reply.code(409), current, {
          form,
          errors: { form: 'This project was changed elsewhere since you opened it. Your changes are below: save again to keep them, or reload to see the other changes.' },
        })
      }
      throw err
    }
    return reply.redirect(`/app/projects/${current.id}`, 303)
  })

  // Deleting takes every task of the project with it, for every member: a page of its own asks first.
  app.get('/:id/delete', async (request, reply) => {
    const project = await projectFor(request)
    if (project.role !== 'owner') throw problem('ROLE_FORBIDDEN', 'Only the project\'s owner can delete it.')
    if (project.is_inbox) throw problem('INBOX_IMMUTABLE', 'The Inbox cannot be deleted.')
    return await reply.page('projects/delete', { project })
  })

  app.post('/:id/delete', async (request, reply) => {
    const project = await projectFor(request)
    await projects.delete(request.webUser!.id, project.id, null)
    request.session.flash = `Project “${project.name}” and its tasks deleted.`
    return reply.redirect('/app/projects', 303)
  })

  async function membersPage (request: FastifyRequest, reply: FastifyReply, project: ProjectRecord, data: Record<string, unknown> = {}) {
    const members = await allMembers(app, request.webUser!.id, project.id)
    return await reply.page('projects/members', { project, members, roleLabels, grantedRoles, roleChoices, form: { role: 'editor' }, errors: {}, ...data })
  }

  app.get('/:id/members', async (request, reply) => await membersPage(request, reply, await projectFor(request)))

  app.post('/:id/members', async (request, reply) => {
    const project = await projectFor(request)
    const form = { username: field(request.body, 'username').trim(), role: field(request.body, 'role') }
    const errors = checkMember(form)
    if (Object.keys(errors).length > 0) return await membersPage(request, reply.code(400), project, { form, errors })
    try {
      const member = await projects.addMember(request.webUser!.id, project.id, form as MemberCreate)
      request.session.flash = `${member.username} can now ${member.role === 'editor' ? 'read and write' : 'read'} the tasks of “${project.name}”.`
    } catch (err) {
      const { status, errors } = refusal(err, { UNKNOWN_USERNAME: 'username', ALREADY_MEMBER: 'username', INBOX_IMMUTABLE: 'form' })
      return await membersPage(request, reply.code(status), project, { form, errors })
    }
    return reply.redirect(`/app/projects/${project.id}/members`, 303)
  })

  app.post('/:id/members/:userId/role', async (request, reply) => {
    const project = await projectFor(request)
    const id = memberId(request)
    const role = field(request.body, 'role')
    const errors = checkRole({ role })
    if (Object.keys(errors).length > 0) return await membersPage(request, reply.code(400), project, { errors: { form: errors.role! } })
    try {
      const member = await projects.updateMember(request.webUser!.id, project.id, id, role as ProjectRole, null)
      request.session.flash = role === 'owner'
        ? `${member.username} now owns “${project.name}”; you are an editor.`
        : `${member.username} is now ${role === 'editor' ? 'an editor' : 'a viewer'} of “${project.name}”.`
    } catch (err) {
      const { status, errors } = refusal(err, { OWNER_REQUIRED: 'form' })
      return await membersPage(request, reply.code(status), project, { errors })
    }
    return reply.redirect(`/app/projects/${project.id}/members`, 303)
  })

  /** Removes a member (the owner's forms) or the caller (leaving, which anyone but the owner may). */
  async function removal (request: FastifyRequest, reply: FastifyReply, id: string) {
    const userId = request.webUser!.id
    const project = await projectFor(request)
    const member = await projects.member(userId, project.id, id)
    try {
      await projects.removeMember(userId, project.id, id, null)
    } catch (err) {
      const { status, errors } = refusal(err, { OWNER_CANNOT_LEAVE: 'form' })
      return await membersPage(request, reply.code(status), project, { errors })
    }
    if (id === userId) {
      request.session.flash = `You left “${project.name}”.`
      return reply.redirect('/app/projects', 303)
    }
    request.session.flash = `${member.username} no longer has access to “${project.name}”; their tasks there are unassigned.`
    return reply.redirect(`/app/projects/${project.id}/members`, 303)
  }

  app.post('/:id/members/:userId/remove', async (request, reply) => await removal(request, reply, memberId(request)))
  app.post('/:id/leave', async (request, reply) => await removal(request, reply, request.webUser!.id))
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { problem, ProblemError } from '../../errors.js'
import { createPaging } from '../../lib/paging.js'
import type { ProjectRecord } from '../../repositories/projects.js'
import { sorts, TaskListQuery, taskList, type TaskSort } from '../../repositories/task-query.js'
import type { TaskRecord, TaskValues } from '../../repositories/tasks.js'
import { priorities, TaskCreate, type Priority } from '../../schemas/tasks.js'
import { field, type FieldErrors, formChecker, idFromPath, instantFromInput, localPath, tagsFromInput } from '../forms.js'
import { allMembers, allProjects } from './projects.js'

const checkTask = formChecker(TaskCreate, {
  project_id: 'Choose one of your projects.',
  assignee_id: 'Choose a member of the project, or nobody.',
  title: 'Enter a title of 1 to 200 characters.',
  description: 'Keep the description to 10 000 characters or fewer.',
  priority: 'Choose low, medium or high.',
  due_at: 'Enter a date and time (UTC), or leave it empty.',
  tags: 'Enter up to 20 tags of 1 to 50 characters each, separated by commas.',
  completed: 'Tick the box or leave it empty.',
})

const listMessages = {
  project_id: 'Choose one of your projects, or all of them.',
  assignee_id: 'Choose anyone, you or nobody.',
  completed: 'Choose all, open or completed tasks.',
  priority: 'Choose any, low, medium or high.',
  tag: 'Enter up to 20 tags of 1 to 50 characters each, separated by commas.',
  due_before: 'Enter a date, or leave it empty.',
  due_after: 'Enter a date, or leave it empty.',
  q: 'Search for at most 200 characters.',
  sort: 'Choose an order from the list.',
  limit: 'Enter a number of tasks per page from 1 to 100.',
  cursor: 'This page link is out of date: start again from the first page.',
}
const checkListQuery = formChecker(TaskListQuery, listMessages)

const priorityOptions = priorities.map((value) => ({ value, label: `${value[0]!.toUpperCase()}${value.slice(1)}` }))
/** The assignees the list offers to filter by (the API's filter also takes any user id). */
const assigneeOptions = [{ value: '', label: 'Anyone' }, { value: 'me', label: 'Me' }, { value: 'none', label: 'Nobody' }]
const notMember = 'This person is not a member of the task\'s project: choose one of its members, or nobody.'

const DATE = /^\d{4}-\d{2}-\d{2}$/

/** The list filters as the form sends them: every value a string, empty meaning "any". */
const filterNames = ['project_id', 'assignee_id', 'q', 'completed', 'priority', 'tag', 'due_before', 'due_after', 'sort', 'limit'] as const
type FilterForm = Record<typeof filterNames[number], string>

const sortLabels: Record<TaskSort, string> = {
  '-created_at': 'Newest first',
  created_at: 'Oldest first',
  due_at: 'Due soonest',
  '-due_at': 'Due latest',
  '-priority': 'Highest priority',
  priority: 'Lowest priority',
  title: 'Title A–Z',
  '-title': 'Title Z–A',
}

/** The task form's fields as typed, so an invalid form is shown again as the person left it. */
interface TaskForm { project_id: string, assignee_id: string, title: string, description: string, priority: string, due_at: string, tags: string, completed: boolean }

function taskForm (body: unknown): TaskForm {
  return {
    project_id: field(body, 'project_id'),
    assignee_id: field(body, 'assignee_id'),
    title: field(body, 'title'),
    description: field(body, 'description'),
    priority: field(body, 'priority'),
    due_at: field(body, 'due_at'),
    tags: field(body, 'tags'),
    completed: field(body, 'completed') === 'true',
  }
}

function formOf (task: TaskRecord): TaskForm {
  return {
    project_id: task.project_id,
    assignee_id: task.assignee_id ?? '',
    title: task.title,
    description: task.description ?? '',
    priority: task.priority,
    due_at: task.due_at ?? '',
    tags: task.tags.join(', '),
    completed: task.completed,
  }
}

/** The form as the API's TaskCreate: the same rules decide what is valid. */
function valuesOf (form: TaskForm): { values: TaskValues, errors: FieldErrors } {
  const description = form.description.replaceAll('\r\n', '\n')
  // No project chosen is the Inbox for a new task, and the task's own for an edit.
  const values = {
    project_id: form.project_id === '' ? undefined : form.project_id,
    assignee_id: form.assignee_id === '' ? null : form.assignee_id,
    title: form.title.trim(),
    description: description.trim() === '' ? null : description,
    priority: form.priority as Priority,
    due_at: instantFromInput(form.due_at),
    tags: tagsFromInput(form.tags),
    completed: form.completed,
  }
  return { values, errors: checkTask(values) }
}

/** A task id from the path; a malformed one is a task that does not exist. */
function taskId (request: FastifyRequest): string {
  return idFromPath((request.params as { id: string }).id, 'TASK_NOT_FOUND', 'There is no such task.')
}

/** The task list, create, edit, complete and delete: the API's tasks, as pages and forms. */
export default async function taskPages (app: FastifyInstance): Promise<void> {
  // The API's paging of the same list, with cursors of their own (another purpose), so the two never mix.
  const paging = createPaging(taskList, { keys: app.keys.keysFor('pageTasksCursor') })
  const tasks = app.tasksRepository

  /** The usernames of the people the tasks are assigned to, by id; the caller is "you" and needs none. */
  async function assigneeNames (userId: string, items: TaskRecord[]): Promise<Record<string, string>> {
    const ids = new Set(items.map((task) => task.assignee_id).filter((id) => id !== null && id !== userId))
    return Object.fromEntries(await app.usersRepository.usernames([...ids] as string[]))
  }

  app.get('', async (request, reply) => {
    const raw = request.query as Record<string, string | string[] | undefined>
    const form = Object.fromEntries(filterNames.map((name) => [name, field(raw, name).trim()])) as FilterForm
    const cursor = field(raw, 'cursor')
    const tags = tagsFromInput(form.tag)
    // The API's query, built from the form: dates are whole days in UTC.
    const query = {
      ...(form.project_id !== '' ? { project_id: form.project_id } : {}),
      ...(form.assignee_id !== '' ? { assignee_id: form.assignee_id } : {}),
      ...(form.q !== '' ? { q: form.q } : {}),
      ...(form.completed !== '' ? { completed: form.completed === 'true' ? true : form.completed === 'false' ? false : form.completed } : {}),
      ...(form.priority !== '' ? { priority: form.priority } : {}),
      ...(tags.length > 0 ? { tag: tags } : {}),
      ...(form.due_before !== '' ? { due_before: DATE.test(form.due_before) ? `${form.due_before}T00:00:00Z` : form.due_before } : {}),
      ...(form.due_after !== '' ? { due_after: DATE.test(form.due_after) ? `${form.due_after}T23:59:59.999999Z` : form.due_after } : {}),
      sort: form.sort === '' ? taskList.defaultSort : form.sort,
      limit: form.limit === '' ? taskList.defaultLimit : /^\d{1,3}$/.test(form.limit) ? Number(form.limit) : form.limit,
      ...(cursor !== '' ? { cursor } : {}),
    } as Record<string, unknown>
    const userId = request.webUser!.id
    // The switcher's choices, and each listed task's project (its name, and whether the caller may complete it).
    const mine = await allProjects(app, userId)
    const selected = mine.find((project) => project.id === form.project_id.toLowerCase())
    const view = {
      filters: form,
      sorts: sorts.map((value) => ({ value, label: sortLabels[value] })),
      priorityOptions,
      assigneeOptions,
      projectOptions: [{ value: '', label: 'All projects' }, ...mine.map((project) => ({ value: project.id, label: project.name }))],
      projectsById: Object.fromEntries(mine.map((project) => [project.id, project])),
      selected,
      firstPage: cursor !== '' ? listUrl(form) : null,
    }
    const errors = checkListQuery(query)
    // Only what the form offers: another person's project would list nothing, and other assignees are for the API.
    if (form.project_id !== '' && selected === undefined) errors.project_id ??= listMessages.project_id
    if (!assigneeOptions.some((option) => option.value === form.assignee_id)) errors.assignee_id ??= listMessages.assignee_id
    // Opened as the API opens it (the same normalisation and cursor context), unless the cursor
    // itself is malformed; a cursor for another query is reported along with any other error.
    const list = errors.cursor === undefined ? paging.tryOpen(userId, query as TaskListQuery) : undefined
    if (list === undefined && cursor !== '') errors.cursor ??= listMessages.cursor
    if (list === undefined || Object.keys(errors).length > 0) return await reply.code(400).page('tasks/list', { ...view, errors, items: [] })
    const page = await tasks.list(userId, list)
    const nextPage = paging.nextUrl(list, '/app/tasks', formParams(form), page.next)
    return await reply.page('tasks/list', { ...view, errors: {}, items: page.items, assignees: await assigneeNames(userId, page.items), nextPage })
  })

  /**
   * What the task form offers: the projects a task can be put in (those the caller owns or edits),
   * and as assignees the members of the project the form is for: the one chosen on it, else the
   * task's own, else the Inbox. A task of a project the caller only views is shown read-only.
   */
  async function formPage (reply: FastifyReply, userId: string, task: TaskRecord | null, form: Partial<TaskForm>, errors: FieldErrors, version?: string) {
    const mine = await allProjects(app, userId)
    const own = task === null ? undefined : mine.find((project) => project.id === task.project_id)
    const readOnly = own?.role === 'viewer'
    const choices: ProjectRecord[] = readOnly ? [own!] : mine.filter((project) => project.role !== 'viewer')
    const project = choices.find((choice) => choice.id === form.project_id?.toLowerCase()) ?? own ?? mine[0]!
    const members = await allMembers(app, userId, project.id)
    return await reply.page('tasks/form', {
      task,
      form: { ...form, project_id: project.id },
      errors,
      priorityOptions,
      version,
      readOnly,
      project,
      projectOptions: choices.map((choice) => ({ value: choice.id, label: choice.name })),
      assigneeOptions: [{ value: '', label: 'Nobody' }, ...members.map((member) => ({ value: member.user_id, label: member.user_id === userId ? `${member.username} (you)` : member.username }))],
    })
  }

  // A new task goes to the project chosen in the list's switcher (the link carries it), else the Inbox.
  app.get('/new', async (request, reply) =>
    await formPage(reply, request.webUser!.id, null, { priority: 'medium', project_id: field(request.query, 'project_id') }, {}))

  app.post('', async (request, reply) => {
    const userId = request.webUser!.id
    const form = taskForm(request.body)
    const { values, errors } = valuesOf(form)
    if (Object.keys(errors).length > 0) return await formPage(reply.code(400), userId, null, form, errors)
    let created: TaskRecord
    try {
      created = await tasks.create(userId, values)
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'ASSIGNEE_NOT_MEMBER') return await formPage(reply.code(422), userId, null, form, { assignee_id: notMember })
      throw err
    }
    request.session.flash = `Task “${created.title}” created.`
    return reply.redirect('/app/tasks', 303)
  })

  app.get('/:id', async (request, reply) => {
    const task = await tasks.get(request.webUser!.id, taskId(request))
    if (task === undefined) throw problem('TASK_NOT_FOUND', 'There is no such task.')
    return await formPage(reply, request.webUser!.id, task, formOf(task), {}, String(task.version))
  })

  app.post('/:id', async (request, reply) => {
    const userId = request.webUser!.id
    const id = taskId(request)
    const current = await tasks.get(userId, id)
    if (current === undefined) throw problem('TASK_NOT_FOUND', 'There is no such task.')
    const form = taskForm(request.body)
    const { values, errors } = valuesOf(form)
    const version = field(request.body, 'version')
    if (Object.keys(errors).length > 0) return await formPage(reply.code(400), userId, current, form, errors, version)
    // An assignee left as it was is not sent, so a move keeps them when they are a member of the
    // new project and unassigns the task otherwise, as the API's moves do.
    if (values.assignee_id === current.assignee_id) values.assignee_id = undefined
    // Written only over the version the form was opened at: a change made meanwhile (another tab,
    // the API) is not silently overwritten.
    try {
      const task = await tasks.update(userId, id, values, /^\d{1,9}$/.test(version) ? [Number(version)] : null)
      // Unassigned by the move itself, not by the person's choice.
      const unassigned = values.assignee_id === undefined && current.assignee_id !== null && task.assignee_id === null
      request.session.flash = task.project_id === current.project_id ? `Task “${task.title}” saved.` : await movedMessage(userId, task, unassigned)
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'PRECONDITION_FAILED') {
        return await formPage(reply.code(409), userId, current, form, {
          form: 'This task was changed elsewhere since you opened it. Your changes are below: save again to keep them, or reload to see the other changes.',
        }, String(current.version))
      }
      if (err instanceof ProblemError && err.code === 'ASSIGNEE_NOT_MEMBER') return await formPage(reply.code(422), userId, current, form, { assignee_id: notMember }, version)
      throw err
    }
    return reply.redirect('/app/tasks', 303)
  })

  /** The flash after a move: where the task went, and whether it lost its assignee on the way. */
  async function movedMessage (userId: string, task: TaskRecord, unassigned: boolean): Promise<string> {
    const project = await app.projectsRepository.get(userId, task.project_id)
    return `Task “${task.title}” saved and moved to “${project?.name ?? 'another project'}”.${unassigned ? ' It is no longer assigned: its assignee is not a member there.' : ''}`
  }

  app.post('/:id/complete', async (request, reply) => {
    const completed = field(request.body, 'completed') === 'true'
    const task = await tasks.update(request.webUser!.id, taskId(request), { completed }, null)
    request.session.flash = completed ? `Task “${task.title}” completed.` : `Task “${task.title}” reopened.`
    return reply.redirect(localPath(field(request.body, 'return_to'), '/app/tasks'), 303)
  })

  app.post('/:id/delete', async (request, reply) => {
    const userId = request.webUser!.id
    const id = taskId(request)
    const task = await tasks.get(userId, id)
    if (task === undefined) throw problem('TASK_NOT_FOUND', 'There is no such task.')
    await tasks.delete(userId, id, null)
    request.session.flash = `Task “${task.title}” deleted.`
    return reply.redirect('/app/tasks', 303)
  })
}

/** The list filters of the form, the empty ones left out. */
function formParams (form: FilterForm): URLSearchParams {
  const params = new URLSearchParams()
  for (const name of filterNames) if (form[name] !== '') params.set(name, form[name])
  return params
}

/** The first list page with these filters. */
function listUrl (form: FilterForm): string {
  const search = formParams(form).toString()
  return search === '' ? '/app/tasks' : `/app/tasks?${search}`
}

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { problem, ProblemError } from '../../errors.js'
import { createPaging } from '../../lib/paging.js'
import { sorts, TaskListQuery, taskList, type TaskSort } from '../../repositories/task-query.js'
import type { TaskRecord, TaskValues } from '../../repositories/tasks.js'
import { priorities, TaskCreate, type Priority } from '../../schemas/tasks.js'
import { field, type FieldErrors, formChecker, instantFromInput, localPath, tagsFromInput } from '../forms.js'

const checkTask = formChecker(TaskCreate, {
  title: 'Enter a title of 1 to 200 characters.',
  description: 'Keep the description to 10 000 characters or fewer.',
  priority: 'Choose low, medium or high.',
  due_at: 'Enter a date and time (UTC), or leave it empty.',
  tags: 'Enter up to 20 tags of 1 to 50 characters each, separated by commas.',
  completed: 'Tick the box or leave it empty.',
})

const checkListQuery = formChecker(TaskListQuery, {
  completed: 'Choose all, open or completed tasks.',
  priority: 'Choose any, low, medium or high.',
  tag: 'Enter up to 20 tags of 1 to 50 characters each, separated by commas.',
  due_before: 'Enter a date, or leave it empty.',
  due_after: 'Enter a date, or leave it empty.',
  q: 'Search for at most 200 characters.',
  sort: 'Choose an order from the list.',
  limit: 'Enter a number of tasks per page from 1 to 100.',
  cursor: 'This page link is out of date: start again from the first page.',
})

const priorityOptions = priorities.map((value) => ({ value, label: `${value[0]!.toUpperCase()}${value.slice(1)}` }))

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const DATE = /^\d{4}-\d{2}-\d{2}$/

/** The list filters as the form sends them: every value a string, empty meaning "any". */
const filterNames = ['q', 'completed', 'priority', 'tag', 'due_before', 'due_after', 'sort', 'limit'] as const
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
interface TaskForm { title: string, description: string, priority: string, due_at: string, tags: string, completed: boolean }

function taskForm (body: unknown): TaskForm {
  return {
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
  // The form does not move or assign tasks yet: an edit keeps both, a new task goes to the Inbox.
  const values = {
    project_id: undefined,
    assignee_id: undefined,
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
  const { id } = request.params as { id: string }
  if (!UUID.test(id)) throw problem('TASK_NOT_FOUND', 'There is no such task.')
  return id.toLowerCase()
}

/** The task list, create, edit, complete and delete: the API's tasks, as pages and forms. */
export default async function taskPages (app: FastifyInstance): Promise<void> {
  // The API's paging of the same list, with cursors of their own (another purpose), so the two never mix.
  const paging = createPaging(taskList, { keys: app.keys.keysFor('pageTasksCursor'), path: '/app/tasks' })
  const tasks = app.tasksRepository

  app.get('', async (request, reply) => {
    const raw = request.query as Record<string, string | string[] | undefined>
    const form = Object.fromEntries(filterNames.map((name) => [name, field(raw, name).trim()])) as FilterForm
    const cursor = field(raw, 'cursor')
    const tags = tagsFromInput(form.tag)
    // The API's query, built from the form: dates are whole days in UTC.
    const query = {
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
    const view = { filters: form, sorts: sorts.map((value) => ({ value, label: sortLabels[value] })), priorityOptions, firstPage: cursor !== '' ? listUrl(form) : null }
    const errors = checkListQuery(query)
    const userId = request.webUser!.id
    // Opened as the API opens it (the same normalisation and cursor context), unless the cursor
    // itself is malformed; a cursor for another query is reported along with any other error.
    const list = errors.cursor === undefined ? paging.tryOpen(userId, query as TaskListQuery) : undefined
    if (list === undefined && cursor !== '') errors.cursor ??= 'This page link is out of date: start again from the first page.'
    if (list === undefined || Object.keys(errors).length > 0) return await reply.code(400).page('tasks/list', { ...view, errors, items: [] })
    const page = await tasks.list(userId, list)
    const nextPage = paging.nextUrl(list, formParams(form), page.next)
    return await reply.page('tasks/list', { ...view, errors: {}, items: page.items, nextPage, here: request.url })
  })

  app.get('/new', async (_request, reply) =>
    await reply.page('tasks/form', { task: null, form: { priority: 'medium' }, errors: {}, priorityOptions }))

  app.post('', async (request, reply) => {
    const form = taskForm(request.body)
    const { values, errors } = valuesOf(form)
    if (Object.keys(errors).length > 0) return await reply.code(400).page('tasks/form', { task: null, form, errors, priorityOptions })
    const created = await tasks.create(request.webUser!.id, values)
    request.session.flash = `Task “${created.title}” created.`
    return reply.redirect('/app/tasks', 303)
  })

  /** `version` is the one the person's edit started from, sent back with the form. */
  async function editForm (reply: FastifyReply, task: TaskRecord, form: TaskForm, errors: FieldErrors, version = String(task.version)) {
    return await reply.page('tasks/form', { task, form, errors, priorityOptions, version })
  }

  app.get('/:id', async (request, reply) => {
    const task = await tasks.get(request.webUser!.id, taskId(request))
    if (task === undefined) throw problem('TASK_NOT_FOUND', 'There is no such task.')
    return await editForm(reply, task, formOf(task), {})
  })

  app.post('/:id', async (request, reply) => {
    const userId = request.webUser!.id
    const id = taskId(request)
    const current = await tasks.get(userId, id)
    if (current === undefined) throw problem('TASK_NOT_FOUND', 'There is no such task.')
    const form = taskForm(request.body)
    const { values, errors } = valuesOf(form)
    const version = field(request.body, 'version')
    if (Object.keys(errors).length > 0) return await editForm(reply.code(400), current, form, errors, version)
    // Written only over the version the form was opened at: a change made meanwhile (another tab,
    // the API) is not silently overwritten.
    try {
      const task = await tasks.update(userId, id, values, /^\d{1,9}$/.test(version) ? [Number(version)] : null)
      request.session.flash = `Task “${task.title}” saved.`
    } catch (err) {
      if (err instanceof ProblemError && err.code === 'PRECONDITION_FAILED') {
        return await editForm(reply.code(409), current, form, {
          form: 'This task was changed elsewhere since you opened it. Your changes are below: save again to keep them, or reload to see the other changes.',
        })
      }
      throw err
    }
    return reply.redirect('/app/tasks', 303)
  })

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

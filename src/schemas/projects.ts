import { type Static, Type } from '@sinclair/typebox'
import { Nullable, Page, Uuid } from './common.js'
import { StringEnum } from './tasks.js'
import { DisplayName, Username } from './users.js'

export const projectRoles = ['owner', 'editor', 'viewer'] as const
export const ProjectRole = StringEnum(projectRoles, {
  title: 'ProjectRole',
  description: 'A member\'s role in a project. `owner` (one per project) does everything, including sharing and deleting it; `editor` reads and writes its tasks and renames it; `viewer` only reads.',
})
export type ProjectRole = Static<typeof ProjectRole>

/** The roles a member can be given when added: ownership is handed over with a PATCH. */
const GrantedRole = StringEnum(['editor', 'viewer'] as const, {
  description: 'The new member\'s role: `editor` or `viewer` (ownership is handed over by changing an existing member\'s role to `owner`).',
  example: 'editor',
})

const ProjectTimestamp = Type.String({ format: 'date-time', description: 'RFC 3339 timestamp in UTC, with microseconds.', example: '2026-11-23T09:30:00.123456Z' })

export const ProjectName = Type.String({
  minLength: 1,
  maxLength: 100,
  pattern: '\\S',
  description: '1 to 100 characters, not only white space. Names need not be unique.',
  example: 'Kitchen renovation',
})
const ProjectDescription = Nullable(Type.String({ maxLength: 2000 }), {
  description: 'Free text, at most 2 000 characters, or null.',
  example: 'Everything for the new kitchen, by the end of March.',
})

const projectExample = {
  id: '0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e',
  name: 'Kitchen renovation',
  description: 'Everything for the new kitchen, by the end of March.',
  is_inbox: false,
  owner_id: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  role: 'owner',
  member_count: 2,
  created_at: '2026-11-23T09:30:00.123456Z',
  updated_at: '2026-11-23T09:30:00.123456Z',
}

export const Project = Type.Object({
  id: Uuid,
  name: ProjectName,
  description: ProjectDescription,
  is_inbox: Type.Boolean({ description: 'Your Inbox: made with your account, where tasks go when no project is given. It cannot be renamed, shared or deleted.', example: false }),
  owner_id: Type.String({ ...Uuid, description: 'The one member whose role is `owner`.' }),
  role: ProjectRole,
  member_count: Type.Integer({ minimum: 1, description: 'How many members the project has, the owner included.', example: 2 }),
  created_at: ProjectTimestamp,
  updated_at: Type.String({ ...ProjectTimestamp, description: 'Moves forward when the project is renamed, its description changes, or its membership does.' }),
}, {
  $id: 'Project',
  title: 'Project',
  description: 'A project: a list of tasks shared by its members. `role` is yours. Its `ETag` and `updated_at` change when it is renamed, its description changes, or its membership does (a member added, removed or given another role, a handover of ownership included), since each of these changes the project as its members see it.',
  example: projectExample,
})
export type Project = Static<typeof Project>

export const ProjectCreate = Type.Object({
  name: ProjectName,
  description: Type.Optional(ProjectDescription),
}, {
  $id: 'ProjectCreate',
  title: 'ProjectCreate',
  additionalProperties: false,
  description: 'A new project, owned by you. Unknown fields are refused.',
  example: { name: 'Kitchen renovation', description: 'Everything for the new kitchen, by the end of March.' },
})
export type ProjectCreate = Static<typeof ProjectCreate>

export const ProjectPatch = Type.Object({
  name: Type.Optional(ProjectName),
  description: Type.Optional(ProjectDescription),
}, {
  $id: 'ProjectPatch',
  title: 'ProjectPatch',
  additionalProperties: false,
  description: 'A JSON merge patch (RFC 7396) of a project: fields present are set, absent ones kept; `null` clears the description. The Inbox keeps its name (409 `INBOX_IMMUTABLE`). Unknown fields are refused.',
  example: { name: 'Kitchen and bathroom' },
})
export type ProjectPatch = Static<typeof ProjectPatch>

const cursorExample = 'WyJLaXRjaGVuIiwiMGI2ZjJjMWUtM2Q0YS00YjVjLThkOWUtMWYyYTNiNGM1ZDZlIl0.3q2-7wXxVYk0a1bC2dE3fA'

export const ProjectPage = Page(Project, {
  items: { description: 'At most `limit` projects, in the requested order.' },
  nextCursor: { description: 'Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.', example: cursorExample },
  $id: 'ProjectPage',
  title: 'ProjectPage',
  description: 'One page of the projects you are a member of.',
  example: { items: [projectExample], next_cursor: null },
})

export const projectSorts = ['name', '-name', 'created_at', '-created_at'] as const
export type ProjectSort = typeof projectSorts[number]

export const ProjectListQuery = Type.Object({
  sort: Type.Optional(StringEnum(projectSorts, {
    default: 'name',
    description: 'Sort field; a leading `-` sorts descending. Ties are broken by `id` in the same direction. `name` sorts by Unicode code point (case-sensitive, `Z` before `a`).',
  })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1 to 100.', example: 20 })),
  cursor: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 2048,
    pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
    description: 'Opaque `next_cursor` of the previous page. It only works for you and with the same `sort`: otherwise, or altered, it is a 400 `INVALID_CURSOR`.',
  })),
}, { additionalProperties: false })
export type ProjectListQuery = Static<typeof ProjectListQuery>

const memberExample = {
  user_id: '7c9e6679-7425-40de-944b-e07fc1f90ae7',
  username: 'bob',
  display_name: 'Bob Builder',
  role: 'editor',
  added_at: '2026-11-24T10:00:00.000000Z',
}

export const Member = Type.Object({
  user_id: Uuid,
  username: Username,
  display_name: Nullable(DisplayName),
  role: ProjectRole,
  added_at: Type.String({ ...ProjectTimestamp, description: 'When they joined the project.' }),
}, {
  $id: 'Member',
  title: 'Member',
  description: 'A member of a project and their role. Its `ETag` changes when the role does.',
  example: memberExample,
})
export type Member = Static<typeof Member>

export const MemberCreate = Type.Object({
  username: Type.String({ ...Username, description: 'The username of the account to add (any case).' }),
  role: GrantedRole,
}, {
  $id: 'MemberCreate',
  title: 'MemberCreate',
  additionalProperties: false,
  description: 'Shares the project with an account. An unknown username is a 422 `UNKNOWN_USERNAME`; someone already a member, a 409 `ALREADY_MEMBER`. Unknown fields are refused.',
  example: { username: 'bob', role: 'editor' },
})
export type MemberCreate = Static<typeof MemberCreate>

export const MemberPatch = Type.Object({
  role: ProjectRole,
}, {
  $id: 'MemberPatch',
  title: 'MemberPatch',
  additionalProperties: false,
  description: 'A member\'s new role. `owner` hands the project over: that member becomes its owner and you become an editor. The owner\'s own role changes only that way (409 `OWNER_REQUIRED` otherwise). Unknown fields are refused.',
  example: { role: 'viewer' },
})
export type MemberPatch = Static<typeof MemberPatch>

export const MemberPage = Page(Member, {
  items: { description: 'At most `limit` members, in the order they joined.' },
  nextCursor: { description: 'Pass as `cursor` to get the next page (also sent in the `Link` header); null on the last page.', example: cursorExample },
  $id: 'MemberPage',
  title: 'MemberPage',
  description: 'One page of a project\'s members, in the order they joined (the owner who made it first).',
  example: { items: [memberExample], next_cursor: null },
})

export const MemberListQuery = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Page size, 1 to 100.', example: 20 })),
  cursor: Type.Optional(Type.String({
    minLength: 1,
    maxLength: 2048,
    pattern: '^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$',
    description: 'Opaque `next_cursor` of the previous page; only for you and this project (else 400 `INVALID_CURSOR`).',
  })),
}, { additionalProperties: false })
export type MemberListQuery = Static<typeof MemberListQuery>

export const MemberParams = Type.Object({
  id: Type.String({ format: 'uuid', description: 'The project id (a UUID). A malformed id is a 400.', example: '0b6f2c1e-3d4a-4b5c-8d9e-1f2a3b4c5d6e' }),
  user_id: Type.String({ format: 'uuid', description: 'The member\'s user id (a UUID). A malformed id is a 400.', example: '7c9e6679-7425-40de-944b-e07fc1f90ae7' }),
}, { additionalProperties: false })
export type MemberParams = Static<typeof MemberParams>

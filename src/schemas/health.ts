import { type Static, Type } from '@sinclair/typebox'

export const Health = Type.Object({
  status: Type.Literal('ok'),
  checks: Type.Optional(Type.Object({
    database: Type.Literal('ok'),
    migrations: Type.Literal('ok'),
    shutting_down: Type.Literal(false),
  })),
}, { $id: 'Health', title: 'Health' })
export type Health = Static<typeof Health>

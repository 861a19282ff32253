import { type Static, Type } from '@sinclair/typebox'

export const Health = Type.Object({
  status: Type.Literal('ok', { example: 'ok' }),
  checks: Type.Optional(Type.Object({
    database: Type.Literal('ok'),
    migrations: Type.Literal('ok'),
    shutting_down: Type.Literal(false),
  })),
}, {
  $id: 'Health',
  title: 'Health',
  example: { status: 'ok', checks: { database: 'ok', migrations: 'ok', shutting_down: false } },
})
export type Health = Static<typeof Health>

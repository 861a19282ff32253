import type { FastifyInstance } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { Ajv, type Options } from 'ajv'
import { addFormats } from '../../lib/formats.js'

/**
 * Two validators instead of Fastify's one, because its defaults are unsafe for bodies: it drops
 * unknown fields (`removeAdditional`) and coerces `123` into `"123"`. Bodies get neither; query,
 * path and header parameters arrive as strings and so are still coerced. The schemas are TypeBox's
 * output, checked in CI as part of the OpenAPI document, so they are not checked again against the
 * JSON Schema meta-schema at every start (its cost is in docs/decisions/0015-start-up-schema-compilation.md).
 */
export function installValidators (app: FastifyInstance, schemas: TSchema[]): void {
  const common: Options = { allErrors: true, useDefaults: true, strict: false, removeAdditional: false, validateSchema: false }
  const body = new Ajv({ ...common, coerceTypes: false })
  const params = new Ajv({ ...common, coerceTypes: 'array' })
  for (const ajv of [body, params]) {
    addFormats(ajv)
    for (const schema of schemas) ajv.addSchema(schema)
  }
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : params).compile(schema))
}

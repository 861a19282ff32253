import type { FastifyInstance } from 'fastify'
import type { TSchema } from '@sinclair/typebox'
import { Ajv, type Options, type ValidateFunction } from 'ajv'
import { addFormats } from '../../lib/formats.js'

interface Validators { body: Ajv, params: Ajv, built: Map<string, ValidateFunction> }

/**
 * Per set of shared schemas, for the whole process: an app built again in the same process (the
 * tests build hundreds, one per test) reuses what the first one compiled. A validator depends only
 * on its schema, the shared schemas and these options.
 */
const validatorsFor = new WeakMap<TSchema[], Validators>()

function createValidators (schemas: TSchema[]): Validators {
  const common: Options = { allErrors: true, useDefaults: true, strict: false, removeAdditional: false, validateSchema: false }
  const body = new Ajv({ ...common, coerceTypes: false })
  const params = new Ajv({ ...common, coerceTypes: 'array' })
  for (const ajv of [body, params]) {
    addFormats(ajv)
    for (const schema of schemas) ajv.addSchema(schema)
  }
  return { body, params, built: new Map() }
}

/**
 * Two validators instead of Fastify's one, because its defaults are unsafe for bodies: it drops
 * unknown fields (`removeAdditional`) and coerces `123` into `"123"`. Bodies get neither; query,
 * path and header parameters arrive as strings and so are still coerced. The schemas are TypeBox's
 * output, checked in CI as part of the OpenAPI document, so they are not checked again against the
 * JSON Schema meta-schema at every start (its cost is in docs/decisions/0015-start-up-schema-compilation.md).
 */
export function installValidators (app: FastifyInstance, schemas: TSchema[]): void {
  const validators = validatorsFor.get(schemas) ?? createValidators(schemas)
  validatorsFor.set(schemas, validators)
  const { body, params, built } = validators
  app.setValidatorCompiler(({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? body : params
    // By content: Fastify hands some parts (headers) over as copies made for each app.
    const key = `${ajv === body ? 'b' : 'p'}${JSON.stringify(schema)}`
    let validate = built.get(key)
    if (validate === undefined) {
      validate = ajv.compile(schema)
      built.set(key, validate)
    }
    return validate
  })
}

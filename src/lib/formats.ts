import type { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'

// ajv-formats is CommonJS; its default export arrives wrapped under ESM.
const addAjvFormats = addFormatsModule as unknown as typeof addFormatsModule.default

/**
 * The string formats of the schemas: ajv-formats', but `uuid` is the bare form of RFC 9562 only.
 * ajv-formats also accepts a `urn:uuid:` prefix, which PostgreSQL's uuid type refuses, so such an
 * id would pass validation and fail in the database instead of answering 400.
 */
export function addFormats (ajv: Ajv): void {
  addAjvFormats(ajv)
  ajv.addFormat('uuid', /^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$/i)
}

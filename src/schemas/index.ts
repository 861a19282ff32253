import type { TSchema } from '@sinclair/typebox'
import { Problem, ValidationIssue } from './common.js'
import { LoginRequest, SignupRequest, TokenPair } from './auth.js'
import { Health } from './health.js'
import { User } from './users.js'
import { Task, TaskCreate, TaskPage, TaskPatch, TaskReplace } from './tasks.js'

/**
 * Every named schema: registered once with Fastify (validation, serialization) and emitted as
 * `components.schemas` in the OpenAPI document, so generated SDKs get named types.
 */
export const sharedSchemas: TSchema[] = [
  ValidationIssue, Problem, Health, User, SignupRequest, LoginRequest, TokenPair,
  Task, TaskCreate, TaskReplace, TaskPatch, TaskPage,
]

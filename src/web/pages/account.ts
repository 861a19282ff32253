import type { FastifyInstance } from 'fastify'
import { Type } from '@sinclair/typebox'
import { hashPassword, verifyPassword } from '../../lib/passwords.js'
import { securityEvent } from '../../lib/security-events.js'
import { Password } from '../../schemas/users.js'
import { field, type FieldErrors, formChecker } from '../forms.js'
import { SESSION_COOKIE } from '../../repositories/sessions.js'

const checkNewPassword = formChecker(Type.Object({ new_password: Password }), {
  new_password: 'Choose a password of 8 to 128 characters.',
})

/** Your account: change the password, which ends every web session and API login of yours. */
export default async function accountPages (app: FastifyInstance): Promise<void> {
  app.get('', async (_request, reply) => await reply.page('account', { errors: {} }))

  app.post('/password', async (request, reply) => {
    const user = request.webUser!
    const current = field(request.body, 'current_password')
    const next = field(request.body, 'new_password')
    const errors: FieldErrors = checkNewPassword({ new_password: next })
    if (errors.new_password === undefined && next.toLowerCase() === user.username.toLowerCase()) {
      errors.new_password = 'Choose a password that is not your username.'
    }
    if (current.length > 128 || !(await verifyPassword(user.passwordHash, current)).ok) {
      errors.current_password = 'This is not your current password.'
    }
    if (Object.keys(errors).length > 0) return await reply.code(400).page('account', { errors })
    await app.usersRepository.changePassword(user.id, await hashPassword(next))
    app.forgetAuthState(user.id)
    securityEvent(request.log, 'auth.password_changed', { userId: user.id, reason: 'web' })
    await request.session.destroy()
    return reply.clearCookie(SESSION_COOKIE, { path: '/app' }).redirect('/app/login?reason=password_changed', 303)
  })
}

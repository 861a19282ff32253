/**
 * The error catalogue: every problem the API can answer with. A code is never reused for another
 * meaning; clients switch on `code`, humans read `title` and `detail`.
 * @see https://www.rfc-editor.org/rfc/rfc9457
 */
const catalogue = {
  VALIDATION_FAILED: [400, 'Validation failed'],
  MALFORMED_JSON: [400, 'Malformed JSON body'],
  BAD_REQUEST: [400, 'Bad request'],
  INVALID_CURSOR: [400, 'Invalid cursor'],
  UNAUTHENTICATED: [401, 'Authentication required'],
  INVALID_TOKEN: [401, 'Invalid or expired token'],
  INVALID_CREDENTIALS: [401, 'Invalid username or password'],
  INVALID_API_KEY: [401, 'Invalid API key'],
  INVALID_REFRESH_TOKEN: [401, 'Invalid, expired or revoked refresh token'],
  AMBIGUOUS_CREDENTIALS: [401, 'More than one kind of credentials sent'],
  MFA_REQUIRED: [401, 'Two-factor authentication required'],
  INVALID_MFA_TOKEN: [401, 'Invalid, expired or spent mfa_token'],
  INVALID_MFA_CODE: [401, 'Wrong two-factor code or recovery code'],
  INVALID_GRANT: [400, 'Invalid grant'],
  UNSUPPORTED_GRANT_TYPE: [400, 'Unsupported grant type'],
  INVALID_SCOPE: [400, 'Invalid scope'],
  INVALID_EMAIL_TOKEN: [400, 'Invalid, expired or used email verification token'],
  INVALID_RESET_TOKEN: [400, 'Invalid, expired or used password reset token'],
  NO_EMAIL: [400, 'The account has no email address'],
  REDIRECT_URI_NOT_ALLOWED: [400, 'The redirect_uri is not one of the allowed ones'],
  INVALID_OIDC_STATE: [400, 'Unknown, expired or used single sign-on state'],
  INSUFFICIENT_SCOPE: [403, 'Insufficient scope'],
  FORBIDDEN: [403, 'Forbidden'],
  API_KEY_NOT_ALLOWED: [403, 'API keys cannot be used for this operation'],
  WRONG_CURRENT_PASSWORD: [403, 'The current password is wrong'],
  WRONG_MFA_CODE: [403, 'The two-factor code is wrong'],
  ROLE_FORBIDDEN: [403, 'Your role in this project does not allow this'],
  NOT_FOUND: [404, 'Not found'],
  TASK_NOT_FOUND: [404, 'Task not found'],
  USER_NOT_FOUND: [404, 'User not found'],
  API_KEY_NOT_FOUND: [404, 'API key not found'],
  PROJECT_NOT_FOUND: [404, 'Project not found'],
  MEMBER_NOT_FOUND: [404, 'Member not found'],
  WEBHOOK_NOT_FOUND: [404, 'Webhook not found'],
  DELIVERY_NOT_FOUND: [404, 'Delivery not found'],
  OIDC_NOT_CONFIGURED: [404, 'Single sign-on is not configured'],
  IDENTITY_NOT_FOUND: [404, 'Linked identity not found'],
  METHOD_NOT_ALLOWED: [405, 'Method not allowed'],
  NOT_ACCEPTABLE: [406, 'Not acceptable'],
  REQUEST_TIMEOUT: [408, 'Request timeout'],
  USERNAME_TAKEN: [409, 'Username already taken'],
  IDEMPOTENCY_IN_FLIGHT: [409, 'Request with this Idempotency-Key is still in progress'],
  LAST_ADMIN: [409, 'The last active admin cannot be demoted, disabled or deleted'],
  INBOX_IMMUTABLE: [409, 'The Inbox cannot be renamed, shared or deleted'],
  ALREADY_MEMBER: [409, 'Already a member of this project'],
  OWNER_CANNOT_LEAVE: [409, 'The owner cannot leave the project'],
  OWNER_REQUIRED: [409, 'A project keeps exactly one owner'],
  WRITE_CONFLICT: [409, 'Changed by someone else while you wrote'],
  MFA_ALREADY_ENABLED: [409, 'Two-factor authentication is already on'],
  MFA_NOT_ENROLLING: [409, 'No two-factor enrolment is under way'],
  MFA_NOT_ENABLED: [409, 'Two-factor authentication is off'],
  LAST_WAY_IN: [409, 'The account\'s only way to sign in cannot be removed'],
  WEBHOOK_DISABLED: [409, 'The webhook is turned off'],
  SYNC_EXPIRED: [410, 'The feed no longer reaches back this far'],
  PRECONDITION_FAILED: [412, 'Precondition failed'],
  PAYLOAD_TOO_LARGE: [413, 'Request body too large'],
  URI_TOO_LONG: [414, 'URI too long'],
  UNSUPPORTED_MEDIA_TYPE: [415, 'Unsupported media type'],
  IDEMPOTENCY_KEY_REUSED: [422, 'Idempotency-Key reused with a different request'],
  UNKNOWN_USERNAME: [422, 'No account with this username'],
  ASSIGNEE_NOT_MEMBER: [422, 'The assignee is not a member of the project'],
  WEBHOOK_URL_REFUSED: [422, 'The webhook URL is refused'],
  RATE_LIMITED: [429, 'Too many requests'],
  HEADERS_TOO_LARGE: [431, 'Request header fields too large'],
  INTERNAL: [500, 'Internal server error'],
  NOT_IMPLEMENTED: [501, 'Method not implemented'],
  SERVICE_UNAVAILABLE: [503, 'Service unavailable'],
  MAIL_UNAVAILABLE: [503, 'Mail cannot be sent'],
  OIDC_PROVIDER_UNAVAILABLE: [503, 'The OpenID provider cannot be reached'],
} as const satisfies Record<string, readonly [number, string]>

export type ErrorCode = keyof typeof catalogue

/** Every code of the catalogue, in its order. */
export const errorCodes = Object.keys(catalogue) as ErrorCode[]

export function statusOf (code: ErrorCode): number {
  return catalogue[code][0]
}

export function titleOf (code: ErrorCode): string {
  return catalogue[code][1]
}

/** Extra members a problem can carry besides the catalogue's. */
export interface ProblemExtras {
  detail?: string
  errors?: Array<{ in?: string, path: string, message: string }>
  headers?: Record<string, string>
  /** RFC 6749 `error` for the OAuth2 token endpoint. */
  error?: string
  /** RFC 6749 `error_description`, where the token endpoint says more than `error` does. */
  error_description?: string
  /** With MFA_REQUIRED: the token of the login's second step. */
  mfa_token?: string
}

/** An error from the catalogue, with the request-specific detail it should show. */
export class ProblemError extends Error {
  readonly statusCode: number
  constructor (readonly code: ErrorCode, readonly extras: ProblemExtras = {}) {
    super(extras.detail ?? titleOf(code))
    this.name = 'ProblemError'
    this.statusCode = statusOf(code)
  }
}

export function problem (code: ErrorCode, detail?: string, extras: Omit<ProblemExtras, 'detail'> = {}): ProblemError {
  return new ProblemError(code, detail === undefined ? extras : { ...extras, detail })
}

export function problemType (code: ErrorCode): string {
  return `urn:tasks-api:problem:${code.toLowerCase().replaceAll('_', '-')}`
}

/** The API's version in the OpenAPI document; bump the major on a breaking change. */
export const apiVersion = '1.0.0'

export const apiDescription = [
  'A multi-user Tasks API. Every non-2xx response is RFC 9457 `application/problem+json` with a stable',
  '`code`; every response carries `X-Request-Id`.',
  '',
  'Authenticate with a bearer access token (sign up, then `POST /v1/auth/login`), through the',
  '**Authorize** button (OAuth2 password flow), or with an `X-API-Key` for integrations.',
].join('\n')

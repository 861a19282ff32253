import type { Agent, fetch as undiciFetch } from 'undici'

/** A client certificate to present on every TLS connection, for API keys bound to one. */
export interface ClientCertificate {
  /** The certificate (PEM), with its chain if any. */
  cert: string | Buffer
  /** Its private key (PEM). */
  key: string | Buffer
  /** CA certificates (PEM) to trust for the server besides the system's, e.g. a private CA. */
  ca?: string | Buffer
}

/**
 * A fetch that presents `certificate`, through an undici Agent and undici's own fetch (a runtime's
 * built-in fetch accepts only the Agent of its own bundled undici). undici is loaded on first use,
 * so the SDK still runs where it is absent (browsers) as long as this option is not used.
 */
export function certificateFetch (certificate: ClientCertificate): (request: Request) => Promise<Response> {
  let loading: Promise<{ fetch: typeof undiciFetch, dispatcher: Agent }> | undefined
  return async (request) => {
    loading ??= import('undici').then(({ Agent, fetch }) => ({ fetch, dispatcher: new Agent({ connect: { cert: certificate.cert, key: certificate.key, ...(certificate.ca === undefined ? {} : { ca: certificate.ca }) } }) }))
    const { fetch, dispatcher } = await loading
    // undici's fetch takes its own Request class only: the request goes over as its parts.
    const headers: Record<string, string> = {}
    request.headers.forEach((value, name) => { headers[name] = value })
    const init = { method: request.method, headers, body: request.body, duplex: 'half', signal: request.signal, dispatcher }
    const response = await fetch(request.url, init as unknown as Parameters<typeof undiciFetch>[1])
    return response as unknown as Response
  }
}

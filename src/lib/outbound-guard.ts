import { lookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from 'node:dns'
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

/**
 * The guard on the service's outbound requests to URLs its users give (webhooks): only public
 * unicast addresses, so that a URL cannot reach the service's own network, its loopback or a cloud
 * metadata endpoint. The check is made on every address a name resolves to, and the connection goes
 * to the address that was checked (`guardedLookup`), so DNS cannot answer differently in between.
 */
export class RefusedDestination extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'RefusedDestination'
  }
}

/** Whether `address` is public unicast: not loopback, private, link-local (metadata), CGNAT, multicast or reserved. */
export function isPublicAddress (address: string): boolean {
  let ip: ipaddr.IPv4 | ipaddr.IPv6 = ipaddr.parse(address)
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address()
  return ip.range() === 'unicast'
}

function refuseUnlessPublic (host: string, addresses: string[], allowPrivate: boolean): void {
  if (allowPrivate) return
  const refused = addresses.filter((address) => !isPublicAddress(address))
  if (refused.length > 0) throw new RefusedDestination(`${host} resolves to ${refused.join(', ')}, which is not a public address`)
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/** A `lookup` for node:http(s) and net that fails unless every address of the name is allowed. */
export function guardedLookup (allowPrivate: boolean) {
  return (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: LookupCallback): void => {
    lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err !== null) return callback(err, [])
      try {
        refuseUnlessPublic(hostname, addresses.map((a) => a.address), allowPrivate)
      } catch (refusal) {
        return callback(refusal as NodeJS.ErrnoException, [])
      }
      if ((options as LookupAllOptions).all === true) return callback(null, addresses)
      callback(null, addresses[0]!.address, addresses[0]!.family)
    })
  }
}

/**
 * Checks a URL a user gives for the service to call: `https` (or `http` too when private networks
 * are allowed), no credentials in it, and a host whose every address is allowed. Throws
 * RefusedDestination saying why.
 */
export async function checkOutboundUrl (text: string, allowPrivate: boolean): Promise<URL> {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new RefusedDestination('not an absolute URL')
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) throw new RefusedDestination('the URL must be https')
  if (url.username !== '' || url.password !== '') throw new RefusedDestination('the URL must not carry credentials')
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host) !== 0) {
    refuseUnlessPublic(host, [host], allowPrivate)
    return url
  }
  const addresses = await new Promise<string[]>((resolve, reject) => {
    lookup(host, { all: true }, (err, found) => { if (err !== null) reject(new RefusedDestination(`${host} does not resolve`)); else resolve(found.map((a) => a.address)) })
  })
  refuseUnlessPublic(host, addresses, allowPrivate)
  return url
}
